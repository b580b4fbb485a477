"""One-to-one matching of predictions to truth (Hungarian assignment)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from pycocotools import mask as coco_mask
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

Pairs = list[tuple[int, int]]


def assign(cost: NDArray[np.float64], allowed: NDArray[np.bool_]) -> Pairs:
    """Return the allowed (row, column) pairs of a minimum-cost one-to-one assignment.

    Parameters
    ----------
    cost : ndarray of float64, shape (n_pred, n_true)
        Cost of each pairing; only its values on `allowed` cells matter.
    allowed : ndarray of bool, shape (n_pred, n_true)
        Pairings that may be matched.

    Returns
    -------
    list of (int, int)
        Matched (prediction index, truth index) pairs, sorted by prediction index.

    Notes
    -----
    Forbidden cells get a penalty larger than any sum of allowed costs, so the assignment first
    maximises the number of allowed pairs, then minimises their total cost; forbidden pairs the
    solver had to make are dropped afterwards.
    """
    if cost.size == 0 or not allowed.any():
        return []
    spread = float(np.abs(cost[allowed]).max())
    penalty = (spread + 1.0) * (min(cost.shape) + 1)
    rows, cols = linear_sum_assignment(np.where(allowed, cost, penalty))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if allowed[r, c]]


def match_points(
    pred: Sequence[tuple[float, float]], truth: Sequence[tuple[float, float]], radius: float
) -> Pairs:
    """Match points one-to-one within `radius` pixels, minimising the summed distance.

    Returns
    -------
    list of (int, int)
        (prediction index, truth index) pairs, each at distance <= `radius`.
    """
    if not pred or not truth:
        return []
    dist = cdist(np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64))
    return assign(dist, dist <= radius)


def box_iou(
    pred: Sequence[Sequence[float]], truth: Sequence[Sequence[float]]
) -> NDArray[np.float64]:
    """Return the IoU matrix, shape (n_pred, n_true), of boxes given as (x, y, w, h) pixels."""
    if not pred or not truth:
        return np.zeros((len(pred), len(truth)), dtype=np.float64)
    iou = coco_mask.iou(
        np.asarray(pred, dtype=np.float64),
        np.asarray(truth, dtype=np.float64),
        np.zeros(len(truth), dtype=np.uint8),
    )
    return np.asarray(iou, dtype=np.float64).reshape(len(pred), len(truth))


def match_boxes(
    pred: Sequence[Sequence[float]],
    truth: Sequence[Sequence[float]],
    same_class: NDArray[np.bool_],
    min_iou: float = 0.5,
) -> Pairs:
    """Match boxes one-to-one by Hungarian assignment on IoU.

    Parameters
    ----------
    pred, truth : sequences of (x, y, w, h)
        Boxes in pixels.
    same_class : ndarray of bool, shape (n_pred, n_true)
        Whether each pair has the same class (in whatever label space the caller compares).
    min_iou : float
        Smallest IoU that counts as a match.

    Returns
    -------
    list of (int, int)
        (prediction index, truth index) pairs with IoU >= `min_iou` and the same class,
        maximising the number of pairs, then their summed IoU.
    """
    iou = box_iou(pred, truth)
    if iou.size == 0:
        return []
    return assign(-iou, (iou >= min_iou) & same_class)
