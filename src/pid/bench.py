"""Benchmarks whose figures `make bench` prints (measured, never asserted by tests)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

from skimage.morphology import skeletonize

from pid.pipeline.stages import NODE_PAD
from pid.synth.sheet import generate_sheet
from pid.vision.nodes import node_mask_from_boxes
from pid.vision.pipe_mask import classical_pipe_mask
from pid.vision.skeleton import skeletonize_pipes
from pid.vision.topology import (
    build_graph,
    classify_meeting_points,
    forget_cached_analysis,
    meeting_point_masks,
)


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    unit: str


def _timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2]


def _next_sheet(indices: Iterator[int], width: int, height: int, style: str) -> object:
    """A new sheet each call, so no call is served from anything the previous one left."""
    return generate_sheet(17, next(indices), width=width, height=height, style=style)


def bench_synth(repeats: int = 3) -> list[Figure]:
    """Sheets per minute for 4000x3000 and 8000x6000, both styles, one process."""
    figures: list[Figure] = []
    seconds: dict[tuple[int, int, str], float] = {}
    for width, height in ((4000, 3000), (8000, 6000)):
        for style in ("clean", "scan"):
            one = partial(_next_sheet, count(), width, height, style)
            took = _timed(one, repeats)
            seconds[(width, height, style)] = took
            figures.append(Figure(f"synth {width}x{height} {style}: seconds per sheet", took, "s"))
            figures.append(
                Figure(f"synth {width}x{height} {style}: sheets per minute", 60.0 / took, "/min")
            )
    ratio = seconds[(8000, 6000, "clean")] / seconds[(4000, 3000, "clean")]
    figures.append(
        Figure("synth time ratio 8000x6000 / 4000x3000 (4x the pixels), clean", ratio, "x")
    )
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures.append(Figure("peak RSS of this process", peak_kb / 1024.0, "MiB"))
    figures.append(Figure("CPU cores", float(os.cpu_count() or 1), ""))
    return figures


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
    # Every measured run starts as a fresh `pid run` would, with nothing reused.
    forget_cached_analysis()
    skeleton = skeletonize_pipes(pipe_mask, node_mask)
    junctions = classify_meeting_points(skeleton, pipe_mask, boxes)
    junction_mask, bridge_mask = meeting_point_masks(junctions, pipe_mask.shape)
    build_graph(skeleton, pipe_mask, boxes, junction_mask, bridge_mask)


def _side_by_side(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median times of several functions, called in turn, after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


# Linux keeps ru_maxrss across exec (a child starts with its parent's high-water mark), so the
# child reads its own peak from /proc, which a new process image starts afresh.
_PEAK_RSS = (
    "import sys\n"
    "from pid.cli import app\n"
    "try:\n"
    "    app(sys.argv[1:])\n"
    "finally:\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
    "    print('peak_kib', hwm, file=sys.stderr)\n"
)


def _run_cli(*args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `pid` command in its own process."""
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *args], capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"pid {' '.join(args)} failed: {child.stderr.strip()[-300:]}")
    peak_line = [line for line in child.stderr.splitlines() if line.startswith("peak_kib")][-1]
    return took, float(peak_line.split()[1]) / 1024.0


def bench_topology(repeats: int = 5) -> list[Figure]:
    """Steps 4-7 against a bare skeletonize, size scaling, and a whole `pid run`."""
    figures: list[Figure] = []
    steps: dict[tuple[int, int], float] = {}
    for width, height in ((5657, 4243), (8000, 6000)):
        pipe_mask, node_mask, boxes = _topology_inputs(width, height)
        measured = _side_by_side(
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
    with tempfile.TemporaryDirectory(prefix="pid-bench-") as tmp:
        synth_s, synth_peak = _run_cli(
            "synth", "--count", "1", "--out", f"{tmp}/truth", "--size", "8000x6000", "--seed", "17"
        )
        sheet = Path(tmp) / "truth" / "sheet_00000"
        run_s, run_peak = _run_cli(
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
    figures.append(Figure("peak RSS of pid run, 8000x6000", run_peak, "MiB"))
    figures.append(Figure("peak RSS of pid synth, 8000x6000", synth_peak, "MiB"))
    return figures


def bench_service_figures() -> list[Figure]:
    from pid.bench_service import bench_service

    return bench_service()


BENCHES: dict[str, Callable[[], list[Figure]]] = {
    "synth": bench_synth,
    "topology": bench_topology,
    "service": bench_service_figures,
}
