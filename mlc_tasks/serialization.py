"""Safe artifact formats: skops only, with every type either trusted by skops or reviewed.

A pickle runs arbitrary code when it is loaded, so pickle and joblib files are refused before
anything reads them. A skops file declares its types in schema.json; we list them all at
registration and load later trusting only the types recorded then.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import skops.io as sio

from mlc_tasks.artifact_checks import check_loaded
from mlc_tasks.errors import UnsafeArtifactError

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".sav", ".dill"}
ZIP_MAGIC = b"PK\x03\x04"


class ArtifactTypes:
    """What a skops file contains: every type, and those beyond skops' defaults."""

    def __init__(self, all_types: list[str], needs_review: list[str]) -> None:
        self.all_types = all_types
        self.needs_review = needs_review


def inspect_artifact(data: bytes, name: str, reviewed: list[str]) -> ArtifactTypes:
    """Refuse pickle-like or malformed files and types nobody reviewed; return the types."""
    check_not_pickle(data, name)
    try:
        schema = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("schema.json"))
        untrusted = sio.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, ValueError) as exc:
        raise UnsafeArtifactError(f"{name}: not a valid skops file ({exc})") from exc
    unreviewed = sorted(set(untrusted) - set(reviewed))
    if unreviewed:
        raise UnsafeArtifactError(
            f"{name}: types not reviewed: {', '.join(unreviewed)}. A person must review them "
            "and add them to MLC_TRUSTED_TYPES before this artifact can be registered."
        )
    return ArtifactTypes(sorted(_schema_types(schema)), sorted(untrusted))


def check_not_pickle(data: bytes, name: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES or data[:1] == b"\x80":
        raise UnsafeArtifactError(
            f"{name}: pickle/joblib artifacts are refused because loading them runs arbitrary "
            "code; save the model with skops.io.dump to a .skops file instead"
        )
    if not data.startswith(ZIP_MAGIC):
        raise UnsafeArtifactError(f"{name}: not a skops file (expected a zip archive)")


def load_artifact(data: bytes, name: str, recorded: list[str], reviewed: list[str]) -> Any:
    """Load a skops artifact trusting only skops' defaults and the types both recorded for the
    version and reviewed by this loading process's own installation: whatever a submitter's
    environment said when the version was registered never counts on its own. The loaded model's
    data is then checked (mlc_tasks/artifact_checks.py) before anyone can predict with it."""
    check_not_pickle(data, name)
    unreviewed = sorted(set(recorded) - set(reviewed))
    if unreviewed:
        raise UnsafeArtifactError(f"{name}: types not reviewed on this installation: "
                                  f"{', '.join(unreviewed)}; it is not loaded")
    try:
        model = sio.loads(data, trusted=sorted(set(recorded) & set(reviewed)))
    except Exception as exc:  # skops raises UntrustedTypesFoundException and parse errors
        raise UnsafeArtifactError(f"{name}: cannot be loaded safely: {exc}") from exc
    check_loaded(model, name)  # the types are trusted; their arrays still have to hold together
    return model


def _schema_types(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if "__module__" in node and "__class__" in node:
            found.add(f"{node['__module__']}.{node['__class__']}")
        for value in node.values():
            found |= _schema_types(value)
    elif isinstance(node, list):
        for value in node:
            found |= _schema_types(value)
    return found
