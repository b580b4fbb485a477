"""graph.json: networkx node-link JSON of symbols, junctions and endpoints joined by pipe runs.

One schema for both forms: `load_graph` checks the JSON form, `validate_graph` a graph in memory,
and both run the same per-node and per-edge checks (`check_graph_node`, `check_graph_edge`).
Every failure is a `PidInputError` naming the file (or ``graph``) and the failing path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx

from pid.core.errors import PidInputError
from pid.core.formats._checks import as_list, fail, is_number, mapping, numbers, polyline
from pid.core.formats.jsonfile import read_json, write_json

NODE_KINDS = ("symbol", "junction", "endpoint")
POINT_KINDS = ("junction", "endpoint")
LINE_TYPES = ("solid", "dashed")

#: What a message names first when the graph came from memory rather than a file.
GRAPH_SOURCE = "graph"

#: Graph-level attributes the exporters read; optional, but numbers > 0 when present.
SHEET_SIZE_KEYS = ("width", "height")


def graph_to_json(graph: nx.MultiGraph) -> dict[str, Any]:
    """The node-link form graph.json holds (``edges="edges"``)."""
    data: dict[str, Any] = nx.node_link_data(graph, edges="edges")
    return data


def write_graph(path: Path, graph: nx.MultiGraph) -> None:
    """Write `graph` as graph.json, replacing `path` atomically."""
    write_json(path, graph_to_json(graph))


def load_graph(path: Path) -> nx.MultiGraph:
    """Load and validate a graph.json (networkx node-link data, ``edges="edges"``).

    Parameters
    ----------
    path : Path
        The graph.json file.

    Returns
    -------
    nx.MultiGraph
        Undirected multigraph in our model: symbols with `class` and `bbox` (x1, y1, x2, y2),
        junctions and endpoints with `point`; edges with `polyline`, `line_type` and the
        optional `length`, `width`.

    Raises
    ------
    PidInputError
        When the file is missing, not JSON, or breaks the schema; the message names the file and
        the failing path, e.g. ``graph.json: edges[2].target: unknown node 'j9'``.
    """
    data = mapping(read_json(path), path, "")
    if "edges" not in data and "links" in data:
        fail(path, "links", "expected 'edges' (write with nx.node_link_data(g, edges='edges'))")
    nodes = as_list(data.get("nodes"), path, "nodes")
    edges = as_list(data.get("edges"), path, "edges")
    graph = nx.MultiGraph()
    graph.graph.update(mapping(data.get("graph", {}), path, "graph"))
    for i, raw in enumerate(nodes):
        node_id, attrs = _graph_node(raw, path, f"nodes[{i}]")
        if node_id in graph:
            fail(path, f"nodes[{i}].id", f"duplicate id {node_id!r}")
        graph.add_node(node_id, **attrs)
    for i, raw in enumerate(edges):
        source, target, key, attrs = _graph_edge(raw, graph, path, f"edges[{i}]")
        graph.add_edge(source, target, key=key, **attrs)
    return graph


def _graph_node(raw: object, path: Path, where: str) -> tuple[Any, dict[str, Any]]:
    node = mapping(raw, path, where)
    node_id = node.get("id")
    attrs = check_graph_node(node_id, {k: v for k, v in node.items() if k != "id"}, path, where)
    return node_id, attrs


def check_graph_node(
    node_id: object, attrs: Mapping[str, Any], source: Path | str, where: str
) -> dict[str, Any]:
    """Check one node against graph.json's schema and return its attributes normalised.

    Shared by `load_graph` (the JSON form) and ``validate_graph`` (a graph in
    memory), so both forms obey one schema.

    Parameters
    ----------
    node_id : object
        The node's id: a string or an integer.
    attrs : Mapping[str, Any]
        The node's attributes (everything but its id).
    source : Path or str
        What the message names first: the file, or e.g. ``"graph"`` for a graph in memory.
    where : str
        The node's place, e.g. ``"nodes[3]"`` or ``"nodes['s3']"``.

    Returns
    -------
    dict[str, Any]
        A copy of `attrs` with `bbox` (symbols) or `point` (junctions, endpoints) as float lists.

    Raises
    ------
    PidInputError
        Naming `source` and the failing path, e.g. ``graph: nodes['s3'].bbox: expected 4
        numbers``.
    """
    if node_id is None or isinstance(node_id, bool) or not isinstance(node_id, str | int):
        fail(source, f"{where}.id", "expected a string or integer id")
    kind = attrs.get("kind")
    if kind not in NODE_KINDS:
        fail(source, f"{where}.kind", f"expected one of {', '.join(NODE_KINDS)}, got {kind!r}")
    out = dict(attrs)
    if kind == "symbol":
        cls = attrs.get("class")
        if not isinstance(cls, str) or not cls:
            fail(source, f"{where}.class", "expected a class name")
        x1, y1, x2, y2 = numbers(attrs.get("bbox"), 4, source, f"{where}.bbox")
        if x2 < x1 or y2 < y1:
            fail(source, f"{where}.bbox", "expected [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2")
        out["bbox"] = [x1, y1, x2, y2]
    else:
        out["point"] = list(numbers(attrs.get("point"), 2, source, f"{where}.point"))
    return out


def _graph_edge(
    raw: object, graph: nx.MultiGraph, path: Path, where: str
) -> tuple[Any, Any, int | None, dict[str, Any]]:
    edge = mapping(raw, path, where)
    ends = []
    for end in ("source", "target"):
        node = edge.get(end)
        if isinstance(node, list | dict) or node not in graph:
            fail(path, f"{where}.{end}", f"unknown node {node!r}")
        ends.append(node)
    key = edge.get("key")
    attrs = {k: v for k, v in edge.items() if k not in ("source", "target", "key")}
    return ends[0], ends[1], key, check_graph_edge(key, attrs, path, where)


def check_graph_edge(
    key: object, attrs: Mapping[str, Any], source: Path | str, where: str
) -> dict[str, Any]:
    """Check one edge against graph.json's schema and return its attributes normalised.

    Shared by `load_graph` and ``validate_graph`` (see `check_graph_node`).

    Parameters
    ----------
    key : object
        The edge's multigraph key: an integer, or None where the JSON gives none.
    attrs : Mapping[str, Any]
        The edge's attributes (everything but its ends and key).
    source : Path or str
        What the message names first: the file, or e.g. ``"graph"``.
    where : str
        The edge's place, e.g. ``"edges[2]"`` or ``"edges[('s1', 'j2', 0)]"``.

    Returns
    -------
    dict[str, Any]
        A copy of `attrs` with `polyline` as a list of (x, y) float tuples.

    Raises
    ------
    PidInputError
        Naming `source` and the failing path, e.g. ``graph: edges[('s1', 'j2', 0)].line_type:
        expected solid or dashed, got 'wavy'``.
    """
    if key is not None and (isinstance(key, bool) or not isinstance(key, int)):
        fail(source, f"{where}.key", "expected an integer")
    line_type = attrs.get("line_type")
    if line_type not in LINE_TYPES:
        fail(source, f"{where}.line_type", f"expected solid or dashed, got {line_type!r}")
    out = dict(attrs)
    out["polyline"] = polyline(attrs.get("polyline"), source, f"{where}.polyline")
    for name in ("width", "length"):
        value = attrs.get(name)
        if value is not None and (not is_number(value) or value < 0):
            fail(source, f"{where}.{name}", "expected a number >= 0")
    return out


def validate_graph(graph: nx.MultiGraph, *, source: str = GRAPH_SOURCE) -> None:
    """Check a graph in memory against graph.json's schema.

    Parameters
    ----------
    graph : nx.MultiGraph
        An undirected multigraph in our model: nodes with `kind` (symbol, junction, endpoint),
        symbols with `class` and `bbox` [x1, y1, x2, y2], junctions and endpoints with `point`;
        edges with an integer key, `polyline` (>= 2 points), `line_type` (solid, dashed) and the
        optional `width`, `length` (numbers >= 0). `graph.graph` may carry the sheet `width`
        and `height` in pixels (numbers > 0).
    source : str
        What the message names first (default ``"graph"``; readers pass their file).

    Raises
    ------
    PidInputError
        On the first failure, naming the failing path, e.g. ``graph: nodes['s3'].bbox:
        expected 4 numbers`` or ``graph: edges[('s1', 'j2', 0)].line_type: expected solid or
        dashed, got 'wavy'``.
    """
    if not isinstance(graph, nx.MultiGraph) or graph.is_directed():
        raise PidInputError(
            f"{source}: expected an undirected networkx MultiGraph, got {type(graph).__name__}"
        )
    _check_sheet_size(graph.graph, source)
    for node, attrs in graph.nodes(data=True):
        check_graph_node(node, attrs, source, f"nodes[{node!r}]")
    for u, v, key, attrs in graph.edges(keys=True, data=True):
        check_graph_edge(key, attrs, source, f"edges[{(u, v, key)!r}]")


def _check_sheet_size(attrs: Mapping[str, Any], source: str) -> None:
    for name in SHEET_SIZE_KEYS:
        value = attrs.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise PidInputError(f"{source}: graph.{name}: expected a number > 0, got {value!r}")
