"""Symbol detection: a YOLO model run over a whole sheet in SAHI slices.

A sheet is 10-100 times wider than the network input while its symbols are 10-240 px, so the
image is cut into overlapping square slices at native resolution, each slice is detected on its
own, and the boxes are merged back (SAHI's `get_sliced_prediction` with its stock merge). The
output is the project's box contract: COCO with bbox [x, y, w, h] in pixels of the sheet, a
score in [0, 1], and categories that carry the model's class *names*.

The model is loaded once per process (`load_detector`) and reused for every sheet.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pid.core.classes import pid2graph_label
from pid.core.errors import PidInputError
from pid.vision.yolo_env import import_ultralytics, resolve_device

if TYPE_CHECKING:
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction

__all__ = [
    "METHOD",
    "POSTPROCESS",
    "Detector",
    "detect_symbols",
    "detector_provenance",
    "load_detector",
    "predictions_to_coco",
    "sliced_predictions",
    "yolo_lines",
]

#: Name of this detection method in provenance records (the `detect_method` setting).
METHOD = "yolo_sahi"
#: SAHI's stock merge of the slices' boxes (its defaults, stated so provenance can record them).
POSTPROCESS: dict[str, Any] = {"type": "GREEDYNMM", "match_metric": "IOS", "match_threshold": 0.5}
#: The whole-sheet pass SAHI adds to the slices is left out: the model learns symbols at their
#: drawn size from tiles, and a sheet shrunk to the network input shows them a few pixels wide,
#: which only adds time and false boxes.
PERFORM_STANDARD_PRED = False
_IMAGE_NAME = "original.png"


@dataclass(frozen=True, slots=True)
class Detector:
    """A loaded detector: SAHI's model wrapper and what is needed to record its provenance.

    Attributes
    ----------
    model : sahi.models.base.DetectionModel
        SAHI's ultralytics wrapper around the YOLO model.
    weights : Path
        The checkpoint it was loaded from.
    weights_sha256 : str
        Hex SHA-256 of the checkpoint's bytes.
    class_names : tuple[str, ...]
        The model's class names, in the order of its class indices.
    confidence : float
        Lowest score of a kept box.
    device : str
        The torch device it runs on ("cpu", "cuda:0", ...).
    imgsz : int | None
        The network input side the model was trained at (slices are resized to it).
    """

    model: DetectionModel
    weights: Path
    weights_sha256: str
    class_names: tuple[str, ...]
    confidence: float
    device: str
    imgsz: int | None


def load_detector(
    weights: Path, *, confidence: float, device: str, config_dir: Path | None = None
) -> Detector:
    """Load a YOLO checkpoint for sliced detection.

    Parameters
    ----------
    weights : Path
        An ultralytics detection checkpoint (.pt), e.g. from
        `pid.vision.yolo_train.train_detector`.
    confidence : float
        Lowest score of a kept box, in [0, 1].
    device : str
        "auto" (the first CUDA device when torch sees one, else the CPU), "cpu", "cuda" or
        "cuda:N".
    config_dir : Path, optional
        Ultralytics settings folder (see `pid.vision.yolo_env.prepare_ultralytics`).

    Returns
    -------
    Detector

    Raises
    ------
    PidInputError
        When the file is missing, empty, not a .pt file, not a readable YOLO checkpoint or not
        a detection model (one line naming the file), when `confidence` is outside [0, 1], or
        when a CUDA device is asked for and torch sees none.
    """
    if not 0.0 <= confidence <= 1.0:
        raise PidInputError(f"detector confidence {confidence} must be in [0, 1]")
    _check_weights_file(weights)
    torch_device = _usable_device(device)
    import_ultralytics(config_dir)
    digest = _sha256(weights)
    model = _load_sahi_model(weights, confidence, torch_device)
    task = getattr(model.model, "task", None)
    if task != "detect":
        raise PidInputError(f"{weights}: a YOLO {task} model, not a detection model")
    imgsz = model.model.overrides.get("imgsz")
    return Detector(
        model=model,
        weights=weights,
        weights_sha256=digest,
        class_names=_class_names(model),
        confidence=confidence,
        device=str(model.device),
        imgsz=int(imgsz) if isinstance(imgsz, int | float) else None,
    )


def sliced_predictions(
    detector: Detector, image: NDArray[np.uint8], *, slice_size: int, overlap: float
) -> list[ObjectPrediction]:
    """SAHI's merged predictions for a sheet (before conversion to COCO).

    Parameters and errors as `detect_symbols`.
    """
    from sahi.predict import get_sliced_prediction

    if slice_size < 32:
        raise PidInputError(f"slice size {slice_size} px is too small: at least 32")
    if not 0.0 <= overlap < 1.0:
        raise PidInputError(f"slice overlap {overlap} must be in [0, 1)")
    result = get_sliced_prediction(
        _as_rgb(image),
        detector.model,
        slice_height=slice_size,
        slice_width=slice_size,
        overlap_height_ratio=overlap,
        overlap_width_ratio=overlap,
        perform_standard_pred=PERFORM_STANDARD_PRED,
        postprocess_type=POSTPROCESS["type"],
        postprocess_match_metric=POSTPROCESS["match_metric"],
        postprocess_match_threshold=POSTPROCESS["match_threshold"],
        verbose=0,
    )
    return list(result.object_prediction_list)


def detect_symbols(
    detector: Detector, image: NDArray[np.uint8], *, slice_size: int, overlap: float
) -> dict[str, Any]:
    """Detect the symbols of a sheet.

    Parameters
    ----------
    detector : Detector
        From `load_detector`.
    image : ndarray of uint8, shape (H, W) or (H, W, 3)
        The sheet: grayscale, or RGB (SAHI's channel order).
    slice_size : int
        Side of the square slices in pixels; best equal to the tile side the model was trained
        on, so symbols keep their drawn size.
    overlap : float
        Overlap ratio of neighbouring slices, in [0, 1); a symbol narrower than
        ``overlap * slice_size`` lies whole in at least one slice.

    Returns
    -------
    dict
        COCO: ``images`` (one, ``original.png`` with the image size), ``categories`` (id = class
        index + 1, name = the model's class name), ``annotations`` (``bbox`` [x, y, w, h] float
        pixels, ``score`` in [0, 1], ``category_id``, ``area``), in SAHI's merge order. The same
        image and detector give the same output.

    Raises
    ------
    PidInputError
        When the image is not uint8 (H, W) or (H, W, 3), or the slice settings are invalid.
    """
    height, width = _image_size(image)
    predictions = sliced_predictions(detector, image, slice_size=slice_size, overlap=overlap)
    return predictions_to_coco(predictions, width, height, detector.class_names)


def predictions_to_coco(
    predictions: Sequence[ObjectPrediction],
    width: int,
    height: int,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """SAHI object predictions as a COCO dict with categories named by `class_names`."""
    categories = [
        {"id": i + 1, "name": name, "supercategory": pid2graph_label(name)}
        for i, name in enumerate(class_names)
    ]
    annotations: list[dict[str, Any]] = []
    for prediction in predictions:
        x1, y1, x2, y2 = (float(v) for v in prediction.bbox.to_xyxy())
        w, h = x2 - x1, y2 - y1
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": 1,
                "category_id": class_names.index(str(prediction.category.name)) + 1,
                "bbox": [x1, y1, w, h],
                "area": w * h,
                "iscrowd": 0,
                "score": min(1.0, max(0.0, float(prediction.score.value))),
            }
        )
    return {
        "images": [{"id": 1, "file_name": _IMAGE_NAME, "width": width, "height": height}],
        "categories": categories,
        "annotations": annotations,
    }


def yolo_lines(
    coco: dict[str, Any], width: int, height: int, class_names: Sequence[str]
) -> list[str]:
    """Boxes as yolo_predicted.txt lines: ``class cx cy w h score``, normalised to [0, 1].

    The class is the category name's index in `class_names` (the model's names), looked up by
    name, so a COCO file with its own category ids is read correctly.

    Raises
    ------
    PidInputError
        When a box's category is not in `class_names`, or the image size is not positive.
    """
    if width <= 0 or height <= 0:
        raise PidInputError(f"image size {width}x{height} must be positive")
    names = {int(c["id"]): str(c["name"]) for c in coco.get("categories", [])}
    index = {name: i for i, name in enumerate(class_names)}
    lines = []
    for ann in coco.get("annotations", []):
        name = names.get(int(ann["category_id"]))
        if name is None or name not in index:
            raise PidInputError(f"box category {name!r} is not one of the model's classes")
        x, y, w, h = (float(v) for v in ann["bbox"])
        lines.append(
            f"{index[name]} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} "
            f"{w / width:.6f} {h / height:.6f} {float(ann.get('score', 1.0)):.6f}"
        )
    return lines


def detector_provenance(detector: Detector, *, slice_size: int, overlap: float) -> dict[str, Any]:
    """What produced a detections.json: method, weights hash, classes and every setting used."""
    return {
        "method": METHOD,
        "weights": detector.weights.name,
        "weights_sha256": detector.weights_sha256,
        "class_names": list(detector.class_names),
        "imgsz": detector.imgsz,
        "slice_size": slice_size,
        "overlap": overlap,
        "confidence": detector.confidence,
        "device": detector.device,
        "perform_standard_pred": PERFORM_STANDARD_PRED,
        "postprocess": _effective_postprocess(detector.confidence),
        "versions": {pkg: _version(pkg) for pkg in ("ultralytics", "sahi", "torch")},
    }


# --- helpers ----------------------------------------------------------------------------------


def _effective_postprocess(confidence: float) -> dict[str, Any]:
    """The merge SAHI really runs: below its low-confidence mark it switches to NMS on IoU."""
    from sahi.predict import LOW_MODEL_CONFIDENCE

    if confidence < LOW_MODEL_CONFIDENCE and POSTPROCESS["type"] != "NMS":
        return {**POSTPROCESS, "type": "NMS", "match_metric": "IOU"}
    return dict(POSTPROCESS)


def _check_weights_file(weights: Path) -> None:
    if not weights.is_file():
        raise PidInputError(f"{weights}: detector weights not found")
    if weights.suffix != ".pt":
        raise PidInputError(f"{weights}: detector weights must be a YOLO .pt checkpoint")
    if weights.stat().st_size == 0:
        raise PidInputError(f"{weights}: detector weights file is empty")


def _usable_device(device: str) -> str:
    """`resolve_device`, refusing a CUDA device that torch does not see."""
    import torch

    try:
        name = resolve_device(device)
    except ValueError as exc:
        raise PidInputError(str(exc)) from None
    if name.startswith("cuda:"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if int(name[5:]) >= count:
            raise PidInputError(f"device {device!r}: torch sees {count} CUDA device(s)")
    return name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_sahi_model(weights: Path, confidence: float, device: str) -> DetectionModel:
    from sahi import AutoDetectionModel

    with _cuda_visibility_kept(device):
        try:
            return AutoDetectionModel.from_pretrained(
                model_type="ultralytics",
                model_path=str(weights),
                confidence_threshold=confidence,
                device=device,
            )
        except Exception as exc:  # torch, pickle and ultralytics each raise their own kinds
            cause = exc.__cause__ or exc.__context__ or exc
            detail = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
            raise PidInputError(
                f"{weights}: not a readable YOLO checkpoint ({type(cause).__name__}: {detail})"
            ) from exc


@contextmanager
def _cuda_visibility_kept(device: str) -> Iterator[None]:
    """Undo SAHI's change of CUDA_VISIBLE_DEVICES when it picks a device.

    SAHI sets the variable to "-1" for the CPU (which would hide the GPUs from everything else
    in the process that has not touched CUDA yet) and to "N" for cuda:N (which would leave
    cuda:N out of range once N > 0). Initialising CUDA first fixes the visible devices before
    the variable changes; restoring it keeps the process as it was.
    """
    import torch

    if device.startswith("cuda:"):
        torch.cuda.init()  # type: ignore[no-untyped-call]
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def _class_names(model: DetectionModel) -> tuple[str, ...]:
    """The YOLO model's class names in index order (its `names` maps index to name)."""
    names: dict[int, str] = model.model.names
    return tuple(str(names[i]) for i in sorted(names))


def _image_size(image: NDArray[np.uint8]) -> tuple[int, int]:
    if image.dtype != np.uint8 or not (
        image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
    ):
        raise PidInputError(
            f"sheet image must be uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise PidInputError(f"sheet image is empty: {image.shape}")
    return int(image.shape[0]), int(image.shape[1])


def _as_rgb(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    _image_size(image)
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    return np.ascontiguousarray(image)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
