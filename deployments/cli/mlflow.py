"""`mlc import-mlflow`: an MLflow model folder (sklearn flavor, skops format) made into a
package and submitted as `mlc submit` submits one, or only written with --out. No MLflow is
needed: the folder is read as files (mlc_tasks/mlflow_models.py, mlc_tasks/mlflow_import.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deployments.cli.core import app, friendly

if TYPE_CHECKING:
    from mlc_tasks.mlflow_import import ImportedPackage


@app.command("import-mlflow")
@friendly
def import_mlflow(
    path: Annotated[Path, typer.Argument(
        help="An MLflow model folder, the one holding MLmodel (e.g. from `mlflow artifacts "
             "download`).")],
    like: Annotated[Path | None, typer.Option(
        help="A model.yaml to take what MLflow does not record from (name, type, owner, risk "
             "tier, label, metrics, tags, test data, data location); its schema, artifact and "
             "sample are replaced by the MLflow model's. The options below override it.")
    ] = None,
    name: Annotated[str | None, typer.Option(
        help="Model name here (default: the MLflow registered name, if one was saved).")] = None,
    model_type: Annotated[str | None, typer.Option(
        "--type", help="classification or regression (default: classification when the "
                       "signature's output or predict function shows it).")] = None,
    owner: Annotated[str | None, typer.Option(help="The accountable person.")] = None,
    risk_tier: Annotated[str | None, typer.Option(
        "--risk-tier", help="low, medium or high.")] = None,
    label: Annotated[str | None, typer.Option(
        help="The label column of the labelled data (tests, monitoring).")] = None,
    metrics: Annotated[str | None, typer.Option(
        help="Comma-separated metrics (default: every metric of the type).")] = None,
    description: Annotated[str | None, typer.Option(help="What the model does.")] = None,
    tags: Annotated[str | None, typer.Option(help="e.g. team=lending,zone=eu")] = None,
    test_data: Annotated[Path | None, typer.Option(
        "--test-data", help="A labelled CSV copied in as data/test.csv (the test job's).")
    ] = None,
    out: Annotated[Path | None, typer.Option(
        help="Only write the package to this new folder; `mlc submit` it later.")] = None,
) -> None:
    """Import an MLflow model: a package from its MLmodel (signature → input schema, input
    example → sample, skops artifact copied as is), submitted as you. A pickled model is
    refused with how to re-log it with skops; the installation's scan decides at submission
    which skops types may load."""
    from mlc_tasks.mlflow_import import fields_like

    given: dict[str, Any] = {}
    files: dict[str, Path] = {}
    if like is not None:
        found = fields_like(like)
        given, files = dict(found.fields), dict(found.files)
    given.update(_options(name=name, type=model_type, owner=owner, risk_tier=risk_tier,
                          label=label, description=description, metrics=metrics,
                          tags=tags, given_tags=given.get("tags")))
    if test_data is not None:
        given["test_data"], files["data/test.csv"] = "data/test.csv", test_data
    if out is not None:
        imported = _write(path, given, files, out)
        typer.echo(f"wrote {imported.folder}; `mlc submit {imported.folder}` registers it")
        return
    with tempfile.TemporaryDirectory(prefix="mlc-import-") as folder:
        imported = _write(path, given, files, Path(folder) / "package")
        from deployments.cli.models import submit

        submit(imported.folder)


def _options(given_tags: Any, metrics: str | None, tags: str | None, **fields: str | None
             ) -> dict[str, Any]:
    """The fields given on the command line; tags are added to --like's."""
    chosen: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if metrics is not None:
        chosen["metrics"] = [m.strip() for m in metrics.split(",") if m.strip()]
    if tags is not None:
        from mlc_tasks.runtimes import parse_tags

        chosen["tags"] = {**(given_tags if isinstance(given_tags, dict) else {}),
                          **parse_tags(tags)}
    return chosen


def _write(path: Path, given: dict[str, Any], files: dict[str, Path], target: Path
           ) -> ImportedPackage:
    from mlc_tasks.mlflow_import import import_mlflow as import_folder

    imported = import_folder(path, given, target.absolute(), files)
    for line in summary(imported, type_given="type" in given):
        typer.echo(line)
    return imported


def summary(imported: ImportedPackage, type_given: bool) -> list[str]:
    """What was taken from MLflow, before the submission's own lines."""
    model, source = imported.model, imported.model.source
    where = "".join(f", {k} {v}" for k, v in (("run", source.run_id),
                                                 ("MLflow", source.mlflow_version),
                                                 ("scikit-learn", source.sklearn_version)) if v)
    lines = [f"MLflow model {source.model_id or source.model_uuid or model.root} (skops{where}):"
             f" {len(model.input_schema)} input columns, {len(model.sample_rows)} sample rows, "
             f"artifact sha256 {imported.artifact_sha256[:12]}"]
    if model.inferred_type is not None and not type_given:
        lines.append(f"type {model.inferred_type}: {model.type_evidence} (--type to say "
                     "otherwise)")
    return lines
