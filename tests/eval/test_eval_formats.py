"""Validation of the artifacts pid.eval reads: each error names the file and the place."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
from PIL import Image

from pid.core.errors import PidInputError
from pid.core.formats.boxes import load_boxes
from pid.core.formats.graph import load_graph
from pid.core.formats.images import read_mask
from pid.core.formats.junctions import load_junctions
from pid.eval.pid2graph import load_pid2graph_graphml

Mutation = Callable[[dict[str, Any]], None]


def _set(path: list[str | int], value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: list[str | int]) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def test_load_graph_reads_the_model(truth_sheet: Path) -> None:
    graph = load_graph(truth_sheet / "graph.json")

    assert isinstance(graph, nx.MultiGraph)
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (7, 6)
    assert graph.nodes["s1"]["class"] == "vessel"
    assert graph.graph["width"] == 200


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set(["nodes", 3, "bbox"], [1, 2, 3]), "nodes[3].bbox: expected 4 numbers"),
        (_set(["nodes", 3, "bbox"], [1, 2, "x", 4]), "nodes[3].bbox: expected 4 numbers"),
        (_set(["nodes", 0, "bbox"], [40, 40, 20, 60]), "nodes[0].bbox: expected [x1, y1, x2, y2]"),
        (_delete(["nodes", 4, "point"]), "nodes[4].point: expected 2 numbers"),
        (_set(["nodes", 5, "point"], [1.0, float("nan")]), "nodes[5].point: expected 2 numbers"),
        (_set(["nodes", 0, "kind"], "valve"), "nodes[0].kind: expected one of"),
        (_delete(["nodes", 0, "class"]), "nodes[0].class: expected a class name"),
        (_delete(["nodes", 1, "id"]), "nodes[1].id"),
        (_set(["nodes", 1, "id"], "s0"), "nodes[1].id: duplicate id 's0'"),
        (_set(["edges", 1, "target"], "zz"), "edges[1].target: unknown node 'zz'"),
        (_set(["edges", 0, "line_type"], "dotted"), "edges[0].line_type: expected solid or dashed"),
        (_set(["edges", 0, "polyline"], [[1, 2], [3]]), "edges[0].polyline[1]: expected 2 numbers"),
        (_set(["edges", 0, "polyline"], [[1, 2]]), "edges[0].polyline: expected at least 2"),
        (_set(["edges", 2, "width"], -1), "edges[2].width: expected a number >= 0"),
        (_set(["nodes"], {}), "nodes: expected a list"),
    ],
)
def test_invalid_graph_json(truth_sheet: Path, mutate: Mutation, expected: str) -> None:
    path = truth_sheet / "graph.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))

    with pytest.raises(PidInputError) as err:
        load_graph(path)

    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_unreadable_graph_json(tmp_path: Path) -> None:
    path = tmp_path / "graph.json"
    with pytest.raises(PidInputError, match=r"graph\.json: file not found"):
        load_graph(path)
    path.write_text("{nodes: ")
    with pytest.raises(PidInputError, match=r"graph.json: not valid JSON: line 1 column 2"):
        load_graph(path)


def test_load_boxes_matches_categories_by_name(truth_sheet: Path) -> None:
    boxes = load_boxes(truth_sheet / "symbols.coco.json")

    assert boxes.image_size == (200, 160)
    assert {b.category for b in boxes.boxes} == {
        "gate_valve",
        "vessel",
        "centrifugal_pump",
        "instrument",
    }
    pump = next(b for b in boxes.boxes if b.category == "centrifugal_pump")
    assert pump.bbox == (85.0, 110.0, 30.0, 30.0) and pump.score == 1.0


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set(["annotations", 0, "bbox"], [1, 2, 3]), "annotations[0].bbox: expected 4 numbers"),
        (_set(["annotations", 1, "bbox"], [1, 2, 0, 3]), "annotations[1].bbox: width and height"),
        (_set(["annotations", 1, "bbox"], [1, 2, 5, -3]), "annotations[1].bbox: width and height"),
        (_set(["annotations", 2, "category_id"], 99), "annotations[2].category_id: 99 is not"),
        (_delete(["annotations", 2, "category_id"]), "annotations[2].category_id: None is not"),
        (_set(["annotations", 0, "bbox"], [190, 10, 20, 10]), "outside the 200x160 image"),
        (_set(["annotations", 0, "bbox"], [-5, 10, 20, 10]), "outside the 200x160 image"),
        (_set(["annotations", 0, "score"], 1.5), "annotations[0].score: expected a number in"),
        (_set(["categories", 1, "id"], 10), "categories[1].id: duplicate id 10"),
        (_set(["images"], [{"id": 1}, {"id": 2}]), "images: expected one image"),
    ],
)
def test_invalid_boxes(truth_sheet: Path, mutate: Mutation, expected: str) -> None:
    path = truth_sheet / "symbols.coco.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))

    with pytest.raises(PidInputError) as err:
        load_boxes(path)

    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value)


def test_boxes_outside_are_accepted_without_image_size(truth_sheet: Path) -> None:
    path = truth_sheet / "symbols.coco.json"
    data = json.loads(path.read_text())
    data["images"] = [{"id": 1}]
    data["annotations"][0]["bbox"] = [190, 10, 20, 10]
    path.write_text(json.dumps(data))

    assert load_boxes(path).image_size is None


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([{"point": [1, 2], "kind": "tee"}], "[0].kind: expected junction, bridge or ambiguous"),
        ([{"kind": "junction"}], "[0].point: expected 2 numbers"),
        ([{"point": [1, 2], "kind": "bridge", "degree": 2.5}], "[0].degree: expected an integer"),
        ({"point": [1, 2]}, "expected a list"),
    ],
)
def test_invalid_junctions(tmp_path: Path, items: Any, expected: str) -> None:
    path = tmp_path / "junctions.json"
    path.write_text(json.dumps(items))

    with pytest.raises(PidInputError, match=r"junctions\.json") as err:
        load_junctions(path)

    assert expected in str(err.value)


def test_load_junctions(truth_sheet: Path) -> None:
    points = load_junctions(truth_sheet / "junctions.json")

    assert [(p.point, p.kind, p.degree) for p in points] == [
        ((100.0, 50.0), "junction", 3),
        ((100.0, 90.0), "junction", 3),
        ((70.0, 50.0), "bridge", 4),
    ]


def test_load_mask_thresholds_to_bool(tmp_path: Path) -> None:
    pixels = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "m.png")

    mask = read_mask(tmp_path / "m.png")

    assert mask.dtype == np.bool_ and mask.tolist() == [[False, False, True, True]]
    (tmp_path / "bad.png").write_text("not a png")
    with pytest.raises(PidInputError, match=r"bad.png: cannot read image"):
        read_mask(tmp_path / "bad.png")


def _graphml(tmp_path: Path, node_attrs: dict[str, Any], edge_attrs: dict[str, Any]) -> Path:
    g = nx.MultiGraph()
    g.add_node("a", **{"label": "valve", "xmin": 0.0, "xmax": 9.0, "ymin": 0.0, "ymax": 9.0})
    g.add_node("b", **node_attrs)
    g.add_edge("a", "b", **edge_attrs)
    path = tmp_path / "g.graphml"
    nx.write_graphml(g, path)
    return path


def test_invalid_graphml(tmp_path: Path) -> None:
    box = {"xmin": 40.0, "xmax": 42.0, "ymin": 4.0, "ymax": 6.0}
    no_xmax = {"label": "connector", "xmin": 1.0, "ymin": 1.0, "ymax": 2.0}
    with pytest.raises(PidInputError, match=r"g.graphml: node 'b': expected a number xmax"):
        load_pid2graph_graphml(_graphml(tmp_path, no_xmax, {}))
    with pytest.raises(PidInputError, match=r"edge_label: expected solid or non-solid"):
        load_pid2graph_graphml(
            _graphml(tmp_path, {"label": "connector", **box}, {"edge_label": "dotted"})
        )
    with pytest.raises(PidInputError, match=r"node 'b': kind: expected one of"):
        load_pid2graph_graphml(_graphml(tmp_path, {"kind": "tee", **box}, {}))
    (tmp_path / "bad.graphml").write_text("<graphml><graph>")
    with pytest.raises(PidInputError, match=r"bad.graphml: not valid GraphML"):
        load_pid2graph_graphml(tmp_path / "bad.graphml")


def test_graphml_box_as_text_and_mixed_key_types(tmp_path: Path) -> None:
    # Writers differ: boxes declared as strings, or xmin declared twice (double and long).
    path = tmp_path / "g.graphml"
    path.write_text(
        """<?xml version="1.0"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="d0" for="node" attr.name="label" attr.type="string"/>
  <key id="d1" for="node" attr.name="xmin" attr.type="string"/>
  <key id="d2" for="node" attr.name="xmax" attr.type="string"/>
  <key id="d3" for="node" attr.name="ymin" attr.type="string"/>
  <key id="d4" for="node" attr.name="ymax" attr.type="string"/>
  <key id="d5" for="node" attr.name="xmin" attr.type="long"/>
  <key id="d6" for="node" attr.name="xmax" attr.type="long"/>
  <key id="d7" for="node" attr.name="ymin" attr.type="long"/>
  <key id="d8" for="node" attr.name="ymax" attr.type="long"/>
  <key id="d9" for="edge" attr.name="edge_label" attr.type="string"/>
  <graph edgedefault="directed">
    <node id="v"><data key="d0">valve</data><data key="d1">10.5</data><data key="d2">30</data>
      <data key="d3">20</data><data key="d4">40</data></node>
    <node id="c"><data key="d0">connector</data><data key="d5">50</data><data key="d6">54</data>
      <data key="d7">60</data><data key="d8">64</data></node>
    <edge source="v" target="c"><data key="d9">non-solid</data></edge>
  </graph>
</graphml>
"""
    )

    graph = load_pid2graph_graphml(path)

    assert not graph.is_directed()
    assert graph.nodes["v"]["bbox"] == [10.5, 20.0, 30.0, 40.0]
    assert graph.nodes["c"] == {"kind": "endpoint", "point": [52.0, 62.0]}
    assert [lt for *_, lt in graph.edges(data="line_type")] == ["dashed"]
