"""Drawing a layout and deriving its exact ground truth (graph, meeting points, masks, text).

The drawing and the ground truth come from the same geometry: every pipe run is cut at its
nodes (symbols, junctions, free ends) into graph edges, and the strokes that are drawn are the
same polylines with inline symbols and gap bridges left out and hop-over arcs put in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import networkx as nx
import numpy as np

from pid.synth.layout import Crossing, End, Layout, Pipe
from pid.synth.params import JUNCTION_STYLES, GeneratorParams
from pid.synth.symbols import draw_symbol, scale_for_height, text_box, text_size
from pid.vision.nodes import node_mask_from_boxes

FPoint = tuple[float, float]

_SHIFT = 3
_ONE = 1 << _SHIFT
INK = 0
PAPER = 255

SERVICES = ("P", "CW", "ST", "N", "IA", "FW", "PW", "HC", "FG", "LO")
SPECS = ("A1A", "B2A", "C1B", "A3C", "D1A")
TAG_PREFIX = {
    "gate_valve": "HV",
    "globe_valve": "HV",
    "ball_valve": "HV",
    "butterfly_valve": "HV",
    "check_valve": "NRV",
    "control_valve": "FV",
    "relief_valve": "PSV",
    "centrifugal_pump": "P",
    "vessel": "V",
    "tank": "TK",
    "heat_exchanger": "E",
    "off_page_connector": "TO PID",
}


@dataclass(slots=True)
class Rendered:
    image: np.ndarray
    pipe_mask: np.ndarray
    node_mask: np.ndarray
    graph: nx.MultiGraph
    junctions: list[dict[str, Any]]
    text_items: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Cuts:
    """What lies along one pipe, as arc positions from its first vertex."""

    nodes: list[tuple[float, str]] = field(default_factory=list)
    inline: list[tuple[float, float, str]] = field(default_factory=list)
    hops: list[tuple[float, Crossing]] = field(default_factory=list)
    gaps: list[tuple[float, int]] = field(default_factory=list)


def _cumulative(points: list[tuple[int, int]]) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    steps = np.abs(np.diff(pts, axis=0)).sum(axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def _point_at(points: list[tuple[int, int]], cum: np.ndarray, s: float) -> FPoint:
    k = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(points) - 2))
    p, q = points[k], points[k + 1]
    t = (s - cum[k]) / max(cum[k + 1] - cum[k], 1e-9)
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)


def _direction_at(points: list[tuple[int, int]], cum: np.ndarray, s: float) -> FPoint:
    k = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(points) - 2))
    p, q = points[k], points[k + 1]
    return (float(np.sign(q[0] - p[0])), float(np.sign(q[1] - p[1])))


def _subpath(points: list[tuple[int, int]], cum: np.ndarray, s0: float, s1: float) -> list[FPoint]:
    out = [_point_at(points, cum, s0)]
    out += [
        (float(points[k][0]), float(points[k][1])) for k in range(len(points)) if s0 < cum[k] < s1
    ]
    out.append(_point_at(points, cum, s1))
    return out


def _hop_arc(center: FPoint, direction: FPoint, radius: float, side: int) -> list[FPoint]:
    dx, dy = direction
    nx_, ny_ = -dy * side, dx * side
    angles = np.linspace(0.0, math.pi, 13)
    return [
        (
            center[0] - dx * radius * math.cos(a) + nx_ * radius * math.sin(a),
            center[1] - dy * radius * math.cos(a) + ny_ * radius * math.sin(a),
        )
        for a in angles
    ]


def _path(
    pipe: Pipe, cum: np.ndarray, s0: float, s1: float, hops: list[tuple[float, Crossing]]
) -> list[FPoint]:
    """The polyline of a pipe between two arc positions, with hop-over arcs in place."""
    out: list[FPoint] = []
    cursor = s0
    for s, cr in hops:
        r = float(cr.radius)
        if not (s0 < s - r and s + r < s1):
            continue
        out += _subpath(pipe.points, cum, cursor, s - r)
        direction = _direction_at(pipe.points, cum, s)
        out += _hop_arc((float(cr.point[0]), float(cr.point[1])), direction, r, cr.side)[1:-1]
        cursor = s + r
    out += _subpath(pipe.points, cum, cursor, s1)
    dedup = [out[0]]
    for p in out[1:]:
        if abs(p[0] - dedup[-1][0]) > 1e-6 or abs(p[1] - dedup[-1][1]) > 1e-6:
            dedup.append(p)
    return dedup


def _polyline_length(points: list[FPoint]) -> float:
    arr = np.asarray(points)
    return float(np.linalg.norm(np.diff(arr, axis=0), axis=1).sum()) if len(arr) > 1 else 0.0


def _fixed(points: list[FPoint]) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32)


class _Renderer:
    def __init__(self, layout: Layout, rng: np.random.Generator, params: GeneratorParams) -> None:
        self.layout = layout
        self.rng = rng
        self.p = params
        h, w = layout.height, layout.width
        self.image = np.full((h, w), PAPER, dtype=np.uint8)
        self.mask = np.zeros((h, w), dtype=np.uint8)
        self.graph = nx.MultiGraph(width=w, height=h)
        self.junctions: list[dict[str, Any]] = []
        self.texts: list[dict[str, Any]] = []
        self.seg_owner: dict[int, tuple[int, int]] = {}
        for pipe in layout.pipes:
            for k, gid in enumerate(pipe.segments):
                self.seg_owner[gid] = (pipe.id, k)
        self.cums = [_cumulative(p.points) for p in layout.pipes]

    # ---- topology ------------------------------------------------------------------------------

    def _arc_of(self, gid: int, point: tuple[int, int]) -> tuple[int, float]:
        pipe_id, k = self.seg_owner[gid]
        pipe = self.layout.pipes[pipe_id]
        start = pipe.points[k]
        return pipe_id, float(
            self.cums[pipe_id][k] + abs(point[0] - start[0]) + abs(point[1] - start[1])
        )

    def _nodes(self) -> dict[int, _Cuts]:
        cuts: dict[int, _Cuts] = {p.id: _Cuts() for p in self.layout.pipes}
        for sym in self.layout.symbols:
            x1, y1, x2, y2 = sym.box
            self.graph.add_node(
                sym.id, kind="symbol", **{"class": sym.class_name}, bbox=[x1, y1, x2, y2]
            )
        self.tee_nodes: dict[str, str] = {}
        for i, tee in enumerate(self.layout.tees):
            node = f"j{len(self.junctions)}"
            self.graph.add_node(node, kind="junction", point=[tee.point[0], tee.point[1]])
            self.tee_nodes[str(i)] = node
            pipe_id, s = self._arc_of(tee.main_segment, tee.point)
            cuts[pipe_id].nodes.append((s, node))
            self.junctions.append(self._meeting(tee.point, "junction", 3, tee.style))
        for cr in self.layout.crossings:
            joined = cr.style in JUNCTION_STYLES
            kind = "junction" if joined else "bridge"
            if joined:
                node = f"j{len(self.junctions)}"
                self.graph.add_node(node, kind="junction", point=[cr.point[0], cr.point[1]])
            for gid in cr.segments:
                pipe_id, s = self._arc_of(gid, cr.point)
                if joined:
                    cuts[pipe_id].nodes.append((s, node))
                elif pipe_id == cr.over and cr.style == "hop":
                    cuts[pipe_id].hops.append((s, cr))
                elif pipe_id == cr.over and cr.style == "gap":
                    cuts[pipe_id].gaps.append((s, cr.radius))
            self.junctions.append(self._meeting(cr.point, kind, 4, cr.style))
        for inl in self.layout.inline:
            cuts[inl.pipe].inline.append((inl.entry, inl.exit, inl.symbol.id))
        for i, (pipe_id, point) in enumerate(self.layout.free_ends):
            node = f"e{i}"
            self.graph.add_node(node, kind="endpoint", point=[point[0], point[1]])
            self.free_end_nodes[pipe_id] = node
        for c in cuts.values():
            c.hops.sort(key=lambda item: item[0])
        return cuts

    @staticmethod
    def _meeting(point: tuple[int, int], kind: str, degree: int, style: str) -> dict[str, Any]:
        return {
            "point": [point[0], point[1]],
            "kind": kind,
            "degree": degree,
            "confidence": 1.0,
            "style": style,
        }

    def _end_node(self, pipe: Pipe, end: End) -> str:
        if end.kind == "symbol":
            return end.ref
        if end.kind == "tee":
            return self.tee_nodes[end.ref]
        return self.free_end_nodes[pipe.id]

    def _edges(self, cuts: dict[int, _Cuts]) -> None:
        for pipe in self.layout.pipes:
            c, cum = cuts[pipe.id], self.cums[pipe.id]
            stops: list[tuple[float, float, str]] = [(s, s, n) for s, n in c.nodes]
            stops += list(c.inline)
            stops.sort(key=lambda item: item[0])
            current, s_cur = self._end_node(pipe, pipe.start), 0.0
            for entry, exit_, node in stops:
                self._add_edge(pipe, cum, c, current, node, s_cur, entry)
                current, s_cur = node, exit_
            self._add_edge(
                pipe, cum, c, current, self._end_node(pipe, pipe.end), s_cur, float(cum[-1])
            )

    def _add_edge(
        self, pipe: Pipe, cum: np.ndarray, c: _Cuts, u: str, v: str, s0: float, s1: float
    ) -> None:
        poly = _path(pipe, cum, s0, s1, c.hops)
        self.graph.add_edge(
            u,
            v,
            polyline=[[round(x, 2), round(y, 2)] for x, y in poly],
            length=round(_polyline_length(poly), 2),
            line_type="dashed" if pipe.dashed else "solid",
            width=pipe.width,
        )

    # ---- drawing -------------------------------------------------------------------------------

    def _draw_pipes(self, cuts: dict[int, _Cuts]) -> None:
        for pipe in self.layout.pipes:
            c, cum = cuts[pipe.id], self.cums[pipe.id]
            holes = [(a, b) for a, b, _ in c.inline] + [(s - r, s + r) for s, r in c.gaps]
            holes.sort()
            cursor = 0.0
            pieces: list[tuple[float, float]] = []
            for a, b in holes:
                if a > cursor:
                    pieces.append((cursor, a))
                cursor = max(cursor, b)
            if cursor < cum[-1]:
                pieces.append((cursor, float(cum[-1])))
            for s0, s1 in pieces:
                if pipe.dashed:
                    self._draw_dashes(pipe, cum, s0, s1)
                else:
                    self._stroke(_path(pipe, cum, s0, s1, c.hops), pipe.width)

    def _draw_dashes(self, pipe: Pipe, cum: np.ndarray, s0: float, s1: float) -> None:
        dash = self.rng.integers(self.p.dash_px[0], self.p.dash_px[1] + 1)
        space = self.rng.integers(self.p.dash_space_px[0], self.p.dash_space_px[1] + 1)
        s = s0
        while s < s1:
            e = min(s + float(dash), s1)
            self._stroke(_subpath(pipe.points, cum, s, e), pipe.width)
            s = e + float(space)

    def _stroke(self, points: list[FPoint], width: int) -> None:
        pts = _fixed(points)
        for target in (self.image, self.mask):
            value = INK if target is self.image else 255
            cv2.polylines(target, [pts], False, value, width, cv2.LINE_8, _SHIFT)

    def _draw_dots(self) -> None:
        for tee in self.layout.tees:
            if tee.style == "t_dot":
                self._dot(tee.point, tee.dot_radius)
        for cr in self.layout.crossings:
            if cr.style == "cross_dot":
                self._dot(cr.point, cr.radius)

    def _dot(self, point: tuple[int, int], radius: int) -> None:
        for target, value in ((self.image, INK), (self.mask, 255)):
            cv2.circle(target, point, radius, value, -1, cv2.LINE_8)

    def _draw_symbols(self) -> None:
        for sym in self.layout.symbols:
            for text, box in draw_symbol(self.image, sym, INK):
                self.texts.append({"kind": "tag", "text": text, "bbox": box})

    # ---- frame and text ------------------------------------------------------------------------

    def _draw_frame(self) -> None:
        f = self.layout.frame
        img = self.image
        cv2.rectangle(img, f.outer[:2], f.outer[2:], INK, 2)
        cv2.rectangle(img, f.inner[:2], f.inner[2:], INK, 1)
        band = f.inner[0] - f.outer[0]
        scale = scale_for_height(band * 0.45)
        n_cols = max(2, round((f.inner[2] - f.inner[0]) / 500))
        n_rows = max(2, round((f.inner[3] - f.inner[1]) / 500))
        for i in range(n_cols):
            x = f.inner[0] + (f.inner[2] - f.inner[0]) * (i + 0.5) / n_cols
            for y in ((f.outer[1] + f.inner[1]) / 2, (f.inner[3] + f.outer[3]) / 2):
                self._centered_text(str(i + 1), x, y, scale)
            if i:
                xe = round(f.inner[0] + (f.inner[2] - f.inner[0]) * i / n_cols)
                cv2.line(img, (xe, f.outer[1]), (xe, f.inner[1]), INK, 1)
                cv2.line(img, (xe, f.inner[3]), (xe, f.outer[3]), INK, 1)
        for i in range(n_rows):
            y = f.inner[1] + (f.inner[3] - f.inner[1]) * (i + 0.5) / n_rows
            for x in ((f.outer[0] + f.inner[0]) / 2, (f.inner[2] + f.outer[2]) / 2):
                self._centered_text(chr(ord("A") + i % 26), x, y, scale)
            if i:
                ye = round(f.inner[1] + (f.inner[3] - f.inner[1]) * i / n_rows)
                cv2.line(img, (f.outer[0], ye), (f.inner[0], ye), INK, 1)
                cv2.line(img, (f.inner[2], ye), (f.outer[2], ye), INK, 1)
        ox1, oy1, ox2, oy2 = f.outer
        ix1, iy1, ix2, iy2 = f.inner
        self.texts.append(
            {
                "kind": "border",
                "text": "",
                "bbox": [ox1, oy1, ox2 - ox1 + 1, oy2 - oy1 + 1],
                "inner": [ix1, iy1, ix2 - ix1 + 1, iy2 - iy1 + 1],
            }
        )
        self._draw_title_block()

    def _centered_text(self, text: str, cx: float, cy: float, scale: float) -> list[int]:
        w, h, _ = text_size(text, scale)
        x, y = round(cx - w / 2), round(cy + h / 2)
        cv2.putText(self.image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, INK, 1, cv2.LINE_AA)
        return text_box(text, scale, x, y)

    def _draw_title_block(self) -> None:
        x1, y1, x2, y2 = self.layout.frame.title_block
        img = self.image
        cv2.rectangle(img, (x1, y1), (x2, y2), INK, 2)
        rows = 4
        row_h = (y2 - y1) / rows
        for r in range(1, rows):
            y = round(y1 + r * row_h)
            cv2.line(img, (x1, y), (x2, y), INK, 1)
        xm = round(x1 + (x2 - x1) * 0.62)
        cv2.line(img, (xm, round(y1 + row_h)), (xm, y2), INK, 1)
        unit = int(self.rng.integers(100, 1000))
        cells = [
            ((x1, y1, x2, y1 + row_h), f"PROCESS AND INSTRUMENTATION DIAGRAM - UNIT {unit}"),
            (
                (x1, y1 + row_h, xm, y1 + 2 * row_h),
                f"PLANT {chr(65 + int(self.rng.integers(26)))}{unit}",
            ),
            (
                (xm, y1 + row_h, x2, y1 + 2 * row_h),
                f"SCALE NTS  REV {int(self.rng.integers(0, 9))}",
            ),
            (
                (x1, y1 + 2 * row_h, xm, y1 + 3 * row_h),
                f"DWG PID-{unit}-{int(self.rng.integers(1, 99)):03d}",
            ),
            (
                (xm, y1 + 2 * row_h, x2, y1 + 3 * row_h),
                f"SHEET {int(self.rng.integers(1, 9))} OF 9",
            ),
            ((x1, y1 + 3 * row_h, xm, y2), "DRAWN  CHECKED  APPROVED"),
            (
                (xm, y1 + 3 * row_h, x2, y2),
                f"DATE 20{int(self.rng.integers(10, 30))}-0{int(self.rng.integers(1, 10))}",
            ),
        ]
        for (cx1, cy1, cx2, cy2), text in cells:
            scale = scale_for_height(row_h * 0.42)
            w, _, _ = text_size(text, scale)
            if w > (cx2 - cx1) * 0.92:
                scale *= (cx2 - cx1) * 0.92 / w
            box = self._centered_text(text, (cx1 + cx2) / 2, (cy1 + cy2) / 2, scale)
            self.texts.append({"kind": "title", "text": text, "bbox": box})
        self.texts.append(
            {"kind": "title_block", "text": "", "bbox": [x1, y1, x2 - x1 + 1, y2 - y1 + 1]}
        )

    def _free(self, box: list[int], margin: int) -> bool:
        x, y, w, h = box
        d = self.layout.frame.drawing
        if x < d[0] or y < d[1] or x + w > d[2] or y + h > d[3]:
            return False
        tb = self.layout.frame.title_block
        if (
            x < tb[2] + margin
            and x + w > tb[0] - margin
            and y < tb[3] + margin
            and y + h > tb[1] - margin
        ):
            return False
        region = self.image[y - margin : y + h + margin, x - margin : x + w + margin]
        return bool((region >= PAPER).all())

    def _place_text(
        self,
        text: str,
        candidates: list[tuple[float, float]],
        scale: float,
        vertical: bool,
        kind: str,
    ) -> bool:
        """Draw `text` at the first candidate centre where it touches nothing."""
        w, h, base = text_size(text, scale)
        bw, bh = (h + base + 2, w + 3) if vertical else (w + 3, h + base + 2)
        for cx, cy in candidates:
            box = [round(cx - bw / 2), round(cy - bh / 2), bw, bh]
            if not self._free(box, 4):
                continue
            patch = np.full((h + base + 2, w + 3), PAPER, dtype=np.uint8)
            cv2.putText(
                patch, text, (1, h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, INK, 1, cv2.LINE_AA
            )
            if vertical:
                patch = np.ascontiguousarray(np.rot90(patch))
            x, y = box[0], box[1]
            view = self.image[y : y + patch.shape[0], x : x + patch.shape[1]]
            np.minimum(view, patch, out=view)
            self.texts.append({"kind": kind, "text": text, "bbox": box})
            return True
        return False

    def _draw_tags(self) -> None:
        counters: dict[str, int] = {}
        unit = int(self.rng.integers(1, 9)) * 100
        for sym in self.layout.symbols:
            prefix = TAG_PREFIX.get(sym.class_name)
            if prefix is None:
                continue
            counters[prefix] = counters.get(prefix, unit) + 1
            text = f"{prefix}-{counters[prefix]}"
            if sym.class_name == "centrifugal_pump":
                text += "AB"[int(self.rng.integers(2))]
            scale = scale_for_height(float(self.rng.uniform(8.0, 11.0)))
            _, th, _ = text_size(text, scale)
            x1, y1, x2, y2 = sym.box
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            tw = text_size(text, scale)[0]
            cands = [
                (cx, y1 - th - 8),
                (cx, y2 + th + 8),
                (x2 + tw / 2 + 10, cy),
                (x1 - tw / 2 - 10, cy),
            ]
            self._place_text(text, cands, scale, False, "tag")

    def _draw_line_numbers(self) -> None:
        min_run = self.p.line_number_min_run_px
        for pipe in self.layout.pipes:
            if pipe.dashed or self.rng.random() > self.p.line_number_share:
                continue
            runs = [
                k
                for k in range(len(pipe.points) - 1)
                if abs(pipe.points[k + 1][0] - pipe.points[k][0])
                + abs(pipe.points[k + 1][1] - pipe.points[k][1])
                >= min_run
            ]
            if not runs:
                continue
            k = runs[int(self.rng.integers(len(runs)))]
            (ax, ay), (bx, by) = pipe.points[k], pipe.points[k + 1]
            size = int(self.rng.choice([2, 3, 4, 6, 8, 10, 12]))
            text = (
                f'{size}"-{SERVICES[int(self.rng.integers(len(SERVICES)))]}-'
                f"{int(self.rng.integers(1000, 9999))}-{SPECS[int(self.rng.integers(len(SPECS)))]}"
            )
            scale = scale_for_height(float(self.rng.uniform(8.0, 10.0)))
            _w, h, base = text_size(text, scale)
            vertical = ax == bx
            offset = math.ceil(pipe.width / 2) + 6 + (h + base) / 2
            cands = []
            for t in self.rng.uniform(0.2, 0.8, size=4):
                mx, my = ax + (bx - ax) * t, ay + (by - ay) * t
                for side in (-1, 1):
                    cands.append((mx + side * offset, my) if vertical else (mx, my + side * offset))
            self._place_text(text, cands, scale, vertical, "line_number")

    def render(self) -> Rendered:
        self.free_end_nodes: dict[int, str] = {}
        cuts = self._nodes()
        self._edges(cuts)
        self._draw_frame()
        self._draw_symbols()
        self._draw_pipes(cuts)
        self._draw_dots()
        boxes = [s.box for s in self.layout.symbols]
        # Pipe strokes end on box edges with round caps; the part inside a box is symbol, not pipe.
        node_mask = node_mask_from_boxes(
            np.asarray(boxes, dtype=np.float64).reshape(-1, 4), self.mask.shape
        )
        self.mask[node_mask] = 0
        self._draw_tags()
        self._draw_line_numbers()
        return Rendered(
            self.image,
            self.mask,
            (node_mask * 255).astype(np.uint8),
            self.graph,
            self.junctions,
            self.texts,
        )


def render_layout(layout: Layout, rng: np.random.Generator, params: GeneratorParams) -> Rendered:
    return _Renderer(layout, rng, params).render()
