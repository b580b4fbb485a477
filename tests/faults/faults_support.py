"""Private servers, a real worker fleet, and what the fault tests read and check.

Every fault test runs on its own Redis and its own PostgreSQL cluster, started here on free
ports, and on its own worker processes (one per pool, and beat). Killing or restarting any of
them touches nothing else on the machine: not the shared Redis and PostgreSQL, not another
test's fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import redis
from celery import Celery
from sqlalchemy.pool import NullPool

from pid.db.engine import create_engine, create_sessionmaker
from pid.pipeline.ports import Enqueue, Message
from pid.pipeline.service import DiagramService
from pid.settings import get_settings
from pid.storage import LocalStorage
from pid.tasks.enqueue import enqueue_to, revoke_with

T = TypeVar("T")

#: The settings every process of a fault test runs with, besides the servers and folders:
#: short maintenance intervals so recovery shows within seconds, short stage time limits, three
#: attempts per stage run.
FAULT_SETTINGS = {
    "PID_REAPER_INTERVAL": "2",
    "PID_REAPER_GRACE": "5",
    "PID_ORPHAN_AFTER": "4",
    "PID_CPU_SOFT_TIME_LIMIT": "50",
    "PID_CPU_TIME_LIMIT": "60",
    "PID_GPU_SOFT_TIME_LIMIT": "50",
    "PID_GPU_TIME_LIMIT": "60",
    "PID_IO_TIMEOUT": "30",
    "PID_STAGE_MAX_ATTEMPTS": "3",
    "PID_TASK_MAX_RETRIES": "5",
    "PID_MAINTENANCE_LOCK_TTL": "30",
    "PID_CPU_CONCURRENCY": "1",
    "PID_IO_CONCURRENCY": "4",
    "PID_DEVICE": "cpu",
}
REAPER_INTERVAL = float(FAULT_SETTINGS["PID_REAPER_INTERVAL"])
ORPHAN_AFTER = float(FAULT_SETTINGS["PID_ORPHAN_AFTER"])
MAX_ATTEMPTS = int(FAULT_SETTINGS["PID_STAGE_MAX_ATTEMPTS"])

#: One worker per pool, as the Makefile starts them; one process per prefork pool, so the child
#: running a stage is the pool's only child.
POOLS: dict[str, list[str]] = {
    "gpu": ["-P", "prefork", "-c", "1"],
    "cpu": ["-P", "prefork", "-c", "1", "--max-tasks-per-child", "50"],
    "io": ["-P", "threads", "-c", "4"],
    "maintenance": ["-P", "prefork", "-c", "1"],
}

RESTING = ("completed", "error")
ACTIVE = ("queued", "running")


class FaultSetupError(RuntimeError):
    """A private server or worker did not come up; the message says which and why."""


# --- private servers ------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_program(name: str) -> str | None:
    """`name` on PATH, else in the newest /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return str(versions[-1]) if versions else None


def missing_programs() -> list[str]:
    """What the fault tests need and this machine lacks."""
    missing = [name for name in ("redis-server", "initdb", "pg_ctl") if find_program(name) is None]
    if _as_root():
        # PostgreSQL refuses to run as root: its programs run as the `postgres` user.
        if shutil.which("runuser") is None:
            missing.append("runuser")
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing.append("a `postgres` user")
    return missing


def _as_root() -> bool:
    return os.geteuid() == 0


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its programs as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if _as_root() else command


def postgres_folder(prefix: str) -> Path:
    """A new folder under the system temp dir that the PostgreSQL programs may write to.

    Not under pytest's tmp_path: as root that one is closed to every other user.
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if _as_root():
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    return folder


def _run(command: list[str], what: str, timeout: float = 60.0) -> None:
    # Output to a file, not a pipe: a server started by the command inherits it and would
    # keep a pipe open for as long as it runs.
    with tempfile.TemporaryFile() as output:
        done = subprocess.run(
            command, stdout=output, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
        if done.returncode != 0:
            output.seek(0)
            text = output.read().decode(errors="replace")
            raise FaultSetupError(f"{what} failed ({done.returncode}): {text}")


class PrivateRedis:
    """A redis-server of one test: no persistence, so a restart comes back empty."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = (self.folder / f"redis-{self.starts}.log").open("wb")
        server = find_program("redis-server") or "redis-server"
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise FaultSetupError(f"redis-server on port {self.port} exited at start")
            try:
                with redis.Redis(port=self.port, socket_timeout=1.0) as client:
                    if client.ping():
                        return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise FaultSetupError(f"redis-server on port {self.port} did not answer")

    def kill(self) -> None:
        """Stop the server at once, as a crash would; everything it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


class PrivatePostgres:
    """A PostgreSQL cluster of one test, in a folder of its own, on a free port."""

    #: Durability off: the clusters are thrown away, and the tests want speed.
    FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.pg_ctl = find_program("pg_ctl") or "pg_ctl"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the service's database on this cluster."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/pid"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/pid"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    def initdb(self) -> None:
        initdb = find_program("initdb") or "initdb"
        _run(
            _as_postgres([initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust",
                          "-E", "UTF8", "--locale=C", "--no-sync"]),
            "initdb",
        )  # fmt: skip

    def copy_from(self, template: Path) -> None:
        """This cluster's data folder as a copy of a stopped cluster's (owner and modes kept)."""
        _run(["cp", "-a", str(template), str(self.data)], "copying the template cluster")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.base} {self.FAST}"
        )
        command = [self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                   "-o", options, "start"]  # fmt: skip
        _run(_as_postgres(command), "pg_ctl start", timeout=90)

    def restart(self) -> None:
        """Stop (fast: every connection is cut) and start again with the same options."""
        command = [self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w",
                   "-t", "60", "restart"]  # fmt: skip
        _run(_as_postgres(command), "pg_ctl restart", timeout=90)

    def stop(self, mode: str = "fast") -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        command = [self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"]
        _run(_as_postgres(command), "pg_ctl stop", timeout=90)

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def make_template_cluster() -> PrivatePostgres:
    """A cluster with the service's database migrated to head, stopped: each test copies it."""
    from pid.db.migrate import ensure_database, upgrade

    cluster = PrivatePostgres(postgres_folder("pid-faults-template-"))
    try:
        cluster.initdb()
        cluster.start()
        try:
            ensure_database(cluster.url)
            upgrade(cluster.url)
        finally:
            cluster.stop()
    except BaseException:
        cluster.remove()
        raise
    return cluster


def start_private_postgres(template: PrivatePostgres) -> PrivatePostgres:
    cluster = PrivatePostgres(postgres_folder("pid-faults-pg-"))
    try:
        cluster.copy_from(template.data)
        cluster.start()
    except BaseException:
        cluster.remove()
        raise
    return cluster


# --- the worker fleet -----------------------------------------------------------------------


def service_env(
    redis_server: PrivateRedis, postgres: PrivatePostgres, root: Path
) -> dict[str, str]:
    """The PID_* settings of one test's processes: its servers, its folders, short limits."""
    return {
        "PID_DATABASE_URL": postgres.url,
        "PID_BROKER_URL": redis_server.url(0),
        "PID_RESULT_BACKEND": redis_server.url(1),
        "PID_DATA_DIR": str(root / "data"),
        "PID_TMP_DIR": str(root / "scratch"),
        "PID_LOG_DIR": str(root / "logs"),
        **FAULT_SETTINGS,
    }


@dataclass(frozen=True)
class Kill:
    """One SIGKILL the test sent: to which pool's child processes, when, and for which run."""

    pool: str
    pids: tuple[int, ...]
    at: float
    stage: str = ""
    uid: str = ""
    attempt: int = 0


class Fleet:
    """Real `celery worker` processes, one per pool, and one `celery beat`, each with a log."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PID_")}
        self.env = {**inherited, **env, "PYTHONUNBUFFERED": "1"}
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.beat: subprocess.Popen[bytes] | None = None
        self.beat_starts = 0
        self.kills: list[Kill] = []

    def log_path(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def _spawn(self, name: str, arguments: list[str], mode: str = "w") -> subprocess.Popen[bytes]:
        with self.log_path(name).open(mode + "b") as log:
            # A session of its own: the pool's children can be ended with it by group id.
            return subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "pid.tasks.app", *arguments],
                env=self.env, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def start(self, pools: Iterable[str] = POOLS, beat: bool = True) -> None:
        names = list(pools)
        for pool in names:
            self.workers[pool] = self._spawn(
                pool,
                ["worker", "-Q", pool, "-n", f"{pool}@%h", "-E", "--loglevel", "INFO",
                 "--without-mingle", "--without-gossip", *POOLS[pool]],
            )  # fmt: skip
        if beat:
            self.start_beat()
        deadline = time.monotonic() + 120.0
        for pool in names:
            self._wait_for(pool, re.compile(rf"{pool}@\S+ ready\."), deadline)

    def start_beat(self) -> None:
        self.beat_starts += 1
        self.beat = self._spawn(
            "beat",
            ["beat", "--loglevel", "INFO", "--schedule", str(self.folder / "celerybeat-schedule")],
            mode="a" if self.beat_starts > 1 else "w",
        )

    def stop_beat(self) -> None:
        """SIGTERM, as a service manager stops it; waits for it to exit."""
        if self.beat is not None:
            _terminate(self.beat, timeout=20.0)
        self.beat = None

    def _wait_for(self, name: str, pattern: re.Pattern[str], deadline: float) -> None:
        process = self.workers.get(name, self.beat)
        while time.monotonic() < deadline:
            if pattern.search(self.log(name)):
                return
            if process is not None and process.poll() is not None:
                break
            time.sleep(0.2)
        raise FaultSetupError(f"{name} did not start:\n{self.log(name)[-3000:]}")

    def children(self, pool: str) -> list[int]:
        """The pool processes of a prefork worker (its child processes)."""
        return _children(self.workers[pool].pid)

    def kill_children(self, pool: str, *, stage: str = "", uid: str = "", attempt: int = 0) -> Kill:
        """SIGKILL every child of the pool's worker, as the kernel's OOM killer would."""
        pids = self.children(pool)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        kill = Kill(pool, tuple(pids), time.time(), stage, uid, attempt)
        self.kills.append(kill)
        return kill

    def log(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def tails(self, chars: int = 2500) -> str:
        parts = []
        for name in (*POOLS, "beat"):
            text = self.log(name)
            if text:
                parts.append(f"----- {name}.log (last {chars} chars) -----\n{text[-chars:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Beat and every worker at once (warm shutdown); whatever is left is killed."""
        processes = [*self.workers.values(), *([self.beat] if self.beat else [])]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            _terminate(process, timeout=30.0)
        self.workers.clear()
        self.beat = None


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    # The process group holds the pool children too; it was started as its own session.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return sorted(set(found))


# --- reading the database -------------------------------------------------------------------


@dataclass(frozen=True)
class RunRow:
    stage: str
    state: str
    attempt: int
    task_id: str | None
    error: str | None


@dataclass(frozen=True)
class DiagramRow:
    uid: str
    status: str
    error_stage: str | None
    error_message: str | None
    runs: dict[str, RunRow]

    @property
    def active(self) -> list[RunRow]:
        return [run for run in self.runs.values() if run.state in ACTIVE]

    @property
    def settled(self) -> bool:
        """At rest: completed or in error, with nothing queued or running."""
        return self.status in RESTING and not self.active

    def describe(self) -> str:
        runs = ", ".join(
            f"{r.stage}={r.state}#{r.attempt}" + (f" ({r.error})" if r.error else "")
            for r in self.runs.values()
        )
        error = f" [{self.error_stage}: {self.error_message}]" if self.error_message else ""
        return f"{self.uid} {self.status}{error}: {runs}"


class ProbeError(RuntimeError):
    """The database could not be read (it may be restarting)."""


class Probe:
    """Reads the test's database from the test process: one asyncpg connection on a loop of
    its own, opened again after the server went away. Use it from one thread only."""

    QUERY = """
        SELECT d.uid::text AS uid, d.status, d.error_stage, d.error_message,
               r.stage, r.state, r.attempt, r.task_id, r.error
        FROM diagrams d LEFT JOIN stage_runs r ON r.diagram_id = d.id
        ORDER BY d.id, r.id
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.loop = asyncio.new_event_loop()
        self.connection: asyncpg.Connection | None = None

    def diagrams(self) -> dict[str, DiagramRow]:
        rows = self._fetch(self.QUERY)
        found: dict[str, DiagramRow] = {}
        for row in rows:
            diagram = found.setdefault(
                row["uid"],
                DiagramRow(row["uid"], row["status"], row["error_stage"], row["error_message"], {}),
            )
            if row["stage"] is not None:
                diagram.runs[row["stage"]] = RunRow(
                    row["stage"], row["state"], row["attempt"], row["task_id"], row["error"]
                )
        return found

    def _fetch(self, query: str) -> list[Any]:
        async def fetch() -> list[Any]:
            if self.connection is None or self.connection.is_closed():
                self.connection = await asyncpg.connect(self.dsn, timeout=3.0)
            return list(await self.connection.fetch(query, timeout=5.0))

        try:
            return self.loop.run_until_complete(fetch())
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            self._drop()
            raise ProbeError(str(e) or type(e).__name__) from e

    def _drop(self) -> None:
        if self.connection is not None:
            connection, self.connection = self.connection, None
            try:
                self.loop.run_until_complete(connection.close(timeout=2.0))
            except Exception:
                connection.terminate()

    def close(self) -> None:
        self._drop()
        self.loop.close()


@dataclass
class Tally:
    """How a set of diagrams ended: completed, in error (lost), or not at rest (stuck)."""

    rows: dict[str, DiagramRow]
    expected_errors: frozenset[str] = frozenset()

    @property
    def completed(self) -> list[str]:
        return [u for u, r in self.rows.items() if r.settled and r.status == "completed"]

    @property
    def errors(self) -> list[str]:
        return [u for u, r in self.rows.items() if r.status == "error"]

    @property
    def lost(self) -> list[str]:
        return [u for u in self.errors if u not in self.expected_errors]

    @property
    def stuck(self) -> list[str]:
        return [u for u, r in self.rows.items() if not r.settled]

    def line(self, what: str) -> str:
        extra = (
            f", {len(self.errors) - len(self.lost)} in error as expected"
            if (self.expected_errors)
            else ""
        )
        return (
            f"{what}: {len(self.rows)} in, {len(self.completed)} completed, "
            f"{len(self.lost)} lost, {len(self.stuck)} stuck{extra}"
        )

    def describe(self) -> str:
        return "\n".join(row.describe() for row in self.rows.values())


def settle(
    probe: Probe,
    uids: Sequence[str],
    timeout: float,
    expected_errors: Iterable[str] = (),
) -> Tally:
    """Poll until every diagram is at rest or `timeout` passes; how they stand then."""
    deadline = time.monotonic() + timeout
    rows: dict[str, DiagramRow] = {}
    while True:
        try:
            every = probe.diagrams()
            rows = {uid: every[uid] for uid in uids}
        except ProbeError:
            pass
        if rows and all(row.settled for row in rows.values()):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    return Tally(rows, frozenset(expected_errors))


def wait_until(
    probe: Probe, test: Callable[[dict[str, DiagramRow]], T | None], timeout: float, what: str
) -> T:
    """Poll the database until `test` returns something; that, or AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = test(probe.diagrams())
        except ProbeError:
            found = None
        if found is not None:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- the service, from the test process -----------------------------------------------------


@dataclass(frozen=True)
class Drawing:
    """A generated drawing and the symbols it was drawn with (so detect is skipped)."""

    name: str
    png: bytes
    symbols: bytes


@dataclass(frozen=True)
class Drawings:
    """The drawings of the fault tests: a large one (its stages run long enough to be caught
    mid-run) and a medium one."""

    large: Drawing
    medium: Drawing


class Client:
    """DiagramService on the test's database and storage, sending through the test's broker."""

    def __init__(self, database_url: str, data_dir: Path, app: Celery) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.send = enqueue_to(app)
        self.revoke = revoke_with(app)

    def _call(self, work: Callable[[DiagramService], Awaitable[T]], enqueue: Enqueue) -> T:
        async def main() -> T:
            engine = create_engine(self.database_url, poolclass=NullPool)
            storage = LocalStorage(self.data_dir)
            try:
                async with create_sessionmaker(engine)() as session:
                    return await work(
                        DiagramService(session, storage, get_settings(), enqueue, self.revoke)
                    )
            finally:
                await storage.close()
                await engine.dispose()

        return asyncio.run(main())

    def upload(self, drawing: Drawing, auto_run: bool = True) -> str:
        """Upload with its symbols and (by default) run the whole chain; the diagram's uid."""
        diagrams = self._call(
            lambda s: s.upload(drawing.png, f"{drawing.name}.png", drawing.symbols, auto_run),
            self.send,
        )
        return str(diagrams[0].uid)

    def run(self, uid: str) -> None:
        """Run the diagram's chain from where it stopped."""
        self._call(lambda s: s.run(uuid.UUID(uid), None, None), self.send)

    def run_without_messages(self, uid: str) -> None:
        """Queue a run whose messages never reach the broker, as if sending them was lost
        right after the commit: only the reaper can get it going."""

        def drop(messages: Sequence[Message]) -> None:
            return None

        self._call(lambda s: s.run(uuid.UUID(uid), None, None), drop)


# --- reading the logs -----------------------------------------------------------------------

_STAMP = r"(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
STAGE_LINE = re.compile(
    _STAMP + r" \S+ (?P<process>\S+) pid\.stages: stage (?P<stage>\w+) of (?P<uid>[0-9a-f-]{36})"
    r" task (?P<task>[0-9a-f-]{36}): (?P<what>.*)$",
    re.MULTILINE,
)
#: Celery's own line when a delivery of a stage ends early: sent again after a transient
#: error, or failed with an error the runner does not retry (the reaper then takes the run).
TRACE_LINE = re.compile(
    _STAMP + r" \S+ \S+ celery\.app\.trace: Task pid\.tasks\.\w+\.(?P<stage>\w+)"
    r"\[(?P<task>[0-9a-f-]{36})\] (?P<outcome>retry|raised unexpected): ",
    re.MULTILINE,
)
STARTED = re.compile(r"started \(attempt (\d+)\)")
ENDED = re.compile(r"(succeeded|skipped) in [\d.]+ s|failed: |ended after its claim was taken over")
MAINTENANCE_LINE = re.compile(
    _STAMP + r" \S+ \S+ pid\.maintenance: (?P<task>\w+): (?P<what>.*)$", re.MULTILINE
)
BEAT_SEND = re.compile(_STAMP + r" .*Scheduler: Sending due task (?P<entry>\S+) ", re.MULTILINE)


def stamp(text: str) -> float:
    """A log line's time (local clock, as logging writes it) as a Unix time."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass(frozen=True)
class StageEvent:
    at: float
    pool: str
    process: str
    stage: str
    uid: str
    task: str
    #: "started", "ended", "retried" (a transient error: sent again), "raised" (an error the
    #: runner does not retry), or "other".
    kind: str
    attempt: int = 0


def stage_events(fleet: Fleet) -> list[StageEvent]:
    """Every start and end of a stage run the runner logged, and every early end Celery
    logged, in every pool, in time order (lines of one moment in the order logged)."""
    events = []
    for pool in POOLS:
        for line in fleet.log(pool).splitlines():
            event = _stage_event(pool, line)
            if event is not None:
                events.append(event)
    return sorted(events, key=lambda e: e.at)


def _stage_event(pool: str, line: str) -> StageEvent | None:
    trace = TRACE_LINE.match(line)
    if trace:
        kind = "retried" if trace["outcome"] == "retry" else "raised"
        return StageEvent(stamp(trace["at"]), pool, "", trace["stage"], "", trace["task"], kind)
    match = STAGE_LINE.match(line)
    if match is None:
        return None
    what = match["what"]
    started = STARTED.match(what)
    kind = "started" if started else "ended" if ENDED.match(what) else "other"
    attempt = int(started.group(1)) if started else 0
    return StageEvent(
        stamp(match["at"]), pool, match["process"], match["stage"], match["uid"], match["task"],
        kind, attempt,
    )  # fmt: skip


@dataclass
class Concurrency:
    """Stage runs checked for overlap: starts, ends, retries, and starts cut short by a kill."""

    starts: int = 0
    ends: int = 0
    retried: int = 0
    raised: int = 0
    killed: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.starts} stage starts, {self.ends} ends, {self.retried} retried, "
            f"{self.raised} raised, {self.killed} cut short by a kill"
        )


#: Log lines carry milliseconds; a kill and a log line of the same moment may differ by that.
CLOCK_SLACK = 0.005


def check_no_overlap(events: Sequence[StageEvent], kills: Sequence[Kill]) -> Concurrency:
    """No stage of a diagram ran twice at the same time.

    Per diagram and stage, every start must be followed by its end (or Celery's line that
    the delivery ended early) before the next start, unless the pool's child running it was
    killed in between (then it has no end line).
    """
    report = Concurrency()
    opened: dict[tuple[str, str], StageEvent] = {}
    for event in events:
        if event.kind in ("retried", "raised"):
            ended = [key for key, e in opened.items() if e.task == event.task]
            for key in ended:
                del opened[key]
            if event.kind == "retried":
                report.retried += len(ended)
            else:
                report.raised += len(ended)
            continue
        key = (event.uid, event.stage)
        if event.kind == "started":
            report.starts += 1
            previous = opened.get(key)
            if previous is not None:
                if _killed_between(kills, previous.pool, previous.at, event.at):
                    report.killed += 1
                else:
                    report.problems.append(
                        f"{event.stage} of {event.uid}: attempt {event.attempt} started at "
                        f"{event.at:.3f} while attempt {previous.attempt} (from {previous.at:.3f}) "
                        "had not ended and nothing killed it"
                    )
            opened[key] = event
        elif event.kind == "ended":
            report.ends += 1
            if opened.pop(key, None) is None:
                report.problems.append(f"{event.stage} of {event.uid}: an end without a start")
    for (uid, stage), event in opened.items():
        if _killed_between(kills, event.pool, event.at, time.time()):
            report.killed += 1
        else:
            report.problems.append(f"{stage} of {uid}: attempt {event.attempt} {NEVER_ENDED}")
    return report


NEVER_ENDED = "never ended"


def logged_overlap(fleet: Fleet, timeout: float = 15.0) -> Concurrency:
    """check_no_overlap over the pools' logs once they have caught up with the database.

    A stage commits its result before its pool logs the end, so a diagram can read as
    completed while the end line is still on its way; a start without an end is only a
    problem once it has stayed so for `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        report = check_no_overlap(stage_events(fleet), fleet.kills)
        unfinished = [p for p in report.problems if p.endswith(NEVER_ENDED)]
        if not unfinished or time.monotonic() > deadline:
            return report
        time.sleep(0.25)


def _killed_between(kills: Sequence[Kill], pool: str, start: float, end: float) -> bool:
    return any(k.pool == pool and start - CLOCK_SLACK <= k.at <= end + CLOCK_SLACK for k in kills)


def logged_start(fleet: Fleet, pool: str, stage: str, uid: str, task_id: str, attempt: int) -> bool:
    """The pool logged the start of this attempt. A redelivery keeps its task id, so the
    attempt is what tells this start from an earlier one's."""
    line = f"stage {stage} of {uid} task {task_id}: started (attempt {attempt})"
    return line in fleet.log(pool)


@dataclass(frozen=True)
class MaintenanceRun:
    at: float
    task: str
    what: str


def counts_of(run: MaintenanceRun) -> dict[str, int]:
    """The counts a run logged ("requeued 0, worker_lost 1, resent 2"); none for a skip."""
    pairs = (part.rsplit(" ", 1) for part in run.what.split(", "))
    return {name: int(n) for name, n in (p for p in pairs if len(p) == 2 and p[1].isdigit())}


def maintenance_runs(fleet: Fleet, task: str) -> list[MaintenanceRun]:
    """Every logged run of a maintenance task (its counts, or the lock-taken skip)."""
    return [
        MaintenanceRun(stamp(m["at"]), m["task"], m["what"])
        for m in MAINTENANCE_LINE.finditer(fleet.log("maintenance"))
        if m["task"] == task
    ]


def beat_sends(fleet: Fleet, entry: str) -> list[float]:
    """When beat sent `entry`, from its log (every start of beat appends to it)."""
    return [stamp(m["at"]) for m in BEAT_SEND.finditer(fleet.log("beat")) if m["entry"] == entry]


def gaps(times: Sequence[float]) -> list[float]:
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


@dataclass
class Site:
    """Everything one fault test runs on."""

    redis: PrivateRedis
    postgres: PrivatePostgres
    fleet: Fleet
    probe: Probe
    client: Client
