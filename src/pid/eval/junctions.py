"""Junction / bridge classification scores for the meeting points of pipes.

Predicted points are matched one-to-one to true points within a radius (Hungarian assignment
on distance); each true point then lands in one column of a confusion matrix: the kind it was
predicted as, or `missed`. Unmatched predictions fill the `spurious` row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pid.core.formats.junctions import JunctionPoint
from pid.eval.counts import safe_ratio
from pid.eval.matching import match_points

TRUE_KINDS = ("junction", "bridge")
SPURIOUS = "spurious"
PRED_KINDS = ("junction", "bridge", "ambiguous")
MISSED = "missed"
ROWS = (*TRUE_KINDS, SPURIOUS)
COLUMNS = (*PRED_KINDS, MISSED)

#: A true point labelled `ambiguous` is a "don't care" region (like COCO's crowd boxes): it is
#: neither scored nor makes a prediction matched to it spurious.
IGNORED_TRUE_KIND = "ambiguous"

Confusion = dict[str, dict[str, int]]


def empty_confusion() -> Confusion:
    """Return a confusion matrix (rows x columns) of zeros."""
    return {row: dict.fromkeys(COLUMNS, 0) for row in ROWS}


@dataclass(frozen=True, slots=True)
class JunctionScore:
    """Confusion of true meeting points (rows) against predicted kinds (columns).

    Rows are `junction`, `bridge` (true kinds) and `spurious` (unmatched predictions); columns
    are `junction`, `bridge`, `ambiguous` (predicted kinds) and `missed`.
    """

    confusion: Confusion = field(default_factory=empty_confusion)

    @property
    def n_true(self) -> int:
        return sum(sum(self.confusion[row].values()) for row in TRUE_KINDS)

    @property
    def n_pred(self) -> int:
        return sum(self.confusion[row][col] for row in ROWS for col in PRED_KINDS)

    @property
    def correct(self) -> int:
        return sum(self.confusion[kind][kind] for kind in TRUE_KINDS)

    @property
    def accuracy(self) -> float:
        """Correctly classified true points / true points (missed and ambiguous are wrong)."""
        return safe_ratio(self.correct, self.n_true, other=self.n_pred)

    @property
    def ambiguous_rate(self) -> float:
        """True points matched to an `ambiguous` prediction / true points."""
        matched_ambiguous = sum(self.confusion[kind]["ambiguous"] for kind in TRUE_KINDS)
        return matched_ambiguous / self.n_true if self.n_true else 0.0

    def recall(self, kind: str) -> float | None:
        """Return the share of true `kind` points predicted as `kind` (None without any)."""
        row = self.confusion[kind]
        total = sum(row.values())
        return row[kind] / total if total else None

    def __add__(self, other: JunctionScore) -> JunctionScore:
        return JunctionScore(
            {
                row: {col: self.confusion[row][col] + other.confusion[row][col] for col in COLUMNS}
                for row in ROWS
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "confusion": {row: dict(cols) for row, cols in self.confusion.items()},
            "n_true": self.n_true,
            "n_pred": self.n_pred,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "ambiguous_rate": self.ambiguous_rate,
            "recall": {kind: self.recall(kind) for kind in TRUE_KINDS},
        }


def score_junctions(
    pred: Sequence[JunctionPoint], truth: Sequence[JunctionPoint], *, radius: float
) -> JunctionScore:
    """Match predicted meeting points to true ones and tally the confusion matrix.

    Parameters
    ----------
    pred, truth : sequences of JunctionPoint
        Predicted and true points (pixels).
    radius : float
        Largest distance in pixels between matched points; see `match_radius`.

    Returns
    -------
    JunctionScore
    """
    confusion = empty_confusion()
    pairs = match_points([p.point for p in pred], [t.point for t in truth], radius)
    pred_matched = {i for i, _ in pairs}
    true_matched = {j for _, j in pairs}
    for i, j in pairs:
        if truth[j].kind != IGNORED_TRUE_KIND:
            confusion[truth[j].kind][pred[i].kind] += 1
    for j, point in enumerate(truth):
        if j not in true_matched and point.kind != IGNORED_TRUE_KIND:
            confusion[point.kind][MISSED] += 1
    for i, point in enumerate(pred):
        if i not in pred_matched:
            confusion[SPURIOUS][point.kind] += 1
    return JunctionScore(confusion)


#: Matching radius in line widths, and its floor in pixels.
RADIUS_LINE_WIDTHS = 3.0
MIN_RADIUS_PX = 6.0


def match_radius(line_width: float) -> float:
    """Return the point matching radius: 3 line widths, at least 6 px."""
    return max(RADIUS_LINE_WIDTHS * line_width, MIN_RADIUS_PX)
