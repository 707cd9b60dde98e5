"""The model inventory: models, versions, life-cycle states, runtimes, deployments, test
results and the hash-chained audit log, in one SQLAlchemy database."""

from mlc_tasks.registry.records import (
    DeploymentRecord,
    ModelRecord,
    NewVersion,
    RuntimeRecord,
    TestResult,
    ThresholdCheck,
    VersionRecord,
)
from mlc_tasks.registry.store import Registry

__all__ = [
    "DeploymentRecord",
    "ModelRecord",
    "NewVersion",
    "Registry",
    "RuntimeRecord",
    "TestResult",
    "ThresholdCheck",
    "VersionRecord",
]
