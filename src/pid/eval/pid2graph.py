"""PID2Graph's public GraphML ground truth, read into our graph model for scoring.

Every failure is a `PidInputError` with one line naming the file and the failing place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import networkx as nx

from pid.core.classes import PID2GRAPH_CONNECTOR, PID2GRAPH_CROSSING, pid2graph_label
from pid.core.errors import PidInputError
from pid.core.formats._checks import Point, as_number, fail
from pid.core.formats._checks import polyline as checked_polyline
from pid.core.formats.graph import NODE_KINDS
from pid.export.graphml import (
    LINE_TYPE_OF_EDGE_LABEL,
    node_position,
    orient_polyline,
    polyline_length,
)

PID2GRAPH_BOX_KEYS = ("xmin", "xmax", "ymin", "ymax")

#: Value of `graph.graph["label_source"]` after loading: where symbol classes came from.
LABELS_FROM_CLASS = "class"
LABELS_FROM_PID2GRAPH = "pid2graph"


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def load_pid2graph_graphml(
    path: Path, extra_labels: Mapping[str, str] | None = None
) -> nx.MultiGraph:
    """Load a PID2Graph GraphML graph into our graph model.

    Parameters
    ----------
    path : Path
        GraphML with node `label`, `xmin`, `xmax`, `ymin`, `ymax` and edge `edge_label`.
    extra_labels : Mapping[str, str], optional
        Maps node labels outside PID2Graph's set to PID2Graph labels (or to `connector` /
        `crossing`); unmapped labels are kept as symbol classes.

    Returns
    -------
    nx.MultiGraph
        Our model (as `load_graph`). Symbols get `class` = their label (or our own `class`
        attribute when present). `connector` nodes of degree 2 are bends and are contracted (the
        two runs become one edge, polylines joined); connectors left with degree <= 1 become
        endpoints, the rest junctions. `crossing` nodes are removed by pairing their runs into
        straight pass-throughs. Nodes carrying our own `kind` keep it and are never contracted.
        `graph.graph["label_source"]` is ``"class"`` when every symbol had our `class`
        attribute, else ``"pid2graph"``.

    Notes
    -----
    Edges without a `polyline` attribute get a straight one between their nodes' reference
    points (point, or box centre); a crossing's runs are paired by the direction of each run's
    first segment out of the crossing, most opposite first (a maximum-weight matching).
    """
    raw = _read_graphml(path)
    work, label_source = _work_graph(raw, path, extra_labels or {})
    for node in [n for n, k in work.nodes(data="kind") if k == PID2GRAPH_CROSSING]:
        _resolve_crossing(work, node)
    for node in [n for n, k in work.nodes(data="kind") if k == PID2GRAPH_CONNECTOR]:
        if work.degree(node) == 2 and not work.has_edge(node, node):
            _merge_runs(work, node, list(work.edges(node, keys=True, data=True)))
    out = _model_graph(work)
    out.graph.update(
        {k: v for k, v in raw.graph.items() if k not in ("node_default", "edge_default")}
    )
    out.graph["label_source"] = label_source
    return out


def _read_graphml(path: Path) -> nx.MultiGraph:
    if not path.is_file():
        fail(path, "", "file not found")
    try:
        raw = nx.read_graphml(path, force_multigraph=True)
    except (ParseError, nx.NetworkXError, ValueError, KeyError, TypeError) as exc:
        fail(path, "", f"not valid GraphML: {exc}")
    return raw.to_undirected() if raw.is_directed() else raw


def _work_graph(
    raw: nx.MultiGraph, path: Path, extra: Mapping[str, str]
) -> tuple[nx.MultiGraph, str]:
    """Return the graph with nodes typed symbol/junction/endpoint/connector/crossing."""
    work = nx.MultiGraph()
    label_source = LABELS_FROM_CLASS
    for node, attrs in raw.nodes(data=True):
        typed = _typed_node(node, attrs, path, extra)
        if typed["kind"] == "symbol" and "class" not in attrs:
            label_source = LABELS_FROM_PID2GRAPH
        work.add_node(node, **typed)
    for u, v, attrs in raw.edges(data=True):
        work.add_edge(u, v, **_typed_edge(work, u, v, attrs, path))
    return work, label_source


def _typed_node(
    node: Any, attrs: dict[str, Any], path: Path, extra: Mapping[str, str]
) -> dict[str, Any]:
    where = f"node {node!r}"
    box = []
    for key in PID2GRAPH_BOX_KEYS:
        raw_value = attrs.get(key)
        # Some GraphML writers declare the box as strings; accept numeric text.
        value = as_number(_float_or_none(raw_value) if isinstance(raw_value, str) else raw_value)
        if value is None:
            fail(path, where, f"expected a number {key}, got {attrs.get(key)!r}")
        box.append(value)
    xmin, xmax, ymin, ymax = box
    label = str(attrs.get("label", ""))
    label = extra.get(label, label)
    kind = attrs.get("kind")
    if kind is not None and kind not in NODE_KINDS:
        fail(path, where, f"kind: expected one of {', '.join(NODE_KINDS)}, got {kind!r}")
    if kind is None:
        kind = label if label in (PID2GRAPH_CONNECTOR, PID2GRAPH_CROSSING) else "symbol"
    if kind == "symbol":
        cls = str(attrs.get("class") or label)
        if not cls:
            fail(path, where, "symbol without label or class")
        return {"kind": kind, "class": cls, "bbox": [xmin, ymin, xmax, ymax]}
    return {"kind": kind, "point": [(xmin + xmax) / 2.0, (ymin + ymax) / 2.0]}


def _typed_edge(
    work: nx.MultiGraph, u: Any, v: Any, attrs: dict[str, Any], path: Path
) -> dict[str, Any]:
    where = f"edge {u!r}-{v!r}"
    label = attrs.get("edge_label", "solid")
    if label not in LINE_TYPE_OF_EDGE_LABEL:
        fail(path, where, f"edge_label: expected solid or non-solid, got {label!r}")
    start, end = node_position(work.nodes[u]), node_position(work.nodes[v])
    raw_polyline = attrs.get("polyline")
    if raw_polyline is None:
        polyline = [start, end]
    else:
        try:
            parsed = json.loads(str(raw_polyline))
        except json.JSONDecodeError:
            fail(path, f"{where}: polyline", "not valid JSON")
        polyline = orient_polyline(checked_polyline(parsed, path, f"{where}: polyline"), start, end)
    out: dict[str, Any] = {
        "line_type": LINE_TYPE_OF_EDGE_LABEL[label],
        "polyline": polyline,
        "start": u,
    }
    width = as_number(attrs.get("width"))
    if width is not None:
        out["width"] = width
    return out


def _polyline_from(attrs: dict[str, Any], node: Any) -> list[Point]:
    """Return an edge's polyline running out of `node` (`start` records where it begins)."""
    points: list[Point] = attrs["polyline"]
    return points if attrs["start"] == node else points[::-1]


def _direction_out(graph: nx.MultiGraph, node: Any, attrs: dict[str, Any]) -> Point:
    origin = node_position(graph.nodes[node])
    for x, y in _polyline_from(attrs, node):
        if math.dist((x, y), origin) > 0.5:
            length = math.dist((x, y), origin)
            return (x - origin[0]) / length, (y - origin[1]) / length
    return 0.0, 0.0


def _resolve_crossing(graph: nx.MultiGraph, node: Any) -> None:
    """Replace a crossing by straight pass-throughs; leftover runs end at a connector."""
    arms = list(graph.edges(node, keys=True, data=True))
    if graph.has_edge(node, node):
        graph.nodes[node]["kind"] = PID2GRAPH_CONNECTOR
        return
    directions = [_direction_out(graph, node, attrs) for _, _, _, attrs in arms]
    # Pair the runs so the summed "oppositeness" (1 - cos, 2 for a straight line) is largest.
    candidates = nx.Graph()
    for i in range(len(arms)):
        for j in range(i + 1, len(arms)):
            cos = directions[i][0] * directions[j][0] + directions[i][1] * directions[j][1]
            candidates.add_edge(i, j, weight=1.0 - cos)
    pairs = nx.max_weight_matching(candidates, maxcardinality=True)
    for i, j in pairs:
        _merge_runs(graph, node, [arms[i], arms[j]])
    if node in graph and graph.degree(node) == 0:  # a crossing of nothing
        graph.remove_node(node)
    elif node in graph:  # an odd run out: it ends here, like at any connector
        graph.nodes[node]["kind"] = PID2GRAPH_CONNECTOR


def _merge_runs(
    graph: nx.MultiGraph, node: Any, arms: Sequence[tuple[Any, Any, Any, dict[str, Any]]]
) -> None:
    """Join two runs that meet at `node` into one edge; drop `node` once it has no runs."""
    (_, a, key_a, attrs_a), (_, b, key_b, attrs_b) = arms
    polyline = _polyline_from(attrs_a, node)[::-1] + _polyline_from(attrs_b, node)[1:]
    merged = {k: v for k, v in attrs_a.items() if k not in ("polyline", "start")}
    if "width" not in merged and "width" in attrs_b:
        merged["width"] = attrs_b["width"]
    graph.remove_edge(node, a, key=key_a)
    graph.remove_edge(node, b, key=key_b)
    graph.add_edge(a, b, polyline=polyline, start=a, **merged)
    if graph.degree(node) == 0:
        graph.remove_node(node)


def _model_graph(work: nx.MultiGraph) -> nx.MultiGraph:
    out = nx.MultiGraph()
    for node, attrs in work.nodes(data=True):
        kind = attrs["kind"]
        if kind == PID2GRAPH_CONNECTOR:
            kind = "endpoint" if work.degree(node) <= 1 else "junction"
        if kind == "symbol":
            cls = attrs["class"]
            out.add_node(
                node, kind=kind, bbox=attrs["bbox"], label=pid2graph_label(cls), **{"class": cls}
            )
        else:
            out.add_node(node, kind=kind, point=attrs["point"])
    for u, v, attrs in work.edges(data=True):
        polyline = _polyline_from(attrs, u)
        extra = {k: v for k, v in attrs.items() if k not in ("polyline", "start")}
        out.add_edge(u, v, polyline=polyline, length=polyline_length(polyline), **extra)
    return out


def check_same_size(
    pred_size: tuple[int, int], truth_size: tuple[int, int], pred_path: Path, truth_path: Path
) -> None:
    """Raise `PidInputError` naming both files and sizes when the sizes differ."""
    if pred_size != truth_size:
        raise PidInputError(
            f"{pred_path} is {pred_size[0]}x{pred_size[1]} but {truth_path} is "
            f"{truth_size[0]}x{truth_size[1]}: prediction and truth must be the same size"
        )
