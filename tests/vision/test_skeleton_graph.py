"""The skeleton graph's branches and the directions of their ends, on drawn skeletons."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from skimage.morphology import skeletonize

from pid.synth.sheet import generate_sheet
from pid.vision.nodes import node_mask_from_boxes
from pid.vision.pipe_mask import classical_pipe_mask
from pid.vision.skeleton import (
    THIN_MAX_HALF_WIDTH,
    THIN_TILE,
    end_directions,
    free_ends,
    skeleton_graph,
    thin,
)


def _reference_direction(xy: NDArray[np.float64], length: float) -> NDArray[np.float64]:
    """Walk one branch's points: the first point at least `length` px along, from the start."""
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    k = int(np.searchsorted(along, min(length, along[-1])))
    k = max(1, min(k, len(xy) - 1))
    v = xy[k] - xy[0]
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else np.zeros(2)


def _drawn_skeleton(seed: int) -> NDArray[np.bool_]:
    rng = np.random.default_rng(seed)
    canvas = np.zeros((400, 500), np.uint8)
    for _ in range(25):
        a = tuple(int(v) for v in rng.integers(0, (500, 400)))
        b = tuple(int(v) for v in rng.integers(0, (500, 400)))
        cv2.line(canvas, a, b, 1, int(rng.integers(1, 4)))
    for _ in range(5):
        centre = tuple(int(v) for v in rng.integers(40, (460, 360)))
        cv2.circle(canvas, centre, int(rng.integers(5, 30)), 1, 2)
    skeleton: NDArray[np.bool_] = skeletonize(canvas.astype(bool))
    return skeleton


def test_end_directions_match_a_walk_along_each_branch_from_either_end() -> None:
    for seed in range(3):
        graph = skeleton_graph(_drawn_skeleton(seed))
        n = len(graph.paths)
        assert n > 50
        branches = np.repeat(np.arange(n, dtype=np.int64), 2)
        sides = np.tile(np.array([0, 1], np.int64), n)
        for length in (1.0, 8.0, 24.0, 500.0):
            found = end_directions(graph, branches, sides, length)
            expected = [
                _reference_direction(graph.path_xy(b)[:: 1 if s == 0 else -1], length)
                for b, s in zip(branches.tolist(), sides.tolist(), strict=True)
            ]
            np.testing.assert_allclose(found, np.asarray(expected), atol=1e-9)


def test_branch_lengths_are_the_walked_length_of_each_path() -> None:
    graph = skeleton_graph(_drawn_skeleton(7))
    for b, path in enumerate(graph.paths):
        xy = graph.coords[path]
        assert graph.lengths[b] == pytest.approx(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum())


def test_free_ends_point_outward_at_degree_one_pixels_in_branch_order() -> None:
    skeleton = np.zeros((60, 120), bool)
    skeleton[30, 10:50] = True  # a free line from x=10 to 49
    skeleton[30, 70:110] = True  # another, x=70 to 109
    near = np.zeros_like(skeleton)
    near[25:36, 100:115] = True  # the right end of the second line is near a symbol

    ends, points, outward, near_symbol = free_ends(skeleton_graph(skeleton), near, 8.0)

    assert len(ends) == 4 and [side for _, side in ends] == [0, 1, 0, 1]
    assert sorted(map(tuple, points.tolist())) == [(10, 30), (49, 30), (70, 30), (109, 30)]
    for (x, _), direction in zip(points.tolist(), outward.tolist(), strict=True):
        # Outward: away from the line's other end.
        assert direction == ([-1.0, 0.0] if x in (10, 70) else [1.0, 0.0])
    assert near_symbol.tolist() == [x == 109 for x, _ in points.tolist()]


def test_an_empty_skeleton_has_no_branches_and_no_ends() -> None:
    graph = skeleton_graph(np.zeros((20, 30), bool))
    assert graph.paths == [] and len(graph.lengths) == 0
    assert end_directions(graph, np.zeros(0, np.int64), np.zeros(0, np.int64), 8.0).shape == (0, 2)
    ends, points, outward, near = free_ends(graph, np.zeros((20, 30), bool), 8.0)
    assert ends == [] and points.shape == (0, 2) and outward.shape == (0, 2) and len(near) == 0


def _strokes(shape: tuple[int, int], widths: tuple[int, int], seed: int) -> NDArray[np.bool_]:
    """Random lines, arcs and dots over a sheet larger than one thinning tile."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros(shape, np.uint8)
    height, width = shape
    for _ in range(60):
        a = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        b = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(canvas, a, b, 1, int(rng.integers(*widths)))
    for _ in range(40):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(canvas, centre, int(rng.integers(12, 40)), 1, int(rng.integers(1, 4)))
    mask: NDArray[np.bool_] = canvas.astype(bool)
    return mask


def _deeper_than_tiles_allow(mask: NDArray[np.bool_]) -> bool:
    size = 2 * THIN_MAX_HALF_WIDTH + 1
    return bool(cv2.erode(mask.astype(np.uint8), np.ones((size, size), np.uint8)).any())


def test_thinning_in_tiles_gives_exactly_the_whole_image_skeleton() -> None:
    for seed in range(2):
        sheet = generate_sheet(seed, 0, width=2 * THIN_TILE + 300, height=2 * THIN_TILE + 77)
        boxes = [d["bbox"] for _, d in sheet.graph.nodes(data=True) if d["kind"] == "symbol"]
        node_mask = node_mask_from_boxes(boxes, sheet.image.shape, pad=2)
        mask = classical_pipe_mask(sheet.image, node_mask) & ~node_mask
        assert not _deeper_than_tiles_allow(mask)  # so the tiles are what is tested
        np.testing.assert_array_equal(thin(mask), skeletonize(mask))
    strokes = _strokes((THIN_TILE + 700, THIN_TILE + 900), (1, 4), 3)
    assert not _deeper_than_tiles_allow(strokes)
    np.testing.assert_array_equal(thin(strokes), skeletonize(strokes))


def test_ink_too_thick_for_tiles_is_thinned_whole_with_the_same_result() -> None:
    mask = _strokes((THIN_TILE + 500, THIN_TILE + 200), (1, 6), 5)
    cv2.circle(mask.view(np.uint8), (THIN_TILE, THIN_TILE // 2), 60, 1, -1)  # a wide blob
    assert _deeper_than_tiles_allow(mask)
    np.testing.assert_array_equal(thin(mask), skeletonize(mask))
    assert not thin(np.zeros((THIN_TILE * 2, 10), bool)).any()
