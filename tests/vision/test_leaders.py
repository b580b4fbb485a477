"""Leader lines found in the pipe mask and taken out of it, on held-out generated sheets."""

from __future__ import annotations

import numpy as np
import pytest

from pid.core.formats.regions import Region
from pid.eval.regions import score_leaders
from pid.synth.sheet import generate_sheet
from pid.vision.leaders import find_leaders
from pid.vision.pipe_mask import classical_segmentation

#: Never used while tuning the leader thresholds (seeds 0-9 were).
HELD_OUT = range(500, 512)


def _truth(sheet_regions: list[dict[str, object]]) -> list[Region]:
    return [
        Region("leader", tuple(r["bbox"]), (tuple(r["from"]), tuple(r["to"])))  # type: ignore[arg-type]
        for r in sheet_regions
        if r["kind"] == "leader"
    ]


@pytest.mark.parametrize("style", ["clean", "scan"])
def test_leaders_are_found_and_nothing_else_is(style: str) -> None:
    found = leaders = false = 0
    recall_loss = []
    for seed in HELD_OUT:
        sheet = generate_sheet(seed, 0, style=style)
        seg = classical_segmentation(sheet.image, sheet.node_mask > 0)
        truth = _truth(sheet.regions)
        pred = [Region("leader", (x1, y1, x2 - x1, y2 - y1)) for x1, y1, x2, y2 in seg.leaders]
        score = score_leaders(pred, truth, None)
        found, leaders = found + score.found, leaders + score.leaders
        false += sum(not any(_overlap(p, t) for t in truth) for p in pred)
        gt = sheet.pipe_mask > 0
        recall_loss.append(1 - (seg.pipe_mask & gt).sum() / gt.sum())
    print(
        f"{style}: leaders found {found}/{leaders} ({found / leaders:.3f}), "
        f"false leaders {false}, pipe pixels missed {np.mean(recall_loss):.4f}"
    )
    assert leaders >= 3 * len(HELD_OUT)
    assert found / leaders >= 0.95
    assert false == 0


def _overlap(a: Region, b: Region) -> bool:
    ax, ay, aw, ah = a.bbox
    bx, by, bw, bh = b.bbox
    return min(ax + aw, bx + bw) > max(ax, bx) and min(ay + ah, by + bh) > max(ay, by)


def test_an_oblique_thin_line_is_a_leader_and_axis_aligned_pipes_are_not() -> None:
    mask = np.zeros((300, 300), dtype=bool)
    mask[150:153, 20:280] = True  # a pipe
    mask[20:280, 200:203] = True  # another, crossing it
    for t in range(60):  # a leader from (60, 90) down to the pipe at (100, 150)
        x, y = 60 + t * 40 / 60, 90 + t
        mask[round(y), round(x)] = True
    arc = np.zeros_like(mask)
    for a in np.linspace(0, np.pi, 40):  # a hop-over arc, radius 8
        arc[round(150 - 8 * np.sin(a)), round(240 + 8 * np.cos(a))] = True
    found = find_leaders(mask | arc)
    assert len(found.boxes) == 1
    x1, y1, x2, y2 = found.boxes[0]
    assert x1 <= 62 and y1 <= 92 and x2 >= 95 and y2 >= 140
    assert not found.mask[150:153].any() and not found.mask[:, 200:203].any()
