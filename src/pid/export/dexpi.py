"""DEXPI export: the graph as a Proteus XML 4.x PlantModel.

The mapping (docs/dexpi.md): symbols that end pipes become `Equipment` with one `Nozzle` per
pipe, instrument bubbles `ProcessInstrumentationFunction`, inline symbols `PipingComponent`s,
junctions `PipingComponent ComponentClass="PipeTee"`, free pipe ends a `CustomPipingComponent`;
every solid edge is one `PipingNetworkSegment` of one `PipingNetworkSystem`, every dashed edge an
`InformationFlow`. Coordinates are millimetres with Y up. Each element made from a graph node
carries the node's id in ``GenericAttribute Name="pid:node"``, so that `read_dexpi_connections`
can map the file's connections back to the graph.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import networkx as nx
from lxml import etree

from pid.core.classes import CLASSES_BY_NAME, Role, dexpi_class
from pid.core.errors import PidInputError
from pid.core.files import replace_atomically
from pid.core.formats.graph import validate_graph
from pid.core.formats.images import image_header
from pid.export.fxml import check_dpi, format_number, pipe_ends, write_bytes
from pid.export.graphml import node_position
from pid.export.xmlfile import parse_xml

SCHEMA_VERSION = "4.1.1"
ORIGINATING_SYSTEM = "pid"
MM_PER_INCH = 25.4
#: Decimals kept for millimetres (0.1 µm: far below a pixel at any scan resolution).
MM_DECIMALS = 4

#: GenericAttributes set and names this exporter writes.
GENERIC_SET = "pid"
NODE_ATTRIBUTE = "pid:node"
CLASS_ATTRIBUTE = "pid:class"
KIND_ATTRIBUTE = "pid:kind"

TEE_CLASS = "PipeTee"
ENDPOINT_CLASS = "CustomPipingComponent"
INSTRUMENT_CLASS = "ProcessInstrumentationFunction"
SIGNAL_LINE_CLASS = "SignalLineFunction"
#: DEXPI classes that are piping items although they end pipes in our graph.
PIPING_ELEMENT_OF_CLASS = {
    "SpringLoadedGlobeSafetyValve": "PipingComponent",
    "PipeOffPageConnector": "PipeConnectorSymbol",
}

NodeId = str | int
Point = tuple[float, float]
#: A pipe end: (index of the solid edge, 0 for its from end or 1 for its to end).
PipeEnd = tuple[int, int]


class DexpiIntegrityError(RuntimeError):
    """The writer built a document whose IDs or references do not hold (a bug, not bad input)."""


@dataclass(frozen=True, slots=True)
class SheetScale:
    """Pixels of original.png to DEXPI millimetres: x right, y up from the bottom edge."""

    dpi: float
    height_px: float

    def mm(self, x_px: float, y_px: float) -> Point:
        """Return (x, y) in millimetres of a pixel position (Y flipped)."""
        factor = MM_PER_INCH / self.dpi
        return (
            round(float(x_px) * factor, MM_DECIMALS),
            round((self.height_px - float(y_px)) * factor, MM_DECIMALS),
        )

    def length(self, px: float) -> float:
        """Return a length in millimetres of a length in pixels."""
        return round(float(px) * MM_PER_INCH / self.dpi, MM_DECIMALS)


@dataclass(frozen=True, slots=True)
class Pipe:
    """A solid or dashed edge with its ends ordered as its polyline runs."""

    start: Hashable
    end: Hashable
    attrs: Mapping[str, Any]


@dataclass(slots=True)
class _Ids:
    """Unique, readable element IDs: the element's class and a counter (``PipeTee-3``)."""

    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def new(self, prefix: str) -> str:
        self.counters[prefix] += 1
        return f"{prefix}-{self.counters[prefix]}"


@dataclass(slots=True)
class _Build:
    """What the writer knows while building: IDs of nodes and the reference of each pipe end."""

    graph: nx.MultiGraph
    scale: SheetScale
    solid: list[Pipe]
    ids: _Ids = field(default_factory=_Ids)
    node_ids: dict[Hashable, str] = field(default_factory=dict)
    ends: dict[PipeEnd, tuple[str, str | None]] = field(default_factory=dict)


# --- public API -------------------------------------------------------------------------------


def write_dexpi(
    graph: nx.MultiGraph,
    path: Path,
    *,
    dpi: float,
    height_px: int,
    timestamp: datetime | None = None,
) -> None:
    """Write `graph` as DEXPI (Proteus XML 4.x), atomically.

    Parameters
    ----------
    graph : nx.MultiGraph
        A graph in our model (graph.json's schema); checked with `validate_graph` first.
    path : Path
        Destination file (temporary file in the same folder, then `os.replace`).
    dpi : float
        Resolution of original.png, dots per inch: ``x_mm = x_px * 25.4 / dpi``.
    height_px : int
        Height of original.png in pixels: ``y_mm = (height_px - y_px) * 25.4 / dpi`` (DEXPI's
        Y points up, image rows point down).
    timestamp : datetime, optional
        `PlantInformation` Date and Time; now (UTC) by default.

    Raises
    ------
    PidInputError
        When the graph fails the schema, or `dpi` / `height_px` are not numbers > 0.
    DexpiIntegrityError
        When an ID of the built document is not unique or a Connection or Association names no
        element of the file (checked before anything is written).
    """
    validate_graph(graph)
    write_checked_dexpi(graph, path, dpi=dpi, height_px=height_px, timestamp=timestamp)


def write_checked_dexpi(
    graph: nx.MultiGraph,
    path: Path,
    *,
    dpi: float,
    height_px: int,
    timestamp: datetime | None = None,
) -> None:
    """`write_dexpi` for a graph already checked with `validate_graph` (`export_all` checks
    once for all three files)."""
    check_dpi(dpi)
    if isinstance(height_px, bool) or not isinstance(height_px, int) or height_px <= 0:
        raise PidInputError(f"height_px: expected an integer > 0, got {height_px!r}")
    document = dexpi_document(graph, scale=SheetScale(float(dpi), height_px), timestamp=timestamp)
    problems = reference_problems(document)
    if problems:
        raise DexpiIntegrityError("DEXPI document is inconsistent: " + "; ".join(problems[:5]))
    data = etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    replace_atomically(Path(path), write_bytes(data))


def dexpi_document(
    graph: nx.MultiGraph, *, scale: SheetScale, timestamp: datetime | None = None
) -> etree._Element:
    """Return the `PlantModel` element of an already validated graph (see `write_dexpi`)."""
    build = _Build(graph=graph, scale=scale, solid=_pipes(graph, "solid"))
    root = etree.Element("PlantModel")
    root.append(_plant_information(timestamp or datetime.now(UTC)))
    width_mm, height_mm = _sheet_extent_mm(graph, scale)
    root.append(_extent((0.0, 0.0), (width_mm, height_mm)))
    root.append(_drawing(graph, width_mm, height_mm))
    ports = _ports(build.solid)
    roles = {node: _role(attrs) for node, attrs in graph.nodes(data=True)}
    for node, role in roles.items():
        if role == "equipment":
            root.append(_equipment(build, node, ports.get(node, [])))
        elif role == "instrument":
            root.append(_instrument(build, node, ports.get(node, [])))
    piping = {
        node: _piping_item(build, node, ports.get(node, []))
        for node, role in roles.items()
        if role == "piping"
    }
    root.append(_piping_network_system(build, piping, ports))
    for pipe in _pipes(graph, "dashed"):
        root.append(_information_flow(build, pipe))
    return root


def read_dexpi_connections(path: Path) -> list[tuple[NodeId, NodeId, str]]:
    """Return the connections of a DEXPI file written by `write_dexpi`, as graph node ids.

    Parameters
    ----------
    path : Path
        A Proteus XML file whose elements made from graph nodes carry ``GenericAttribute
        Name="pid:node"`` (nozzles carry the node of their equipment).

    Returns
    -------
    list[tuple[NodeId, NodeId, str]]
        One ``(from node, to node, line type)`` per `Connection`: ``"solid"`` for those of
        `PipingNetworkSegment`s, ``"dashed"`` for those of `InformationFlow`s, in file order.

    Raises
    ------
    PidInputError
        When the file is missing or not well-formed, an ID is not unique, a reference names no
        element, or a Connection end names an element without ``pid:node``.
    """
    path = Path(path)
    root = _parse(path)
    problems = reference_problems(root)
    if problems:
        raise PidInputError(f"{path}: " + "; ".join(problems[:5]))
    nodes = _nodes_by_element_id(root, path)
    out: list[tuple[NodeId, NodeId, str]] = []
    for owner, line_type in (("PipingNetworkSegment", "solid"), ("InformationFlow", "dashed")):
        for connection in root.iter(owner):
            for element in connection.iterchildren("Connection"):
                out.append(
                    (
                        _connected_node(element, "FromID", nodes, path),
                        _connected_node(element, "ToID", nodes, path),
                        line_type,
                    )
                )
    return out


def reference_problems(root: etree._Element) -> list[str]:
    """Return what breaks the document's references: repeated IDs, and `Connection`
    FromID/ToID or `Association` ItemID values that name no element's ID (empty when sound)."""
    problems: list[str] = []
    seen: set[str] = set()
    for element in root.iter():
        element_id = element.get("ID") if isinstance(element.tag, str) else None
        if element_id is None:
            continue
        if element_id in seen:
            problems.append(f"ID {element_id!r} is not unique")
        seen.add(element_id)
    for element in root.iter("Connection", "Association"):
        names = ("FromID", "ToID") if element.tag == "Connection" else ("ItemID",)
        for name in names:
            target = element.get(name)
            if target is not None and target not in seen:
                problems.append(
                    f"line {element.sourceline}: {element.tag} {name}={target!r} names no element"
                )
    return problems


def dpi_of_image(path: Path, default: float) -> float:
    """Return the resolution recorded in an image file (PNG pHYs, TIFF, JPEG), else `default`.

    Parameters
    ----------
    path : Path
        The image, e.g. a sheet's original.png.
    default : float
        Dots per inch to use when the file records none (or a value that is not > 0).

    Returns
    -------
    float
        Horizontal dots per inch.

    Raises
    ------
    PidInputError
        When the file is missing or not an image, or `default` is not a number > 0.
    """
    check_dpi(default)
    stated = image_header(path).dpi
    return float(default) if stated is None else stated


# --- graph to DEXPI: nodes --------------------------------------------------------------------


def _pipes(graph: nx.MultiGraph, line_type: str) -> list[Pipe]:
    out = []
    for u, v, attrs in graph.edges(data=True):
        if attrs["line_type"] == line_type:
            start, end = pipe_ends(graph, u, v, attrs["polyline"])
            out.append(Pipe(start, end, attrs))
    return out


def _ports(solid: Sequence[Pipe]) -> dict[Hashable, list[PipeEnd]]:
    """Return, per node, the solid pipe ends that meet it, in pipe order (a self-loop twice)."""
    ports: dict[Hashable, list[PipeEnd]] = defaultdict(list)
    for index, pipe in enumerate(solid):
        ports[pipe.start].append((index, 0))
        ports[pipe.end].append((index, 1))
    return ports


def _role(attrs: Mapping[str, Any]) -> str:
    """Return how a node is written: ``equipment``, ``instrument`` or ``piping``."""
    if attrs["kind"] != "symbol":
        return "piping"
    cls = str(attrs["class"])
    dexpi = dexpi_class(cls)
    if dexpi == INSTRUMENT_CLASS:
        return "instrument"
    known = CLASSES_BY_NAME.get(cls)
    if (known is not None and known.role is Role.INLINE) or dexpi in PIPING_ELEMENT_OF_CLASS:
        return "piping"
    return "equipment"


def _equipment(build: _Build, node: Hashable, ports: Sequence[PipeEnd]) -> etree._Element:
    attrs = build.graph.nodes[node]
    cls = dexpi_class(str(attrs["class"]))
    element_id = build.node_ids[node] = build.ids.new(cls)
    element = _item("Equipment", element_id, cls)
    _add_geometry(element, build, attrs)
    for port in ports:
        nozzle_id = build.ids.new("Nozzle")
        nozzle = _item("Nozzle", nozzle_id, "Nozzle")
        location = _port_point(build, port)
        nozzle.append(_position(build.scale.mm(*location)))
        nozzle.append(_connection_points(build, nozzle_id, location, [location]))
        nozzle.append(_generic_attributes(node, {KIND_ATTRIBUTE: "nozzle"}))
        element.append(nozzle)
        build.ends[port] = (nozzle_id, "1")
    element.append(_generic_attributes(node, _symbol_attributes(attrs)))
    return element


def _instrument(build: _Build, node: Hashable, ports: Sequence[PipeEnd]) -> etree._Element:
    """An instrument bubble; a pipe drawn into it connects to the function itself (it has no
    nozzles or connection points in DEXPI), so such ends carry no FromNode / ToNode."""
    attrs = build.graph.nodes[node]
    element_id = build.node_ids[node] = build.ids.new(INSTRUMENT_CLASS)
    element = _item("ProcessInstrumentationFunction", element_id, INSTRUMENT_CLASS)
    _add_geometry(element, build, attrs)
    for port in ports:
        build.ends[port] = (element_id, None)
    element.append(_generic_attributes(node, _symbol_attributes(attrs)))
    return element


def _piping_item(build: _Build, node: Hashable, ports: Sequence[PipeEnd]) -> etree._Element:
    """Return the piping element of a node; its pipe ends connect to its ConnectionPoints."""
    attrs = build.graph.nodes[node]
    extra: dict[str, str]
    if attrs["kind"] == "junction":
        tag, cls, extra = "PipingComponent", TEE_CLASS, {KIND_ATTRIBUTE: "junction"}
    elif attrs["kind"] == "endpoint":
        tag, cls, extra = "PipingComponent", ENDPOINT_CLASS, {KIND_ATTRIBUTE: "endpoint"}
    else:
        cls = dexpi_class(str(attrs["class"]))
        tag, extra = PIPING_ELEMENT_OF_CLASS.get(cls, "PipingComponent"), _symbol_attributes(attrs)
    element_id = build.node_ids[node] = build.ids.new(cls)
    element = _item(tag, element_id, cls)
    _add_geometry(element, build, attrs)
    locations = [_port_point(build, port) for port in ports]
    element.append(_connection_points(build, element_id, node_position(attrs), locations))
    for index, port in enumerate(ports, start=1):
        build.ends[port] = (element_id, str(index))
    element.append(_generic_attributes(node, extra))
    return element


def _symbol_attributes(attrs: Mapping[str, Any]) -> dict[str, str]:
    return {KIND_ATTRIBUTE: "symbol", CLASS_ATTRIBUTE: str(attrs["class"])}


def _port_point(build: _Build, port: PipeEnd) -> Point:
    """The pixel position where a pipe meets its node: its polyline's first or last point."""
    index, side = port
    polyline = build.solid[index].attrs["polyline"]
    x, y = polyline[0] if side == 0 else polyline[-1]
    return float(x), float(y)


# --- graph to DEXPI: pipes --------------------------------------------------------------------


def _piping_network_system(
    build: _Build,
    piping: Mapping[Hashable, etree._Element],
    ports: Mapping[Hashable, list[PipeEnd]],
) -> etree._Element:
    """One system; one segment per solid edge. A piping item sits in the segment of its first
    pipe (DEXPI keeps piping components inside segments); one without pipes gets its own."""
    system_id = build.ids.new("PipingNetworkSystem")
    system = _item("PipingNetworkSystem", system_id, "PipingNetworkSystem")
    hosted: dict[int, list[etree._Element]] = defaultdict(list)
    orphans = []
    for node, element in piping.items():
        node_ports = ports.get(node, [])
        if node_ports:
            hosted[node_ports[0][0]].append(element)
        else:
            orphans.append(element)
    for index, pipe in enumerate(build.solid):
        segment = _segment(build)
        segment.extend(hosted[index])
        segment.append(_center_line(build, pipe))
        segment.append(_connection(*build.ends[(index, 0)], *build.ends[(index, 1)]))
        system.append(segment)
    for element in orphans:
        segment = _segment(build)
        segment.append(element)
        system.append(segment)
    return system


def _segment(build: _Build) -> etree._Element:
    segment_id = build.ids.new("PipingNetworkSegment")
    return _item("PipingNetworkSegment", segment_id, "PipingNetworkSegment")


def _information_flow(build: _Build, pipe: Pipe) -> etree._Element:
    flow = _item("InformationFlow", build.ids.new(SIGNAL_LINE_CLASS), SIGNAL_LINE_CLASS)
    start, end = build.node_ids[pipe.start], build.node_ids[pipe.end]
    flow.append(_center_line(build, pipe))
    flow.append(_connection(start, None, end, None))
    for kind, item_id in (("has logical start", start), ("has logical end", end)):
        etree.SubElement(flow, "Association", Type=kind, ItemID=item_id)
    return flow


def _center_line(build: _Build, pipe: Pipe) -> etree._Element:
    points = pipe.attrs["polyline"]
    line = etree.Element("CenterLine", NumPoints=str(len(points)))
    line_type = "Dashed" if pipe.attrs["line_type"] == "dashed" else "Solid"
    width = pipe.attrs.get("width")
    line.append(_presentation(line_type, build.scale.length(width) if width else None))
    for x, y in points:
        x_mm, y_mm = build.scale.mm(x, y)
        etree.SubElement(line, "Coordinate", X=_mm(x_mm), Y=_mm(y_mm))
    return line


def _connection(
    from_id: str, from_node: str | None, to_id: str, to_node: str | None
) -> etree._Element:
    connection = etree.Element("Connection", FromID=from_id)
    if from_node is not None:
        connection.set("FromNode", from_node)
    connection.set("ToID", to_id)
    if to_node is not None:
        connection.set("ToNode", to_node)
    return connection


# --- Proteus building blocks ------------------------------------------------------------------


def _plant_information(timestamp: datetime) -> etree._Element:
    info = etree.Element(
        "PlantInformation",
        SchemaVersion=SCHEMA_VERSION,
        OriginatingSystem=ORIGINATING_SYSTEM,
        OriginatingSystemVendor=ORIGINATING_SYSTEM,
        OriginatingSystemVersion=_version(),
        Application=ORIGINATING_SYSTEM,
        ApplicationVersion=_version(),
        Date=timestamp.strftime("%Y-%m-%d"),
        Time=timestamp.strftime("%H:%M:%S"),
        Is3D="no",
        Units="mm",
        Discipline="PID",
    )
    etree.SubElement(info, "UnitsOfMeasure", Distance="Millimetre")
    return info


def _version() -> str:
    try:
        return metadata.version("pid")
    except metadata.PackageNotFoundError:
        return "unknown"


def _drawing(graph: nx.MultiGraph, width_mm: float, height_mm: float) -> etree._Element:
    name = graph.graph.get("name")
    drawing = etree.Element(
        "Drawing", Name=str(name) if isinstance(name, str) and name else "sheet", Type="PID"
    )
    drawing.append(_presentation("Solid", None))
    drawing.append(_extent((0.0, 0.0), (width_mm, height_mm)))
    return drawing


def _sheet_extent_mm(graph: nx.MultiGraph, scale: SheetScale) -> Point:
    """The sheet's size in mm: its `width` (else the rightmost drawn x) by `height_px`."""
    width = graph.graph.get("width")
    if width is None:
        xs = [float(p[0]) for _, _, line in graph.edges(data="polyline") for p in line]
        xs += [float(b[2]) for _, b in graph.nodes(data="bbox") if b is not None]
        xs += [float(p[0]) for _, p in graph.nodes(data="point") if p is not None]
        width = max(xs, default=0.0)
    return scale.length(width), scale.length(scale.height_px)


def _item(tag: str, element_id: str, component_class: str) -> etree._Element:
    return etree.Element(tag, ID=element_id, ComponentClass=component_class)


def _add_geometry(element: etree._Element, build: _Build, attrs: dict[str, Any]) -> None:
    """Add `Extent` (symbols: the box, Y flipped) and `Position` (box centre or point)."""
    if attrs["kind"] == "symbol":
        x1, y1, x2, y2 = attrs["bbox"]
        # Y flips, so the box's bottom row (y2) gives the smallest Y in millimetres.
        element.append(_extent(build.scale.mm(x1, y2), build.scale.mm(x2, y1)))
    element.append(_position(build.scale.mm(*node_position(attrs))))


def _connection_points(
    build: _Build, owner_id: str, anchor_px: Point, ports_px: Sequence[Point]
) -> etree._Element:
    """ConnectionPoints: node 0 is the item's own anchor, nodes 1..n its pipe ends (Proteus
    counts the anchor in NumPoints, and FromNode/ToNode index this list)."""
    points = etree.Element("ConnectionPoints", NumPoints=str(len(ports_px) + 1))
    for index, location in enumerate([anchor_px, *ports_px]):
        node = etree.SubElement(points, "Node", ID=f"{owner_id}-Node-{index}")
        if index > 0:
            node.set("Type", "process")
        node.append(_position(build.scale.mm(*location)))
    return points


def _position(location_mm: Point) -> etree._Element:
    position = etree.Element("Position")
    x, y = location_mm
    etree.SubElement(position, "Location", X=_mm(x), Y=_mm(y), Z="0")
    etree.SubElement(position, "Axis", X="0", Y="0", Z="1")
    etree.SubElement(position, "Reference", X="1", Y="0", Z="0")
    return position


def _extent(low_mm: Point, high_mm: Point) -> etree._Element:
    extent = etree.Element("Extent")
    etree.SubElement(extent, "Min", X=_mm(low_mm[0]), Y=_mm(low_mm[1]))
    etree.SubElement(extent, "Max", X=_mm(high_mm[0]), Y=_mm(high_mm[1]))
    return extent


def _presentation(line_type: str, weight_mm: float | None) -> etree._Element:
    presentation = etree.Element(
        "Presentation", Layer="pid", Color="Black", LineType=line_type, R="0", G="0", B="0"
    )
    if weight_mm is not None:
        presentation.set("LineWeight", _mm(weight_mm))
    return presentation


def _generic_attributes(node: Hashable, extra: Mapping[str, str]) -> etree._Element:
    """GenericAttributes naming the graph node (with its id's type, so ints come back as ints)."""
    attributes = etree.Element("GenericAttributes", Set=GENERIC_SET)
    node_format = "integer" if isinstance(node, int) else "string"
    values = [(NODE_ATTRIBUTE, str(node), node_format)]
    values += [(name, value, "string") for name, value in extra.items()]
    for name, value, value_format in values:
        try:
            etree.SubElement(
                attributes, "GenericAttribute", Name=name, Value=value, Format=value_format
            )
        except ValueError as exc:  # control characters XML cannot hold
            raise PidInputError(f"graph: nodes[{node!r}]: cannot be written as XML: {exc}") from exc
    attributes.set("Number", str(len(attributes)))
    return attributes


def _mm(value: float) -> str:
    return format_number(float(value))


# --- reading ----------------------------------------------------------------------------------


def _parse(path: Path) -> etree._Element:
    root = parse_xml(path)
    if root.tag != "PlantModel":
        raise PidInputError(f"{path}: expected a PlantModel root element, got {root.tag!r}")
    return root


def _nodes_by_element_id(root: etree._Element, path: Path) -> dict[str, NodeId]:
    nodes: dict[str, NodeId] = {}
    for attribute in root.iter("GenericAttribute"):
        if attribute.get("Name") != NODE_ATTRIBUTE:
            continue
        owner = attribute.getparent()
        owner = owner.getparent() if owner is not None else None
        element_id = owner.get("ID") if owner is not None else None
        if element_id is None:
            _fail(path, attribute, f"{NODE_ATTRIBUTE} outside an element with an ID")
        nodes[element_id] = _node_value(attribute, path)
    return nodes


def _node_value(attribute: etree._Element, path: Path) -> NodeId:
    value = attribute.get("Value", "")
    if attribute.get("Format") != "integer":
        return value
    try:
        return int(value)
    except ValueError:
        _fail(path, attribute, f"{NODE_ATTRIBUTE} {value!r} has Format integer")


def _connected_node(
    connection: etree._Element, name: str, nodes: Mapping[str, NodeId], path: Path
) -> NodeId:
    target = connection.get(name)
    if target is None:
        _fail(path, connection, f"Connection without {name}")
    if target not in nodes:
        _fail(
            path, connection, f"Connection {name}={target!r} names no element with {NODE_ATTRIBUTE}"
        )
    return nodes[target]


def _fail(path: Path, element: etree._Element, problem: str) -> NoReturn:
    raise PidInputError(f"{path}: line {element.sourceline}: {problem}")
