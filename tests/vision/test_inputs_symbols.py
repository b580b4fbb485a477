"""pid.vision.inputs.load_symbols: a user's COCO boxes, checked against the drawing's size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pid.core.classes import CLASS_NAMES
from pid.core.errors import PidInputError
from pid.vision.inputs import load_symbols

SIZE = (200, 100)  # width, height of the drawing
CUSTOM_CLASS = "customer_special_widget"


def _coco(annotations: list[dict[str, Any]], *, images: list[dict[str, Any]] | None = None) -> Any:
    return {
        "images": images if images is not None else [],
        "categories": [
            {"id": 1, "name": "gate_valve", "supercategory": "valve"},
            {"id": 7, "name": CUSTOM_CLASS},
        ],
        "annotations": annotations,
    }


def _ann(bbox: list[float], category_id: int = 1, **extra: Any) -> dict[str, Any]:
    return {"id": 1, "image_id": 1, "category_id": category_id, "bbox": bbox, **extra}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "symbols.coco.json"
    path.write_text(json.dumps(data))
    return path


def test_boxes_are_kept_by_category_name_including_unknown_classes(tmp_path: Path) -> None:
    assert CUSTOM_CLASS not in CLASS_NAMES
    path = _write(
        tmp_path,
        _coco([_ann([10, 20, 30, 40]), _ann([0, 0, 200, 100], category_id=7, score=0.5)]),
    )

    boxes = load_symbols(path, SIZE)

    assert [(b.category, b.bbox, b.score) for b in boxes.boxes] == [
        ("gate_valve", (10.0, 20.0, 30.0, 40.0), 1.0),
        (CUSTOM_CLASS, (0.0, 0.0, 200.0, 100.0), 0.5),
    ]
    assert boxes.image_size == SIZE


@pytest.mark.parametrize(
    "bbox",
    [[-0.4, 0, 10, 10], [0, -0.4, 10, 10], [190.4, 0, 10, 10], [0, 90, 10, 10.4]],
)
def test_boxes_within_half_a_pixel_of_the_edge_are_accepted(
    tmp_path: Path, bbox: list[float]
) -> None:
    assert len(load_symbols(_write(tmp_path, _coco([_ann(bbox)])), SIZE).boxes) == 1


@pytest.mark.parametrize(
    "bbox",
    [[-0.6, 0, 10, 10], [0, -0.6, 10, 10], [190.6, 0, 10, 10], [0, 90, 10, 10.6], [250, 0, 5, 5]],
)
def test_boxes_outside_the_image_are_refused(tmp_path: Path, bbox: list[float]) -> None:
    path = _write(tmp_path, _coco([_ann([1, 1, 2, 2]), _ann(bbox)]))

    with pytest.raises(PidInputError) as caught:
        load_symbols(path, SIZE)

    message = str(caught.value)
    assert message.startswith(f"{path}: annotations[1].bbox: ")
    assert message.endswith("lies outside the 200x100 image")


def test_the_drawing_size_wins_over_a_missing_images_entry(tmp_path: Path) -> None:
    # The file alone has no size; the box only fails against the drawing.
    path = _write(tmp_path, _coco([_ann([150, 50, 100, 10])]))

    with pytest.raises(PidInputError, match="outside the 200x100 image"):
        load_symbols(path, SIZE)


def test_file_size_different_from_the_drawing_is_refused(tmp_path: Path) -> None:
    images = [{"id": 1, "file_name": "original.png", "width": 400, "height": 200}]
    path = _write(tmp_path, _coco([_ann([10, 10, 5, 5])], images=images))

    with pytest.raises(PidInputError, match=r"images\[0\]: 400x200 does not match the 200x100"):
        load_symbols(path, SIZE)


def test_category_missing_from_the_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _coco([_ann([10, 10, 5, 5], category_id=3)]))

    with pytest.raises(PidInputError) as caught:
        load_symbols(path, SIZE)

    assert str(caught.value) == (
        f"{path}: annotations[0].category_id: 3 is not in the file's categories"
    )


@pytest.mark.parametrize("size", [(0, 5), (5, 0), (-3, 5)])
def test_non_positive_width_or_height_is_refused(tmp_path: Path, size: tuple[int, int]) -> None:
    path = _write(tmp_path, _coco([_ann([10, 10, *size])]))

    with pytest.raises(
        PidInputError, match=r"annotations\[0\]\.bbox: width and height must be > 0"
    ):
        load_symbols(path, SIZE)


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "symbols.coco.json"
    path.write_text('{"annotations": [')

    with pytest.raises(PidInputError, match=r"symbols\.coco\.json: not valid JSON: line 1"):
        load_symbols(path, SIZE)
