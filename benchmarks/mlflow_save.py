"""Runs inside the benchmark's MLflow environment (not ours): saves a skops artifact as an MLflow
sklearn model in skops format, with a signature and an input example from the package's sample.

    MLFLOW_VENV/bin/python benchmarks/mlflow_save.py MODEL.skops SAMPLE.json OUT_DIR TRUSTED_JSON

TRUSTED_JSON: the types beyond skops' defaults that our installation reviewed; the artifact is
loaded trusting those only, as our runtime loads it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow.sklearn
import pandas as pd
import skops.io as sio
from mlflow.models import infer_signature


def main(artifact: str, sample: str, out_dir: str, trusted_json: str) -> None:
    trusted = json.loads(trusted_json)
    model = sio.load(artifact, trusted=trusted)
    split = json.loads(Path(sample).read_text())["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    signature = infer_signature(frame, model.predict(frame))
    # requirements given, not inferred: inference imports and times every module it can find
    mlflow.sklearn.save_model(model, out_dir, serialization_format="skops",
                              skops_trusted_types=trusted, signature=signature,
                              input_example=frame, pip_requirements=["scikit-learn", "skops"])
    print(json.dumps({"signature": signature.to_dict()}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
