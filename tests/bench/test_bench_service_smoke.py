"""The service benchmark's machinery on a small scale: real workers, real Redis, every result back.

Timings are the benchmark's business; these tests only check that each task ran and answered,
that every figure is a positive number and that nothing is left in the benchmark's database.
"""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
import redis

from pid.bench.service import redis_db_url, run_service_bench, slow_http_server

#: A database of its own, apart from the benchmark's default ones and every other test's.
TEST_DB = 15
TASKS, CALLS, SAMPLES = 20, 5, 3


async def _get_once(host: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


def test_slow_server_answers_200_requests_at_once() -> None:
    # Plain sockets rather than httpx: this checks the server, and httpx's own per-request
    # cost at 200 requests in flight would dominate the test's run time.
    async def burst(host: str, port: int) -> list[bytes]:
        answers = await asyncio.gather(*(_get_once(host, port) for _ in range(200)))
        return [a.split(b"\r\n", 1)[0] + b" " + a.rsplit(b"\r\n", 1)[-1] for a in answers]

    with slow_http_server(delay=0.1) as url:
        address = httpx.URL(url)
        assert address.host == "127.0.0.1"
        assert address.port is not None
        assert asyncio.run(burst(address.host, address.port)) == [b"HTTP/1.1 200 OK ok"] * 200


@pytest.mark.timeout(180)
def test_service_bench_brings_every_result_back() -> None:
    run = run_service_bench(
        tasks=TASKS, calls=CALLS, repeats=1, samples=SAMPLES, broker_db=TEST_DB, result_db=TEST_DB
    )

    assert run.io_results == [200] * TASKS
    assert run.prefork_results == [200] * TASKS
    assert [r["answers"] for r in run.gather_runs] == [CALLS]
    assert [r["answers"] for r in run.sequential_runs] == [CALLS]
    assert sorted(run.latencies) == ["cpu", "gpu", "io"]
    assert all(len(samples) == SAMPLES for samples in run.latencies.values())
    # A task cannot start before it was sent: both clocks are this machine's.
    assert all(s >= 0 for samples in run.latencies.values() for s in samples)

    names = [f.name for f in run.figures]
    assert len(names) == len(set(names))
    assert sum("wall time" in n for n in names) == 5  # two pools, their ratio, two no-op floors
    assert sum("GETs" in n for n in names) == 3  # gather, in turn, their ratio
    assert sum("queue-to-start" in n for n in names) == 3  # gpu, cpu, io
    assert all(math.isfinite(f.value) and f.value > 0 for f in run.figures), run.figures

    client = redis.Redis.from_url(redis_db_url(TEST_DB))
    try:
        assert client.dbsize() == 0
    finally:
        client.close()
