"""Symbol boxes: COCO JSON with categories by name (detections.json, validated_detections.json,
ground truth, `--symbols` input), and the forms the stages take them in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pid.core.formats._checks import as_list, as_number, fail, is_number, mapping, numbers
from pid.core.formats.jsonfile import read_json

#: Boxes as the topology takes them: (id, class, (x1, y1, x2, y2)) in pixels.
TopologyBoxes = list[tuple[str, str, tuple[float, float, float, float]]]


@dataclass(frozen=True, slots=True)
class Box:
    """One symbol box: category name, `bbox` as (x, y, w, h) in pixels, and a score in [0, 1]."""

    category: str
    bbox: tuple[float, float, float, float]
    score: float = 1.0


@dataclass(frozen=True, slots=True)
class BoxSet:
    """The boxes of one sheet and, when the file says, its image size (width, height)."""

    boxes: tuple[Box, ...]
    image_size: tuple[int, int] | None = None


def load_boxes(path: Path, *, image_size: tuple[int, int] | None = None) -> BoxSet:
    """Load and validate a COCO box file (symbols.coco.json, detections.json, ...).

    Parameters
    ----------
    path : Path
        COCO JSON with `images` (at most one: the sheet), `categories` and `annotations`.
    image_size : tuple[int, int] or None
        (width, height) of the drawing the boxes belong to, when the caller knows it: boxes are
        checked against it, and a different size in the file's `images` is an error.

    Returns
    -------
    BoxSet
        Boxes with their category *name*, (x, y, w, h) pixels and score (1.0 when absent), and
        the image size (width, height): `image_size` when given, else the file's, if any.

    Raises
    ------
    PidInputError
        On a bbox that is not 4 numbers, a width or height <= 0, a category_id missing from the
        file's own categories, a score outside [0, 1], a box outside the image, or a file image
        size that differs from `image_size`.
    """
    data = mapping(read_json(path), path, "")
    names = _category_names(as_list(data.get("categories", []), path, "categories"), path)
    size = _image_size(as_list(data.get("images", []), path, "images"), path)
    if image_size is not None:
        if size is not None and size != image_size:
            fail(
                path,
                "images[0]",
                f"{size[0]}x{size[1]} does not match the {image_size[0]}x{image_size[1]} image",
            )
        size = image_size
    annotations = as_list(data.get("annotations", []), path, "annotations")
    boxes = tuple(
        _box(raw, names, size, path, f"annotations[{i}]") for i, raw in enumerate(annotations)
    )
    return BoxSet(boxes=boxes, image_size=size)


def _category_names(categories: list[Any], path: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    for i, raw in enumerate(categories):
        cat = mapping(raw, path, f"categories[{i}]")
        cat_id, name = cat.get("id"), cat.get("name")
        if isinstance(cat_id, bool) or not isinstance(cat_id, int):
            fail(path, f"categories[{i}].id", "expected an integer")
        if not isinstance(name, str) or not name:
            fail(path, f"categories[{i}].name", "expected a name")
        if cat_id in names:
            fail(path, f"categories[{i}].id", f"duplicate id {cat_id}")
        names[cat_id] = name
    return names


def _image_size(images: list[Any], path: Path) -> tuple[int, int] | None:
    if len(images) > 1:
        fail(path, "images", f"expected one image (one sheet), found {len(images)}")
    if not images:
        return None
    image = mapping(images[0], path, "images[0]")
    if image.get("width") is None and image.get("height") is None:
        return None
    size = []
    for name in ("width", "height"):
        value = as_number(image.get(name))
        if value is None or value <= 0:
            fail(path, f"images[0].{name}", "expected a number > 0")
        size.append(int(value))
    return size[0], size[1]


#: Slack for rounding when checking that a box lies inside the image.
_INSIDE_TOLERANCE_PX = 0.5


def _box(
    raw: object, names: dict[int, str], size: tuple[int, int] | None, path: Path, where: str
) -> Box:
    ann = mapping(raw, path, where)
    x, y, w, h = numbers(ann.get("bbox"), 4, path, f"{where}.bbox")
    if w <= 0 or h <= 0:
        fail(path, f"{where}.bbox", f"width and height must be > 0, got {w:g}x{h:g}")
    cat_id = ann.get("category_id")
    if isinstance(cat_id, bool) or not isinstance(cat_id, int) or cat_id not in names:
        fail(path, f"{where}.category_id", f"{cat_id!r} is not in the file's categories")
    score = ann.get("score", 1.0)
    if not is_number(score) or not 0.0 <= score <= 1.0:
        fail(path, f"{where}.score", f"expected a number in [0, 1], got {score!r}")
    if size is not None:
        tol = _INSIDE_TOLERANCE_PX
        if x < -tol or y < -tol or x + w > size[0] + tol or y + h > size[1] + tol:
            fail(
                path,
                f"{where}.bbox",
                f"[{x:g}, {y:g}, {w:g}, {h:g}] lies outside the {size[0]}x{size[1]} image",
            )
    return Box(category=names[cat_id], bbox=(x, y, w, h), score=float(score))


def topology_boxes(box_set: BoxSet) -> TopologyBoxes:
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
