"""The graph schema check shared by load_graph and every exporter."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import pytest

from pid.core.errors import PidInputError
from pid.core.formats.graph import graph_to_json, load_graph
from pid.export import export_all, validate_graph, write_dexpi, write_fxml, write_graphml
from pid.synth.sheet import generate_sheet

HEIGHT = 1400


@pytest.fixture(scope="module", params=["clean", "scan"])
def graph(request: pytest.FixtureRequest) -> nx.MultiGraph:
    sheet = generate_sheet(3, 0, width=2000, height=HEIGHT, style=request.param)
    return sheet.graph


def _first_edge(graph: nx.MultiGraph) -> tuple[str, str, int]:
    u, v, key = next(iter(graph.edges(keys=True)))
    return u, v, key


def _break_kind(g: nx.MultiGraph) -> str:
    del g.nodes["s0"]["kind"]
    return "graph: nodes['s0'].kind: expected one of symbol, junction, endpoint, got None"


def _break_bbox(g: nx.MultiGraph) -> str:
    g.nodes["s0"]["bbox"] = [1.0, 2.0, 3.0]
    return "graph: nodes['s0'].bbox: expected 4 numbers"


def _break_point(g: nx.MultiGraph) -> str:
    g.nodes["j0"]["point"] = ["a", 1.0]
    return "graph: nodes['j0'].point: expected 2 numbers"


def _break_line_type(g: nx.MultiGraph) -> str:
    u, v, key = _first_edge(g)
    g.edges[u, v, key]["line_type"] = "wavy"
    return f"graph: edges[{(u, v, key)!r}].line_type: expected solid or dashed, got 'wavy'"


def _break_polyline(g: nx.MultiGraph) -> str:
    u, v, key = _first_edge(g)
    g.edges[u, v, key]["polyline"] = [[1.0, 2.0]]
    return f"graph: edges[{(u, v, key)!r}].polyline: expected at least 2 points"


def _break_width(g: nx.MultiGraph) -> str:
    u, v, key = _first_edge(g)
    g.edges[u, v, key]["width"] = -2
    return f"graph: edges[{(u, v, key)!r}].width: expected a number >= 0"


def _break_key(g: nx.MultiGraph) -> str:
    u, v, key = _first_edge(g)
    attrs = dict(g.edges[u, v, key])
    g.add_edge(u, v, key="x", **attrs)
    return f"graph: edges[{(u, v, 'x')!r}].key: expected an integer"


def _break_node_id(g: nx.MultiGraph) -> str:
    g.add_node((1, 2), kind="junction", point=[5.0, 5.0])
    return "graph: nodes[(1, 2)].id: expected a string or integer id"


def _break_sheet_width(g: nx.MultiGraph) -> str:
    g.graph["width"] = -5
    return "graph: graph.width: expected a number > 0, got -5"


BREAKERS: list[Callable[[nx.MultiGraph], str]] = [
    _break_kind,
    _break_bbox,
    _break_point,
    _break_line_type,
    _break_polyline,
    _break_width,
    _break_key,
    _break_node_id,
    _break_sheet_width,
]


def test_generated_graph_passes(graph: nx.MultiGraph) -> None:
    validate_graph(graph)


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__)
def test_broken_graph_names_the_failing_path(
    graph: nx.MultiGraph, breaker: Callable[[nx.MultiGraph], str]
) -> None:
    broken = copy.deepcopy(graph)
    message = breaker(broken)
    with pytest.raises(PidInputError) as info:
        validate_graph(broken)
    assert str(info.value) == message


def test_directed_graph_is_refused(graph: nx.MultiGraph) -> None:
    with pytest.raises(PidInputError, match="expected an undirected networkx MultiGraph"):
        validate_graph(nx.MultiDiGraph(graph))


def test_load_graph_and_validate_graph_share_one_schema(
    graph: nx.MultiGraph, tmp_path: Path
) -> None:
    # The same defect, once in graph.json and once in memory, fails with the same problem text.
    data = graph_to_json(graph)
    data["nodes"][0].pop("kind")
    data["edges"][0]["line_type"] = "wavy"
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PidInputError) as from_file:
        load_graph(path)
    broken = copy.deepcopy(graph)
    first = data["nodes"][0]["id"]
    del broken.nodes[first]["kind"]
    with pytest.raises(PidInputError) as from_memory:
        validate_graph(broken)
    problem = "kind: expected one of symbol, junction, endpoint, got None"
    assert str(from_file.value) == f"{path}: nodes[0].{problem}"
    assert str(from_memory.value) == f"graph: nodes[{first!r}].{problem}"


def _fxml(g: nx.MultiGraph, out: Path) -> None:
    write_fxml(g, out / "output.fxml", dpi=300.0)


def _dexpi(g: nx.MultiGraph, out: Path) -> None:
    write_dexpi(g, out / "output.dexpi.xml", dpi=300.0, height_px=HEIGHT)


def _graphml(g: nx.MultiGraph, out: Path) -> None:
    write_graphml(g, out / "graph.graphml")


def _all(g: nx.MultiGraph, out: Path) -> None:
    export_all(g, out, dpi=300.0, height_px=HEIGHT)


@pytest.mark.parametrize("exporter", [_fxml, _dexpi, _graphml, _all], ids=lambda f: f.__name__)
@pytest.mark.parametrize("breaker", [_break_kind, _break_line_type], ids=lambda f: f.__name__)
def test_every_exporter_refuses_a_graph_failing_the_schema(
    graph: nx.MultiGraph,
    exporter: Callable[[nx.MultiGraph, Path], None],
    breaker: Callable[[nx.MultiGraph], str],
    tmp_path: Path,
) -> None:
    broken = copy.deepcopy(graph)
    message = breaker(broken)
    with pytest.raises(PidInputError) as info:
        exporter(broken, tmp_path)
    assert str(info.value) == message
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
