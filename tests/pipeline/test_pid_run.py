"""`pid run`: the stage table in one process, every artifact under its table name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pid.core.formats.graph import load_graph
from pid.eval.score import evaluate
from pid.export import read_dexpi_connections, read_fxml
from pid.pipeline.stages import CHAIN, STAGES, chain
from pid.synth.sheet import generate_sheet, write_sheet


def _pid(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("PID_")}
    return subprocess.run(
        [sys.executable, "-m", "pid.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**clean_env, **(env or {})},
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def sheet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small generated sheet (seed 221, never used for tuning)."""
    out = tmp_path_factory.mktemp("truth")
    generated = generate_sheet(221, 0, width=1200, height=850)
    generated.name = "sheet"
    return write_sheet(generated, out)


@pytest.fixture(scope="module")
def full_run(sheet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pred") / "sheet"
    result = _pid(
        "run", str(sheet / "original.png"), "--out", str(out), "--symbols",
        str(sheet / "symbols.coco.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def test_every_artifact_of_the_chain_is_written_under_its_table_name(full_run: Path) -> None:
    expected = {name for stage in chain() for name in stage.outputs} | {"original.png"}
    assert expected <= {p.name for p in full_run.iterdir()}
    records = json.loads((full_run / "run.json").read_text())
    assert list(records) == list(CHAIN)
    states = {name: record["state"] for name, record in records.items()}
    assert states == {
        "detect": "skipped",
        "cvat_upload": "skipped",
        "cvat_fetch": "skipped",
        **dict.fromkeys(CHAIN[3:], "succeeded"),
    }
    for record in records.values():
        assert {"method", "settings", "code_version", "weights_sha256"} <= set(record["provenance"])


def test_cvat_fetch_copies_the_detections_while_the_gate_is_off(full_run: Path) -> None:
    detections = (full_run / "detections.json").read_bytes()
    assert (full_run / "validated_detections.json").read_bytes() == detections
    coco = json.loads(detections)
    lines = (full_run / "yolo_predicted.txt").read_text().splitlines()
    assert len(lines) == len(coco["annotations"]) > 0


def test_the_exports_read_back_to_the_graph(full_run: Path) -> None:
    graph = load_graph(full_run / "graph.json")
    assert graph.number_of_edges() > 0
    back = read_fxml(full_run / "output.fxml")
    assert sorted(back.nodes) == sorted(graph.nodes)
    assert back.number_of_edges() == graph.number_of_edges()
    assert len(read_dexpi_connections(full_run / "output.dexpi.xml")) == graph.number_of_edges()


def test_the_graphml_export_scores_one_against_the_graph_it_came_from(
    full_run: Path, tmp_path: Path
) -> None:
    pred, truth = tmp_path / "pred" / "s", tmp_path / "truth" / "s"
    pred.mkdir(parents=True)
    shutil.copytree(full_run, truth)
    shutil.copy(full_run / "graph.graphml", pred / "graph.graphml")
    (truth / "graph.graphml").unlink()
    graph = evaluate(pred.parent, truth.parent).to_dict()["overall"]["graph"]
    assert graph["nodes"]["f1"] == 1.0
    assert graph["edges"]["f1"] == 1.0


def test_overlay_is_a_colour_picture_of_the_drawing(full_run: Path) -> None:
    overlay = cv2.imread(str(full_run / "overlay.png"), cv2.IMREAD_COLOR)
    original = cv2.imread(str(full_run / "original.png"), cv2.IMREAD_GRAYSCALE)
    assert overlay.shape[:2] == original.shape
    # Junctions (red) and bridges (yellow) are drawn in two colours.
    red = (overlay[..., 2] > 200) & (overlay[..., 1] < 60) & (overlay[..., 0] < 60)
    yellow = (overlay[..., 2] > 200) & (overlay[..., 1] > 150) & (overlay[..., 0] < 60)
    assert red.any() and yellow.any()


def test_a_corrected_mask_continues_with_skeletonize_simple(full_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(full_run, folder)
    mask = cv2.imread(str(folder / "pipe_mask.png"), cv2.IMREAD_GRAYSCALE)
    mask[:, : mask.shape[1] // 2] = 0  # a person erased the left half
    cv2.imwrite(str(folder / "pipe_mask.png"), mask)
    result = _pid(
        "run", str(folder / "original.png"), "--out", str(folder), "--from",
        "skeletonize_simple",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = json.loads((folder / "run.json").read_text())
    assert records["skeletonize_simple"]["state"] == "succeeded"
    assert records["skeletonize_simple"]["provenance"]["method"] == "thinning"
    skeleton = cv2.imread(str(folder / "skeleton.png"), cv2.IMREAD_GRAYSCALE)
    assert not skeleton[:, : mask.shape[1] // 2].any()
    graph = load_graph(folder / "graph.json")
    before = load_graph(full_run / "graph.json")
    assert graph.number_of_edges() < before.number_of_edges()


def test_without_symbols_or_weights_it_names_the_setting_and_writes_nothing(
    sheet: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    line = _one_line_error(_pid("run", str(sheet / "original.png"), "--out", str(out)))
    assert "PID_DETECT_WEIGHTS" in line and "--symbols" in line
    assert not out.exists()


def test_weights_setting_naming_a_missing_file_is_refused(sheet: Path, tmp_path: Path) -> None:
    env = {"PID_DETECT_WEIGHTS": str(tmp_path / "nope.pt")}
    line = _one_line_error(
        _pid("run", str(sheet / "original.png"), "--out", str(tmp_path / "o"), env=env)
    )
    assert "nope.pt" in line and "not found" in line


def test_a_later_stage_without_its_inputs_names_them(sheet: Path, tmp_path: Path) -> None:
    line = _one_line_error(
        _pid("run", str(sheet / "original.png"), "--out", str(tmp_path), "--from", "classify")
    )
    assert "skeleton.png" in line and "classify" in line


def test_a_mask_of_the_wrong_size_is_refused(full_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(full_run, folder)
    cv2.imwrite(str(folder / "pipe_mask.png"), np.zeros((100, 120), np.uint8))
    before = (folder / "skeleton.png").read_bytes()
    line = _one_line_error(
        _pid("run", str(folder / "original.png"), "--out", str(folder), "--from", "skeletonize")
    )
    assert "pipe_mask.png" in line and "120x100" in line
    assert (folder / "skeleton.png").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from", "nonsense"], "unknown stage 'nonsense'"),
        (["--from", "export", "--to", "segment"], "comes after"),
    ],
)
def test_bad_stage_ranges_are_refused(
    sheet: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    cmd = ["run", str(sheet / "original.png"), "--out", str(tmp_path / "o"), *args]
    assert expected in _one_line_error(_pid(*cmd))


def test_a_truncated_drawing_is_refused(sheet: Path, tmp_path: Path) -> None:
    data = (sheet / "original.png").read_bytes()
    broken = tmp_path / "broken.png"
    broken.write_bytes(data[: len(data) // 3])
    line = _one_line_error(
        _pid("run", str(broken), "--out", str(tmp_path / "o"), "--symbols",
             str(sheet / "symbols.coco.json"))
    )  # fmt: skip
    assert "broken.png" in line


def test_symbols_outside_the_drawing_are_refused(sheet: Path, tmp_path: Path) -> None:
    coco = json.loads((sheet / "symbols.coco.json").read_text())
    coco["annotations"][0]["bbox"] = [5000.0, 10.0, 20.0, 20.0]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    line = _one_line_error(
        _pid("run", str(sheet / "original.png"), "--out", str(tmp_path / "o"), "--symbols",
             str(bad))
    )  # fmt: skip
    assert "bad.json" in line and "outside" in line


def test_user_classes_are_kept_by_name_and_exported_as_general(sheet: Path, tmp_path: Path) -> None:
    coco = json.loads((sheet / "symbols.coco.json").read_text())
    for category in coco["categories"]:
        category["name"] = f"acme_{category['name']}"
    own = tmp_path / "own.json"
    own.write_text(json.dumps(coco))
    out = tmp_path / "o"
    result = _pid(
        "run", str(sheet / "original.png"), "--out", str(out), "--symbols", str(own)
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    graph = load_graph(out / "graph.json")
    classes = {d["class"] for _, d in graph.nodes(data=True) if d["kind"] == "symbol"}
    assert classes and all(c.startswith("acme_") for c in classes)
    graphml = (out / "graph.graphml").read_text()
    assert "general" in graphml


def test_a_blank_drawing_gives_an_empty_graph(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((700, 1000), 255, np.uint8))
    coco = {"images": [{"id": 1, "width": 1000, "height": 700}], "categories": [],
            "annotations": []}  # fmt: skip
    (tmp_path / "none.json").write_text(json.dumps(coco))
    out = tmp_path / "o"
    result = _pid("run", str(blank), "--out", str(out), "--symbols", str(tmp_path / "none.json"))
    assert result.returncode == 0, result.stderr
    graph = load_graph(out / "graph.json")
    assert graph.number_of_nodes() == 0
    assert json.loads((out / "junctions.json").read_text()) == []


def test_the_stage_table_names_queue_inputs_outputs_and_status_of_every_stage() -> None:
    assert set(CHAIN) | {"skeletonize_simple"} == set(STAGES)
    for stage in STAGES.values():
        assert stage.queue in ("gpu", "cpu", "io")
        assert stage.status_after
    produced = {"original.png"}
    for stage in chain():
        assert set(stage.inputs) <= produced, stage.name
        produced |= set(stage.outputs)
    assert [s.name for s in chain("skeletonize_simple", "classify")] == [
        "skeletonize_simple",
        "classify",
    ]
