"""Life-cycle states of a model version and the only moves allowed between them."""

from __future__ import annotations

from enum import StrEnum

from mlc_tasks.errors import IllegalTransitionError


class State(StrEnum):
    SUBMITTED = "submitted"
    TRAINED = "trained"
    TESTED = "tested"
    APPROVED = "approved"
    DEPLOYED = "deployed"
    RETIRED = "retired"
    REJECTED = "rejected"
    FAILED = "failed"


TRANSITIONS: dict[State, frozenset[State]] = {
    # A package that brings its own artifact skips training.
    State.SUBMITTED: frozenset({State.TRAINED, State.TESTED, State.REJECTED, State.FAILED}),
    State.TRAINED: frozenset({State.TESTED, State.REJECTED, State.FAILED}),
    State.TESTED: frozenset({State.APPROVED, State.REJECTED, State.FAILED}),
    State.APPROVED: frozenset({State.DEPLOYED, State.REJECTED, State.FAILED}),
    State.DEPLOYED: frozenset({State.RETIRED}),
    State.RETIRED: frozenset(),
    State.REJECTED: frozenset(),
    State.FAILED: frozenset(),
}

TERMINAL = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)


def check_transition(current: State, target: State) -> None:
    """Raise IllegalTransitionError unless the table allows current → target."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (terminal state)"
        raise IllegalTransitionError(
            f"illegal transition {current} → {target}; allowed from {current}: {allowed}"
        )


def check_deployable(state: State, production: bool) -> None:
    """Production takes only approved (or already deployed) versions; other runtimes take any
    version that is still alive, so that QA can try what is not yet approved. Whether a runtime
    is production is the caller's to say: its tags hold all the policy's production tags
    (run_requests.is_production), whatever they are named."""
    if state in TERMINAL:
        raise IllegalTransitionError(f"a {state} version cannot be deployed")
    if production and state not in (State.APPROVED, State.DEPLOYED):
        raise IllegalTransitionError(
            f"production takes approved versions only; this version is {state}"
        )


def state_after_deploy(state: State, production: bool) -> State:
    """The state a version has after a deployment: approved becomes deployed in production; a
    version on a non-production runtime (QA) keeps its state."""
    check_deployable(state, production)
    return State.DEPLOYED if state == State.APPROVED and production else state
