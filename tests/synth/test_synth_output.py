"""Sheet folders, determinism, scan style and the `pid synth` command."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import networkx as nx
import numpy as np
import pytest
from pycocotools.coco import COCO

from pid.core.classes import CLASS_NAMES
from pid.synth.dataset import DatasetSpec, run_dataset
from pid.synth.sheet import Sheet, generate_sheet, write_sheet

RunPid = Callable[..., subprocess.CompletedProcess[str]]

ARTIFACTS = (
    "original.png",
    "symbols.coco.json",
    "symbols.txt",
    "classes.txt",
    "text.json",
    "regions.json",
    "pipe_mask.png",
    "node_mask.png",
    "junctions.json",
    "graph.json",
    "graph.graphml",
    "sheet.json",
)


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_sheet_folder_holds_every_artifact(tmp_path: Path, clean_sheet: Sheet) -> None:
    folder = write_sheet(clean_sheet, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(ARTIFACTS)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    image = cv2.imread(str(folder / "original.png"), cv2.IMREAD_UNCHANGED)
    assert image.shape == (1400, 2000) and image.dtype == np.uint8
    coco = COCO(str(folder / "symbols.coco.json"))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == sum(
        1 for _, d in clean_sheet.graph.nodes(data=True) if d["kind"] == "symbol"
    )
    yolo = (folder / "symbols.txt").read_text().splitlines()
    assert len(yolo) == len(anns)
    assert (folder / "classes.txt").read_text().split() == list(CLASS_NAMES)
    first = anns[0]
    cls, cx, _cy, _w, h = yolo[0].split()
    x, _y, bw, bh = first["bbox"]
    assert CLASS_NAMES[int(cls)] == coco.loadCats(first["category_id"])[0]["name"]
    assert float(cx) == pytest.approx((x + bw / 2) / 2000, abs=1e-6)
    assert float(h) == pytest.approx(bh / 1400, abs=1e-6)
    graph = nx.node_link_graph(json.loads((folder / "graph.json").read_text()), edges="edges")
    assert nx.utils.graphs_equal(graph, clean_sheet.graph)
    kinds = {item["kind"] for item in json.loads((folder / "text.json").read_text())["items"]}
    assert {"tag", "line_number", "title", "title_block", "border"} <= kinds
    meta = json.loads((folder / "sheet.json").read_text())
    assert meta["params"]["gap_bridge_px"] == [4, 12]
    assert meta["params"]["scan_break_px"] == [1, 3]


def test_rewriting_a_sheet_replaces_it_whole(tmp_path: Path) -> None:
    first = generate_sheet(1, 0, width=1000, height=700)
    second = generate_sheet(2, 0, width=1000, height=700)
    write_sheet(first, tmp_path)
    (tmp_path / first.name / "stray.txt").write_text("left from before")
    folder = write_sheet(second, tmp_path)
    assert not (folder / "stray.txt").exists()
    assert json.loads((folder / "sheet.json").read_text())["seed"] == 2
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_same_seed_same_sheet_and_other_seed_differs() -> None:
    for style in ("clean", "scan"):
        a = generate_sheet(5, 3, width=1000, height=700, style=style)
        b = generate_sheet(5, 3, width=1000, height=700, style=style)
        c = generate_sheet(6, 3, width=1000, height=700, style=style)
        assert np.array_equal(a.image, b.image)
        assert np.array_equal(a.pipe_mask, b.pipe_mask)
        assert a.junctions == b.junctions
        assert nx.utils.graphs_equal(a.graph, b.graph)
        assert not np.array_equal(a.image, c.image)
        assert a.junctions != c.junctions


def test_worker_count_does_not_change_the_output(tmp_path: Path) -> None:
    one = DatasetSpec(tmp_path / "one", 3, seed=9, width=1000, height=700, workers=1)
    two = DatasetSpec(tmp_path / "two", 3, seed=9, width=1000, height=700, workers=2)
    run_dataset(one)
    run_dataset(two)
    names = sorted(p.name for p in (tmp_path / "one").iterdir() if p.is_dir())
    assert names == ["sheet_00000", "sheet_00001", "sheet_00002"]
    for name in names:
        assert _digest(tmp_path / "one" / name) == _digest(tmp_path / "two" / name)


def _affine_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float]:
    design = np.hstack([src, np.ones((len(src), 1))])
    coef, *_ = np.linalg.lstsq(design, dst, rcond=None)
    residual = float(np.abs(design @ coef - dst).max())
    return coef, residual


def test_scan_keeps_the_topology_and_warps_all_truth_alike(
    clean_sheet: Sheet, scan_sheet: Sheet
) -> None:
    clean_g, scan_g = clean_sheet.graph, scan_sheet.graph
    assert sorted(clean_g.nodes) == sorted(scan_g.nodes)
    assert sorted((u, v) for u, v, _ in clean_g.edges) == sorted((u, v) for u, v, _ in scan_g.edges)
    assert [j["kind"] for j in clean_sheet.junctions] == [j["kind"] for j in scan_sheet.junctions]
    src = np.asarray([j["point"] for j in clean_sheet.junctions], dtype=float)
    dst = np.asarray([j["point"] for j in scan_sheet.junctions], dtype=float)
    coef, residual = _affine_fit(src, dst)
    assert residual < 0.02
    angle = np.degrees(np.arctan2(coef[0, 1], coef[0, 0]))
    assert 0.0 < abs(angle) <= 1.0
    # Polylines, boxes and text boxes went through the same warp.
    design = lambda pts: np.hstack([pts, np.ones((len(pts), 1))]) @ coef  # noqa: E731
    for u, v, k, d_clean in clean_g.edges(keys=True, data=True):
        d_scan = scan_g.edges[u, v, k]
        poly = np.asarray(d_clean["polyline"], dtype=float)
        assert np.abs(design(poly) - np.asarray(d_scan["polyline"])).max() < 0.02
    # The scanned picture still shows the pipes where the warped mask says they are.
    dark = scan_sheet.image < 170
    mask = scan_sheet.pipe_mask > 0
    assert dark[mask].mean() > 0.8
    assert scan_sheet.image[~mask].std() > 2.0
    assert not np.array_equal(scan_sheet.pipe_mask, clean_sheet.pipe_mask)


def test_largest_sheet_size_generates() -> None:
    sheet = generate_sheet(0, 0, width=10000, height=7000)
    assert sheet.image.shape == (7000, 10000)
    assert len(sheet.junctions) >= 40 * 25


def test_cli_writes_sheets_and_reports_speed(run_pid: RunPid, tmp_path: Path) -> None:
    result = run_pid(
        "synth",
        "--count",
        "2",
        "--out",
        str(tmp_path / "ds"),
        "--seed",
        "4",
        "--size",
        "1000x700",
        "--workers",
        "2",
    )
    assert result.returncode == 0, result.stderr
    assert "sheets per minute" in result.stdout
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == [
        "dataset.json",
        "sheet_00000",
        "sheet_00001",
    ]


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--count", "0"], "--count must be at least 1"),
        (["--count", "1", "--size", "40x30"], "too small"),
        (["--count", "1", "--size", "big"], "WIDTHxHEIGHT"),
        (["--count", "1", "--style", "blurry"], "--style"),
        (["--count", "1", "--workers", "0"], "--workers"),
    ],
)
def test_cli_refuses_bad_input_with_one_line(
    run_pid: RunPid, tmp_path: Path, args: list[str], phrase: str
) -> None:
    result = run_pid("synth", "--out", str(tmp_path / "ds"), *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0], result.stderr
    assert not (tmp_path / "ds").exists()
