"""Retraining: the champion's own recipe (its training spec, or the lineage of the artifact it
was submitted with) fitted on new labelled data, registered as a challenger version with its
lineage; the held-out rows both are compared on; and the rules of a retraining run (who asked,
what each version's held-out record is, what becomes of a challenger that does not win)."""

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
from mlc_tasks.audit import AuditEvent
from mlc_tasks.comparison import Outcome
from mlc_tasks.daily_data import read_day
from mlc_tasks.errors import InvalidInputError, InvalidPackageError
from mlc_tasks.lifecycle import TERMINAL, State
from mlc_tasks.locations import LocationPolicy, watched_root
from mlc_tasks.packages import ModelSpec, TrainingSpec
from mlc_tasks.people import system_actor
from mlc_tasks.policy import RetrainingRule
from mlc_tasks.registry import ModelRecord, NewVersion, TestResult, VersionRecord
from mlc_tasks.registry.champions import ComparisonRecord
from mlc_tasks.registry.records import ResultKind
from mlc_tasks.run_requests import Trigger
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


@dataclass(frozen=True)
class Retraining:
    """A retraining a run may carry out: what asked, on whose behalf, the champion it
    challenges, the policy's rule for the model, and the new labelled data."""

    trigger: Trigger
    requester: str
    champion: VersionRecord
    rule: RetrainingRule
    data: NewData

    def audit_reason(self) -> str:
        return f"retraining {self.champion.ref} on {self.data.uri} ({self.trigger})"

    def audit_detail(self, request: str | None, flow_run: str) -> dict[str, Any]:
        """What asked, in the model's story."""
        return {"champion": self.champion.number, "rows": len(self.data.rows),
                "data": self.data.uri, "trigger": self.trigger.value,
                "requested_by": self.requester, "request": request, "flow_run": flow_run}


def requester(trail: list[AuditEvent], model: str, trigger: Trigger, request: str | None
              ) -> str:
    """Who asked, from the model's audit trail (never from a parameter): the person or service
    whose request the control-plane API recorded under this id, once; without a request, the
    system (the sensor, a schedule, a notification, or a run started straight on Prefect)."""
    if not request:
        return system_actor(trigger.value.replace(" ", "-"))
    if any(e.action == "model.retraining" and e.detail.get("request") == request
           for e in trail):
        raise InvalidInputError(f"request: retraining request '{request[:64]}' was "
                                "already carried out")
    for event in reversed(trail):
        if event.action == "model.retrain_requested" and event.detail.get("request") == request:
            return event.actor
    raise InvalidInputError(f"request: no retraining of {model} was requested as "
                            f"'{request[:64]}'")


def champion_to_challenge(model: str, champion: VersionRecord | None) -> VersionRecord:
    """A retraining challenges the champion in production; without one there is none."""
    if champion is None:
        raise InvalidInputError(f"model: '{model}' has no champion in production to challenge")
    return champion


def refusal_detail(trigger: str, data: str | None, request: str | None, flow_run: str
                   ) -> dict[str, Any]:
    """What a refused run asked, cut to size (an event may carry anything, of any length)."""
    return {"trigger": trigger[:100], "data": (data or "")[:1000],
            "request": (request or "")[:64], "flow_run": flow_run}


def holdout_kinds(champion: VersionRecord, challenger: VersionRecord
                  ) -> list[tuple[VersionRecord, ResultKind]]:
    """The record each gets on the held-out rows: the champion's is a holdout result; the
    challenger's is its test (on-model-changed re-uses it): the newest labelled rows, not the
    package's older test data, say whether it meets the thresholds in the world it will
    serve."""
    return [(champion, ResultKind.HOLDOUT), (challenger, ResultKind.TEST)]


def needs_holdout_test(kind: ResultKind, recorded: list[TestResult]) -> bool:
    """A version has one test: a challenger trained again on the same data keeps its own."""
    return kind != ResultKind.TEST or not any(r.kind == ResultKind.TEST for r in recorded)


def holdout_window(kind: ResultKind, held_sha256: str) -> str | None:
    """A holdout result's window is its rows' hash (one per challenge); a test has none."""
    return None if kind == ResultKind.TEST else held_sha256[:16]


def wins(decided: ComparisonRecord) -> bool:
    """Only a challenger the comparison promotes goes on to on-model-changed."""
    return decided.outcome == Outcome.PROMOTE


def may_reject(state: State) -> bool:
    """A losing challenger is rejected unless it has ended or serves somewhere already (a rerun
    of a retraining whose challenger was promoted meanwhile)."""
    return state not in TERMINAL | {State.DEPLOYED}


def kept_reason(champion: VersionRecord, decided: ComparisonRecord) -> str:
    return f"champion {champion.ref} kept: {decided.outcome}: {decided.reason}"
