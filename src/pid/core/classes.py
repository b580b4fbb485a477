"""The symbol class table shared by every part of pid.

Each class says how it is named in DEXPI and PID2Graph, and whether it sits inline on a pipe
(two opposite ports, the pipe is split by it) or terminates pipes (equipment, instruments,
off-page connectors). Boxes everywhere are matched by the class *name*, never by an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    INLINE = "inline"
    TERMINAL = "terminal"


#: PID2Graph's node labels for symbols, plus its two topology labels.
PID2GRAPH_SYMBOL_LABELS = (
    "valve",
    "pump",
    "instrumentation",
    "general",
    "tank",
    "arrow",
    "inlet/outlet",
)
PID2GRAPH_CONNECTOR = "connector"
PID2GRAPH_CROSSING = "crossing"


@dataclass(frozen=True, slots=True)
class SymbolClass:
    name: str
    dexpi_class: str
    pid2graph_label: str
    role: Role
    description: str


CLASS_TABLE: tuple[SymbolClass, ...] = (
    SymbolClass("gate_valve", "GateValve", "valve", Role.INLINE, "gate valve (bow-tie)"),
    SymbolClass("globe_valve", "GlobeValve", "valve", Role.INLINE, "globe valve (bow-tie, dot)"),
    SymbolClass("ball_valve", "BallValve", "valve", Role.INLINE, "ball valve (bow-tie, ball)"),
    SymbolClass("check_valve", "CheckValve", "valve", Role.INLINE, "check valve (one way)"),
    SymbolClass(
        "butterfly_valve", "ButterflyValve", "valve", Role.INLINE, "butterfly valve (disc)"
    ),
    SymbolClass(
        "control_valve", "OperatedValve", "valve", Role.INLINE, "control valve with actuator"
    ),
    SymbolClass(
        "relief_valve",
        "SpringLoadedGlobeSafetyValve",
        "valve",
        Role.TERMINAL,
        "angle relief valve with spring (inlet and outlet at 90 degrees)",
    ),
    SymbolClass("reducer", "ConcentricPipeReducer", "general", Role.INLINE, "concentric reducer"),
    SymbolClass("spectacle_blind", "SpectacleBlind", "general", Role.INLINE, "spectacle blind"),
    SymbolClass("flow_arrow", "FlowArrow", "arrow", Role.INLINE, "flow direction arrow"),
    SymbolClass("centrifugal_pump", "CentrifugalPump", "pump", Role.TERMINAL, "centrifugal pump"),
    SymbolClass("vessel", "Vessel", "tank", Role.TERMINAL, "vertical vessel with dished heads"),
    SymbolClass("tank", "Tank", "tank", Role.TERMINAL, "atmospheric tank with cone roof"),
    SymbolClass(
        "heat_exchanger",
        "TubularHeatExchanger",
        "general",
        Role.TERMINAL,
        "shell and tube heat exchanger",
    ),
    SymbolClass(
        "instrument",
        "ProcessInstrumentationFunction",
        "instrumentation",
        Role.TERMINAL,
        "instrument bubble with its tag",
    ),
    SymbolClass(
        "off_page_connector",
        "PipeOffPageConnector",
        "inlet/outlet",
        Role.TERMINAL,
        "inlet/outlet off-page connector",
    ),
)

CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASS_TABLE)
CLASSES_BY_NAME: dict[str, SymbolClass] = {c.name: c for c in CLASS_TABLE}
INLINE_CLASSES: tuple[str, ...] = tuple(c.name for c in CLASS_TABLE if c.role is Role.INLINE)
TERMINAL_CLASSES: tuple[str, ...] = tuple(c.name for c in CLASS_TABLE if c.role is Role.TERMINAL)

#: Label for classes outside the table (a user's own classes), unless a mapping says otherwise.
UNKNOWN_PID2GRAPH_LABEL = "general"


def pid2graph_label(class_name: str, extra: dict[str, str] | None = None) -> str:
    """Return the PID2Graph label of a symbol class.

    Classes outside the table are a user's own: `extra` may map them, else they are `general`.
    A name that already is a PID2Graph label maps to itself.
    """
    known = CLASSES_BY_NAME.get(class_name)
    if known is not None:
        return known.pid2graph_label
    if extra and class_name in extra:
        return extra[class_name]
    if class_name in PID2GRAPH_SYMBOL_LABELS:
        return class_name
    return UNKNOWN_PID2GRAPH_LABEL


def dexpi_class(class_name: str) -> str:
    """Return the DEXPI ComponentClass of a symbol class (`Equipment` for unknown classes)."""
    known = CLASSES_BY_NAME.get(class_name)
    return known.dexpi_class if known is not None else "Equipment"
