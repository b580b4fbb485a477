"""The whole classical chain on generated sheets, with the ground-truth boxes as symbols.

Thresholds of the topology and the pipe mask were tuned on `pid synth --seed 3` (2000x1400,
sheets 0 and 1, both styles). The seeds below were never used while tuning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pid.eval.score import evaluate
from pid.pipeline.local import InputLimits, prepare_folders, run_folder
from pid.pipeline.stages import StageConfig, chain
from pid.synth.sheet import generate_sheet, write_sheet

HELD_OUT = ((211, 1000, 700), (212, 2000, 1400), (213, 4000, 3000), (214, 8000, 6000))
BARS = {"clean": (0.98, 0.98, 0.97), "scan": (0.90, 0.90, 0.90)}


def _run_chain(truth: Path, pred: Path) -> None:
    for sheet in sorted(p for p in truth.iterdir() if p.is_dir()):
        folders = prepare_folders(
            sheet / "original.png", pred / sheet.name, sheet / "symbols.coco.json", InputLimits()
        )
        run_folder(folders[0], chain(), StageConfig())


@pytest.mark.parametrize("style", ["clean", "scan"])
def test_whole_chain_meets_the_quality_bar_on_held_out_sheets(style: str, tmp_path: Path) -> None:
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    for seed, width, height in HELD_OUT:
        sheet = generate_sheet(seed, 0, width=width, height=height, style=style)
        sheet.name = f"seed_{seed}_{width}x{height}"
        write_sheet(sheet, truth)
    _run_chain(truth, pred)
    report = evaluate(pred, truth).to_dict()
    named = [(s["name"], s) for s in report["sheets"]] + [("overall", report["overall"])]
    for name, scores in named:
        print(
            f"{style} {name}: junction accuracy {scores['junctions']['accuracy']:.4f}, "
            f"node F1 {scores['graph']['nodes']['f1']:.4f}, "
            f"edge F1 {scores['graph']['edges']['f1']:.4f}"
        )
    overall = report["overall"]
    leaders = overall["leaders"]
    print(
        f"{style} leaders: found {leaders['found']}/{leaders['leaders']}, "
        f"followed by a graph edge {leaders['as_edges']}; "
        f"spurious junctions {overall['graph']['spurious']['junctions']}, "
        f"spurious free ends {overall['graph']['spurious']['endpoints']}"
    )
    assert leaders["leaders"] > 0 and leaders["as_edges"] == 0
    accuracy_bar, node_bar, edge_bar = BARS[style]
    assert overall["junctions"]["accuracy"] >= accuracy_bar
    assert overall["graph"]["nodes"]["f1"] >= node_bar
    assert overall["graph"]["edges"]["f1"] >= edge_bar
