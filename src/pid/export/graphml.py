"""GraphML in PID2Graph's attribute names.

PID2Graph (Stuermer et al.) stores each sheet's graph as GraphML: nodes carry `label` and the box
`xmin`, `xmax`, `ymin`, `ymax`; edges carry `edge_label` (`solid` / `non-solid`). We write those
names so the published tools can score our graphs, plus our own `kind`, `class`, `polyline` (and
`width` where known) so that our reader can restore the exact graph. The reader lives in
`pid.eval.pid2graph.load_pid2graph_graphml`.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from pid.core.classes import PID2GRAPH_CONNECTOR, pid2graph_label
from pid.core.files import replace_atomically
from pid.core.formats._checks import Point

#: Line width assumed when a graph's edges carry no `width`.
DEFAULT_LINE_WIDTH = 3.0

#: Our line types and PID2Graph's edge labels, both ways.
EDGE_LABEL_OF_LINE_TYPE = {"solid": "solid", "dashed": "non-solid"}
LINE_TYPE_OF_EDGE_LABEL = {label: line_type for line_type, label in EDGE_LABEL_OF_LINE_TYPE.items()}


def graph_line_width(graph: nx.MultiGraph, default: float = DEFAULT_LINE_WIDTH) -> float:
    """Return the median drawn line width of a graph's edges.

    Parameters
    ----------
    graph : nx.MultiGraph
        A graph in our model; edges may carry `width` (pixels).
    default : float
        Returned when no edge carries a positive `width`.

    Returns
    -------
    float
        Line width in pixels.
    """
    widths = [
        float(w)
        for _, _, w in graph.edges(data="width")
        if isinstance(w, int | float) and not isinstance(w, bool) and w > 0
    ]
    return float(statistics.median(widths)) if widths else default


def node_position(attrs: dict[str, Any]) -> Point:
    """Return a node's reference point: its `point`, else the centre of its `bbox`."""
    point = attrs.get("point")
    if point is not None:
        return float(point[0]), float(point[1])
    x1, y1, x2, y2 = attrs["bbox"]
    return (float(x1) + float(x2)) / 2.0, (float(y1) + float(y2)) / 2.0


def orient_polyline(points: Sequence[Sequence[float]], start: Point, end: Point) -> list[Point]:
    """Return `points` ordered to run from near `start` to near `end`.

    Undirected graphs forget which end of an edge was its source, so the order of a stored
    polyline is recovered from geometry: the order whose first point is nearer `start` and last
    point nearer `end` (summed distances) wins.
    """
    pts = [(float(p[0]), float(p[1])) for p in points]
    if len(pts) < 2:
        return pts
    forward = math.dist(pts[0], start) + math.dist(pts[-1], end)
    backward = math.dist(pts[0], end) + math.dist(pts[-1], start)
    return pts[::-1] if backward < forward else pts


def polyline_length(points: Sequence[Point]) -> float:
    """Return the length in pixels of a polyline."""
    return float(sum(math.dist(a, b) for a, b in itertools.pairwise(points)))


def graph_to_pid2graph(graph: nx.MultiGraph) -> nx.MultiGraph:
    """Return a copy of `graph` carrying PID2Graph's attribute names.

    Parameters
    ----------
    graph : nx.MultiGraph
        A graph in our model (see docs/formats.md, graph.json).

    Returns
    -------
    nx.MultiGraph
        Nodes with `label`, `xmin`, `xmax`, `ymin`, `ymax` (floats, pixels), `kind` and, for
        symbols, `class`; edges with `edge_label`, `polyline` (a JSON string, running from the
        edge's first node to its second as `edges()` lists them) and `width` where known.
        Junctions and endpoints get a box of one line width around their point.
    """
    half = graph_line_width(graph) / 2.0
    out = nx.MultiGraph()
    out.graph.update(
        {k: v for k, v in graph.graph.items() if isinstance(v, str | int | float | bool)}
    )
    for node, attrs in graph.nodes(data=True):
        out.add_node(node, **_pid2graph_node(attrs, half))
    for u, v, key, attrs in graph.edges(keys=True, data=True):
        start, end = node_position(graph.nodes[u]), node_position(graph.nodes[v])
        out.add_edge(u, v, key=key, **_pid2graph_edge(attrs, start, end))
    return out


def write_pid2graph_graphml(graph: nx.MultiGraph, path: Path) -> None:
    """Write `graph` as GraphML in PID2Graph's attribute names, atomically.

    Parameters
    ----------
    graph : nx.MultiGraph
        A graph in our model.
    path : Path
        Destination file; written to a temporary file in the same folder, then renamed over
        `path`, so a reader never sees half a file.
    """
    converted = graph_to_pid2graph(graph)
    replace_atomically(path, lambda tmp: nx.write_graphml(converted, tmp))


def _pid2graph_node(attrs: dict[str, Any], half_width: float) -> dict[str, Any]:
    kind = str(attrs.get("kind", ""))
    if kind == "symbol":
        x1, y1, x2, y2 = (float(c) for c in attrs["bbox"])
        cls = str(attrs.get("class", ""))
        return {
            "label": pid2graph_label(cls),
            "xmin": x1,
            "xmax": x2,
            "ymin": y1,
            "ymax": y2,
            "kind": kind,
            "class": cls,
        }
    x, y = node_position(attrs)
    return {
        "label": PID2GRAPH_CONNECTOR,
        "xmin": x - half_width,
        "xmax": x + half_width,
        "ymin": y - half_width,
        "ymax": y + half_width,
        "kind": kind,
    }


def _pid2graph_edge(attrs: dict[str, Any], start: Point, end: Point) -> dict[str, Any]:
    line_type = str(attrs.get("line_type", "solid"))
    out: dict[str, Any] = {"edge_label": EDGE_LABEL_OF_LINE_TYPE.get(line_type, "solid")}
    polyline = attrs.get("polyline")
    if polyline:
        out["polyline"] = json.dumps(orient_polyline(polyline, start, end))
    width = attrs.get("width")
    if isinstance(width, int | float) and not isinstance(width, bool):
        out["width"] = float(width)
    return out
