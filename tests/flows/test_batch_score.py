"""batch-score on the session's Prefect server: every row scored by the production version,
written beside the input with the version id; progress shown; bad input names the column and
leaves nothing behind."""

from __future__ import annotations

import shutil

import httpx
import pandas as pd
import pytest
import skops.io as sio
from typer.testing import CliRunner

from deployments.cli import app
from flows.batch_score import batch_score
from mlc_tasks.errors import UnsafeLocationError


def test_scores_every_row_beside_the_input(in_prod, prefect_server, tmp_path) -> None:
    registry, daily = in_prod
    version = registry.get_version("credit-risk", 1)
    source = daily.parent / "applicants.csv"  # under the data root, beside the model's days
    shutil.copy(in_prod[1].parents[1] / "credit-risk" / "data" / "test.csv", source)
    output = batch_score("credit-risk", source.as_uri(), chunk_rows=300)
    assert output == f"{source.as_uri().removesuffix('.csv')}.predictions.credit-risk-v1.csv"
    scored = pd.read_csv(output.removeprefix("file://"))
    rows = pd.read_csv(source)
    assert len(scored) == len(rows) and list(scored["row"]) == list(range(1, len(rows) + 1))
    assert set(scored["version_id"]) == {version.id}
    model = sio.load(in_prod[1].parents[1] / "credit-risk" / "model.skops",
                     trusted=version.trusted_types)
    features = rows[[c.name for c in version.input_schema]]
    assert list(scored["prediction"]) == list(model.predict(features))
    progress = httpx.post(f"{prefect_server}/artifacts/filter", json={
        "artifacts": {"key": {"any_": ["batch-score-credit-risk"]}}}).json()
    assert progress and progress[0]["data"] == 100.0
    assert any(e.action == "version.batch_scored" and e.detail["rows"] == len(rows)
               for e in registry.audit_events("credit-risk"))


def test_bad_rows_name_the_column_and_leave_nothing(in_prod, prefect_server, tmp_path) -> None:
    folder = in_prod[1]  # the model's data location
    source = folder / "bad.csv"
    frame = pd.read_csv(in_prod[1].parents[1] / "credit-risk" / "data" / "test.csv")
    frame["income"] = frame["income"].astype(object)
    frame.loc[700, "income"] = "lots"
    frame.to_csv(source, index=False)
    done = CliRunner().invoke(app, ["score", "credit-risk", str(source), "--chunk-rows", "300"])
    assert done.exit_code == 1
    assert "rows from 601" in done.output and "income" in done.output
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("bad")) == ["bad.csv"]


def test_input_and_output_outside_the_roots_are_refused_and_nothing_is_written(
        in_prod, prefect_server, local_settings, tmp_path) -> None:
    registry, daily = in_prod
    outside = tmp_path / "outside" / "applicants.csv"  # a readable CSV, but not under a root
    outside.parent.mkdir()
    shutil.copy(daily.parents[1] / "credit-risk" / "data" / "test.csv", outside)
    token = local_settings.home / "admin-token"
    token.write_text("t0ken\n")
    planted = daily / "applicants.predictions.credit-risk-v1.csv"
    (daily / "applicants.csv").write_text(outside.read_text())
    planted.symlink_to(token)  # the output's name, leading into MLC_HOME
    for uri, field in [(outside.as_uri(), "input_uri"), (str(token), "input_uri"),
                       ("file:///proc/self/environ", "input_uri"), ("memory://x.csv", "input_uri"),
                       ("https://u:hunter2@127.0.0.1/x.csv", "input_uri"),
                       (f"{daily}/../../../outside/applicants.csv", "input_uri"),
                       (str(daily / "applicants.csv"), "output")]:
        with pytest.raises(UnsafeLocationError, match=f"^{field}: ") as info:
            batch_score("credit-risk", uri)
        assert "hunter2" not in str(info.value)
    assert sorted(p.name for p in outside.parent.iterdir()) == ["applicants.csv"]
    assert token.read_text() == "t0ken\n" and planted.is_symlink()
    assert not [e for e in registry.audit_events("credit-risk")
                if e.action == "version.batch_scored"]
