"""The generator's ground truth agrees with its own image."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import skeletonize

from pid.core.classes import CLASS_NAMES
from pid.synth.params import UNIT_AREA
from pid.synth.sheet import Sheet, generate_sheet

#: Frozen floors of the issue, deliberately not read from the generator's parameters.
MEETING_POINTS_PER_UNIT = 40
PER_STYLE_PER_UNIT = 5
STYLES = ("t_dot", "t_plain", "cross_dot", "cross_plain", "hop", "gap")


def _ink(sheet: Sheet) -> np.ndarray:
    return sheet.image < 128


def _samples(polyline: list[list[float]], step: float = 1.0) -> np.ndarray:
    pts = np.asarray(polyline, dtype=np.float64)
    out = [pts[0]]
    for a, b in itertools.pairwise(pts):
        n = max(1, math.ceil(float(np.linalg.norm(b - a)) / step))
        t = np.linspace(0.0, 1.0, n + 1)[1:, None]
        out.extend(a + (b - a) * t)
    return np.asarray(out)


def test_every_pipe_mask_pixel_is_ink(clean_sheet: Sheet) -> None:
    mask = clean_sheet.pipe_mask > 0
    assert mask.sum() > 10_000
    assert bool(np.all(_ink(clean_sheet)[mask]))


def test_pipe_mask_holds_no_text_or_symbol(clean_sheet: Sheet) -> None:
    mask = clean_sheet.pipe_mask > 0
    for item in clean_sheet.text_items:
        if item["kind"] == "border":
            continue
        x, y, w, h = (round(v) for v in item["bbox"])
        assert not mask[y : y + h, x : x + w].any(), item
    assert not mask[clean_sheet.node_mask > 0].any()


def test_meeting_points_lie_on_the_mask_skeleton(clean_sheet: Sheet) -> None:
    skeleton = skeletonize(clean_sheet.pipe_mask > 0)
    distance = ndimage.distance_transform_edt(~skeleton)
    far = []
    for item in clean_sheet.junctions:
        x, y = item["point"]
        if distance[round(y), round(x)] > 2.0:
            far.append((item["style"], item["point"], float(distance[round(y), round(x)])))
    assert not far


def test_every_edge_runs_along_ink(clean_sheet: Sheet) -> None:
    ink = ndimage.binary_dilation(_ink(clean_sheet), iterations=1)
    gaps = np.asarray([j["point"] for j in clean_sheet.junctions if j["style"] == "gap"])
    assert len(gaps) > 0
    for u, v, data in clean_sheet.graph.edges(data=True):
        pts = _samples(data["polyline"])
        on_ink = ink[np.round(pts[:, 1]).astype(int), np.round(pts[:, 0]).astype(int)]
        if data["line_type"] == "dashed":
            assert on_ink.mean() >= 0.5, (u, v)
            continue
        # A gap bridge leaves a hole of at most 2 x 12 px plus the crossing line in the run.
        near_gap = np.min(np.linalg.norm(pts[:, None, :] - gaps[None], axis=2), axis=1) <= 16
        assert bool(np.all(on_ink | near_gap)), (u, v, pts[~(on_ink | near_gap)][:3])


def test_pipes_at_a_bridge_are_not_joined(clean_sheet: Sheet) -> None:
    graph = clean_sheet.graph
    node_points = np.asarray(
        [d["point"] for _, d in graph.nodes(data=True) if d["kind"] != "symbol"]
    )
    bridges = [j for j in clean_sheet.junctions if j["kind"] == "bridge"]
    assert len(bridges) >= 3
    for bridge in bridges:
        at = np.asarray(bridge["point"])
        assert np.min(np.linalg.norm(node_points - at, axis=1)) > 10
        passing = []
        for u, v, data in graph.edges(data=True):
            pts = _samples(data["polyline"], 0.5)
            if np.min(np.linalg.norm(pts - at, axis=1)) <= 1.0:
                passing.append((u, v))
        # The run under the bridge passes straight through; it is one edge, not two ending here.
        assert len(passing) >= 1
        for u, v in passing:
            for end in (u, v):
                d = graph.nodes[end]
                if d["kind"] != "symbol":
                    assert np.linalg.norm(np.asarray(d["point"]) - at) > 10


def test_junctions_are_graph_nodes_of_the_right_degree(clean_sheet: Sheet) -> None:
    graph = clean_sheet.graph
    by_point = {tuple(d["point"]): n for n, d in graph.nodes(data=True) if d["kind"] == "junction"}
    joined = [j for j in clean_sheet.junctions if j["kind"] == "junction"]
    assert len(joined) == len(by_point)
    for item in joined:
        node = by_point[tuple(item["point"])]
        assert graph.degree(node) == item["degree"] == (3 if item["style"].startswith("t_") else 4)


def test_free_ends_are_endpoints_of_degree_one(clean_sheet: Sheet) -> None:
    ends = [n for n, d in clean_sheet.graph.nodes(data=True) if d["kind"] == "endpoint"]
    assert ends
    assert all(clean_sheet.graph.degree(n) == 1 for n in ends)


def test_every_symbol_is_connected_and_inline_ones_split_runs(clean_sheet: Sheet) -> None:
    graph = clean_sheet.graph
    inline = {
        "gate_valve",
        "globe_valve",
        "ball_valve",
        "check_valve",
        "butterfly_valve",
        "reducer",
        "spectacle_blind",
        "flow_arrow",
    }
    for node, data in graph.nodes(data=True):
        if data["kind"] != "symbol":
            continue
        if data["class"] in inline:
            solid = [e for e in graph.edges(node, data=True) if e[2]["line_type"] == "solid"]
            assert len(solid) == 2, (node, data["class"])


@pytest.mark.parametrize("size", [(2000, 1400), (1000, 700)])
def test_asserted_densities_hold_on_20_seeds(size: tuple[int, int]) -> None:
    width, height = size
    units = width * height / UNIT_AREA
    need_total = math.ceil(MEETING_POINTS_PER_UNIT * units)
    need_each = math.ceil(PER_STYLE_PER_UNIT * units)
    for seed in range(20):
        sheet = generate_sheet(1000 + seed, 0, width=width, height=height)
        styles = Counter(j["style"] for j in sheet.junctions)
        assert sum(styles.values()) >= need_total, (seed, styles)
        for style in STYLES:
            assert styles[style] >= need_each, (seed, style, styles)


def test_gap_bridges_are_wider_than_scan_breaks(clean_sheet: Sheet) -> None:
    """Each side of a gap bridge shows 4 to 12 px of paper between line end and crossing line."""
    ink = _ink(clean_sheet)
    for item in clean_sheet.junctions:
        if item["style"] != "gap":
            continue
        x, y = (round(v) for v in item["point"])
        row, col = ink[y, x - 30 : x + 31], ink[y - 30 : y + 31, x]
        # One of the two lines is broken around the point: find the white runs beside the centre.
        runs = []
        for line in (row, col):
            centre = 30
            if line[centre - 14 : centre + 15].all():
                continue
            left = centre
            while line[left]:
                left -= 1
            gap_left = 0
            while not line[left - gap_left]:
                gap_left += 1
            right = centre
            while line[right]:
                right += 1
            gap_right = 0
            while not line[right + gap_right]:
                gap_right += 1
            runs.extend([gap_left, gap_right])
        assert runs, item
        assert all(4 <= r <= 13 for r in runs), (item, runs)


def test_at_least_14_classes_appear(clean_sheet: Sheet) -> None:
    assert len(CLASS_NAMES) >= 14
    seen: Counter[str] = Counter()
    for seed in range(3):
        sheet = generate_sheet(seed, 0, width=4000, height=3000)
        seen.update(d["class"] for _, d in sheet.graph.nodes(data=True) if d["kind"] == "symbol")
    assert set(seen) == set(CLASS_NAMES), set(CLASS_NAMES) - set(seen)


def test_line_widths_and_dashed_signal_lines(clean_sheet: Sheet) -> None:
    widths = Counter(d["width"] for _, _, d in clean_sheet.graph.edges(data=True))
    assert set(widths) <= {1, 2, 3, 4}
    assert len(widths) >= 3
    dashed = [d for _, _, d in clean_sheet.graph.edges(data=True) if d["line_type"] == "dashed"]
    assert dashed
