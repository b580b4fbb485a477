"""Create the database if needed and bring its schema to the latest migration.

``python -m pid.db.migrate`` (what ``make migrate`` runs) does both for PID_DATABASE_URL and
prints one line. The migrations live in ``migrations/`` at the repository root, next to
``alembic.ini``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pid.settings import get_settings

#: The repository root: src/pid/db/migrate.py is three folders below it.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"

#: The database every PostgreSQL server has, to connect to while the target may not exist.
MAINTENANCE_DATABASE = "postgres"
#: SQLSTATE of CREATE DATABASE losing a race with another process creating the same database.
DUPLICATE_DATABASE = "42P04"


def alembic_config(url: str | None = None) -> Config:
    """The Alembic configuration of the project, for `url` or (None) the settings' URL.

    Logging is left to the calling process; the ``alembic`` command still configures it
    from alembic.ini.
    """
    if not MIGRATIONS_DIR.is_dir():
        raise FileNotFoundError(
            f"no migrations at {MIGRATIONS_DIR}: run from a checkout of the project"
        )
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser treats % as interpolation; a URL-encoded password contains it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at `url` (None: the settings' URL) up to `revision`.

    Runs its own event loop, so call it from synchronous code only.
    """
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Migrate the database at `url` (None: the settings' URL) down to `revision`."""
    command.downgrade(alembic_config(url), revision)


def ensure_database(url: str) -> bool:
    """Create the database named in `url` unless it exists; True if it was created.

    Runs its own event loop, so call it from synchronous code only; async callers await
    `ensure_database_async`.
    """
    return asyncio.run(ensure_database_async(url))


async def ensure_database_async(url: str) -> bool:
    """Create the database named in `url` unless it exists; True if it was created.

    Connects to the server's ``postgres`` database with the same credentials, because the
    target cannot be connected to before it exists. Another process creating the same
    database at the same time is not an error.
    """
    target = make_url(url)
    name = target.database
    if not name:
        raise ValueError(f"database URL names no database: {target!r}")
    engine = server_engine(target)
    try:
        async with engine.connect() as connection:
            if await _database_exists(connection, name):
                return False
            quoted = engine.dialect.identifier_preparer.quote(name)
            try:
                await connection.execute(text(f"CREATE DATABASE {quoted}"))
            except DBAPIError as error:
                if _sqlstate(error) == DUPLICATE_DATABASE:
                    return False
                raise
            return True
    finally:
        await engine.dispose()


def server_engine(url: str | URL) -> AsyncEngine:
    """An unpooled autocommit engine on the server's maintenance database.

    Autocommit because CREATE and DROP DATABASE refuse to run inside a transaction.
    """
    maintenance = make_url(url).set(database=MAINTENANCE_DATABASE)
    return create_async_engine(maintenance, poolclass=NullPool, isolation_level="AUTOCOMMIT")


async def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at, or None before the first migration."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    finally:
        await engine.dispose()


def _revision_of(connection: Connection) -> str | None:
    """The revision recorded in the alembic_version table, or None."""
    return MigrationContext.configure(connection).get_current_revision()


async def _database_exists(connection: AsyncConnection, name: str) -> bool:
    found = await connection.scalar(
        text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
    )
    return found is not None


def _sqlstate(error: DBAPIError) -> str | None:
    """The SQLSTATE code of a driver error, when the driver reports one."""
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return str(code) if code is not None else None


def main() -> None:
    """Create the settings' database if needed, migrate it to head, print one line."""
    url = get_settings().database_url
    created = ensure_database(url)
    upgrade(url)
    revision = asyncio.run(current_revision(url))
    shown = make_url(url).render_as_string(hide_password=True)
    action = "created and migrated" if created else "migrated"
    print(f"database {shown}: {action} to {revision}")


if __name__ == "__main__":
    main()
