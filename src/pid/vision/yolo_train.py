"""Training data and training runs for the YOLO symbol detector.

Sheets are far larger than the network input (1000x700 to 8000x6000 px) while symbols are
10-240 px, so the detector sees sheets the way SAHI slices them at inference: square tiles
at native resolution. `build_yolo_dataset` cuts generated sheet folders into such tiles with
YOLO labels; `train_detector` trains a model built from an ultralytics config file (no
downloaded weights) on them, offline.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pid.core.classes import CLASS_NAMES
from pid.core.errors import PidInputError
from pid.core.files import copy_atomically
from pid.core.formats.boxes import BoxSet, load_boxes
from pid.vision.yolo_env import import_ultralytics, resolve_device

__all__ = ["DATA_YAML", "build_yolo_dataset", "dataset_class_names", "train_detector"]

DATA_YAML = "data.yaml"
_MANIFEST = "dataset.json"
_SHEET_IMAGE = "original.png"
_SHEET_BOXES = "symbols.coco.json"
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]


@dataclass(frozen=True, slots=True)
class _Tile:
    """One tile of a sheet: its pixel window and its YOLO label lines."""

    x1: int
    y1: int
    x2: int
    y2: int
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _SheetData:
    """A sheet's boxes and size; its image is read only when its tiles are cut."""

    folder: Path
    width: int
    height: int
    boxes: BoxSet


def build_yolo_dataset(
    sheet_dirs: list[Path],
    out_dir: Path,
    *,
    tile: int = 640,
    overlap: float = 0.2,
    val_fraction: float = 0.1,
    negative_share: float = 0.1,
    min_visible: float = 0.5,
    seed: int = 0,
) -> Path:
    """Cut sheet folders into YOLO training tiles and write a data.yaml for them.

    Parameters
    ----------
    sheet_dirs : list[Path]
        Sheet folders as `pid synth` writes them: original.png and symbols.coco.json (boxes
        matched by category name).
    out_dir : Path
        The data set folder, replaced as a whole: ``images/{train,val}/*.png``,
        ``labels/{train,val}/*.txt``, data.yaml and dataset.json (what was cut, and how).
    tile : int
        Tile side in pixels; tiles lie on SAHI's slice grid for the same side and overlap, so
        the model is trained on the windows it will see at inference.
    overlap : float
        Overlap ratio of neighbouring tiles, in [0, 1).
    val_fraction : float
        Share of the sheets (whole sheets, so no symbol is seen in both sets) kept for
        validation. With one sheet, or a share that rounds to none, validation uses the
        training tiles.
    negative_share : float
        Tiles without any box are kept up to this share of a sheet's tiles with boxes (chosen
        at random with `seed`): a few show the model the empty drawing, more would only slow
        training down.
    min_visible : float
        A box cut by a tile edge is kept, clipped to the tile, while at least this share of
        its area lies inside; less than that would teach a fragment as a whole symbol.
    seed : int
        Seed of the validation split and the choice of empty tiles.

    Returns
    -------
    Path
        ``out_dir/data.yaml``. Class names are `pid.core.classes.CLASS_NAMES` in table order,
        then any other category found in the sheets, sorted.

    Raises
    ------
    PidInputError
        When no sheet is given, a sheet lacks original.png or symbols.coco.json, the image
        cannot be read, or a box file is invalid or disagrees with the image size.
    """
    _check_tiling(tile, overlap, val_fraction, negative_share, min_visible)
    if not sheet_dirs:
        raise PidInputError("no sheet folders given to build a YOLO data set from")
    sheets = [_load_sheet(folder) for folder in sheet_dirs]
    names = dataset_class_names(sheet.boxes for sheet in sheets)
    rng = np.random.default_rng(seed)
    val_sheets = _validation_sheets(len(sheets), val_fraction, rng)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        counts = {"train": 0, "val": 0, "negatives": 0, "boxes": 0}
        for index, sheet in enumerate(sheets):
            split = "val" if index in val_sheets else "train"
            tiles = _cut_sheet(sheet, names, tile, overlap, min_visible)
            kept = _keep_negatives(tiles, negative_share, rng)
            image = _read_image(sheet.folder / _SHEET_IMAGE, sheet.width, sheet.height)
            _write_tiles(work, split, f"{index:05d}_{sheet.folder.name}", image, kept)
            counts[split] += len(kept)
            counts["negatives"] += sum(1 for t in kept if not t.labels)
            counts["boxes"] += sum(len(t.labels) for t in kept)
        _write_data_yaml(work, out_dir, names, has_val=bool(val_sheets))
        _write_manifest(work, sheets, val_sheets, names, counts, tile, overlap, min_visible)
        _replace_dir(work, out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return out_dir / DATA_YAML


def dataset_class_names(box_sets: Iterable[BoxSet]) -> list[str]:
    """Class names for a data set: the class table's order, then other names found, sorted."""
    found = {box.category for boxes in box_sets for box in boxes.boxes}
    extra = sorted(found - set(CLASS_NAMES))
    return [*CLASS_NAMES, *extra]


def train_detector(
    dataset_yaml: Path,
    out_weights: Path,
    *,
    model_cfg: str = "yolov8n.yaml",
    epochs: int = 50,
    imgsz: int = 640,
    batch: int = 16,
    device: str = "auto",
    workers: int = 0,
    seed: int = 0,
    max_hours: float | None = None,
    project_dir: Path | None = None,
    config_dir: Path | None = None,
    extra_args: Mapping[str, Any] | None = None,
) -> Path:
    """Train a YOLO detector from a model config (random weights) and save its best weights.

    Parameters
    ----------
    dataset_yaml : Path
        A data.yaml such as `build_yolo_dataset` writes.
    out_weights : Path
        Where the weights go (a .pt checkpoint that `pid.vision.detect.load_detector` reads);
        written atomically, replacing any file there.
    model_cfg : str
        An ultralytics model config: a bundled name ("yolov8n.yaml", "yolo11n.yaml", ...) or a
        path to a .yaml file. Never a .pt: nothing is downloaded or fine-tuned.
    epochs, imgsz, batch, workers, seed
        As ultralytics' training arguments. `imgsz` should equal the tile side of the data set
        so symbols are learnt at their drawn size.
    device : str
        "auto" (CUDA when torch sees it, else CPU), "cpu", "cuda" or "cuda:N".
    max_hours : float, optional
        Stop after this many hours (ultralytics then fits the epoch count to the time).
    project_dir : Path, optional
        Folder for ultralytics' run (checkpoints, results.csv); a temporary folder, removed
        afterwards, when None.
    config_dir : Path, optional
        Ultralytics settings folder for `pid.vision.yolo_env.prepare_ultralytics`.
    extra_args : Mapping[str, Any], optional
        Further ultralytics training arguments (augmentation, optimizer, ``val``, ...); they
        cannot override the ones that keep training offline and inside `project_dir`.

    Returns
    -------
    Path
        `out_weights`.

    Raises
    ------
    PidInputError
        When `dataset_yaml` is missing or `model_cfg` is not a .yaml config.
    RuntimeError
        When training ends without a checkpoint.

    Notes
    -----
    Plots are off (they need fonts and time), AMP is off (its check downloads a model) and
    training is deterministic where torch allows: the same data, seed and device give the
    same weights on the CPU.
    """
    if not dataset_yaml.is_file():
        raise PidInputError(f"{dataset_yaml}: data set file not found")
    if not model_cfg.endswith((".yaml", ".yml")):
        raise PidInputError(
            f"model config {model_cfg!r} is not a .yaml file: training starts from a config, "
            "never from downloaded weights"
        )
    import_ultralytics(config_dir)
    from ultralytics.models import YOLO

    torch_device = resolve_device(device)
    with _run_folder(project_dir) as project:
        args: dict[str, Any] = {
            "deterministic": True,
            "verbose": False,
            **(extra_args or {}),
            "data": str(dataset_yaml.resolve()),
            "epochs": epochs,
            "imgsz": imgsz,
            "batch": batch,
            "device": _ultralytics_device(torch_device),
            "workers": workers,
            "seed": seed,
            # No download, no font, no run folder in the CWD, whatever extra_args say.
            "pretrained": False,
            "amp": False,
            "plots": False,
            "project": str(project),
            "name": "train",
            "exist_ok": True,
        }
        if max_hours is not None:
            args["time"] = max_hours
        YOLO(model_cfg, task="detect").train(**args)
        weights_dir = project / "train" / "weights"
        candidates = (weights_dir / "best.pt", weights_dir / "last.pt")
        best = next((p for p in candidates if p.is_file()), None)
        if best is None:
            raise RuntimeError(f"training ended without a checkpoint in {weights_dir}")
        copy_atomically(best, out_weights)
    return out_weights


# --- tiles ------------------------------------------------------------------------------------


def _check_tiling(
    tile: int, overlap: float, val_fraction: float, negative_share: float, min_visible: float
) -> None:
    if tile < 32:
        raise PidInputError(f"tile {tile} px is too small: at least 32")
    if not 0.0 <= overlap < 1.0:
        raise PidInputError(f"overlap {overlap} must be in [0, 1)")
    if not 0.0 <= val_fraction < 1.0:
        raise PidInputError(f"val_fraction {val_fraction} must be in [0, 1)")
    if negative_share < 0.0:
        raise PidInputError(f"negative_share {negative_share} must be zero or positive")
    if not 0.0 < min_visible <= 1.0:
        raise PidInputError(f"min_visible {min_visible} must be in (0, 1]")


def _load_sheet(folder: Path) -> _SheetData:
    """Check a sheet folder and read its boxes; the image size comes from the PNG header."""
    image_path, boxes_path = folder / _SHEET_IMAGE, folder / _SHEET_BOXES
    for path in (image_path, boxes_path):
        if not path.is_file():
            raise PidInputError(f"{path}: not found (a sheet folder needs {path.name})")
    try:
        with Image.open(image_path) as image:
            width, height = image.size
    except (OSError, ValueError) as exc:
        raise PidInputError(f"{image_path}: not a readable image ({exc})") from None
    boxes = load_boxes(boxes_path, image_size=(width, height))
    return _SheetData(folder, width, height, boxes)


def _read_image(path: Path, width: int, height: int) -> NDArray[np.uint8]:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None or image.shape != (height, width):
        raise PidInputError(f"{path}: not a readable {width}x{height} image")
    return np.asarray(image, dtype=np.uint8)


def _validation_sheets(count: int, fraction: float, rng: np.random.Generator) -> set[int]:
    """Indices of the sheets kept for validation: none with one sheet, never all of them."""
    wanted = min(round(count * fraction), count - 1)
    return {int(i) for i in rng.permutation(count)[:wanted]}


def _cut_sheet(
    sheet: _SheetData, names: list[str], tile: int, overlap: float, min_visible: float
) -> list[_Tile]:
    from sahi.slicing import get_slice_bboxes

    windows = get_slice_bboxes(
        image_height=sheet.height,
        image_width=sheet.width,
        slice_height=tile,
        slice_width=tile,
        auto_slice_resolution=False,
        overlap_height_ratio=overlap,
        overlap_width_ratio=overlap,
    )
    index = {name: i for i, name in enumerate(names)}
    # Boxes as one (n, 4) array of corners, to clip against every window at once.
    corners = np.array(
        [[x, y, x + w, y + h] for x, y, w, h in (b.bbox for b in sheet.boxes.boxes)],
        dtype=np.float64,
    ).reshape(-1, 4)
    classes = [index[b.category] for b in sheet.boxes.boxes]
    return [
        _Tile(x1, y1, x2, y2, _tile_labels(corners, classes, (x1, y1, x2, y2), min_visible))
        for x1, y1, x2, y2 in windows
    ]


def _tile_labels(
    corners: NDArray[np.float64],
    classes: list[int],
    window: tuple[int, int, int, int],
    min_visible: float,
) -> tuple[str, ...]:
    """YOLO lines (`class cx cy w h`, normalised to the tile) of the boxes kept in `window`."""
    x1, y1, x2, y2 = window
    tw, th = x2 - x1, y2 - y1
    clipped = np.clip(corners, [x1, y1, x1, y1], [x2, y2, x2, y2])
    cw = clipped[:, 2] - clipped[:, 0]
    ch = clipped[:, 3] - clipped[:, 1]
    area = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
    keep = (cw >= 1.0) & (ch >= 1.0) & (cw * ch >= min_visible * area)
    lines = []
    for i in np.flatnonzero(keep):
        bx1, by1 = clipped[i, 0] - x1, clipped[i, 1] - y1
        lines.append(
            f"{classes[i]} {(bx1 + cw[i] / 2) / tw:.6f} {(by1 + ch[i] / 2) / th:.6f} "
            f"{cw[i] / tw:.6f} {ch[i] / th:.6f}"
        )
    return tuple(lines)


def _keep_negatives(
    tiles: list[_Tile], negative_share: float, rng: np.random.Generator
) -> list[_Tile]:
    """All tiles with boxes, and a random few of the empty ones (order kept)."""
    empty = [i for i, t in enumerate(tiles) if not t.labels]
    wanted = min(len(empty), math.ceil(negative_share * (len(tiles) - len(empty))))
    chosen = {empty[int(i)] for i in rng.permutation(len(empty))[:wanted]}
    return [t for i, t in enumerate(tiles) if t.labels or i in chosen]


def _write_tiles(
    root: Path, split: str, stem: str, image: NDArray[np.uint8], tiles: list[_Tile]
) -> None:
    images, labels = root / "images" / split, root / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for t in tiles:
        name = f"{stem}_x{t.x1}_y{t.y1}"
        if not cv2.imwrite(str(images / f"{name}.png"), image[t.y1 : t.y2, t.x1 : t.x2], _PNG):
            raise OSError(f"{images / name}.png: could not be written")
        (labels / f"{name}.txt").write_text("".join(line + "\n" for line in t.labels))


def _write_data_yaml(root: Path, final: Path, names: list[str], *, has_val: bool) -> None:
    # JSON is valid YAML, and keeps this free of a YAML writer.
    data = {
        "path": str(final.resolve()),
        "train": "images/train",
        "val": "images/val" if has_val else "images/train",
        "nc": len(names),
        "names": names,
    }
    (root / DATA_YAML).write_text(json.dumps(data, indent=1) + "\n")


def _write_manifest(
    root: Path,
    sheets: list[_SheetData],
    val_sheets: set[int],
    names: list[str],
    counts: dict[str, int],
    tile: int,
    overlap: float,
    min_visible: float,
) -> None:
    manifest = {
        "tile": tile,
        "overlap": overlap,
        "min_visible": min_visible,
        "names": names,
        "tiles": counts,
        "sheets": [
            {"folder": str(s.folder.resolve()), "split": "val" if i in val_sheets else "train"}
            for i, s in enumerate(sheets)
        ],
    }
    (root / _MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def _replace_dir(work: Path, final: Path) -> None:
    """Put `work` in place of `final` (a rename each, so readers never see a half data set)."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    work.rename(final)
    if old.exists():
        shutil.rmtree(old)


# --- training ---------------------------------------------------------------------------------


@contextmanager
def _run_folder(project_dir: Path | None) -> Iterator[Path]:
    """The folder of one training run: the caller's, or a temporary one removed afterwards."""
    if project_dir is not None:
        project_dir.mkdir(parents=True, exist_ok=True)
        yield project_dir.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="pid-yolo-train-") as temp:
        yield Path(temp)


def _ultralytics_device(torch_device: str) -> str:
    """Ultralytics takes "cpu" or a bare CUDA index ("0"), not "cuda:0"."""
    return torch_device.removeprefix("cuda:")
