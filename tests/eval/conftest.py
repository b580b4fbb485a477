"""Hand-built ground-truth sheets for the pid.eval tests.

The sheet (200 x 160 px, line width 2):

    s3 (instrument) --dashed--> up at x=70, across at y=10, down into s1 (vessel)
    s0 (gate valve) --- j0 --- s1        the dashed run crosses s0-j0 at (70, 50): a bridge
                         |
                        j1 --- ep0
                         |
                        s2 (pump)

4 symbols, 2 junctions, 1 endpoint, 6 edges; junctions.json holds j0, j1 (junctions) and the
bridge at (70, 50).
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import networkx as nx
import numpy as np
import pytest

SIZE = (200, 160)  # width, height
LINE_WIDTH = 2

SYMBOLS = {
    "s0": ("gate_valve", [20.0, 40.0, 40.0, 60.0]),
    "s1": ("vessel", [150.0, 20.0, 190.0, 80.0]),
    "s2": ("centrifugal_pump", [85.0, 110.0, 115.0, 140.0]),
    "s3": ("instrument", [20.0, 105.0, 50.0, 125.0]),
}
POINTS = {"j0": ("junction", [100.0, 50.0]), "j1": ("junction", [100.0, 90.0])}
POINTS["ep0"] = ("endpoint", [140.0, 90.0])
EDGES = [
    ("s0", "j0", "solid", [[40, 50], [100, 50]]),
    ("j0", "s1", "solid", [[100, 50], [150, 50]]),
    ("j0", "j1", "solid", [[100, 50], [100, 90]]),
    ("j1", "s2", "solid", [[100, 90], [100, 110]]),
    ("j1", "ep0", "solid", [[100, 90], [140, 90]]),
    ("s3", "s1", "dashed", [[50, 115], [70, 115], [70, 10], [170, 10], [170, 20]]),
]
JUNCTIONS = [
    {"point": [100.0, 50.0], "kind": "junction", "degree": 3, "confidence": 1.0},
    {"point": [100.0, 90.0], "kind": "junction", "degree": 3, "confidence": 1.0},
    {"point": [70.0, 50.0], "kind": "bridge", "degree": 4, "confidence": 1.0},
]


def build_truth_graph() -> nx.MultiGraph:
    graph = nx.MultiGraph(width=SIZE[0], height=SIZE[1])
    for node, (cls, bbox) in SYMBOLS.items():
        graph.add_node(node, kind="symbol", bbox=list(bbox), **{"class": cls})
    for node, (kind, point) in POINTS.items():
        graph.add_node(node, kind=kind, point=list(point))
    for u, v, line_type, polyline in EDGES:
        pts = [[float(x), float(y)] for x, y in polyline]
        length = float(sum(np.hypot(*np.subtract(b, a)) for a, b in itertools.pairwise(pts)))
        graph.add_edge(u, v, polyline=pts, length=length, line_type=line_type, width=LINE_WIDTH)
    return graph


def coco_of_graph(graph: nx.MultiGraph, size: tuple[int, int] = SIZE) -> dict[str, Any]:
    names = sorted({a["class"] for _, a in graph.nodes(data=True) if a["kind"] == "symbol"})
    ids = {name: 10 + i for i, name in enumerate(names)}  # ids deliberately not 1..n
    annotations = []
    for node, attrs in graph.nodes(data=True):
        if attrs["kind"] != "symbol":
            continue
        x1, y1, x2, y2 = attrs["bbox"]
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": 1,
                "category_id": ids[attrs["class"]],
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
                "score": 1.0,
                "symbol_id": node,
            }
        )
    return {
        "images": [{"id": 1, "file_name": "original.png", "width": size[0], "height": size[1]}],
        "categories": [{"id": i, "name": n, "supercategory": "x"} for n, i in ids.items()],
        "annotations": annotations,
    }


def pipe_mask_of_graph(graph: nx.MultiGraph, size: tuple[int, int] = SIZE) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), dtype=np.uint8)
    for _, _, polyline in graph.edges(data="polyline"):
        pts = np.round(np.asarray(polyline)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(mask, [pts], isClosed=False, color=255, thickness=3)
    return mask


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def write_graph(path: Path, graph: nx.MultiGraph) -> None:
    write_json(path, nx.node_link_data(graph, edges="edges"))


def write_sheet(
    folder: Path,
    graph: nx.MultiGraph | None = None,
    junctions: list[dict[str, Any]] | None = None,
    size: tuple[int, int] = SIZE,
) -> Path:
    """Write a complete ground-truth sheet folder and return it."""
    graph = graph if graph is not None else build_truth_graph()
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "original.png"), np.full((size[1], size[0]), 255, np.uint8))
    write_graph(folder / "graph.json", graph)
    write_json(folder / "symbols.coco.json", coco_of_graph(graph, size))
    write_json(folder / "junctions.json", junctions if junctions is not None else JUNCTIONS)
    cv2.imwrite(str(folder / "pipe_mask.png"), pipe_mask_of_graph(graph, size))
    return folder


@pytest.fixture
def truth_graph() -> nx.MultiGraph:
    return build_truth_graph()


@pytest.fixture
def truth_sheet(tmp_path: Path) -> Path:
    """A folder of sheets holding one ground-truth sheet, `sheet1`."""
    return write_sheet(tmp_path / "truth" / "sheet1")


@pytest.fixture
def copy_sheet(tmp_path: Path) -> Callable[[Path, str], Path]:
    """Copy a sheet folder to tmp_path/pred/<name> and return the copy."""

    def copy(src: Path, name: str = "sheet1") -> Path:
        dst = tmp_path / "pred" / name
        shutil.copytree(src, dst)
        return dst

    return copy


class SheetKit:
    """The builders above, handed to tests through the `kit` fixture."""

    SIZE = SIZE
    LINE_WIDTH = LINE_WIDTH
    JUNCTIONS = JUNCTIONS
    build_truth_graph = staticmethod(build_truth_graph)
    coco_of_graph = staticmethod(coco_of_graph)
    pipe_mask_of_graph = staticmethod(pipe_mask_of_graph)
    write_json = staticmethod(write_json)
    write_graph = staticmethod(write_graph)
    write_sheet = staticmethod(write_sheet)


@pytest.fixture
def kit() -> type[SheetKit]:
    return SheetKit
