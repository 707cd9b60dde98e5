"""The protocols a real runtime speaks, with two models deployed: MLflow's scoring protocol in
each input format and content type, and the Open Inference Protocol V2."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.registry import Registry
from mlc_tasks.runtimes import RuntimeClient, deploy_version
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.conftest import TOKEN


@pytest.fixture
def two_models(start_runtime, local_settings: MlcSettings, local_registry: Registry,
               examples_dir: Path):
    """A QA runtime serving credit-risk:1 and house-prices:1, and their sample rows."""
    registry, runtime = local_registry, start_runtime()
    store = ArtifactStore(local_settings.artifact_url())
    for name in ("credit-risk", "house-prices"):
        version, _ = submit_package(examples_dir / name, registry, store, list(REVIEWED_TYPES),
                                    "ana")
        deploy_version(registry, RuntimeClient(runtime.url, TOKEN), registry.get_runtime("qa"),
                       version, "ops")
    samples = {name: as_split(json.loads((examples_dir / name / "sample.json").read_text()))
               for name in ("credit-risk", "house-prices")}
    return runtime, samples


def as_split(sample: dict) -> dict:
    """A sample file (dataframe_split or dataframe_records) as dataframe_split."""
    if "dataframe_split" in sample:
        return sample["dataframe_split"]
    records = sample["dataframe_records"]
    columns = list(records[0])
    return {"columns": columns, "data": [[r[c] for c in columns] for r in records]}


def post(runtime, path: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{runtime.url}{path}", timeout=30, **kwargs)


def test_every_mlflow_input_format_scores_the_same(two_models) -> None:
    runtime, samples = two_models
    split = samples["credit-risk"]
    records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    columnar = {c: [row[i] for row in split["data"]] for i, c in enumerate(split["columns"])}
    csv = "\n".join([",".join(split["columns"])] + [",".join(map(str, r)) for r in split["data"]])
    bodies = [{"json": {"dataframe_split": split}}, {"json": {"dataframe_records": records}},
              {"json": {"instances": records}}, {"json": {"inputs": columnar}},
              {"json": {"inputs": records, "params": {"note": "ignored by sklearn"}}},
              {"content": csv, "headers": {"Content-Type": "text/csv"}},
              {"content": json.dumps({"dataframe_split": split}),
               "headers": {"Content-Type": "application/json; charset=utf-8"}}]
    answers = [post(runtime, "/models/credit-risk/invocations", **body) for body in bodies]
    assert [a.status_code for a in answers] == [200] * len(bodies), [a.text for a in answers]
    predictions = {json.dumps(a.json()) for a in answers}
    assert len(predictions) == 1 and len(answers[0].json()["predictions"]) == 3


def test_mlflow_refusals_are_in_mlflows_shape(two_models) -> None:
    runtime, samples = two_models
    split = samples["credit-risk"]
    two_keys = post(runtime, "/models/credit-risk/invocations",
                    json={"dataframe_split": split, "instances": []})
    assert two_keys.status_code == 400 and two_keys.json()["error_code"] == "BAD_REQUEST"
    assert "dataframe_split" in two_keys.json()["message"]
    wrong_model = post(runtime, "/models/house-prices/invocations", json={"dataframe_split": split})
    assert wrong_model.status_code == 400
    assert "area_m2" in wrong_model.json()["message"]  # the column house-prices misses
    unknown = post(runtime, "/models/nope/invocations", json={"dataframe_split": split})
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    two_served = post(runtime, "/invocations", json={"dataframe_split": split})
    assert two_served.status_code == 400
    assert "credit-risk, house-prices" in two_served.json()["message"]
    assert httpx.get(f"{runtime.url}/ping").status_code == 200
    assert httpx.get(f"{runtime.url}/version").text.strip()


def v2_inputs(split: dict, datatypes: dict[str, str]) -> list[dict]:
    return [{"name": c, "shape": [len(split["data"])], "datatype": datatypes[c],
             "data": [row[i] for row in split["data"]]} for i, c in enumerate(split["columns"])]


def test_open_inference_v2(two_models) -> None:
    runtime, samples = two_models
    get = lambda path: httpx.get(f"{runtime.url}{path}", timeout=30)  # noqa: E731
    assert get("/v2/health/live").json() == {"live": True}
    assert get("/v2/health/ready").status_code == 200
    metadata = get("/v2/models/house-prices").json()
    assert metadata["name"] == "house-prices" and metadata["versions"] == ["1"]
    types = {t["name"]: t["datatype"] for t in metadata["inputs"]}
    assert types == {"area_m2": "FP64", "rooms": "INT64", "age_years": "INT64", "city": "BYTES"}
    assert metadata["outputs"][0]["datatype"] == "FP64"
    assert get("/v2/models/house-prices/ready").json() == {"name": "house-prices", "ready": True}
    assert get("/v2/models/house-prices/versions/9/ready").status_code == 404
    split = samples["house-prices"]
    answer = post(runtime, "/v2/models/house-prices/infer",
                  json={"id": "req-7", "inputs": v2_inputs(split, types)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    mlflow = post(runtime, "/models/house-prices/invocations", json={"dataframe_split": split})
    assert body["id"] == "req-7" and body["model_version"] == "1"
    [output] = body["outputs"]
    assert output["shape"] == [len(split["data"])] and output["datatype"] == "FP64"
    assert output["data"] == mlflow.json()["predictions"]
    missing = post(runtime, "/v2/models/house-prices/infer",
                   json={"inputs": v2_inputs(split, types)[1:]})
    assert missing.status_code == 400 and "area_m2" in missing.json()["error"]
    assert post(runtime, "/v2/models/nope/infer", json={"inputs": []}).status_code == 404


def test_the_compiled_predictor_serves_both_examples(two_models) -> None:
    runtime, _ = two_models
    models = httpx.get(f"{runtime.url}/health").json()["models"]
    assert {name: m["current"]["compiled"] for name, m in models.items()} == {
        "credit-risk": True, "house-prices": True}
    assert all(m["current"]["memory_bytes"] > 1000 for m in models.values())
