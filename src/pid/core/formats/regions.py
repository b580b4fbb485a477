"""regions.json: areas of a sheet that are neither pipes nor symbols (tables, description
headers, notes), each with its kind and box.

``{"items": [{"kind": str, "bbox": [x, y, w, h], ...}]}`` in pixels of original.png. The
generator writes the true regions with their own kinds (data_table, revision_table,
description_header, notes); the segment stage writes the ruled regions it took out of the pipe
mask, kind ``ruled``. Leader lines (kind ``leader``) carry their two ends, ``from`` (at the
note) and ``to`` (on the pipe), in the generator's truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pid.core.formats._checks import Point, as_list, fail, mapping, numbers
from pid.core.formats.jsonfile import read_json, write_json

#: Regions drawn with rules (a grid or boxed cells), and the kind the segment stage gives them.
RULED_KINDS = ("data_table", "revision_table", "description_header", "ruled")


@dataclass(frozen=True, slots=True)
class Region:
    kind: str
    bbox: tuple[float, float, float, float]  # x, y, w, h
    #: A leader's two ends: at its note, and on the pipe it points at.
    line: tuple[Point, Point] | None = None

    @property
    def ruled(self) -> bool:
        return self.kind in RULED_KINDS


def load_regions(path: Path) -> list[Region]:
    """Load and check a regions.json; `PidInputError` naming the file and place on a fault."""
    items = as_list(mapping(read_json(path), path, "").get("items"), path, "items")
    out = []
    for i, raw in enumerate(items):
        item = mapping(raw, path, f"items[{i}]")
        kind = item.get("kind")
        if not isinstance(kind, str) or not kind:
            fail(path, f"items[{i}].kind", "expected a name")
        x, y, w, h = numbers(item.get("bbox"), 4, path, f"items[{i}].bbox")
        if w <= 0 or h <= 0:
            fail(path, f"items[{i}].bbox", f"width and height must be > 0, got {w:g}x{h:g}")
        line = None
        if "from" in item or "to" in item:
            start = numbers(item.get("from"), 2, path, f"items[{i}].from")
            end = numbers(item.get("to"), 2, path, f"items[{i}].to")
            line = ((start[0], start[1]), (end[0], end[1]))
        out.append(Region(kind, (x, y, w, h), line))
    return out


def write_regions(path: Path, regions: list[dict[str, Any]]) -> None:
    """Write regions.json's items (each with `kind` and `bbox` [x, y, w, h]) atomically."""
    write_json(path, {"items": regions})
