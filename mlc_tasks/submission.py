"""Submitting a package: validate it, store its files content-addressed, register a version."""

from __future__ import annotations

import io
import logging
import os
import stat
import tarfile
from pathlib import Path

import fsspec
import yaml

from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import InvalidPackageError
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.packages import ModelPackage, ModelSpec, file_sha256, is_url, load_package
from mlc_tasks.registry import NewVersion, Registry, VersionRecord
from mlc_tasks.serialization import inspect_artifact

log = logging.getLogger(__name__)


def submit_package(
    path: Path | str,
    registry: Registry,
    store: ArtifactStore,
    reviewed_types: list[str],
    actor: str,
    policy: LocationPolicy | None = None,
) -> tuple[VersionRecord, bool]:
    """Register the package at `path`; returns the version and whether it is new. Everything is
    checked before anything is written, and the same source submitted again is one version.
    A package may not change its model's governance fields (GovernanceFieldError).
    `policy`: where its data may lie (default: the installation's settings)."""
    package = load_package(path, policy)
    registry.check_governance(package.spec)  # before anything is stored
    new = describe_version(package, store, reviewed_types)
    version, created = registry.register_version(package.spec, new, actor)
    log.info("%s %s", "registered" if created else "already registered", version.ref)
    return version, created


def describe_version(
    package: ModelPackage, store: ArtifactStore, reviewed_types: list[str]
) -> NewVersion:
    spec = package.spec
    artifact_uri = artifact_sha256 = artifact_format = None
    all_types: list[str] = []
    trusted: list[str] = []
    if package.artifact_path is not None:
        data = package.artifact_path.read_bytes()
        types = inspect_artifact(data, str(package.artifact_path), reviewed_types)
        all_types, trusted = types.all_types, types.needs_review
        artifact_uri, artifact_sha256 = store.put(data)
        artifact_format = "skops"
    training_data = spec.training.data if spec.training else spec.lineage.training_data
    # data outside the package is hashed by the training job, when it is read
    data_sha = (file_sha256(package.resolve(training_data))
                if training_data and not is_url(training_data) else None)
    package_uri, package_sha = store.put(pack_folder(package))
    return NewVersion(
        source_sha256=artifact_sha256 or package_sha,
        artifact_uri=artifact_uri,
        artifact_sha256=artifact_sha256,
        format=artifact_format,
        artifact_types=all_types,
        trusted_types=trusted,
        input_schema=list(spec.input_schema),
        label=spec.label,
        metrics=list(spec.metrics),
        sensitive_attributes=list(spec.sensitive_attributes),
        sample_rows=package.sample_rows,
        training=spec.training.model_dump() if spec.training else None,
        parent_version_id=None,
        training_data_sha256=data_sha,
        parameters=dict(spec.training.params if spec.training else spec.lineage.parameters),
        seed=spec.training.seed if spec.training else spec.lineage.seed,
        package_uri=package_uri,
    )


def pack_folder(package: ModelPackage) -> bytes:
    """The package folder (without the artifact, stored on its own) as a reproducible tar.gz:
    sorted names and zero times, so the same files give the same bytes and the same hash."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for file in sorted(p for p in package.root.rglob("*") if p.is_file()):
            if package.artifact_path and file.resolve() == package.artifact_path:
                continue
            data = _own_file(file)
            info = tarfile.TarInfo(str(file.relative_to(package.root)))
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    # gzip writes a timestamp into its header; zero it so the bytes only depend on the files
    return data[:4] + b"\0\0\0\0" + data[8:] if data[:2] == b"\x1f\x8b" else data


def _own_file(path: Path) -> bytes:
    """A package file's bytes, never through a symbolic link (one swapped in after the package
    was checked is refused here)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise InvalidPackageError(f"{path}: cannot be read as a file of its own: {exc}") from exc
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise InvalidPackageError(f"{path}: not a regular file")
        return file.read()


def stored_spec(package_uri: str) -> ModelSpec:
    """The model.yaml of a stored package."""
    return ModelSpec.model_validate(yaml.safe_load(package_member(package_uri, "model.yaml")))


def package_member(package_uri: str, relative: str) -> bytes:
    """One file of a stored package (e.g. its test data)."""
    with fsspec.open(package_uri, "rb") as file, tarfile.open(fileobj=file, mode="r:gz") as tar:
        try:
            member = tar.extractfile(relative)
        except KeyError as exc:
            raise InvalidPackageError(f"{relative}: not in the stored package") from exc
        if member is None:
            raise InvalidPackageError(f"{relative}: not a file in the stored package")
        return member.read()
