"""Symbol detection metrics (COCOeval) of pid.eval.symbols."""

from __future__ import annotations

from pid.core.classes import pid2graph_label
from pid.core.formats.boxes import Box, BoxSet
from pid.eval.symbols import score_symbols

TRUTH = BoxSet(
    (
        Box("gate_valve", (20.0, 40.0, 20.0, 20.0)),
        Box("vessel", (150.0, 20.0, 40.0, 60.0)),
        Box("centrifugal_pump", (85.0, 110.0, 30.0, 30.0)),
        Box("instrument", (20.0, 105.0, 30.0, 20.0)),
    )
)


def test_perfect_detections() -> None:
    score = score_symbols([(TRUTH, TRUTH)])

    assert score.map50 == 1.0 and score.map50_95 == 1.0
    assert (score.counts.tp, score.counts.n_pred, score.counts.n_true) == (4, 4, 4)
    assert all(c.ap50 == 1.0 and c.counts.f1 == 1.0 for c in score.per_class.values())


def test_shifted_box_lowers_only_the_strict_ious() -> None:
    # 20x20 box shifted 2 px: IoU = 360 / 440 = 0.818 -> matched at 0.50..0.80, not 0.85..0.95
    shifted = BoxSet((Box("gate_valve", (22.0, 40.0, 20.0, 20.0)), *TRUTH.boxes[1:]))

    score = score_symbols([(shifted, TRUTH)])

    gate = score.per_class["gate_valve"]
    assert gate.ap50 == 1.0 and gate.ap50_95 == 0.7  # 7 of 10 thresholds
    assert score.map50 == 1.0 and score.map50_95 == (0.7 + 3) / 4


def test_low_scored_false_positive_costs_precision_not_ap() -> None:
    extra = Box("vessel", (0.0, 0.0, 10.0, 10.0), score=0.1)
    pred = BoxSet((*TRUTH.boxes, extra))

    score = score_symbols([(pred, TRUTH)])

    assert score.counts.precision == 4 / 5 and score.counts.recall == 1.0
    assert score.per_class["vessel"].counts.n_pred == 2
    assert score.map50 == 1.0


def test_high_scored_false_positive_costs_ap() -> None:
    extra = Box("vessel", (0.0, 0.0, 10.0, 10.0), score=1.0)
    truth_first = BoxSet(tuple(Box(b.category, b.bbox, 0.9) for b in TRUTH.boxes))
    pred = BoxSet((*truth_first.boxes, extra))

    score = score_symbols([(pred, TRUTH)])

    # vessel: the false positive ranks first, so precision is 1/2 at every recall level
    assert score.per_class["vessel"].ap50 == 0.5
    assert score.map50 == (0.5 + 3) / 4


def test_class_only_in_predictions_is_not_averaged() -> None:
    pred = BoxSet((*TRUTH.boxes, Box("tank", (0.0, 0.0, 10.0, 10.0))))

    score = score_symbols([(pred, TRUTH)])

    assert score.per_class["tank"].ap50 is None
    assert score.per_class["tank"].counts.n_pred == 1
    assert score.map50 == 1.0 and score.counts.precision == 4 / 5


def test_classes_compared_in_pid2graph_label_space() -> None:
    pred = BoxSet((Box("globe_valve", TRUTH.boxes[0].bbox), *TRUTH.boxes[1:]))

    by_class = score_symbols([(pred, TRUTH)])
    by_label = score_symbols([(pred, TRUTH)], label_map=pid2graph_label)

    assert by_class.counts.recall == 3 / 4 and by_class.map50 == 0.75
    assert by_label.counts.recall == 1.0 and by_label.map50 == 1.0
    assert set(by_label.per_class) == {"valve", "tank", "pump", "instrumentation"}


def test_sheets_are_separate_images() -> None:
    a = BoxSet((Box("gate_valve", (0.0, 0.0, 10.0, 10.0)),))
    b = BoxSet((Box("gate_valve", (50.0, 50.0, 10.0, 10.0)),))

    swapped = score_symbols([(b, a), (a, b)])  # each prediction sits on the other sheet's box
    right = score_symbols([(a, a), (b, b)])

    assert swapped.counts.tp == 0 and swapped.map50 == 0.0
    assert right.counts.tp == 2 and right.map50 == 1.0


def test_missing_predictions_score_zero() -> None:
    score = score_symbols([(None, TRUTH)])

    assert score.map50 == 0.0 and score.counts.recall == 0.0 and score.counts.precision == 0.0


def test_hundreds_of_symbols_per_sheet_are_all_counted() -> None:
    grid = BoxSet(
        tuple(
            Box("instrument", (10.0 * i, 10.0 * j, 8.0, 8.0), score=0.5 + i / 100)
            for i in range(30)
            for j in range(20)
        )
    )

    score = score_symbols([(grid, grid)])

    assert score.counts.tp == 600 and score.map50 == 1.0


def test_nothing_to_find_and_nothing_found_is_perfect() -> None:
    empty = BoxSet(())

    assert score_symbols([(empty, empty)]).map50 == 1.0
    found = score_symbols([(TRUTH, empty)])
    assert found.map50 == 0.0 and found.counts.precision == 0.0
