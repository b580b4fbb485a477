"""Ruled regions of a drawing: data tables, revision tables, description headers.

Their rules are long straight ink, as pipes are, so left in the pipe mask a table becomes a grid
of pipes full of junctions and crossings. They are told apart by structure, not by position:

Strategy. Long horizontal and vertical strokes are kept by morphological opening (after a
closing along the same axis, which bridges the short breaks of a scan). Strokes touching each
other form a candidate grid. A grid is a ruled region when

- at least three of its horizontal strokes and two of its vertical ones (or two and three) run
  across nearly its whole width or height (rotated rules stay one stroke each, so a scan's
  skew does not split them);
- nearly all of its stroke ink lies on those full rules, where a pipe network has many
  partial runs;
- its rows (or, for a description header, its columns) are evenly spaced and nearly every
  band between them holds text, where the parallel runs of a pipe rack are irregular and empty;
- everything else inside it is small ink: text, not pipes or dashes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

#: A region as [x1, y1, x2, y2] in pixels (x2, y2 exclusive).
Region = tuple[int, int, int, int]
#: Pieces of one rule lie within this distance of each other across it, pixels.
RULE_LINE_TOLERANCE_PX = 4
#: Smallest character, pixels (long side), and the least text ink of a written row or column.
MIN_CHARACTER_PX = 7
MIN_CELL_TEXT_PX = 40
#: Thickest straight bar, pixels (pipes are 1 to 4 px): thicker blobs may be characters.
MAX_RULE_THICKNESS_PX = 6


@dataclass(frozen=True, slots=True)
class RegionOptions:
    #: Shortest stroke kept as a rule candidate, pixels.
    min_rule_px: int = 40
    #: Breaks bridged along a rule before it is measured (scan breaks are 1-3 px).
    bridge_px: int = 7
    #: A full rule runs across at least this share of the grid's width (or height).
    full_share: float = 0.75
    #: Share of the grid's stroke ink that must lie on full rules.
    rule_ink_share: float = 0.5
    #: Largest distance between neighbouring rows of a table, pixels.
    max_rule_gap_px: int = 140
    #: Largest width of the columns of a one-row table (a description header), pixels.
    max_column_gap_px: int = 400
    #: Evenly spaced: the widest gap between rules at most this many times the narrowest.
    max_gap_ratio: float = 1.6
    #: Share of the bands between rules that hold text.
    text_band_share: float = 0.7
    #: Longest side of any other ink blob inside (characters), pixels.
    max_text_px: int = 60
    #: Smallest grid, pixels.
    min_size_px: tuple[int, int] = (60, 30)
    #: What is removed around a region's box, pixels.
    pad_px: int = 3


def ruled_regions(ink: NDArray[np.bool_], *, options: RegionOptions | None = None) -> list[Region]:
    """Boxes of the ruled regions (tables, description headers) in an ink mask.

    Parameters
    ----------
    ink
        (H, W) bool ink of the drawing, symbols and sheet frame already taken out.
    options
        Thresholds of the method.

    Returns
    -------
    Region boxes [x1, y1, x2, y2], padded by `options.pad_px`, in reading order.
    """
    opt = options or RegionOptions()
    u8 = ink.astype(np.uint8)
    # Characters first out of the way: a closing along a row would merge them into strokes.
    lines = _without_small_blobs(u8, opt.max_text_px)
    horizontal = _strokes(lines, (opt.min_rule_px, 1), (opt.bridge_px, 1))
    vertical = _strokes(lines, (1, opt.min_rule_px), (1, opt.bridge_px))
    grids = cv2.dilate(horizontal | vertical, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grids, connectivity=8)
    # Every stroke measured once, by the grid it belongs to: a pipe network's grid covers
    # much of the sheet, and cutting its window out per grid would cost more than the rest.
    rows_of = _StrokeTable(horizontal, 1, labels)
    cols_of = _StrokeTable(vertical, 0, labels)
    h, w = ink.shape
    found = []
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        if bw < opt.min_size_px[0] or bh < opt.min_size_px[1]:
            continue
        rows = rows_of.full_rules(i, x, y, bw, opt.full_share)
        cols = cols_of.full_rules(i, x, y, bh, opt.full_share)
        if not _ruled(rows, cols, opt):
            continue
        window = (slice(y, y + bh), slice(x, x + bw))
        text = (u8[window] > 0) & ~(grids[window] > 0)
        if _written(rows.centres, cols.centres, text, opt) and _only_text_inside(text, opt):
            p = opt.pad_px
            found.append((max(x - p, 0), max(y - p, 0), min(x + bw + p, w), min(y + bh + p, h)))
    return sorted(found, key=lambda r: (r[1], r[0]))


def region_mask(regions: list[Region], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """(H, W) bool, set inside every region."""
    mask = np.zeros(shape, dtype=bool)
    for x1, y1, x2, y2 in regions:
        mask[y1:y2, x1:x2] = True
    return mask


def _without_small_blobs(ink: NDArray[np.uint8], longest: int) -> NDArray[np.uint8]:
    _n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    small = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) <= longest
    small[0] = True
    out: NDArray[np.uint8] = np.where(small[labels], 0, ink).astype(np.uint8)
    return out


def _strokes(
    ink: NDArray[np.uint8], length: tuple[int, int], bridge: tuple[int, int]
) -> NDArray[np.uint8]:
    """Ink of straight strokes at least `length` long along one axis, breaks bridged first."""
    closed = cv2.morphologyEx(
        ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, bridge)
    )
    opened = cv2.morphologyEx(
        closed, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, length)
    )
    out: NDArray[np.uint8] = np.asarray(opened, dtype=np.uint8)
    return out


@dataclass(frozen=True, slots=True)
class _Rules:
    """The full rules of one grid along one axis: their centres across the axis (in the grid's
    window), the pixels on them, and all the grid's stroke pixels along that axis."""

    centres: list[float]
    on_full: int
    strokes: int


class _StrokeTable:
    """The straight strokes along one axis (1: horizontal), each with its start and extent
    along the axis, its centre across it, its pixels, and the grid it belongs to."""

    def __init__(self, strokes: NDArray[np.uint8], axis: int, grid_labels: NDArray[Any]) -> None:
        n, labels, stats, centroids = cv2.connectedComponentsWithStats(strokes, connectivity=8)
        self.axis = axis
        self.start = stats[1:, cv2.CC_STAT_LEFT if axis == 1 else cv2.CC_STAT_TOP]
        self.extent = stats[1:, cv2.CC_STAT_WIDTH if axis == 1 else cv2.CC_STAT_HEIGHT]
        self.across = centroids[1:, 1 if axis == 1 else 0]
        self.area = stats[1:, cv2.CC_STAT_AREA]
        # Strokes lie inside the dilated grids, so all pixels of one stroke carry the same grid
        # label: any of them says which grid it is.
        on = np.flatnonzero(labels)
        grid_of = np.zeros(n, dtype=np.int64)
        grid_of[labels.flat[on]] = grid_labels.flat[on]
        grid = grid_of[1:]
        order = np.argsort(grid, kind="stable")
        self._order = order
        self._bounds = np.searchsorted(grid[order], np.arange(grid_labels.max() + 2))

    def full_rules(self, grid: int, x: int, y: int, span: int, share: float) -> _Rules:
        """The rules of `grid` (window top-left x, y) crossing `share` of its `span`.

        A rule may come in pieces (a scan's breaks, a faint line): pieces on one line, within
        `RULE_LINE_TOLERANCE_PX` of each other across it, count together by the union of their
        extents.
        """
        mine = self._order[self._bounds[grid] : self._bounds[grid + 1]]
        if mine.size == 0:
            return _Rules([], 0, 0)
        offset_across, offset_along = (y, x) if self.axis == 1 else (x, y)
        start = self.start[mine] - offset_along
        extent, area = self.extent[mine], self.area[mine]
        across = self.across[mine] - offset_across
        order = np.argsort(across)
        centres, on_full = [], 0
        group = [int(order[0])]
        for k in [*order[1:].tolist(), None]:
            if k is not None and across[k] - across[group[-1]] <= RULE_LINE_TOLERANCE_PX:
                group.append(int(k))
                continue
            if _union_length(start[group], extent[group]) >= share * span:
                centres.append(float(np.average(across[group], weights=area[group])))
                on_full += int(area[group].sum())
            if k is not None:
                group = [int(k)]
        return _Rules(centres, on_full, int(area.sum()))


def _union_length(starts: NDArray[Any], extents: NDArray[Any]) -> int:
    """Length covered by the intervals [start, start + extent)."""
    covered, reach = 0, -1
    for lo, length in sorted(zip(starts.tolist(), extents.tolist(), strict=True)):
        hi = lo + length
        if hi > reach:
            covered += hi - max(lo, reach)
            reach = hi
    return covered


def _ruled(rows: _Rules, cols: _Rules, opt: RegionOptions) -> bool:
    """Enough full rules both ways, carrying nearly all of the grid's stroke ink."""
    if len(rows.centres) < 2 or len(cols.centres) < 2:
        return False
    if len(rows.centres) + len(cols.centres) < 5:
        return False
    return rows.on_full + cols.on_full >= opt.rule_ink_share * max(rows.strokes + cols.strokes, 1)


def _written(
    rows: list[float], cols: list[float], text: NDArray[np.bool_], opt: RegionOptions
) -> bool:
    """A table's rows (or a header's columns) are evenly spaced and each holds text between
    the rules across them: every cell is written in. The parallel runs of a pipe rack are
    irregular or empty there."""
    text = _characters(text)
    across_rows = text[:, round(cols[0]) : round(cols[-1]) + 1].sum(axis=1)
    across_cols = text[round(rows[0]) : round(rows[-1]) + 1, :].sum(axis=0)
    return _regular_with_text(rows, across_rows, opt.max_rule_gap_px, opt) or _regular_with_text(
        cols, across_cols, opt.max_column_gap_px, opt
    )


def _characters(ink: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Ink of blobs shaped like characters: not thin straight bars (the short pipes between
    two parallel runs, dashes)."""
    _n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    long_side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    short_side = np.minimum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    bar = (short_side <= MAX_RULE_THICKNESS_PX) & (long_side >= 3 * short_side) & (long_side >= 15)
    # Specks and the corners a stroke's opening leaves behind are smaller than any character.
    speck = long_side < MIN_CHARACTER_PX
    drop = bar | speck
    drop[0] = True
    out: NDArray[np.bool_] = ~drop[labels]
    return out


def _regular_with_text(
    rules: list[float], inked: NDArray[np.int64], max_gap: int, opt: RegionOptions
) -> bool:
    """Whether `rules` (three or more) are evenly and closely spaced and the bands between
    them hold text (`inked`: per row or column of the window, the text pixels there)."""
    if len(rules) < 3:
        return False
    gaps = np.diff(rules)
    if gaps.max() > max_gap or gaps.max() > opt.max_gap_ratio * max(gaps.min(), 1.0):
        return False
    bands = [
        inked[round(a) + 2 : round(b) - 1].sum() >= MIN_CELL_TEXT_PX
        for a, b in itertools.pairwise(rules)
    ]
    return float(np.mean(bands)) >= opt.text_band_share


def _only_text_inside(rest: NDArray[np.bool_], opt: RegionOptions) -> bool:
    _n, _labels, stats, _ = cv2.connectedComponentsWithStats(rest.astype(np.uint8), connectivity=8)
    longest = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    return bool(longest.size == 0 or longest.max() <= opt.max_text_px)
