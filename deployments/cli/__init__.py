"""`mlc`: the command line of the model life-cycle manager, one module per concern —
models.py (packages, versions, runtimes, deploy, rollback, retrain, governance changes),
tasks.py (human tasks and decisions), alerts.py, monitoring.py (backtest, monitor, score,
results), processes.py (custom events, a new process) and admin.py (`up`, runtimes, people,
login, the audit log) — on the app and helpers of core.py and output.py.

Most commands are thin clients of the control-plane API (deployments/client.py, MLC_API_URL):
they import no registry, Prefect or scikit-learn, and who acts is whoever holds the token
(MLC_TOKEN, or `mlc login`). Admin commands (`mlc people`, `mlc audit verify|anchor`, `mlc up`,
`mlc runtime start`) and the flows run here (backtest, monitor, score, results) work on the
installation's files and database directly, so they need its MLC_HOME."""

from __future__ import annotations

from typer.models import CommandInfo

from deployments.cli import admin, alerts, mlflow, models, monitoring, processes, tasks
from deployments.cli.core import api, app, context, friendly, path_of
from deployments.cli.output import emit_json, show_table

# `mlc --help` lists the commands in the order a model lives, not by module
HELP_ORDER = ("submit", "import-mlflow", "models", "versions", "runtimes", "deploy",
              "deployments", "audit", "tasks", "approve", "reject", "review", "answer", "evidence",
              "backtest", "monitor", "score", "results", "retrain", "comparisons", "rollback",
              "up", "login", "logout", "whoami")


def command_name(info: CommandInfo) -> str:
    """The name typer gives a command: its own, else its function's with dashes."""
    if info.name:
        return info.name
    assert info.callback is not None
    return info.callback.__name__.replace("_", "-")


app.registered_commands.sort(key=lambda info: HELP_ORDER.index(command_name(info)))
app.add_typer(admin.runtime_app, name="runtime")
app.add_typer(alerts.alerts_app, name="alerts")
app.add_typer(admin.people_app, name="people")
app.add_typer(models.model_app, name="model")
app.add_typer(processes.events_app, name="events")
app.add_typer(processes.process_app, name="process")

__all__ = ["admin", "alerts", "api", "app", "context", "emit_json", "friendly", "mlflow",
           "models", "monitoring", "path_of", "processes", "show_table", "tasks"]
