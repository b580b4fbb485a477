"""From a pipe skeleton to meeting points and a graph: the classical topology method.

Strategy. skan turns the skeleton into branches (pixel paths between skeleton nodes) without a
Python walk over pixels. Everything after that works on branches, of which a sheet has a few
thousand, not on pixels:

1. Skeleton nodes of degree >= 3 that lie close together (or are joined by a very short
   branch) are one physical meeting point: a cluster.
2. Branch ends of degree 1 are either on a symbol box (the pipe attaches to the symbol) or
   free. Free ends that face each other across a short gap are paired: across a line that
   passes through the gap they make a gap bridge, otherwise the gap is a dash space or a scan
   break and the two branches are one run.
3. A cluster with three arms is a junction. One with four arms in two straight pairs is a
   crossing, a bridge unless the mask shows a dot there. Anything else is ambiguous.
4. A hop-over arc shows up as a short detour of one branch around a straight line; its chord
   midpoint is a bridge.
5. Runs are traced through bridges (straight pairs at crossings, paired gap ends) from node to
   node: symbols, junctions and free ends. Each run is one edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from skan import csr
from skimage.measure import approximate_polygon

Box = tuple[str, str, tuple[float, float, float, float]]  # (id, class, [x1, y1, x2, y2])


@dataclass(frozen=True, slots=True)
class TopologyOptions:
    """Distances in pixels used by the classical method."""

    cluster_radius: float = 7.0
    arm_length: float = 14.0
    straight_cos: float = 0.94
    attach_distance: float = 6.0
    max_gap: float = 36.0
    max_dash_gap: float = 9.0
    collinear_offset: float = 3.0
    min_spur: float = 12.0
    min_lone_branch: float = 20.0
    dot_excess: float = 0.35


@dataclass(slots=True)
class _Terminal:
    """One end of a branch: a cluster, a symbol, a free end or a joined gap."""

    kind: str  # "cluster" | "symbol" | "free"
    ref: int | str
    point: tuple[float, float]


@dataclass(slots=True)
class Topology:
    graph: nx.MultiGraph
    junctions: list[dict[str, Any]] = field(default_factory=list)


def _branch_paths(skeleton: csr.Skeleton) -> list[NDArray[np.int64]]:
    return [np.asarray(p, dtype=np.int64) for p in skeleton.paths_list()]


def _xy(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    """skan's (row, col) pixel coordinates as (x, y)."""
    return coords[:, ::-1].astype(np.float64)


def _cluster_junction_nodes(
    coords: NDArray[np.float64],
    degrees: NDArray[np.int64],
    paths: list[NDArray[np.int64]],
    lengths: NDArray[np.float64],
    radius: float,
) -> dict[int, int]:
    """Map every skeleton node of degree >= 3 to a cluster id."""
    junction_nodes = np.flatnonzero(degrees >= 3)
    if len(junction_nodes) == 0:
        return {}
    index = {int(n): i for i, n in enumerate(junction_nodes)}
    tree = cKDTree(coords[junction_nodes])
    pairs = tree.query_pairs(radius, output_type="ndarray")
    links = [pairs] if len(pairs) else []
    short = [
        (index[int(p[0])], index[int(p[-1])])
        for p, length in zip(paths, lengths, strict=True)
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


def _box_containing(point: tuple[float, float], boxes: list[Box], grow: float) -> str | None:
    x, y = point
    best, best_d = None, np.inf
    for sid, _, (x1, y1, x2, y2) in boxes:
        dx = max(x1 - x, 0.0, x - x2)
        dy = max(y1 - y, 0.0, y - y2)
        d = float(np.hypot(dx, dy))
        if d <= grow and d < best_d:
            best, best_d = sid, d
    return best


def _direction_into(path_xy: NDArray[np.float64], length: float) -> NDArray[np.float64]:
    """Unit direction from the first point of a path to its point `length` px along it."""
    steps = np.linalg.norm(np.diff(path_xy, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    k = int(np.searchsorted(along, min(length, along[-1])))
    k = max(1, min(k, len(path_xy) - 1))
    v = path_xy[k] - path_xy[0]
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else np.zeros(2)


class _Builder:
    def __init__(
        self,
        skeleton_image: NDArray[np.bool_],
        pipe_mask: NDArray[np.bool_],
        boxes: list[Box],
        options: TopologyOptions,
    ) -> None:
        self.opt = options
        self.boxes = boxes
        self.pipe_mask = pipe_mask
        self.graph = nx.MultiGraph(width=int(pipe_mask.shape[1]), height=int(pipe_mask.shape[0]))
        self.junctions: list[dict[str, Any]] = []
        self.paths_xy: list[NDArray[np.float64]] = []
        self.ends: list[tuple[_Terminal, _Terminal]] = []
        self.gap_points: list[tuple[float, float]] = []
        self.bridge_points: dict[int, tuple[float, float]] = {}
        if skeleton_image.any():
            self.skel = csr.Skeleton(skeleton_image)
            coords = np.asarray(self.skel.coordinates, dtype=np.float64)
            self.coords = coords
            self.degrees = np.asarray(self.skel.degrees, dtype=np.int64)
            self.paths = _branch_paths(self.skel)
            self.lengths = np.asarray(self.skel.path_lengths(), dtype=np.float64)
        else:
            self.paths, self.lengths = [], np.zeros(0)
            self.coords, self.degrees = np.zeros((0, 2)), np.zeros(0, dtype=np.int64)

    # ---- terminals -------------------------------------------------------------------------

    def _terminals(self) -> None:
        clusters = _cluster_junction_nodes(
            self.coords, self.degrees, self.paths, self.lengths, self.opt.cluster_radius
        )
        self.cluster_of = clusters
        for path in self.paths:
            xy = _xy(self.coords[path])
            self.paths_xy.append(xy)
            self.ends.append(
                (self._terminal(int(path[0]), xy[0]), self._terminal(int(path[-1]), xy[-1]))
            )

    def _terminal(self, node: int, point: NDArray[np.float64]) -> _Terminal:
        pt = (float(point[0]), float(point[1]))
        if node in self.cluster_of:
            return _Terminal("cluster", self.cluster_of[node], pt)
        symbol = _box_containing(pt, self.boxes, self.opt.attach_distance)
        if symbol is not None:
            return _Terminal("symbol", symbol, pt)
        return _Terminal("free", node, pt)

    # ---- branch bookkeeping ---------------------------------------------------------------

    def _drop_internal_and_spurs(self) -> list[int]:
        """Branches that make up pipe runs: not the inside of a cluster, not a tiny spur."""
        keep = []
        for b, (a, z) in enumerate(self.ends):
            length = float(self.lengths[b])
            if a.kind == "cluster" and z.kind == "cluster" and a.ref == z.ref:
                continue
            spur = (a.kind == "free") != (z.kind == "free") and "cluster" in (a.kind, z.kind)
            if spur and length < self.opt.min_spur:
                continue
            if a.kind == "free" and z.kind == "free" and length < 2.0:
                continue
            keep.append(b)
        return keep

    def build(self) -> Topology:
        if not self.paths:
            self._add_symbol_nodes()
            return Topology(self.graph, [])
        self._terminals()
        branches = self._drop_internal_and_spurs()
        arms = self._arms(branches)
        passes, cluster_kind = self._classify_clusters(arms)
        gap_links, dash_links = self._pair_free_ends(branches)
        self._add_symbol_nodes()
        self._trace_runs(branches, arms, passes, cluster_kind, gap_links, dash_links)
        return Topology(self.graph, self.junctions)

    def _add_symbol_nodes(self) -> None:
        for sid, cls, (x1, y1, x2, y2) in self.boxes:
            self.graph.add_node(sid, kind="symbol", bbox=[x1, y1, x2, y2], **{"class": cls})

    # ---- clusters ----------------------------------------------------------------------------

    def _arms(self, branches: list[int]) -> dict[int, list[tuple[int, int]]]:
        """For every cluster, its arms as (branch, which end: 0 start, 1 end)."""
        arms: dict[int, list[tuple[int, int]]] = {}
        for b in branches:
            for side, term in enumerate(self.ends[b]):
                if term.kind == "cluster":
                    arms.setdefault(int(term.ref), []).append((b, side))
        return arms

    def _arm_direction(self, b: int, side: int) -> NDArray[np.float64]:
        xy = self.paths_xy[b] if side == 0 else self.paths_xy[b][::-1]
        return _direction_into(xy, self.opt.arm_length)

    def _cluster_center(self, arms: list[tuple[int, int]]) -> tuple[float, float]:
        pts = np.asarray([self.ends[b][side].point for b, side in arms])
        c = pts.mean(axis=0)
        return (float(c[0]), float(c[1]))

    def _classify_clusters(
        self, arms: dict[int, list[tuple[int, int]]]
    ) -> tuple[dict[tuple[int, int], tuple[int, int]], dict[int, tuple[str, float]]]:
        """Kind of every cluster, and at crossings which arm continues into which."""
        passes: dict[tuple[int, int], tuple[int, int]] = {}
        kinds: dict[int, tuple[str, float]] = {}
        dist = ndimage.distance_transform_edt(self.pipe_mask) if arms else None
        for cid, cluster_arms in arms.items():
            n = len(cluster_arms)
            center = self._cluster_center(cluster_arms)
            if n <= 2:
                kinds[cid] = ("pass", 1.0)
                if n == 2:
                    a, b = cluster_arms
                    passes[a], passes[b] = b, a
                continue
            if n == 3:
                kinds[cid] = ("junction", 0.95)
                continue
            dirs = np.asarray([self._arm_direction(b, s) for b, s in cluster_arms])
            pairs = self._straight_pairs(dirs) if n == 4 else None
            if pairs is None and n == 4:
                hop = self._hop_over(cluster_arms, dirs)
                if hop is not None:
                    (i, j), (k, m), point = hop
                    kinds[cid] = ("bridge", 0.85)
                    self.bridge_points[cid] = point
                    for x, y in ((i, j), (k, m)):
                        passes[cluster_arms[x]] = cluster_arms[y]
                        passes[cluster_arms[y]] = cluster_arms[x]
                    continue
            if pairs is None:
                kinds[cid] = ("ambiguous", 0.5)
                continue
            if self._has_dot(center, cluster_arms, dist):
                kinds[cid] = ("junction", 0.9)
                continue
            kinds[cid] = ("bridge", 0.9)
            for i, j in pairs:
                passes[cluster_arms[i]] = cluster_arms[j]
                passes[cluster_arms[j]] = cluster_arms[i]
        self.cluster_centers = {cid: self._cluster_center(a) for cid, a in arms.items()}
        return passes, kinds

    def _hop_over(
        self, arms: list[tuple[int, int]], dirs: NDArray[np.float64]
    ) -> tuple[tuple[int, int], tuple[int, int], tuple[float, float]] | None:
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
            if point is None:
                # Arc arms too short to see the axis beyond: the apex is the best estimate.
                point = self._cluster_center(arms)
            return (i, j), (k, m), point
        return None

    def _axis_crossing(
        self, line_arm: tuple[int, int], arc_a: tuple[int, int], arc_b: tuple[int, int]
    ) -> tuple[float, float] | None:
        """Where the jumping pipe's axis (beyond its arc) crosses the line it jumps over."""
        far = []
        for b, side in (arc_a, arc_b):
            xy = self.paths_xy[b] if side == 0 else self.paths_xy[b][::-1]
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
        b, side = line_arm
        xy = self.paths_xy[b] if side == 0 else self.paths_xy[b][::-1]
        line_dir = _direction_into(xy, self.opt.arm_length)
        # Solve centre + s * axis = xy[0] + t * line_dir.
        matrix = np.column_stack([axis, -line_dir])
        if abs(np.linalg.det(matrix)) < 0.3:
            return None
        s_t = np.linalg.solve(matrix, xy[0] - centre)
        p = centre + s_t[0] * axis
        return (float(p[0]), float(p[1]))

    def _straight_pairs(self, dirs: NDArray[np.float64]) -> list[tuple[int, int]] | None:
        cos = dirs @ dirs.T
        for i, j, k, m in ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2)):
            if cos[i, j] < -self.opt.straight_cos and cos[k, m] < -self.opt.straight_cos:
                return [(i, j), (k, m)]
        return None

    def _has_dot(
        self,
        center: tuple[float, float],
        arms: list[tuple[int, int]],
        dist: NDArray[np.float64] | None,
    ) -> bool:
        """A filled dot makes the mask thicker at the centre than along the arms."""
        if dist is None:
            return False
        h, w = dist.shape
        cx, cy = round(center[0]), round(center[1])
        r = 4
        core = dist[max(cy - r, 0) : min(cy + r + 1, h), max(cx - r, 0) : min(cx + r + 1, w)]
        arm_widths = []
        for b, side in arms:
            xy = self.paths_xy[b] if side == 0 else self.paths_xy[b][::-1]
            far = xy[min(len(xy) - 1, int(self.opt.arm_length)) :]
            if len(far):
                cols = np.clip(np.round(far[:, 0]).astype(int), 0, w - 1)
                rows = np.clip(np.round(far[:, 1]).astype(int), 0, h - 1)
                arm_widths.append(float(np.median(dist[rows, cols])))
        if core.size == 0 or not arm_widths:
            return False
        # At a plain crossing the centre is at most ~sqrt(2) thicker than the arms.
        return bool(float(core.max()) > max(arm_widths) * np.sqrt(2.0) + self.opt.dot_excess)

    # ---- free ends -------------------------------------------------------------------------

    def _pair_free_ends(
        self, branches: list[int]
    ) -> tuple[dict[tuple[int, int], tuple[int, int]], dict[tuple[int, int], tuple[int, int]]]:
        """Pair free ends that face each other: gap bridges and dash spaces or breaks."""
        free = [(b, s) for b in branches for s in (0, 1) if self.ends[b][s].kind == "free"]
        if len(free) < 2:
            return {}, {}
        pts = np.asarray([self.ends[b][s].point for b, s in free])
        # The outward direction of a free end is the reverse of the arm direction into the branch.
        outward = -np.asarray([self._arm_direction(b, s) for b, s in free])
        tree = cKDTree(pts)
        candidates = tree.query_pairs(self.opt.max_gap, output_type="ndarray")
        scored = []
        for i, j in candidates:
            if free[i][0] == free[j][0]:
                continue
            v = pts[j] - pts[i]
            d = float(np.linalg.norm(v))
            if d < 1e-6:
                continue
            u = v / d
            if outward[i] @ u < 0.9 or outward[j] @ -u < 0.9:
                continue
            lateral = abs(float(outward[i][0] * v[1] - outward[i][1] * v[0]))
            if lateral > self.opt.collinear_offset:
                continue
            scored.append((d, int(i), int(j)))
        scored.sort()
        used: set[int] = set()
        gaps: dict[tuple[int, int], tuple[int, int]] = {}
        dashes: dict[tuple[int, int], tuple[int, int]] = {}
        skeleton = self.skel.skeleton_image
        for d, i, j in scored:
            if i in used or j in used:
                continue
            crossed = self._line_between(pts[i], pts[j], skeleton)
            if crossed:
                if d < 6.0:
                    continue
                gaps[free[i]], gaps[free[j]] = free[j], free[i]
                mid = (pts[i] + pts[j]) / 2
                self.gap_points.append((float(mid[0]), float(mid[1])))
            elif d <= self.opt.max_dash_gap:
                dashes[free[i]], dashes[free[j]] = free[j], free[i]
            else:
                continue
            used.update((i, j))
        return gaps, dashes

    @staticmethod
    def _line_between(
        a: NDArray[np.float64], b: NDArray[np.float64], skeleton: NDArray[np.bool_] | None
    ) -> bool:
        """True if a skeleton line passes between the two ends a and b.

        Only samples at least 2.5 px from both ends count, and their neighbours are taken across
        the a-b direction only, so the two ends themselves never count as a line between them.
        """
        if skeleton is None:
            return False
        length = float(np.linalg.norm(b - a))
        if length < 6.0:
            return False
        u = (b - a) / length
        across = np.array([-u[1], u[0]])
        t = np.arange(2.5, length - 2.5 + 1e-9, 0.5)[:, None]
        pts = a + u * t
        h, w = skeleton.shape
        hit = np.zeros(len(pts), dtype=bool)
        for offset in (-1.0, 0.0, 1.0):
            q = pts + across * offset
            cols = np.clip(np.round(q[:, 0]).astype(int), 0, w - 1)
            rows = np.clip(np.round(q[:, 1]).astype(int), 0, h - 1)
            hit |= skeleton[rows, cols]
        return bool(hit.any())

    # ---- runs ------------------------------------------------------------------------------

    def _node_for(self, term: _Terminal) -> str:
        if term.kind == "symbol":
            return str(term.ref)
        if term.kind == "cluster":
            cid = int(term.ref)
            node = f"j{cid}"
            if node not in self.graph:
                cx, cy = self.cluster_centers[cid]
                self.graph.add_node(node, kind="junction", point=[round(cx, 2), round(cy, 2)])
            return node
        node = f"e{term.ref}"
        if node not in self.graph:
            self.graph.add_node(
                node, kind="endpoint", point=[round(term.point[0], 2), round(term.point[1], 2)]
            )
        return node

    def _trace_runs(
        self,
        branches: list[int],
        arms: dict[int, list[tuple[int, int]]],
        passes: dict[tuple[int, int], tuple[int, int]],
        kinds: dict[int, tuple[str, float]],
        gaps: dict[tuple[int, int], tuple[int, int]],
        dashes: dict[tuple[int, int], tuple[int, int]],
    ) -> None:
        for cid, (kind, confidence) in kinds.items():
            if kind == "pass":
                continue
            cx, cy = self.bridge_points.get(cid, self.cluster_centers[cid])
            self.junctions.append(
                {
                    "point": [round(cx, 2), round(cy, 2)],
                    "kind": kind,
                    "degree": len(arms[cid]),
                    "confidence": confidence,
                }
            )
        for x, y in self.gap_points:
            self.junctions.append(
                {
                    "point": [round(x, 2), round(y, 2)],
                    "kind": "bridge",
                    "degree": 4,
                    "confidence": 0.85,
                }
            )
        links = {**passes, **gaps, **dashes}
        done: set[int] = set()
        for b in branches:
            if b in done:
                continue
            start_term, pieces, end_term, n_dash = self._walk(b, links, kinds, done)
            poly = np.concatenate(pieces)
            poly = approximate_polygon(poly, tolerance=0.8)  # type: ignore[no-untyped-call]
            length = float(np.linalg.norm(np.diff(poly, axis=0), axis=1).sum())
            if start_term.kind == end_term.kind == "free" and length < self.opt.min_lone_branch:
                continue  # a stray stroke on its own, not a pipe
            u = self._node_for(start_term)
            v = self._node_for(end_term)
            dashed = n_dash >= 2 and n_dash * 20.0 >= length * 0.5
            self.graph.add_edge(
                u,
                v,
                polyline=[[round(float(x), 2), round(float(y), 2)] for x, y in poly],
                length=round(length, 2),
                line_type="dashed" if dashed else "solid",
            )

    def _stops(self, term: _Terminal, kinds: dict[int, tuple[str, float]]) -> bool:
        if term.kind == "cluster":
            return kinds.get(int(term.ref), ("pass", 1.0))[0] in ("junction", "ambiguous")
        return term.kind == "symbol"

    def _walk(
        self,
        first: int,
        links: dict[tuple[int, int], tuple[int, int]],
        kinds: dict[int, tuple[str, float]],
        done: set[int],
    ) -> tuple[_Terminal, list[NDArray[np.float64]], _Terminal, int]:
        """Follow a run both ways from one branch until it stops at a node."""
        done.add(first)
        pieces = [self.paths_xy[first]]
        n_dash = 0
        ends: list[_Terminal] = []
        for direction in (1, 0):
            b, side = first, direction
            while True:
                term = self.ends[b][side]
                nxt = None if self._stops(term, kinds) else links.get((b, side))
                if nxt is None or nxt[0] in done:
                    ends.append(term)
                    break
                nb, nside = nxt
                if term.kind == "free" and self.ends[nb][nside].kind == "free":
                    n_dash += (
                        1
                        if float(
                            np.linalg.norm(np.subtract(term.point, self.ends[nb][nside].point))
                        )
                        <= self.opt.max_dash_gap
                        else 0
                    )
                done.add(nb)
                xy = self.paths_xy[nb] if nside == 0 else self.paths_xy[nb][::-1]
                if direction == 1:
                    pieces.append(xy)
                else:
                    pieces.insert(0, xy[::-1])
                b, side = nb, 1 - nside
        end_term, start_term = ends[0], ends[1]
        return start_term, pieces, end_term, n_dash


def build_topology(
    skeleton: NDArray[np.bool_],
    pipe_mask: NDArray[np.bool_],
    boxes: list[Box],
    *,
    options: TopologyOptions | None = None,
) -> Topology:
    """Meeting points and the graph of a sheet from its skeleton.

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

    Returns
    -------
    Topology
        The graph (graph.json's schema) and the meeting points (junctions.json's schema).
    """
    return _Builder(skeleton, pipe_mask, boxes, options or TopologyOptions()).build()
