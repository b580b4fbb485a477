"""Skeletons of pipe masks and the pixel graph the topology works on.

`skeleton_graph` turns a one-pixel skeleton into branches (ordered pixel paths between node
pixels) with array code only: neighbours come from an index image, chains of degree-2 pixels
from connected components, and the order of pixels along a chain from one multi-source
breadth-first search. skan does the same job, but it walks every pixel in Python when it
simplifies junction clusters, which on an 8000x6000 sheet costs more than the skeletonisation
itself; the topology needs the graph twice (classify and build_graph), so it is built here.

`skeletonize_pipes` is the cleanup variant of step 4: thinning, then bridging of dash spaces
and small scan breaks, pruning of short spurs, and removal of strokes too short to be pipes.
`skeletonize_simple` is thinning only, for a mask a person has corrected.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

#: Forward neighbour offsets (row, col); the other four are their reverses.
_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True, slots=True)
class SkeletonOptions:
    """Distances in pixels of the skeleton cleanup."""

    #: Free ends this close to a symbol box attach to it: they are never pruned or joined.
    attach_distance: int = 10
    #: Largest dash space or scan break that is bridged.
    max_break: float = 16.0
    #: Two facing ends may be this far off one straight line.
    collinear_offset: float = 3.0
    #: Spurs from a branch point to a free end shorter than this are thinning artefacts.
    min_spur: float = 12.0
    #: Strokes that reach no symbol and span less than this are specks or text remnants:
    #: pipes run from symbol to symbol.
    min_stroke: int = 80
    #: Free ends this close are one line broken at a bend, whatever their directions.
    max_corner_break: float = 7.0
    #: How far along a branch its end direction is measured.
    direction_length: float = 8.0


@dataclass(frozen=True, slots=True)
class SkeletonGraph:
    """Skeleton pixels and the branches between node pixels (degree other than 2)."""

    shape: tuple[int, int]
    #: (N, 2) float (row, col) of every skeleton pixel.
    coords: NDArray[np.float64]
    #: Neighbours of every pixel, after dropping diagonal links that an L of two orthogonal
    #: links already makes (so a staircase line has degree 2 everywhere).
    degrees: NDArray[np.int64]
    #: Pixel indices of each branch, from a node pixel to a node pixel.
    paths: list[NDArray[np.int64]]
    lengths: NDArray[np.float64]
    #: (M, 2) pixel index pairs of every link.
    links: NDArray[np.int64]
    #: Where each branch starts in `flat` (one more at the end: the length of `flat`).
    offsets: NDArray[np.int64]
    #: The pixel indices of all paths, one after the other.
    flat: NDArray[np.int64]
    #: Distance walked along the concatenated paths up to each of their points; it never
    #: decreases, so one binary search finds a point a given distance along any branch.
    walked: NDArray[np.float64]

    def path_xy(self, branch: int) -> NDArray[np.float64]:
        """(x, y) points of one branch."""
        return self.coords[self.paths[branch]][:, ::-1]


def _links(
    rows: NDArray[np.intp], cols: NDArray[np.intp], shape: tuple[int, int]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Pairs of 8-adjacent skeleton pixels, each pair once.

    Neighbours are found by binary search in the sorted raveled pixel indices, which costs far
    less than an index image of the whole sheet.
    """
    width = shape[1]
    raveled = rows.astype(np.int64) * width + cols
    n = len(raveled)

    found: dict[tuple[int, int], NDArray[np.int64]] = {}

    def lookup(dr: int, dc: int) -> NDArray[np.int64]:
        # Each offset is searched once: the diagonals' checks reuse the orthogonal results.
        if (dr, dc) not in found:
            target = raveled + dr * width + dc
            pos = np.minimum(np.searchsorted(raveled, target), n - 1)
            inside = (cols + dc >= 0) & (cols + dc < width)
            found[(dr, dc)] = np.where(inside & (raveled[pos] == target), pos, -1)
        return found[(dr, dc)]

    src, dst = [], []
    for dr, dc in _OFFSETS:
        neighbour = lookup(dr, dc)
        ok = neighbour >= 0
        if dr and dc:
            # A diagonal link is redundant where an orthogonal pixel touches both ends.
            ok &= (lookup(dr, 0) < 0) & (lookup(0, dc) < 0)
        src.append(np.flatnonzero(ok))
        dst.append(neighbour[ok])
    return np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64)


def _adjacency(src: NDArray[np.int64], dst: NDArray[np.int64], n: int) -> coo_matrix:
    ones = np.ones(len(src), dtype=np.int8)
    return coo_matrix((ones, (src, dst)), shape=(n, n)).tocsr()


def skeleton_graph(skeleton: NDArray[np.bool_]) -> SkeletonGraph:
    """Branches of a one-pixel skeleton, every one an ordered path between node pixels.

    Closed loops with no node pixel on them (a ring of degree-2 pixels) have no branch.
    """
    shape = (int(skeleton.shape[0]), int(skeleton.shape[1]))
    # flatnonzero is several times faster than nonzero on a large sparse image.
    rows, cols = np.divmod(np.flatnonzero(skeleton), shape[1])
    coords = np.column_stack([rows, cols]).astype(np.float64)
    n = len(rows)
    if n == 0:
        empty = np.zeros((0, 2), np.int64)
        none = np.zeros(0, np.int64)
        return SkeletonGraph(
            shape, coords, none, [], np.zeros(0), empty, np.zeros(1, np.int64), none, np.zeros(0)
        )
    src, dst = _links(rows, cols, shape)
    degrees = np.bincount(np.concatenate([src, dst]), minlength=n).astype(np.int64)
    chain = degrees == 2
    paths = _chain_paths(src, dst, chain, n)
    both_nodes = ~chain[src] & ~chain[dst]
    paths.extend(np.column_stack([src[both_nodes], dst[both_nodes]]))
    links = np.column_stack([src, dst])
    offsets, flat, walked = _walked(coords, paths)
    lengths = walked[offsets[1:] - 1] - walked[offsets[:-1]] if paths else np.zeros(0)
    return SkeletonGraph(shape, coords, degrees, paths, lengths, links, offsets, flat, walked)


def _walked(
    coords: NDArray[np.float64], paths: list[NDArray[np.int64]]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Offsets of the paths in their concatenation, the concatenation, and the distance
    walked to each of its points.

    The step from the last point of one path to the first of the next counts as zero, so
    within a path the difference of two values is the length along it.
    """
    offsets = np.zeros(len(paths) + 1, np.int64)
    offsets[1:] = np.cumsum([len(p) for p in paths])
    if not paths:
        return offsets, np.zeros(0, np.int64), np.zeros(0)
    flat = np.concatenate(paths).astype(np.int64)
    steps = np.zeros(len(flat))
    steps[1:] = np.hypot(*np.diff(coords[flat], axis=0).T)
    steps[offsets[:-1]] = 0.0
    return offsets, flat, np.cumsum(steps)


def branch_ends(
    graph: SkeletonGraph,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Both ends of every branch, in branch order, start first: branch, side (0 start,
    1 end) and pixel index of each."""
    n = len(graph.paths)
    branches = np.repeat(np.arange(n, dtype=np.int64), 2)
    sides = np.tile(np.array([0, 1], np.int64), n)
    pixels = np.column_stack([graph.flat[graph.offsets[:-1]], graph.flat[graph.offsets[1:] - 1]])
    return branches, sides, pixels.reshape(-1).astype(np.int64)


def end_directions(
    graph: SkeletonGraph,
    branches: NDArray[np.int64],
    sides: NDArray[np.int64],
    length: float,
) -> NDArray[np.float64]:
    """(N, 2) unit (x, y) directions from each branch end into its branch, `length` px along.

    `sides` says which end: 0 the start, 1 the end. The target is the first point at least
    `length` px along (the far end when the branch is shorter), never the end itself.
    """
    if len(branches) == 0:
        return np.zeros((0, 2))
    first, last = graph.offsets[branches], graph.offsets[branches + 1] - 1
    walked = graph.walked
    reach = np.minimum(length, walked[last] - walked[first])
    from_start = np.searchsorted(walked, walked[first] + reach, side="left")
    from_start = np.clip(from_start, first + 1, last)
    # From the end, walking back: the last point at most `reach` before the end.
    from_end = np.searchsorted(walked, walked[last] - reach, side="right") - 1
    from_end = np.clip(from_end, first, last - 1)
    at_end = sides == 1
    origin = np.where(at_end, last, first)
    target = np.where(at_end, from_end, from_start)
    vectors = graph.coords[graph.flat[target]] - graph.coords[graph.flat[origin]]
    vectors = vectors[:, ::-1]
    norms = np.hypot(vectors[:, 0], vectors[:, 1])
    safe = np.where(norms > 0, norms, 1.0)[:, None]
    directions: NDArray[np.float64] = np.where(norms[:, None] > 0, vectors / safe, 0.0)
    return directions


def _chain_paths(
    src: NDArray[np.int64], dst: NDArray[np.int64], chain: NDArray[np.bool_], n: int
) -> list[NDArray[np.int64]]:
    """Runs of degree-2 pixels, ordered, with the node pixel at each end added."""
    inner = chain[src] & chain[dst]
    chain_ids = np.flatnonzero(chain)
    if len(chain_ids) == 0:
        return []
    m = len(chain_ids)
    local = np.full(n, -1, dtype=np.int64)
    local[chain_ids] = np.arange(m)
    a, b = local[src[inner]], local[dst[inner]]
    _, label = connected_components(_adjacency(a, b, m), directed=False)
    inner_degree = np.bincount(np.concatenate([a, b]), minlength=m)
    # One end per chain (the lowest-numbered pixel with fewer than two chain neighbours) is its
    # source. One breadth-first search from an extra vertex joined to every source reaches
    # each chain from its source, pixel after pixel, so the visit order sorted stably by chain
    # is every chain in order. Rings have no such pixel and are never reached.
    ends = np.flatnonzero(inner_degree < 2)
    first_end = np.full(label.max() + 1, -1, dtype=np.int64)
    first_end[label[ends[::-1]]] = ends[::-1]
    sources = first_end[first_end >= 0]
    hub = np.full(len(sources), m, dtype=np.int64)
    joined = _adjacency(np.concatenate([a, hub]), np.concatenate([b, sources]), m + 1)
    visited = breadth_first_order(joined, m, directed=False, return_predecessors=False)[1:]
    order = visited[np.argsort(label[visited], kind="stable")]
    boundaries = np.flatnonzero(np.diff(label[order])) + 1
    pixels = chain_ids[order]
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(order)]]) - 1
    heads, tails = _end_nodes(src, dst, chain, pixels[starts], pixels[ends])
    # Each piece becomes [head node] + its pixels + [tail node], built in one insert.
    at = np.concatenate([ends + 1, starts])
    values = np.concatenate([tails, heads])
    # Where a tail and the next head go to the same place, the tail must come first.
    first = np.lexsort((np.repeat([0, 1], len(starts)), at))
    flat = np.insert(pixels, at[first], values[first])
    pieces = np.split(flat, np.cumsum(ends - starts + 3)[:-1])
    return [piece[piece >= 0] for piece in pieces]


def _end_nodes(
    src: NDArray[np.int64],
    dst: NDArray[np.int64],
    chain: NDArray[np.bool_],
    firsts: NDArray[np.int64],
    lasts: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The node pixel next to the first and to the last pixel of every chain (-1 if none).

    A one-pixel chain has both its node neighbours on the same pixel: the first goes to the
    head, the second to the tail.
    """
    a = np.concatenate([src, dst])
    b = np.concatenate([dst, src])
    sel = chain[a] & ~chain[b]
    a, b = a[sel], b[sel]
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    first_at = np.searchsorted(a, firsts, side="left")
    last_at = np.searchsorted(a, lasts, side="right") - 1
    found_first = (first_at < len(a)) & (a[np.minimum(first_at, len(a) - 1)] == firsts)
    found_last = (last_at >= 0) & (a[np.maximum(last_at, 0)] == lasts)
    heads = (
        np.where(found_first, b[np.minimum(first_at, len(a) - 1)], -1)
        if len(a)
        else np.full(len(firsts), -1)
    )
    tails = (
        np.where(found_last, b[np.maximum(last_at, 0)], -1) if len(a) else np.full(len(lasts), -1)
    )
    single = firsts == lasts
    # One node neighbour only: it is the head; the tail stays empty.
    tails = np.where(single & (heads == tails), -1, tails)
    return heads.astype(np.int64), tails.astype(np.int64)


def facing_pairs(
    points: NDArray[np.float64],
    outward: NDArray[np.float64],
    max_gap: float,
    max_offset: float,
) -> list[tuple[float, int, int]]:
    """Pairs of free ends that point at each other on one line, nearest first.

    Returns (distance, i, j) for ends i, j whose outward directions both point at the other
    end and which lie at most `max_offset` px off each other's line.
    """
    if len(points) < 2:
        return []
    candidates = cKDTree(points).query_pairs(max_gap, output_type="ndarray")
    if len(candidates) == 0:
        return []
    i, j = candidates[:, 0], candidates[:, 1]
    v = points[j] - points[i]
    d = np.linalg.norm(v, axis=1)
    u = v / np.maximum(d, 1e-9)[:, None]
    facing = (np.einsum("ij,ij->i", outward[i], u) >= 0.9) & (
        np.einsum("ij,ij->i", outward[j], -u) >= 0.9
    )
    lateral = np.abs(outward[i, 0] * v[:, 1] - outward[i, 1] * v[:, 0])
    ok = facing & (lateral <= max_offset) & (d > 1e-6)
    scored = sorted(zip(d[ok].tolist(), i[ok].tolist(), j[ok].tolist(), strict=True))
    return [(float(dd), int(a), int(b)) for dd, a, b in scored]


def line_between(
    a: NDArray[np.float64], b: NDArray[np.float64], skeleton: NDArray[np.bool_]
) -> bool:
    """True if a skeleton line passes between the two ends a and b.

    Only samples at least 2.5 px from both ends count, and their neighbours are taken across
    the a-b direction only, so the two ends themselves never count as a line between them.
    """
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


def free_ends(
    graph: SkeletonGraph, near_symbol: NDArray[np.bool_], direction_length: float
) -> tuple[list[tuple[int, int]], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Branch ends at degree-1 pixels.

    Returns the ends as (branch, 0 start | 1 end), their (x, y) points, their outward unit
    directions (pointing away from the branch) and whether each lies near a symbol.
    """
    branches, sides, pixels = branch_ends(graph)
    free = graph.degrees[pixels] == 1
    branches, sides, pixels = branches[free], sides[free], pixels[free]
    rows, cols = graph.coords[pixels].astype(np.intp).T
    points = graph.coords[pixels][:, ::-1].reshape(-1, 2)
    outward = -end_directions(graph, branches, sides, direction_length)
    near = np.asarray(near_symbol[rows, cols], dtype=bool).reshape(-1)
    ends = list(zip(branches.tolist(), sides.tolist(), strict=True))
    return ends, points, outward.reshape(-1, 2), near


#: Side of the tiles `thin` works in: a tile and its margin stay in the CPU's cache.
THIN_TILE = 1024
#: Strokes no thicker than this many pixels either side of their middle let `thin` work in
#: tiles; a mask with thicker ink is thinned whole.
THIN_MAX_HALF_WIDTH = 7
#: Margin around each tile. Thinning removes one layer of a stroke per iteration and each
#: iteration reads two pixels further, so a stroke of half-width w settles within about
#: 2 (w + 2) pixels; the margin is twice that.
THIN_MARGIN = 4 * (THIN_MAX_HALF_WIDTH + 2)


def thin(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """skimage's skeletonize of `mask`, the same pixels, computed tile by tile.

    A whole-sheet pass streams the image through memory once per thinning iteration; a
    tile with its margin stays in cache, which is what makes large sheets cost in proportion
    to their pixels. Thinning looks only at nearby pixels, so a tile's middle comes out as it
    would from the whole image when the margin exceeds how far the iterations reach; ink too
    thick for that bound (found by one erosion) is thinned whole.
    """
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    # Ink deeper than the bound inside a stroke survives this erosion.
    size = 2 * THIN_MAX_HALF_WIDTH + 1
    deep = cv2.erode(mask.view(np.uint8), np.ones((size, size), np.uint8))
    if max(mask.shape) <= THIN_TILE or cv2.countNonZero(deep) > 0:
        whole: NDArray[np.bool_] = skeletonize(mask)  # type: ignore[no-untyped-call]
        return whole
    height, width = mask.shape
    out = np.zeros_like(mask)
    for top in range(0, height, THIN_TILE):
        for left in range(0, width, THIN_TILE):
            bottom, right = min(top + THIN_TILE, height), min(left + THIN_TILE, width)
            y0, x0 = max(top - THIN_MARGIN, 0), max(left - THIN_MARGIN, 0)
            y1, x1 = min(bottom + THIN_MARGIN, height), min(right + THIN_MARGIN, width)
            window = mask[y0:y1, x0:x1]
            if not window.any():
                continue
            thinned = skeletonize(window)  # type: ignore[no-untyped-call]
            out[top:bottom, left:right] = thinned[top - y0 : bottom - y0, left - x0 : right - x0]
    return out


def skeletonize_simple(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Thinning only, for a mask a person has corrected."""
    return thin(mask)


def skeletonize_pipes(
    pipe_mask: NDArray[np.bool_],
    node_mask: NDArray[np.bool_],
    *,
    options: SkeletonOptions | None = None,
) -> NDArray[np.bool_]:
    """Skeleton of the pipes outside symbol boxes, cleaned for the topology.

    Parameters
    ----------
    pipe_mask
        (H, W) bool pipe ink.
    node_mask
        (H, W) bool symbol areas; pipes end where they begin.
    options
        Distances of the cleanup.

    Returns
    -------
    (H, W) bool one-pixel skeleton: dash spaces and scan breaks up to `max_break` px bridged,
    spurs shorter than `min_spur` pruned, strokes reaching no symbol and spanning less than
    `min_stroke` removed.
    """
    opt = options or SkeletonOptions()
    skeleton = thin(pipe_mask & ~node_mask)
    if not skeleton.any():
        return skeleton
    size = 2 * opt.attach_distance + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    near_symbol = cv2.dilate(node_mask.astype(np.uint8), kernel).astype(bool)
    graph = skeleton_graph(skeleton)
    ends, points, outward, near = free_ends(graph, near_symbol, opt.direction_length)
    canvas = skeleton.astype(np.uint8)
    _prune_spurs(graph, [e for e, n in zip(ends, near, strict=True) if not n], canvas, opt.min_spur)
    branches = [b for b, _side in ends]
    bridges = _breaks_to_bridge(points, outward, branches, skeleton | node_mask, opt)
    joined = [(_end_pixel(graph, ends[i]), _end_pixel(graph, ends[j])) for i, j in bridges]
    short = _short_strokes(graph, joined, near_symbol, opt.min_stroke)
    rc = graph.coords[short].astype(np.intp)
    canvas[rc[:, 0], rc[:, 1]] = 0
    keep = np.ones(graph.coords.shape[0], dtype=bool)
    keep[short] = False
    for (i, j), (a, _b) in zip(bridges, joined, strict=True):
        if keep[a]:
            p, q = points[i], points[j]
            cv2.line(
                canvas, (round(p[0]), round(p[1])), (round(q[0]), round(q[1])), 1, 1, cv2.LINE_8
            )
    out: NDArray[np.bool_] = canvas > 0
    return out


def _end_pixel(graph: SkeletonGraph, end: tuple[int, int]) -> int:
    path = graph.paths[end[0]]
    return int(path[0] if end[1] == 0 else path[-1])


def _prune_spurs(
    graph: SkeletonGraph, ends: list[tuple[int, int]], canvas: NDArray[np.uint8], min_spur: float
) -> None:
    """Clear short branches from a branch point to a free end (keeping the branch point)."""
    for b, side in ends:
        path = graph.paths[b]
        other = int(path[-1] if side == 0 else path[0])
        if graph.degrees[other] < 3 or graph.lengths[b] >= min_spur:
            continue
        spur = path[:-1] if side == 0 else path[1:]
        rc = graph.coords[spur].astype(np.intp)
        canvas[rc[:, 0], rc[:, 1]] = 0


def _breaks_to_bridge(
    points: NDArray[np.float64],
    outward: NDArray[np.float64],
    branches: list[int],
    blocked: NDArray[np.bool_],
    opt: SkeletonOptions,
) -> list[tuple[int, int]]:
    """Free ends that face each other across a short space with nothing in between.

    `blocked` is the skeleton and the symbol areas: a space across a line is a gap bridge and
    a space across a symbol is the symbol, neither is a break.
    """
    used: set[int] = set()
    pairs = []
    facing = facing_pairs(points, outward, opt.max_break, opt.collinear_offset)
    close: list[tuple[float, int, int]] = []
    if len(points) >= 2:
        near = cKDTree(points).query_pairs(opt.max_corner_break, output_type="ndarray")
        close = sorted(
            (float(np.linalg.norm(points[i] - points[j])), int(i), int(j))
            for i, j in near
            if branches[i] != branches[j]
        )
    for _d, i, j in [*facing, *close]:
        if i in used or j in used or line_between(points[i], points[j], blocked):
            continue
        pairs.append((i, j))
        used.update((i, j))
    return pairs


def _short_strokes(
    graph: SkeletonGraph,
    joined: list[tuple[int, int]],
    near_symbol: NDArray[np.bool_],
    min_stroke: int,
) -> NDArray[np.int64]:
    """Pixels of strokes (bridged breaks counted as joined) shorter than `min_stroke`."""
    n = graph.coords.shape[0]
    links = [np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in (graph.links, joined) if len(p)]
    if not links:
        return np.zeros(0, dtype=np.int64)
    pairs = np.concatenate(links)
    adjacency = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    count, label = connected_components(adjacency, directed=False)
    rows, cols = graph.coords[:, 0], graph.coords[:, 1]
    # Per-stroke extents with one sort and reduceat (ufunc.at is slow on this many pixels).
    order = np.argsort(label, kind="stable")
    starts = np.flatnonzero(np.diff(np.concatenate([[-1], label[order]])))
    extent = np.zeros(count)
    for values in (rows[order], cols[order]):
        spread = np.maximum.reduceat(values, starts) - np.minimum.reduceat(values, starts) + 1
        extent = np.maximum(extent, spread)
    touches = np.zeros(count, dtype=bool)
    touches[label[near_symbol[rows.astype(np.intp), cols.astype(np.intp)]]] = True
    short = (extent < min_stroke) & ~touches
    return np.flatnonzero(short[label]).astype(np.int64)
