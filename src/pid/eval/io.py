"""Loading and validating a sheet folder's artifacts for scoring.

Every loader checks its file against docs/formats.md and raises `PidInputError` with one line
that names the file and the failing place, e.g. ``.../graph.json: nodes[3].bbox: expected 4
numbers``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from xml.etree.ElementTree import ParseError

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from pid.core.classes import PID2GRAPH_CONNECTOR, PID2GRAPH_CROSSING, pid2graph_label
from pid.core.errors import PidInputError
from pid.export.graphml import (
    LINE_TYPE_OF_EDGE_LABEL,
    Point,
    node_position,
    orient_polyline,
    polyline_length,
)

NODE_KINDS = ("symbol", "junction", "endpoint")
POINT_KINDS = ("junction", "endpoint")
LINE_TYPES = ("solid", "dashed")
JUNCTION_KINDS = ("junction", "bridge", "ambiguous")
PID2GRAPH_BOX_KEYS = ("xmin", "xmax", "ymin", "ymax")

#: Value of `graph.graph["label_source"]` after loading: where symbol classes came from.
LABELS_FROM_CLASS = "class"
LABELS_FROM_PID2GRAPH = "pid2graph"


@dataclass(frozen=True, slots=True)
class Box:
    """One symbol box: category name, `bbox` as (x, y, w, h) in pixels, and a score in [0, 1]."""

    category: str
    bbox: tuple[float, float, float, float]
    score: float = 1.0


@dataclass(frozen=True, slots=True)
class BoxSet:
    """The boxes of one sheet and, when the file says, its image size (width, height)."""

    boxes: tuple[Box, ...]
    image_size: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class JunctionPoint:
    """One meeting point of pipes from junctions.json."""

    point: Point
    kind: str
    degree: int | None = None
    confidence: float = 1.0


# --- small validation helpers ---------------------------------------------------------------


def _fail(path: Path | str, where: str, problem: str) -> NoReturn:
    raise PidInputError(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def _as_number(value: object) -> float | None:
    """Return `value` as a float when it is a finite JSON number (not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _is_number(value: object) -> bool:
    return _as_number(value) is not None


def _numbers(value: object, n: int, path: Path | str, where: str) -> tuple[float, ...]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != n
        or not all(_is_number(v) for v in value)
    ):
        _fail(path, where, f"expected {n} numbers")
    return tuple(float(v) for v in value)


def _mapping(value: object, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, where, "expected an object")
    return value


def _list(value: object, path: Path | str, where: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(path, where, "expected a list")
    return value


def _polyline(value: object, path: Path | str, where: str) -> list[Point]:
    points = _list(value, path, where)
    if len(points) < 2:
        _fail(path, where, "expected at least 2 points")
    out = []
    for i, p in enumerate(points):
        x, y = _numbers(p, 2, path, f"{where}[{i}]")
        out.append((x, y))
    return out


def read_json(path: Path) -> Any:
    """Return the parsed JSON of `path`, or raise `PidInputError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(path, "", "file not found")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(path, "", f"cannot read: {exc}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(path, "", f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}")


# --- graph.json -----------------------------------------------------------------------------


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
    data = _mapping(read_json(path), path, "")
    if "edges" not in data and "links" in data:
        _fail(path, "links", "expected 'edges' (write with nx.node_link_data(g, edges='edges'))")
    nodes = _list(data.get("nodes"), path, "nodes")
    edges = _list(data.get("edges"), path, "edges")
    graph = nx.MultiGraph()
    graph.graph.update(_mapping(data.get("graph", {}), path, "graph"))
    for i, raw in enumerate(nodes):
        node_id, attrs = _graph_node(raw, path, f"nodes[{i}]")
        if node_id in graph:
            _fail(path, f"nodes[{i}].id", f"duplicate id {node_id!r}")
        graph.add_node(node_id, **attrs)
    for i, raw in enumerate(edges):
        source, target, key, attrs = _graph_edge(raw, graph, path, f"edges[{i}]")
        graph.add_edge(source, target, key=key, **attrs)
    return graph


def _graph_node(raw: object, path: Path, where: str) -> tuple[Any, dict[str, Any]]:
    node = _mapping(raw, path, where)
    node_id = node.get("id")
    attrs = check_graph_node(node_id, {k: v for k, v in node.items() if k != "id"}, path, where)
    return node_id, attrs


def check_graph_node(
    node_id: object, attrs: Mapping[str, Any], source: Path | str, where: str
) -> dict[str, Any]:
    """Check one node against graph.json's schema and return its attributes normalised.

    Shared by `load_graph` (the JSON form) and `pid.export.validate.validate_graph` (a graph in
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
        _fail(source, f"{where}.id", "expected a string or integer id")
    kind = attrs.get("kind")
    if kind not in NODE_KINDS:
        _fail(source, f"{where}.kind", f"expected one of {', '.join(NODE_KINDS)}, got {kind!r}")
    out = dict(attrs)
    if kind == "symbol":
        cls = attrs.get("class")
        if not isinstance(cls, str) or not cls:
            _fail(source, f"{where}.class", "expected a class name")
        x1, y1, x2, y2 = _numbers(attrs.get("bbox"), 4, source, f"{where}.bbox")
        if x2 < x1 or y2 < y1:
            _fail(source, f"{where}.bbox", "expected [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2")
        out["bbox"] = [x1, y1, x2, y2]
    else:
        out["point"] = list(_numbers(attrs.get("point"), 2, source, f"{where}.point"))
    return out


def _graph_edge(
    raw: object, graph: nx.MultiGraph, path: Path, where: str
) -> tuple[Any, Any, int | None, dict[str, Any]]:
    edge = _mapping(raw, path, where)
    ends = []
    for end in ("source", "target"):
        node = edge.get(end)
        if isinstance(node, list | dict) or node not in graph:
            _fail(path, f"{where}.{end}", f"unknown node {node!r}")
        ends.append(node)
    key = edge.get("key")
    attrs = {k: v for k, v in edge.items() if k not in ("source", "target", "key")}
    return ends[0], ends[1], key, check_graph_edge(key, attrs, path, where)


def check_graph_edge(
    key: object, attrs: Mapping[str, Any], source: Path | str, where: str
) -> dict[str, Any]:
    """Check one edge against graph.json's schema and return its attributes normalised.

    Shared by `load_graph` and `pid.export.validate.validate_graph` (see `check_graph_node`).

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
        _fail(source, f"{where}.key", "expected an integer")
    line_type = attrs.get("line_type")
    if line_type not in LINE_TYPES:
        _fail(source, f"{where}.line_type", f"expected solid or dashed, got {line_type!r}")
    out = dict(attrs)
    out["polyline"] = _polyline(attrs.get("polyline"), source, f"{where}.polyline")
    for name in ("width", "length"):
        value = attrs.get(name)
        if value is not None and (not _is_number(value) or value < 0):
            _fail(source, f"{where}.{name}", "expected a number >= 0")
    return out


# --- graph.graphml (PID2Graph) ----------------------------------------------------------------


def load_pid2graph_graphml(
    path: Path, extra_labels: Mapping[str, str] | None = None
) -> nx.MultiGraph:
    """Load a PID2Graph GraphML graph into our graph model.

    Parameters
    ----------
    path : Path
        GraphML with node `label`, `xmin`, `xmax`, `ymin`, `ymax` and edge `edge_label`.
    extra_labels : Mapping[str, str], optional
        Maps node labels outside PID2Graph's set to PID2Graph labels (or to `connector` /
        `crossing`); unmapped labels are kept as symbol classes.

    Returns
    -------
    nx.MultiGraph
        Our model (as `load_graph`). Symbols get `class` = their label (or our own `class`
        attribute when present). `connector` nodes of degree 2 are bends and are contracted (the
        two runs become one edge, polylines joined); connectors left with degree <= 1 become
        endpoints, the rest junctions. `crossing` nodes are removed by pairing their runs into
        straight pass-throughs. Nodes carrying our own `kind` keep it and are never contracted.
        `graph.graph["label_source"]` is ``"class"`` when every symbol had our `class`
        attribute, else ``"pid2graph"``.

    Notes
    -----
    Edges without a `polyline` attribute get a straight one between their nodes' reference
    points (point, or box centre); a crossing's runs are paired by the direction of each run's
    first segment out of the crossing, most opposite first (a maximum-weight matching).
    """
    raw = _read_graphml(path)
    work, label_source = _work_graph(raw, path, extra_labels or {})
    for node in [n for n, k in work.nodes(data="kind") if k == PID2GRAPH_CROSSING]:
        _resolve_crossing(work, node)
    for node in [n for n, k in work.nodes(data="kind") if k == PID2GRAPH_CONNECTOR]:
        if work.degree(node) == 2 and not work.has_edge(node, node):
            _merge_runs(work, node, list(work.edges(node, keys=True, data=True)))
    out = _model_graph(work)
    out.graph.update(
        {k: v for k, v in raw.graph.items() if k not in ("node_default", "edge_default")}
    )
    out.graph["label_source"] = label_source
    return out


def _read_graphml(path: Path) -> nx.MultiGraph:
    if not path.is_file():
        _fail(path, "", "file not found")
    try:
        raw = nx.read_graphml(path, force_multigraph=True)
    except (ParseError, nx.NetworkXError, ValueError, KeyError, TypeError) as exc:
        _fail(path, "", f"not valid GraphML: {exc}")
    return raw.to_undirected() if raw.is_directed() else raw


def _work_graph(
    raw: nx.MultiGraph, path: Path, extra: Mapping[str, str]
) -> tuple[nx.MultiGraph, str]:
    """Return the graph with nodes typed symbol/junction/endpoint/connector/crossing."""
    work = nx.MultiGraph()
    label_source = LABELS_FROM_CLASS
    for node, attrs in raw.nodes(data=True):
        typed = _typed_node(node, attrs, path, extra)
        if typed["kind"] == "symbol" and "class" not in attrs:
            label_source = LABELS_FROM_PID2GRAPH
        work.add_node(node, **typed)
    for u, v, attrs in raw.edges(data=True):
        work.add_edge(u, v, **_typed_edge(work, u, v, attrs, path))
    return work, label_source


def _typed_node(
    node: Any, attrs: dict[str, Any], path: Path, extra: Mapping[str, str]
) -> dict[str, Any]:
    where = f"node {node!r}"
    box = []
    for key in PID2GRAPH_BOX_KEYS:
        raw_value = attrs.get(key)
        # Some GraphML writers declare the box as strings; accept numeric text.
        value = _as_number(_float_or_none(raw_value) if isinstance(raw_value, str) else raw_value)
        if value is None:
            _fail(path, where, f"expected a number {key}, got {attrs.get(key)!r}")
        box.append(value)
    xmin, xmax, ymin, ymax = box
    label = str(attrs.get("label", ""))
    label = extra.get(label, label)
    kind = attrs.get("kind")
    if kind is not None and kind not in NODE_KINDS:
        _fail(path, where, f"kind: expected one of {', '.join(NODE_KINDS)}, got {kind!r}")
    if kind is None:
        kind = label if label in (PID2GRAPH_CONNECTOR, PID2GRAPH_CROSSING) else "symbol"
    if kind == "symbol":
        cls = str(attrs.get("class") or label)
        if not cls:
            _fail(path, where, "symbol without label or class")
        return {"kind": kind, "class": cls, "bbox": [xmin, ymin, xmax, ymax]}
    return {"kind": kind, "point": [(xmin + xmax) / 2.0, (ymin + ymax) / 2.0]}


def _typed_edge(
    work: nx.MultiGraph, u: Any, v: Any, attrs: dict[str, Any], path: Path
) -> dict[str, Any]:
    where = f"edge {u!r}-{v!r}"
    label = attrs.get("edge_label", "solid")
    if label not in LINE_TYPE_OF_EDGE_LABEL:
        _fail(path, where, f"edge_label: expected solid or non-solid, got {label!r}")
    start, end = node_position(work.nodes[u]), node_position(work.nodes[v])
    raw_polyline = attrs.get("polyline")
    if raw_polyline is None:
        polyline = [start, end]
    else:
        try:
            parsed = json.loads(str(raw_polyline))
        except json.JSONDecodeError:
            _fail(path, f"{where}: polyline", "not valid JSON")
        polyline = orient_polyline(_polyline(parsed, path, f"{where}: polyline"), start, end)
    out: dict[str, Any] = {
        "line_type": LINE_TYPE_OF_EDGE_LABEL[label],
        "polyline": polyline,
        "start": u,
    }
    width = _as_number(attrs.get("width"))
    if width is not None:
        out["width"] = width
    return out


def _polyline_from(attrs: dict[str, Any], node: Any) -> list[Point]:
    """Return an edge's polyline running out of `node` (`start` records where it begins)."""
    points: list[Point] = attrs["polyline"]
    return points if attrs["start"] == node else points[::-1]


def _direction_out(graph: nx.MultiGraph, node: Any, attrs: dict[str, Any]) -> Point:
    origin = node_position(graph.nodes[node])
    for x, y in _polyline_from(attrs, node):
        if math.dist((x, y), origin) > 0.5:
            length = math.dist((x, y), origin)
            return (x - origin[0]) / length, (y - origin[1]) / length
    return 0.0, 0.0


def _resolve_crossing(graph: nx.MultiGraph, node: Any) -> None:
    """Replace a crossing by straight pass-throughs; leftover runs end at a connector."""
    arms = list(graph.edges(node, keys=True, data=True))
    if graph.has_edge(node, node):
        graph.nodes[node]["kind"] = PID2GRAPH_CONNECTOR
        return
    directions = [_direction_out(graph, node, attrs) for _, _, _, attrs in arms]
    # Pair the runs so the summed "oppositeness" (1 - cos, 2 for a straight line) is largest.
    candidates = nx.Graph()
    for i in range(len(arms)):
        for j in range(i + 1, len(arms)):
            cos = directions[i][0] * directions[j][0] + directions[i][1] * directions[j][1]
            candidates.add_edge(i, j, weight=1.0 - cos)
    pairs = nx.max_weight_matching(candidates, maxcardinality=True)
    for i, j in pairs:
        _merge_runs(graph, node, [arms[i], arms[j]])
    if node in graph and graph.degree(node) == 0:  # a crossing of nothing
        graph.remove_node(node)
    elif node in graph:  # an odd run out: it ends here, like at any connector
        graph.nodes[node]["kind"] = PID2GRAPH_CONNECTOR


def _merge_runs(
    graph: nx.MultiGraph, node: Any, arms: Sequence[tuple[Any, Any, Any, dict[str, Any]]]
) -> None:
    """Join two runs that meet at `node` into one edge; drop `node` once it has no runs."""
    (_, a, key_a, attrs_a), (_, b, key_b, attrs_b) = arms
    polyline = _polyline_from(attrs_a, node)[::-1] + _polyline_from(attrs_b, node)[1:]
    merged = {k: v for k, v in attrs_a.items() if k not in ("polyline", "start")}
    if "width" not in merged and "width" in attrs_b:
        merged["width"] = attrs_b["width"]
    graph.remove_edge(node, a, key=key_a)
    graph.remove_edge(node, b, key=key_b)
    graph.add_edge(a, b, polyline=polyline, start=a, **merged)
    if graph.degree(node) == 0:
        graph.remove_node(node)


def _model_graph(work: nx.MultiGraph) -> nx.MultiGraph:
    out = nx.MultiGraph()
    for node, attrs in work.nodes(data=True):
        kind = attrs["kind"]
        if kind == PID2GRAPH_CONNECTOR:
            kind = "endpoint" if work.degree(node) <= 1 else "junction"
        if kind == "symbol":
            cls = attrs["class"]
            out.add_node(
                node, kind=kind, bbox=attrs["bbox"], label=pid2graph_label(cls), **{"class": cls}
            )
        else:
            out.add_node(node, kind=kind, point=attrs["point"])
    for u, v, attrs in work.edges(data=True):
        polyline = _polyline_from(attrs, u)
        extra = {k: v for k, v in attrs.items() if k not in ("polyline", "start")}
        out.add_edge(u, v, polyline=polyline, length=polyline_length(polyline), **extra)
    return out


# --- boxes, junctions, masks, images ----------------------------------------------------------


def load_boxes(path: Path, *, image_size: tuple[int, int] | None = None) -> BoxSet:
    """Load and validate a COCO box file (symbols.coco.json, detections.json, ...).

    Parameters
    ----------
    path : Path
        COCO JSON with `images` (at most one: the sheet), `categories` and `annotations`.
    image_size : tuple[int, int] or None
        (width, height) of the drawing the boxes belong to, when the caller knows it: boxes are
        checked against it, and a different size in the file's `images` is an error.

    Returns
    -------
    BoxSet
        Boxes with their category *name*, (x, y, w, h) pixels and score (1.0 when absent), and
        the image size (width, height): `image_size` when given, else the file's, if any.

    Raises
    ------
    PidInputError
        On a bbox that is not 4 numbers, a width or height <= 0, a category_id missing from the
        file's own categories, a score outside [0, 1], a box outside the image, or a file image
        size that differs from `image_size`.
    """
    data = _mapping(read_json(path), path, "")
    names = _category_names(_list(data.get("categories", []), path, "categories"), path)
    size = _image_size(_list(data.get("images", []), path, "images"), path)
    if image_size is not None:
        if size is not None and size != image_size:
            _fail(
                path,
                "images[0]",
                f"{size[0]}x{size[1]} does not match the {image_size[0]}x{image_size[1]} image",
            )
        size = image_size
    annotations = _list(data.get("annotations", []), path, "annotations")
    boxes = tuple(
        _box(raw, names, size, path, f"annotations[{i}]") for i, raw in enumerate(annotations)
    )
    return BoxSet(boxes=boxes, image_size=size)


def _category_names(categories: list[Any], path: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    for i, raw in enumerate(categories):
        cat = _mapping(raw, path, f"categories[{i}]")
        cat_id, name = cat.get("id"), cat.get("name")
        if isinstance(cat_id, bool) or not isinstance(cat_id, int):
            _fail(path, f"categories[{i}].id", "expected an integer")
        if not isinstance(name, str) or not name:
            _fail(path, f"categories[{i}].name", "expected a name")
        if cat_id in names:
            _fail(path, f"categories[{i}].id", f"duplicate id {cat_id}")
        names[cat_id] = name
    return names


def _image_size(images: list[Any], path: Path) -> tuple[int, int] | None:
    if len(images) > 1:
        _fail(path, "images", f"expected one image (one sheet), found {len(images)}")
    if not images:
        return None
    image = _mapping(images[0], path, "images[0]")
    if image.get("width") is None and image.get("height") is None:
        return None
    size = []
    for name in ("width", "height"):
        value = _as_number(image.get(name))
        if value is None or value <= 0:
            _fail(path, f"images[0].{name}", "expected a number > 0")
        size.append(int(value))
    return size[0], size[1]


#: Slack for rounding when checking that a box lies inside the image.
_INSIDE_TOLERANCE_PX = 0.5


def _box(
    raw: object, names: dict[int, str], size: tuple[int, int] | None, path: Path, where: str
) -> Box:
    ann = _mapping(raw, path, where)
    x, y, w, h = _numbers(ann.get("bbox"), 4, path, f"{where}.bbox")
    if w <= 0 or h <= 0:
        _fail(path, f"{where}.bbox", f"width and height must be > 0, got {w:g}x{h:g}")
    cat_id = ann.get("category_id")
    if isinstance(cat_id, bool) or not isinstance(cat_id, int) or cat_id not in names:
        _fail(path, f"{where}.category_id", f"{cat_id!r} is not in the file's categories")
    score = ann.get("score", 1.0)
    if not _is_number(score) or not 0.0 <= score <= 1.0:
        _fail(path, f"{where}.score", f"expected a number in [0, 1], got {score!r}")
    if size is not None:
        tol = _INSIDE_TOLERANCE_PX
        if x < -tol or y < -tol or x + w > size[0] + tol or y + h > size[1] + tol:
            _fail(
                path,
                f"{where}.bbox",
                f"[{x:g}, {y:g}, {w:g}, {h:g}] lies outside the {size[0]}x{size[1]} image",
            )
    return Box(category=names[cat_id], bbox=(x, y, w, h), score=float(score))


def load_junctions(path: Path) -> list[JunctionPoint]:
    """Load and validate a junctions.json.

    Parameters
    ----------
    path : Path
        A JSON list of ``{"point": [x, y], "kind": "junction"|"bridge"|"ambiguous", "degree":
        int, "confidence": float}``; `degree` and `confidence` are optional.

    Returns
    -------
    list[JunctionPoint]
        The points in file order.
    """
    items = _list(read_json(path), path, "")
    out = []
    for i, raw in enumerate(items):
        where = f"[{i}]"
        item = _mapping(raw, path, where)
        x, y = _numbers(item.get("point"), 2, path, f"{where}.point")
        kind = item.get("kind")
        if kind not in JUNCTION_KINDS:
            _fail(path, f"{where}.kind", f"expected junction, bridge or ambiguous, got {kind!r}")
        degree = item.get("degree")
        if degree is not None and (isinstance(degree, bool) or not isinstance(degree, int)):
            _fail(path, f"{where}.degree", "expected an integer")
        confidence = item.get("confidence", 1.0)
        if not _is_number(confidence):
            _fail(path, f"{where}.confidence", "expected a number")
        out.append(JunctionPoint((x, y), str(kind), degree, float(confidence)))
    return out


def load_mask(path: Path) -> NDArray[np.bool_]:
    """Load a 0/255 mask image as a boolean array of shape (height, width); > 127 is set."""
    try:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"))
    except FileNotFoundError:
        _fail(path, "", "file not found")
    except (OSError, UnidentifiedImageError) as exc:
        _fail(path, "", f"cannot read image: {exc}")
    return gray > 127


def image_size(path: Path) -> tuple[int, int]:
    """Return (width, height) of an image file without decoding its pixels."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        _fail(path, "", "file not found")
    except (OSError, UnidentifiedImageError) as exc:
        _fail(path, "", f"cannot read image: {exc}")


def check_same_size(
    pred_size: tuple[int, int], truth_size: tuple[int, int], pred_path: Path, truth_path: Path
) -> None:
    """Raise `PidInputError` naming both files and sizes when the sizes differ."""
    if pred_size != truth_size:
        raise PidInputError(
            f"{pred_path} is {pred_size[0]}x{pred_size[1]} but {truth_path} is "
            f"{truth_size[0]}x{truth_size[1]}: prediction and truth must be the same size"
        )
