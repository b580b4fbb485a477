"""FXML: this project's XML flowsheet format for the validated graph.

No public P&ID format of that name exists; this module defines one (docs/fxml.md), ships its XSD
(`fxml.xsd`, namespace ``urn:pid:fxml:1``), validates every document it writes or reads against
it with lxml, and reads a document back into the very graph it was written from.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, cast

import networkx as nx
from lxml import etree

from pid.core.classes import CLASSES_BY_NAME, dexpi_class, pid2graph_label
from pid.core.errors import PidInputError
from pid.core.files import replace_atomically
from pid.core.formats.graph import GRAPH_SOURCE, SHEET_SIZE_KEYS, validate_graph
from pid.export.xmlfile import parse_xml

NAMESPACE = "urn:pid:fxml:1"
FXML_VERSION = "1.0"
XSD_RESOURCE = "fxml.xsd"

#: Attributes with an element or XML attribute of their own; anything else is an `Attribute`.
SYMBOL_KEYS = frozenset({"kind", "class", "bbox"})
POINT_KEYS = frozenset({"kind", "point"})
PIPE_KEYS = frozenset({"polyline", "line_type", "width", "length"})
GRAPH_KEYS = frozenset(SHEET_SIZE_KEYS)

#: FXML element of each node kind, both ways.
ELEMENT_OF_KIND = {"symbol": "Symbol", "junction": "Junction", "endpoint": "Endpoint"}
KIND_OF_ELEMENT = {element: kind for kind, element in ELEMENT_OF_KIND.items()}

_INTEGER = re.compile(r"[+-]?[0-9]+")

NodeId = str | int
Point = tuple[float, float]


# --- writing ----------------------------------------------------------------------------------


def write_fxml(graph: nx.MultiGraph, path: Path, *, dpi: float | None = None) -> None:
    """Write `graph` as FXML, validated against the shipped XSD, atomically.

    Parameters
    ----------
    graph : nx.MultiGraph
        A graph in our model (graph.json's schema); checked with `validate_graph` first.
    path : Path
        Destination file; written to a temporary file in the same folder, then moved over
        `path` (`os.replace`), so a reader never sees half a file.
    dpi : float, optional
        Resolution of the sheet's original.png in dots per inch, recorded in `Sheet/@dpi`.

    Raises
    ------
    PidInputError
        When the graph fails the schema, `dpi` is not a number > 0, or the document would not
        validate against fxml.xsd (e.g. node ids ``1`` and ``"1"`` both present).
    """
    validate_graph(graph)
    write_checked_fxml(graph, path, dpi=dpi)


def write_checked_fxml(graph: nx.MultiGraph, path: Path, *, dpi: float | None = None) -> None:
    """`write_fxml` for a graph already checked with `validate_graph` (`export_all` checks
    once for all three files)."""
    if dpi is not None:
        check_dpi(dpi)
    document = fxml_document(graph, dpi=dpi)
    _assert_valid(document, GRAPH_SOURCE)
    data = etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    replace_atomically(Path(path), write_bytes(data))


def write_bytes(data: bytes) -> Callable[[Path], None]:
    """Return a writer of `data` for `replace_atomically`."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return write


def fxml_document(graph: nx.MultiGraph, *, dpi: float | None = None) -> etree._Element:
    """Return the FXML `Flowsheet` element of an already validated graph (not yet checked
    against the XSD; `write_fxml` does that)."""
    # The default namespace has the key None, which lxml-stubs does not allow for.
    nsmap = cast(dict[str, str], {None: NAMESPACE})
    root = etree.Element(_q("Flowsheet"), nsmap=nsmap)
    root.set("version", FXML_VERSION)
    sheet = etree.SubElement(root, _q("Sheet"))
    for name in SHEET_SIZE_KEYS:
        if graph.graph.get(name) is not None:
            sheet.set(name, format_number(graph.graph[name]))
    if dpi is not None:
        sheet.set("dpi", format_number(dpi))
    _add_attributes(root, graph.graph, GRAPH_KEYS, "graph")
    for node, attrs in graph.nodes(data=True):
        _add_node(root, node, attrs)
    for index, (u, v, key, attrs) in enumerate(graph.edges(keys=True, data=True)):
        _add_pipe(root, graph, index, (u, v, key), attrs)
    return root


def _add_node(root: etree._Element, node: NodeId, attrs: Mapping[str, Any]) -> None:
    where = f"nodes[{node!r}]"
    kind = str(attrs["kind"])
    element = etree.SubElement(root, _q(ELEMENT_OF_KIND[kind]))
    _set(element, "id", str(node), f"{where}.id")
    if isinstance(node, int):
        element.set("idType", "integer")
    if kind == "symbol":
        cls = str(attrs["class"])
        _set(element, "class", cls, f"{where}.class")
        element.set("dexpiClass", dexpi_class(cls))
        element.set("pid2graphLabel", pid2graph_label(cls))
        known = CLASSES_BY_NAME.get(cls)
        if known is not None:
            element.set("role", str(known.role))
        box = etree.SubElement(element, _q("Box"))
        for name, value in zip(("x1", "y1", "x2", "y2"), attrs["bbox"], strict=True):
            box.set(name, format_number(value))
        _add_attributes(element, attrs, SYMBOL_KEYS, where)
    else:
        _add_point(element, "Point", attrs["point"])
        _add_attributes(element, attrs, POINT_KEYS, where)


def _add_pipe(
    root: etree._Element,
    graph: nx.MultiGraph,
    index: int,
    edge: tuple[NodeId, NodeId, int],
    attrs: Mapping[str, Any],
) -> None:
    u, v, key = edge
    where = f"edges[{edge!r}]"
    start, end = pipe_ends(graph, u, v, attrs["polyline"])
    element = etree.SubElement(root, _q("Pipe"))
    element.set("id", f"pipe{index}")
    _set(element, "from", str(start), f"{where}.from")
    _set(element, "to", str(end), f"{where}.to")
    element.set("key", str(key))
    element.set("lineType", str(attrs["line_type"]))
    for name in ("width", "length"):
        if attrs.get(name) is not None:
            element.set(name, format_number(attrs[name]))
    polyline = etree.SubElement(element, _q("Polyline"))
    for point in attrs["polyline"]:
        _add_point(polyline, "P", point)
    _add_attributes(element, attrs, PIPE_KEYS, where)


def _add_point(parent: etree._Element, tag: str, point: Sequence[float]) -> None:
    element = etree.SubElement(parent, _q(tag))
    element.set("x", format_number(point[0]))
    element.set("y", format_number(point[1]))


def _add_attributes(
    element: etree._Element, attrs: Mapping[Any, Any], known: frozenset[str], where: str
) -> None:
    """Write every attribute without an element of its own as JSON, so nothing is lost."""
    for name, value in attrs.items():
        if name in known:
            continue
        if not isinstance(name, str):
            raise PidInputError(f"{GRAPH_SOURCE}: {where}: attribute name {name!r} is not text")
        try:
            text = json.dumps(value, allow_nan=False, separators=(",", ":"), default=_json_value)
        except (TypeError, ValueError) as exc:
            raise PidInputError(
                f"{GRAPH_SOURCE}: {where}.{name}: cannot be written as JSON: {exc}"
            ) from exc
        attribute = etree.SubElement(element, _q("Attribute"))
        _set(attribute, "name", name, f"{where}.{name}")
        attribute.set("value", text)


def _json_value(value: object) -> object:
    # NumPy scalars and arrays (common in graphs built in memory) expose plain Python values.
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _set(element: etree._Element, name: str, value: str, where: str) -> None:
    try:
        element.set(name, value)
    except ValueError as exc:  # lxml refuses control characters XML cannot hold
        raise PidInputError(f"{GRAPH_SOURCE}: {where}: cannot be written as XML: {exc}") from exc


def format_number(value: float) -> str:
    """Return `value` as XML text: integers as such, floats as their shortest exact repr."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return repr(float(value))


def check_dpi(dpi: float) -> None:
    """Raise `PidInputError` unless `dpi` is a finite number > 0."""
    if (
        isinstance(dpi, bool)
        or not isinstance(dpi, int | float)
        or not math.isfinite(dpi)
        or dpi <= 0
    ):
        raise PidInputError(f"dpi: expected a number > 0, got {dpi!r}")


def pipe_ends(
    graph: nx.MultiGraph, u: Hashable, v: Hashable, polyline: Sequence[Sequence[float]]
) -> tuple[Hashable, Hashable]:
    """Return the edge's ends ordered as its polyline runs: (node at the first point, other).

    An undirected graph lists an edge's ends in its own order, which need not be the order the
    polyline was stored in; the polyline itself is never reversed (a round trip must give it
    back unchanged), so the ends are ordered to match it, by distance to each node's geometry.
    """
    first, last = polyline[0], polyline[-1]
    forward = _distance(graph.nodes[u], first) + _distance(graph.nodes[v], last)
    backward = _distance(graph.nodes[v], first) + _distance(graph.nodes[u], last)
    return (v, u) if backward < forward else (u, v)


def _distance(attrs: Mapping[str, Any], point: Sequence[float]) -> float:
    """Distance from `point` to a node: to its point, or to its box (0 inside it)."""
    x, y = float(point[0]), float(point[1])
    if attrs.get("kind") == "symbol":
        x1, y1, x2, y2 = (float(c) for c in attrs["bbox"])
        return math.hypot(max(x1 - x, 0.0, x - x2), max(y1 - y, 0.0, y - y2))
    px, py = attrs["point"]
    return math.hypot(x - float(px), y - float(py))


# --- reading ----------------------------------------------------------------------------------


def read_fxml(path: Path) -> nx.MultiGraph:
    """Read an FXML file back into a graph in our model.

    Parameters
    ----------
    path : Path
        An FXML document (docs/fxml.md).

    Returns
    -------
    nx.MultiGraph
        The graph as `pid.core.formats.graph.load_graph` gives it for the same graph's
        graph.json: node and edge attributes, keys and graph attributes (sheet `width`,
        `height`) equal, `bbox` and `point` as float lists, `polyline` as a list of (x, y) float
        tuples. `Sheet/@dpi` is not a graph attribute and is not returned.

    Raises
    ------
    PidInputError
        Naming the file and the problem: not found, not well-formed XML, not valid against
        fxml.xsd (with the line and the schema's message, e.g. a `to` naming no node), an
        integer id that is not an integer, a pipe given twice, or a graph failing the schema.
    """
    path = Path(path)
    root = parse_xml(path)
    _check_valid(root, path)
    graph = nx.MultiGraph()
    sheet = root.find(_q("Sheet"))
    if sheet is not None:
        for name in SHEET_SIZE_KEYS:
            text = sheet.get(name)
            if text is not None:
                graph.graph[name] = parse_number(text)
    graph.graph.update(_read_attributes(root, GRAPH_KEYS, path))
    ids: dict[str, NodeId] = {}
    for element in root:
        kind = KIND_OF_ELEMENT.get(_local(element))
        if kind is not None:
            node, attrs = _read_node(element, kind, path)
            ids[element.get("id", "")] = node
            graph.add_node(node, **attrs)
    for element in root.iterchildren(_q("Pipe")):
        _read_pipe(graph, element, ids, path)
    validate_graph(graph, source=str(path))
    return graph


def _read_node(element: etree._Element, kind: str, path: Path) -> tuple[NodeId, dict[str, Any]]:
    node = _node_id(element, path)
    attrs: dict[str, Any] = {"kind": kind}
    if kind == "symbol":
        attrs["class"] = element.get("class")
        box = _child(element, "Box")
        attrs["bbox"] = [float(box.get(name, "")) for name in ("x1", "y1", "x2", "y2")]
        attrs.update(_read_attributes(element, SYMBOL_KEYS, path))
    else:
        attrs["point"] = list(_point(_child(element, "Point")))
        attrs.update(_read_attributes(element, POINT_KEYS, path))
    return node, attrs


def _read_pipe(
    graph: nx.MultiGraph, element: etree._Element, ids: Mapping[str, NodeId], path: Path
) -> None:
    start, end = ids[element.get("from", "")], ids[element.get("to", "")]
    key_text = element.get("key")
    key = int(key_text) if key_text is not None else None
    if key is not None and graph.has_edge(start, end, key):
        _fail_at(path, element, f"pipe {start!r}-{end!r} with key {key} is given twice")
    attrs: dict[str, Any] = {
        "polyline": [_point(p) for p in _child(element, "Polyline").iterchildren(_q("P"))],
        "line_type": element.get("lineType"),
    }
    for name in ("width", "length"):
        text = element.get(name)
        if text is not None:
            attrs[name] = parse_number(text)
    attrs.update(_read_attributes(element, PIPE_KEYS, path))
    graph.add_edge(start, end, key=key, **attrs)


def _node_id(element: etree._Element, path: Path) -> NodeId:
    text = element.get("id", "")
    if element.get("idType", "string") == "string":
        return text
    if not _INTEGER.fullmatch(text):
        _fail_at(path, element, f"id {text!r} has idType integer but is not an integer")
    return int(text)


def _read_attributes(element: etree._Element, known: Iterable[str], path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    reserved = set(known)
    for attribute in element.iterchildren(_q("Attribute")):
        name, text = attribute.get("name", ""), attribute.get("value", "")
        if name in reserved:
            _fail_at(path, attribute, f"Attribute name {name!r} is reserved for FXML's own markup")
        try:
            out[name] = json.loads(text)
        except json.JSONDecodeError as exc:
            _fail_at(path, attribute, f"Attribute {name!r}: value is not JSON: {exc.msg}")
    return out


def _point(element: etree._Element) -> Point:
    return float(element.get("x", "")), float(element.get("y", ""))


def _child(element: etree._Element, tag: str) -> etree._Element:
    child = element.find(_q(tag))
    if child is None:  # the XSD requires it; kept for a clear message should that ever change
        raise PidInputError(f"line {element.sourceline}: {_local(element)} without {tag}")
    return child


def parse_number(text: str) -> int | float:
    """Return XML number text as an int when it is written as one, else as a float."""
    return int(text) if _INTEGER.fullmatch(text) else float(text)


# --- schema -----------------------------------------------------------------------------------


@functools.cache
def fxml_schema() -> etree.XMLSchema:
    """Return the shipped FXML XSD (`pid/export/fxml.xsd`), compiled once."""
    data = resources.files("pid.export").joinpath(XSD_RESOURCE).read_bytes()
    return etree.XMLSchema(etree.fromstring(data))


def _check_valid(root: etree._Element, path: Path) -> None:
    schema = fxml_schema()
    if not schema.validate(root):
        raise PidInputError(f"{path}: not valid FXML: {_schema_errors(schema)}")


def _assert_valid(root: etree._Element, source: str) -> None:
    schema = fxml_schema()
    if not schema.validate(root):
        raise PidInputError(f"{source}: the FXML would not be valid: {_schema_errors(schema)}")


def _schema_errors(schema: etree.XMLSchema, limit: int = 3) -> str:
    # lxml-stubs leaves the error log opaque; it is an iterable of log entries.
    errors = list(cast(Iterable[Any], schema.error_log))
    shown = "; ".join(f"line {e.line}: {e.message.rstrip('.')}" for e in errors[:limit])
    more = len(errors) - limit
    return shown + (f" (and {more} more)" if more > 0 else "")


def _fail_at(path: Path, element: etree._Element, problem: str) -> NoReturn:
    raise PidInputError(f"{path}: line {element.sourceline}: {problem}")


def _q(tag: str) -> str:
    return f"{{{NAMESPACE}}}{tag}"


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname
