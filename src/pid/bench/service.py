"""Service benchmark: the io pool against prefork on slow HTTP calls, and queue-to-start latency.

Three measurements, all against real `celery worker` processes on real Redis:

1. 200 tasks that each make one GET to a local server answering after 100 ms, run once on a
   threads pool of 20 (each thread hands the GET to its process's event loop, as the io pool
   does) and once on a prefork pool of 2 (a blocking GET per task). Wall time from the first
   send to the last result, after one unmeasured round that fills the pool, and the ratio
   prefork / io. The same burst of no-op tasks on each pool gives the part of that time which
   is Celery's own per-task cost (broker, events, result backend) rather than waiting.
2. One io task making 20 GETs at once with asyncio.gather on its process's loop, against one
   prefork task making the same 20 GETs one after another; the duration measured inside each.
3. Median queue-to-start latency on an idle system for each pool kind (gpu: prefork 1, cpu:
   prefork with one process per core and max-tasks-per-child, io: threads). These are no-op
   tasks on the same pool settings as the real pools (prefetch 1, acks late, started state
   tracked, task events on), so they show what the pool and the broker add, not any stage.

The benchmark never touches the service's queues: it has its own Celery app (`bench_app`),
its own queue names (`bench-*`) and its own Redis database numbers (13 and 14 by default, on the
host of PID_BROKER_URL), which it flushes before and after. Worker processes learn those
databases from PID_BENCH_BROKER_URL and PID_BENCH_RESULT_BACKEND.

Both pools reuse one HTTP client per process (an httpx.AsyncClient on the loop, an httpx.Client
in each prefork child). A fresh client per call (plain `httpx.get`) would cost prefork tens of
milliseconds of client setup per task and so measure client construction rather than waiting.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis
from celery import Celery
from celery.result import AsyncResult, ResultSet
from celery.signals import worker_process_shutdown, worker_shutdown
from kombu import Queue

from pid.bench.measure import Figure
from pid.settings import get_settings
from pid.tasks.delivery import delivery_conf

T = TypeVar("T")

BROKER_DB, RESULT_DB = 13, 14
BROKER_ENV, RESULT_ENV = "PID_BENCH_BROKER_URL", "PID_BENCH_RESULT_BACKEND"
QUEUES = ("bench-io", "bench-prefork", "bench-gpu", "bench-cpu", "bench-io-idle")
#: How long the local server waits before answering, like a slow remote service.
SERVER_DELAY_S = 0.1
#: Limit of one hand-off to the loop: the threads pool enforces no Celery time limits.
HTTP_TIMEOUT_S = 30.0
#: Seconds a worker may take to answer its first ping.
WORKER_START_TIMEOUT_S = 90.0

GET_ASYNC = "pid-bench.get_async"
GET_BLOCKING = "pid-bench.get_blocking"
GATHER_ASYNC = "pid-bench.gather_async"
SEQUENTIAL_BLOCKING = "pid-bench.sequential_blocking"
NOOP_STARTED = "pid-bench.noop_started"


# --- the Celery app ----------------------------------------------------------------------------


def redis_db_url(db: int) -> str:
    """The broker's Redis server with another database number."""
    parts = urlsplit(get_settings().broker_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def bench_conf(broker_url: str, result_backend: str) -> dict[str, Any]:
    """The pools' delivery settings (pid.tasks.delivery), with the benchmark's queues and
    databases."""
    return {
        **delivery_conf(get_settings()),
        "broker_url": broker_url,
        "result_backend": result_backend,
        "result_expires": 3600,
        "task_queues": [Queue(name) for name in QUEUES],
        "task_default_queue": "bench-cpu",
    }


def _worker_conf() -> dict[str, Any]:
    """The workers' configuration, read when first needed rather than at import."""
    return bench_conf(
        os.environ.get(BROKER_ENV) or redis_db_url(BROKER_DB),
        os.environ.get(RESULT_ENV) or redis_db_url(RESULT_DB),
    )


bench_app = Celery("pid-bench", set_as_current=False)
bench_app.add_defaults(_worker_conf)


# --- per-process HTTP clients ------------------------------------------------------------------


@dataclass
class _Loop:
    """One event loop in a daemon thread and one pooled async client on it, as in
    pid.tasks.runtime."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    client: httpx.AsyncClient
    pid: int

    def run(self, make: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Run a coroutine on the loop and wait for it, within `timeout` seconds."""

        async def bounded() -> T:
            async with asyncio.timeout(timeout):
                return await make()

        return asyncio.run_coroutine_threadsafe(bounded(), self.loop).result()


_lock = threading.Lock()
_loop: _Loop | None = None
_blocking: tuple[int, httpx.Client] | None = None


def _process_loop() -> _Loop:
    """This process's loop, started on first use so that a prefork parent never owns one."""
    global _loop
    with _lock:
        if _loop is None or _loop.pid != os.getpid():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="pid-bench-loop", daemon=True)
            thread.start()

            async def build() -> httpx.AsyncClient:
                # 100 connections: more than the 20 threads or 20 gathered calls ever need.
                return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S)

            client = asyncio.run_coroutine_threadsafe(build(), loop).result()
            _loop = _Loop(loop, thread, client, os.getpid())
        return _loop


def _blocking_client() -> httpx.Client:
    """This process's blocking client, built in the prefork child that uses it."""
    global _blocking
    with _lock:
        if _blocking is None or _blocking[0] != os.getpid():
            _blocking = (os.getpid(), httpx.Client(timeout=HTTP_TIMEOUT_S))
        return _blocking[1]


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_clients(**_: Any) -> None:
    """Close the clients on the loop they belong to, then stop that loop."""
    global _loop, _blocking
    with _lock:
        loop, _loop = _loop, None
        blocking, _blocking = _blocking, None
    if blocking is not None and blocking[0] == os.getpid():
        blocking[1].close()
    if loop is None or loop.pid != os.getpid():
        return
    try:
        loop.run(loop.client.aclose, timeout=10.0)
    finally:
        loop.loop.call_soon_threadsafe(loop.loop.stop)
        loop.thread.join(timeout=10.0)


async def _get(client: httpx.AsyncClient, url: str) -> int:
    response = await client.get(url)
    response.raise_for_status()
    return response.status_code


# --- the benchmark tasks -----------------------------------------------------------------------


@bench_app.task(name=GET_ASYNC, shared=False)
def get_async(url: str) -> int:
    """One GET awaited on the process's loop; the pool thread only waits for its result."""
    bench_loop = _process_loop()
    return bench_loop.run(lambda: _get(bench_loop.client, url), HTTP_TIMEOUT_S)


@bench_app.task(name=GET_BLOCKING, shared=False)
def get_blocking(url: str) -> int:
    """The same GET, blocking the prefork child for its whole duration."""
    response = _blocking_client().get(url)
    response.raise_for_status()
    return response.status_code


@bench_app.task(name=GATHER_ASYNC, shared=False)
def gather_async(url: str, calls: int) -> dict[str, float]:
    """`calls` GETs at once on the loop; seconds from the first request to the last answer."""
    bench_loop = _process_loop()

    async def all_at_once() -> dict[str, float]:
        started = time.perf_counter()
        statuses = await asyncio.gather(*(_get(bench_loop.client, url) for _ in range(calls)))
        return {"seconds": time.perf_counter() - started, "answers": float(len(statuses))}

    return bench_loop.run(all_at_once, HTTP_TIMEOUT_S)


@bench_app.task(name=SEQUENTIAL_BLOCKING, shared=False)
def sequential_blocking(url: str, calls: int) -> dict[str, float]:
    """The same `calls` GETs one after another, as a blocking task has to make them."""
    client = _blocking_client()
    started = time.perf_counter()
    answers = 0
    for _ in range(calls):
        client.get(url).raise_for_status()
        answers += 1
    return {"seconds": time.perf_counter() - started, "answers": float(answers)}


@bench_app.task(name=NOOP_STARTED, shared=False)
def noop_started() -> float:
    """Nothing but the wall-clock time at which the task began."""
    return time.time()


# --- the slow HTTP server ----------------------------------------------------------------------


class _SlowServer(ThreadingHTTPServer):
    """One thread per connection, so hundreds of requests can wait at the same time."""

    daemon_threads = True
    # The default backlog of 5 drops connection attempts under a burst, and a dropped SYN
    # is retried only after a second, which would swamp a 100 ms wait.
    request_queue_size = 1024

    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.delay = delay


class _SlowHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open, so pooled clients reuse them as they would in service.
    protocol_version = "HTTP/1.1"
    # Without it the body waits for the ACK of the headers (Nagle against delayed ACK, 40 ms).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        time.sleep(cast(_SlowServer, self.server).delay)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a line per request would only slow the server down."""


@contextmanager
def slow_http_server(delay: float = SERVER_DELAY_S) -> Iterator[str]:
    """A local server on a free port whose every answer takes `delay` seconds; yields its URL."""
    server = _SlowServer(delay)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10.0)


# --- worker processes --------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    """One benchmark worker: its node name prefix, its queue and its pool options."""

    name: str
    queue: str
    pool: tuple[str, ...]


def _flush(*urls: str) -> None:
    for url in dict.fromkeys(urls):
        client = redis.Redis.from_url(url)
        try:
            client.flushdb()
        finally:
            client.close()


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


class Workers:
    """Real `celery worker` processes of `bench_app`, one per spec, each in its own group."""

    def __init__(self, app: Celery, env: dict[str, str], log_dir: Path) -> None:
        self.app = app
        self.env = env
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def node(self, spec: WorkerSpec) -> str:
        return f"{spec.name}@{socket.gethostname()}"

    def log(self, spec: WorkerSpec) -> Path:
        return self.log_dir / f"{spec.name}.log"

    def start(self, spec: WorkerSpec) -> None:
        with self.log(spec).open("wb") as out:
            self.processes[spec.name] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "pid.bench.service:bench_app", "worker",
                 "-Q", spec.queue, "-n", self.node(spec), "-E", "--loglevel", "INFO",
                 "--without-mingle", "--without-gossip", *spec.pool],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
                # Its own process group, so a stuck worker can be killed with its children.
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, specs: list[WorkerSpec]) -> None:
        """Wait until every worker of `specs` answers a ping; fail early if one exits."""
        waiting = {self.node(spec): spec for spec in specs}
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while waiting and time.monotonic() < deadline:
            for node, spec in waiting.items():
                process = self.processes[spec.name]
                if process.poll() is not None:
                    raise RuntimeError(
                        f"worker {node} exited with {process.returncode}:\n"
                        f"{_log_tail(self.log(spec))}"
                    )
            for reply in self.app.control.ping(destination=list(waiting), timeout=0.5) or []:
                for node in reply:
                    waiting.pop(node, None)
        if waiting:
            raise RuntimeError(f"workers {sorted(waiting)} did not answer in time")

    def stop(self, specs: list[WorkerSpec]) -> None:
        """Warm shutdown of all of them at once; a whole process group if it hangs."""
        stopping = [self.processes.pop(spec.name) for spec in specs if spec.name in self.processes]
        for process in stopping:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in stopping:
            try:
                process.wait(timeout=30.0)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10.0)


@contextmanager
def run_workers(
    app: Celery, specs: list[WorkerSpec], env: dict[str, str], log_dir: Path
) -> Iterator[Workers]:
    """Workers for `specs`, all answering pings; whichever are still running stop on exit.

    All start before any is waited for: start-up is mostly imports, which overlap well.
    """
    workers = Workers(app, env, log_dir)
    try:
        for spec in specs:
            workers.start(spec)
        workers.wait_ready(specs)
        yield workers
    finally:
        workers.stop(specs)


# --- measurements ------------------------------------------------------------------------------


def _burst(
    app: Celery, name: str, queue: str, args: tuple[Any, ...], count: int, warmup: int
) -> tuple[float, list[Any]]:
    """Send `count` tasks at once; seconds from the first send to the last result, and results.

    `warmup` unmeasured tasks go first, so that the pool's threads or children, their Redis
    connections and their HTTP connections exist before the clock starts: a long-running
    worker has them already.
    """
    timeout = 60.0 + count * SERVER_DELAY_S * 2
    _wait_all(app, [app.send_task(name, args=args, queue=queue) for _ in range(warmup)], timeout)
    started = time.perf_counter()
    values = _wait_all(
        app, [app.send_task(name, args=args, queue=queue) for _ in range(count)], timeout
    )
    return time.perf_counter() - started, values


def _wait_all(app: Celery, sent: list[AsyncResult[Any]], timeout: float) -> list[Any]:
    return list(ResultSet(sent, app=app).get(timeout=timeout)) if sent else []


def _one(app: Celery, name: str, queue: str, args: tuple[Any, ...] = ()) -> Any:
    return app.send_task(name, args=args, queue=queue).get(timeout=60.0)


def _latencies(app: Celery, queue: str, samples: int) -> list[float]:
    """Seconds from send to task start, one task at a time so that none waits behind another.

    One unmeasured task first: it opens the result subscription and wakes the pool.
    """
    _one(app, NOOP_STARTED, queue)
    measured = []
    for _ in range(samples):
        sent = time.time()
        started = float(_one(app, NOOP_STARTED, queue))
        measured.append(started - sent)
    return measured


@dataclass
class ServiceBench:
    """Everything one run measured: the figures and the raw results behind them."""

    figures: list[Figure] = field(default_factory=list)
    io_results: list[Any] = field(default_factory=list)
    prefork_results: list[Any] = field(default_factory=list)
    gather_runs: list[dict[str, float]] = field(default_factory=list)
    sequential_runs: list[dict[str, float]] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)


def run_service_bench(
    tasks: int = 200,
    calls: int = 20,
    repeats: int = 3,
    samples: int = 20,
    broker_db: int = BROKER_DB,
    result_db: int = RESULT_DB,
) -> ServiceBench:
    """Run all three measurements; see the module docstring for what each one means."""

    settings = get_settings()
    broker_url, result_backend = redis_db_url(broker_db), redis_db_url(result_db)
    env = {**os.environ, BROKER_ENV: broker_url, RESULT_ENV: result_backend}
    io_pool = WorkerSpec("bench-io", "bench-io", ("-P", "threads", "-c", "20"))
    prefork_pool = WorkerSpec("bench-prefork", "bench-prefork", ("-P", "prefork", "-c", "2"))
    idle_pools = {
        "gpu": WorkerSpec("bench-gpu", "bench-gpu", ("-P", "prefork", "-c", "1")),
        "cpu": WorkerSpec(
            "bench-cpu",
            "bench-cpu",
            (
                "-P",
                "prefork",
                "-c",
                str(settings.cpu_concurrency),
                "--max-tasks-per-child",
                str(settings.cpu_max_tasks_per_child),
            ),
        ),
        "io": WorkerSpec(
            "bench-io-idle", "bench-io-idle", ("-P", "threads", "-c", str(settings.io_concurrency))
        ),
    }
    result = ServiceBench()
    app = Celery("pid-bench-sender", set_as_current=False)
    app.conf.update(bench_conf(broker_url, result_backend))
    _flush(broker_url, result_backend)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pid-bench-service-") as tmp,
            slow_http_server() as url,
            # Every worker starts at once, which saves most of the start-up time; each pool is
            # measured while the others sit idle, and stopped once it has been measured.
            run_workers(
                app, [io_pool, prefork_pool, *idle_pools.values()], env, Path(tmp)
            ) as workers,
        ):
            io_s, result.io_results = _burst(app, GET_ASYNC, io_pool.queue, (url,), tasks, 20)
            io_floor_s, _ = _burst(app, NOOP_STARTED, io_pool.queue, (), tasks, 0)
            for _ in range(repeats):
                result.gather_runs.append(_one(app, GATHER_ASYNC, io_pool.queue, (url, calls)))
            workers.stop([io_pool])

            prefork_s, result.prefork_results = _burst(
                app, GET_BLOCKING, prefork_pool.queue, (url,), tasks, 2
            )
            prefork_floor_s, _ = _burst(app, NOOP_STARTED, prefork_pool.queue, (), tasks, 0)
            for _ in range(repeats):
                result.sequential_runs.append(
                    _one(app, SEQUENTIAL_BLOCKING, prefork_pool.queue, (url, calls))
                )
            workers.stop([prefork_pool])

            for kind, spec in idle_pools.items():
                result.latencies[kind] = _latencies(app, spec.queue, samples)
    finally:
        _flush(broker_url, result_backend)
        app.close()

    gather_ms = statistics.median(r["seconds"] for r in result.gather_runs) * 1000.0
    sequential_ms = statistics.median(r["seconds"] for r in result.sequential_runs) * 1000.0
    each = f"{tasks} tasks x one {SERVER_DELAY_S * 1000:.0f} ms GET"
    result.figures += [
        Figure(f"io pool (threads 20, asyncio), {each}: wall time", io_s, "s"),
        Figure(f"prefork pool (2 processes, blocking), {each}: wall time", prefork_s, "s"),
        Figure(f"prefork / io wall time, {each}", prefork_s / io_s, "x"),
        Figure(f"io pool, {tasks} no-op tasks: wall time (Celery's own cost)", io_floor_s, "s"),
        Figure(
            f"prefork pool, {tasks} no-op tasks: wall time (Celery's own cost)",
            prefork_floor_s,
            "s",
        ),
        Figure(f"one io task, {calls} GETs with asyncio.gather (median)", gather_ms, "ms"),
        Figure(f"one prefork task, {calls} blocking GETs in turn (median)", sequential_ms, "ms"),
        Figure(f"{calls} GETs in turn / with asyncio.gather", sequential_ms / gather_ms, "x"),
    ]
    for kind, spec in idle_pools.items():
        median_ms = statistics.median(result.latencies[kind]) * 1000.0
        pool = " ".join(spec.pool)
        result.figures.append(
            Figure(f"{kind} pool ({pool}): median queue-to-start, no-op task", median_ms, "ms")
        )
    return result


def bench_service() -> list[Figure]:
    """The service figures: io pool against prefork, gather against sequential, latencies."""
    return run_service_bench().figures
