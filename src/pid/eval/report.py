"""The evaluation report: per-sheet and pooled scores, as JSON and as a terminal table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from pid.core.files import replace_atomically
from pid.eval.graph import GraphScore
from pid.eval.junctions import JunctionScore
from pid.eval.masks import MaskCounts
from pid.eval.regions import LeaderScore, RegionScore
from pid.eval.symbols import SymbolScore


@dataclass(frozen=True, slots=True)
class Sections:
    """The scored sections; None where the truth has nothing to score against."""

    symbols: SymbolScore | None = None
    masks: MaskCounts | None = None
    junctions: JunctionScore | None = None
    graph: GraphScore | None = None
    regions: RegionScore | None = None
    leaders: LeaderScore | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "regions": self.regions.to_dict() if self.regions else None,
            "leaders": self.leaders.to_dict() if self.leaders else None,
            "symbols": self.symbols.to_dict() if self.symbols else None,
            "masks": self.masks.to_dict() if self.masks else None,
            "junctions": self.junctions.to_dict() if self.junctions else None,
            "graph": self.graph.to_dict() if self.graph else None,
        }


@dataclass(frozen=True, slots=True)
class SheetReport:
    """Scores of one sheet.

    Attributes
    ----------
    name : str
        The sheet folder's name.
    prediction_found : bool
        False when no prediction folder matched: every section then scores 0.
    missing_artifacts : list[str]
        Predicted files that were absent while the truth had something to score; their sections
        score 0.
    radius_px : float
        Matching radius used for junctions and graph points.
    scores : Sections
    """

    name: str
    prediction_found: bool
    missing_artifacts: list[str]
    radius_px: float
    scores: Sections

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prediction_found": self.prediction_found,
            "missing_artifacts": list(self.missing_artifacts),
            "radius_px": self.radius_px,
            **self.scores.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class EvalReport:
    """A whole evaluation: every sheet, and the pooled (micro-averaged) overall scores."""

    pred_dir: Path
    truth_dir: Path
    label_space: str
    tolerance_px: float
    sheets: list[SheetReport]
    overall: Sections
    unmatched_predictions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pred_dir": str(self.pred_dir),
            "truth_dir": str(self.truth_dir),
            "label_space": self.label_space,
            "tolerance_px": self.tolerance_px,
            "overall": self.overall.to_dict(),
            "sheets": [sheet.to_dict() for sheet in self.sheets],
            "unmatched_predictions": list(self.unmatched_predictions),
        }


def write_json(report: EvalReport, path: Path) -> None:
    """Write `report.to_dict()` as indented JSON, atomically (temporary file, then rename)."""
    text = json.dumps(report.to_dict(), indent=2) + "\n"

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    replace_atomically(path, write)


_COLUMNS = (
    "mAP50",
    "mAP50:95",
    "sym P",
    "sym R",
    "mask IoU",
    "tol F1",
    "junc acc",
    "node F1",
    "edge F1",
    "link F1",
    "spur J",
    "spur E",
    "tables",
    "leaders",
)


def render_table(report: EvalReport) -> Table:
    """Return a rich table: one row per sheet, then the pooled overall row.

    A dash marks a section the truth has nothing for.
    """
    table = Table(title=f"{report.pred_dir} vs {report.truth_dir} ({report.label_space} labels)")
    table.add_column("sheet")
    for name in _COLUMNS:
        table.add_column(name, justify="right")
    for i, sheet in enumerate(report.sheets):
        label = sheet.name if sheet.prediction_found else f"{sheet.name} (no prediction)"
        table.add_row(label, *_cells(sheet.scores), end_section=i == len(report.sheets) - 1)
    table.add_row("overall", *_cells(report.overall), style="bold")
    return table


def _cells(scores: Sections) -> list[str]:
    symbols, masks, junctions, graph = (
        scores.symbols,
        scores.masks,
        scores.junctions,
        scores.graph,
    )
    values: list[float | None] = [
        symbols.map50 if symbols else None,
        symbols.map50_95 if symbols else None,
        symbols.counts.precision if symbols else None,
        symbols.counts.recall if symbols else None,
        masks.iou if masks else None,
        masks.tolerant_f1 if masks else None,
        junctions.accuracy if junctions else None,
        graph.nodes.f1 if graph else None,
        graph.edges.f1 if graph else None,
        graph.symbol_links.f1 if graph else None,
    ]
    cells = ["-" if v is None else f"{v:.3f}" for v in values]
    cells += [str(graph.spurious(kind)) if graph else "-" for kind in ("junction", "endpoint")]
    regions = scores.regions
    cells.append(f"{regions.found}/{regions.ruled}" if regions and regions.ruled else "-")
    leaders = scores.leaders
    cells.append(f"{leaders.found}/{leaders.leaders}" if leaders and leaders.leaders else "-")
    return cells
