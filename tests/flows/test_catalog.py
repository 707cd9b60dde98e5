"""Finding a team's processes: each module of a process folder that declares `process` beside
its flow; anything else is refused with the file named, and nothing of ours can be replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.catalog import load_processes
from mlc_tasks.errors import InvalidInputError

REPO = Path(__file__).resolve().parents[2]
HEAD = "from prefect import flow\nfrom mlc_tasks.processes import Process\n"


def module(folder: Path, name: str, process: str, flow_name: str | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(HEAD + f'process = Process(name="{process}", description="d")\n'
                    f'@flow(name="{flow_name or process}")\ndef run(model: str) -> str:\n'
                    "    return model\n")
    return path


def test_the_bundled_folder_holds_the_quarterly_review() -> None:
    [found] = load_processes([REPO / "processes"])
    assert (found.process.name, found.flow.name) == ("quarterly-review", "quarterly-review")
    assert found.process.events == ["quarterly-review"] and found.process.schedule


def test_modules_of_several_folders_are_found(tmp_path: Path) -> None:
    module(tmp_path / "a", "first", "first-review")
    module(tmp_path / "b", "second", "second-review")
    (tmp_path / "b" / "_helpers.py").write_text("raise SystemExit('never imported')\n")
    found = load_processes([tmp_path / "a", tmp_path / "b"])
    assert [d.process.name for d in found] == ["first-review", "second-review"]


@pytest.mark.parametrize(("write", "error"), [
    (lambda d: (d / "plain.py").write_text("x = 1\n"), r"plain.py: declares no `process"),
    (lambda d: module(d, "wrong", "review", "other-name"),
     r"wrong.py: needs exactly one flow named 'review'"),
    (lambda d: module(d, "ours", "on-model-changed"), r"ours.py: 'on-model-changed' is the name"),
    (lambda d: (module(d, "a", "twice"), module(d, "b", "twice")),
     r"b.py: process 'twice' is declared again \(first in .*a.py\)"),
])
def test_a_bad_module_is_refused_by_file(tmp_path: Path, write, error: str) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "processes"
    folder.mkdir()
    write(folder)
    with pytest.raises(InvalidInputError, match=error):
        load_processes([folder])


def test_a_configured_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="MLC_PROCESS_PATHS: .*missing is not a folder"):
        load_processes([tmp_path / "missing"])
