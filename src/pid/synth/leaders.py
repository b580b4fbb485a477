"""Leader lines: a thin line from a note to a pipe, as real sheets label sizes and notes.

A short label ('2"', 'FREE DRAINING', 'SPEC BREAK', ...) sits on empty paper beside a solid
pipe, and a thin oblique line runs from the label's edge to the pipe, ending on it in an
arrowhead, a dot or a plain end. The leader is not pipe: the pipe mask is never touched. Each
is recorded in regions.json (kind ``leader``, its box, its two ends, the pipe run it points
at) with its text in text.json.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import networkx as nx
import numpy as np
from numpy.typing import NDArray

from pid.synth.symbols import scale_for_height, text_box, text_size

INK = 0
PAPER = 255
LABELS = (
    '2"',
    '3/4"',
    '1 1/2"',
    "FREE DRAINING",
    "BLANKOFF WHEN NOT IN USE",
    "SPEC BREAK",
    "NOTE 3",
    "HIGH POINT VENT",
    "LOW POINT DRAIN",
    "TO ATM",
)
ENDS = ("arrow", "dot", "plain")
#: Paper kept around a leader and its label, pixels.
CLEARANCE = 6
#: Unbroken pipe either side of where a leader ends, pixels.
RUN_PX = 30
#: Length of a leader, pixels.
LENGTH_PX = (45, 110)


def draw_leaders(
    image: NDArray[np.uint8],
    pipe_mask: NDArray[np.uint8],
    graph: nx.MultiGraph,
    rng: np.random.Generator,
    per_unit: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Draw leaders with their labels onto solid pipes of `image`; their regions and texts.

    Parameters
    ----------
    image
        (H, W) uint8 sheet, changed in place.
    pipe_mask
        (H, W) uint8, 255 on pipe ink: where a leader may end.
    graph
        The sheet's graph: its solid pipe runs are the leaders' targets.
    rng
        The generator's random stream for leaders.
    per_unit
        Leaders tried per 2000x1400 of sheet area; one that finds no empty place is left out.
    """
    h, w = image.shape
    wanted = round(per_unit * w * h / (2000 * 1400))
    runs = [
        (u, v, k, d)
        for u, v, k, d in graph.edges(keys=True, data=True)
        if d["line_type"] == "solid" and d.get("length", 0) > 160
    ]
    regions: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    for _ in range(wanted * 15):
        if len(regions) >= wanted or not runs:
            break
        u, v, k, attrs = runs[int(rng.integers(len(runs)))]
        placed = _try_leader(image, pipe_mask, attrs, rng)
        if placed is None:
            continue
        region, text = placed
        region["id"] = f"l{len(regions) + 1}"
        region["edge"] = [u, v, k]
        regions.append(region)
        texts.append({**text, "region": region["id"]})
    return regions, texts


def _try_leader(
    image: NDArray[np.uint8],
    pipe_mask: NDArray[np.uint8],
    attrs: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    points = np.asarray(attrs["polyline"], dtype=np.float64)
    lengths = np.hypot(*np.diff(points, axis=0).T)
    long_enough = np.flatnonzero(lengths >= 120)
    if long_enough.size == 0:
        return None
    s = int(long_enough[int(rng.integers(long_enough.size))])
    a, b = points[s], points[s + 1]
    t = float(rng.uniform(0.3, 0.7))
    target = a + (b - a) * t
    along = (b - a) / lengths[s]
    normal = np.array([-along[1], along[0]]) * (1 if rng.random() < 0.5 else -1)
    # Oblique, as leaders are drawn: 30 to 60 degrees off the pipe.
    angle = math.radians(float(rng.uniform(30, 60)))
    lean = 1 if rng.random() < 0.5 else -1
    direction = normal * math.sin(angle) + along * math.cos(angle) * lean
    length = float(rng.uniform(*LENGTH_PX))
    start = target + direction * length
    label = str(rng.choice(LABELS))
    scale = scale_for_height(float(rng.uniform(8.0, 10.0)))
    tw, th, _ = text_size(label, scale)
    # The label sits beyond the leader's start, on the side it leans away to.
    tx = round(start[0] - (tw + 2 if direction[0] < 0 else -2))
    ty = round(start[1] + (th if direction[1] > 0 else 0) + (2 if direction[1] > 0 else -2))
    box = text_box(label, scale, tx, ty)
    if not _on_visible_run(pipe_mask, target, along):
        return None
    # The corridor is checked from where it is clear of the pipe it ends on.
    clear_from = (CLEARANCE + attrs.get("width", 4) / 2 + 3) / math.sin(angle)
    if not _paper(image, box, start, target, direction, pipe_mask, clear_from):
        return None
    end = str(rng.choice(ENDS))
    p0 = (round(start[0]), round(start[1]))
    p1 = (round(target[0]), round(target[1]))
    cv2.line(image, p0, p1, INK, 1, cv2.LINE_AA)
    if end == "arrow":
        _arrowhead(image, start, target)
    elif end == "dot":
        cv2.circle(image, p1, 2, INK, -1, cv2.LINE_AA)
    cv2.putText(image, label, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, INK, 1, cv2.LINE_AA)
    x1, y1 = min(p0[0], p1[0]) - 3, min(p0[1], p1[1]) - 3
    x2, y2 = max(p0[0], p1[0]) + 3, max(p0[1], p1[1]) + 3
    region = {
        "kind": "leader",
        "bbox": [x1, y1, x2 - x1, y2 - y1],
        "from": [round(float(start[0]), 2), round(float(start[1]), 2)],
        "to": [round(float(target[0]), 2), round(float(target[1]), 2)],
        "end": end,
    }
    return region, {"kind": "leader_text", "text": label, "bbox": box}


def _on_visible_run(
    pipe_mask: NDArray[np.uint8], target: NDArray[np.float64], along: NDArray[np.float64]
) -> bool:
    """Whether pipe ink runs unbroken for `RUN_PX` either side of `target`: a leader points at
    the middle of a visible stretch, not at a pipe's end, a gap or a symbol."""
    h, w = pipe_mask.shape
    for s in range(-RUN_PX, RUN_PX + 1):
        x, y = (round(v) for v in target + along * s)
        if not (0 <= x < w and 0 <= y < h) or pipe_mask[y, x] == 0:
            return False
    return True


def _paper(
    image: NDArray[np.uint8],
    box: list[int],
    start: NDArray[np.float64],
    target: NDArray[np.float64],
    direction: NDArray[np.float64],
    pipe_mask: NDArray[np.uint8],
    clear_from: float,
) -> bool:
    """Whether the label's box and the leader's corridor (but its last few pixels, at the
    pipe) are empty paper, and the leader ends on pipe ink."""
    h, w = image.shape
    x, y, bw, bh = box
    c = CLEARANCE
    if x - c < 0 or y - c < 0 or x + bw + c >= w or y + bh + c >= h:
        return False
    if (image[y - c : y + bh + c, x - c : x + bw + c] < PAPER).any():
        return False
    tx, ty = round(target[0]), round(target[1])
    if not (0 <= tx < w and 0 <= ty < h) or pipe_mask[ty, tx] == 0:
        return False
    length = float(np.hypot(*(start - target)))
    for s in np.arange(clear_from, length + 1.0, 2.0):
        px, py = target + direction * s
        xi, yi = round(px), round(py)
        if not (c <= xi < w - c and c <= yi < h - c):
            return False
        if (image[yi - c : yi + c + 1, xi - c : xi + c + 1] < PAPER).any():
            return False
    return True


def _arrowhead(
    image: NDArray[np.uint8], start: NDArray[np.float64], tip: NDArray[np.float64]
) -> None:
    back = (start - tip) / max(float(np.hypot(*(start - tip))), 1e-9)
    side = np.array([-back[1], back[0]])
    base = tip + back * 7
    triangle = np.asarray([tip, base + side * 2.5, base - side * 2.5])
    cv2.fillPoly(image, [np.round(triangle).astype(np.int32)], INK, cv2.LINE_AA)
