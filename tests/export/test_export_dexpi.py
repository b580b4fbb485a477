"""DEXPI (Proteus XML): references, tees, coordinates, connections and DPI."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
from lxml import etree
from PIL import Image

import pid.export.dexpi as dexpi
from pid.core.errors import PidInputError
from pid.core.formats.graph import load_graph
from pid.core.formats.junctions import load_junctions
from pid.export.dexpi import (
    DexpiIntegrityError,
    dpi_of_image,
    read_dexpi_connections,
    write_dexpi,
)
from pid.export.fxml import pipe_ends
from pid.synth.sheet import Sheet, generate_sheet, write_sheet

HEIGHT = 1400
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    sheet: Sheet
    folder: Path
    graph: nx.MultiGraph  # as loaded from graph.json
    dexpi: Path
    root: Any
    dpi: float  # read back from original.png


@pytest.fixture(scope="module", params=["clean", "scan"])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    sheet = generate_sheet(3, 0, width=2000, height=HEIGHT, style=request.param)
    folder = write_sheet(sheet, tmp_path_factory.mktemp(request.param))
    graph = load_graph(folder / "graph.json")
    path = folder / "output.dexpi.xml"
    dpi = dpi_of_image(folder / "original.png", default=300.0)
    write_dexpi(graph, path, dpi=dpi, height_px=HEIGHT, timestamp=WHEN)
    return Case(sheet, folder, graph, path, etree.parse(str(path)).getroot(), dpi)


def _dpi(case: Case) -> float:
    return case.dpi


def _to_mm(case: Case, x: float, y: float) -> tuple[float, float]:
    dpi = _dpi(case)
    return x * 25.4 / dpi, (HEIGHT - y) * 25.4 / dpi


def _to_px(case: Case, x_mm: float, y_mm: float) -> tuple[float, float]:
    dpi = _dpi(case)
    return x_mm * dpi / 25.4, HEIGHT - y_mm * dpi / 25.4


def _node_of(element: Any) -> str:
    for attribute in element.findall("GenericAttributes/GenericAttribute"):
        if attribute.get("Name") == "pid:node":
            return str(attribute.get("Value"))
    raise AssertionError(f"{element.get('ID')} carries no pid:node")


def _find(element: Any, path: str) -> Any:
    found = element.find(path)
    assert found is not None, path
    return found


def _location(element: Any) -> tuple[float, float]:
    location = element.find("Position/Location")
    return float(location.get("X")), float(location.get("Y"))


def _tees(case: Case) -> list[Any]:
    return [e for e in case.root.iter("PipingComponent") if e.get("ComponentClass") == "PipeTee"]


def _undirected(edges: Iterable[tuple[Hashable, Hashable, str]]) -> Counter[Any]:
    return Counter((frozenset((u, v)), line_type) for u, v, line_type in edges)


def test_plant_information_and_drawing(case: Case) -> None:
    info = case.root.find("PlantInformation")
    assert info is not None
    assert {k: info.get(k) for k in ("SchemaVersion", "Units", "Discipline", "Is3D")} == {
        "SchemaVersion": "4.1.1",
        "Units": "mm",
        "Discipline": "PID",
        "Is3D": "no",
    }
    assert (info.get("Date"), info.get("Time"), info.get("OriginatingSystem")) == (
        "2024-05-06",
        "07:08:09",
        "pid",
    )
    high = case.root.find("Drawing/Extent/Max")
    assert high is not None
    width_mm, height_mm = 2000 * 25.4 / _dpi(case), HEIGHT * 25.4 / _dpi(case)
    assert float(high.get("X", "nan")) == pytest.approx(width_mm, abs=1e-3)
    assert float(high.get("Y", "nan")) == pytest.approx(height_mm, abs=1e-3)


def test_the_image_dpi_is_the_sheet_dpi(case: Case) -> None:
    # PNG stores pixels per metre, so the DPI comes back to within rounding of that unit.
    assert _dpi(case) == pytest.approx(case.sheet.dpi, rel=1e-3)


def test_ids_are_unique_and_every_reference_resolves(case: Case) -> None:
    ids = [e.get("ID") for e in case.root.iter() if e.get("ID") is not None]
    assert len(ids) == len(set(ids))
    connections = list(case.root.iter("Connection"))
    assert len(connections) == case.graph.number_of_edges()
    for connection in connections:
        assert connection.get("FromID") in ids
        assert connection.get("ToID") in ids
    for association in case.root.iter("Association"):
        assert association.get("ItemID") in ids


def test_connection_nodes_index_connection_points(case: Case) -> None:
    by_id = {e.get("ID"): e for e in case.root.iter() if e.get("ID") is not None}
    for connection in case.root.iter("Connection"):
        for end in ("From", "To"):
            index = connection.get(f"{end}Node")
            target = by_id[connection.get(f"{end}ID")]
            if target.tag == "ProcessInstrumentationFunction" or index is None:
                assert index is None
                continue
            points = target.find("ConnectionPoints")
            assert 1 <= int(index) < int(points.get("NumPoints"))
            assert int(points.get("NumPoints")) == len(points.findall("Node"))


def test_one_pipe_tee_per_junction_node_and_none_at_bridges(case: Case) -> None:
    junctions = {n: a["point"] for n, a in case.graph.nodes(data=True) if a["kind"] == "junction"}
    tees = _tees(case)
    assert len(tees) == len(junctions) > 0
    assert sorted(_node_of(t) for t in tees) == sorted(junctions)
    bridges = [
        j.point for j in load_junctions(case.folder / "junctions.json") if j.kind == "bridge"
    ]
    assert len(bridges) > 0
    for tee in tees:
        x, y = _to_px(case, *_location(tee))
        assert math.dist((x, y), junctions[_node_of(tee)]) < 0.01
        assert min(math.dist((x, y), b) for b in bridges) > 5.0


def test_coordinates_are_millimetres_with_y_up(case: Case) -> None:
    node, attrs = next((n, a) for n, a in case.graph.nodes(data=True) if a["kind"] == "junction")
    tee = next(t for t in _tees(case) if _node_of(t) == node)
    x_mm, y_mm = _location(tee)
    expected = (
        attrs["point"][0] * 25.4 / _dpi(case),
        (HEIGHT - attrs["point"][1]) * 25.4 / _dpi(case),
    )
    assert (x_mm, y_mm) == pytest.approx(expected, abs=1e-4)
    # Y flipped: a point high on the sheet (small row) has a large Y.
    assert y_mm > 0 and (attrs["point"][1] < HEIGHT / 2) == (y_mm > HEIGHT * 25.4 / _dpi(case) / 2)


def test_center_lines_follow_the_polylines(case: Case) -> None:
    solid = [(u, v, a) for u, v, a in case.graph.edges(data=True) if a["line_type"] == "solid"]
    segments = [
        s for s in case.root.iter("PipingNetworkSegment") if s.find("Connection") is not None
    ]
    by_id = {e.get("ID"): e for e in case.root.iter() if e.get("ID") is not None}
    assert len(segments) == len(solid)
    for segment, (u, v, attrs) in zip(segments, solid, strict=True):
        coordinates = [(float(c.get("X")), float(c.get("Y"))) for c in segment.iter("Coordinate")]
        expected = [_to_mm(case, x, y) for x, y in attrs["polyline"]]
        assert np.allclose(coordinates, expected, atol=1e-4)
        # The segment's From end is the node its centre line starts at.
        start, _ = pipe_ends(case.graph, u, v, attrs["polyline"])
        from_element = by_id[segment.find("Connection").get("FromID")]
        assert _node_of(from_element) == start


def test_element_kinds_follow_the_class_table(case: Case) -> None:
    graph = case.graph
    symbols = {n: a["class"] for n, a in graph.nodes(data=True) if a["kind"] == "symbol"}
    equipment = {_node_of(e): e for e in case.root.findall("Equipment")}
    assert {symbols[n] for n in equipment} == {
        "centrifugal_pump",
        "heat_exchanger",
        "tank",
        "vessel",
    }
    for node, element in equipment.items():
        solid_degree = sum(1 for *_, t in graph.edges(node, data="line_type") if t == "solid")
        assert len(element.findall("Nozzle")) == solid_degree
    instruments = [_node_of(e) for e in case.root.findall("ProcessInstrumentationFunction")]
    assert sorted(instruments) == sorted(n for n, c in symbols.items() if c == "instrument")
    valves = [
        e for e in case.root.iter("PipingComponent") if e.get("ComponentClass") == "GateValve"
    ]
    assert len(valves) == list(symbols.values()).count("gate_valve")
    connectors = list(case.root.iter("PipeConnectorSymbol"))
    assert len(connectors) == list(symbols.values()).count("off_page_connector")
    ends = [
        e
        for e in case.root.iter("PipingComponent")
        if e.get("ComponentClass") == "CustomPipingComponent"
    ]
    assert len(ends) == sum(1 for _, k in graph.nodes(data="kind") if k == "endpoint")


def test_signal_lines_are_information_flows(case: Case) -> None:
    dashed = [(u, v) for u, v, t in case.graph.edges(data="line_type") if t == "dashed"]
    flows = case.root.findall("InformationFlow")
    assert len(flows) == len(dashed) > 0
    assert all(f.get("ComponentClass") == "SignalLineFunction" for f in flows)


def test_reread_connections_equal_the_graph_edges(case: Case) -> None:
    connections = read_dexpi_connections(case.dexpi)
    assert _undirected(connections) == _undirected(case.graph.edges(data="line_type"))


def test_integer_node_ids_come_back_as_integers(tmp_path: Path) -> None:
    graph = nx.MultiGraph(width=200, height=100)
    graph.add_node(0, kind="symbol", bbox=[10, 10, 40, 40], **{"class": "vessel"})
    graph.add_node(1, kind="junction", point=[100.0, 25.0])
    graph.add_node(2, kind="endpoint", point=[150.0, 25.0])
    graph.add_node(3, kind="symbol", bbox=[90, 60, 110, 80], **{"class": "instrument"})
    graph.add_edge(0, 1, polyline=[[40, 25], [100, 25]], line_type="solid")
    graph.add_edge(1, 2, polyline=[[100, 25], [150, 25]], line_type="solid")
    graph.add_edge(1, 3, polyline=[[100, 25], [100, 60]], line_type="dashed")
    graph.add_edge(0, 0, polyline=[[10, 20], [0, 20], [0, 30], [10, 30]], line_type="solid")
    path = tmp_path / "small.dexpi.xml"
    write_dexpi(graph, path, dpi=25.4, height_px=100)
    connections = read_dexpi_connections(path)
    assert _undirected(connections) == _undirected(graph.edges(data="line_type"))
    assert all(isinstance(u, int) and isinstance(v, int) for u, v, _ in connections)
    root = etree.parse(str(path)).getroot()
    vessel = root.find("Equipment")
    assert vessel is not None and len(vessel.findall("Nozzle")) == 3  # the loop needs two
    # dpi 25.4: one pixel is one millimetre; row 25 of 100 is 75 mm above the bottom edge.
    tee = next(e for e in root.iter("PipingComponent") if e.get("ComponentClass") == "PipeTee")
    assert _location(tee) == (100.0, 75.0)


def test_writer_refuses_a_dangling_reference(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dexpi.dexpi_document

    def broken(*args: Any, **kwargs: Any) -> Any:
        root = real(*args, **kwargs)
        segment = next(root.iter("PipingNetworkSegment"))
        _find(segment, "Connection").set("ToID", "Nowhere-1")
        return root

    monkeypatch.setattr(dexpi, "dexpi_document", broken)
    path = tmp_path / "x.dexpi.xml"
    with pytest.raises(DexpiIntegrityError, match="ToID='Nowhere-1' names no element"):
        write_dexpi(case.graph, path, dpi=300.0, height_px=HEIGHT)
    assert not path.exists()


def test_reader_refuses_broken_files(case: Case, tmp_path: Path) -> None:
    document = etree.parse(str(case.dexpi))
    flow = next(document.getroot().iter("InformationFlow"))
    _find(flow, "Connection").set("FromID", "Gone-1")
    broken = tmp_path / "broken.xml"
    document.write(str(broken))
    with pytest.raises(PidInputError, match="FromID='Gone-1' names no element"):
        read_dexpi_connections(broken)
    with pytest.raises(PidInputError, match="file not found"):
        read_dexpi_connections(tmp_path / "missing.xml")
    (tmp_path / "other.xml").write_text("<Flowsheet/>")
    with pytest.raises(PidInputError, match="expected a PlantModel root"):
        read_dexpi_connections(tmp_path / "other.xml")


@pytest.mark.parametrize(
    ("dpi", "height_px", "message"),
    [
        (0.0, HEIGHT, "dpi: expected a number > 0"),
        (float("nan"), HEIGHT, "dpi"),
        (300.0, 0, "height_px"),
    ],
)
def test_bad_scale_is_refused(
    case: Case, tmp_path: Path, dpi: float, height_px: int, message: str
) -> None:
    with pytest.raises(PidInputError, match=message):
        write_dexpi(case.graph, tmp_path / "x.xml", dpi=dpi, height_px=height_px)
    assert not (tmp_path / "x.xml").exists()


def test_dpi_of_image(tmp_path: Path) -> None:
    pixels = np.full((20, 30), 255, dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "with.png", dpi=(150, 150))
    Image.fromarray(pixels).save(tmp_path / "without.png")
    Image.fromarray(pixels).save(tmp_path / "with.tif", dpi=(400, 400))
    assert dpi_of_image(tmp_path / "with.png", default=72.0) == pytest.approx(150.0, rel=1e-3)
    assert dpi_of_image(tmp_path / "without.png", default=72.0) == 72.0
    assert dpi_of_image(tmp_path / "with.tif", default=72.0) == pytest.approx(400.0)
    (tmp_path / "not.png").write_text("no image")
    with pytest.raises(PidInputError, match="cannot read image"):
        dpi_of_image(tmp_path / "not.png", default=72.0)
    with pytest.raises(PidInputError, match="file not found"):
        dpi_of_image(tmp_path / "missing.png", default=72.0)
