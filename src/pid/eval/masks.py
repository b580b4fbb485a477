"""Pipe mask scores: pixel IoU and F1, and a thin-structure F1 tolerant to small offsets.

A pipe is a few pixels wide, so a prediction one pixel off loses much of its pixel IoU while
being right for every later stage. The tolerant score compares skeletons against the other
side's mask within a distance (2 px by default), in the spirit of boundary F-scores.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import distance_transform_edt
from skimage.morphology import skeletonize

from pid.core.errors import PidInputError
from pid.eval.counts import f1_score, safe_ratio

#: Distance in pixels within which a skeleton pixel counts as on the other side's mask.
DEFAULT_TOLERANCE_PX = 2.0

BoolMask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class MaskCounts:
    """Pixel counts behind the mask scores; add them to pool several sheets.

    Attributes
    ----------
    intersection, pred_pixels, true_pixels : int
        Pixels set in both masks, in the prediction, in the truth.
    pred_skeleton, pred_skeleton_near : int
        Skeleton pixels of the prediction, and those within the tolerance of a true pixel.
    true_skeleton, true_skeleton_near : int
        Skeleton pixels of the truth, and those within the tolerance of a predicted pixel.
    """

    intersection: int = 0
    pred_pixels: int = 0
    true_pixels: int = 0
    pred_skeleton: int = 0
    pred_skeleton_near: int = 0
    true_skeleton: int = 0
    true_skeleton_near: int = 0

    @property
    def iou(self) -> float:
        union = self.pred_pixels + self.true_pixels - self.intersection
        return safe_ratio(self.intersection, union, other=0)

    @property
    def f1(self) -> float:
        return safe_ratio(2 * self.intersection, self.pred_pixels + self.true_pixels, other=0)

    @property
    def tolerant_precision(self) -> float:
        return safe_ratio(self.pred_skeleton_near, self.pred_skeleton, other=self.true_skeleton)

    @property
    def tolerant_recall(self) -> float:
        return safe_ratio(self.true_skeleton_near, self.true_skeleton, other=self.pred_skeleton)

    @property
    def tolerant_f1(self) -> float:
        return f1_score(self.tolerant_precision, self.tolerant_recall)

    def __add__(self, other: MaskCounts) -> MaskCounts:
        return MaskCounts(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(MaskCounts))
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in fields(MaskCounts)},
            "iou": self.iou,
            "f1": self.f1,
            "tolerant_precision": self.tolerant_precision,
            "tolerant_recall": self.tolerant_recall,
            "tolerant_f1": self.tolerant_f1,
        }


def mask_counts(
    pred: BoolMask, truth: BoolMask, *, tolerance: float = DEFAULT_TOLERANCE_PX
) -> MaskCounts:
    """Count the pixels behind pixel IoU / F1 and the tolerant skeleton F1.

    Parameters
    ----------
    pred, truth : ndarray of bool, shape (height, width)
        Predicted and true pipe masks.
    tolerance : float
        Euclidean distance in pixels within which a skeleton pixel is "near" the other mask.

    Returns
    -------
    MaskCounts
        Counts for one sheet; empty-vs-empty scores 1.0 everywhere.

    Raises
    ------
    PidInputError
        When the two masks differ in size.
    """
    if pred.shape != truth.shape:
        raise PidInputError(
            f"mask sizes differ: prediction {pred.shape[1]}x{pred.shape[0]}, "
            f"truth {truth.shape[1]}x{truth.shape[0]}"
        )
    pred_skeleton = _skeleton(pred)
    true_skeleton = _skeleton(truth)
    return MaskCounts(
        intersection=int(np.count_nonzero(pred & truth)),
        pred_pixels=int(np.count_nonzero(pred)),
        true_pixels=int(np.count_nonzero(truth)),
        pred_skeleton=int(np.count_nonzero(pred_skeleton)),
        pred_skeleton_near=_count_near(pred_skeleton, truth, tolerance),
        true_skeleton=int(np.count_nonzero(true_skeleton)),
        true_skeleton_near=_count_near(true_skeleton, pred, tolerance),
    )


def _skeleton(mask: BoolMask) -> BoolMask:
    return np.asarray(skeletonize(mask), dtype=np.bool_)  # type: ignore[no-untyped-call]


def _count_near(skeleton: BoolMask, target: BoolMask, tolerance: float) -> int:
    """Return how many skeleton pixels lie within `tolerance` of a `target` pixel."""
    if not target.any():
        return 0
    # Distance of every pixel to the nearest target pixel (0 on the target itself).
    distance = distance_transform_edt(~target)
    return int(np.count_nonzero(distance[skeleton] <= tolerance))
