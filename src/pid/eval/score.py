"""Score a predicted sheet folder (or folder of sheets) against the ground truth."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial, reduce
from pathlib import Path
from typing import Literal

import networkx as nx
import numpy as np

from pid.core.artifacts import GRAPH as GRAPH_JSON
from pid.core.artifacts import GRAPHML, JUNCTIONS, ORIGINAL, PIPE_MASK, REGIONS
from pid.core.classes import pid2graph_label
from pid.core.errors import PidInputError
from pid.core.formats.boxes import Box, BoxSet, load_boxes
from pid.core.formats.graph import load_graph
from pid.core.formats.images import image_size, read_mask
from pid.core.formats.junctions import JunctionPoint, load_junctions
from pid.core.formats.regions import Region, load_regions
from pid.eval.graph import score_graph
from pid.eval.junctions import match_radius, score_junctions
from pid.eval.masks import DEFAULT_TOLERANCE_PX, BoolMask, MaskCounts, mask_counts
from pid.eval.pid2graph import LABELS_FROM_PID2GRAPH, check_same_size, load_pid2graph_graphml
from pid.eval.regions import score_leaders, score_regions
from pid.eval.report import EvalReport, Sections, SheetReport
from pid.eval.symbols import LabelMap, score_symbols
from pid.export.graphml import graph_line_width

TRUTH_BOXES = "symbols.coco.json"
#: Predicted boxes: the first of these files that exists (raw detections before reviewed ones).
PRED_BOXES = ("detections.json", "validated_detections.json", "symbols.coco.json")
#: A folder holding any of these is a sheet folder.
SHEET_MARKERS = (GRAPH_JSON, ORIGINAL, GRAPHML)

LabelSpace = Literal["auto", "class", "pid2graph"]


@dataclass(slots=True)
class _Sheet:
    """What one sheet folder holds (None: file absent), and the files that were absent."""

    boxes: BoxSet | None = None
    mask: BoolMask | None = None
    junctions: list[JunctionPoint] | None = None
    graph: nx.MultiGraph | None = None
    regions: list[Region] | None = None
    missing: list[str] = field(default_factory=list)


def evaluate(
    pred_dir: Path,
    truth_dir: Path,
    *,
    label_space: LabelSpace = "auto",
    extra_labels: Mapping[str, str] | None = None,
    tolerance: float = DEFAULT_TOLERANCE_PX,
) -> EvalReport:
    """Score predicted sheets against ground-truth sheets.

    Parameters
    ----------
    pred_dir, truth_dir : Path
        Each either one sheet folder (holding graph.json, graph.graphml or original.png) or a
        folder of sheet folders; sheets are paired by folder name.
    label_space : {"auto", "class", "pid2graph"}
        Compare symbol classes as they are, or mapped to PID2Graph's labels. "auto" picks
        "pid2graph" when some truth graph was read from PID2Graph GraphML without our classes.
    extra_labels : Mapping[str, str], optional
        PID2Graph labels of classes outside `pid.core.classes` (used for both the GraphML
        reader and the label mapping).
    tolerance : float
        Distance in pixels for the tolerant skeleton F1 of the pipe masks.

    Returns
    -------
    EvalReport
        Per-sheet scores and pooled overall scores. A truth sheet without a prediction folder
        scores 0 (all its truth counts are misses); a missing predicted artifact scores its
        section 0. Sections the truth has no file for are None.

    Raises
    ------
    PidInputError
        When `truth_dir` or `pred_dir` does not exist, `truth_dir` holds no sheet, an artifact
        is invalid, or a prediction's image or mask size differs from the truth's.
    """
    pairs, unmatched = _sheet_pairs(pred_dir, truth_dir)
    extra = dict(extra_labels or {})
    truths = [_load_sheet(truth, extra, truth=True) for _, _, truth in pairs]
    preds = [
        _load_sheet(pred, extra, truth=False) if pred is not None else _Sheet()
        for _, pred, _ in pairs
    ]
    for (_, pred, truth), pred_sheet, truth_sheet in zip(pairs, preds, truths, strict=True):
        if pred is not None:
            _check_sizes(pred, truth, pred_sheet, truth_sheet)
    space = _label_space(label_space, truths)
    label_map = partial(pid2graph_label, extra=extra) if space == "pid2graph" else None
    sheets = [
        _score_sheet(name, pred is not None, p, t, label_map, tolerance)
        for (name, pred, _), p, t in zip(pairs, preds, truths, strict=True)
    ]
    return EvalReport(
        pred_dir=pred_dir,
        truth_dir=truth_dir,
        label_space=space,
        tolerance_px=tolerance,
        sheets=sheets,
        overall=_pool(sheets, preds, truths, label_map),
        unmatched_predictions=unmatched,
    )


def is_sheet(folder: Path) -> bool:
    """Return whether `folder` is a sheet folder (holds graph.json, graph.graphml or PNG)."""
    return any((folder / marker).is_file() for marker in SHEET_MARKERS)


def _sheet_pairs(
    pred_dir: Path, truth_dir: Path
) -> tuple[list[tuple[str, Path | None, Path]], list[str]]:
    """Return the sheets to score and the prediction sheets without truth.

    Each sheet is (name, prediction folder or None when absent, truth folder).
    """
    for role, folder in (("truth", truth_dir), ("prediction", pred_dir)):
        if not folder.is_dir():
            raise PidInputError(f"{folder}: {role} folder not found")
    if is_sheet(truth_dir):
        nested = pred_dir / truth_dir.name
        pred = nested if not is_sheet(pred_dir) and nested.is_dir() else pred_dir
        return [(truth_dir.name, pred, truth_dir)], []
    truths = sorted(p for p in truth_dir.iterdir() if p.is_dir() and is_sheet(p))
    if not truths:
        raise PidInputError(
            f"{truth_dir}: no sheet folders (a sheet folder holds {', '.join(SHEET_MARKERS)})"
        )
    names = {p.name for p in truths}
    pairs: list[tuple[str, Path | None, Path]] = []
    for truth in truths:
        pred = pred_dir / truth.name
        pairs.append((truth.name, pred if pred.is_dir() else None, truth))
    unmatched = sorted(p.name for p in pred_dir.iterdir() if p.is_dir() and p.name not in names)
    return pairs, unmatched


def _load_sheet(folder: Path, extra: Mapping[str, str], *, truth: bool) -> _Sheet:
    sheet = _Sheet()
    graph_json, graphml = folder / GRAPH_JSON, folder / GRAPHML
    if graph_json.is_file():
        sheet.graph = load_graph(graph_json)
    elif graphml.is_file():
        sheet.graph = load_pid2graph_graphml(graphml, extra)
    else:
        sheet.missing.append(GRAPH_JSON)
    box_files = (TRUTH_BOXES,) if truth else PRED_BOXES
    box_file = next((folder / f for f in box_files if (folder / f).is_file()), None)
    if box_file is not None:
        sheet.boxes = load_boxes(box_file)
    elif sheet.graph is not None:  # the graph's symbol nodes are boxes too
        sheet.boxes = _boxes_of_graph(sheet.graph)
    else:
        sheet.missing.append(box_files[0])
    if (folder / PIPE_MASK).is_file():
        sheet.mask = read_mask(folder / PIPE_MASK)
    else:
        sheet.missing.append(PIPE_MASK)
    if (folder / JUNCTIONS).is_file():
        sheet.junctions = load_junctions(folder / JUNCTIONS)
    else:
        sheet.missing.append(JUNCTIONS)
    if (folder / REGIONS).is_file():
        sheet.regions = load_regions(folder / REGIONS)
    return sheet


def _boxes_of_graph(graph: nx.MultiGraph) -> BoxSet:
    boxes = []
    for _, attrs in graph.nodes(data=True):
        if attrs.get("kind") == "symbol":
            x1, y1, x2, y2 = (float(c) for c in attrs["bbox"])
            if x2 > x1 and y2 > y1:
                boxes.append(Box(str(attrs["class"]), (x1, y1, x2 - x1, y2 - y1)))
    return BoxSet(tuple(boxes))


def _check_sizes(pred: Path, truth: Path, pred_sheet: _Sheet, truth_sheet: _Sheet) -> None:
    if (pred / ORIGINAL).is_file() and (truth / ORIGINAL).is_file():
        check_same_size(
            image_size(pred / ORIGINAL),
            image_size(truth / ORIGINAL),
            pred / ORIGINAL,
            truth / ORIGINAL,
        )
    if pred_sheet.mask is not None and truth_sheet.mask is not None:
        p_h, p_w = pred_sheet.mask.shape
        t_h, t_w = truth_sheet.mask.shape
        check_same_size((p_w, p_h), (t_w, t_h), pred / PIPE_MASK, truth / PIPE_MASK)


def _label_space(requested: LabelSpace, truths: list[_Sheet]) -> str:
    if requested != "auto":
        return requested
    from_pid2graph = any(
        t.graph is not None and t.graph.graph.get("label_source") == LABELS_FROM_PID2GRAPH
        for t in truths
    )
    return "pid2graph" if from_pid2graph else "class"


def _radius(truth: _Sheet) -> float:
    return match_radius(graph_line_width(truth.graph) if truth.graph is not None else 3.0)


def _score_sheet(
    name: str,
    found: bool,
    pred: _Sheet,
    truth: _Sheet,
    label_map: LabelMap | None,
    tolerance: float,
) -> SheetReport:
    radius = _radius(truth)
    scores = Sections(
        symbols=score_symbols([(pred.boxes, truth.boxes)], label_map=label_map)
        if truth.boxes is not None
        else None,
        masks=_mask_score(pred, truth, tolerance),
        junctions=score_junctions(pred.junctions or [], truth.junctions, radius=radius)
        if truth.junctions is not None
        else None,
        graph=score_graph(
            pred.graph if pred.graph is not None else nx.MultiGraph(),
            truth.graph,
            radius=radius,
            label_map=label_map,
        )
        if truth.graph is not None
        else None,
        regions=score_regions(pred.regions or [], truth.regions, pred.mask)
        if truth.regions is not None
        else None,
        leaders=score_leaders(pred.regions or [], truth.regions, pred.graph)
        if truth.regions is not None
        else None,
    )
    missing = [m for m in pred.missing if _truth_has(truth, m)] if found else []
    return SheetReport(name, found, missing, radius, scores)


def _mask_score(pred: _Sheet, truth: _Sheet, tolerance: float) -> MaskCounts | None:
    if truth.mask is None:
        return None
    predicted = pred.mask if pred.mask is not None else np.zeros_like(truth.mask)
    return mask_counts(predicted, truth.mask, tolerance=tolerance)


def _truth_has(truth: _Sheet, artifact: str) -> bool:
    present = {
        GRAPH_JSON: truth.graph is not None,
        PRED_BOXES[0]: truth.boxes is not None,
        PIPE_MASK: truth.mask is not None,
        JUNCTIONS: truth.junctions is not None,
    }
    return present.get(artifact, False)


def _pool(
    sheets: list[SheetReport],
    preds: list[_Sheet],
    truths: list[_Sheet],
    label_map: LabelMap | None,
) -> Sections:
    """Pool the sheets: add their counts; rerun COCOeval on all boxes as one dataset."""
    box_pairs = [
        (p.boxes, t.boxes) for p, t in zip(preds, truths, strict=True) if t.boxes is not None
    ]
    masks = [s.scores.masks for s in sheets if s.scores.masks is not None]
    junctions = [s.scores.junctions for s in sheets if s.scores.junctions is not None]
    graphs = [s.scores.graph for s in sheets if s.scores.graph is not None]
    regions = [s.scores.regions for s in sheets if s.scores.regions is not None]
    leaders = [s.scores.leaders for s in sheets if s.scores.leaders is not None]
    return Sections(
        regions=reduce(operator.add, regions) if regions else None,
        leaders=reduce(operator.add, leaders) if leaders else None,
        symbols=score_symbols(box_pairs, label_map=label_map) if box_pairs else None,
        masks=reduce(operator.add, masks) if masks else None,
        junctions=reduce(operator.add, junctions) if junctions else None,
        graph=reduce(operator.add, graphs) if graphs else None,
    )
