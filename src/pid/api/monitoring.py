"""What /metrics reports: figures read from PostgreSQL and Redis when scraped, rendered in
Prometheus text format.

Nothing is counted in the process. Stages run in worker pools on other machines and the API
may run as several replicas, so an in-process counter would hold one process's share; the
tables and the broker hold everyone's, and any replica scraped answers the same. Each scrape
reads a `Snapshot`, then renders it through a fresh registry holding one collector over it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from sqlalchemy.ext.asyncio import AsyncSession

from pid.core.statuses import REVIEW_STATUSES, DiagramStatus, StageRunState
from pid.db.stats import DurationCounts, StatsRepository
from pid.pipeline.ports import QUEUES
from pid.pipeline.recovery import RETRYING_PREFIX
from pid.pipeline.stages import STAGES
from pid.settings import Settings
from pid.tasks.broker import queue_lengths

log = logging.getLogger(__name__)

LabelT = TypeVar("LabelT", bound=str)

#: Upper bounds of the stage duration buckets, seconds: from a skipped or trivial stage (tens
#: of milliseconds) to the gpu pool's soft time limit (900 s by default); runs past it land in
#: +Inf only.
DURATION_BUCKETS_S = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
)  # fmt: skip
#: Seconds a scrape waits for Redis: well inside Prometheus's default scrape timeout (10 s),
#: so a hung broker costs the queue figures, not the whole scrape.
REDIS_TIMEOUT_S = 2.0
#: The error_stage label of a diagram in error that recorded no stage.
UNKNOWN_STAGE = "unknown"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one scrape reports, read before rendering (collectors cannot await)."""

    durations: Mapping[str, DurationCounts]
    diagrams: Mapping[DiagramStatus, int]
    stage_runs: Mapping[tuple[str, StageRunState], int]
    failures: Mapping[str, int]
    #: Diagrams in error by error_stage (None where no stage was recorded).
    in_error: Mapping[str | None, int]
    stale_reviews: Mapping[DiagramStatus, int]
    #: Messages waiting per queue; None when Redis did not answer.
    queues: Mapping[str, int] | None


async def read_snapshot(session: AsyncSession, settings: Settings) -> Snapshot:
    """The database's figures (its errors propagate), then the broker's (None if it is down).

    The caller owns `session` and its transaction; a session runs one statement at a time, so
    the queries run one after the other.
    """
    stats = StatsRepository(session)
    return Snapshot(
        durations=await stats.stage_durations(DURATION_BUCKETS_S),
        diagrams=await stats.diagrams_by_status(),
        stage_runs=await stats.stage_runs_by_state(),
        failures=await stats.failed_stage_runs(retrying_prefix=RETRYING_PREFIX),
        in_error=await stats.diagrams_in_error(),
        stale_reviews=await stats.stale_reviews(
            REVIEW_STATUSES, timedelta(hours=settings.stale_review_hours)
        ),
        queues=await read_queue_lengths(settings.broker_url),
    )


async def read_queue_lengths(broker_url: str) -> dict[str, int] | None:
    """Messages waiting in each of the service's queues, or None when Redis does not answer."""
    try:
        return await asyncio.to_thread(_queue_lengths, broker_url, QUEUES)
    except (redis.RedisError, OSError) as exc:
        log.warning("/metrics: Redis did not answer, queue lengths left out: %s", exc)
        return None


def _queue_lengths(broker_url: str, queues: Sequence[str]) -> dict[str, int]:
    # A client per scrape: scrapes are seconds apart, and a short-lived synchronous client
    # never touches the event loop the API's own (asynchronous) client belongs to.
    with redis.Redis.from_url(
        broker_url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    ) as client:
        return queue_lengths(client, queues)


def render(snapshot: Snapshot) -> bytes:
    """`snapshot` in Prometheus text format (prometheus_client.CONTENT_TYPE_LATEST)."""
    # A registry per scrape: the collector holds this scrape's figures, and the process-wide
    # default registry would add the process's own metrics, which differ between replicas.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)


class SnapshotCollector:
    """A prometheus_client collector that yields the metric families of one `Snapshot`."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield self._up()
        yield self._durations()
        yield _gauge("pid_diagrams", "Diagrams in each status.", "status", self.snapshot.diagrams)
        yield self._stage_runs()
        yield _gauge(
            "pid_stage_failures",
            "Stage runs failed and not waiting for a retry, by stage.",
            "stage",
            _over(self._stages(), self.snapshot.failures),
        )
        yield self._in_error()
        yield _gauge(
            "pid_stale_reviews",
            "Diagrams waiting at a review gate for longer than stale_review_hours, by status.",
            "status",
            self.snapshot.stale_reviews,
        )
        if self.snapshot.queues is not None:
            yield _gauge(
                "pid_queue_length",
                "Messages waiting in each broker queue (delivered ones not included).",
                "queue",
                self.snapshot.queues,
            )

    def _up(self) -> GaugeMetricFamily:
        up = {"database": 1, "redis": int(self.snapshot.queues is not None)}
        return _gauge("pid_up", "1 when the dependency answered this scrape.", "dependency", up)

    def _durations(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "pid_stage_duration_seconds",
            "Durations of the stage runs on record that succeeded, were skipped or failed.",
            labels=["stage"],
        )
        for stage, counts in sorted(self.snapshot.durations.items()):
            family.add_metric([stage], buckets=_buckets(counts), sum_value=counts.sum_s)
        return family

    def _stage_runs(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "pid_stage_runs", "Stage runs in each state, by stage.", labels=["stage", "state"]
        )
        for stage in self._stages():
            for state in StageRunState:
                family.add_metric([stage, state], self.snapshot.stage_runs.get((stage, state), 0))
        return family

    def _in_error(self) -> GaugeMetricFamily:
        by_stage: dict[str, int] = {}
        for stage, count in self.snapshot.in_error.items():
            label = stage or UNKNOWN_STAGE
            by_stage[label] = by_stage.get(label, 0) + count
        return _gauge(
            "pid_diagrams_in_error",
            "Diagrams in status error, by the stage that failed.",
            "error_stage",
            dict(sorted(by_stage.items())),
        )

    def _stages(self) -> list[str]:
        """The pipeline's stages, then any other stage name the rows hold (a stage since
        renamed or removed), so every stage on record is reported."""
        recorded = {stage for stage, _ in self.snapshot.stage_runs} | set(self.snapshot.failures)
        return [*STAGES, *sorted(recorded - set(STAGES))]


def _gauge(
    name: str, documentation: str, label: str, values: Mapping[LabelT, int]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in values.items():
        # str() gives a StrEnum's value, the label the API uses too.
        family.add_metric([str(value)], count)
    return family


def _over(keys: Iterable[str], counts: Mapping[str, int]) -> dict[str, int]:
    """`counts` for every one of `keys`, zero where it has none."""
    return {key: counts.get(key, 0) for key in keys}


def _buckets(counts: DurationCounts) -> list[tuple[str, float]]:
    """Prometheus buckets ("le" label, cumulative count), the +Inf bucket last."""
    # Formatted as prometheus_client formats its own "le" labels.
    bounds = [floatToGoString(bound) for bound in DURATION_BUCKETS_S]  # type: ignore[no-untyped-call]
    return [*zip(bounds, counts.cumulative, strict=True), ("+Inf", counts.count)]
