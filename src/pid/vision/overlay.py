"""overlay.png: what the pipeline found, drawn over the drawing for a person to look at."""

from __future__ import annotations

from typing import Any

import cv2
import networkx as nx
import numpy as np
from numpy.typing import NDArray

# BGR colours, chosen to stay apart on a gray drawing and for common colour blindness.
SKELETON = (200, 200, 200)
SYMBOL = (0, 160, 0)
SOLID_EDGE = (255, 120, 0)
DASHED_EDGE = (200, 0, 200)
JUNCTION = (0, 0, 230)
BRIDGE = (0, 200, 255)
AMBIGUOUS = (0, 0, 0)
ENDPOINT = (120, 60, 0)


def draw_overlay(
    gray: NDArray[np.uint8],
    graph: nx.MultiGraph,
    skeleton: NDArray[np.bool_],
    junctions: list[dict[str, Any]],
) -> NDArray[np.uint8]:
    """The drawing, faded, with boxes, skeleton, edges, junctions and bridges on top.

    Junctions are filled red discs, bridges hollow yellow rings, ambiguous points black
    squares; solid runs are blue and dashed runs magenta.
    """
    faded = (gray.astype(np.uint16) // 2 + 128).astype(np.uint8)
    image = np.ascontiguousarray(cv2.cvtColor(faded, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    image[skeleton] = SKELETON
    scale = max(1, round(max(gray.shape) / 2000))
    for _u, _v, data in graph.edges(data=True):
        points = np.round(np.asarray(data["polyline"], dtype=np.float64)).astype(np.int32)
        colour = DASHED_EDGE if data["line_type"] == "dashed" else SOLID_EDGE
        cv2.polylines(image, [points.reshape(-1, 1, 2)], False, colour, scale, cv2.LINE_AA)
    for _node, data in graph.nodes(data=True):
        if data["kind"] == "symbol":
            x1, y1, x2, y2 = (round(float(v)) for v in data["bbox"])
            cv2.rectangle(image, (x1, y1), (x2, y2), SYMBOL, scale)
        elif data["kind"] == "endpoint":
            x, y = (round(float(v)) for v in data["point"])
            cv2.circle(image, (x, y), 3 * scale, ENDPOINT, -1)
    for item in junctions:
        x, y = (round(float(v)) for v in item["point"])
        r = 6 * scale
        if item["kind"] == "junction":
            cv2.circle(image, (x, y), r, JUNCTION, -1)
        elif item["kind"] == "bridge":
            cv2.circle(image, (x, y), r, BRIDGE, 2 * scale)
        else:
            cv2.rectangle(image, (x - r, y - r), (x + r, y + r), AMBIGUOUS, 2 * scale)
    return image
