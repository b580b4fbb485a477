"""FXML: XSD validity, exact round trips, and refusal of broken documents."""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from lxml import etree

from pid.core.errors import PidInputError
from pid.core.formats.graph import load_graph
from pid.export.fxml import NAMESPACE, fxml_schema, read_fxml, write_fxml
from pid.synth.sheet import Sheet, generate_sheet, write_sheet

NS = {"fx": NAMESPACE}


@dataclass(frozen=True)
class Case:
    sheet: Sheet
    folder: Path


@pytest.fixture(scope="module", params=["clean", "scan"])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    sheet = generate_sheet(3, 0, width=2000, height=1400, style=request.param)
    return Case(sheet, write_sheet(sheet, tmp_path_factory.mktemp(request.param)))


@pytest.fixture(scope="module")
def truth(case: Case) -> nx.MultiGraph:
    return load_graph(case.folder / "graph.json")


@pytest.fixture
def fxml_path(truth: nx.MultiGraph, case: Case, tmp_path: Path) -> Path:
    path = tmp_path / "output.fxml"
    write_fxml(truth, path, dpi=case.sheet.dpi)
    return path


def _assert_identical(a: nx.MultiGraph, b: nx.MultiGraph) -> None:
    assert nx.utils.graphs_equal(a, b)
    assert dict(a.nodes(data=True)) == dict(b.nodes(data=True))
    edges_a = {(u, v, k): d for u, v, k, d in a.edges(keys=True, data=True)}
    edges_b = {(u, v, k): d for u, v, k, d in b.edges(keys=True, data=True)}
    assert set(map(_undirected, edges_a)) == set(map(_undirected, edges_b))
    for (u, v, k), attrs in edges_a.items():
        other = b.edges[u, v, k]
        assert attrs == other
        assert _types(attrs["polyline"]) == _types(other["polyline"])


def _undirected(edge: tuple[Any, Any, int]) -> tuple[frozenset[Any], int]:
    return frozenset(edge[:2]), edge[2]


def _types(polyline: list[Any]) -> set[tuple[type, ...]]:
    return {(type(p), *map(type, p)) for p in polyline}


def test_written_fxml_validates_against_the_shipped_xsd(
    fxml_path: Path, truth: nx.MultiGraph
) -> None:
    document = etree.parse(str(fxml_path))
    assert fxml_schema().validate(document), fxml_schema().error_log
    root = document.getroot()
    assert root.tag == f"{{{NAMESPACE}}}Flowsheet"
    assert root.get("version") == "1.0"
    counts = {
        kind: len(root.findall(f"fx:{tag}", NS))
        for kind, tag in (("symbol", "Symbol"), ("junction", "Junction"), ("endpoint", "Endpoint"))
    }
    kinds = [k for _, k in truth.nodes(data="kind")]
    assert counts == {kind: kinds.count(kind) for kind in counts}
    assert len(root.findall("fx:Pipe", NS)) == truth.number_of_edges()


def test_sheet_records_size_and_dpi(fxml_path: Path, case: Case) -> None:
    sheet = etree.parse(str(fxml_path)).getroot().find("fx:Sheet", NS)
    assert sheet is not None
    assert (sheet.get("width"), sheet.get("height")) == ("2000", "1400")
    assert float(sheet.get("dpi", "nan")) == case.sheet.dpi


def test_symbols_carry_the_class_table_names(fxml_path: Path) -> None:
    root = etree.parse(str(fxml_path)).getroot()
    by_class = {s.get("class"): s for s in root.findall("fx:Symbol", NS)}
    valve = by_class["gate_valve"]
    assert (valve.get("dexpiClass"), valve.get("pid2graphLabel"), valve.get("role")) == (
        "GateValve",
        "valve",
        "inline",
    )
    assert by_class["instrument"].get("dexpiClass") == "ProcessInstrumentationFunction"


def test_round_trip_gives_the_graph_json_graph(fxml_path: Path, truth: nx.MultiGraph) -> None:
    _assert_identical(truth, read_fxml(fxml_path))


def test_in_memory_graph_round_trips_to_the_graph_json_graph(
    case: Case, truth: nx.MultiGraph, tmp_path: Path
) -> None:
    # The generator's own graph (ints, NumPy floats, edges listed against their polylines'
    # direction) reads back as the graph.json graph.
    write_fxml(case.sheet.graph, tmp_path / "g.fxml")
    _assert_identical(truth, read_fxml(tmp_path / "g.fxml"))


def test_pipes_run_from_their_from_node(fxml_path: Path, truth: nx.MultiGraph) -> None:
    root = etree.parse(str(fxml_path)).getroot()
    for pipe in root.findall("fx:Pipe", NS):
        first = pipe.find("fx:Polyline/fx:P", NS)
        assert first is not None
        start = (float(first.get("x", "nan")), float(first.get("y", "nan")))
        near = _distance(truth.nodes[pipe.get("from")], start)
        far = _distance(truth.nodes[pipe.get("to")], start)
        assert near <= far


def _distance(attrs: dict[str, Any], point: tuple[float, float]) -> float:
    if attrs["kind"] == "symbol":
        x1, y1, x2, y2 = attrs["bbox"]
        return math.hypot(
            max(x1 - point[0], 0, point[0] - x2), max(y1 - point[1], 0, point[1] - y2)
        )
    return math.dist(attrs["point"], point)


def _small_graph() -> nx.MultiGraph:
    graph = nx.MultiGraph(width=300, height=200, label_source="class", origin={"seed": 7})
    graph.add_node(
        1, kind="symbol", bbox=[10.0, 10.0, 40.0, 30.0], confidence=0.93, **{"class": "my_pump"}
    )
    graph.add_node("1x", kind="junction", point=[100.0, 20.0], score=[0.5, 0.25])
    graph.add_node("ep", kind="endpoint", point=[100.0, 90.0])
    graph.add_edge(1, "1x", key=3, polyline=[(40.0, 20.0), (100.0, 20.0)], line_type="solid")
    graph.add_edge(
        "1x",
        "ep",
        key=0,
        polyline=[(100.0, 20.0), (100.0, 90.0)],
        line_type="dashed",
        width=1.5,
        length=70,
        note="a\nb",
    )
    graph.add_edge(
        "1x", "ep", key=1, polyline=[(100.0, 20.0), (120.0, 50.0), (100.0, 90.0)], line_type="solid"
    )
    return graph


def test_integer_ids_keys_and_extra_attributes_round_trip(tmp_path: Path) -> None:
    graph = _small_graph()
    write_fxml(graph, tmp_path / "small.fxml")
    back = read_fxml(tmp_path / "small.fxml")
    assert set(back.nodes) == {1, "1x", "ep"}
    assert back.nodes[1] == {
        "kind": "symbol",
        "class": "my_pump",
        "bbox": [10.0, 10.0, 40.0, 30.0],
        "confidence": 0.93,
    }
    assert back.graph == graph.graph
    assert back.edges[1, "1x", 3]["polyline"] == [(40.0, 20.0), (100.0, 20.0)]
    dashed = back.edges["1x", "ep", 0]
    assert dashed == {**graph.edges["1x", "ep", 0]}
    assert type(dashed["length"]) is int and type(dashed["width"]) is float
    assert nx.utils.graphs_equal(graph, back)
    symbol = etree.parse(str(tmp_path / "small.fxml")).getroot().find("fx:Symbol", NS)
    assert symbol is not None
    # A class outside the table: DEXPI's generic class and PID2Graph's "general", no role.
    assert (
        symbol.get("idType"),
        symbol.get("dexpiClass"),
        symbol.get("pid2graphLabel"),
        symbol.get("role"),
    ) == (
        "integer",
        "Equipment",
        "general",
        None,
    )


def test_ids_that_collide_as_text_are_refused(tmp_path: Path) -> None:
    graph = _small_graph()
    graph.add_node("1", kind="endpoint", point=[5.0, 5.0])
    with pytest.raises(PidInputError, match=r"graph: the FXML would not be valid: .*[Dd]uplicate"):
        write_fxml(graph, tmp_path / "x.fxml")
    assert not (tmp_path / "x.fxml").exists()


def test_write_replaces_atomically(truth: nx.MultiGraph, tmp_path: Path) -> None:
    path = tmp_path / "output.fxml"
    path.write_text("old")
    write_fxml(truth, path)
    assert path.read_bytes().startswith(b"<?xml")
    assert [p.name for p in tmp_path.iterdir()] == ["output.fxml"]  # no temporary file left
    broken = truth.copy()
    broken.add_node("bad", kind="symbol", bbox=[0, 0, 1, 1])  # no class
    before = path.read_bytes()
    with pytest.raises(PidInputError, match=r"nodes\['bad'\]\.class"):
        write_fxml(broken, path)
    assert path.read_bytes() == before


def test_bad_dpi_is_refused(truth: nx.MultiGraph, tmp_path: Path) -> None:
    with pytest.raises(PidInputError, match="dpi: expected a number > 0"):
        write_fxml(truth, tmp_path / "x.fxml", dpi=0.0)


# --- hand-broken documents ------------------------------------------------------------------


def _edit(fxml_path: Path, tmp_path: Path, edit: Any) -> Path:
    document = etree.parse(str(fxml_path))
    edit(document.getroot())
    out = tmp_path / "broken.fxml"
    document.write(str(out), xml_declaration=True, encoding="UTF-8")
    return out


def _first(root: Any, tag: str) -> Any:
    element = root.find(f"fx:{tag}", NS)
    assert element is not None
    return element


BROKEN = {
    "dangling_to": (
        lambda r: _first(r, "Pipe").set("to", "nope"),
        r"No match found for key-sequence \['nope'\]",
    ),
    "missing_line_type": (lambda r: _first(r, "Pipe").attrib.pop("lineType"), "lineType"),
    "missing_class": (lambda r: _first(r, "Symbol").attrib.pop("class"), "class"),
    "duplicate_node_id": (
        lambda r: _first(r, "Junction").set("id", _first(r, "Symbol").get("id")),
        "[Dd]uplicate key-sequence",
    ),
    "nan_coordinate": (lambda r: _first(r, "Symbol").find("fx:Box", NS).set("x1", "NaN"), "x1"),
    "bad_line_type": (lambda r: _first(r, "Pipe").set("lineType", "wavy"), "wavy"),
    "one_point_polyline": (
        lambda r: [
            p.getparent().remove(p) for p in r.findall("fx:Pipe[1]/fx:Polyline/fx:P", NS)[1:]
        ],
        "P",
    ),
    "wrong_version": (lambda r: r.set("version", "2.0"), "version"),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_hand_broken_fxml_is_refused_by_the_xsd(
    fxml_path: Path, tmp_path: Path, breakage: str
) -> None:
    edit, message = BROKEN[breakage]
    broken = _edit(fxml_path, tmp_path, edit)
    assert not fxml_schema().validate(etree.parse(str(broken)))
    with pytest.raises(PidInputError, match=message) as info:
        read_fxml(broken)
    assert str(info.value).startswith(f"{broken}: not valid FXML: line ")


def test_problems_beyond_the_xsd_are_refused(fxml_path: Path, tmp_path: Path) -> None:
    def bad_box(root: Any) -> None:  # x2 < x1: valid XSD, but not graph.json's schema
        _first(root, "Symbol").find("fx:Box", NS).set("x2", "-1")

    broken = _edit(fxml_path, tmp_path, bad_box)
    with pytest.raises(PidInputError, match=r"broken\.fxml: nodes\['s0'\]\.bbox"):
        read_fxml(broken)

    def twice(root: Any) -> None:
        pipe = _first(root, "Pipe")
        copy = etree.fromstring(etree.tostring(pipe))
        copy.set("id", "another")
        root.append(copy)

    with pytest.raises(PidInputError, match="is given twice"):
        read_fxml(_edit(fxml_path, tmp_path, twice))

    def not_integer(root: Any) -> None:
        _first(root, "Junction").set("idType", "integer")

    with pytest.raises(PidInputError, match="has idType integer but is not an integer"):
        read_fxml(_edit(fxml_path, tmp_path, not_integer))


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PidInputError, match="file not found"):
        read_fxml(tmp_path / "missing.fxml")
    bad = tmp_path / "bad.fxml"
    bad.write_text("<Flowsheet")
    with pytest.raises(PidInputError, match="not well-formed XML"):
        read_fxml(bad)


def test_xsd_ships_inside_the_package() -> None:
    xsd = resources.files("pid.export").joinpath("fxml.xsd")
    assert xsd.is_file()
    assert b'targetNamespace="urn:pid:fxml:1"' in xsd.read_bytes()
