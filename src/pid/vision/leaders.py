"""Leader lines: thin oblique lines from a note to a pipe, taken out of the pipe mask.

Strategy. Pipes run along the sheet's axes; leaders are drawn at an angle. Ink of long
axis-aligned strokes is found by morphological opening along each axis and grown a little
(the pipe's own width and the junctions on it); what is left of the mask is oblique. A leader
is a long, thin piece of it that runs diagonally; arcs of hop-overs, dashes and scan specks are
too short. The piece goes with its arrowhead (the part off the pipe); what touches the pipe is
a few pixels, which the skeleton's spur pruning takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

#: A leader's box as [x1, y1, x2, y2] in pixels (x2, y2 exclusive).
LeaderBox = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class LeaderOptions:
    #: Straight pipe ink is at least this long along an axis, pixels.
    straight_px: int = 15
    #: Grown around straight ink before the rest counts as oblique, pixels.
    pipe_halo_px: int = 2
    #: A leader's oblique piece is at least this long (its box's diagonal), pixels.
    min_length_px: float = 25.0
    #: At most this many pixels of ink per pixel of length: a thin line.
    max_thickness_px: float = 3.5
    #: Both sides of its box are at least this share of the longer one: it runs diagonally.
    min_slant: float = 0.25


@dataclass(frozen=True, slots=True)
class Leaders:
    """The leaders' pixels in the mask, and their boxes."""

    mask: NDArray[np.bool_]
    boxes: list[LeaderBox]


def find_leaders(mask: NDArray[np.bool_], *, options: LeaderOptions | None = None) -> Leaders:
    """Leader lines in a pipe mask.

    Parameters
    ----------
    mask
        (H, W) bool pipe mask candidate (text already taken out).
    options
        Thresholds of the method.

    Returns
    -------
    Leaders
        (H, W) bool pixels of the leaders found, and their boxes.
    """
    opt = options or LeaderOptions()
    u8 = mask.astype(np.uint8)
    along_x = cv2.getStructuringElement(cv2.MORPH_RECT, (opt.straight_px, 1))
    along_y = cv2.getStructuringElement(cv2.MORPH_RECT, (1, opt.straight_px))
    straight = np.asarray(cv2.morphologyEx(u8, cv2.MORPH_OPEN, along_x), dtype=np.uint8)
    straight |= np.asarray(cv2.morphologyEx(u8, cv2.MORPH_OPEN, along_y), dtype=np.uint8)
    halo = 2 * opt.pipe_halo_px + 1
    grown = np.asarray(cv2.dilate(straight, np.ones((halo, halo), np.uint8)), dtype=np.uint8)
    oblique = u8 & (1 - grown)
    _n, labels, stats, _ = cv2.connectedComponentsWithStats(oblique, connectivity=8)
    bw = stats[:, cv2.CC_STAT_WIDTH].astype(np.float64)
    bh = stats[:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    length = np.hypot(bw, bh)
    leader = (
        (length >= opt.min_length_px)
        & (stats[:, cv2.CC_STAT_AREA] <= opt.max_thickness_px * length)
        & (np.minimum(bw, bh) >= opt.min_slant * np.maximum(bw, bh))
    )
    leader[0] = False
    boxes = [
        (int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in stats[np.flatnonzero(leader), :4]
    ]
    out: NDArray[np.bool_] = leader[labels]
    return Leaders(out, boxes)
