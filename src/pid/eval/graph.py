"""PID2Graph-style graph scores: nodes, edges and symbol-to-symbol links.

Nodes are matched one-to-one: symbols by Hungarian assignment on box IoU (IoU >= 0.5, same
class), junctions and endpoints by distance within a radius (junction to junction, endpoint to
endpoint). An edge counts when both of its ends are matched and its line type agrees; parallel
edges are counted as a multiset. The symbol-level view links two symbols when a path joins
them through junction and endpoint nodes only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from pid.eval.counts import Counts
from pid.eval.junctions import match_radius
from pid.eval.matching import match_boxes, match_points
from pid.export.graphml import graph_line_width

NODE_KINDS = ("symbol", "junction", "endpoint")
POINT_KINDS = ("junction", "endpoint")
MIN_IOU = 0.5

LabelMap = Callable[[str], str]
NodeMap = dict[Hashable, Hashable]
Link = frozenset[Hashable]


@dataclass(frozen=True, slots=True)
class GraphScore:
    """Graph scores with their raw counts.

    Attributes
    ----------
    nodes, edges, symbol_links : Counts
        Matched / predicted / true nodes, edges and linked symbol pairs.
    nodes_by_kind : dict[str, Counts]
        Node counts split by kind (symbol, junction, endpoint).
    """

    nodes: Counts = field(default_factory=Counts)
    edges: Counts = field(default_factory=Counts)
    symbol_links: Counts = field(default_factory=Counts)
    nodes_by_kind: dict[str, Counts] = field(
        default_factory=lambda: {kind: Counts() for kind in NODE_KINDS}
    )

    def __add__(self, other: GraphScore) -> GraphScore:
        return GraphScore(
            nodes=self.nodes + other.nodes,
            edges=self.edges + other.edges,
            symbol_links=self.symbol_links + other.symbol_links,
            nodes_by_kind={k: self.nodes_by_kind[k] + other.nodes_by_kind[k] for k in NODE_KINDS},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes.to_dict(),
            "edges": self.edges.to_dict(),
            "symbol_links": self.symbol_links.to_dict(),
            "nodes_by_kind": {k: c.to_dict() for k, c in self.nodes_by_kind.items()},
            "spurious": {
                "junctions": self.spurious("junction"),
                "endpoints": self.spurious("endpoint"),
            },
        }

    def spurious(self, kind: str) -> int:
        """Predicted nodes of `kind` that match no true node (free ends, junctions)."""
        counts = self.nodes_by_kind[kind]
        return counts.n_pred - counts.tp


def score_graph(
    pred: nx.MultiGraph,
    truth: nx.MultiGraph,
    *,
    radius: float | None = None,
    label_map: LabelMap | None = None,
) -> GraphScore:
    """Score a predicted graph against the true graph.

    Parameters
    ----------
    pred, truth : nx.MultiGraph
        Graphs in our model (`pid.core.formats.graph.load_graph`,
        `pid.eval.pid2graph.load_pid2graph_graphml`).
    radius : float, optional
        Matching radius in pixels for junctions and endpoints; default 3 line widths of the
        truth (median edge `width`, else 3 px), at least 6 px.
    label_map : callable, optional
        Applied to both sides' symbol classes before comparing them, e.g.
        `pid.core.classes.pid2graph_label` to compare at PID2Graph's label level.

    Returns
    -------
    GraphScore
    """
    if radius is None:
        radius = match_radius(graph_line_width(truth))
    node_map = match_nodes(pred, truth, radius=radius, label_map=label_map)
    return GraphScore(
        nodes=Counts(len(node_map), pred.number_of_nodes(), truth.number_of_nodes()),
        edges=_edge_counts(pred, truth, node_map),
        symbol_links=_link_counts(pred, truth, node_map),
        nodes_by_kind=_node_counts_by_kind(pred, truth, node_map),
    )


def match_nodes(
    pred: nx.MultiGraph,
    truth: nx.MultiGraph,
    *,
    radius: float,
    label_map: LabelMap | None = None,
) -> NodeMap:
    """Return the one-to-one node matching, predicted node -> true node.

    Symbols match on IoU >= 0.5 with the same (mapped) class, maximising the number of matches
    then the summed IoU; junctions and endpoints match their own kind within `radius` pixels,
    minimising the summed distance.
    """
    rename = label_map or (lambda name: name)
    node_map = _match_symbols(_nodes_of(pred, "symbol"), _nodes_of(truth, "symbol"), rename)
    for kind in POINT_KINDS:
        p_nodes, t_nodes = _nodes_of(pred, kind), _nodes_of(truth, kind)
        pairs = match_points(
            [_point(a) for _, a in p_nodes], [_point(a) for _, a in t_nodes], radius
        )
        node_map.update({p_nodes[i][0]: t_nodes[j][0] for i, j in pairs})
    return node_map


def symbol_links(graph: nx.MultiGraph) -> set[Link]:
    """Return the pairs of distinct symbols joined by a path through non-symbol nodes only.

    Symbols next to the same connected group of junctions / endpoints are pairwise linked, as
    are symbols joined by a direct edge.
    """
    symbols = {n for n, kind in graph.nodes(data="kind") if kind == "symbol"}
    links: set[Link] = {
        frozenset((u, v)) for u, v in graph.edges() if u != v and u in symbols and v in symbols
    }
    others = graph.subgraph(n for n in graph if n not in symbols)
    for group in nx.connected_components(others):
        touching = sorted(
            {nbr for node in group for nbr in graph.neighbors(node) if nbr in symbols}, key=str
        )
        links.update(frozenset((a, b)) for i, a in enumerate(touching) for b in touching[i + 1 :])
    return links


def _nodes_of(graph: nx.MultiGraph, kind: str) -> list[tuple[Hashable, dict[str, Any]]]:
    return [(n, a) for n, a in graph.nodes(data=True) if a.get("kind") == kind]


def _point(attrs: dict[str, Any]) -> tuple[float, float]:
    x, y = attrs["point"]
    return float(x), float(y)


def _xywh(attrs: dict[str, Any]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(c) for c in attrs["bbox"])
    return x1, y1, x2 - x1, y2 - y1


def _match_symbols(
    pred: list[tuple[Hashable, dict[str, Any]]],
    truth: list[tuple[Hashable, dict[str, Any]]],
    rename: LabelMap,
) -> NodeMap:
    p_cls = np.array([rename(str(a["class"])) for _, a in pred], dtype=object)
    t_cls = np.array([rename(str(a["class"])) for _, a in truth], dtype=object)
    same_class = np.asarray(p_cls[:, None] == t_cls[None, :], dtype=bool)
    pairs = match_boxes(
        [_xywh(a) for _, a in pred], [_xywh(a) for _, a in truth], same_class, MIN_IOU
    )
    return {pred[i][0]: truth[j][0] for i, j in pairs}


def _edge_keys(graph: nx.MultiGraph, rename: NodeMap | None) -> Counter[tuple[Link, str]]:
    """Count edges by (unordered end pair, line type), ends renamed through `rename` if given.

    Edges with an end that `rename` does not cover cannot be matched and are left out.
    """
    keys: Counter[tuple[Link, str]] = Counter()
    for u, v, line_type in graph.edges(data="line_type"):
        if rename is not None:
            if u not in rename or v not in rename:
                continue
            u, v = rename[u], rename[v]
        keys[(frozenset((u, v)), str(line_type))] += 1
    return keys


def _edge_counts(pred: nx.MultiGraph, truth: nx.MultiGraph, node_map: NodeMap) -> Counts:
    matched = _edge_keys(pred, node_map) & _edge_keys(truth, None)  # multiset intersection
    return Counts(sum(matched.values()), pred.number_of_edges(), truth.number_of_edges())


def _link_counts(pred: nx.MultiGraph, truth: nx.MultiGraph, node_map: NodeMap) -> Counts:
    pred_links = symbol_links(pred)
    true_links = symbol_links(truth)
    mapped = {
        frozenset(node_map[n] for n in link)
        for link in pred_links
        if all(n in node_map for n in link)
    }
    return Counts(len(mapped & true_links), len(pred_links), len(true_links))


def _node_counts_by_kind(
    pred: nx.MultiGraph, truth: nx.MultiGraph, node_map: NodeMap
) -> dict[str, Counts]:
    out = {}
    for kind in NODE_KINDS:
        tp = sum(1 for n in node_map if pred.nodes[n].get("kind") == kind)
        out[kind] = Counts(tp, len(_nodes_of(pred, kind)), len(_nodes_of(truth, kind)))
    return out
