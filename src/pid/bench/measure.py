"""What every benchmark measures with: figures, median times, and a `pid` command's own peak."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    unit: str


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2]


def side_by_side(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
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


def run_cli(*args: str) -> tuple[float, float]:
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
