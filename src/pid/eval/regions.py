"""Scores of the regions a pipe mask must leave out: tables, description headers, notes.

A true ruled region counts as found when predicted regions cover at least `COVER` of its box;
a true region of any kind counts as cleared when the predicted pipe mask has no pixel inside
its box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
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


@dataclass(frozen=True, slots=True)
class LeaderScore:
    leaders: int = 0  # true leader lines
    found: int = 0  # of them, overlapped by a predicted leader
    as_edges: int = 0  # of them, followed by a predicted graph edge

    def __add__(self, other: LeaderScore) -> LeaderScore:
        return LeaderScore(
            self.leaders + other.leaders,
            self.found + other.found,
            self.as_edges + other.as_edges,
        )

    @property
    def recall(self) -> float:
        return self.found / self.leaders if self.leaders else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "leaders": self.leaders,
            "found": self.found,
            "recall": self.recall,
            "as_edges": self.as_edges,
        }


#: A predicted edge within this distance of a leader's middle follows the leader, pixels.
EDGE_ON_LEADER_PX = 2.5


def score_leaders(
    pred: list[Region], truth: list[Region], graph: nx.MultiGraph | None
) -> LeaderScore:
    """Found and became-an-edge counts of the true leader lines of one sheet."""
    leaders = [r for r in truth if r.kind == "leader" and r.line is not None]
    boxes = [p for p in pred if p.kind == "leader"]
    found = sum(any(_overlap(r, p) for p in boxes) for r in leaders)
    polylines = (
        [np.asarray(d["polyline"], dtype=np.float64) for _, _, d in graph.edges(data=True)]
        if graph is not None
        else []
    )
    as_edges = sum(_followed(r, polylines) for r in leaders)
    return LeaderScore(len(leaders), found, as_edges)


def _overlap(a: Region, b: Region) -> bool:
    ax, ay, aw, ah = a.bbox
    bx, by, bw, bh = b.bbox
    return min(ax + aw, bx + bw) > max(ax, bx) and min(ay + ah, by + bh) > max(ay, by)


def _followed(leader: Region, polylines: list[NDArray[np.float64]]) -> bool:
    assert leader.line is not None
    middle = (np.asarray(leader.line[0]) + np.asarray(leader.line[1])) / 2
    return any(_distance(middle, line) <= EDGE_ON_LEADER_PX for line in polylines)


def _distance(point: NDArray[np.float64], polyline: NDArray[np.float64]) -> float:
    """Shortest distance from `point` to the segments of `polyline`."""
    a, b = polyline[:-1], polyline[1:]
    ab = b - a
    t = np.clip(((point - a) * ab).sum(axis=1) / np.maximum((ab * ab).sum(axis=1), 1e-12), 0, 1)
    closest = a + ab * t[:, None]
    return float(np.hypot(*(closest - point).T).min())


def score_regions(
    pred: list[Region], truth: list[Region], pipe_mask: NDArray[np.bool_] | None
) -> RegionScore:
    """Found and cleared counts of the true regions of one sheet."""
    truth = [r for r in truth if r.kind != "leader"]
    ruled = [r for r in truth if r.ruled]
    found = sum(_covered(r, pred) >= COVER for r in ruled)
    # With no predicted mask nothing counts as cleared: the prediction is missing.
    cleared = 0 if pipe_mask is None else sum(not _inside(pipe_mask, r).any() for r in truth)
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
