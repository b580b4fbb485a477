"""Reading and writing stage artifacts in a folder, every write atomic.

Both runners hand a stage a folder: `pid run` its output folder, a Celery task a scratch folder
filled from storage. Stages only ever see artifact names from the stage table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from pid.core.errors import PidInputError
from pid.core.files import replace_atomically
from pid.eval.io import BoxSet, load_boxes

Boxes = list[tuple[str, str, tuple[float, float, float, float]]]


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=1) + "\n"
    replace_atomically(path, lambda tmp: tmp.write_text(text))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PidInputError(f"{path.name}: not valid JSON: {exc}") from exc


def write_text(path: Path, text: str) -> None:
    replace_atomically(path, lambda tmp: tmp.write_text(text))


def write_mask(path: Path, mask: NDArray[np.bool_]) -> None:
    """A bool mask as an 8-bit PNG, 255 where True."""
    image = mask.astype(np.uint8) * 255
    write_image(path, image)


def write_image(path: Path, image: NDArray[np.uint8]) -> None:
    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f"cannot write {path.name}")

    replace_atomically(path, write)


def read_mask(path: Path, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """A mask PNG as bool, checked against the drawing's (height, width)."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise PidInputError(f"{path.name}: not a readable PNG image")
    if image.shape != shape:
        raise PidInputError(
            f"{path.name}: size {image.shape[1]}x{image.shape[0]} does not match the drawing's "
            f"{shape[1]}x{shape[0]}"
        )
    out: NDArray[np.bool_] = image > 127
    return out


def read_boxes(path: Path, image_size: tuple[int, int]) -> BoxSet:
    return load_boxes(path, image_size=image_size)


def topology_boxes(box_set: BoxSet) -> Boxes:
    """Boxes as the topology takes them: (id, class, (x1, y1, x2, y2)), ids s1, s2, ..."""
    return [
        (f"s{i + 1}", box.category, (x, y, x + w, y + h))
        for i, box in enumerate(box_set.boxes)
        for x, y, w, h in [box.bbox]
    ]


def coco_from_boxes(box_set: BoxSet, width: int, height: int) -> dict[str, Any]:
    """A BoxSet as COCO JSON with categories by name (the boxes contract)."""
    names = sorted({box.category for box in box_set.boxes})
    category_id = {name: i + 1 for i, name in enumerate(names)}
    annotations = []
    for i, box in enumerate(box_set.boxes):
        x, y, w, h = box.bbox
        annotations.append(
            {
                "id": i + 1,
                "image_id": 1,
                "category_id": category_id[box.category],
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": 0,
                "score": box.score,
            }
        )
    return {
        "images": [{"id": 1, "file_name": "original.png", "width": width, "height": height}],
        "categories": [{"id": i, "name": n} for n, i in category_id.items()],
        "annotations": annotations,
    }
