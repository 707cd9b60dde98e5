"""Models, their versions and where they run: submit, list, deploy, roll back, retrain, compare
and change a model's governance fields, each through the control-plane API as the token's
holder (a deploy or a rollback runs the installation's flow there: its link is printed)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from deployments.cli.core import JsonFlag, api, app, friendly, path_of
from deployments.cli.output import emit_json, key, ref, show_table, tag_list, text, when
from mlc_tasks.errors import InvalidInputError

model_app = typer.Typer(help="Change a model's governance fields.", no_args_is_help=True)


@app.command()
@friendly
def submit(
    path: Annotated[Path, typer.Argument(help="Package folder with model.yaml.")],
) -> None:
    """Upload a model package: the installation validates it, stores it, registers a version
    submitted by you (the token's holder) and marks it ready."""
    from deployments.api_upload import pack

    if not path.is_dir():
        raise InvalidInputError(f"{path}: not a package folder")
    done = api().upload("/v1/packages", pack(path.resolve()))
    version = done["version"]
    typer.echo(f"{'registered' if done['created'] else 'already registered'} {ref(version)} "
               f"(id {version['id']}, state {version['state']})")
    if done.get("warning"):
        typer.echo(f"warning: {done['warning']}. The version is registered; start `mlc up` and "
                   "submit again to start its process.", err=True)
    typer.echo(version["id"])


@app.command()
@friendly
def models(name: Annotated[str | None, typer.Argument()] = None, json_out: JsonFlag = False
           ) -> None:
    """List models, or show one."""
    client = api()
    found = [client.get(path_of("models", name))] if name else client.get("/v1/models")
    if json_out:
        emit_json(found)
        return
    champions = client.get("/v1/champions")
    show_table("models", [key("name"), key("type"), key("risk"), key("champion"),
                          key("owner", drop=2), key("tags", drop=3),
                          text("description", drop=1)],
               [[m["name"], m["type"], m["risk_tier"], champions.get(m["name"], "-"),
                 m["owner"], tag_list(m["tags"]), m["description"]] for m in found])


@app.command()
@friendly
def versions(name: str, json_out: JsonFlag = False) -> None:
    """List a model's versions, newest first."""
    client = api()
    found = client.get(path_of("models", name, "versions"))
    if json_out:
        emit_json(found)
        return
    champion = client.get("/v1/champions").get(name)
    show_table(f"versions of {name}", [
        key("version"), key("state"), key("champion"), key("sha256", drop=3),
        key("created by", drop=2), key("created (UTC)", drop=1), key("id", drop=4)],
        [[v["number"], v["state"], "champion" if v["number"] == champion else "",
          (v["artifact_sha256"] or "(to train)")[:12], v["created_by"],
          when(v["created_at"], True), v["id"]] for v in found])


@app.command("runtimes")
@friendly
def list_runtimes(json_out: JsonFlag = False) -> None:
    """List registered runtimes with what each serves."""
    client = api()
    found = client.get("/v1/runtimes")
    if json_out:
        emit_json(found)
        return
    serving = client.get("/v1/runtimes/serving")
    show_table("runtimes", [key("name"), key("url"), text("tags"), text("serving"),
                            key("heartbeat (UTC)", drop=1)],
               [[r["name"], r["url"], tag_list(r["tags"]),
                 ", ".join(serving.get(r["name"], [])) or "-",
                 f"{datetime.fromisoformat(r['last_heartbeat']):%H:%M:%S}"] for r in found])


@app.command()
@friendly
def deploy(
    name: str,
    version: int,
    tags: Annotated[str, typer.Option(help="Runtime tags that must all match, e.g. env=qa.")],
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "manual deploy",
) -> None:
    """Deploy a version onto the one runtime whose tags match (a verified manual deploy: the
    audit log names you)."""
    done = api().post(path_of("models", name, "deploy"),
                      {"version": version, "tags": tags, "reason": reason})
    runtime = done["runtime"]
    verb = "deployed" if done["deployed"] else "already deployed"
    typer.echo(f"{verb} {ref(done['version'])} on {runtime['name']} "
               f"({runtime['url']}/invocations)")
    _run_line(done)


@app.command("deployments")
@friendly
def list_deployments(
    name: str,
    env: Annotated[str | None, typer.Option(help="With --at: the runtime env tag, e.g. prod.")
                   ] = None,
    at: Annotated[datetime | None, typer.Option(
        help="Which version served --env at this time (UTC), e.g. 2026-11-26T08:00:00.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """A model's deployment history, or which version served an env at a time."""
    if (at is None) != (env is None):
        raise InvalidInputError("--env and --at go together")
    found = api().get(path_of("models", name, "deployments"), env=env,
                      at=at.isoformat() if at else None)
    if at is not None:
        _served_then(found, env, json_out)
        return
    if json_out:
        emit_json(found)
        return
    show_table(f"deployments of {name}", [
        key("version"), key("runtime"), key("env"), key("from (UTC)"), key("to (UTC)"),
        text("by", drop=1), text("why")],
        [[d["version_number"], d["runtime"], d["env"], when(d["deployed_at"], True),
          when(d["replaced_at"], True) if d["replaced_at"] else "now", d["deployed_by"],
          d["reason"]] for d in found])


def _served_then(found: dict[str, Any] | None, env: str | None, json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(found, indent=2))
    else:
        typer.echo(f"{ref(found)} (id {found['id']})" if found else f"nothing served {env} then")


@app.command()
@friendly
def retrain(
    name: str,
    data: Annotated[str | None, typer.Option(
        help="A labelled CSV file (path or fsspec URL) under the model's data location; "
             "default: the data location's recent days.")] = None,
) -> None:
    """Ask for a retraining (recorded as yours): the served retrain deployment trains a
    challenger, compares it with the champion, and promotes it through approval if it wins."""
    if data and "://" not in data:
        path = Path(data).resolve()
        if not path.is_file():
            raise InvalidInputError(f"--data: {data} is not a file")
        data = path.as_uri()
    done = api().post(path_of("models", name, "retrain"), {"data": data})
    typer.echo(f"retraining of {name} requested (request {done['request']}); the retrain "
               "deployment starts it")
    typer.echo(f"then `mlc comparisons {name}` and `mlc tasks`")


@app.command()
@friendly
def evidence(
    name: str,
    version: int,
    out: Annotated[Path, typer.Option(help="Where to write the HTML (never over a file).")],
) -> None:
    """A version's evidence packet as the registry stands now (HTML: model card, tests,
    comparison, fairness, drift, scan, every verified decision) and its sha256."""
    import hashlib

    html = api().document(path_of("models", name, "versions", version, "evidence"))
    try:
        with out.open("xb") as file:
            file.write(html)
    except FileExistsError as exc:
        raise InvalidInputError(f"--out: {out} exists; name a new file") from exc
    typer.echo(f"evidence packet of {name}:{version} written to {out} "
               f"(sha256 {hashlib.sha256(html).hexdigest()})")


@app.command()
@friendly
def comparisons(name: str, json_out: JsonFlag = False) -> None:
    """Champion/challenger comparisons of a model and their decisions, oldest first."""
    client = api()
    found = client.get(path_of("models", name, "comparisons"))
    if json_out:
        emit_json(found)
        return
    numbers = {v["id"]: v["number"] for v in client.get(path_of("models", name, "versions"))}
    show_table(f"comparisons of {name}", [
        key("champion"), key("challenger"), key("rows"), key("outcome"), text("reason"),
        key("recorded (UTC)", drop=1)],
        [[numbers[c["champion_version_id"]], numbers[c["challenger_version_id"]], c["rows"],
          c["outcome"], c["reason"], when(c["created_at"])] for c in found])


@app.command()
@friendly
def rollback(
    name: str,
    env: Annotated[str, typer.Option(help="The stage to roll back: prod or qa.")] = "prod",
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "rollback",
) -> None:
    """Redeploy the last good version (the one served before the current) on a stage."""
    if env not in ("prod", "qa"):
        raise InvalidInputError(f"--env: '{env}' is not prod or qa")
    done = api().post(path_of("models", name, "rollback"), {"env": env, "reason": reason})
    typer.echo(f"rolled back {done['runtime']['name']} to {ref(done['version'])}")
    _run_line(done)


def _run_line(done: dict[str, Any]) -> None:
    """The link of the flow run that did it (an API older than the flows sends none)."""
    if done.get("run"):
        typer.echo(f"run: {done['run']['url'] or done['run']['id']}")


@model_app.command("update")
@friendly
def model_update(
    name: str,
    risk_tier: Annotated[str | None, typer.Option(
        "--risk-tier", help="low, medium or high; raising it applies at once.")] = None,
    model_type: Annotated[str | None, typer.Option(
        "--type", help="classification or regression.")] = None,
    owner: Annotated[str | None, typer.Option(help="The accountable person.")] = None,
    team: Annotated[str | None, typer.Option(help="The `team` tag (alert routing).")] = None,
    data_location: Annotated[str | None, typer.Option(
        "--data-location", help="Where labelled data arrives; under the data roots.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Change a model's type, risk tier, owner, team or data location. Raising the risk tier
    applies at once; every other change opens a change task for the policy's model-risk group,
    and until it is approved the registered values stay in force."""
    from mlc_tasks.governance import ChangeOutcome, outcome_lines

    given = {k: v for k, v in {"risk_tier": risk_tier, "type": model_type, "owner": owner,
                               "team": team, "data_location": data_location}.items()
             if v is not None}
    if not given:
        raise InvalidInputError("give at least one of --risk-tier, --type, --owner, --team, "
                                "--data-location")
    if given.get("data_location") and "://" not in given["data_location"]:
        given["data_location"] = os.path.abspath(given["data_location"])  # this terminal's
    outcome = ChangeOutcome.model_validate(api().patch(path_of("models", name), given))
    if json_out:
        emit_json(outcome)
        return
    for line in outcome_lines(outcome):
        typer.echo(line)
