"""Ruled tables and notes that real sheets carry besides pipes, drawn where the sheet is empty.

Four kinds, as on plant P&IDs: equipment data sheets (ruled grids of 2-12 columns and 3-15
rows), a revision table in a corner, equipment description headers along the top edge (one row
of boxed cells, several lines each) and a notes block (numbered lines, no ruling). Each is
placed on paper that holds no ink yet, inside the drawing area and clear of the title block, so
the pipes and symbols drawn before are left as they are. None of it is pipe: the pipe mask is
never touched. Every region is recorded with its kind and box (regions.json) and every text in
it with its string and box (text.json).

Strategy. A coarse occupancy grid of the sheet (one cell per `GRID` pixels, set where ink lies
within `CLEARANCE` pixels) and its summed-area table answer "is this rectangle empty" in O(1);
a table is tried at shrinking sizes, and among the empty places the one nearest the drawing
area's edge is taken, as tables sit in the margins of real sheets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from pid.synth.layout import Frame
from pid.synth.symbols import scale_for_height, text_box, text_size

INK = 0
PAPER = 255
#: Side of one occupancy cell, pixels.
GRID = 8
#: Paper kept free between a table and any other ink, pixels.
CLEARANCE = 24

RULED_KINDS = ("data_table", "revision_table", "description_header")
REGION_KINDS = (*RULED_KINDS, "notes")

_HEADERS = (
    "ITEM No.",
    "SERVICE",
    "SIZE",
    "DESIGN PRESS",
    "DESIGN TEMP",
    "MATERIAL",
    "CAPACITY",
    "DUTY",
    "MOTOR kW",
    "INSULATION",
    "OPER PRESS",
    "OPER TEMP",
)
_SERVICES = ("FEED", "REFLUX", "BOTTOMS", "COOLING WATER", "STEAM", "CONDENSATE", "FLARE")
_UNITS = ("BARG", "DEG C", "MM", "M3/H", "KW", "KG/H")
_NOTES = (
    "ALL DIMENSIONS IN MM UNLESS NOTED",
    "FREE DRAINING, NO POCKETS",
    "BLANKOFF WHEN NOT IN USE",
    "LOCATE CLOSE TO EQUIPMENT",
    "VENT AT HIGH POINTS",
    "DRAIN AT LOW POINTS",
    "SLOPE 1:100 TOWARDS VESSEL",
    "CAR SEALED OPEN",
    "TRACED AND INSULATED",
)
_REVISIONS = ("ISSUED FOR REVIEW", "ISSUED FOR DESIGN", "AS BUILT", "ISSUED FOR HAZOP")


@dataclass(slots=True)
class Table:
    """What to draw: cell texts by row, row height and column widths in pixels."""

    kind: str
    rows: list[list[str]]
    row_height: int
    col_widths: list[int]
    text_height: float

    @property
    def size(self) -> tuple[int, int]:
        return sum(self.col_widths), self.row_height * len(self.rows)


class FreeSpace:
    """Where on the sheet a rectangle of paper is still empty."""

    def __init__(self, image: NDArray[np.uint8], frame: Frame) -> None:
        h, w = image.shape
        self.frame = frame
        self.shape = (h // GRID, w // GRID)
        ink = image < PAPER
        grown = cv2.dilate(ink.astype(np.uint8), np.ones((2 * CLEARANCE + 1,) * 2, np.uint8))
        blocked = grown[: self.shape[0] * GRID, : self.shape[1] * GRID]
        blocked = blocked.reshape(self.shape[0], GRID, self.shape[1], GRID).max(axis=(1, 3))
        self.blocked = blocked.astype(bool)
        x1, y1, x2, y2 = frame.title_block
        self.block((x1 - CLEARANCE, y1 - CLEARANCE, x2 + CLEARANCE, y2 + CLEARANCE))
        self._outside_drawing()

    def _outside_drawing(self) -> None:
        d = self.frame.drawing
        rows, cols = self.shape
        gx1, gy1 = -(-d[0] // GRID), -(-d[1] // GRID)
        gx2, gy2 = d[2] // GRID, d[3] // GRID
        outside = np.ones(self.shape, dtype=bool)
        outside[max(gy1, 0) : min(gy2, rows), max(gx1, 0) : min(gx2, cols)] = False
        self.blocked |= outside

    def block(self, box: tuple[int, int, int, int]) -> None:
        """Mark [x1, y1, x2, y2] (pixels) as taken."""
        x1, y1, x2, y2 = box
        self.blocked[max(y1 // GRID, 0) : y2 // GRID + 1, max(x1 // GRID, 0) : x2 // GRID + 1] = (
            True
        )

    def place(self, width: int, height: int, rng: np.random.Generator) -> tuple[int, int] | None:
        """Top-left pixel of an empty width x height rectangle near the drawing's edge, or None."""
        gw, gh = -(-width // GRID) + 1, -(-height // GRID) + 1
        rows, cols = self.shape
        if gw >= cols or gh >= rows:
            return None
        summed = np.pad(self.blocked.astype(np.int32), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        taken = (
            summed[gh:, gw:] - summed[:-gh, gw:] - summed[gh:, :-gw] + summed[:-gh, :-gw]
        )  # taken[r, c]: blocked cells in the rectangle whose top-left cell is (r, c)
        free_r, free_c = np.nonzero(taken == 0)
        if free_r.size == 0:
            return None
        d = self.frame.drawing
        x, y = free_c * GRID, free_r * GRID
        edge = np.minimum.reduce(
            [x - d[0], y - d[1], d[2] - (x + width), d[3] - (y + height)]
        ).astype(np.float64)
        # Nearest the edge, with a little jitter so equal places are chosen at random.
        pick = int(np.argmin(edge + rng.uniform(0, GRID * 4, size=edge.size)))
        return int(x[pick]) + GRID // 2, int(y[pick]) + GRID // 2


def _data_table(rng: np.random.Generator, cols: int, rows: int) -> Table:
    header = list(rng.choice(_HEADERS, size=cols, replace=cols > len(_HEADERS)))
    body = []
    for _ in range(rows - 1):
        cells = []
        for c in range(cols):
            if c == 0:
                cells.append(f"{'EPVTC'[int(rng.integers(5))]}-{int(rng.integers(100, 999))}")
            elif header[c] == "SERVICE":
                cells.append(str(rng.choice(_SERVICES)))
            else:
                cells.append(f"{int(rng.integers(1, 500))} {rng.choice(_UNITS)}")
        body.append(cells)
    text_h = float(rng.uniform(8.0, 11.0))
    widths = [
        _text_width([row[c] for row in [header, *body]], text_h) + int(rng.integers(10, 24))
        for c in range(cols)
    ]
    return Table("data_table", [header, *body], round(text_h * 2.2), widths, text_h)


def _text_width(texts: list[str], text_h: float) -> int:
    scale = scale_for_height(text_h)
    return max(text_size(t, scale)[0] for t in texts)


def _revision_table(rng: np.random.Generator, rows: int) -> Table:
    header = ["REV", "DATE", "DESCRIPTION", "BY", "CHK"]
    body = [
        [
            str(r),
            f"20{int(rng.integers(10, 30))}-{int(rng.integers(1, 13)):02d}-"
            f"{int(rng.integers(1, 29)):02d}",
            str(rng.choice(_REVISIONS)),
            "".join(rng.choice(list("ABCDEFGHJKLMNPRSTW"), size=2)),
            "".join(rng.choice(list("ABCDEFGHJKLMNPRSTW"), size=2)),
        ]
        for r in range(rows - 1)
    ]
    text_h = float(rng.uniform(7.5, 10.0))
    widths = [
        _text_width([row[c] for row in [header, *body]], text_h) + int(rng.integers(10, 20))
        for c in range(len(header))
    ]
    return Table("revision_table", [header, *body], round(text_h * 2.1), widths, text_h)


def _description_header(rng: np.random.Generator, cols: int) -> Table:
    cells = []
    for _ in range(cols):
        tag = f"{'EPVTC'[int(rng.integers(5))]}-{int(rng.integers(100, 999))}"
        cells.append(
            "\n".join(
                (
                    tag,
                    str(rng.choice(_SERVICES)),
                    f"SIZE {int(rng.integers(300, 3000))}x{int(rng.integers(1000, 9000))}",
                    f"DESIGN PRESS {int(rng.integers(2, 40))} BARG",
                )
            )
        )
    text_h = float(rng.uniform(7.5, 10.0))
    width = max(_text_width(c.split("\n"), text_h) for c in cells) + int(rng.integers(12, 30))
    return Table(
        "description_header", [cells], round(text_h * 1.9 * 4 + 10), [width] * cols, text_h
    )


def _draw_table(
    image: NDArray[np.uint8], table: Table, x: int, y: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    width, height = table.size
    thick = int(rng.integers(1, 3))
    cv2.rectangle(image, (x, y), (x + width, y + height), INK, thick)
    for r in range(1, len(table.rows)):
        ry = y + r * table.row_height
        cv2.line(image, (x, ry), (x + width, ry), INK, thick if r == 1 else 1)
    cx = x
    for w in table.col_widths[:-1]:
        cx += w
        cv2.line(image, (cx, y), (cx, y + height), INK, 1)
    texts = []
    scale = scale_for_height(table.text_height)
    for r, row in enumerate(table.rows):
        cx = x
        for c, cell in enumerate(row):
            lines = cell.split("\n")
            pitch = table.row_height / (len(lines) + 0.5)
            for k, line in enumerate(lines):
                tw, th, _ = text_size(line, scale)
                tx = cx + (table.col_widths[c] - tw) // 2
                ty = round(y + r * table.row_height + pitch * (k + 0.75) + th / 2)
                cv2.putText(
                    image, line, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, INK, 1, cv2.LINE_AA
                )
                texts.append(
                    {"kind": "table_text", "text": line, "bbox": text_box(line, scale, tx, ty)}
                )
            cx += table.col_widths[c]
    return texts


def _notes(rng: np.random.Generator, count: int) -> list[str]:
    picked = rng.choice(len(_NOTES), size=count, replace=False)
    return ["NOTES:", *(f"{i + 1}. {_NOTES[k]}" for i, k in enumerate(picked))]


def _draw_notes(
    image: NDArray[np.uint8], lines: list[str], x: int, y: int, text_h: float
) -> list[dict[str, Any]]:
    scale = scale_for_height(text_h)
    pitch = round(text_h * 2.0)
    texts = []
    for k, line in enumerate(lines):
        ty = y + round(text_h) + k * pitch
        cv2.putText(image, line, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, INK, 1, cv2.LINE_AA)
        texts.append({"kind": "note", "text": line, "bbox": text_box(line, scale, x, ty)})
    return texts


def _notes_size(lines: list[str], text_h: float) -> tuple[int, int]:
    return _text_width(lines, text_h) + 4, round(text_h * 2.0) * len(lines) + 4


def draw_tables(
    image: NDArray[np.uint8], frame: Frame, rng: np.random.Generator, per_unit: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Draw tables and notes on the empty paper of `image`; their regions and texts.

    Parameters
    ----------
    image
        (H, W) uint8 sheet with pipes, symbols and text drawn; changed in place.
    frame
        The sheet's frame: tables stay inside its drawing area and clear of its title block.
    rng
        The generator's random stream for tables.
    per_unit
        Tables tried per 2000x1400 of sheet area (each kind in turn); a table that finds no
        empty place at any size is left out.

    Returns
    -------
    regions, texts
        regions.json's items ``{"id", "kind", "bbox": [x, y, w, h], "rows", "cols"}`` and
        text.json's items of the texts inside them.
    """
    if per_unit <= 0:
        return [], []
    h, w = image.shape
    space = FreeSpace(image, frame)
    wanted = max(1, round(per_unit * w * h / (2000 * 1400)))
    kinds = ["data_table", "description_header", "revision_table", "notes"]
    regions: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    for i in range(wanted * len(kinds)):
        kind = kinds[i % len(kinds)]
        if kind == "revision_table" and any(r["kind"] == kind for r in regions):
            continue  # one revision table per sheet
        placed = _place_one(image, space, kind, rng)
        if placed is None:
            continue
        region, region_texts = placed
        region["id"] = f"r{len(regions) + 1}"
        regions.append(region)
        texts.extend({**t, "region": region["id"]} for t in region_texts)
    return regions, texts


def _place_one(
    image: NDArray[np.uint8], space: FreeSpace, kind: str, rng: np.random.Generator
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    if kind == "notes":
        text_h = float(rng.uniform(8.0, 11.0))
        for count in range(int(rng.integers(3, 7)), 1, -1):
            lines = _notes(rng, count)
            nw, nh = _notes_size(lines, text_h)
            spot = space.place(nw, nh, rng)
            if spot is not None:
                texts = _draw_notes(image, lines, spot[0], spot[1], text_h)
                space.block(_cleared(spot, nw, nh))
                bbox = _union([t["bbox"] for t in texts])
                return {"kind": kind, "bbox": bbox, "rows": len(lines), "cols": 1}, texts
        return None
    for table in _shrinking(kind, rng):
        tw, th = table.size
        spot = space.place(tw + 4, th + 4, rng)
        if spot is None:
            continue
        texts = _draw_table(image, table, spot[0], spot[1], rng)
        space.block(_cleared(spot, tw, th))
        bbox = [spot[0] - 1, spot[1] - 1, tw + 3, th + 3]
        return {
            "kind": kind,
            "bbox": bbox,
            "rows": len(table.rows),
            "cols": len(table.col_widths),
        }, texts
    return None


def _union(boxes: list[list[int]]) -> list[int]:
    """The [x, y, w, h] box around `boxes`."""
    x1 = min(b[0] for b in boxes)
    y1 = min(b[1] for b in boxes)
    x2 = max(b[0] + b[2] for b in boxes)
    y2 = max(b[1] + b[3] for b in boxes)
    return [x1, y1, x2 - x1, y2 - y1]


def _cleared(spot: tuple[int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """A placed table's box with the clearance every later table keeps from it."""
    x, y = spot
    return x - CLEARANCE, y - CLEARANCE, x + width + CLEARANCE, y + height + CLEARANCE


def _shrinking(kind: str, rng: np.random.Generator) -> list[Table]:
    """The table to draw at its drawn size, then smaller versions of it."""
    if kind == "data_table":
        cols, rows = int(rng.integers(2, 13)), int(rng.integers(3, 16))
        sizes = [(cols, rows)]
        while cols > 2 or rows > 3:
            cols, rows = max(2, cols - 2), max(3, rows - 2)
            sizes.append((cols, rows))
        return [_data_table(rng, c, r) for c, r in sizes]
    if kind == "revision_table":
        rows = int(rng.integers(3, 7))
        return [_revision_table(rng, r) for r in range(rows, 2, -1)]
    cols = int(rng.integers(3, 9))
    return [_description_header(rng, c) for c in range(cols, 2, -1)]
