"""Classical pipe mask: the baseline a learned segmenter has to beat.

Strategy. Ink is found with a threshold relative to the local background, so uneven scans
binarise like clean sheets. Then everything that is ink but not pipe is taken away:

- symbol boxes (the node mask) and the sheet frame (border and title block, recognised as long
  pieces of ink reaching into the band along the sheet's edges, where no pipe goes);
- ruled regions (data tables, revision tables, description headers), found by their structure
  (pid.vision.regions), with everything inside them;
- text: characters are small connected blobs that sit in rows; blobs of text size are merged
  along their row and removed when the row looks like a line of text rather than a dash train
  (a dash train is thin and its blobs are long and evenly spaced along one axis).

What is left is pipe ink: solid runs, the dashes of signal lines, dots and hop-over arcs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from pid.vision.leaders import LeaderBox, find_leaders
from pid.vision.regions import Region, region_mask, ruled_regions


@dataclass(frozen=True, slots=True)
class PipeMaskOptions:
    background_window: int = 41
    ink_contrast: float = 0.22
    #: A frame piece reaches into the edge band and is at least this share of the sheet long.
    frame_min_share: float = 0.2
    text_max_height: int = 20
    text_max_width: int = 22
    dash_elongation: float = 2.6
    dash_max_thickness: int = 5
    stray_max_size: int = 30
    #: Blobs of run-together characters: at least this tall, at most this long and this full.
    word_min_height: int = 7
    word_max_width: int = 100
    word_max_fill: float = 0.8
    #: Take ruled regions (tables, description headers) out; off only to measure their cost.
    remove_ruled_regions: bool = True


def normalise_background(gray: NDArray[np.uint8], window: int) -> NDArray[np.float32]:
    """Gray image divided by its local paper level: paper ~1.0, ink well below."""
    small = cv2.resize(gray, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    k = max(3, window // 4) | 1
    # The paper level is the local maximum: ink is darker than paper everywhere.
    paper = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    paper = cv2.GaussianBlur(paper, (0, 0), k / 2.0)
    paper_full = cv2.resize(paper, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    ratio = gray.astype(np.float32) / np.maximum(paper_full.astype(np.float32), np.float32(1.0))
    out: NDArray[np.float32] = ratio.astype(np.float32)
    return out


def binarise(gray: NDArray[np.uint8], options: PipeMaskOptions) -> NDArray[np.bool_]:
    """Ink pixels: clearly darker than the paper around them."""
    level = normalise_background(gray, options.background_window)
    ink: NDArray[np.bool_] = level < (1.0 - options.ink_contrast)
    return ink


def _remove_frame(ink: NDArray[np.bool_], min_share: float) -> NDArray[np.bool_]:
    """Drop the border and the title block on it: long ink reaching into the edge band."""
    _n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    h, w = ink.shape
    zone = 0.025 * min(h, w)
    x1 = stats[:, cv2.CC_STAT_LEFT]
    y1 = stats[:, cv2.CC_STAT_TOP]
    x2 = x1 + stats[:, cv2.CC_STAT_WIDTH]
    y2 = y1 + stats[:, cv2.CC_STAT_HEIGHT]
    # The frame lies in the band along the sheet's edges, where no pipe goes; a scan may break
    # it into pieces, so any long piece reaching into that band is frame.
    in_band = (x1 <= zone) | (y1 <= zone) | (x2 >= w - zone) | (y2 >= h - zone)
    long_piece = (x2 - x1 >= min_share * w) | (y2 - y1 >= min_share * h)
    wide = in_band & long_piece
    wide[0] = False
    frame = wide[labels]
    out: NDArray[np.bool_] = ink & ~frame & ~_frame_cells(frame)
    return out


def _frame_cells(frame: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The small areas the frame encloses: title block cells and the zone margin.

    Their text is not pipe. The drawing area is the largest enclosed area; the frame is first
    thickened a little so that scan breaks in its lines do not join a cell to it.
    """
    sealed = cv2.dilate(frame.astype(np.uint8), np.ones((5, 5), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - sealed, connectivity=4)
    if n <= 2:
        return np.zeros_like(frame)
    h, w = frame.shape
    x1, y1 = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    x2 = x1 + stats[:, cv2.CC_STAT_WIDTH]
    y2 = y1 + stats[:, cv2.CC_STAT_HEIGHT]
    area = stats[:, cv2.CC_STAT_AREA]
    enclosed = (x1 > 0) & (y1 > 0) & (x2 < w) & (y2 < h)
    enclosed[0] = False
    drawing_area = int(np.argmax(np.where(enclosed, area, -1)))
    cells = enclosed & (area < 0.25 * h * w)
    cells[drawing_area] = False
    out: NDArray[np.bool_] = cells[labels]
    return out


def _text_blobs(
    ink: NDArray[np.bool_], node_mask: NDArray[np.bool_], options: PipeMaskOptions
) -> NDArray[np.bool_]:
    """Pixels of blobs that are text rather than pipe: small, not thin dashes."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    bw = stats[:, cv2.CC_STAT_WIDTH].astype(np.float64)
    bh = stats[:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    long_side, short_side = np.maximum(bw, bh), np.minimum(bw, bh)
    small = (long_side <= max(options.text_max_height, options.text_max_width)) & (long_side >= 1)
    # A dash is a thin bar along an axis: long/short >= elongation and nearly full.
    dash = (
        (long_side >= options.dash_elongation * short_side)
        & (short_side <= options.dash_max_thickness)
        & (area >= 0.6 * bw * bh)
    )
    text = small & ~dash
    # Words a scan's blur has run together: as tall as a character, a few long, not solid
    # (a pipe piece that thick would be filled).
    word = (
        (short_side >= options.word_min_height)
        & (short_side <= options.text_max_height)
        & (long_side <= options.word_max_width)
        & (area <= options.word_max_fill * bw * bh)
    )
    # A short pipe between two symbols (an elbow, say) is cut off by their boxes; it touches
    # them, where text keeps its distance.
    word[_touching(labels, n, node_mask)] = False
    text |= word
    # Specks (one or two pixels) are noise, not pipe.
    text |= area <= 2
    text[0] = False
    mask: NDArray[np.bool_] = text[labels]
    return mask


def _touching(labels: NDArray[Any], n: int, node_mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Per label: whether the blob comes within 2 px of a symbol box."""
    grown = cv2.dilate(node_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    near = np.zeros(n, dtype=bool)
    near[np.unique(labels[grown & (labels > 0)])] = True
    return near


def _text_rows(
    text: NDArray[np.bool_], ink: NDArray[np.bool_], options: PipeMaskOptions
) -> NDArray[np.bool_]:
    """Whole text rows: text blobs merged along the row take their hyphens and ones with them."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1))
    rows = np.asarray(cv2.dilate(text.astype(np.uint8), kernel), dtype=bool)
    kernel_v = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 9))
    cols = np.asarray(cv2.dilate(text.astype(np.uint8), kernel_v), dtype=bool)
    zone = rows | cols
    # Ink inside a text zone that is itself small belongs to the text (e.g. '-' and '1').
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    long_side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    small = long_side <= options.text_max_height
    small[0] = False
    inside = np.zeros(n, dtype=bool)
    hit = labels[zone & ink]
    inside[np.unique(hit)] = True
    out: NDArray[np.bool_] = (small & inside)[labels]
    return out


@dataclass(frozen=True, slots=True)
class Segmentation:
    """The pipe mask and the ruled regions taken out of it."""

    pipe_mask: NDArray[np.bool_]
    regions: list[Region]
    #: Boxes of the leader lines taken out.
    leaders: list[LeaderBox]


def classical_pipe_mask(
    gray: NDArray[np.uint8],
    node_mask: NDArray[np.bool_],
    *,
    options: PipeMaskOptions | None = None,
) -> NDArray[np.bool_]:
    """Pipe pixels of a drawing, found without a model (`classical_segmentation`'s mask)."""
    return classical_segmentation(gray, node_mask, options=options).pipe_mask


def classical_segmentation(
    gray: NDArray[np.uint8],
    node_mask: NDArray[np.bool_],
    *,
    options: PipeMaskOptions | None = None,
) -> Segmentation:
    """Pipe pixels of a drawing, found without a model, and the ruled regions left out.

    Parameters
    ----------
    gray
        (H, W) uint8 drawing, paper light and ink dark.
    node_mask
        (H, W) bool symbol areas, taken out of the result.
    options
        Thresholds of the method.

    Returns
    -------
    Segmentation
        (H, W) bool mask of pipe ink, and the ruled regions' boxes [x1, y1, x2, y2].
    """
    opt = options or PipeMaskOptions()
    ink = binarise(gray, opt)
    ink &= ~node_mask
    ink = _remove_frame(ink, opt.frame_min_share)
    regions = ruled_regions(ink) if opt.remove_ruled_regions else []
    if regions:
        ink &= ~region_mask(regions, ink.shape)
    text = _text_blobs(ink, node_mask, opt)
    text |= _text_rows(text, ink, opt)
    kept = ink & ~text
    leaders = find_leaders(kept)
    kept &= ~leaders.mask
    return Segmentation(_drop_stray_blobs(kept, node_mask, opt), regions, leaders.boxes)


def _drop_stray_blobs(
    mask: NDArray[np.bool_], node_mask: NDArray[np.bool_], options: PipeMaskOptions
) -> NDArray[np.bool_]:
    """Remove small blobs that are neither dashes nor pipe stubs reaching a symbol."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    bw = stats[:, cv2.CC_STAT_WIDTH].astype(np.float64)
    bh = stats[:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    long_side, short_side = np.maximum(bw, bh), np.minimum(bw, bh)
    dash = (long_side >= options.dash_elongation * short_side) & (
        short_side <= options.dash_max_thickness
    )
    near_symbol = np.zeros(n, dtype=bool)
    grown = cv2.dilate(node_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    near_symbol[np.unique(labels[grown & mask])] = True
    stray = (long_side < options.stray_max_size) & ~dash & ~near_symbol
    stray[0] = False
    out: NDArray[np.bool_] = mask & ~stray[labels]
    return out
