"""Ruled regions (tables, description headers, revision tables) found by their structure and
taken out of the pipe mask, on held-out generated sheets of both styles."""

from __future__ import annotations

import numpy as np
import pytest

from pid.core.formats.regions import Region
from pid.eval.regions import score_regions
from pid.synth.sheet import generate_sheet
from pid.vision.pipe_mask import classical_segmentation
from pid.vision.regions import region_mask, ruled_regions

#: Never used while tuning the region thresholds (seeds 0-29, 100-129 and 300-311 were).
HELD_OUT = range(400, 412)


def _as_regions(boxes: list[tuple[int, int, int, int]]) -> list[Region]:
    return [Region("ruled", (x1, y1, x2 - x1, y2 - y1)) for x1, y1, x2, y2 in boxes]


@pytest.mark.parametrize("style", ["clean", "scan"])
def test_ruled_regions_are_found_and_none_is_left_in_the_pipe_mask(style: str) -> None:
    total = None
    false_regions = 0
    for seed in HELD_OUT:
        sheet = generate_sheet(seed, 0, style=style)
        found = classical_segmentation(sheet.image, sheet.node_mask > 0)
        truth = [Region(r["kind"], tuple(r["bbox"])) for r in sheet.regions]  # type: ignore[arg-type]
        score = score_regions(_as_regions(found.regions), truth, found.pipe_mask)
        total = score if total is None else total + score
        true_area = region_mask(
            [
                (round(x), round(y), round(x + w), round(y + h))
                for x, y, w, h in (r.bbox for r in truth if r.ruled)
            ],
            found.pipe_mask.shape,
        )
        false_regions += sum(not true_area[y1:y2, x1:x2].any() for x1, y1, x2, y2 in found.regions)
    assert total is not None
    print(
        f"{style}: ruled regions found {total.found}/{total.ruled} (recall {total.recall:.3f}), "
        f"regions left in the pipe mask {total.regions - total.cleared}/{total.regions}, "
        f"false regions {false_regions}"
    )
    assert total.ruled >= 3 * len(HELD_OUT)
    assert total.recall >= 0.98
    assert total.cleared == total.regions
    assert false_regions == 0


def test_a_pipe_loop_with_crossbars_is_not_a_table() -> None:
    """Long parallel pipes closed into loops, with tags inside: ruled, but no table."""
    ink = np.zeros((900, 1200), dtype=bool)
    for y in (100, 400, 700):
        ink[y : y + 3, 100:1100] = True
    for x in (100, 600, 1097):
        ink[100:703, x : x + 3] = True
    ink[250:262, 300:340] = True  # a tag-sized blob
    assert ruled_regions(ink) == []


def test_a_drawn_grid_with_text_is_a_table() -> None:
    ink = np.zeros((400, 700), dtype=bool)
    for y in range(100, 261, 20):
        ink[y : y + 2, 100:601] = True
    for x in (100, 250, 400, 599):
        ink[100:262, x : x + 2] = True
    for y in range(106, 250, 20):
        for x in (130, 280, 430):
            ink[y : y + 8, x : x + 30 : 3] = True  # characters: short strokes
    regions = ruled_regions(ink)
    assert len(regions) == 1
    x1, y1, x2, y2 = regions[0]
    assert x1 <= 100 and y1 <= 100 and x2 >= 601 and y2 >= 262
