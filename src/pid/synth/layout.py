"""Placement and routing of a synthetic sheet: symbols, orthogonal pipes and meeting points.

Strategy. Every pipe is an orthogonal polyline with integer vertices. A candidate polyline is
accepted only if it keeps clear of everything already on the sheet:

- symbol boxes, grown by a margin (a pipe reaches a box only at one of its ports);
- parallel segments, by a clearance (so two pipes never merge into one stroke);
- perpendicular segments, which it may only cross properly, away from both segments' ends,
  or touch at a tee point it was created for;
- existing meeting points, by a separation (so each meeting point is one thing to find).

These rules make the ground truth exact: every crossing of two segments is a meeting point
that the generator knows about, and nothing else touches. Styles (dot, hop-over, gap, ...)
are assigned to the meeting points afterwards, because they change the picture and the
topology but not the geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pid.synth.params import BRIDGE_STYLES, JUNCTION_STYLES, UNIT_AREA, GeneratorParams
from pid.synth.symbols import (
    DIRECTIONS,
    MAX_CONNECTIONS,
    PlacedSymbol,
    Shape,
    inline_port_offset,
    inline_turns,
    make_shape,
)

IPoint = tuple[int, int]

TERMINAL_MIX: tuple[tuple[str, float], ...] = (
    ("vessel", 0.16),
    ("tank", 0.08),
    ("heat_exchanger", 0.13),
    ("centrifugal_pump", 0.17),
    ("relief_valve", 0.08),
    ("instrument", 0.16),
    ("off_page_connector", 0.22),
)

INLINE_MIX: tuple[tuple[str, float], ...] = (
    ("gate_valve", 0.15),
    ("globe_valve", 0.10),
    ("ball_valve", 0.10),
    ("check_valve", 0.10),
    ("butterfly_valve", 0.08),
    ("control_valve", 0.13),
    ("reducer", 0.08),
    ("spectacle_blind", 0.07),
    ("flow_arrow", 0.19),
)


class LayoutError(RuntimeError):
    """The sheet could not be filled to the required densities with this seed."""


@dataclass(frozen=True, slots=True)
class End:
    """What one end of a pipe is attached to: a symbol port, a tee on another pipe, nothing."""

    kind: str  # "symbol" | "tee" | "free"
    ref: str = ""  # symbol id, or tee index as text


@dataclass(slots=True)
class Pipe:
    id: int
    points: list[IPoint]
    width: int
    dashed: bool
    start: End
    end: End
    segments: list[int] = field(default_factory=list)  # global segment ids, in order


@dataclass(slots=True)
class Tee:
    point: IPoint
    main_pipe: int
    main_segment: int
    branch_pipe: int
    style: str = ""
    dot_radius: int = 0


@dataclass(slots=True)
class Crossing:
    point: IPoint
    pipes: tuple[int, int]
    segments: tuple[int, int]
    style: str = ""
    over: int = -1  # the pipe that hops or is gapped
    radius: int = 0  # hop radius, gap half-length, or dot radius
    side: int = 1  # side of the hop arc: +1 or -1 along the normal


@dataclass(slots=True)
class InlineSymbol:
    symbol: PlacedSymbol
    pipe: int
    entry: float  # arc position along the pipe where it enters the box
    exit: float


@dataclass(slots=True)
class Frame:
    """Border, title block and drawing area of the sheet, all [x1, y1, x2, y2]."""

    outer: tuple[int, int, int, int]
    inner: tuple[int, int, int, int]
    title_block: tuple[int, int, int, int]
    drawing: tuple[int, int, int, int]


@dataclass(slots=True)
class Layout:
    width: int
    height: int
    frame: Frame
    symbols: list[PlacedSymbol]
    pipes: list[Pipe]
    tees: list[Tee]
    crossings: list[Crossing]
    inline: list[InlineSymbol]
    free_ends: list[tuple[int, IPoint]]  # (pipe id, point)


def make_frame(width: int, height: int) -> Frame:
    short = min(width, height)
    margin = max(10, round(0.012 * short))
    band = max(16, round(0.016 * short))
    outer = (margin, margin, width - margin, height - margin)
    inner = (margin + band, margin + band, width - margin - band, height - margin - band)
    tb_w = int(np.clip(0.28 * width, 280, 1000))
    tb_h = int(np.clip(0.12 * height, 84, 300))
    title = (inner[2] - tb_w, inner[3] - tb_h, inner[2], inner[3])
    pad = 12
    drawing = (inner[0] + pad, inner[1] + pad, inner[2] - pad, inner[3] - pad)
    return Frame(outer, inner, title, drawing)


class _SegmentIndex:
    """Axis-aligned segments in two arrays (horizontal, vertical) for vectorised checks.

    A segment is stored as (c, lo, hi): the fixed coordinate and the span along its axis
    (y, x0, x1 for a horizontal one; x, y0, y1 for a vertical one).
    """

    def __init__(self) -> None:
        self._rows: list[list[tuple[int, int, int, int]]] = [[], []]  # (c, lo, hi, gid)
        self._cache: list[np.ndarray | None] = [None, None]
        self.by_gid: list[tuple[int, int, int, int, int, bool]] = []  # (o, c, lo, hi, pipe, dashed)
        self.solid: list[int] = []
        self._solid_cache: np.ndarray | None = None

    def add(self, orient: int, c: int, lo: int, hi: int, pipe: int, dashed: bool) -> int:
        gid = len(self.by_gid)
        self.by_gid.append((orient, c, lo, hi, pipe, dashed))
        self._rows[orient].append((c, lo, hi, gid))
        if not dashed:
            self.solid.append(gid)
        self._cache[orient] = None
        return gid

    def nearest_solid(self, spot: tuple[float, float]) -> int:
        """The solid segment closest to `spot`."""
        if self._solid_cache is None or len(self._solid_cache) != len(self.solid):
            rows = [self.by_gid[g] for g in self.solid]
            self._solid_cache = np.asarray(
                [(o, c, lo, hi) for o, c, lo, hi, _, _ in rows], dtype=np.float64
            ).reshape(-1, 4)
        arr = self._solid_cache
        horizontal = arr[:, 0] == 0
        along = np.where(horizontal, spot[0], spot[1])
        across = np.where(horizontal, spot[1], spot[0])
        nearest_along = np.clip(along, arr[:, 2], arr[:, 3])
        dist2 = (along - nearest_along) ** 2 + (across - arr[:, 1]) ** 2
        return self.solid[int(np.argmin(dist2))]

    def array(self, orient: int) -> np.ndarray:
        cached = self._cache[orient]
        if cached is None:
            rows = self._rows[orient]
            cached = np.asarray(rows, dtype=np.int64).reshape(len(rows), 4)
            self._cache[orient] = cached
        return cached


def _as_cspan(p: IPoint, q: IPoint) -> tuple[int, int, int, int]:
    """(orient, c, lo, hi) of an axis-aligned segment."""
    if p[1] == q[1]:
        return 0, p[1], min(p[0], q[0]), max(p[0], q[0])
    return 1, p[0], min(p[1], q[1]), max(p[1], q[1])


def simplify(points: list[IPoint]) -> list[IPoint] | None:
    """Drop repeated and collinear vertices; None if the path doubles back or is not orthogonal."""
    pts: list[IPoint] = []
    for p in points:
        if not pts or pts[-1] != p:
            pts.append(p)
    if len(pts) < 2:
        return None
    out = [pts[0]]
    for i in range(1, len(pts)):
        p = pts[i]
        if p[0] != out[-1][0] and p[1] != out[-1][1]:
            return None
        if len(out) >= 2:
            a, b = out[-2], out[-1]
            d1 = (np.sign(b[0] - a[0]), np.sign(b[1] - a[1]))
            d2 = (np.sign(p[0] - b[0]), np.sign(p[1] - b[1]))
            if d1 == d2:
                out[-1] = p
                continue
            if d1[0] == -d2[0] and d1[1] == -d2[1]:
                return None
        out.append(p)
    return out


class LayoutBuilder:
    """Builds one sheet's layout from a random generator; see the module docstring."""

    def __init__(
        self, width: int, height: int, rng: np.random.Generator, params: GeneratorParams
    ) -> None:
        self.width, self.height = width, height
        self.rng = rng
        self.p = params
        self.frame = make_frame(width, height)
        self.units = width * height / UNIT_AREA
        self.segs = _SegmentIndex()
        self.symbols: list[PlacedSymbol] = []
        self.boxes: list[tuple[int, int, int, int]] = []
        self.free_ports: list[list[tuple[IPoint, str]]] = []
        self.capacity: list[int] = []
        self.pipes: list[Pipe] = []
        self.tees: list[Tee] = []
        self.crossings: list[Crossing] = []
        self.inline: list[InlineSymbol] = []
        self.free_ends: list[tuple[int, IPoint]] = []
        self._meeting: list[IPoint] = []
        self._boxes_cache: np.ndarray | None = None
        self._add_obstacle(self.frame.title_block)

    # ---- bookkeeping ------------------------------------------------------------------------

    def _add_obstacle(self, box: tuple[int, int, int, int]) -> None:
        self.boxes.append(box)
        self._boxes_cache = None

    def _box_array(self) -> np.ndarray:
        if self._boxes_cache is None:
            self._boxes_cache = np.asarray(self.boxes, dtype=np.int64).reshape(-1, 4)
        return self._boxes_cache

    def _meeting_far(self, point: IPoint, extra: list[IPoint] | None = None) -> bool:
        pts = self._meeting + (extra or [])
        if not pts:
            return True
        arr = np.asarray(pts, dtype=np.int64)
        d2 = ((arr - np.asarray(point)) ** 2).sum(axis=1)
        return bool(d2.min() >= self.p.meeting_separation_px**2)

    def _uniform_int(self, lo_hi: tuple[int, int]) -> int:
        return int(self.rng.integers(lo_hi[0], lo_hi[1] + 1))

    # ---- geometric checks --------------------------------------------------------------------

    def _rect_free(self, rect: tuple[float, float, float, float], margin: int) -> bool:
        """True if `rect` [x1, y1, x2, y2] overlaps no box grown by `margin`."""
        boxes = self._box_array()
        if len(boxes) == 0:
            return True
        x1, y1, x2, y2 = rect
        hit = (
            (boxes[:, 0] - margin < x2)
            & (boxes[:, 2] + margin > x1)
            & (boxes[:, 1] - margin < y2)
            & (boxes[:, 3] + margin > y1)
        )
        return not bool(hit.any())

    def _in_drawing(self, rect: tuple[float, float, float, float]) -> bool:
        d = self.frame.drawing
        return rect[0] >= d[0] and rect[1] >= d[1] and rect[2] <= d[2] and rect[3] <= d[3]

    def _rect_clear_of_segments(
        self, rect: tuple[float, float, float, float], gap: int, *, except_gid: int = -1
    ) -> bool:
        """True if no segment (other than `except_gid`) passes within `gap` px of `rect`."""
        x1, y1, x2, y2 = rect
        for orient in (0, 1):
            arr = self.segs.array(orient)
            if len(arr) == 0:
                continue
            c, lo, hi, gids = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
            if orient == 0:
                hit = (c > y1 - gap) & (c < y2 + gap) & (lo < x2 + gap) & (hi > x1 - gap)
            else:
                hit = (c > x1 - gap) & (c < x2 + gap) & (lo < y2 + gap) & (hi > y1 - gap)
            if (hit & (gids != except_gid)).any():
                return False
        return True

    def _segment_crossings(
        self, p: IPoint, q: IPoint, touch: dict[IPoint, int], allow_cross: bool
    ) -> list[tuple[int, IPoint]] | None:
        """Check one candidate segment against every stored segment.

        Returns the stored segments it crosses, with the crossing points, or None if it comes
        too close to anything. `touch` maps an end point of the candidate to the stored segment
        it may end on (a tee).
        """
        orient, c, lo, hi = _as_cspan(p, q)
        clear, sep = self.p.parallel_clearance_px, self.p.meeting_separation_px
        par = self.segs.array(orient)
        if len(par):
            near = (
                (np.abs(par[:, 0] - c) < clear)
                & (par[:, 1] < hi + clear)
                & (par[:, 2] > lo - clear)
            )
            if near.any():
                return None
        perp = self.segs.array(1 - orient)
        crossings: list[tuple[int, IPoint]] = []
        if len(perp) == 0:
            return crossings
        pc, plo, phi, gids = perp[:, 0], perp[:, 1], perp[:, 2], perp[:, 3]
        gap = self.p.end_clearance_px
        near = (pc >= lo - gap) & (pc <= hi + gap) & (plo <= c + gap) & (phi >= c - gap)
        for k in np.flatnonzero(near):
            at = int(pc[k])
            gid = int(gids[k])
            inside_other = plo[k] + sep <= c <= phi[k] - sep
            point: IPoint = (at, c) if orient == 0 else (c, at)
            if touch.get(point) == gid and inside_other and at in (lo, hi):
                continue
            if allow_cross and inside_other and lo + sep <= at <= hi - sep:
                crossings.append((gid, point))
                continue
            return None
        return crossings

    def _check_polyline(
        self,
        points: list[IPoint],
        *,
        port_ends: tuple[bool, bool],
        touch: dict[IPoint, int],
        allow_cross: bool = True,
    ) -> list[tuple[int, int, IPoint]] | None:
        """Validate a whole candidate pipe; return its crossings as (seg index, gid, point)."""
        margin = self.p.box_margin_px
        n = len(points) - 1
        found: list[tuple[int, int, IPoint]] = []
        for k in range(n):
            p, q = points[k], points[k + 1]
            rect = self._trimmed_rect(
                p, q, margin + 1, k == 0 and port_ends[0], k == n - 1 and port_ends[1]
            )
            if rect is not None and not self._rect_free(rect, margin):
                return None
            if not self._in_drawing(
                (min(p[0], q[0]), min(p[1], q[1]), max(p[0], q[0]), max(p[1], q[1]))
            ):
                return None
            hits = self._segment_crossings(p, q, touch, allow_cross)
            if hits is None:
                return None
            found.extend((k, gid, pt) for gid, pt in hits)
        if not self._self_clear(points):
            return None
        crossing_points = [pt for _, _, pt in found]
        for i, pt in enumerate(crossing_points):
            if not self._meeting_far(pt, crossing_points[:i]):
                return None
        return found

    @staticmethod
    def _trimmed_rect(
        p: IPoint, q: IPoint, trim: int, trim_start: bool, trim_end: bool
    ) -> tuple[float, float, float, float] | None:
        """The segment as a rectangle, shortened at port ends so it may leave its own box."""
        length = abs(q[0] - p[0]) + abs(q[1] - p[1])
        a = trim if trim_start else 0
        b = trim if trim_end else 0
        if a + b >= length:
            return None
        dx, dy = np.sign(q[0] - p[0]), np.sign(q[1] - p[1])
        s = (p[0] + dx * a, p[1] + dy * a)
        e = (q[0] - dx * b, q[1] - dy * b)
        return (min(s[0], e[0]), min(s[1], e[1]), max(s[0], e[0]), max(s[1], e[1]))

    def _self_clear(self, points: list[IPoint]) -> bool:
        clear = self.p.parallel_clearance_px
        n = len(points) - 1
        spans = [_as_cspan(points[k], points[k + 1]) for k in range(n)]
        for i in range(n):
            for j in range(i + 2, n):
                oi, ci, loi, hii = spans[i]
                oj, cj, loj, hij = spans[j]
                if oi == oj:
                    if abs(ci - cj) < clear and loi < hij + clear and hii > loj - clear:
                        return False
                elif loi - clear <= cj <= hii + clear and loj - clear <= ci <= hij + clear:
                    return False
        return True

    # ---- committing ------------------------------------------------------------------------

    def _commit_pipe(
        self,
        points: list[IPoint],
        width: int,
        dashed: bool,
        start: End,
        end: End,
        crossings: list[tuple[int, int, IPoint]],
    ) -> Pipe:
        pipe = Pipe(len(self.pipes), points, width, dashed, start, end)
        for k in range(len(points) - 1):
            o, c, lo, hi = _as_cspan(points[k], points[k + 1])
            pipe.segments.append(self.segs.add(o, c, lo, hi, pipe.id, dashed))
        self.pipes.append(pipe)
        for k, gid, pt in crossings:
            other_pipe = self.segs.by_gid[gid][4]
            self.crossings.append(Crossing(pt, (pipe.id, other_pipe), (pipe.segments[k], gid)))
            self._meeting.append(pt)
        return pipe

    def _add_tee(self, point: IPoint, main_gid: int, branch_pipe: int) -> str:
        main_pipe = self.segs.by_gid[main_gid][4]
        self.tees.append(Tee(point, main_pipe, main_gid, branch_pipe))
        self._meeting.append(point)
        return str(len(self.tees) - 1)

    # ---- symbols -----------------------------------------------------------------------------

    def _choose(self, mix: tuple[tuple[str, float], ...]) -> str:
        names = [m[0] for m in mix]
        weights = np.asarray([m[1] for m in mix])
        return names[int(self.rng.choice(len(names), p=weights / weights.sum()))]

    def _register_symbol(self, symbol: PlacedSymbol, ports: bool) -> None:
        self.symbols.append(symbol)
        self._add_obstacle(symbol.box)
        free: list[tuple[IPoint, str]] = []
        if ports:
            for pt, direction, signal in symbol.port_points():
                if not signal:
                    free.append(((round(pt[0]), round(pt[1])), direction))
        self.free_ports.append(free)
        self.capacity.append(MAX_CONNECTIONS.get(symbol.class_name, 0) if ports else 0)

    def _next_symbol_id(self) -> str:
        return f"s{len(self.symbols)}"

    def place_terminals(self) -> None:
        """Equipment, instruments and off-page connectors, one per cell of a jittered grid.

        A grid spreads them over the whole drawing area, so that the pipes between them (and
        the branches off those pipes) cover the sheet instead of one corner of it.
        """
        count = max(6, round(self.p.terminals_per_unit * self.units))
        d = self.frame.drawing
        dw, dh = d[2] - d[0], d[3] - d[1]
        cols = max(2, round(math.sqrt(count * dw / dh)))
        rows = max(2, math.ceil(count / cols))
        cells = [(c, r) for r in range(rows) for c in range(cols)]
        for i in self.rng.permutation(len(cells))[:count]:
            col, row = cells[int(i)]
            cell = (
                d[0] + dw * col / cols,
                d[1] + dh * row / rows,
                d[0] + dw * (col + 1) / cols,
                d[1] + dh * (row + 1) / rows,
            )
            self._place_terminal_in(cell)

    def _place_terminal_in(self, cell: tuple[float, float, float, float]) -> None:
        spacing = 2 * self.p.parallel_clearance_px
        name = self._choose(TERMINAL_MIX)
        shape = make_shape(name, self.rng)
        for _attempt in range(30):
            turns = int(self.rng.integers(4))
            if name == "off_page_connector":
                x, y, turns = self._edge_position(shape)
            else:
                w, h = (
                    (shape.width, shape.height) if turns % 2 == 0 else (shape.height, shape.width)
                )
                x = round(self.rng.uniform(cell[0], max(cell[0], cell[2] - w)))
                y = round(self.rng.uniform(cell[1], max(cell[1], cell[3] - h)))
            w, h = (shape.width, shape.height) if turns % 2 == 0 else (shape.height, shape.width)
            rect = (x, y, x + w, y + h)
            if not self._in_drawing(rect) or not self._rect_free(rect, spacing):
                continue
            symbol = PlacedSymbol(
                self._next_symbol_id(),
                name,
                shape,
                x,
                y,
                turns,
                self._uniform_int(self.p.symbol_line_width),
            )
            self._register_symbol(symbol, ports=True)
            return

    def _edge_position(self, shape: Shape) -> tuple[int, int, int]:
        """An off-page connector near one side of the drawing area, its free end facing in."""
        d = self.frame.drawing
        side = int(self.rng.integers(4))
        inset = int(self.rng.integers(4, 30))
        # Horizontal connectors (turns 0/2) sit at the left or right side; vertical at top/bottom.
        if side in (0, 1):
            turns = 0 if side == 0 else 2
            x = d[0] + inset if side == 0 else d[2] - inset - shape.width
            y = int(self.rng.integers(d[1] + 40, max(d[1] + 41, d[3] - shape.height - 40)))
        else:
            turns = 1 if side == 2 else 3
            y = d[1] + inset if side == 2 else d[3] - inset - shape.width
            x = int(self.rng.integers(d[0] + 40, max(d[0] + 41, d[2] - shape.height - 40)))
        return x, y, turns

    # ---- routing -----------------------------------------------------------------------------

    def _stub(self) -> int:
        return self._uniform_int(self.p.stub_px)

    def _route_candidates(
        self, a: IPoint, da: str, b: IPoint, db: str, first_min: int
    ) -> list[list[IPoint]]:
        va, vb = DIRECTIONS[da], DIRECTIONS[db]
        sa, sb = max(self._stub(), first_min), self._stub()
        a1 = (a[0] + va[0] * sa, a[1] + va[1] * sa)
        b1 = (b[0] + vb[0] * sb, b[1] + vb[1] * sb)
        cands = [
            [a, a1, (a1[0], b1[1]), b1, b],
            [a, a1, (b1[0], a1[1]), b1, b],
        ]
        if a[0] == b[0] or a[1] == b[1]:
            cands.insert(0, [a, b])
        lo_x, hi_x = sorted((a1[0], b1[0]))
        lo_y, hi_y = sorted((a1[1], b1[1]))
        for _ in range(4):
            mx = int(self.rng.integers(lo_x - 120, hi_x + 121))
            my = int(self.rng.integers(lo_y - 120, hi_y + 121))
            cands.append([a, a1, (mx, a1[1]), (mx, b1[1]), b1, b])
            cands.append([a, a1, (a1[0], my), (b1[0], my), b1, b])
        self.rng.shuffle(cands)  # type: ignore[arg-type]
        return cands

    def _valid_route(self, raw: list[IPoint], da: str, db: str) -> list[IPoint] | None:
        pts = simplify(raw)
        if pts is None:
            return None
        va, vb = DIRECTIONS[da], DIRECTIONS[db]
        first = (np.sign(pts[1][0] - pts[0][0]), np.sign(pts[1][1] - pts[0][1]))
        last = (np.sign(pts[-2][0] - pts[-1][0]), np.sign(pts[-2][1] - pts[-1][1]))
        if first != va or last != vb:
            return None
        lengths = [
            abs(pts[k + 1][0] - pts[k][0]) + abs(pts[k + 1][1] - pts[k][1])
            for k in range(len(pts) - 1)
        ]
        if min(lengths) < 16:
            return None
        return pts

    def _take_port(self, symbol_index: int, port: tuple[IPoint, str]) -> None:
        self.free_ports[symbol_index].remove(port)
        self.capacity[symbol_index] -= 1

    def _open_ports(self) -> list[tuple[int, tuple[IPoint, str]]]:
        return [
            (i, port)
            for i, ports in enumerate(self.free_ports)
            if self.capacity[i] > 0
            for port in ports
        ]

    def connect_ports(self, attempts: int) -> None:
        """Pipes from port to port of different symbols."""
        for _ in range(attempts):
            ports = self._open_ports()
            if len(ports) < 2:
                return
            ia, pa = ports[int(self.rng.integers(len(ports)))]
            others = [(i, p) for i, p in ports if i != ia]
            if not others:
                return
            dist = np.asarray(
                [abs(p[0][0] - pa[0][0]) + abs(p[0][1] - pa[0][1]) for _, p in others]
            )
            nearest = np.argsort(dist, kind="stable")[:6]
            ib, pb = others[int(nearest[int(self.rng.integers(len(nearest)))])]
            self._try_port_pipe(ia, pa, ib, pb)

    def _try_port_pipe(
        self, ia: int, pa: tuple[IPoint, str], ib: int, pb: tuple[IPoint, str]
    ) -> bool:
        for raw in self._route_candidates(pa[0], pa[1], pb[0], pb[1], 0):
            pts = self._valid_route(raw, pa[1], pb[1])
            if pts is None:
                continue
            found = self._check_polyline(pts, port_ends=(True, True), touch={})
            if found is None:
                continue
            width = self._uniform_int(self.p.pipe_width)
            start = End("symbol", self.symbols[ia].id)
            end = End("symbol", self.symbols[ib].id)
            self._commit_pipe(pts, width, False, start, end, found)
            self._take_port(ia, pa)
            self._take_port(ib, pb)
            return True
        return False

    def _tee_site(self, near: IPoint | None = None) -> tuple[int, IPoint, tuple[int, int]] | None:
        """A point on a solid segment where a branch may start, and the branch direction.

        The site is the point of the nearest solid segment to a uniformly drawn spot of the
        drawing area, so that branches (and the meeting points they make) spread over the sheet
        instead of piling up where segments are already dense.
        """
        sep = self.p.meeting_separation_px
        if not self.segs.solid:
            return None
        d = self.frame.drawing
        if near is None:
            spot = (self.rng.uniform(d[0], d[2]), self.rng.uniform(d[1], d[3]))
        else:
            spot = (near[0] + self.rng.normal(0.0, 200.0), near[1] + self.rng.normal(0.0, 200.0))
        gid = self.segs.nearest_solid(spot)
        orient, c, lo, hi, _, _ = self.segs.by_gid[gid]
        if hi - lo < 2 * sep + 2:
            return None
        along = spot[0] if orient == 0 else spot[1]
        t = int(np.clip(round(along + self.rng.normal(0.0, 40.0)), lo + sep, hi - sep))
        point: IPoint = (t, c) if orient == 0 else (c, t)
        if not self._meeting_far(point):
            return None
        across = spot[1] - c if orient == 0 else spot[0] - c
        sign = 1 if across > 0 else -1
        if self.rng.random() < 0.3:
            sign = -sign
        direction = (0, sign) if orient == 0 else (sign, 0)
        return gid, point, direction

    def add_connector(self, far: bool) -> bool:
        """A straight pipe from a tee on one segment to a tee on a parallel one."""
        site = self._tee_site()
        if site is None:
            return False
        gid, p, (dx, dy) = site
        orient, c, _, _, _, _ = self.segs.by_gid[gid]
        along = p[0] if orient == 0 else p[1]
        sep, clear = self.p.meeting_separation_px, self.p.parallel_clearance_px
        arr = self.segs.array(orient)
        sign = dx + dy
        ahead = (arr[:, 0] - c) * sign
        hit = (ahead >= clear) & (arr[:, 1] + sep <= along) & (arr[:, 2] - sep >= along)
        hit_idx = np.flatnonzero(hit)
        if len(hit_idx) == 0:
            return False
        order = hit_idx[np.argsort(ahead[hit_idx], kind="stable")]
        candidates = [int(arr[k, 3]) for k in order if not self.segs.by_gid[int(arr[k, 3])][5]]
        if not candidates:
            return False
        pick = 0
        if far and len(candidates) > 1:
            pick = int(self.rng.integers(1, min(4, len(candidates))))
        target = candidates[pick]
        tc = self.segs.by_gid[target][1]
        q: IPoint = (p[0], tc) if orient == 0 else (tc, p[1])
        if not self._meeting_far(q, [p]):
            return False
        found = self._check_polyline([p, q], port_ends=(False, False), touch={p: gid, q: target})
        if found is None:
            return False
        pipe = self._commit_pipe(
            [p, q], self._uniform_int(self.p.pipe_width), False, End("free"), End("free"), found
        )
        pipe.start = End("tee", self._add_tee(p, gid, pipe.id))
        pipe.end = End("tee", self._add_tee(q, target, pipe.id))
        return True

    def add_tee_route(self) -> bool:
        """An orthogonal pipe from a tee on one segment to a tee on another, across the sheet."""
        first = self._tee_site()
        if first is None:
            return False
        second = self._tee_site(near=first[1])
        if second is None or first[0] == second[0]:
            return False
        (ga, p, va), (gb, q, vb) = first, second
        reach = abs(p[0] - q[0]) + abs(p[1] - q[1])
        if reach < 2 * self.p.parallel_clearance_px or reach > 900:
            return False
        if not self._meeting_far(q, [p]):
            return False
        da = next(k for k, v in DIRECTIONS.items() if v == va)
        db = next(k for k, v in DIRECTIONS.items() if v == vb)
        clear = self.p.parallel_clearance_px
        for raw in self._route_candidates(p, da, q, db, clear):
            pts = self._valid_route(raw, da, db)
            if pts is None:
                continue
            found = self._check_polyline(pts, port_ends=(False, False), touch={p: ga, q: gb})
            if found is None:
                continue
            pipe = self._commit_pipe(
                pts, self._uniform_int(self.p.pipe_width), False, End("free"), End("free"), found
            )
            pipe.start = End("tee", self._add_tee(p, ga, pipe.id))
            pipe.end = End("tee", self._add_tee(q, gb, pipe.id))
            return True
        return False

    def add_branch_to_port(self) -> bool:
        """A pipe from a tee on an existing segment to a free port of a symbol."""
        site = self._tee_site()
        ports = self._open_ports()
        if site is None or not ports:
            return False
        gid, p, vec = site
        da = next(k for k, v in DIRECTIONS.items() if v == vec)
        dist = np.asarray([abs(pt[0][0] - p[0]) + abs(pt[0][1] - p[1]) for _, pt in ports])
        nearest = np.argsort(dist, kind="stable")[:4]
        ib, pb = ports[int(nearest[int(self.rng.integers(len(nearest)))])]
        for raw in self._route_candidates(p, da, pb[0], pb[1], self.p.parallel_clearance_px):
            pts = self._valid_route(raw, da, pb[1])
            if pts is None:
                continue
            found = self._check_polyline(pts, port_ends=(False, True), touch={p: gid})
            if found is None:
                continue
            pipe = self._commit_pipe(
                pts,
                self._uniform_int(self.p.pipe_width),
                False,
                End("free"),
                End("symbol", self.symbols[ib].id),
                found,
            )
            pipe.start = End("tee", self._add_tee(p, gid, pipe.id))
            self._take_port(ib, pb)
            return True
        return False

    def add_free_end(self) -> bool:
        """A short branch that ends in nothing (a vent or drain left open)."""
        site = self._tee_site()
        if site is None:
            return False
        gid, p, (dx, dy) = site
        length = self._uniform_int(self.p.free_end_px)
        q = (p[0] + dx * length, p[1] + dy * length)
        found = self._check_polyline(
            [p, q], port_ends=(False, False), touch={p: gid}, allow_cross=False
        )
        if found is None or found:
            return False
        if not self._rect_free(
            (min(p[0], q[0]), min(p[1], q[1]), max(p[0], q[0]), max(p[1], q[1])),
            self.p.parallel_clearance_px,
        ):
            return False
        pipe = self._commit_pipe(
            [p, q], self._uniform_int(self.p.pipe_width), False, End("free"), End("free"), []
        )
        pipe.start = End("tee", self._add_tee(p, gid, pipe.id))
        self.free_ends.append((pipe.id, q))
        return True

    def fill_meeting_points(self) -> None:
        """Add branches until every style can get its target count."""
        per_style = max(2, math.ceil(self.p.meeting_points_per_style_per_unit * self.units))
        tee_target = per_style * len([s for s in JUNCTION_STYLES if s.startswith("t_")])
        cross_target = per_style * (len(JUNCTION_STYLES) + len(BRIDGE_STYLES) - 2)
        free_target = round(self.p.free_ends_per_unit * self.units)
        budget = 300 * (tee_target + cross_target) + 2000
        for _ in range(budget):
            need_cross = len(self.crossings) < cross_target
            need_tee = len(self.tees) < tee_target
            if not need_cross and not need_tee and len(self.free_ends) >= free_target:
                return
            roll = self.rng.random()
            if len(self.free_ends) < free_target and roll < 0.15:
                self.add_free_end()
            elif need_cross:
                if roll < 0.55:
                    self.add_connector(far=True)
                else:
                    self.add_tee_route()
            elif roll < 0.6:
                self.add_branch_to_port()
            else:
                self.add_connector(far=False)
        raise LayoutError(
            f"could not reach {tee_target} tees and {cross_target} crossings "
            f"(got {len(self.tees)} and {len(self.crossings)})"
        )

    # ---- styles ------------------------------------------------------------------------------

    def assign_styles(self) -> None:
        """Give every meeting point a style, in equal shares, then its drawing sizes."""
        order = self.rng.permutation(len(self.tees))
        for rank, i in enumerate(order):
            tee = self.tees[int(i)]
            tee.style = ("t_dot", "t_plain")[rank % 2]
            widths = [self.pipes[tee.main_pipe].width, self.pipes[tee.branch_pipe].width]
            tee.dot_radius = self._dot_radius(max(widths))
        cross_styles = ("cross_dot", *BRIDGE_STYLES)
        order = self.rng.permutation(len(self.crossings))
        for rank, i in enumerate(order):
            cr = self.crossings[int(i)]
            cr.style = cross_styles[rank % len(cross_styles)]
            wa, wb = (self.pipes[k].width for k in cr.pipes)
            pick = int(self.rng.integers(2))
            cr.over = cr.pipes[pick]
            w_over, w_under = (wa, wb) if pick == 0 else (wb, wa)
            under_half = math.ceil(w_under / 2)
            over_half = math.ceil(w_over / 2)
            if cr.style == "cross_dot":
                cr.radius = self._dot_radius(max(wa, wb))
            elif cr.style == "hop":
                cr.radius = under_half + over_half + self._uniform_int(self.p.hop_radius_extra_px)
            elif cr.style == "gap":
                cr.radius = under_half + over_half + self._uniform_int(self.p.gap_bridge_px)
            cr.side = 1 if self.rng.random() < 0.5 else -1

    def _dot_radius(self, width: int) -> int:
        # A junction dot is drawn clearly wider than the lines it joins, as on real sheets.
        return width + self._uniform_int(self.p.dot_radius_extra_px)

    # ---- inline symbols and signal lines -------------------------------------------------------

    def _segment_features(self, gid: int) -> list[tuple[int, int]]:
        """Positions along a segment that an inline symbol must keep away from, with radii."""
        orient = self.segs.by_gid[gid][0]
        out: list[tuple[int, int]] = []
        for cr in self.crossings:
            if gid in cr.segments:
                out.append((cr.point[orient], max(cr.radius, 8)))
        for tee in self.tees:
            if tee.main_segment == gid:
                out.append((tee.point[orient], max(tee.dot_radius, 8)))
        for inl in self.inline:
            if inl.symbol.id in self._inline_on_segment.get(gid, ()):
                lo_hi = self._inline_span[inl.symbol.id]
                out.append(((lo_hi[0] + lo_hi[1]) // 2, (lo_hi[1] - lo_hi[0]) // 2 + 4))
        return out

    def place_inline_symbols(self) -> None:
        self._inline_on_segment: dict[int, list[str]] = {}
        self._inline_span: dict[str, tuple[int, int]] = {}
        lo_n, hi_n = self.p.inline_symbols_per_pipe
        for pipe in list(self.pipes):
            if pipe.dashed:
                continue
            for _ in range(int(self.rng.integers(lo_n, hi_n + 1))):
                for _attempt in range(6):
                    if self._try_inline(pipe):
                        break

    def _try_inline(self, pipe: Pipe) -> bool:
        k = int(self.rng.integers(len(pipe.segments)))
        gid = pipe.segments[k]
        orient, c, lo, hi, _, _ = self.segs.by_gid[gid]
        name = self._choose(INLINE_MIX)
        shape = make_shape(name, self.rng)
        length = shape.width
        keep = 12
        if hi - lo < length + 2 * keep + 8:
            return False
        start = int(self.rng.integers(lo + keep + 4, hi - keep - 4 - length + 1))
        end = start + length
        for pos, radius in self._segment_features(gid):
            if start - keep - radius < pos < end + keep + radius:
                return False
        p, q = pipe.points[k], pipe.points[k + 1]
        forward = (int(np.sign(q[0] - p[0])), int(np.sign(q[1] - p[1])))
        flow = forward if self.rng.random() < 0.7 else (-forward[0], -forward[1])
        turns = inline_turns(flow)
        offset = inline_port_offset(shape)
        across = round(offset) if turns in (0, 3) else round(shape.height - offset)
        if orient == 0:
            x, y = start, c - across
        else:
            x, y = c - across, start
        symbol = PlacedSymbol(
            self._next_symbol_id(),
            name,
            shape,
            x,
            y,
            turns,
            self._uniform_int(self.p.symbol_line_width),
        )
        box = symbol.box
        if not self._in_drawing(box) or not self._rect_free(box, 6):
            return False
        if not self._rect_clear_of_segments(box, 6, except_gid=gid):
            return False
        signal = None
        if name == "control_valve" and self.rng.random() < self.p.signal_line_share:
            signal = self._signal_instrument(symbol)
        self._register_symbol(symbol, ports=False)
        along_start = self._arc_position(pipe, k, start if forward[orient] > 0 else end)
        self.inline.append(InlineSymbol(symbol, pipe.id, along_start, along_start + length))
        self._inline_on_segment.setdefault(gid, []).append(symbol.id)
        self._inline_span[symbol.id] = (start, end)
        if signal is not None:
            self._commit_signal(symbol, *signal)
        return True

    @staticmethod
    def _arc_position(pipe: Pipe, k: int, along: int) -> float:
        total = 0.0
        for i in range(k):
            a, b = pipe.points[i], pipe.points[i + 1]
            total += abs(b[0] - a[0]) + abs(b[1] - a[1])
        p = pipe.points[k]
        return total + abs(along - (p[0] if pipe.points[k + 1][1] == p[1] else p[1]))

    def _signal_instrument(self, valve: PlacedSymbol) -> tuple[PlacedSymbol, list[IPoint]] | None:
        """An instrument bubble beyond the actuator, joined to it by a straight signal line."""
        port = next(((pt, d) for pt, d, signal in valve.port_points() if signal), None)
        if port is None:
            return None
        (px, py), direction = port
        a: IPoint = (round(px), round(py))
        vec = DIRECTIONS[direction]
        shape = make_shape("instrument", self.rng)
        dist = int(self.rng.integers(30, 71))
        d = shape.width
        b: IPoint = (a[0] + vec[0] * dist, a[1] + vec[1] * dist)
        # The bubble's port facing back to the valve lies at b.
        x = b[0] - d // 2 if vec[0] == 0 else (b[0] if vec[0] > 0 else b[0] - d)
        y = b[1] - d // 2 if vec[1] == 0 else (b[1] if vec[1] > 0 else b[1] - d)
        bubble = PlacedSymbol(
            f"s{len(self.symbols) + 1}",
            "instrument",
            shape,
            x,
            y,
            0,
            self._uniform_int(self.p.symbol_line_width),
        )
        if not self._in_drawing(bubble.box) or not self._rect_free(bubble.box, 10):
            return None
        if not self._rect_clear_of_segments(bubble.box, 12):
            return None
        line = [a, b]
        line_rect = (min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))
        vx1, vy1, vx2, vy2 = valve.box
        bx1, by1, bx2, by2 = bubble.box
        overlaps_valve = bx1 < vx2 + 6 and bx2 > vx1 - 6 and by1 < vy2 + 6 and by2 > vy1 - 6
        if overlaps_valve or not self._rect_free(line_rect, 6):
            return None
        if not self._rect_clear_of_segments(line_rect, 12):
            return None
        return bubble, line

    def _commit_signal(self, valve: PlacedSymbol, bubble: PlacedSymbol, line: list[IPoint]) -> None:
        assert bubble.id == self._next_symbol_id()
        self._register_symbol(bubble, ports=False)
        self._commit_pipe(
            line,
            self._uniform_int(self.p.signal_width),
            True,
            End("symbol", valve.id),
            End("symbol", bubble.id),
            [],
        )

    def build(self) -> Layout:
        self.place_terminals()
        self.connect_ports(attempts=max(8, round(2.5 * len(self.symbols))))
        self.fill_meeting_points()
        self.assign_styles()
        self.place_inline_symbols()
        return Layout(
            self.width,
            self.height,
            self.frame,
            self.symbols,
            self.pipes,
            self.tees,
            self.crossings,
            self.inline,
            self.free_ends,
        )


def build_layout(
    width: int, height: int, rng: np.random.Generator, params: GeneratorParams
) -> Layout:
    return LayoutBuilder(width, height, rng, params).build()
