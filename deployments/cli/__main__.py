"""`python -m deployments.cli`: how `mlc up` starts runtimes and submits packages."""

from deployments.cli import app

app()
