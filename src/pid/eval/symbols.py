"""Symbol detection metrics with pycocotools' COCOeval.

Several sheets are scored together as one COCO dataset, one image per sheet. Categories are
matched by name through one shared name -> id table built here, never by the files' own ids.
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pid.core.formats.boxes import BoxSet
from pid.eval.counts import Counts, safe_ratio

#: Detections per image and class that COCOeval keeps; sheets hold hundreds of symbols, so the
#: last threshold is raised to the number of detections when that is larger.
MAX_DETS = (1, 100, 10_000)

#: COCOeval divides by ``tp + fp + eps``, so a perfect curve reads 0.9999999999999998; APs are
#: rounded to this many decimals so that perfect and hand-computed scores compare exactly.
AP_DECIMALS = 12

LabelMap = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class ClassScore:
    """Scores of one class: APs (None when the class has no true instance) and counts at 0.5."""

    ap50: float | None
    ap50_95: float | None
    counts: Counts

    def to_dict(self) -> dict[str, Any]:
        return {"ap50": self.ap50, "ap50_95": self.ap50_95, **self.counts.to_dict()}


@dataclass(frozen=True, slots=True)
class SymbolScore:
    """Detection scores of one sheet or a pooled set of sheets.

    Attributes
    ----------
    map50, map50_95 : float
        Mean over classes with true instances of the AP at IoU 0.5 and averaged over IoU
        0.5:0.05:0.95 (COCO's 101-point interpolated precision).
    counts : Counts
        Matches at IoU 0.5 over all classes, every detection counted (no score threshold).
    per_class : dict
        Class name -> ClassScore.
    """

    map50: float
    map50_95: float
    counts: Counts
    per_class: dict[str, ClassScore] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "map50": self.map50,
            "map50_95": self.map50_95,
            **self.counts.to_dict(),
            "per_class": {name: score.to_dict() for name, score in self.per_class.items()},
        }


def score_symbols(
    sheets: Sequence[tuple[BoxSet | None, BoxSet]], *, label_map: LabelMap | None = None
) -> SymbolScore:
    """Score predicted boxes against true boxes with COCOeval.

    Parameters
    ----------
    sheets : sequence of (prediction, truth)
        One pair per sheet; a prediction of None means no detections on that sheet.
    label_map : callable, optional
        Applied to every category name on both sides before matching, e.g.
        `pid.core.classes.pid2graph_label` to compare in PID2Graph's label space.

    Returns
    -------
    SymbolScore
        mAP@0.5, mAP@0.5:0.95, and precision / recall at IoU 0.5, overall and per class.
    """
    rename = label_map or (lambda name: name)
    names = sorted(
        {rename(b.category) for pred, truth in sheets for s in (pred, truth) if s for b in s.boxes}
    )
    if not names:  # no box on either side: COCOeval has nothing to accumulate
        return SymbolScore(map50=1.0, map50_95=1.0, counts=Counts())
    cat_ids = {name: i + 1 for i, name in enumerate(names)}
    gt = _coco([truth for _, truth in sheets], cat_ids, rename)
    dt = _coco([pred for pred, _ in sheets], cat_ids, rename)
    evaluator = _run_cocoeval(gt, dt, n_dets=len(dt.anns))
    return _symbol_score(evaluator, names)


def _coco(sets: Sequence[BoxSet | None], cat_ids: dict[str, int], rename: LabelMap) -> Any:
    annotations: list[dict[str, Any]] = []
    for image_id, box_set in enumerate(sets, start=1):
        for box in box_set.boxes if box_set else ():
            x, y, w, h = box.bbox
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cat_ids[rename(box.category)],
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "score": box.score,
                }
            )
    coco = COCO()
    coco.dataset = {
        "images": [{"id": i} for i in range(1, len(sets) + 1)],
        "categories": [{"id": cid, "name": name} for name, cid in cat_ids.items()],
        "annotations": annotations,
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress by print()
        coco.createIndex()
    return coco


def _run_cocoeval(gt: Any, dt: Any, n_dets: int) -> Any:
    evaluator = COCOeval(gt, dt, iouType="bbox")
    evaluator.params.maxDets = [*MAX_DETS[:-1], max(MAX_DETS[-1], n_dets)]
    evaluator.params.areaRng = [[0.0, float("inf")]]
    evaluator.params.areaRngLbl = ["all"]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def _symbol_score(evaluator: Any, names: list[str]) -> SymbolScore:
    counts = _counts_at_iou50(evaluator, names)
    precision = evaluator.eval["precision"]  # [iou, recall, class, area, maxDets]
    per_class: dict[str, ClassScore] = {}
    for k, name in enumerate(names):
        curve = precision[:, :, k, 0, -1]
        has_truth = counts[name].n_true > 0
        per_class[name] = ClassScore(
            ap50=_ap(curve[0]) if has_truth else None,
            ap50_95=_ap(curve) if has_truth else None,
            counts=counts[name],
        )
    total = Counts.total(counts.values())
    scored = [s for s in per_class.values() if s.ap50 is not None and s.ap50_95 is not None]
    if scored:
        map50 = _round(float(np.mean([s.ap50 for s in scored])))
        map50_95 = _round(float(np.mean([s.ap50_95 for s in scored])))
    else:  # no true symbol anywhere: perfect only when nothing was detected either
        map50 = map50_95 = safe_ratio(0, 0, other=total.n_pred)
    return SymbolScore(map50=map50, map50_95=map50_95, counts=total, per_class=per_class)


def _ap(curve: np.ndarray[Any, Any]) -> float:
    valid = curve[curve > -1]
    return _round(float(valid.mean())) if valid.size else 0.0


def _round(value: float) -> float:
    return round(value, AP_DECIMALS)


def _counts_at_iou50(evaluator: Any, names: list[str]) -> dict[str, Counts]:
    """Count matches at IoU index 0 (0.5) from COCOeval's per-image results."""
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for result in evaluator.evalImgs:
        if result is None:
            continue
        name = names[result["category_id"] - 1]
        kept = ~np.asarray(result["dtIgnore"][0], dtype=bool)
        matched = np.asarray(result["dtMatches"][0]) > 0
        tally = tallies[name]
        tally[0] += int(np.count_nonzero(matched & kept))
        tally[1] += int(np.count_nonzero(kept))
        tally[2] += int(np.count_nonzero(np.asarray(result["gtIgnore"]) == 0))
    return {name: Counts(*tallies[name]) for name in names}
