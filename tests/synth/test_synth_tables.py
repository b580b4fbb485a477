"""Tables, description headers, revision tables and notes: drawn on empty paper, with exact
ground truth (regions.json, text.json), never in the pipe mask."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from pid.synth.params import DEFAULT_PARAMS, UNIT_AREA
from pid.synth.sheet import Sheet, generate_sheet

#: Frozen floors, per 2000x1400 of sheet area, deliberately not read from the parameters:
#: data tables, description headers and notes blocks each; one revision table per sheet.
EACH_PER_UNIT = 0.9


def _inside(box: list[float], outer: list[float]) -> bool:
    x, y, w, h = box
    ox, oy, ow, oh = outer
    return x >= ox - 1 and y >= oy - 1 and x + w <= ox + ow + 1 and y + h <= oy + oh + 1


@pytest.mark.parametrize("size", [(2000, 1400), (4000, 3000)])
def test_every_sheet_has_its_tables(size: tuple[int, int]) -> None:
    width, height = size
    units = width * height / UNIT_AREA
    for seed in range(10 if width < 4000 else 3):
        sheet = generate_sheet(2000 + seed, 0, width=width, height=height)
        kinds = Counter(r["kind"] for r in sheet.regions)
        for kind in ("data_table", "description_header", "notes"):
            assert kinds[kind] >= math.floor(EACH_PER_UNIT * units), (seed, kinds)
        assert kinds["revision_table"] == 1, (seed, kinds)


@pytest.mark.parametrize("style", ["clean", "scan"])
def test_regions_are_ink_with_their_texts_and_outside_the_pipe_mask(style: str) -> None:
    sheet: Sheet = generate_sheet(11, 0, style=style)
    pipes = sheet.pipe_mask > 0
    nodes = sheet.node_mask > 0
    ink = sheet.image < 128
    by_id = {r["id"]: r for r in sheet.regions}
    for region in sheet.regions:
        if region["kind"] == "leader":
            continue  # a leader ends on its pipe; its own test is below
        x, y, w, h = (round(v) for v in region["bbox"])
        assert not pipes[y : y + h, x : x + w].any(), region
        assert not nodes[y : y + h, x : x + w].any(), region
        assert ink[y : y + h, x : x + w].mean() > 0.02, region
        texts = [t for t in sheet.text_items if t.get("region") == region["id"]]
        expected = region["rows"] * region["cols"] if region["kind"] == "data_table" else 1
        assert len(texts) >= expected, region
    for item in sheet.text_items:
        if "region" in item and item["kind"] != "leader_text":
            assert _inside(item["bbox"], by_id[item["region"]]["bbox"]), item


def test_tables_leave_the_rest_of_the_sheet_as_it_was() -> None:
    """Tables go on empty paper: every ink pixel outside them is the sheet's own."""
    sheet = generate_sheet(5, 0, params=replace(DEFAULT_PARAMS, leaders_per_unit=0.0))
    outside = np.ones(sheet.image.shape, dtype=bool)
    for region in sheet.regions:
        x, y, w, h = (round(v) for v in region["bbox"])
        outside[max(y - 2, 0) : y + h + 2, max(x - 2, 0) : x + w + 2] = False
    # The same sheet without tables: the table stream draws nothing else.
    bare = generate_sheet(
        5, 0, params=replace(DEFAULT_PARAMS, tables_per_unit=0.0, leaders_per_unit=0.0)
    )
    assert bare.regions == []
    assert np.array_equal(sheet.image[outside], bare.image[outside])


@pytest.mark.parametrize("style", ["clean", "scan"])
def test_leaders_run_from_their_note_to_a_pipe_and_are_not_pipe(style: str) -> None:
    sheet = generate_sheet(11, 0, style=style)
    leaders = [r for r in sheet.regions if r["kind"] == "leader"]
    assert len(leaders) >= 3
    pipes = sheet.pipe_mask > 0
    for leader in leaders:
        tx, ty = (round(v) for v in leader["to"])
        assert pipes[ty - 3 : ty + 4, tx - 3 : tx + 4].any(), leader
        (fx, fy), (tx2, ty2) = leader["from"], leader["to"]
        mx, my = round((fx + tx2) / 2), round((fy + ty2) / 2)
        assert not pipes[my - 1 : my + 2, mx - 1 : mx + 2].any(), leader
        assert (sheet.image[my - 1 : my + 2, mx - 1 : mx + 2] < 200).any(), leader
        texts = [t for t in sheet.text_items if t.get("region") == leader["id"]]
        assert len(texts) == 1 and texts[0]["kind"] == "leader_text"
