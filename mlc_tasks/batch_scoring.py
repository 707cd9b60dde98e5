"""Batch scoring: a version's predictions for every row of a CSV under an allowed root, written
beside it (`<input>.predictions.<model>-v<n>.csv`, each row with the version id), chunk by
chunk so memory stays flat however large the file is."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from mlc_tasks import locations
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.registry import VersionRecord
from mlc_tasks.scoring import frame_from_rows

Progress = Callable[[int, int], None]  # (bytes read so far, total bytes)


def output_uri(input_uri: str, version: VersionRecord) -> str:
    return f"{input_uri.removesuffix('.csv')}.predictions.{version.model}-v{version.number}.csv"


def score_file(model: Any, version: VersionRecord, input_uri: str, policy: LocationPolicy,
               chunk_rows: int = 50_000, on_progress: Progress | None = None
               ) -> tuple[str, int]:
    """Score every row; returns (output uri, rows). Input and output must lie under an allowed
    root (the output too: a link planted at its name must not lead elsewhere). The output is
    written to a temporary name and moved into place, so a reader never sees half of it."""
    source = locations.check(input_uri, policy, "input_uri")
    target = locations.check(output_uri(source.url, version), policy, "output").url
    fs, path = locations.filesystem(source.url)
    if not fs.isfile(path):
        raise InvalidInputError(f"{input_uri}: no such file")
    total, rows = fs.size(path), 0
    out_fs, out_path = locations.filesystem(target)
    partial = f"{out_path}.{uuid.uuid4().hex}.partial"  # two jobs never share one
    try:
        with fs.open(path, "rb") as source, out_fs.open(partial, "w") as sink:
            for index, chunk in enumerate(_chunks(source, chunk_rows, input_uri)):
                scored = _score_chunk(model, version, chunk, rows, input_uri)
                scored.to_csv(sink, index=False, header=index == 0)
                rows += len(chunk)
                if on_progress:
                    on_progress(source.tell(), total)
        if rows == 0:
            raise InvalidInputError(f"{input_uri}: no rows")
        out_fs.mv(partial, out_path)
    except BaseException:
        if out_fs.exists(partial):
            out_fs.rm(partial)  # nothing half-written stays behind
        raise
    return target, rows


def _chunks(source: Any, chunk_rows: int, input_uri: str) -> Iterator[pd.DataFrame]:
    try:
        yield from pd.read_csv(source, chunksize=chunk_rows)
    except pd.errors.EmptyDataError:
        return
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{input_uri}: not a CSV file: {exc}") from exc


def _score_chunk(model: Any, version: VersionRecord, chunk: pd.DataFrame, first_row: int,
                 input_uri: str) -> pd.DataFrame:
    try:
        features = frame_from_rows(chunk.to_dict("records"), version.input_schema)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{input_uri} (rows from {first_row + 1}): {exc}") from exc
    out = pd.DataFrame({"row": range(first_row + 1, first_row + 1 + len(chunk)),
                        "prediction": model.predict(features)})
    if hasattr(model, "predict_proba"):
        out["score"] = model.predict_proba(features)[:, 1]
    out["version_id"] = version.id
    return out
