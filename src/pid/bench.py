"""Benchmarks whose figures `make bench` prints (measured, never asserted by tests)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

from pid.synth.sheet import generate_sheet


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


def bench_synth(repeats: int = 3) -> list[Figure]:
    """Sheets per minute for 4000x3000 and 8000x6000, both styles, one process."""
    figures: list[Figure] = []
    seconds: dict[tuple[int, int, str], float] = {}
    for width, height in ((4000, 3000), (8000, 6000)):
        for style in ("clean", "scan"):
            counter = iter(range(1_000_000))

            def one(w: int = width, h: int = height, s: str = style) -> object:
                return generate_sheet(17, next(counter), width=w, height=h, style=s)

            took = _timed(one, repeats)
            seconds[(width, height, style)] = took
            figures.append(Figure(f"synth {width}x{height} {style}: seconds per sheet", took, "s"))
            figures.append(Figure(f"synth {width}x{height} {style}: sheets per minute", 60.0 / took, "/min"))
    ratio = seconds[(8000, 6000, "clean")] / seconds[(4000, 3000, "clean")]
    figures.append(Figure("synth time ratio 8000x6000 / 4000x3000 (4x the pixels), clean", ratio, "x"))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures.append(Figure("peak RSS of this process", peak_kb / 1024.0, "MiB"))
    figures.append(Figure("CPU cores", float(os.cpu_count() or 1), ""))
    return figures


BENCHES: dict[str, Callable[[], list[Figure]]] = {"synth": bench_synth}
