"""Graph scores and the PID2Graph GraphML writer / reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from lxml import etree

from pid.core.classes import pid2graph_label
from pid.eval.graph import GraphScore, score_graph, symbol_links
from pid.eval.pid2graph import load_pid2graph_graphml
from pid.export.graphml import graph_to_pid2graph, write_pid2graph_graphml

GRAPHML_NS = {"g": "http://graphml.graphdrawing.org/xmlns"}


def assert_perfect(score: GraphScore) -> None:
    for name, counts in [
        ("nodes", score.nodes),
        ("edges", score.edges),
        ("links", score.symbol_links),
        *score.nodes_by_kind.items(),
    ]:
        assert (name, counts.precision, counts.recall, counts.f1) == (name, 1.0, 1.0, 1.0)


def test_graph_against_itself_is_perfect(truth_graph: nx.MultiGraph) -> None:
    assert_perfect(score_graph(truth_graph, truth_graph))


def test_symbol_links_go_through_junctions_and_endpoints_only(
    truth_graph: nx.MultiGraph,
) -> None:
    assert symbol_links(truth_graph) == {
        frozenset(p) for p in [("s0", "s1"), ("s0", "s2"), ("s1", "s2"), ("s3", "s1")]
    }


def test_parallel_edges_count_as_a_multiset(truth_graph: nx.MultiGraph) -> None:
    pred = truth_graph.copy()
    pred.add_edge("j0", "j1", polyline=[[100, 50], [100, 90]], line_type="solid")  # duplicate
    truth = truth_graph.copy()

    score = score_graph(pred, truth)

    assert (score.edges.tp, score.edges.n_pred, score.edges.n_true) == (6, 7, 6)
    truth.add_edge("j0", "j1", polyline=[[100, 50], [100, 90]], line_type="solid")
    assert score_graph(pred, truth).edges.tp == 7


def test_edge_with_wrong_line_type_is_not_matched(truth_graph: nx.MultiGraph) -> None:
    pred = truth_graph.copy()
    pred.edges["s3", "s1", 0]["line_type"] = "solid"

    score = score_graph(pred, truth_graph)

    assert score.edges.tp == 5 and score.nodes.f1 == 1.0


def test_wrong_class_unmatches_the_symbol_unless_labels_agree(
    truth_graph: nx.MultiGraph,
) -> None:
    pred = truth_graph.copy()
    pred.nodes["s0"]["class"] = "globe_valve"  # both are PID2Graph "valve"

    assert score_graph(pred, truth_graph).nodes.tp == 6
    assert score_graph(pred, truth_graph, label_map=pid2graph_label).nodes.tp == 7


def test_points_match_within_three_line_widths(truth_graph: nx.MultiGraph) -> None:
    near, far = truth_graph.copy(), truth_graph.copy()
    near.nodes["j0"]["point"] = [105.9, 50.0]  # line width 2 -> radius 6
    far.nodes["j0"]["point"] = [106.1, 50.0]

    assert score_graph(near, truth_graph).nodes.tp == 7
    assert score_graph(far, truth_graph).nodes.tp == 6
    assert score_graph(far, truth_graph, radius=7.0).nodes.tp == 7


def test_junction_does_not_match_an_endpoint(truth_graph: nx.MultiGraph) -> None:
    pred = truth_graph.copy()
    pred.nodes["ep0"]["kind"] = "junction"

    score = score_graph(pred, truth_graph)

    assert score.nodes.tp == 6 and score.nodes_by_kind["endpoint"].recall == 0.0


def test_graphml_has_pid2graph_attributes(truth_graph: nx.MultiGraph, tmp_path: Path) -> None:
    path = tmp_path / "graph.graphml"
    write_pid2graph_graphml(truth_graph, path)

    root = etree.parse(str(path))
    names = {(k.get("for"), k.get("attr.name")) for k in root.iterfind("g:key", GRAPHML_NS)}
    assert {("node", n) for n in ("label", "xmin", "xmax", "ymin", "ymax")} <= names
    assert ("edge", "edge_label") in names
    converted = graph_to_pid2graph(truth_graph)
    assert converted.nodes["s0"]["label"] == "valve"
    assert converted.nodes["s1"]["label"] == "tank"
    assert converted.nodes["j0"]["label"] == "connector"
    # a box of one line width (2 px) around the point
    assert [converted.nodes["j0"][k] for k in ("xmin", "xmax", "ymin", "ymax")] == [
        99.0,
        101.0,
        49.0,
        51.0,
    ]
    assert {lab for *_, lab in converted.edges(data="edge_label")} == {"solid", "non-solid"}
    assert list(tmp_path.iterdir()) == [path]


def test_failed_graphml_write_keeps_the_old_file(
    truth_graph: nx.MultiGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "graph.graphml"
    path.write_text("old")

    def broken(graph: Any, target: Any) -> None:
        Path(target).write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(nx, "write_graphml", broken)
    with pytest.raises(OSError, match="disk full"):
        write_pid2graph_graphml(truth_graph, path)

    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]


def test_graphml_round_trip_with_our_attributes(truth_graph: nx.MultiGraph, tmp_path: Path) -> None:
    path = tmp_path / "graph.graphml"
    write_pid2graph_graphml(truth_graph, path)

    loaded = load_pid2graph_graphml(path)

    assert loaded.graph["label_source"] == "class"
    assert_perfect(score_graph(loaded, truth_graph))
    assert_perfect(score_graph(loaded, truth_graph, label_map=pid2graph_label))
    assert loaded.nodes["s2"]["class"] == "centrifugal_pump"
    for u, v, attrs in truth_graph.edges(data=True):
        (back,) = [d["polyline"] for d in loaded.get_edge_data(u, v).values()]
        expected = [tuple(p) for p in attrs["polyline"]]
        assert back in (expected, expected[::-1])


def pid2graph_only(graph: nx.MultiGraph) -> nx.MultiGraph:
    """Our graph in PID2Graph names only, with bends and the bridge drawn as PID2Graph does:
    `connector` nodes at the dashed run's bends and on the j1-ep0 run, and a `crossing` node
    where the dashed run passes over s0-j0."""
    g = graph_to_pid2graph(graph)
    for _, attrs in g.nodes(data=True):
        del attrs["kind"]
        attrs.pop("class", None)
    for *_, attrs in g.edges(data=True):
        del attrs["polyline"]

    def point(node: str, label: str, x: float, y: float) -> None:
        g.add_node(node, label=label, xmin=x - 1, xmax=x + 1, ymin=y - 1, ymax=y + 1)

    point("x0", "crossing", 70, 50)
    point("b1", "connector", 70, 115)
    point("b2", "connector", 70, 10)
    point("b3", "connector", 170, 10)
    point("b4", "connector", 120, 90)
    g.remove_edge("s0", "j0")
    g.remove_edge("s3", "s1")
    g.remove_edge("j1", "ep0")
    solid, dashed = {"edge_label": "solid"}, {"edge_label": "non-solid"}
    g.add_edges_from([("s0", "x0", solid), ("x0", "j0", solid)])
    g.add_edges_from(
        [
            ("s3", "b1", dashed),
            ("b1", "x0", dashed),
            ("x0", "b2", dashed),
            ("b2", "b3", dashed),
            ("b3", "s1", dashed),
        ]
    )
    g.add_edges_from([("j1", "b4", solid), ("b4", "ep0", solid)])
    return g


def test_graphml_round_trip_with_pid2graph_names_only(
    truth_graph: nx.MultiGraph, tmp_path: Path
) -> None:
    path = tmp_path / "graph.graphml"
    nx.write_graphml(pid2graph_only(truth_graph), path)

    loaded = load_pid2graph_graphml(path)

    assert loaded.graph["label_source"] == "pid2graph"
    assert sorted(loaded.nodes) == sorted(truth_graph.nodes)  # bends and crossing are gone
    assert loaded.nodes["s0"]["class"] == "valve"
    assert {n: k for n, k in loaded.nodes(data="kind") if k != "symbol"} == {
        "j0": "junction",
        "j1": "junction",
        "ep0": "endpoint",
    }
    assert_perfect(score_graph(loaded, truth_graph, label_map=pid2graph_label))
    assert score_graph(loaded, truth_graph).nodes_by_kind["symbol"].tp == 0  # labels != classes
    (dashed,) = loaded.get_edge_data("s3", "s1").values()
    assert dashed["line_type"] == "dashed"
    assert {(round(x), round(y)) for x, y in dashed["polyline"]} >= {
        (70, 115),
        (70, 50),
        (70, 10),
        (170, 10),
    }


def test_crossing_pairs_runs_by_straight_continuation(tmp_path: Path) -> None:
    # Runs leave the crossing west, north, east, south; node order puts west next to north,
    # so pairing by order would join w-n and e-s.
    g = nx.MultiGraph()
    for node, label, (x, y) in [
        ("w", "valve", (0, 50)),
        ("n", "valve", (50, 0)),
        ("e", "pump", (100, 50)),
        ("s", "pump", (50, 100)),
        ("x", "crossing", (50, 50)),
    ]:
        g.add_node(node, label=label, xmin=x - 5, xmax=x + 5, ymin=y - 5, ymax=y + 5)
    g.add_edges_from([(n, "x", {"edge_label": "solid"}) for n in "wnes"])
    path = tmp_path / "cross.graphml"
    nx.write_graphml(g, path)

    loaded = load_pid2graph_graphml(path)

    assert sorted(tuple(sorted(e)) for e in loaded.edges()) == [("e", "w"), ("n", "s")]


def test_extra_labels_map_dataset_labels(tmp_path: Path) -> None:
    g = nx.MultiGraph()
    g.add_node("a", label="gate", xmin=0.0, xmax=10.0, ymin=0.0, ymax=10.0)
    g.add_node("b", label="node", xmin=49.0, xmax=51.0, ymin=4.0, ymax=6.0)
    g.add_edge("a", "b", edge_label="solid")
    path = tmp_path / "g.graphml"
    nx.write_graphml(g, path)

    loaded = load_pid2graph_graphml(path, extra_labels={"gate": "valve", "node": "connector"})

    assert loaded.nodes["a"]["class"] == "valve"
    assert loaded.nodes["b"] == {"kind": "endpoint", "point": [50.0, 5.0]}
    (edge,) = loaded.edges(data=True)
    assert edge[2]["polyline"][0] in [(5.0, 5.0), (50.0, 5.0)]
    assert edge[2]["length"] == 45.0
