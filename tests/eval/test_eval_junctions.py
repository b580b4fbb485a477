"""Junction / bridge scores and the one-to-one matching of pid.eval."""

from __future__ import annotations

import numpy as np

from pid.core.formats.junctions import JunctionPoint
from pid.eval.junctions import match_radius, score_junctions
from pid.eval.matching import match_boxes, match_points


def pt(x: float, y: float, kind: str = "junction") -> JunctionPoint:
    return JunctionPoint((x, y), kind)


TRUTH = [pt(100, 50), pt(100, 90), pt(70, 50, "bridge")]


def test_perfect_prediction() -> None:
    score = score_junctions(TRUTH, TRUTH, radius=6)

    assert score.accuracy == 1.0 and score.ambiguous_rate == 0.0
    assert score.recall("junction") == 1.0 and score.recall("bridge") == 1.0
    assert (score.n_true, score.n_pred, score.correct) == (3, 3, 3)


def test_every_cell_of_the_confusion_matrix() -> None:
    pred = [
        pt(101, 50, "bridge"),  # junction predicted as bridge
        pt(100, 92, "ambiguous"),  # junction left ambiguous
        pt(10, 10, "junction"),  # spurious
        pt(20, 10, "ambiguous"),  # spurious
    ]
    truth = [*TRUTH, pt(150, 150, "junction")]  # the bridge and this junction are missed

    score = score_junctions(pred, truth, radius=6)

    assert score.confusion == {
        "junction": {"junction": 0, "bridge": 1, "ambiguous": 1, "missed": 1},
        "bridge": {"junction": 0, "bridge": 0, "ambiguous": 0, "missed": 1},
        "spurious": {"junction": 1, "bridge": 0, "ambiguous": 1, "missed": 0},
    }
    assert score.accuracy == 0.0
    assert score.ambiguous_rate == 1 / 4
    assert score.n_pred == 4


def test_flipped_junction() -> None:
    pred = [pt(100, 50), pt(100, 90, "bridge"), pt(70, 50, "bridge")]

    score = score_junctions(pred, TRUTH, radius=6)

    assert score.accuracy == 2 / 3
    assert score.confusion["junction"]["bridge"] == 1
    assert score.recall("junction") == 0.5


def test_hungarian_maximises_matches_where_greedy_would_not() -> None:
    truth = [(0.0, 0.0), (6.0, 0.0)]
    pred = [(3.5, 0.0), (11.0, 0.0)]  # greedy nearest would pair pred 0 with truth 1

    assert match_points(pred, truth, radius=6.0) == [(0, 0), (1, 1)]


def test_matching_radius_is_three_line_widths_at_least_six_px() -> None:
    assert match_radius(1.0) == 6.0 and match_radius(2.0) == 6.0 and match_radius(4.0) == 12.0
    assert score_junctions([pt(106.5, 50)], [pt(100, 50)], radius=match_radius(2)).accuracy == 0
    assert score_junctions([pt(105.5, 50)], [pt(100, 50)], radius=match_radius(2)).accuracy == 1


def test_ambiguous_truth_is_not_scored() -> None:
    truth = [*TRUTH, pt(10, 10, "ambiguous")]
    pred = [*TRUTH, pt(10, 11, "bridge")]

    score = score_junctions(pred, truth, radius=6)

    assert score.accuracy == 1.0 and sum(score.confusion["spurious"].values()) == 0


def test_box_matching_needs_same_class_and_iou() -> None:
    truth = [(0.0, 0.0, 10.0, 10.0), (20.0, 0.0, 10.0, 10.0)]
    pred = [(1.0, 0.0, 10.0, 10.0), (20.0, 0.0, 10.0, 10.0), (0.0, 6.0, 10.0, 10.0)]
    same = np.array([[True, True], [False, False], [True, True]])

    # pred 1 has the wrong class; pred 2 overlaps truth 0 by IoU 0.25 only
    assert match_boxes(pred, truth, same) == [(0, 0)]
