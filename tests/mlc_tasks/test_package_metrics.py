"""A package's own metrics function runs in its own process; errors name it."""

from __future__ import annotations

import pytest

from mlc_tasks.errors import InvalidPackageError
from mlc_tasks.package_metrics import run_metrics_function

STANDARD = {"accuracy", "roc_auc"}
CODE = """
def business(y_true, y_pred, y_score):
    return {"hits": sum(t == p for t, p in zip(y_true, y_pred)), "top": max(y_score)}
"""


def run(code: str, reference: str = "m.py:business", timeout: float = 60) -> dict[str, float]:
    return run_metrics_function(reference, code, [1, 0, 1], [1, 1, 1], [0.9, 0.6, 0.8],
                                STANDARD, timeout=timeout)


def test_metrics_come_back_as_numbers() -> None:
    assert run(CODE) == {"hits": 2.0, "top": 0.9}


@pytest.mark.parametrize(("code", "reference", "message"), [
    (CODE, "m.py:missing", "m.py defines no function missing"),
    ("def business(a, b, c):\n    return 1 / 0\n", "m.py:business",
     "m.py:business failed: ZeroDivisionError: division by zero"),
    ("def business(a, b, c):\n    return {'roc_auc': 1}\n", "m.py:business",
     "'roc_auc' is a standard metric"),
    ("def business(a, b, c):\n    return {'x': float('nan')}\n", "m.py:business",
     "metric 'x' is nan"),
    (CODE, "m.txt:business", "field 'metrics_function'"),
])
def test_errors_name_the_function(code: str, reference: str, message: str) -> None:
    with pytest.raises(InvalidPackageError, match=message.replace("(", r"\(")):
        run(code, reference)


def test_a_function_that_never_returns_is_stopped() -> None:
    with pytest.raises(InvalidPackageError, match="did not finish within 2 s"):
        run("def business(a, b, c):\n    while True:\n        pass\n", timeout=2)


def test_it_cannot_see_our_settings_or_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_ADMIN_TOKEN", "secret-token")
    code = ("import os\ndef business(a, b, c):\n"
            "    return {'n': len(os.environ.get('MLC_ADMIN_TOKEN', ''))}\n")
    assert run(code) == {"n": 0.0}
