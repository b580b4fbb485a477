"""`pid eval` on generated sheets, and its one-line refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from pid.synth.sheet import generate_sheet, write_sheet

RunPid = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("truth")
    for index, style in enumerate(("clean", "scan")):
        sheet = generate_sheet(21, index, width=1000, height=700, style=style)
        write_sheet(sheet, root)
    return root


def _figures(node: Any) -> list[float]:
    """Every score in a report section (counts excluded)."""
    scores = (
        "precision",
        "recall",
        "f1",
        "iou",
        "map50",
        "map50_95",
        "accuracy",
        "tolerant_f1",
        "tolerant_precision",
        "tolerant_recall",
        "ap50",
        "ap50_95",
    )
    found: list[float] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in scores and isinstance(value, float | int):
                found.append(float(value))
            else:
                found += _figures(value)
    elif isinstance(node, list):
        for value in node:
            found += _figures(value)
    return found


def test_generated_sheets_score_exactly_one_against_themselves(
    run_pid: RunPid, truth: Path, tmp_path: Path
) -> None:
    result = run_pid(
        "eval", "--pred", str(truth), "--truth", str(truth), "--json", str(tmp_path / "s.json")
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "s.json").read_text())
    figures = _figures(report["overall"]) + _figures(report["sheets"])
    assert len(figures) > 40
    assert all(f == 1.0 for f in figures)
    assert report["overall"]["junctions"]["ambiguous_rate"] == 0.0


def test_a_missing_prediction_scores_zero_for_its_sheet(
    run_pid: RunPid, truth: Path, tmp_path: Path
) -> None:
    pred = tmp_path / "pred"
    shutil.copytree(truth / "sheet_00000", pred / "sheet_00000")
    result = run_pid(
        "eval", "--pred", str(pred), "--truth", str(truth), "--json", str(tmp_path / "s.json")
    )
    assert result.returncode == 0, result.stderr
    sheets = {s["name"]: s for s in json.loads((tmp_path / "s.json").read_text())["sheets"]}
    assert sheets["sheet_00000"]["graph"]["edges"]["f1"] == 1.0
    assert not sheets["sheet_00001"]["prediction_found"]
    assert sheets["sheet_00001"]["graph"]["edges"]["f1"] == 0.0


def _one_line_error(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def test_missing_folder_is_refused(run_pid: RunPid, truth: Path, tmp_path: Path) -> None:
    _one_line_error(
        run_pid("eval", "--pred", str(tmp_path / "nope"), "--truth", str(truth)), "nope"
    )
    _one_line_error(
        run_pid("eval", "--pred", str(truth), "--truth", str(tmp_path / "nope")), "nope"
    )


def test_invalid_graph_json_is_refused(run_pid: RunPid, truth: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred" / "sheet_00000"
    shutil.copytree(truth / "sheet_00000", pred)
    graph = json.loads((pred / "graph.json").read_text())
    graph["nodes"][0].pop("kind")
    (pred / "graph.json").write_text(json.dumps(graph))
    _one_line_error(
        run_pid("eval", "--pred", str(pred), "--truth", str(truth / "sheet_00000")),
        "graph.json",
        "nodes[0]",
    )
    (pred / "graph.json").write_text("{not json")
    _one_line_error(
        run_pid("eval", "--pred", str(pred), "--truth", str(truth / "sheet_00000")), "graph.json"
    )


def test_mismatched_image_size_is_refused(run_pid: RunPid, truth: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred" / "sheet_00000"
    shutil.copytree(truth / "sheet_00000", pred)
    image = cv2.imread(str(pred / "original.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(pred / "original.png"), np.ascontiguousarray(image[:, :-10]))
    _one_line_error(
        run_pid("eval", "--pred", str(pred), "--truth", str(truth / "sheet_00000")),
        "990x700",
        "1000x700",
    )
