"""GET /metrics: every figure against a database arranged with known rows, queue lengths from
the test broker, Redis or PostgreSQL down, and the API key.

The module has a database of its own, so the figures are exact: nothing the other API tests
leave behind is counted. The test broker is shared, so queue lengths are compared with a scrape
taken before this module queued anything.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from api_support import (
    API,
    app_with_test_broker,
    closed_port,
    make_settings,
    make_test_database,
    png_bytes,
    serve,
)
from celery import Celery
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from pid.api.app import create_app
from pid.api.monitoring import DURATION_BUCKETS_S
from pid.core.statuses import DiagramStatus, StageRunState
from pid.pipeline.ports import QUEUES
from pid.pipeline.stages import STAGES
from pid.settings import Settings
from pid.tasks.broker import PRIORITY_SEPARATOR

KEY = "metrics-k3y"
#: Scraped families by name.
Families = dict[str, Metric]

# ---- the arranged rows ---------------------------------------------------------------------

#: Diagrams written straight to the table: name -> (status, error_stage, hours since update).
DIAGRAMS: dict[str, tuple[str, str | None, float]] = {
    "done": ("completed", None, 0.0),
    "broken_segment_1": ("error", "segment", 0.0),
    "broken_segment_2": ("error", "segment", 0.0),
    "broken_unknown": ("error", None, 0.0),
    "mask_stale": ("mask_review", None, 5.0),
    "mask_fresh": ("mask_review", None, 0.0),
    "graph_stale": ("graph_review", None, 3.0),
    "boxes_fresh": ("in_review", None, 0.5),
    "gone": ("deleted", None, 0.0),
    "stopped": ("cancelled", None, 0.0),
}
#: The server's stale_review_hours: mask_stale and graph_stale are past it, the others not.
STALE_REVIEW_HOURS = 1.0

#: Stage runs written straight to the table: (diagram, stage, state, duration_s, error).
STAGE_RUNS: list[tuple[str, str, str, float | None, str | None]] = [
    # segment: 0.05 sits exactly on a bound, 1000 s is past the last one.
    ("done", "segment", "succeeded", 0.05, None),
    ("broken_segment_1", "segment", "failed", 1000.0, "out of memory"),
    ("broken_segment_2", "segment", "failed", 0.3, "retrying: broker timeout"),
    ("broken_unknown", "segment", "skipped", 0.01, "no pipes"),
    ("mask_stale", "segment", "succeeded", None, None),  # no duration: not observed
    ("mask_fresh", "segment", "running", 5.0, None),  # not finished: not observed
    # detect
    ("done", "detect", "succeeded", 12.5, None),
    ("broken_segment_1", "detect", "succeeded", 899.0, None),
    ("broken_segment_2", "detect", "failed", None, None),
    ("broken_unknown", "detect", "failed", 0.2, "retrying: worker lost"),
    ("mask_stale", "detect", "failed", 0.2, "network down; retrying: later"),
    # export
    ("graph_stale", "export", "failed", 2.0, "disk full"),
]

#: What the histogram must hold: stage -> (every observed duration).
OBSERVED = {
    "segment": [0.05, 1000.0, 0.3, 0.01],
    "detect": [12.5, 899.0, 0.2, 0.2],
    "export": [2.0],
}
#: Failed runs not waiting for a retry (a "retrying:" error elsewhere than at the start counts).
FAILURES = {"segment": 1, "detect": 2, "export": 1}


@dataclass(frozen=True)
class Arranged:
    """The module's server and what it was arranged with."""

    url: str
    settings: Settings
    #: Scrapes before anything was arranged and after everything was.
    empty: Families
    full: Families
    #: Stage runs of the diagrams queued through the API, by (stage, state).
    queued_runs: Counter[tuple[str, str]]


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings on a database of this module's own."""
    with make_test_database() as url:
        yield make_settings(
            url, tmp_path_factory.mktemp("metrics"), stale_review_hours=STALE_REVIEW_HOURS
        )


@pytest.fixture(scope="module")
def io_messages(broker: redis.Redis) -> Iterator[list[tuple[str, bytes]]]:
    """Messages this module pushes into the io queue (one at a priority step), removed after."""
    pushed: list[tuple[str, bytes]] = []
    yield pushed
    for key, message in pushed:
        broker.lrem(key, 0, message)


@pytest.fixture(scope="module")
def arranged(
    metrics_settings: Settings,
    celery: Celery,
    broker: redis.Redis,
    io_messages: list[tuple[str, bytes]],
) -> Iterator[Arranged]:
    """A server on the module's database, scraped empty, then again once three chains are
    queued through the API, two io messages pushed and DIAGRAMS and STAGE_RUNS inserted."""
    app = app_with_test_broker(create_app(metrics_settings), celery)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10.0) as client:
        empty = scrape(url)
        uids = queue_three_chains(client)
        push_io_messages(broker, io_messages)
        asyncio.run(insert_rows(metrics_settings.database_url))
        queued_runs = Counter(
            (run["stage"], run["state"])
            for uid in uids
            for run in client.get(f"{API}/diagrams/{uid}").json()["stage_runs"]
        )
        yield Arranged(url, metrics_settings, empty, scrape(url), queued_runs)


def queue_three_chains(client: httpx.Client) -> list[str]:
    """Two uploads with auto_run and one uploaded, then run: three chains, each one message
    (its first stage's, detect, on gpu)."""
    uids = []
    for auto_run in ("true", "true", "false"):
        files = {"file": ("sheet.png", png_bytes())}
        response = client.post(f"{API}/diagrams", files=files, data={"auto_run": auto_run})
        assert response.status_code == 201, response.text
        uids.append(response.json()["uids"][0])
    response = client.post(f"{API}/diagrams/{uids[-1]}/run")
    assert response.status_code == 202, response.text
    return uids


def push_io_messages(broker: redis.Redis, pushed: list[tuple[str, bytes]]) -> None:
    """One message in io's own list, one in its list of priority step 3: two waiting."""
    for key in ("io", f"io{PRIORITY_SEPARATOR}3"):
        message = json.dumps({"headers": {"id": f"metrics-test-{len(pushed)}"}}).encode()
        broker.lpush(key, message)
        pushed.append((key, message))


async def insert_rows(database_url: str) -> None:
    """DIAGRAMS and STAGE_RUNS, in one committed transaction."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            ids = {name: await insert_diagram(connection, *row) for name, row in DIAGRAMS.items()}
            await connection.execute(
                text(
                    "INSERT INTO stage_runs (diagram_id, stage, state, duration_s, error) "
                    "VALUES (:diagram_id, :stage, :state, :duration_s, :error)"
                ),
                [
                    {"diagram_id": ids[d], "stage": s, "state": st, "duration_s": t, "error": e}
                    for d, s, st, t, e in STAGE_RUNS
                ],
            )
    finally:
        await engine.dispose()


async def insert_diagram(
    connection: AsyncConnection, status: str, error_stage: str | None, hours: float
) -> int:
    # Dated by the database's clock, the one /metrics compares updated_at with.
    diagram_id = await connection.scalar(
        text(
            "INSERT INTO diagrams (original_name, sha256, width, height, status, error_stage, "
            "updated_at) VALUES ('sheet.png', repeat('0', 64), 96, 64, :status, :error_stage, "
            "statement_timestamp() - make_interval(secs => :age_s)) RETURNING id"
        ),
        {"status": status, "error_stage": error_stage, "age_s": hours * 3600.0},
    )
    assert isinstance(diagram_id, int)
    return diagram_id


# ---- reading a scrape ----------------------------------------------------------------------


def scrape(url: str, **request: Any) -> Families:
    """The families /metrics answers, by name; fails unless it answers 200 in text format."""
    response = httpx.get(f"{url}/metrics", timeout=10.0, **request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def gauge(families: Families, name: str) -> dict[str, float]:
    """A one-label gauge as {label value: value}."""
    family = families[name]
    assert family.type == "gauge"
    return {next(iter(s.labels.values())): s.value for s in family.samples}


def histogram(families: Families, stage: str) -> tuple[dict[float, float], float, float]:
    """({bound: cumulative count}, count, sum) of one stage's durations."""
    samples = [
        s for s in families["pid_stage_duration_seconds"].samples if s.labels["stage"] == stage
    ]
    buckets = {float(s.labels["le"]): s.value for s in samples if s.name.endswith("_bucket")}
    (count,) = [s.value for s in samples if s.name.endswith("_count")]
    (total,) = [s.value for s in samples if s.name.endswith("_sum")]
    return buckets, count, total


# ---- the figures ---------------------------------------------------------------------------


def test_an_empty_database_reports_zeros(arranged: Arranged) -> None:
    empty = arranged.empty

    assert gauge(empty, "pid_diagrams") == {status.value: 0 for status in DiagramStatus}
    assert gauge(empty, "pid_stage_failures") == dict.fromkeys(STAGES, 0)
    assert gauge(empty, "pid_stale_reviews") == {
        "in_review": 0,
        "mask_review": 0,
        "graph_review": 0,
    }
    assert gauge(empty, "pid_diagrams_in_error") == {}
    assert empty["pid_stage_duration_seconds"].samples == []
    assert {s.value for s in empty["pid_stage_runs"].samples} == {0}
    assert gauge(empty, "pid_up") == {"database": 1, "redis": 1}


def test_stage_durations_are_a_histogram_of_finished_runs(arranged: Arranged) -> None:
    stages = {s.labels["stage"] for s in arranged.full["pid_stage_duration_seconds"].samples}
    assert stages == set(OBSERVED)

    for stage, durations in OBSERVED.items():
        buckets, count, total = histogram(arranged.full, stage)

        assert buckets == {
            **{bound: sum(d <= bound for d in durations) for bound in DURATION_BUCKETS_S},
            float("inf"): len(durations),
        }, stage
        assert count == len(durations)
        assert total == pytest.approx(sum(durations))


def test_the_histogram_buckets_are_the_ones_documented(arranged: Arranged) -> None:
    buckets, count, total = histogram(arranged.full, "segment")

    # Spelled out once, so a wrong bound or a count off by one fails even if OBSERVED drifts.
    assert list(buckets.values()) == [2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4]
    assert list(buckets)[:-1] == list(DURATION_BUCKETS_S)
    assert DURATION_BUCKETS_S[0] == 0.05 and DURATION_BUCKETS_S[-1] == 900.0
    assert (count, total) == (4, pytest.approx(1000.36))


def test_diagrams_are_counted_in_every_status(arranged: Arranged) -> None:
    expected = dict.fromkeys((status.value for status in DiagramStatus), 0)
    expected["uploaded"] = 3  # the three queued through the API
    expected.update(Counter(status for status, _, _ in DIAGRAMS.values()))

    assert gauge(arranged.full, "pid_diagrams") == expected
    assert expected["deleted"] == 1 and expected["error"] == 3


def test_failures_leave_out_runs_waiting_for_a_retry(arranged: Arranged) -> None:
    assert gauge(arranged.full, "pid_stage_failures") == {
        stage: FAILURES.get(stage, 0) for stage in STAGES
    }


def test_diagrams_in_error_are_counted_by_the_stage_that_failed(arranged: Arranged) -> None:
    assert gauge(arranged.full, "pid_diagrams_in_error") == {"segment": 2, "unknown": 1}


def test_stage_runs_are_counted_by_stage_and_state(arranged: Arranged) -> None:
    family = arranged.full["pid_stage_runs"]
    counted = {(s.labels["stage"], s.labels["state"]): s.value for s in family.samples}

    expected = Counter((stage, state) for _, stage, state, _, _ in STAGE_RUNS)
    expected.update(arranged.queued_runs)
    assert set(counted) == {(stage, state.value) for stage in STAGES for state in StageRunState}
    assert {key: value for key, value in counted.items() if value} == expected
    # Each of the three chains queued every one of its stages.
    assert arranged.queued_runs[("detect", "queued")] == 3


def test_stale_reviews_are_those_unchanged_past_the_setting(arranged: Arranged) -> None:
    assert gauge(arranged.full, "pid_stale_reviews") == {
        "in_review": 0,
        "mask_review": 1,
        "graph_review": 1,
    }


def test_queue_lengths_count_the_waiting_messages(arranged: Arranged) -> None:
    before = gauge(arranged.empty, "pid_queue_length")
    after = gauge(arranged.full, "pid_queue_length")

    assert set(after) == set(QUEUES)
    # Three chains on gpu; on io, one message in the queue's list and one at a priority step.
    assert {queue: after[queue] - before[queue] for queue in QUEUES} == {
        "gpu": 3,
        "cpu": 0,
        "io": 2,
        "maintenance": 0,
    }


# ---- dependencies down, the API key --------------------------------------------------------


def test_redis_down_still_reports_the_database(arranged: Arranged, tmp_path: Path) -> None:
    broken = make_settings(
        arranged.settings.database_url,
        tmp_path,
        broker_url=f"redis://127.0.0.1:{closed_port()}/0",
        stale_review_hours=STALE_REVIEW_HOURS,
    )
    with serve(create_app(broken)) as url:
        families = scrape(url)

    assert gauge(families, "pid_up") == {"database": 1, "redis": 0}
    assert "pid_queue_length" not in families
    for name in ("pid_diagrams", "pid_stage_failures", "pid_stale_reviews", "pid_stage_runs"):
        assert families[name].samples == arranged.full[name].samples, name


def test_database_down_is_a_json_503(tmp_path: Path) -> None:
    broken = make_settings(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/pid", tmp_path)
    with serve(create_app(broken)) as url:
        response = httpx.get(f"{url}/metrics", timeout=10.0)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "the database is unavailable; try again later"}


@pytest.fixture(scope="module")
def keyed_url(metrics_settings: Settings) -> Iterator[str]:
    keyed = make_settings(
        metrics_settings.database_url, Path(metrics_settings.data_dir), api_key=KEY
    )
    with serve(create_app(keyed)) as url:
        yield url


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
def test_a_missing_or_wrong_key_is_refused(keyed_url: str, headers: dict[str, str]) -> None:
    response = httpx.get(f"{keyed_url}/metrics", headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "missing or wrong API key (send it in the X-API-Key header)"
    }


def test_the_right_key_is_let_through(keyed_url: str) -> None:
    families = scrape(keyed_url, headers={"X-API-Key": KEY})

    assert gauge(families, "pid_up")["database"] == 1


def test_metrics_is_served_at_the_root_only(client: httpx.Client) -> None:
    assert client.get(f"{API}/metrics").status_code == 404
    assert "/metrics" in client.get("/openapi.json").json()["paths"]
