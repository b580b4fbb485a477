"""export_all: the export stage's three files, and GraphML that scores perfectly."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pid.eval.graph import score_graph
from pid.eval.pid2graph import load_pid2graph_graphml
from pid.export import export_all, read_dexpi_connections, read_fxml
from pid.synth.sheet import Sheet, generate_sheet

HEIGHT = 1400


@pytest.fixture(scope="module", params=["clean", "scan"])
def sheet(request: pytest.FixtureRequest) -> Sheet:
    return generate_sheet(3, 0, width=2000, height=HEIGHT, style=request.param)


@pytest.fixture(scope="module")
def exported(sheet: Sheet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("export") / "nested"
    return export_all(sheet.graph, out, dpi=sheet.dpi, height_px=HEIGHT)


def test_writes_the_three_artifacts(exported: dict[str, Path]) -> None:
    assert {key: path.name for key, path in exported.items()} == {
        "fxml": "output.fxml",
        "dexpi": "output.dexpi.xml",
        "graphml": "graph.graphml",
    }
    folder = exported["fxml"].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in exported.values())


def test_graphml_scores_perfectly_against_the_graph(
    sheet: Sheet, exported: dict[str, Path]
) -> None:
    pred = load_pid2graph_graphml(exported["graphml"])
    score = score_graph(pred, sheet.graph)
    assert score.nodes.f1 == 1.0
    assert score.edges.f1 == 1.0
    assert score.nodes.n_true == sheet.graph.number_of_nodes()
    assert score.edges.n_true == sheet.graph.number_of_edges()


def test_fxml_and_dexpi_hold_the_same_graph(sheet: Sheet, exported: dict[str, Path]) -> None:
    graph = read_fxml(exported["fxml"])
    assert sorted(graph.nodes) == sorted(sheet.graph.nodes)
    pairs = Counter((frozenset((u, v)), t) for u, v, t in read_dexpi_connections(exported["dexpi"]))
    assert pairs == Counter((frozenset((u, v)), t) for u, v, t in graph.edges(data="line_type"))
