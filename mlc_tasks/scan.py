"""The security scan: artifact format and reviewed types, sha256, and the package's declared
requirements against the capabilities of the runtimes it will be deployed to."""

from __future__ import annotations

from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict

from mlc_tasks.artifacts import fetch_verified
from mlc_tasks.errors import UnsafeArtifactError
from mlc_tasks.registry import RuntimeRecord, VersionRecord
from mlc_tasks.serialization import inspect_artifact


class ScanCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    passed: bool
    detail: str


class ScanResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    checks: list[ScanCheck]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failures(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if not c.passed)


def scan_version(version: VersionRecord, requirements: dict[str, str],
                 runtimes: list[RuntimeRecord]) -> ScanResult:
    """Every check, each passed or failed with the reason; nothing is raised for a finding."""
    checks = [_format(version)]
    if checks[0].passed:
        checks += _artifact(version)
    checks += [requirement_check(name, spec, runtimes) for name, spec in
               sorted(requirements.items())]
    return ScanResult(checks=checks)


def _format(version: VersionRecord) -> ScanCheck:
    ok = version.format == "skops" and version.artifact_uri is not None
    return ScanCheck(name="format", passed=ok,
                     detail="skops" if ok else f"format {version.format!r} is not skops")


def _artifact(version: VersionRecord) -> list[ScanCheck]:
    assert version.artifact_uri and version.artifact_sha256
    try:
        data = fetch_verified(version.artifact_uri, version.artifact_sha256)
    except (UnsafeArtifactError, OSError) as exc:
        return [ScanCheck(name="sha256", passed=False, detail=str(exc))]
    checks = [ScanCheck(name="sha256", passed=True,
                        detail=f"{version.artifact_sha256[:16]}… matches the registered hash")]
    try:
        types = inspect_artifact(data, version.artifact_uri, version.trusted_types)
        reviewed = ", ".join(types.needs_review) or "none needed"
        checks.append(ScanCheck(name="types", passed=True,
                                detail=f"{len(types.all_types)} types; reviewed: {reviewed}"))
    except UnsafeArtifactError as exc:
        checks.append(ScanCheck(name="types", passed=False, detail=str(exc)))
    return checks


def requirement_check(name: str, spec: str, runtimes: list[RuntimeRecord]) -> ScanCheck:
    """Every candidate runtime must offer `name` in a version that satisfies `spec`."""
    wanted = SpecifierSet(spec)
    misses = [f"{r.name} has {_capability(r.capabilities, name)}" for r in runtimes
              if not _satisfies(r.capabilities.get(name), wanted)]
    where = ", ".join(r.name for r in runtimes)
    return ScanCheck(name=f"requires {name}{spec}", passed=not misses and bool(runtimes),
                     detail="; ".join(misses) if misses else f"met by {where or 'no runtime'}")


def _satisfies(offered: Any, wanted: SpecifierSet) -> bool:
    try:
        return offered is not None and Version(str(offered)) in wanted
    except InvalidVersion:
        return False


def _capability(capabilities: dict[str, Any], name: str) -> str:
    return f"{name} {capabilities[name]}" if name in capabilities else f"no {name}"
