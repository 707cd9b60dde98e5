"""The security scan: format, sha256 and reviewed types of the stored artifact, and the
package's requirements against the candidate runtimes' capabilities."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from mlc_tasks.errors import InvalidPackageError
from mlc_tasks.packages import parse_model_yaml
from mlc_tasks.registry import RuntimeRecord
from mlc_tasks.scan import requirement_check, scan_version
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package


def runtime(name: str, **capabilities: str) -> RuntimeRecord:
    now = datetime(2026, 1, 1)
    return RuntimeRecord(name=name, url="http://127.0.0.1:1", tags={}, started_at=now,
                         last_heartbeat=now, capabilities=capabilities)


RUNTIMES = [runtime("qa", sklearn="1.9.1", python="3.11.9"),
            runtime("prod", sklearn="1.8.0", python="3.11.9")]


def test_requirements_must_hold_on_every_candidate_runtime() -> None:
    assert requirement_check("python", ">=3.11,<3.12", RUNTIMES).passed
    missed = requirement_check("sklearn", ">=1.9", RUNTIMES)
    assert not missed.passed and missed.detail == "prod has sklearn 1.8.0"
    absent = requirement_check("torch", ">=2", RUNTIMES)
    assert not absent.passed and "qa has no torch" in absent.detail
    assert not requirement_check("python", ">=3", []).passed  # no runtime: not met


def test_a_stored_artifact_passes_and_an_altered_one_fails(package, registry, store) -> None:
    version, _ = submit_package(package, registry, store, list(REVIEWED_TYPES), "ana")
    result = scan_version(version, {"python": ">=3.11"}, RUNTIMES)
    assert result.passed, result.failures()
    assert [c.name for c in result.checks] == ["format", "sha256", "types",
                                               "requires python>=3.11"]
    Path(str(version.artifact_uri)).write_bytes(b"PK\x03\x04 tampered")
    altered = scan_version(version, {}, RUNTIMES)
    assert not altered.passed and "sha256" in altered.failures()


def test_a_bad_requirement_names_the_field(package) -> None:
    text = (package / "model.yaml").read_text() + "requirements:\n  sklearn: 'about 1.9'\n"
    (package / "model.yaml").write_text(text)
    with pytest.raises(InvalidPackageError, match="requirements.sklearn: 'about 1.9'"):
        parse_model_yaml(package / "model.yaml")
