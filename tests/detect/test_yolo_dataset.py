"""Tiles and labels of the YOLO data set, on hand-made sheets with known answers.

A sheet of 1000 x 640 px cut into 640 px tiles with overlap 0.2 gives SAHI's two windows
x in [0, 640] and [360, 1000] (the last one is shifted back inside the image).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from pid.core.classes import CLASS_NAMES
from pid.core.errors import PidInputError
from pid.synth.sheet import generate_sheet, write_sheet
from pid.vision.yolo_train import build_yolo_dataset

TILE = 640


def _sheet(folder: Path, size: tuple[int, int], boxes: list[tuple[str, list[float]]]) -> Path:
    """A blank sheet folder with the given (class name, [x, y, w, h]) boxes."""
    width, height = size
    folder.mkdir(parents=True)
    image = np.full((height, width), 255, dtype=np.uint8)
    for _, (x, y, w, h) in boxes:
        cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), 0, 2)
    cv2.imwrite(str(folder / "original.png"), image)
    names = sorted({name for name, _ in boxes})
    coco: dict[str, Any] = {
        "images": [{"id": 1, "file_name": "original.png", "width": width, "height": height}],
        # Ids in another order than the class table: names decide, not ids.
        "categories": [{"id": 10 + i, "name": n} for i, n in enumerate(names)],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 10 + names.index(n), "bbox": b}
            for i, (n, b) in enumerate(boxes)
        ],
    }
    (folder / "symbols.coco.json").write_text(json.dumps(coco))
    return folder


def _labels(root: Path, split: str) -> dict[str, list[list[float]]]:
    """Label files of a split: tile name -> rows [class, cx, cy, w, h]."""
    return {
        p.stem: [[float(v) for v in line.split()] for line in p.read_text().splitlines()]
        for p in sorted((root / "labels" / split).glob("*.txt"))
    }


def test_boxes_are_clipped_to_tiles_and_fragments_dropped(tmp_path: Path) -> None:
    cut_most = ("gate_valve", [630.0, 100.0, 40.0, 30.0])  # 10 of 40 px inside the first tile
    cut_less = ("vessel", [600.0, 300.0, 60.0, 30.0])  # 40 of 60 px inside the first tile
    sheet = _sheet(tmp_path / "s", (1000, 640), [cut_most, cut_less])
    data = build_yolo_dataset([sheet], tmp_path / "ds", tile=TILE, val_fraction=0.0)
    labels = _labels(tmp_path / "ds", "train")
    gate, vessel = CLASS_NAMES.index("gate_valve"), CLASS_NAMES.index("vessel")
    assert labels["00000_s_x0_y0"] == [
        pytest.approx([vessel, 620 / 640, 315 / 640, 40 / 640, 30 / 640], abs=1e-6)
    ]
    assert sorted(labels["00000_s_x360_y0"]) == [
        pytest.approx([gate, (650 - 360) / 640, 115 / 640, 40 / 640, 30 / 640], abs=1e-6),
        pytest.approx([vessel, (630 - 360) / 640, 315 / 640, 60 / 640, 30 / 640], abs=1e-6),
    ]
    tile = cv2.imread(str(tmp_path / "ds/images/train/00000_s_x360_y0.png"), cv2.IMREAD_UNCHANGED)
    assert tile is not None and tile.shape == (640, 640)
    yaml = json.loads(data.read_text())  # written as JSON, which YAML readers accept
    assert yaml["names"] == list(CLASS_NAMES)
    assert yaml["nc"] == len(CLASS_NAMES)
    assert yaml["val"] == yaml["train"] == "images/train"
    assert Path(yaml["path"]) == (tmp_path / "ds").resolve()


def test_a_share_of_empty_tiles_is_kept(tmp_path: Path) -> None:
    # 2000 px wide: windows at x = 0, 512, 1024, 1360; only the first holds a box.
    sheet = _sheet(tmp_path / "s", (2000, 640), [("tank", [10.0, 10.0, 100.0, 80.0])])
    for share, tiles in ((0.0, 1), (1.0, 2), (5.0, 4)):
        build_yolo_dataset(
            [sheet], tmp_path / "ds", tile=TILE, val_fraction=0.0, negative_share=share
        )
        labels = _labels(tmp_path / "ds", "train")
        assert len(labels) == tiles
        assert sum(1 for rows in labels.values() if rows) == 1
        assert len(list((tmp_path / "ds/images/train").glob("*.png"))) == tiles


def test_validation_takes_whole_sheets(tmp_path: Path) -> None:
    sheets = [
        _sheet(tmp_path / f"s{i}", (1000, 640), [("instrument", [100.0 + 50 * i, 50, 40, 40])])
        for i in range(3)
    ]
    data = build_yolo_dataset(sheets, tmp_path / "ds", tile=TILE, val_fraction=0.34, seed=3)
    train, val = _labels(tmp_path / "ds", "train"), _labels(tmp_path / "ds", "val")
    sheet_of = {name.split("_x")[0] for name in val}
    assert len(sheet_of) == 1
    assert not sheet_of & {name.split("_x")[0] for name in train}
    assert len(train) == 4 and len(val) == 2
    assert json.loads(data.read_text())["val"] == "images/val"
    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert [s["split"] for s in manifest["sheets"]].count("val") == 1


def test_classes_outside_the_table_follow_it(tmp_path: Path) -> None:
    boxes = [("my_valve", [10.0, 10, 30, 20]), ("gate_valve", [50.0, 10, 30, 20])]
    sheet = _sheet(tmp_path / "s", (1000, 640), boxes)
    data = build_yolo_dataset([sheet], tmp_path / "ds", tile=TILE, val_fraction=0.0)
    assert json.loads(data.read_text())["names"] == [*CLASS_NAMES, "my_valve"]
    rows = _labels(tmp_path / "ds", "train")["00000_s_x0_y0"]
    assert sorted(int(r[0]) for r in rows) == [CLASS_NAMES.index("gate_valve"), len(CLASS_NAMES)]


def test_generated_sheet_keeps_every_symbol_a_tile_holds(tmp_path: Path) -> None:
    """Each drawn symbol that fits in one of SAHI's windows is labelled there, as drawn."""
    from sahi.slicing import get_slice_bboxes

    sheet = write_sheet(generate_sheet(5, 0, width=1000, height=700, style="scan"), tmp_path)
    build_yolo_dataset([sheet], tmp_path / "ds", tile=320, val_fraction=0.0)
    found = set()
    for name, rows in _labels(tmp_path / "ds", "train").items():
        x0, y0 = (int(part[1:]) for part in name.split("_")[-2:])
        for cls, cx, cy, w, h in rows:
            box = (cx - w / 2) * 320 + x0, (cy - h / 2) * 320 + y0, w * 320, h * 320
            found.add((CLASS_NAMES[int(cls)], tuple(round(v) for v in box)))
    windows = get_slice_bboxes(700, 1000, 320, 320, False, 0.2, 0.2)
    coco = json.loads((sheet / "symbols.coco.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    held = 0
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        if any(x >= a and y >= b and x + w <= c and y + h <= d for a, b, c, d in windows):
            held += 1
            assert (names[ann["category_id"]], tuple(round(v) for v in ann["bbox"])) in found
    assert held >= 0.8 * len(coco["annotations"])


def test_rebuilding_replaces_the_data_set(tmp_path: Path) -> None:
    first = _sheet(tmp_path / "a", (1000, 640), [("tank", [10, 10, 100, 80])])
    second = _sheet(tmp_path / "b", (1000, 640), [("tank", [700, 10, 100, 80])])
    build_yolo_dataset([first], tmp_path / "ds", tile=TILE, val_fraction=0.0)
    build_yolo_dataset([second], tmp_path / "ds", tile=TILE, val_fraction=0.0)
    assert all("_b_" in name for name in _labels(tmp_path / "ds", "train"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unusable_sheets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PidInputError, match="no sheet folders"):
        build_yolo_dataset([], tmp_path / "ds")
    sheet = _sheet(tmp_path / "s", (1000, 640), [("tank", [10, 10, 100, 80])])
    (sheet / "symbols.coco.json").unlink()
    with pytest.raises(PidInputError, match=r"s/symbols\.coco\.json: not found"):
        build_yolo_dataset([sheet], tmp_path / "ds")
    outside = _sheet(tmp_path / "t", (1000, 640), [("tank", [950, 10, 100, 80])])
    with pytest.raises(PidInputError, match=r"symbols\.coco\.json"):
        build_yolo_dataset([outside], tmp_path / "ds")
    with pytest.raises(PidInputError, match="overlap"):
        build_yolo_dataset([sheet], tmp_path / "ds", overlap=1.0)
    assert not (tmp_path / "ds").exists()
