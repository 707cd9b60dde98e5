"""Retraining: the champion's own recipe (its training spec, or the lineage of the artifact it
was submitted with) fitted on new labelled data, registered as a challenger version with its
lineage; and the held-out rows both are compared on."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mlc_tasks import locations
from mlc_tasks.daily_data import read_day
from mlc_tasks.errors import InvalidInputError, InvalidPackageError
from mlc_tasks.locations import LocationPolicy, watched_root
from mlc_tasks.packages import ModelSpec, TrainingSpec
from mlc_tasks.registry import ModelRecord, NewVersion, VersionRecord
from mlc_tasks.submission import stored_spec


@dataclass(frozen=True)
class NewData:
    """Labelled rows for a retraining, where they came from, and their sha256."""

    rows: pd.DataFrame
    uri: str
    sha256: str


def recipe(champion: VersionRecord) -> TrainingSpec:
    """How the champion was trained: its training spec, or its lineage (estimator, parameters,
    seed) when it was submitted as a ready artifact."""
    if champion.training is not None:
        return TrainingSpec.model_validate(champion.training)
    lineage = stored_spec(str(champion.package_uri)).lineage
    if lineage.estimator is None:
        raise InvalidPackageError(f"{champion.ref}: model.yaml has neither 'training' nor "
                                  "'lineage.estimator', so there is no recipe to retrain with")
    return TrainingSpec(estimator=lineage.estimator, params=dict(lineage.parameters),
                        data="(new labelled data)", seed=lineage.seed or 0)


def read_new_data(data: str | None, location: str | None, last_day: date,
                  window_days: int, policy: LocationPolicy) -> NewData:
    """The named file, else the data location's last `window_days` days. A named file must lie
    under the model's data location (whoever asks — a notification, a person — names only data
    the model's owner set up for it), and that location under an allowed root."""
    if not location:
        raise InvalidInputError(
            f"data: {locations.redact(data)} is refused: the model has no data_location for it "
            "to lie under" if data else "data: no file named and the model has no data_location")
    if data:
        return read_named(data, location, policy)
    frames, digest = [], hashlib.sha256()
    for offset in range(window_days - 1, -1, -1):
        found = read_day(location, last_day - timedelta(days=offset), policy)
        if found is not None:
            frames.append(found[0])
            digest.update(found[2].encode())
    if not frames:
        raise InvalidInputError(f"no labelled data at {location} in the {window_days} days "
                                f"up to {last_day}")
    return NewData(pd.concat(frames, ignore_index=True),
                   f"{location} ({window_days} days to {last_day})", digest.hexdigest())


def read_named(data: str, location: str, policy: LocationPolicy) -> NewData:
    base = watched_root(locations.check(location, policy, "data_location").url)
    checked = locations.check(data, policy, "data", within=base)
    try:
        raw = locations.read_bytes(checked)
        rows = pd.read_csv(io.BytesIO(raw))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"data: {checked.url} cannot be read as CSV: {exc}") from exc
    return NewData(rows, checked.url, hashlib.sha256(raw).hexdigest())


def split_holdout(rows: pd.DataFrame, label: str, share: float, seed: int
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, held-out rows): a seeded shuffle of the labelled rows, so a rerun on
    the same data holds out the same rows."""
    if label not in rows.columns:
        raise InvalidInputError(f"new data: label column '{label}' is missing")
    labelled = rows[rows[label].notna()].reset_index(drop=True)
    order = np.random.default_rng(seed).permutation(len(labelled))
    cut = int(round(len(labelled) * (1 - share)))
    return labelled.iloc[order[:cut]], labelled.iloc[order[cut:]]


def frame_sha256(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def challenger(champion: VersionRecord, spec: TrainingSpec, artifact: dict[str, Any],
               data: NewData) -> NewVersion:
    """The challenger's registration: the champion's package (schema, sample, test data,
    metrics function), the new artifact, and its lineage. Its identity is the champion, the
    recipe and the data: retraining again on the same data is the same version."""
    identity = json.dumps({"parent": champion.id, "data": data.sha256,
                           "spec": spec.model_dump()}, sort_keys=True)
    return NewVersion(
        source_sha256=hashlib.sha256(identity.encode()).hexdigest(),
        artifact_uri=artifact["artifact_uri"], artifact_sha256=artifact["artifact_sha256"],
        format=artifact["format"], artifact_types=artifact["artifact_types"],
        trusted_types=artifact["trusted_types"], input_schema=list(champion.input_schema),
        label=champion.label, metrics=list(champion.metrics),
        sensitive_attributes=list(champion.sensitive_attributes),
        sample_rows=list(champion.sample_rows),
        training=spec.model_copy(update={"data": data.uri}).model_dump(),
        parent_version_id=champion.id, training_data_sha256=data.sha256,
        parameters=dict(spec.params), seed=spec.seed, package_uri=champion.package_uri)


def model_spec(model: ModelRecord, champion: VersionRecord) -> ModelSpec:
    """The model's description as the registry holds it (registering the challenger must not
    change it), with the champion's package fields."""
    return ModelSpec.model_validate({
        **stored_spec(str(champion.package_uri)).model_dump(), "type": model.type,
        "owner": model.owner, "risk_tier": model.risk_tier, "tags": dict(model.tags),
        "description": model.description, "data_location": model.data_location})
