"""Every benchmark `pid bench NAME` runs, by name."""

from __future__ import annotations

from collections.abc import Callable

from pid.bench.measure import Figure
from pid.bench.service import bench_service
from pid.bench.synth import bench_synth
from pid.bench.topology import bench_topology

BENCHES: dict[str, Callable[[], list[Figure]]] = {
    "synth": bench_synth,
    "topology": bench_topology,
    "service": bench_service,
}
