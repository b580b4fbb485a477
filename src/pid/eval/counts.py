"""Raw match counts and the ratios derived from them.

Every section of a report keeps its raw counts so that several sheets can be pooled (micro
average) by adding counts, never by averaging ratios.

Conventions for empty denominators: nothing to find and nothing found scores 1.0; something
found where nothing was to be found (or the reverse) scores 0.0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def safe_ratio(num: float, den: float, *, other: float) -> float:
    """Return `num / den`; with `den == 0`, 1.0 when `other` is also 0, else 0.0.

    `other` is the opposite side's count: for a precision, the number of true items; for a
    recall, the number of predicted items.
    """
    if den > 0:
        return float(num) / float(den)
    return 1.0 if other == 0 else 0.0


def f1_score(precision: float, recall: float) -> float:
    """Return the harmonic mean of precision and recall (0.0 when both are 0)."""
    total = precision + recall
    return 2.0 * precision * recall / total if total > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Counts:
    """Matches between a prediction and the truth.

    Attributes
    ----------
    tp : int
        Predicted items matched to a true item.
    n_pred : int
        Predicted items.
    n_true : int
        True items.
    """

    tp: int = 0
    n_pred: int = 0
    n_true: int = 0

    @property
    def precision(self) -> float:
        return safe_ratio(self.tp, self.n_pred, other=self.n_true)

    @property
    def recall(self) -> float:
        return safe_ratio(self.tp, self.n_true, other=self.n_pred)

    @property
    def f1(self) -> float:
        return f1_score(self.precision, self.recall)

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.n_pred + other.n_pred, self.n_true + other.n_true)

    @staticmethod
    def total(items: Iterable[Counts]) -> Counts:
        """Return the sum of `items` (zero counts for none)."""
        out = Counts()
        for item in items:
            out = out + item
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "n_pred": self.n_pred,
            "n_true": self.n_true,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }
