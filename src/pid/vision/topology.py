"""From a pipe skeleton to meeting points (classify) and to a graph (build_graph).

Strategy. `skeleton_graph` turns the skeleton into branches (pixel paths between node pixels).
Everything after that works on branches, of which a sheet has a few thousand, not on pixels:

1. Node pixels of degree >= 3 that lie close together (or are joined by a very short branch)
   are one physical meeting point: a cluster. Its arms are the branches leaving it.
2. Branch ends of degree 1 are either on a symbol box (the pipe attaches to the symbol) or
   free. Free ends that face each other across a line that passes between them are a gap
   bridge; ends that face each other across a short empty space are a dash space or a break.
3. The rules (`classify_meeting_points`): three arms is a junction; four arms in two straight
   pairs is a crossing, a bridge unless the mask is thicker at the centre than a plain
   crossing can be (a dot); a hop-over arc seen at its apex is a bridge; anything else is
   ambiguous. The result is junctions.json and two masks, junction_mask.png and
   bridge_mask.png, with a disc at every decided point.
4. The graph (`build_graph`) takes the decisions from the two masks, so any classifier that
   writes them (these rules or a learned model) drives it: at a bridge the arms pass straight
   through in their most opposite pairs, a gap joins its two ends, a junction or an undecided
   point is a node. Runs are traced from node to node (symbols, junctions, free ends); each run
   is one edge, dashed when much of its skeleton lies off the ink (bridged dash spaces).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

import cv2
import networkx as nx
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from pid.vision.skeleton import (
    SkeletonGraph,
    branch_ends,
    end_directions,
    facing_pairs,
    line_between,
    skeleton_graph,
)

Box = tuple[str, str, tuple[float, float, float, float]]  # (id, class, [x1, y1, x2, y2])
Pair = tuple[int, int]  # (branch, 0 start | 1 end)


@dataclass(frozen=True, slots=True)
class TopologyOptions:
    """Distances in pixels used by the classical method."""

    cluster_radius: float = 7.0
    arm_length: float = 14.0
    straight_cos: float = 0.94
    #: Both pairs of a dotless four-arm point at least this straight make a bridge.
    loose_straight_cos: float = 0.7
    attach_distance: float = 10.0
    max_gap: float = 36.0
    max_dash_gap: float = 9.0
    collinear_offset: float = 3.0
    min_spur: float = 12.0
    min_lone_branch: float = 20.0
    #: A dot makes the centre thicker than the arms by at least this factor and this many
    #: pixels (a plain crossing: at most sqrt(2) times, a little more once a scan has blurred
    #: its corners; the factor rules thick lines, the margin thin ones).
    dot_ratio: float = 1.6
    dot_excess: float = 1.9
    #: A run is dashed when less than this share of its skeleton lies on ink.
    dashed_coverage: float = 0.85


@dataclass(slots=True)
class _Terminal:
    """One end of a branch: a cluster, a symbol or a free end."""

    kind: str  # "cluster" | "symbol" | "free"
    ref: int | str
    point: tuple[float, float]


@dataclass(slots=True)
class _Decisions:
    """What happens at every cluster and between free ends."""

    kinds: dict[int, tuple[str, float]] = field(default_factory=dict)
    passes: dict[Pair, Pair] = field(default_factory=dict)
    points: dict[int, tuple[float, float]] = field(default_factory=dict)
    gaps: dict[Pair, Pair] = field(default_factory=dict)
    gap_points: list[tuple[float, float]] = field(default_factory=list)


def _cluster_junction_nodes(graph: SkeletonGraph, radius: float) -> dict[int, int]:
    """Map every node pixel of degree >= 3 to a cluster id."""
    junction_nodes = np.flatnonzero(graph.degrees >= 3)
    if len(junction_nodes) == 0:
        return {}
    index = {int(n): i for i, n in enumerate(junction_nodes)}
    pairs = cKDTree(graph.coords[junction_nodes]).query_pairs(radius, output_type="ndarray")
    links = [pairs] if len(pairs) else []
    short = [
        (index[int(p[0])], index[int(p[-1])])
        for p, length in zip(graph.paths, graph.lengths, strict=True)
        if length < radius * 1.5 and int(p[0]) in index and int(p[-1]) in index
    ]
    if short:
        links.append(np.asarray(short, dtype=np.int64))
    n = len(junction_nodes)
    if links:
        edges = np.concatenate(links)
        adjacency = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
        _, labels = connected_components(adjacency, directed=False)
    else:
        labels = np.arange(n)
    return {int(node): int(labels[i]) for i, node in enumerate(junction_nodes)}


def _nearest_boxes(points: NDArray[np.float64], boxes: list[Box], grow: float) -> list[int]:
    """Index of the nearest box within `grow` px of each point, or -1."""
    if not boxes or len(points) == 0:
        return [-1] * len(points)
    xyxy = np.asarray([b[2] for b in boxes], dtype=np.float64)
    # The nearest box edge is almost always on one of the few boxes with the nearest centres.
    k = min(16, len(boxes))
    _, near = cKDTree((xyxy[:, :2] + xyxy[:, 2:]) / 2).query(points, k=k)
    near = np.asarray(near).reshape(len(points), k)
    cand = xyxy[near]
    x, y = points[:, 0:1], points[:, 1:2]
    dx = np.maximum(np.maximum(cand[..., 0] - x, 0.0), x - cand[..., 2])
    dy = np.maximum(np.maximum(cand[..., 1] - y, 0.0), y - cand[..., 3])
    d = np.hypot(dx, dy)
    best = d.argmin(axis=1)
    rows = np.arange(len(points))
    found = np.where(d[rows, best] <= grow, near[rows, best], -1)
    return [int(i) for i in found]


class _Analysis:
    """Branches, their terminals and the arms of every cluster of one skeleton."""

    def __init__(
        self,
        skeleton: NDArray[np.bool_],
        pipe_mask: NDArray[np.bool_],
        boxes: list[Box],
        options: TopologyOptions,
    ) -> None:
        self.opt = options
        self.boxes = boxes
        self.skeleton = skeleton
        self.pipe_mask = pipe_mask
        self.graph = skeleton_graph(skeleton)
        self.paths_xy = [self.graph.path_xy(b) for b in range(len(self.graph.paths))]
        # Every branch end's direction, both ends of all branches in one pass: (branch, side).
        branches, sides, _ = branch_ends(self.graph)
        self.directions = end_directions(self.graph, branches, sides, options.arm_length).reshape(
            -1, 2, 2
        )
        self._free_pairs: tuple[list[tuple[float, Pair, Pair, bool]], NDArray[np.float64]] | None
        self._free_pairs = None
        self.cluster_of = _cluster_junction_nodes(self.graph, options.cluster_radius)
        self.ends = self._terminals()
        self.branches = self._runs_branches()
        self.arms = self._arms()
        self.centers = {cid: self._center(arms) for cid, arms in self.arms.items()}

    # ---- terminals and branches --------------------------------------------------------

    def _terminals(self) -> list[tuple[_Terminal, _Terminal]]:
        paths = self.graph.paths
        firsts = np.asarray([int(p[0]) for p in paths] + [int(p[-1]) for p in paths], np.int64)
        points = self.graph.coords[firsts][:, ::-1] if len(firsts) else np.zeros((0, 2))
        boxes = _nearest_boxes(points, self.boxes, self.opt.attach_distance)
        terms = []
        for k, (node, point) in enumerate(zip(firsts.tolist(), points, strict=True)):
            pt = (float(point[0]), float(point[1]))
            if node in self.cluster_of:
                terms.append(_Terminal("cluster", self.cluster_of[node], pt))
            elif boxes[k] >= 0:
                terms.append(_Terminal("symbol", self.boxes[boxes[k]][0], pt))
            else:
                terms.append(_Terminal("free", node, pt))
        n = len(paths)
        return [(terms[b], terms[n + b]) for b in range(n)]

    def _runs_branches(self) -> list[int]:
        """Branches that make up pipe runs: not the inside of a cluster, not a tiny spur."""
        keep = []
        for b, (a, z) in enumerate(self.ends):
            length = float(self.graph.lengths[b])
            if a.kind == "cluster" and z.kind == "cluster" and a.ref == z.ref:
                continue
            spur = (a.kind == "free") != (z.kind == "free") and "cluster" in (a.kind, z.kind)
            if spur and length < self.opt.min_spur:
                continue
            if a.kind == "free" and z.kind == "free" and length < 2.0:
                continue
            keep.append(b)
        return keep

    def _arms(self) -> dict[int, list[Pair]]:
        """For every cluster, its arms as (branch, which end: 0 start, 1 end)."""
        arms: dict[int, list[Pair]] = {}
        for b in self.branches:
            for side, term in enumerate(self.ends[b]):
                if term.kind == "cluster":
                    arms.setdefault(int(term.ref), []).append((b, side))
        return arms

    def _center(self, arms: list[Pair]) -> tuple[float, float]:
        pts = np.asarray([self.ends[b][side].point for b, side in arms])
        c = pts.mean(axis=0)
        return (float(c[0]), float(c[1]))

    def oriented(self, b: int, side: int) -> NDArray[np.float64]:
        """Points of branch b starting at its end `side`."""
        xy = self.paths_xy[b]
        return xy if side == 0 else xy[::-1]

    def arm_directions(self, arms: list[Pair]) -> NDArray[np.float64]:
        branches, sides = zip(*arms, strict=True) if arms else ((), ())
        found: NDArray[np.float64] = self.directions[list(branches), list(sides)]
        return found.reshape(-1, 2)

    # ---- free ends -----------------------------------------------------------------------

    def free_pairs(self) -> tuple[list[tuple[float, Pair, Pair, bool]], NDArray[np.float64]]:
        """Facing free ends as (distance, end a, end b, a line passes between them)."""
        if self._free_pairs is None:
            self._free_pairs = self._find_free_pairs()
        return self._free_pairs

    def _find_free_pairs(
        self,
    ) -> tuple[list[tuple[float, Pair, Pair, bool]], NDArray[np.float64]]:
        free = [(b, s) for b in self.branches for s in (0, 1) if self.ends[b][s].kind == "free"]
        if len(free) < 2:
            return [], np.zeros((0, 2))
        pts = np.asarray([self.ends[b][s].point for b, s in free])
        outward = -self.arm_directions(free)
        pairs = []
        for d, i, j in facing_pairs(pts, outward, self.opt.max_gap, self.opt.collinear_offset):
            if free[i][0] == free[j][0]:
                continue
            crossed = line_between(pts[i], pts[j], self.skeleton)
            pairs.append((d, free[i], free[j], crossed))
        return pairs, pts

    def point_of(self, end: Pair) -> NDArray[np.float64]:
        return np.asarray(self.ends[end[0]][end[1]].point)


#: The branch analysis of one skeleton, which classify and build_graph both start from.
SkeletonAnalysis = _Analysis


def analyse_skeleton(
    skeleton: NDArray[np.bool_],
    pipe_mask: NDArray[np.bool_],
    boxes: list[Box],
    *,
    options: TopologyOptions | None = None,
) -> SkeletonAnalysis:
    """The branch analysis of a skeleton: branches, their ends, meeting points and arms.

    `classify_meeting_points` and `build_graph` make it themselves when not given one; a caller
    running both on the same skeleton can make it once and hand it to both.
    """
    return _Analysis(skeleton, pipe_mask, boxes, options or TopologyOptions())


class AnalysisMemo:
    """The last analysis made, handed out again for the same skeleton, boxes and options.

    classify and build_graph analyse the same skeleton one after the other when they run in
    one process (`pid run`); the analysis depends only on the skeleton, the boxes and the
    options, so the second takes the first one's. The pipe mask is re-attached on every call.
    Owned by its caller (nothing here keeps one), thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[bytes, SkeletonAnalysis] | None = None

    def get(
        self,
        skeleton: NDArray[np.bool_],
        pipe_mask: NDArray[np.bool_],
        boxes: list[Box],
        options: TopologyOptions | None = None,
    ) -> SkeletonAnalysis:
        opt = options or TopologyOptions()
        digest = hashlib.blake2b(np.packbits(skeleton).tobytes(), digest_size=16)
        digest.update(repr((skeleton.shape, boxes, opt)).encode())
        key = digest.digest()
        with self._lock:
            if self._last is not None and self._last[0] == key:
                found = self._last[1]
                found.pipe_mask = pipe_mask
                return found
        made = _Analysis(skeleton, pipe_mask, boxes, opt)
        with self._lock:
            self._last = (key, made)
        return made


# ---- the rules ----------------------------------------------------------------------------


class _Rules:
    """The rule-based junction / bridge classifier."""

    def __init__(self, analysis: _Analysis) -> None:
        self.a = analysis
        self.opt = analysis.opt

    def decide(self) -> _Decisions:
        out = _Decisions()
        for cid, arms in self.a.arms.items():
            self._decide_cluster(cid, arms, out)
        self._decide_gaps(out)
        return out

    def _decide_cluster(self, cid: int, arms: list[Pair], out: _Decisions) -> None:
        n = len(arms)
        if n <= 2:
            out.kinds[cid] = ("pass", 1.0)
            if n == 2:
                out.passes[arms[0]], out.passes[arms[1]] = arms[1], arms[0]
            return
        if n == 3:
            out.kinds[cid] = ("junction", 0.95)
            return
        if n > 4:
            out.kinds[cid] = ("ambiguous", 0.5)
            return
        dirs = self.a.arm_directions(arms)
        dot = self._has_dot(self.a.centers[cid], arms)
        pairs = _straight_pairs(dirs, self.opt.straight_cos)
        if pairs is not None and not dot:
            out.kinds[cid] = ("bridge", 0.9)
            _link_pairs(arms, pairs, out.passes)
            return
        # A hop's apex, where arc and line meet, can look as thick as a dot: arcs first.
        hop = None if pairs is not None else self._hop_over(self.a.centers[cid], arms, dirs)
        if hop is not None:
            pairs, point = hop
            out.kinds[cid] = ("bridge", 0.85)
            out.points[cid] = point
            _link_pairs(arms, pairs, out.passes)
            return
        if dot:
            out.kinds[cid] = ("junction", 0.9)
            return
        # Four arms and no dot: by drawing convention pipes that cross without a dot are not
        # joined. Roughly straight pairs (a small hop, a jog at a scanned crossing) are a bridge
        # the rules are less sure of; anything else is for a person to look at.
        pairs = _most_opposite_pairs(dirs)
        cos = dirs @ dirs.T
        if all(cos[i, j] < -self.opt.loose_straight_cos for i, j in pairs):
            out.kinds[cid] = ("bridge", 0.7)
            _link_pairs(arms, pairs, out.passes)
            return
        out.kinds[cid] = ("ambiguous", 0.5)

    def _decide_gaps(self, out: _Decisions) -> None:
        pairs, _ = self.a.free_pairs()
        used: set[Pair] = set()
        for d, i, j, crossed in pairs:
            if i in used or j in used or not crossed or d < 6.0:
                continue
            out.gaps[i], out.gaps[j] = j, i
            mid = (self.a.point_of(i) + self.a.point_of(j)) / 2
            out.gap_points.append((float(mid[0]), float(mid[1])))
            used.update((i, j))

    def _hop_over(
        self, apex: tuple[float, float], arms: list[Pair], dirs: NDArray[np.float64]
    ) -> tuple[list[tuple[int, int]], tuple[float, float]] | None:
        """A hop-over arc, seen at its apex where it touches the line it jumps.

        Returns the two pass-through pairs and the point where the axes cross.
        """
        cos = dirs @ dirs.T
        for i, j, k, m in (
            (0, 1, 2, 3),
            (0, 2, 1, 3),
            (0, 3, 1, 2),
            (2, 3, 0, 1),
            (1, 3, 0, 2),
            (1, 2, 0, 3),
        ):
            if cos[i, j] >= -self.opt.straight_cos or abs(cos[k, m]) > 0.75:
                continue
            # The arc leaves its apex along the jumped line and bends back towards the jumping
            # pipe's axis: both arc arms lean the same way along the line, opposite across it.
            line = dirs[i]
            lean_k, lean_m = float(dirs[k] @ line), float(dirs[m] @ line)
            if lean_k * lean_m <= 0 or min(abs(lean_k), abs(lean_m)) < 0.25:
                continue
            point = self._axis_crossing(arms[i], arms[k], arms[m])
            # Arc arms too short to see the axis beyond: the apex is the best estimate.
            return [(i, j), (k, m)], point or apex
        return None

    def _axis_crossing(
        self, line_arm: Pair, arc_a: Pair, arc_b: Pair
    ) -> tuple[float, float] | None:
        """Where the jumping pipe's axis (beyond its arc) crosses the line it jumps over."""
        far = []
        for b, side in (arc_a, arc_b):
            xy = self.a.oriented(b, side)
            steps = np.linalg.norm(np.diff(xy, axis=0), axis=1)
            along = np.concatenate([[0.0], np.cumsum(steps)])
            part = xy[(along >= 16.0) & (along <= 40.0)]
            if len(part) < 3:
                return None
            far.append(part)
        pts = np.concatenate(far)
        centre = pts.mean(axis=0)
        # The axis through both straight stretches beyond the arc.
        _, _, vt = np.linalg.svd(pts - centre)
        axis = vt[0]
        xy = self.a.oriented(*line_arm)
        line_dir = self.a.arm_directions([line_arm])[0]
        # Solve centre + s * axis = xy[0] + t * line_dir.
        matrix = np.column_stack([axis, -line_dir])
        if abs(np.linalg.det(matrix)) < 0.3:
            return None
        s_t = np.linalg.solve(matrix, xy[0] - centre)
        p = centre + s_t[0] * axis
        return (float(p[0]), float(p[1]))

    def _has_dot(self, center: tuple[float, float], arms: list[Pair]) -> bool:
        """A filled dot makes the mask thicker at the centre than along the arms."""
        mask = self.a.pipe_mask
        h, w = mask.shape
        cx, cy = round(center[0]), round(center[1])
        # Distances to the paper inside a window around the point: lines are thin, so a
        # window this size sees the same distances as the whole sheet would.
        reach = int(self.opt.arm_length) + 10
        r0, c0 = max(cy - reach, 0), max(cx - reach, 0)
        window = mask[r0 : min(cy + reach + 1, h), c0 : min(cx + reach + 1, w)]
        dist = ndimage.distance_transform_edt(np.pad(window, 1))[1:-1, 1:-1]
        r = 6
        core = dist[max(cy - r - r0, 0) : cy + r + 1 - r0, max(cx - r - c0, 0) : cx + r + 1 - c0]
        if core.size == 0:
            return False
        arm = self._widest_arm(arms, dist, (cx, cy), (c0, r0), reach)
        if arm is None:
            return False
        return float(core.max()) > max(arm * self.opt.dot_ratio, arm + self.opt.dot_excess)

    def _widest_arm(
        self,
        arms: list[Pair],
        dist: NDArray[np.float64],
        center: tuple[int, int],
        origin: tuple[int, int],
        reach: int,
    ) -> float | None:
        """The largest of the arms' median half-widths, beyond arm_length and inside the
        window; None when no arm has a point there. All arms in one pass."""
        cx, cy = center
        c0, r0 = origin
        skip = int(self.opt.arm_length)
        pieces = [self.a.oriented(b, side)[skip:] for b, side in arms]
        far = np.concatenate(pieces)
        arm_of = np.repeat(np.arange(len(pieces)), [len(piece) for piece in pieces])
        inside = (np.abs(far[:, 0] - cx) < reach) & (np.abs(far[:, 1] - cy) < reach)
        far, arm_of = far[inside], arm_of[inside]
        if len(far) == 0:
            return None
        cols = np.clip(np.round(far[:, 0]).astype(np.intp) - c0, 0, dist.shape[1] - 1)
        rows = np.clip(np.round(far[:, 1]).astype(np.intp) - r0, 0, dist.shape[0] - 1)
        return float(_medians(dist[rows, cols], arm_of).max())


def _medians(values: NDArray[np.float64], groups: NDArray[np.intp]) -> NDArray[np.float64]:
    """The median of `values` in each group present (as np.median: even counts average the
    two middle values)."""
    order = np.lexsort((values, groups))
    values, groups = values[order], groups[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    counts = np.diff(np.r_[starts, len(values)])
    low = values[starts + (counts - 1) // 2]
    high = values[starts + counts // 2]
    medians: NDArray[np.float64] = (low + high) / 2
    return medians


def _straight_pairs(dirs: NDArray[np.float64], straight_cos: float) -> list[tuple[int, int]] | None:
    cos = dirs @ dirs.T
    for i, j, k, m in ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2)):
        if cos[i, j] < -straight_cos and cos[k, m] < -straight_cos:
            return [(i, j), (k, m)]
    return None


def _most_opposite_pairs(dirs: NDArray[np.float64]) -> list[tuple[int, int]]:
    """The pairing of four arms whose pairs point most directly away from each other."""
    cos = dirs @ dirs.T
    options = ([(0, 1), (2, 3)], [(0, 2), (1, 3)], [(0, 3), (1, 2)])
    return min(options, key=lambda ps: sum(float(cos[i, j]) for i, j in ps))


def _link_pairs(arms: list[Pair], pairs: list[tuple[int, int]], passes: dict[Pair, Pair]) -> None:
    for i, j in pairs:
        passes[arms[i]], passes[arms[j]] = arms[j], arms[i]


# ---- meeting points: classify -------------------------------------------------------------


def classify_meeting_points(
    skeleton: NDArray[np.bool_],
    pipe_mask: NDArray[np.bool_],
    boxes: list[Box],
    *,
    options: TopologyOptions | None = None,
    analysis: SkeletonAnalysis | None = None,
) -> list[dict[str, Any]]:
    """Every meeting point of the pipes, told junction, bridge or ambiguous by the rules.

    Parameters
    ----------
    skeleton
        (H, W) bool, one-pixel-wide skeleton of the pipe mask with symbol boxes removed.
    pipe_mask
        (H, W) bool pipe mask the skeleton came from (used to see junction dots).
    boxes
        Symbols as (id, class name, (x1, y1, x2, y2)) in pixels.
    options
        Distances of the method; the defaults suit lines of 1 to 4 px.
    analysis
        `analyse_skeleton` of the same skeleton, boxes and options, when the caller has it.

    Returns
    -------
    junctions.json's list: point, kind, degree and confidence of every meeting point.
    """
    if analysis is None:
        analysis = analyse_skeleton(skeleton, pipe_mask, boxes, options=options)
    decisions = _Rules(analysis).decide()
    found = []
    for cid, (kind, confidence) in decisions.kinds.items():
        if kind == "pass":
            continue
        x, y = decisions.points.get(cid, analysis.centers[cid])
        found.append(_meeting_point(x, y, kind, len(analysis.arms[cid]), confidence))
    found.extend(_meeting_point(x, y, "bridge", 4, 0.85) for x, y in decisions.gap_points)
    return found


def _meeting_point(x: float, y: float, kind: str, degree: int, confidence: float) -> dict[str, Any]:
    return {
        "point": [round(x, 2), round(y, 2)],
        "kind": kind,
        "degree": degree,
        "confidence": confidence,
    }


def meeting_point_masks(
    junctions: list[dict[str, Any]], shape: tuple[int, int], *, radius: int = 9
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """junction_mask and bridge_mask: a disc at every junction and at every bridge."""
    junction_mask = np.zeros(shape, dtype=np.uint8)
    bridge_mask = np.zeros(shape, dtype=np.uint8)
    for item in junctions:
        target = {"junction": junction_mask, "bridge": bridge_mask}.get(item["kind"])
        if target is not None:
            x, y = item["point"]
            cv2.circle(target, (round(x), round(y)), radius, 1, -1)
    # Discs are drawn with 1 on zeros, so the bytes are already booleans: view, not copy.
    return junction_mask.view(np.bool_), bridge_mask.view(np.bool_)


# ---- the graph ----------------------------------------------------------------------------


def build_graph(
    skeleton: NDArray[np.bool_],
    pipe_mask: NDArray[np.bool_],
    boxes: list[Box],
    junction_mask: NDArray[np.bool_],
    bridge_mask: NDArray[np.bool_],
    *,
    options: TopologyOptions | None = None,
    analysis: SkeletonAnalysis | None = None,
) -> nx.MultiGraph:
    """The pipe graph, with junctions and bridges where the two masks put them.

    Parameters
    ----------
    skeleton, pipe_mask, boxes
        As for `classify_meeting_points`.
    junction_mask, bridge_mask
        (H, W) bool: where pipes are joined, and where they only cross.
    analysis
        As for `classify_meeting_points`.

    Returns
    -------
    graph.json's graph: symbol, junction and endpoint nodes; one edge per pipe run.
    """
    if analysis is None:
        analysis = analyse_skeleton(skeleton, pipe_mask, boxes, options=options)
    decisions = _decisions_from_masks(analysis, junction_mask, bridge_mask)
    return _Tracer(analysis, decisions).graph()


def _marked(mask: NDArray[np.bool_], point: tuple[float, float] | NDArray[np.float64]) -> bool:
    h, w = mask.shape
    x, y = round(float(point[0])), round(float(point[1]))
    return bool(mask[max(y - 2, 0) : min(y + 3, h), max(x - 2, 0) : min(x + 3, w)].any())


def _decisions_from_masks(
    a: _Analysis, junction_mask: NDArray[np.bool_], bridge_mask: NDArray[np.bool_]
) -> _Decisions:
    out = _Decisions()
    for cid, arms in a.arms.items():
        n, center = len(arms), a.centers[cid]
        if n == 2:
            out.kinds[cid] = ("pass", 1.0)
            out.passes[arms[0]], out.passes[arms[1]] = arms[1], arms[0]
        elif n == 4 and _marked(bridge_mask, center) and not _marked(junction_mask, center):
            out.kinds[cid] = ("bridge", 1.0)
            _link_pairs(arms, _most_opposite_pairs(a.arm_directions(arms)), out.passes)
        elif n == 4 and not _marked(junction_mask, center):
            out.kinds[cid] = ("ambiguous", 0.5)
        elif n >= 3:
            out.kinds[cid] = ("junction", 1.0)
    pairs, _ = a.free_pairs()
    used: set[Pair] = set()
    for d, i, j, crossed in pairs:
        if i in used or j in used:
            continue
        mid = (a.point_of(i) + a.point_of(j)) / 2
        gap = crossed and d >= 6.0 and _marked(bridge_mask, mid)
        dash = not crossed and d <= a.opt.max_dash_gap
        if gap or dash:
            out.gaps[i], out.gaps[j] = j, i
            used.update((i, j))
    return out


class _Tracer:
    """Runs from node to node through passes and gaps; each run is one edge."""

    def __init__(self, analysis: _Analysis, decisions: _Decisions) -> None:
        self.a = analysis
        self.d = decisions
        self.out = nx.MultiGraph(
            width=int(analysis.pipe_mask.shape[1]), height=int(analysis.pipe_mask.shape[0])
        )
        self.links = {**decisions.passes, **decisions.gaps}
        self.on_ink = self._ink_per_branch()

    def _ink_per_branch(self) -> NDArray[np.float64]:
        paths = self.a.graph.paths
        if not paths:
            return np.zeros(0)
        flat = np.concatenate(paths)
        rc = self.a.graph.coords[flat].astype(np.intp)
        ink = self.a.pipe_mask[rc[:, 0], rc[:, 1]].astype(np.float64)
        starts = np.cumsum([0] + [len(p) for p in paths[:-1]])
        counts: NDArray[np.float64] = np.add.reduceat(ink, starts)
        return counts

    def graph(self) -> nx.MultiGraph:
        for sid, cls, (x1, y1, x2, y2) in self.a.boxes:
            self.out.add_node(sid, kind="symbol", bbox=[x1, y1, x2, y2], **{"class": cls})
        done: set[int] = set()
        for b in self.a.branches:
            if b not in done:
                self._add_run(b, done)
        return self.out

    def _add_run(self, first: int, done: set[int]) -> None:
        start, branches, pieces, end = self._walk(first, done)
        points = np.concatenate(pieces).astype(np.float32).reshape(-1, 1, 2)
        poly = cv2.approxPolyDP(points, 0.8, False).reshape(-1, 2).astype(np.float64)
        length = float(np.linalg.norm(np.diff(poly, axis=0), axis=1).sum())
        if start.kind == end.kind == "free" and length < self.a.opt.min_lone_branch:
            return  # a stray stroke on its own, not a pipe
        pixels = sum(len(self.a.graph.paths[b]) for b in branches)
        coverage = float(self.on_ink[branches].sum()) / max(pixels, 1)
        dashed = coverage < self.a.opt.dashed_coverage
        self.out.add_edge(
            self._node_for(start),
            self._node_for(end),
            polyline=[[round(float(x), 2), round(float(y), 2)] for x, y in poly],
            length=round(length, 2),
            line_type="dashed" if dashed else "solid",
        )

    def _node_for(self, term: _Terminal) -> str:
        if term.kind == "symbol":
            return str(term.ref)
        if term.kind == "cluster":
            cid = int(term.ref)
            node = f"j{cid}"
            if node not in self.out:
                cx, cy = self.a.centers[cid]
                self.out.add_node(node, kind="junction", point=[round(cx, 2), round(cy, 2)])
            return node
        node = f"e{term.ref}"
        if node not in self.out:
            x, y = term.point
            self.out.add_node(node, kind="endpoint", point=[round(x, 2), round(y, 2)])
        return node

    def _stops(self, term: _Terminal) -> bool:
        if term.kind == "cluster":
            return self.d.kinds.get(int(term.ref), ("pass", 1.0))[0] in ("junction", "ambiguous")
        return term.kind == "symbol"

    def _walk(
        self, first: int, done: set[int]
    ) -> tuple[_Terminal, list[int], list[NDArray[np.float64]], _Terminal]:
        """Follow a run both ways from one branch until it stops at a node."""
        done.add(first)
        pieces = [self.a.paths_xy[first]]
        branches = [first]
        ends: list[_Terminal] = []
        for direction in (1, 0):
            b, side = first, direction
            while True:
                term = self.a.ends[b][side]
                nxt = None if self._stops(term) else self.links.get((b, side))
                if nxt is None or nxt[0] in done:
                    ends.append(term)
                    break
                nb, nside = nxt
                done.add(nb)
                branches.append(nb)
                xy = self.a.oriented(nb, nside)
                if direction == 1:
                    pieces.append(xy)
                else:
                    pieces.insert(0, xy[::-1])
                b, side = nb, 1 - nside
        return ends[1], branches, pieces, ends[0]
