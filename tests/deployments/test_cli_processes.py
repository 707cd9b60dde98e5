"""`mlc process new` writes a starting point that the catalog serves as it is, and refuses a
bad name or an existing file; `mlc events emit` refuses a payload that is not a JSON object
before anything is sent."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from deployments.cli import app
from flows.catalog import load_processes


def test_a_new_process_is_ready_to_serve(tmp_path: Path) -> None:
    made = CliRunner().invoke(app, ["process", "new", "data-review", "--folder", str(tmp_path)])
    assert made.exit_code == 0, made.output
    assert f"wrote {tmp_path / 'data_review.py'}" in made.output
    [found] = load_processes([tmp_path])
    assert (found.process.name, found.flow.name, found.process.events) == (
        "data-review", "data-review", ["data-review"])
    again = CliRunner().invoke(app, ["process", "new", "data-review", "--folder", str(tmp_path)])
    assert again.exit_code == 1 and "exists" in again.output


def test_a_bad_process_name_is_refused(tmp_path: Path) -> None:
    for name in ("Data Review", "../escape", "on model"):
        made = CliRunner().invoke(app, ["process", "new", name, "--folder", str(tmp_path)])
        assert made.exit_code == 1 and "NAME:" in made.output, name
    assert list(tmp_path.iterdir()) == []


def test_the_payload_must_be_a_json_object() -> None:
    env = {"MLC_API_URL": "http://127.0.0.1:9", "MLC_TOKEN": "t"}  # never reached
    for payload, says in (("{days: 3}", "--payload: not JSON"), ("[1]", "must be a JSON object")):
        sent = CliRunner().invoke(app, ["events", "emit", "quarterly-review", "--model", "m",
                                        "--payload", payload], env=env)
        assert sent.exit_code == 1 and says in sent.output, sent.output
