"""Alembic environment: runs the migrations over an asyncpg engine.

The URL comes from ``sqlalchemy.url`` when a caller set it on the Config (tests, `pid.db.migrate`
with an explicit URL), else from the service settings (PID_DATABASE_URL). A caller that already
holds a connection (inside a running event loop, via ``AsyncConnection.run_sync``) passes it as
``config.attributes["connection"]`` and the migrations run on it.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from pid.db.models import Base
from pid.settings import get_settings

config = context.config
target_metadata = Base.metadata

# Only the `alembic` command configures logging from alembic.ini; an embedding process (the
# migrate entry point, the tests) keeps its own. Existing loggers stay enabled either way.
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """The URL set on the Config by the caller, else the one in the settings."""
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations_offline() -> None:
    """Write the migrations' SQL to stdout (``alembic upgrade --sql``) without connecting."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the pending migrations on `connection`, in one transaction."""
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    """Open a one-off connection (no pool: this process is gone right after) and migrate."""
    engine = create_async_engine(database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Migrate on the caller's connection if it passed one, else on a new engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
