"""A class nobody reviewed, for the unreviewed-types test."""

from sklearn.base import BaseEstimator


class HomeMadeEstimator(BaseEstimator):
    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def fit(self, X, y=None):  # noqa: N803 — scikit-learn's convention
        return self

    def predict(self, X):  # noqa: N803
        return X.iloc[:, 0] * self.factor
