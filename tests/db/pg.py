"""Throwaway PostgreSQL databases for tests, and the types the database fixtures share.

The server comes from PID_TEST_DATABASE_URL (any database on it: it is only used to create and
drop the test databases). Nothing here depends on pytest fixtures, so a shared conftest can
import it as it is.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from pid.db.migrate import ensure_database, server_engine, upgrade
from pid.db.models import Diagram

ROOT_URL_ENV = "PID_TEST_DATABASE_URL"
DEFAULT_ROOT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

#: The `make_diagram` fixture: ``await make_diagram(session, **fields)`` creates a diagram.
MakeDiagram = Callable[..., Awaitable[Diagram]]


class DatabaseUnavailableError(RuntimeError):
    """The test server cannot be reached; the message says where it was looked for."""


def root_url() -> str:
    """URL of the test server, from PID_TEST_DATABASE_URL or the local default."""
    return os.environ.get(ROOT_URL_ENV, DEFAULT_ROOT_URL)


def random_database_url(prefix: str = "pid_test") -> str:
    """A URL on the test server naming a database that does not exist yet."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    return make_url(root_url()).set(database=name).render_as_string(hide_password=False)


@contextmanager
def make_test_database(*, migrate: bool = True) -> Iterator[str]:
    """Create a database with a random name, migrated to head unless `migrate` is False;
    yield its URL and drop it afterwards, whatever connections are still open on it."""
    url = random_database_url()
    try:
        ensure_database(url)
    except (OSError, OperationalError) as error:
        shown = make_url(root_url()).render_as_string(hide_password=True)
        raise DatabaseUnavailableError(
            f"PostgreSQL at {shown} is not reachable ({error}); start it or set {ROOT_URL_ENV}"
        ) from error
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        drop_database(url)


def drop_database(url: str) -> None:
    """Drop the database named in `url`, closing the sessions still connected to it."""
    asyncio.run(_drop_database(url))


async def _drop_database(url: str) -> None:
    name = make_url(url).database
    engine = server_engine(url)
    try:
        async with engine.connect() as connection:
            quoted = engine.dialect.identifier_preparer.quote(name or "")
            await connection.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    except DBAPIError as error:
        # A stray test database must not hide the tests' own result, but should be seen.
        warnings.warn(f"could not drop test database {name}: {error}", stacklevel=1)
    finally:
        await engine.dispose()
