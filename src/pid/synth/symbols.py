"""Symbol shapes in the usual ISO 10628 / ISA 5.1 style, with their ports.

Each class is drawn in a canonical frame: a box of `w` x `h` pixels with the flow running
left to right (inline symbols) and y pointing down. `place` turns it by a multiple of 90
degrees; `draw_symbol` renders the primitives with OpenCV so that every pixel of ink stays
inside the symbol's box (the box is the ground truth).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from pid.core.classes import INLINE_CLASSES

Point = tuple[float, float]

#: Unit vectors of the four port directions, image coordinates (y down).
DIRECTIONS: dict[str, tuple[int, int]] = {"E": (1, 0), "S": (0, 1), "W": (-1, 0), "N": (0, -1)}
_TURN_CW = {"E": "S", "S": "W", "W": "N", "N": "E"}

_SUBPIXEL_SHIFT = 3
_SUBPIXEL = 1 << _SUBPIXEL_SHIFT


@dataclass(frozen=True, slots=True)
class Poly:
    points: tuple[Point, ...]
    closed: bool = False
    filled: bool = False


@dataclass(frozen=True, slots=True)
class Circle:
    center: Point
    radius: float
    filled: bool = False


@dataclass(frozen=True, slots=True)
class Label:
    """Upright text centred on `center`, at most `height` px tall and `width` px wide."""

    text: str
    center: Point
    height: float
    width: float


Primitive = Poly | Circle | Label


@dataclass(frozen=True, slots=True)
class Port:
    """A place on the box edge where a pipe attaches, and the direction the pipe leaves."""

    u: float
    v: float
    direction: str
    signal: bool = False


@dataclass(frozen=True, slots=True)
class Shape:
    width: int
    height: int
    primitives: tuple[Primitive, ...]
    ports: tuple[Port, ...]


#: Canonical size ranges in pixels: (min width, max width, min height, max height); for
#: shapes whose height follows from the width, the height range is the result's range.
SIZE_RANGES: dict[str, tuple[int, int, int, int]] = {
    "gate_valve": (28, 40, 16, 22),
    "globe_valve": (28, 40, 16, 22),
    "ball_valve": (28, 40, 16, 22),
    "check_valve": (28, 40, 16, 22),
    "butterfly_valve": (24, 32, 18, 24),
    "control_valve": (30, 40, 40, 52),
    "relief_valve": (30, 38, 40, 50),
    "reducer": (20, 28, 16, 22),
    "spectacle_blind": (10, 14, 34, 44),
    "flow_arrow": (14, 20, 10, 14),
    "centrifugal_pump": (60, 96, 44, 68),
    "vessel": (60, 100, 140, 240),
    "tank": (100, 170, 80, 130),
    "heat_exchanger": (140, 220, 46, 70),
    "instrument": (36, 48, 36, 48),
    "off_page_connector": (50, 70, 20, 26),
}

#: How many pipes may end on one symbol (a port takes one pipe).
MAX_CONNECTIONS: dict[str, int] = {
    "relief_valve": 2,
    "centrifugal_pump": 2,
    "vessel": 5,
    "tank": 4,
    "heat_exchanger": 4,
    "instrument": 2,
    "off_page_connector": 1,
}

INSTRUMENT_LETTERS = ("FI", "FIC", "PI", "PIC", "TI", "TIC", "LI", "LIC", "FT", "PT", "TT", "LT")


def _even(value: float | np.integer) -> int:
    return round(value / 2.0) * 2


def _bowtie(w: float, top: float, bottom: float) -> tuple[Primitive, ...]:
    mid = (top + bottom) / 2.0
    return (
        Poly(((0.0, top), (w / 2.0, mid), (0.0, bottom)), closed=True),
        Poly(((w, top), (w / 2.0, mid), (w, bottom)), closed=True),
    )


def _inline_ports(w: float, v: float) -> tuple[Port, ...]:
    return (Port(0.0, v, "W"), Port(w, v, "E"))


def _arc(
    center: Point,
    radius: float,
    start_deg: float,
    end_deg: float,
    n: int,
    radius_y: float | None = None,
) -> list[Point]:
    """Points along a circular (or, with `radius_y`, elliptical) arc."""
    cx, cy = center
    ry = radius if radius_y is None else radius_y
    angles = np.linspace(math.radians(start_deg), math.radians(end_deg), n)
    return [(cx + radius * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def _valve(rng: np.random.Generator, extra: Callable[[int, int], tuple[Primitive, ...]]) -> Shape:
    w = _even(rng.integers(28, 41))
    h = _even(w * 0.55)
    return Shape(w, h, _bowtie(w, 0, h) + extra(w, h), _inline_ports(w, h / 2))


def _gate(rng: np.random.Generator) -> Shape:
    return _valve(rng, lambda w, h: ())


def _globe(rng: np.random.Generator) -> Shape:
    return _valve(rng, lambda w, h: (Circle((w / 2, h / 2), h * 0.2, filled=True),))


def _ball(rng: np.random.Generator) -> Shape:
    return _valve(rng, lambda w, h: (Circle((w / 2, h / 2), h * 0.3),))


def _check(rng: np.random.Generator) -> Shape:
    w = _even(rng.integers(28, 41))
    h = _even(w * 0.55)
    prims = (
        Poly(((0.0, 0.0), (w / 2, h / 2), (0.0, float(h))), closed=True),
        Poly(((float(w), 0.0), (w / 2, h / 2), (float(w), float(h))), closed=True, filled=True),
    )
    return Shape(w, h, prims, _inline_ports(w, h / 2))


def _butterfly(rng: np.random.Generator) -> Shape:
    w = _even(rng.integers(24, 33))
    h = _even(w * 0.75)
    prims = (
        Poly(((0.0, 0.0), (0.0, float(h)))),
        Poly(((float(w), 0.0), (float(w), float(h)))),
        Poly(((w * 0.25, h * 0.95), (w * 0.75, h * 0.05))),
        Circle((w / 2, h / 2), h * 0.18, filled=True),
    )
    return Shape(w, h, prims, _inline_ports(w, h / 2))


def _control(rng: np.random.Generator) -> Shape:
    w = _even(rng.integers(30, 41))
    body = _even(w * 0.55)
    stem = int(rng.integers(8, 13))
    dome = round(w * 0.35)
    h = dome + stem + body
    top = float(h - body)
    prims = (
        *_bowtie(w, top, h),
        Poly(((w / 2, top + body / 2), (w / 2, float(dome)))),
        Poly(tuple(_arc((w / 2, float(dome)), float(dome), 180, 360, 13)), closed=True),
    )
    ports = (*_inline_ports(w, h - body / 2), Port(w / 2, 0.0, "N", signal=True))
    return Shape(w, h, prims, ports)


def _relief(rng: np.random.Generator) -> Shape:
    w = int(rng.integers(30, 39))
    h = int(rng.integers(40, 51))
    cx, cy, a = round(w * 0.45), round(h * 0.62), w * 0.22
    zig = [(float(cx), cy - 4.0)]
    n_zig = 5
    for i in range(n_zig):
        y = cy - 4.0 - (cy - 8.0) * (i + 0.5) / n_zig
        zig.append((cx + (a * 0.6 if i % 2 == 0 else -a * 0.6), y))
    zig.append((float(cx), 4.0))
    prims = (
        Poly(((cx - a, float(h)), (cx + a, float(h)), (float(cx), float(cy))), closed=True),
        Poly(((float(w), cy - a), (float(w), cy + a), (float(cx), float(cy))), closed=True),
        Poly(tuple(zig)),
        Poly(((cx - a, 4.0), (cx + a, 4.0))),
    )
    return Shape(w, h, prims, (Port(cx, h, "S"), Port(w, cy, "E")))


def _reducer(rng: np.random.Generator) -> Shape:
    w = _even(rng.integers(20, 29))
    h = _even(rng.integers(16, 23))
    pts = ((0.0, 0.0), (float(w), h * 0.25), (float(w), h * 0.75), (0.0, float(h)))
    return Shape(w, h, (Poly(pts, closed=True),), _inline_ports(w, h / 2))


def _spectacle(rng: np.random.Generator) -> Shape:
    w = _even(rng.integers(10, 15))
    h = _even(rng.integers(34, 45))
    r = min(w / 2, h * 0.2)
    prims = (
        Circle((w / 2, r), r, filled=True),
        Circle((w / 2, h - r), r),
        Poly(((w / 2, 2 * r), (w / 2, h - 2 * r))),
    )
    return Shape(w, h, prims, _inline_ports(w, h / 2))


def _arrow(rng: np.random.Generator) -> Shape:
    w = int(rng.integers(14, 21))
    h = _even(rng.integers(10, 15))
    prims = (Poly(((0.0, 0.0), (float(w), h / 2), (0.0, float(h))), closed=True, filled=True),)
    return Shape(w, h, prims, _inline_ports(w, h / 2))


def _pump(rng: np.random.Generator) -> Shape:
    r = int(rng.integers(18, 29))
    nozzle = round(r * 0.7)
    t = _even(r * 0.45)
    base = round(r * 0.45)
    w, h = 2 * r + nozzle, 2 * r + base
    x_cut = r + math.sqrt(r * r - (r - t) ** 2)
    prims = (
        Circle((float(r), float(r)), float(r)),
        Poly(((float(r), 0.0), (float(w), 0.0), (float(w), float(t)), (x_cut, float(t)))),
        Poly(((r - 0.75 * r, float(h)), (r + 0.75 * r, float(h)))),
        Poly(((r - 0.55 * r, 2 * r - 0.16 * r), (r - 0.75 * r, float(h)))),
        Poly(((r + 0.55 * r, 2 * r - 0.16 * r), (r + 0.75 * r, float(h)))),
    )
    return Shape(w, h, prims, (Port(0.0, float(r), "W"), Port(float(w), t / 2, "E")))


def _vessel(rng: np.random.Generator) -> Shape:
    w = _even(rng.integers(60, 101))
    h = _even(rng.integers(140, 241))
    e = w * 0.25
    # Dished heads: half ellipses as deep as the head band, so the drawing stays in the box
    # and the nozzles on the top and bottom sit on the heads.
    top = _arc((w / 2, e), w / 2, 180, 360, 17, radius_y=e)
    bottom = _arc((w / 2, h - e), w / 2, 0, 180, 17, radius_y=e)
    prims = (
        Poly(tuple(top)),
        Poly(tuple(bottom)),
        Poly(((0.0, e), (0.0, h - e))),
        Poly(((float(w), e), (float(w), h - e))),
        Poly(((0.0, e), (float(w), e))),
        Poly(((0.0, h - e), (float(w), h - e))),
    )
    ports = (
        Port(w / 2, 0.0, "N"),
        Port(w / 2, float(h), "S"),
        Port(0.0, round(h * 0.3), "W"),
        Port(0.0, round(h * 0.7), "W"),
        Port(float(w), round(h * 0.3), "E"),
        Port(float(w), round(h * 0.7), "E"),
    )
    return Shape(w, h, prims, ports)


def _tank(rng: np.random.Generator) -> Shape:
    w = _even(rng.integers(100, 171))
    h = _even(rng.integers(80, 131))
    c = round(h * 0.2)
    prims = (
        Poly(((0.0, float(c)), (w / 2, 0.0), (float(w), float(c)))),
        Poly(((0.0, float(c)), (0.0, float(h)), (float(w), float(h)), (float(w), float(c)))),
    )
    ports = (
        Port(w / 2, 0.0, "N"),
        Port(0.0, round(h * 0.35), "W"),
        Port(0.0, round(h * 0.8), "W"),
        Port(float(w), round(h * 0.35), "E"),
        Port(float(w), round(h * 0.8), "E"),
        Port(round(w * 0.3), float(h), "S"),
        Port(round(w * 0.7), float(h), "S"),
    )
    return Shape(w, h, prims, ports)


def _exchanger(rng: np.random.Generator) -> Shape:
    w = _even(rng.integers(140, 221))
    h = _even(rng.integers(46, 71))
    ch = round(w * 0.12)
    prims = (
        Poly(((0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))), closed=True),
        Poly(((float(ch), 0.0), (float(ch), float(h)))),
        Poly(((float(ch), h * 0.35), (w - 6.0, h * 0.35))),
        Poly(((float(ch), h * 0.65), (w - 6.0, h * 0.65))),
    )
    ports = (
        Port(round(ch / 2), 0.0, "N"),
        Port(round(ch / 2), float(h), "S"),
        Port(round(w * 0.4), 0.0, "N"),
        Port(round(w * 0.8), float(h), "S"),
        Port(float(w), h / 2, "E"),
    )
    return Shape(w, h, prims, ports)


def _instrument(rng: np.random.Generator) -> Shape:
    d = _even(rng.integers(36, 49))
    letters = str(INSTRUMENT_LETTERS[int(rng.integers(len(INSTRUMENT_LETTERS)))])
    number = str(int(rng.integers(100, 1000)))
    prims: list[Primitive] = [Circle((d / 2, d / 2), d / 2)]
    if rng.random() < 0.5:
        prims.append(Poly(((0.0, d / 2), (float(d), d / 2))))
    prims.append(Label(letters, (d / 2, d * 0.32), d * 0.2, d * 0.62))
    prims.append(Label(number, (d / 2, d * 0.7), d * 0.2, d * 0.62))
    ports = (
        Port(d / 2, 0.0, "N"),
        Port(float(d), d / 2, "E"),
        Port(d / 2, float(d), "S"),
        Port(0.0, d / 2, "W"),
    )
    return Shape(d, d, tuple(prims), ports)


def _off_page(rng: np.random.Generator) -> Shape:
    w = int(rng.integers(50, 71))
    h = _even(rng.integers(20, 27))
    pts = ((0.0, 0.0), (w - h / 2, 0.0), (float(w), h / 2), (w - h / 2, float(h)), (0.0, float(h)))
    label = Label(f"{int(rng.integers(1, 100)):02d}", ((w - h / 2) / 2, h / 2), h * 0.45, w * 0.5)
    return Shape(w, h, (Poly(pts, closed=True), label), _inline_ports(w, h / 2))


SHAPE_MAKERS: dict[str, Callable[[np.random.Generator], Shape]] = {
    "gate_valve": _gate,
    "globe_valve": _globe,
    "ball_valve": _ball,
    "check_valve": _check,
    "butterfly_valve": _butterfly,
    "control_valve": _control,
    "relief_valve": _relief,
    "reducer": _reducer,
    "spectacle_blind": _spectacle,
    "flow_arrow": _arrow,
    "centrifugal_pump": _pump,
    "vessel": _vessel,
    "tank": _tank,
    "heat_exchanger": _exchanger,
    "instrument": _instrument,
    "off_page_connector": _off_page,
}

assert set(SHAPE_MAKERS) >= set(INLINE_CLASSES)


def make_shape(class_name: str, rng: np.random.Generator) -> Shape:
    return SHAPE_MAKERS[class_name](rng)


@dataclass(frozen=True, slots=True)
class PlacedSymbol:
    """A shape put on the sheet: `x`, `y` is the top-left corner, `turns` quarter turns CW."""

    id: str
    class_name: str
    shape: Shape
    x: int
    y: int
    turns: int
    line_width: int

    @property
    def size(self) -> tuple[int, int]:
        w, h = self.shape.width, self.shape.height
        return (w, h) if self.turns % 2 == 0 else (h, w)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """[x1, y1, x2, y2] in pixels; ink lies in x1 <= x <= x2, y1 <= y <= y2."""
        w, h = self.size
        return (self.x, self.y, self.x + w, self.y + h)

    def to_sheet(self, u: float, v: float) -> Point:
        return _rotate(u, v, self.shape.width, self.shape.height, self.turns, self.x, self.y)

    def port_points(self) -> list[tuple[Point, str, bool]]:
        """Each port as (sheet point, direction, is a signal port)."""
        out = []
        for port in self.shape.ports:
            direction = port.direction
            for _ in range(self.turns % 4):
                direction = _TURN_CW[direction]
            out.append((self.to_sheet(port.u, port.v), direction, port.signal))
        return out


def _rotate(u: float, v: float, w: float, h: float, turns: int, x0: float, y0: float) -> Point:
    k = turns % 4
    if k == 0:
        x, y = u, v
    elif k == 1:
        x, y = h - v, u
    elif k == 2:
        x, y = w - u, h - v
    else:
        x, y = v, w - u
    return (x0 + x, y0 + y)


def inline_turns(direction: tuple[int, int]) -> int:
    """Quarter turns that make an inline symbol's flow run along `direction`."""
    return {(1, 0): 0, (0, 1): 1, (-1, 0): 2, (0, -1): 3}[direction]


def inline_port_offset(shape: Shape) -> float:
    """Distance from the canonical top edge to the pipe axis of an inline shape."""
    return shape.ports[0].v


def _fixed(points: list[Point]) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _SUBPIXEL).astype(np.int32)


def draw_symbol(
    image: np.ndarray, symbol: PlacedSymbol, ink: int = 0
) -> list[tuple[str, list[int]]]:
    """Draw `symbol` into a uint8 image; return its labels as (text, [x, y, w, h]).

    The canonical frame is shrunk by half a line width on every side, so that thick strokes
    stay inside the box that the ground truth records.
    """
    shape, lw = symbol.shape, symbol.line_width
    inset = lw / 2.0 + 0.5
    sx = (shape.width - 2 * inset) / shape.width
    sy = (shape.height - 2 * inset) / shape.height

    def to_image(p: Point) -> Point:
        return symbol.to_sheet(inset + p[0] * sx, inset + p[1] * sy)

    labels: list[tuple[str, list[int]]] = []
    for prim in shape.primitives:
        if isinstance(prim, Poly):
            pts = _fixed([to_image(p) for p in prim.points])
            if prim.filled:
                cv2.fillPoly(image, [pts], ink, lineType=cv2.LINE_8, shift=_SUBPIXEL_SHIFT)
            cv2.polylines(image, [pts], prim.closed, ink, lw, cv2.LINE_8, _SUBPIXEL_SHIFT)
        elif isinstance(prim, Circle):
            cx, cy = to_image(prim.center)
            r = prim.radius * min(sx, sy)
            thickness = -1 if prim.filled else lw
            cv2.circle(
                image,
                (round(cx * _SUBPIXEL), round(cy * _SUBPIXEL)),
                round(r * _SUBPIXEL),
                ink,
                thickness,
                cv2.LINE_8,
                _SUBPIXEL_SHIFT,
            )
        else:
            cx, cy = to_image(prim.center)
            labels.append(
                (prim.text, draw_text_fit(image, prim.text, cx, cy, prim.width, prim.height, ink))
            )
    return labels


_FONT = cv2.FONT_HERSHEY_SIMPLEX


def text_size(text: str, scale: float, thickness: int = 1) -> tuple[int, int, int]:
    """(width, height above baseline, baseline) of `text` in pixels."""
    (w, h), base = cv2.getTextSize(text, _FONT, scale, thickness)
    return int(w), int(h), int(base)


def scale_for_height(height: float) -> float:
    # Hershey simplex capitals are about 22 px tall at scale 1.
    return max(height / 22.0, 0.2)


def draw_text_fit(
    image: np.ndarray, text: str, cx: float, cy: float, max_w: float, max_h: float, ink: int = 0
) -> list[int]:
    """Draw upright text centred at (cx, cy) within max_w x max_h; return its [x, y, w, h]."""
    scale = scale_for_height(max_h)
    w, h, _ = text_size(text, scale)
    if w > max_w:
        scale *= max_w / w
        w, h, _ = text_size(text, scale)
    x = round(cx - w / 2)
    y = round(cy + h / 2)
    cv2.putText(image, text, (x, y), _FONT, scale, ink, 1, cv2.LINE_AA)
    return text_box(text, scale, x, y)


def text_box(text: str, scale: float, x: int, baseline_y: int) -> list[int]:
    """The [x, y, w, h] box of text drawn by cv2.putText at (x, baseline_y)."""
    w, h, base = text_size(text, scale)
    return [x - 1, baseline_y - h - 1, w + 3, h + base + 2]
