"""Pipe mask metrics of pid.eval.masks."""

from __future__ import annotations

import numpy as np
import pytest

from pid.core.errors import PidInputError
from pid.eval.masks import MaskCounts, mask_counts


def line(offset: int = 0) -> np.ndarray:
    """A horizontal pipe 3 px thick in a 60x60 mask: rows 29..31 (+ offset), columns 10..50."""
    mask = np.zeros((60, 60), dtype=bool)
    mask[29 + offset : 32 + offset, 10:51] = True
    return mask


def test_identical_masks_score_one() -> None:
    counts = mask_counts(line(), line())

    assert (counts.iou, counts.f1, counts.tolerant_f1) == (1.0, 1.0, 1.0)
    assert counts.pred_skeleton > 30


def test_one_pixel_shift_keeps_tolerant_f1() -> None:
    counts = mask_counts(line(1), line())

    assert counts.iou == 2 / 4  # 2 of the 4 rows covered by either mask are shared
    assert counts.f1 == 2 * 82 / (123 + 123)
    assert counts.tolerant_precision == 1.0 and counts.tolerant_recall == 1.0
    assert counts.tolerant_f1 == 1.0


def test_shift_beyond_tolerance_fails_tolerant_f1() -> None:
    counts = mask_counts(line(4), line())  # skeletons 4 px apart, masks 2 px apart

    assert counts.iou == 0.0
    assert counts.tolerant_f1 == 0.0
    assert mask_counts(line(4), line(), tolerance=4.0).tolerant_f1 == 1.0


def test_spurious_branch_costs_tolerant_precision_only() -> None:
    pred = line()
    pred[31:59, 29:32] = True  # a vertical branch the truth does not have

    counts = mask_counts(pred, line())

    assert counts.tolerant_recall == 1.0
    assert 0.4 < counts.tolerant_precision < 0.8


def test_empty_masks() -> None:
    empty = np.zeros((20, 20), dtype=bool)
    both_empty = mask_counts(empty, empty)
    missed = mask_counts(empty, line()[20:40, :20])  # a pipe stub, none predicted

    assert (both_empty.iou, both_empty.f1, both_empty.tolerant_f1) == (1.0, 1.0, 1.0)
    assert (missed.iou, missed.f1, missed.tolerant_precision, missed.tolerant_f1) == (
        0.0,
        0.0,
        0.0,
        0.0,
    )


def test_counts_pool_as_sums() -> None:
    a = mask_counts(line(), line())
    b = mask_counts(np.zeros((60, 60), dtype=bool), line())

    pooled = a + b

    assert isinstance(pooled, MaskCounts)
    assert pooled.true_pixels == 2 * a.true_pixels and pooled.intersection == a.intersection
    assert pooled.iou == 0.5 and pooled.tolerant_recall == 0.5


def test_size_mismatch_names_both_sizes() -> None:
    with pytest.raises(PidInputError, match=r"prediction 60x50, truth 60x60"):
        mask_counts(np.zeros((50, 60), dtype=bool), line())
