"""Run inside MLflow's environment: MLflow's own scoring client (the one `mlflow models serve`
is tested with) against a server URL, in each input form it sends, printing one line per check
and exiting non-zero on the first that fails. `python mlflow_client_check.py HOST PORT
SAMPLE.json EXPECTED.json`."""

import json
import sys

import pandas as pd
from mlflow.deployments import PredictionsResponse
from mlflow.pyfunc.scoring_server.client import ScoringServerClient


def main() -> None:
    host, port, sample, expected = sys.argv[1:5]
    split = json.loads(open(sample).read())["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    wanted = json.loads(open(expected).read())
    client = ScoringServerClient(host, int(port))
    client.ping()
    print(f"ping ok; version {client.get_version().strip()}")
    for name, data in (("DataFrame", frame), ("records", frame.to_dict("records"))):
        answer = client.invoke(data)
        assert isinstance(answer, PredictionsResponse), type(answer)
        got = answer.get_predictions(predictions_format="ndarray").tolist()
        assert got == wanted, f"{name}: {got} != {wanted}"
        print(f"{name}: {got} as expected")
    answer = client.invoke(frame, params={"note": "passed through"})
    assert answer.get_predictions(predictions_format="ndarray").tolist() == wanted
    print("with params: as expected")


if __name__ == "__main__":
    main()
