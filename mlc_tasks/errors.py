"""Every error this project raises on purpose.

    MlcError
    ├── InvalidInputError          bad input from a person or a file; names the field/column/file
    │   ├── InvalidPackageError    a model package (model.yaml, artifact, data) is wrong
    │   │   └── GovernanceFieldError  a package that would change a model's type, risk
    │   │                               tier, owner, team or data location
    │   ├── SignatureError         a signed notification whose signature or timestamp does not hold
    │   ├── UnsafeArtifactError    pickle/joblib, unreviewed skops types, sha256 mismatch, or
    │   │                          data scikit-learn would read out of bounds (artifact_checks)
    │   ├── SchemaMismatchError    scoring input does not fit the version's input schema
    │   ├── ScoringRequestError    a scoring request too deep or with a number out of range (400)
    │   │   ├── RequestTooLargeError       body bytes or rows over the runtime's limit (413)
    │   │   └── UnsupportedMediaTypeError  not application/json or text/csv (415)
    │   ├── UnsafeUrlError         an outbound URL that is not https, not allowed, or private
    │   │   └── UnsafeLocationError  a data location outside the allowed roots, or with
    │   │                            credentials, a query string or a refused protocol
    │   └── PolicyError            the policy file does not cover a case (e.g. no approval rule)
    ├── NotFoundError              a model, version, runtime or task that does not exist
    │   └── InstallationNotFoundError  no running `mlc up`, and none configured
    ├── IllegalTransitionError     a life-cycle move the transition table forbids
    ├── RuntimeSelectionError      no runtime, or more than one, matches the tags
    │   └── RuntimeFullError       every matching runtime serves as many models as it may
    ├── RuntimePinnedError         a runtime registering at another URL than it was pinned to
    ├── DeployRefusedError         a runtime refused a version the registry does not allow there
    ├── AuditChainError            the audit log's hash chain is broken
    ├── AuditKeyError              no audit key, or not the key the log is sealed with
    ├── TaskClosedError            a decision on a human task that is no longer open
    ├── ChangePendingError         a governance change while another waits for approval
    ├── SmokeTestError             a runtime took a version but does not serve it correctly
    ├── ChampionChangedError       a challenger claiming a champion that is no longer the one
    ├── StepAbortedError           a reviewer aborted a failed step, or nobody reviewed in time
    ├── StartupError               a service `mlc up` starts did not answer, exited, or found
    │                               its address taken
    ├── RuntimeRefusedError        a runtime refused a request (4xx): a bad token, a version it
    │                               may not serve, a body it cannot take
    ├── TaskNotWaitingError        a human task whose flow run is not waiting for its decision
    ├── PermanentDeliveryError     a channel refused an alert (400, 401, 403, 404): not retried
    ├── PrefectAuthError           the Prefect server refused our credentials (401)
    ├── AccessDeniedError          the control-plane API refused the caller: no, a bad or a
    │                               revoked token (401), or a missing scope (403)
    ├── SandboxUnavailableError    package code cannot run contained here (no bubblewrap)
    └── TransientError             I/O that may succeed if tried again
        ├── RuntimeUnavailableError  a runtime did not answer
        └── DeliveryFailedError      a channel failed (5xx, timeout, refused): retried

Expected outcomes (a rejected version, drift found) are return values, not exceptions.
"""

from __future__ import annotations


class MlcError(Exception):
    """Base of every error raised on purpose by this project."""


class InvalidInputError(MlcError):
    """Input from a person or a file is wrong; the message names the field, column or file."""


class InvalidPackageError(InvalidInputError):
    """A model package is wrong."""


class GovernanceFieldError(InvalidPackageError):
    """A package differs from its registered model in a governance field (type, risk tier,
    owner, team, data location): only a change request (`mlc model update`) changes those."""


class SignatureError(InvalidInputError):
    """A notification whose signature or timestamp does not hold; the message says which."""


class UnsafeArtifactError(InvalidInputError):
    """An artifact cannot be loaded safely."""


class SchemaMismatchError(InvalidInputError):
    """Scoring input does not fit the declared input schema."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column


class ScoringRequestError(InvalidInputError):
    """A scoring request the runtime will not read; `column` names the column when one is at
    fault."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class RequestTooLargeError(ScoringRequestError):
    """A scoring request with more bytes or rows than the runtime takes."""


class UnsupportedMediaTypeError(ScoringRequestError):
    """A scoring request in a media type the runtime does not read."""


class UnsafeUrlError(InvalidInputError):
    """An outbound URL we refuse to call."""


class UnsafeLocationError(UnsafeUrlError):
    """A data or artifact location we refuse to read or write (mlc_tasks/locations.py)."""


class NotFoundError(MlcError):
    """Something named does not exist."""


class InstallationNotFoundError(NotFoundError):
    """No running installation answers, and MLC_HOME / MLC_DATABASE_URL name none."""


class IllegalTransitionError(MlcError):
    """A life-cycle transition that the table forbids."""


class RuntimeSelectionError(MlcError):
    """Runtime tags matched none or several runtimes."""


class RuntimeFullError(RuntimeSelectionError):
    """A runtime serves as many models as its capacity allows (MLC_RUNTIME_MAX_MODELS, or its
    memory budget): another model is refused before anything changes."""


class RuntimePinnedError(MlcError):
    """A runtime's URL is pinned at its first registration; another URL needs an explicit
    re-pin."""


class DeployRefusedError(MlcError):
    """The registry does not allow this version on this runtime (its state, or the request
    differs from the registered version)."""


class AuditChainError(MlcError):
    """The audit log was edited or rows were removed."""


class AuditKeyError(MlcError):
    """The audit log cannot be written (or checked) without its key, nor with another key."""


class SandboxUnavailableError(MlcError):
    """Package code would run uncontained: no sandbox here, and running without one is off."""


class TransientError(MlcError):
    """I/O that may succeed when tried again."""


class RuntimeUnavailableError(TransientError):
    """A runtime did not answer."""


class DeliveryFailedError(TransientError):
    """A channel failed in a way that may pass: 5xx, timeout, connection refused."""


class PermanentDeliveryError(MlcError):
    """A channel refused the request; sending it again would fail the same way."""


class PrefectAuthError(MlcError):
    """The Prefect server answered 401: no auth string, or not its auth string."""


class AccessDeniedError(MlcError):
    """The control-plane API did not authenticate the caller, or the caller lacks the scope."""


class PolicyError(InvalidInputError):
    """The policy file does not cover a case it must (e.g. no approval rule for a model)."""


class TaskClosedError(MlcError):
    """A decision on a human task that is no longer open."""


class ChangePendingError(MlcError):
    """A model has a governance change waiting for approval; a second waits until it is
    decided."""


class SmokeTestError(MlcError):
    """A runtime accepted a version but its health or predictions are not what they must be."""


class ChampionChangedError(MlcError):
    """A challenger may replace only the champion it was compared with."""


class StepAbortedError(MlcError):
    """A reviewer aborted a failed step, or nobody reviewed it in time: the process ends
    failed (flows/steps.py `reviewed`)."""


class StartupError(MlcError):
    """A service `mlc up` starts (the Prefect server, a runtime, the API, the deployments)
    did not answer in time, exited first, or found its address already answering."""


class RuntimeRefusedError(MlcError):
    """A runtime answered a request with a 4xx: its message says why (not retried: asking
    again gets the same answer)."""


class TaskNotWaitingError(MlcError):
    """A decision for a human task whose flow run is not waiting for it: the run is gone,
    was never recorded, or is in another state (`mlc up` restarts waiting runs)."""
