"""`pid bench synth`: sheets per minute of the generator."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from functools import partial
from itertools import count

from pid.bench.measure import Figure, timed
from pid.synth.sheet import generate_sheet


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
            took = timed(one, repeats)
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
