"""Sliced YOLO detection with a model trained here, from a config, on one generated sheet.

Training happens once per module, on the CPU (deterministic there, whatever the machine has):
a YOLOv8 at half the nano width, on one small clean sheet cut into 320 px tiles. With
augmentation off and an optimizer step per batch of two it learns that sheet in 20 epochs
(about a minute on two cores). The tests check the plumbing and the box contract, not how well
such a model does on sheets it has not seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from pid.core.classes import CLASS_NAMES
from pid.core.errors import PidInputError
from pid.core.formats.boxes import load_boxes
from pid.synth.sheet import generate_sheet, write_sheet
from pid.vision.detect import (
    PERFORM_STANDARD_PRED,
    POSTPROCESS,
    Detector,
    detect_symbols,
    detector_provenance,
    load_detector,
    yolo_lines,
)
from pid.vision.yolo_train import build_yolo_dataset, train_detector

TILE = 320
OVERLAP = 0.2
EPOCHS = 20
BATCH = 2
#: The settings default. The tiny model reaches it on its best boxes; no lowering was needed.
CONFIDENCE = 0.25
#: Training arguments that let a model from random weights fit one sheet in about a minute:
#: no augmentation, an optimizer step per batch (nbs = batch), validation only at the end.
QUICK_TRAINING: dict[str, Any] = {
    "nbs": BATCH,
    "optimizer": "SGD",
    "lr0": 0.01,
    "warmup_epochs": 1,
    "val": False,
    "mosaic": 0.0,
    "hsv_h": 0.0,
    "hsv_s": 0.0,
    "hsv_v": 0.0,
    "translate": 0.0,
    "scale": 0.0,
    "fliplr": 0.0,
}


@dataclass(frozen=True, slots=True)
class Trained:
    weights: Path
    sheet_dir: Path
    image: NDArray[np.uint8]
    seconds: float


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_cfg: Path) -> Trained:
    root = tmp_path_factory.mktemp("detector")
    sheet_dir = write_sheet(
        generate_sheet(5, 0, width=1000, height=700, style="clean"), root / "sheets"
    )
    # The sheet twice: twice the optimizer steps per epoch for the same per-epoch overhead.
    data = build_yolo_dataset(
        [sheet_dir, sheet_dir], root / "dataset", tile=TILE, val_fraction=0.0, negative_share=0.0
    )
    started = time.perf_counter()
    weights = train_detector(
        data,
        root / "weights" / "detector.pt",
        model_cfg=str(tiny_model_cfg),
        epochs=EPOCHS,
        imgsz=TILE,
        batch=BATCH,
        device="cpu",
        seed=0,
        extra_args=QUICK_TRAINING,
    )
    seconds = time.perf_counter() - started
    print(f"\ntraining {EPOCHS} epochs on the CPU: {seconds:.1f} s, {seconds / EPOCHS:.2f} s/epoch")
    image = cv2.imread(str(sheet_dir / "original.png"), cv2.IMREAD_GRAYSCALE)
    return Trained(weights, sheet_dir, np.asarray(image, dtype=np.uint8), seconds)


@pytest.fixture(scope="module")
def detector(trained: Trained) -> Detector:
    return load_detector(trained.weights, confidence=CONFIDENCE, device="cpu")


@pytest.fixture(scope="module")
def detections(detector: Detector, trained: Trained) -> dict[str, Any]:
    return detect_symbols(detector, trained.image, slice_size=TILE, overlap=OVERLAP)


NamedBox = tuple[str, tuple[float, float, float, float], float]


def _named_boxes(coco: dict[str, Any]) -> list[NamedBox]:
    names = {c["id"]: c["name"] for c in coco["categories"]}
    return sorted(
        (names[a["category_id"]], _rounded(a["bbox"]), round(a["score"], 5))
        for a in coco["annotations"]
    )


def _rounded(bbox: list[float]) -> tuple[float, float, float, float]:
    x, y, w, h = (round(float(v), 3) for v in bbox)
    return x, y, w, h


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def test_weights_load_with_the_class_table(trained: Trained, detector: Detector) -> None:
    assert trained.weights.is_file()
    assert detector.class_names == CLASS_NAMES
    assert detector.imgsz == TILE
    assert detector.device == "cpu"


def test_detect_symbols_is_sahi_sliced_prediction(
    trained: Trained, detections: dict[str, Any]
) -> None:
    """The same weights through SAHI's own API, as its documentation shows, give the same boxes."""
    from sahi import AutoDetectionModel
    from sahi.predict import get_sliced_prediction

    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        model = AutoDetectionModel.from_pretrained(
            model_type="ultralytics",
            model_path=str(trained.weights),
            confidence_threshold=CONFIDENCE,
            device="cpu",
        )
    finally:  # SAHI hides the GPUs for "cpu"; leave the process as it was
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before
    rgb = cv2.cvtColor(trained.image, cv2.COLOR_GRAY2RGB)
    result = get_sliced_prediction(
        rgb,
        model,
        slice_height=TILE,
        slice_width=TILE,
        overlap_height_ratio=OVERLAP,
        overlap_width_ratio=OVERLAP,
        perform_standard_pred=PERFORM_STANDARD_PRED,
        postprocess_type=POSTPROCESS["type"],
        postprocess_match_metric=POSTPROCESS["match_metric"],
        postprocess_match_threshold=POSTPROCESS["match_threshold"],
        verbose=0,
    )
    direct = sorted(
        (p.category.name, _rounded(p.bbox.to_xywh()), round(float(p.score.value), 5))
        for p in result.object_prediction_list
    )
    assert direct, "SAHI found nothing: the comparison would be empty"
    assert _named_boxes(detections) == direct


def test_detections_find_the_training_symbols(trained: Trained, detections: dict[str, Any]) -> None:
    truth = load_boxes(trained.sheet_dir / "symbols.coco.json").boxes
    found = _named_boxes(detections)
    print(f"\n{len(found)} boxes at confidence {CONFIDENCE}; {len(truth)} symbols drawn")
    matched = {
        i
        for i, t in enumerate(truth)
        if any(t.category == name and _iou(bbox, t.bbox) >= 0.5 for name, bbox, _ in found)
    }
    print(f"{len(matched)} drawn symbols found with their class at IoU >= 0.5")
    # The model has seen this very sheet: it finds all of it on the machines tried; half
    # leaves room for another CPU's rounding to take training elsewhere.
    assert len(matched) >= len(truth) / 2, f"found {found}"
    assert all(CONFIDENCE <= score <= 1.0 for _, _, score in found)


def test_detections_follow_the_box_contract(trained: Trained, detections: dict[str, Any]) -> None:
    height, width = trained.image.shape
    assert detections["images"] == [
        {"id": 1, "file_name": "original.png", "width": width, "height": height}
    ]
    assert [c["name"] for c in detections["categories"]] == list(CLASS_NAMES)
    assert len({c["id"] for c in detections["categories"]}) == len(CLASS_NAMES)
    for ann in detections["annotations"]:
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0
        assert x >= 0 and y >= 0 and x + w <= width + 1e-6 and y + h <= height + 1e-6
        assert ann["area"] == pytest.approx(w * h)
    # The file the pipeline writes loads with the project's own COCO reader.
    path = trained.sheet_dir.parent / "detections.json"
    path.write_text(json.dumps(detections))
    loaded = load_boxes(path, image_size=(width, height))
    assert len(loaded.boxes) == len(detections["annotations"])


def test_detection_is_deterministic_and_reads_rgb(
    detector: Detector, trained: Trained, detections: dict[str, Any]
) -> None:
    again = detect_symbols(detector, trained.image, slice_size=TILE, overlap=OVERLAP)
    rgb = np.repeat(trained.image[:, :, None], 3, axis=2)
    from_rgb = detect_symbols(detector, rgb, slice_size=TILE, overlap=OVERLAP)
    assert again == detections
    assert from_rgb == detections


def test_yolo_lines_round_trip(trained: Trained, detections: dict[str, Any]) -> None:
    height, width = trained.image.shape
    lines = yolo_lines(detections, width, height, CLASS_NAMES)
    assert len(lines) == len(detections["annotations"])
    names = {c["id"]: c["name"] for c in detections["categories"]}
    for line, ann in zip(lines, detections["annotations"], strict=True):
        index, cx, cy, w, h, score = (float(v) for v in line.split())
        bw, bh = w * width, h * height
        bbox = (cx * width - bw / 2, cy * height - bh / 2, bw, bh)
        assert index == int(index) and CLASS_NAMES[int(index)] == names[ann["category_id"]]
        assert bbox == pytest.approx(ann["bbox"], abs=1e-5 * max(width, height))
        assert score == pytest.approx(ann["score"], abs=1e-6)


def test_yolo_lines_match_categories_by_name(trained: Trained) -> None:
    """Category ids of a COCO file are its own: the class index follows the name."""
    coco = {
        "images": [{"id": 1, "width": 100, "height": 50}],
        "categories": [{"id": 7, "name": "vessel"}, {"id": 1, "name": "gate_valve"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 5, 20, 10], "score": 0.5},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 50]},
        ],
    }
    assert yolo_lines(coco, 100, 50, CLASS_NAMES) == [
        f"{CLASS_NAMES.index('vessel')} 0.200000 0.200000 0.200000 0.200000 0.500000",
        f"{CLASS_NAMES.index('gate_valve')} 0.500000 0.500000 1.000000 1.000000 1.000000",
    ]
    with pytest.raises(PidInputError, match="'vessel' is not one of the model's classes"):
        yolo_lines(coco, 100, 50, ["gate_valve"])


def test_provenance_names_the_weights_and_settings(trained: Trained, detector: Detector) -> None:
    record = detector_provenance(detector, slice_size=TILE, overlap=OVERLAP)
    assert record["method"] == "yolo_sahi"
    assert record["weights_sha256"] == hashlib.sha256(trained.weights.read_bytes()).hexdigest()
    assert record["class_names"] == list(CLASS_NAMES)
    assert (record["slice_size"], record["overlap"]) == (TILE, OVERLAP)
    assert (record["confidence"], record["device"]) == (CONFIDENCE, "cpu")
    assert record["versions"]["ultralytics"] and record["versions"]["sahi"]
    assert record["postprocess"] == POSTPROCESS
    # Below a score of 0.1 SAHI merges with NMS on IoU instead; the record says so.
    low = load_detector(trained.weights, confidence=0.05, device="cpu")
    merge = detector_provenance(low, slice_size=TILE, overlap=OVERLAP)["postprocess"]
    assert (merge["type"], merge["match_metric"]) == ("NMS", "IOU")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "not found"),
        (b"", "empty"),
        (b"\x80\x04this is not a checkpoint", "not a readable YOLO checkpoint"),
        ("state_dict", "not a readable YOLO checkpoint"),
    ],
)
def test_unusable_weights_are_refused_naming_the_file(
    tmp_path: Path, ultralytics_dir: Path, content: bytes | str | None, problem: str
) -> None:
    weights = tmp_path / "broken.pt"
    if content == "state_dict":
        torch.save({"weight": torch.zeros(3)}, weights)
    elif isinstance(content, bytes):
        weights.write_bytes(content)
    with pytest.raises(PidInputError) as caught:
        load_detector(weights, confidence=0.25, device="cpu")
    message = str(caught.value)
    assert str(weights) in message and problem in message
    assert "\n" not in message


def test_weights_of_another_format_are_refused(trained: Trained, tmp_path: Path) -> None:
    renamed = tmp_path / "detector.onnx"
    renamed.write_bytes(trained.weights.read_bytes())
    with pytest.raises(PidInputError, match=r"detector\.onnx: .*\.pt checkpoint"):
        load_detector(renamed, confidence=0.25, device="cpu")


def test_bad_settings_and_images_are_refused(trained: Trained, detector: Detector) -> None:
    with pytest.raises(PidInputError, match="confidence"):
        load_detector(trained.weights, confidence=1.5, device="cpu")
    with pytest.raises(PidInputError, match="device"):
        load_detector(trained.weights, confidence=0.25, device="tpu")
    with pytest.raises(PidInputError, match="uint8"):
        detect_symbols(detector, trained.image.astype(np.float32), slice_size=TILE, overlap=0.2)
    with pytest.raises(PidInputError, match="overlap"):
        detect_symbols(detector, trained.image, slice_size=TILE, overlap=1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_boxes(trained: Trained, detections: dict[str, Any]) -> None:
    gpu = load_detector(trained.weights, confidence=CONFIDENCE, device="cuda")
    assert gpu.device == "cuda:0"
    on_gpu = _named_boxes(detect_symbols(gpu, trained.image, slice_size=TILE, overlap=OVERLAP))
    on_cpu = _named_boxes(detections)
    assert [name for name, _, _ in on_gpu] == [name for name, _, _ in on_cpu]
    for (_, ours, _), (_, cpu, _) in zip(on_gpu, on_cpu, strict=True):
        assert ours == pytest.approx(cpu, abs=0.5)


def test_training_refuses_downloaded_weights(tmp_path: Path) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("{}")
    with pytest.raises(PidInputError, match=r"not a \.yaml file"):
        train_detector(data, tmp_path / "w.pt", model_cfg="yolov8n.pt")
    with pytest.raises(PidInputError, match="not found"):
        train_detector(tmp_path / "missing.yaml", tmp_path / "w.pt")


def test_the_detect_stage_writes_what_sliced_detection_finds(
    trained: Trained, detections: dict[str, Any], tmp_path: Path
) -> None:
    """The pipeline's detect stage, given the weights file as a user would, through settings."""
    import json
    import shutil

    from pid.pipeline.stages import StageConfig, run_detect

    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(trained.sheet_dir / "original.png", folder / "original.png")
    config = StageConfig(
        detect_weights=trained.weights,
        detect_confidence=CONFIDENCE,
        sahi_slice_size=TILE,
        sahi_overlap=OVERLAP,
        device="cpu",
    )
    outcome = run_detect(folder, config)
    assert outcome.state == "succeeded"
    assert (
        outcome.provenance["weights_sha256"]
        == detector_provenance(
            load_detector(trained.weights, confidence=CONFIDENCE, device="cpu"),
            slice_size=TILE,
            overlap=OVERLAP,
        )["weights_sha256"]
    )
    written = json.loads((folder / "detections.json").read_text())
    assert written["annotations"] == detections["annotations"]
    assert written["categories"] == detections["categories"]
    assert len(written["annotations"]) > 0
    lines = (folder / "yolo_predicted.txt").read_text().splitlines()
    assert len(lines) == len(written["annotations"])
