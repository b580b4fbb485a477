"""Small checks shared by the format readers: each failure is one line naming the file and place."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NoReturn

from pid.core.errors import PidInputError

#: A point (x, y) in pixels of original.png.
Point = tuple[float, float]


def fail(path: Path | str, where: str, problem: str) -> NoReturn:
    raise PidInputError(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def as_number(value: object) -> float | None:
    """Return `value` as a float when it is a finite JSON number (not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def is_number(value: object) -> bool:
    return as_number(value) is not None


def numbers(value: object, n: int, path: Path | str, where: str) -> tuple[float, ...]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != n
        or not all(is_number(v) for v in value)
    ):
        fail(path, where, f"expected {n} numbers")
    return tuple(float(v) for v in value)


def mapping(value: object, path: Path | str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(path, where, "expected an object")
    return value


def as_list(value: object, path: Path | str, where: str) -> list[Any]:
    if not isinstance(value, list):
        fail(path, where, "expected a list")
    return value


def polyline(value: object, path: Path | str, where: str) -> list[Point]:
    points = as_list(value, path, where)
    if len(points) < 2:
        fail(path, where, "expected at least 2 points")
    out = []
    for i, p in enumerate(points):
        x, y = numbers(p, 2, path, f"{where}[{i}]")
        out.append((x, y))
    return out
