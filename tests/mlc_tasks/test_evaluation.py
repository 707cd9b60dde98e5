from datetime import datetime

import pandas as pd
import pytest

from mlc_tasks.errors import InvalidInputError
from mlc_tasks.evaluation import check_thresholds, labelled_frame, result_table
from mlc_tasks.policy import Threshold
from mlc_tasks.registry import TestResult
from mlc_tasks.scoring import Column


@pytest.mark.parametrize(
    ("value", "threshold", "op", "passed"),
    [(0.8, Threshold(min=0.7), ">=", True), (0.7, Threshold(min=0.7), ">=", True),
     (0.69, Threshold(min=0.7), ">=", False), (50.0, Threshold(max=40), "<=", False),
     (40.0, Threshold(max=40), "<=", True), (None, Threshold(min=0.1), ">=", False),
     (float("nan"), Threshold(max=1), "<=", False)],
)
def test_check_thresholds(value, threshold, op, passed) -> None:
    metrics = {} if value is None else {"m": value}
    [check] = check_thresholds(metrics, {"m": threshold})
    assert (check.op, check.passed) == (op, passed)


def test_threshold_needs_exactly_one_bound() -> None:
    with pytest.raises(ValueError, match="exactly one of 'min' and 'max'"):
        Threshold(min=1, max=2)


@pytest.mark.parametrize(
    ("frame", "message"),
    [(pd.DataFrame(), "no rows"), (pd.DataFrame({"x": [1.0]}), "label column 'y' is missing"),
     (pd.DataFrame({"x": [1.0], "y": [None]}), "label column 'y' is empty"),
     (pd.DataFrame({"z": [1.0], "y": [1]}), "column 'x' is missing"),
     (pd.DataFrame({"x": ["a"], "y": [1]}), "column 'x' expects float")],
)
def test_bad_labelled_data_names_file_and_column(frame, message) -> None:
    with pytest.raises(InvalidInputError, match=f"test.csv: .*{message}"):
        labelled_frame(frame, [Column(name="x", dtype="float")], "y", "test.csv")


def test_result_table_puts_thresholds_beside_metrics() -> None:
    checks = check_thresholds({"mae": 50.0}, {"mae": Threshold(max=40)})
    result = TestResult(id="r", version_id="v", kind="test", dataset_uri="d",
                        dataset_sha256="0" * 64, metrics={"mae": 50.0, "r2": 0.9},
                        thresholds=checks, passed=False, report_uri=None,
                        created_at=datetime(2026, 1, 1))
    assert result_table(result) == [
        {"metric": "mae", "value": 50.0, "threshold": "<= 40", "passed": False},
        {"metric": "r2", "value": 0.9}]


def test_rows_whose_outcome_is_not_known_yet_are_left_out() -> None:
    import pandas as pd

    from mlc_tasks.evaluation import labelled_frame
    from mlc_tasks.scoring import Column

    data = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1, None, 0]})
    features, labels = labelled_frame(data, [Column(name="x", dtype="float")], "y", "d.csv")
    assert list(features["x"]) == [1.0, 3.0] and list(labels) == [1, 0]
