"""junctions.json: every meeting point of pipes with its kind, degree and confidence."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pid.core.formats._checks import Point, as_list, fail, is_number, mapping, numbers
from pid.core.formats.jsonfile import read_json

JUNCTION_KINDS = ("junction", "bridge", "ambiguous")


@dataclass(frozen=True, slots=True)
class JunctionPoint:
    """One meeting point of pipes from junctions.json."""

    point: Point
    kind: str
    degree: int | None = None
    confidence: float = 1.0


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
    items = as_list(read_json(path), path, "")
    out = []
    for i, raw in enumerate(items):
        where = f"[{i}]"
        item = mapping(raw, path, where)
        x, y = numbers(item.get("point"), 2, path, f"{where}.point")
        kind = item.get("kind")
        if kind not in JUNCTION_KINDS:
            fail(path, f"{where}.kind", f"expected junction, bridge or ambiguous, got {kind!r}")
        degree = item.get("degree")
        if degree is not None and (isinstance(degree, bool) or not isinstance(degree, int)):
            fail(path, f"{where}.degree", "expected an integer")
        confidence = item.get("confidence", 1.0)
        if not is_number(confidence):
            fail(path, f"{where}.confidence", "expected a number")
        out.append(JunctionPoint((x, y), str(kind), degree, float(confidence)))
    return out
