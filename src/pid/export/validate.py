"""The graph schema check that every exporter runs first.

A graph in memory obeys the same schema as graph.json (docs/formats.md): the per-node and
per-edge checks are `pid.eval.io.check_graph_node` / `check_graph_edge`, the ones `load_graph`
runs on the JSON form, so the two forms cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import networkx as nx

from pid.core.errors import PidInputError

#: What a message names first when the graph came from memory rather than a file.
GRAPH_SOURCE = "graph"

#: Graph-level attributes the exporters read; optional, but numbers > 0 when present.
SHEET_SIZE_KEYS = ("width", "height")


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
    # Imported here, not at module level: pid.eval.io imports pid.export.graphml, so a
    # module-level import would make pid.export and pid.eval import each other half-initialised.
    from pid.eval.io import check_graph_edge, check_graph_node

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
