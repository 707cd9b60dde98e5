import pytest

from mlc_tasks.errors import IllegalTransitionError
from mlc_tasks.lifecycle import State, check_deployable, check_transition, state_after_deploy

S = State
ALLOWED = {
    (S.SUBMITTED, S.TRAINED), (S.SUBMITTED, S.TESTED), (S.SUBMITTED, S.REJECTED),
    (S.SUBMITTED, S.FAILED), (S.TRAINED, S.TESTED), (S.TRAINED, S.REJECTED),
    (S.TRAINED, S.FAILED), (S.TESTED, S.APPROVED), (S.TESTED, S.REJECTED), (S.TESTED, S.FAILED),
    (S.APPROVED, S.DEPLOYED), (S.APPROVED, S.REJECTED), (S.APPROVED, S.FAILED),
    (S.DEPLOYED, S.RETIRED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_transition_table(current: State, target: State) -> None:
    if (current, target) in ALLOWED:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransitionError, match=f"{current} → {target}"):
            check_transition(current, target)


@pytest.mark.parametrize(
    ("state", "production", "after"),
    [
        (S.SUBMITTED, False, S.SUBMITTED),
        (S.TESTED, False, S.TESTED),
        (S.APPROVED, False, S.APPROVED),  # deployed means: in production
        (S.APPROVED, True, S.DEPLOYED),
        (S.DEPLOYED, True, S.DEPLOYED),
    ],
)
def test_state_after_deploy(state: State, production: bool, after: State) -> None:
    assert state_after_deploy(state, production) == after


@pytest.mark.parametrize(
    ("state", "production"),
    [(S.SUBMITTED, True), (S.TESTED, True), (S.REJECTED, False), (S.RETIRED, False),
     (S.FAILED, True)],
)
def test_not_deployable(state: State, production: bool) -> None:
    with pytest.raises(IllegalTransitionError):
        check_deployable(state, production)
