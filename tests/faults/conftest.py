"""Fixtures of the fault tests: private servers and a real worker fleet for each test.

Each test gets its own Redis (no persistence) and its own PostgreSQL cluster on free ports, a
copy of one cluster migrated to head once per session, its own storage and scratch folders,
and real `celery worker` processes for the gpu, cpu, io and maintenance pools plus one
`celery beat`, all with short recovery intervals. The test process's own settings point at the
same servers while the test runs and are restored afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from faults_support import (
    Client,
    Drawing,
    Drawings,
    Fleet,
    PrivatePostgres,
    PrivateRedis,
    Probe,
    Site,
    make_template_cluster,
    missing_programs,
    service_env,
    start_private_postgres,
)

from pid.settings import get_settings
from pid.synth.sheet import generate_sheet, write_sheet

# Imported before any test changes the environment: the module's own app keeps the
# settings the session started with, never a test's private servers.
from pid.tasks.app import create_celery

#: Big enough that a stage runs for a good second here, so a test can kill it mid-run.
LARGE = (6000, 4200)
#: The other diagrams of a run.
MEDIUM = (4000, 2800)

FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


def _drawing(seed: int, size: tuple[int, int], folder: Path) -> Drawing:
    sheet = generate_sheet(seed, 0, width=size[0], height=size[1])
    sheet.name = f"sheet-{seed}"
    written = write_sheet(sheet, folder)
    return Drawing(
        sheet.name,
        (written / "original.png").read_bytes(),
        (written / "symbols.coco.json").read_bytes(),
    )


@pytest.fixture(scope="session")
def drawings(tmp_path_factory: pytest.TempPathFactory) -> Drawings:
    folder = tmp_path_factory.mktemp("fault-drawings")
    return Drawings(_drawing(231, LARGE, folder), _drawing(232, MEDIUM, folder))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[PrivatePostgres]:
    missing = missing_programs()
    if missing:
        pytest.skip(f"fault tests need {', '.join(missing)} (private Redis and PostgreSQL)")
    template = make_template_cluster()
    yield template
    template.remove()


@pytest.fixture
def site(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_template: PrivatePostgres,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Site]:
    redis_server = PrivateRedis(tmp_path / "redis")
    redis_server.start()
    postgres: PrivatePostgres | None = None
    fleet: Fleet | None = None
    probe: Probe | None = None
    app = None
    try:
        postgres = start_private_postgres(pg_template)
        env = service_env(redis_server, postgres, tmp_path)
        for key in [k for k in os.environ if k.startswith("PID_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        app = create_celery()
        fleet = Fleet(env, tmp_path / "logs")
        fleet.start()
        probe = Probe(postgres.dsn)
        client = Client(postgres.url, tmp_path / "data", app)
        yield Site(redis_server, postgres, fleet, probe, client)
    finally:
        if fleet is not None:
            fleet.stop()
            if request.node.stash.get(FAILED, False):
                print(fleet.tails())
        if probe is not None:
            probe.close()
        if app is not None:
            app.close()
        redis_server.kill()
        if postgres is not None:
            postgres.stop("immediate")
            postgres.remove()
        monkeypatch.undo()
        get_settings.cache_clear()
