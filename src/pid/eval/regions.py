"""Scores of the regions a pipe mask must leave out: tables, description headers, notes.

A true ruled region counts as found when predicted regions cover at least `COVER` of its box;
a true region of any kind counts as cleared when the predicted pipe mask has no pixel inside
its box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pid.core.formats.regions import Region

#: Share of a true region's box that predicted regions must cover for it to count as found.
COVER = 0.9


@dataclass(frozen=True, slots=True)
class RegionScore:
    ruled: int = 0  # true ruled regions
    found: int = 0  # of them, covered by predicted regions
    regions: int = 0  # true regions of every kind
    cleared: int = 0  # of them, with no predicted pipe pixel inside

    def __add__(self, other: RegionScore) -> RegionScore:
        return RegionScore(
            self.ruled + other.ruled,
            self.found + other.found,
            self.regions + other.regions,
            self.cleared + other.cleared,
        )

    @property
    def recall(self) -> float:
        return self.found / self.ruled if self.ruled else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruled": self.ruled,
            "found": self.found,
            "recall": self.recall,
            "regions": self.regions,
            "cleared": self.cleared,
            "left_in_pipe_mask": self.regions - self.cleared,
        }


def score_regions(
    pred: list[Region], truth: list[Region], pipe_mask: NDArray[np.bool_] | None
) -> RegionScore:
    """Found and cleared counts of the true regions of one sheet."""
    ruled = [r for r in truth if r.ruled]
    found = sum(_covered(r, pred) >= COVER for r in ruled)
    cleared = sum(pipe_mask is None or not _inside(pipe_mask, r).any() for r in truth)
    if pipe_mask is None:
        cleared = 0
    return RegionScore(len(ruled), found, len(truth), cleared)


def _covered(region: Region, pred: list[Region]) -> float:
    """Share of `region`'s box that the union of `pred` boxes covers."""
    x, y, w, h = region.bbox
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    cover = np.zeros((int(np.ceil(y + h)) - y0, int(np.ceil(x + w)) - x0), dtype=bool)
    for p in pred:
        px, py, pw, ph = p.bbox
        c1, r1 = max(int(px) - x0, 0), max(int(py) - y0, 0)
        c2, r2 = int(np.ceil(px + pw)) - x0, int(np.ceil(py + ph)) - y0
        if c2 > 0 and r2 > 0:
            cover[r1:r2, c1:c2] = True
    return float(cover.mean()) if cover.size else 0.0


def _inside(mask: NDArray[np.bool_], region: Region) -> NDArray[np.bool_]:
    x, y, w, h = region.bbox
    return mask[max(int(y), 0) : int(np.ceil(y + h)), max(int(x), 0) : int(np.ceil(x + w))]
