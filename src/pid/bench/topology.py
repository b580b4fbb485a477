"""`pid bench topology`: steps 4 to 7 against a bare skeletonize, size scaling, a whole
`pid run` with its peak memory."""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from skimage.morphology import skeletonize

from pid.bench.measure import Figure, run_cli, side_by_side
from pid.pipeline.stages import NODE_PAD
from pid.synth.sheet import generate_sheet
from pid.vision.nodes import node_mask_from_boxes
from pid.vision.pipe_mask import PipeMaskOptions, classical_pipe_mask, classical_segmentation
from pid.vision.skeleton import skeletonize_pipes
from pid.vision.topology import (
    analyse_skeleton,
    build_graph,
    classify_meeting_points,
    meeting_point_masks,
)


def _topology_inputs(width: int, height: int) -> tuple[Any, Any, Any]:
    """Pipe mask, node mask and boxes of a generated sheet, as the segment stage makes them."""
    sheet = generate_sheet(17, 0, width=width, height=height, style="clean")
    boxes = [
        (str(n), d["class"], tuple(d["bbox"]))
        for n, d in sheet.graph.nodes(data=True)
        if d["kind"] == "symbol"
    ]
    node_mask = node_mask_from_boxes([b[2] for b in boxes], sheet.image.shape, pad=NODE_PAD)
    return classical_pipe_mask(sheet.image, node_mask), node_mask, boxes


def _steps_4_to_7(pipe_mask: Any, node_mask: Any, boxes: Any) -> None:
    # As `pid run` does: one analysis of the skeleton for both classify and build_graph.
    skeleton = skeletonize_pipes(pipe_mask, node_mask)
    analysis = analyse_skeleton(skeleton, pipe_mask, boxes)
    junctions = classify_meeting_points(skeleton, pipe_mask, boxes, analysis=analysis)
    junction_mask, bridge_mask = meeting_point_masks(junctions, pipe_mask.shape)
    build_graph(skeleton, pipe_mask, boxes, junction_mask, bridge_mask, analysis=analysis)


def _region_cost(repeats: int) -> list[Figure]:
    """The pipe mask with and without the ruled-region step, side by side, on 8000x6000."""
    sheet = generate_sheet(17, 0, width=8000, height=6000, style="clean")
    node_mask = sheet.node_mask > 0
    measured = side_by_side(
        {
            "with": partial(classical_segmentation, sheet.image, node_mask),
            "without": partial(
                classical_segmentation,
                sheet.image,
                node_mask,
                options=PipeMaskOptions(remove_ruled_regions=False),
            ),
        },
        max(repeats // 2, 2),
    )
    added = measured["with"] - measured["without"]
    return [
        Figure("pipe mask 8000x6000 with ruled-region removal", measured["with"], "s"),
        Figure("pipe mask 8000x6000 without it", measured["without"], "s"),
        Figure("ruled-region removal, 8000x6000: seconds added", added, "s"),
    ]


def bench_topology(repeats: int = 5) -> list[Figure]:
    """Steps 4-7 against a bare skeletonize, size scaling, and a whole `pid run`."""
    figures: list[Figure] = []
    steps: dict[tuple[int, int], float] = {}
    for width, height in ((5657, 4243), (8000, 6000)):
        pipe_mask, node_mask, boxes = _topology_inputs(width, height)
        measured = side_by_side(
            {
                "skeletonize": partial(skeletonize, pipe_mask & ~node_mask),
                "steps": partial(_steps_4_to_7, pipe_mask, node_mask, boxes),
            },
            repeats,
        )
        steps[(width, height)] = measured["steps"]
        size = f"{width}x{height}"
        figures.append(Figure(f"bare skimage skeletonize {size}", measured["skeletonize"], "s"))
        figures.append(Figure(f"steps 4-7 (skeleton to graph) {size}", measured["steps"], "s"))
        figures.append(
            Figure(
                f"steps 4-7 / bare skeletonize {size}",
                measured["steps"] / measured["skeletonize"],
                "x",
            )
        )
    figures.append(
        Figure(
            "steps 4-7 time ratio 8000x6000 / 5657x4243 (2x the pixels)",
            steps[(8000, 6000)] / steps[(5657, 4243)],
            "x",
        )
    )
    figures.extend(_region_cost(repeats))
    with tempfile.TemporaryDirectory(prefix="pid-bench-") as tmp:
        synth_s, synth_peak = run_cli(
            "synth", "--count", "1", "--out", f"{tmp}/truth", "--size", "8000x6000", "--seed", "17"
        )
        sheet = Path(tmp) / "truth" / "sheet_00000"
        run_s, run_peak = run_cli(
            "run",
            str(sheet / "original.png"),
            "--out",
            f"{tmp}/pred",
            "--symbols",
            str(sheet / "symbols.coco.json"),
        )
    figures.append(Figure("pid synth, one 8000x6000 sheet (own process)", synth_s, "s"))
    figures.append(Figure("pid run, same sheet, all stages (own process)", run_s, "s"))
    figures.append(Figure("pid synth time / pid run time, same sheet", synth_s / run_s, "x"))
    added = next(f.value for f in figures if f.name.startswith("ruled-region removal"))
    figures.append(Figure("ruled-region removal / pid run time, 8000x6000", added / run_s, "x"))
    figures.append(Figure("peak RSS of pid run, 8000x6000", run_peak, "MiB"))
    figures.append(Figure("peak RSS of pid synth, 8000x6000", synth_peak, "MiB"))
    return figures
