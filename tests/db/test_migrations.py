"""The migrations build exactly the schema the models describe, and undo it cleanly."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pg import drop_database, make_test_database, random_database_url
from sqlalchemy import NullPool, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pid.db import migrate
from pid.db.models import Base
from pid.settings import get_settings

TABLES = {"diagrams", "stage_runs", "artifacts"}


def schema_of(url: str) -> tuple[set[str], set[str]]:
    """(tables, sequences) of the public schema of the database at `url`."""

    async def read() -> tuple[set[str], set[str]]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
                sequences = await connection.scalars(
                    text("SELECT sequence_name FROM information_schema.sequences")
                )
                return tables, set(sequences)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_upgrade_downgrade_upgrade() -> None:
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    with make_test_database(migrate=False) as url:
        migrate.upgrade(url)
        tables, _ = schema_of(url)
        assert tables >= TABLES
        assert asyncio.run(migrate.current_revision(url)) == head

        migrate.downgrade(url, "base")
        tables, sequences = schema_of(url)
        assert tables == {"alembic_version"}
        assert sequences == set()
        assert asyncio.run(migrate.current_revision(url)) is None

        migrate.upgrade(url)
        tables, _ = schema_of(url)
        assert tables >= TABLES
        assert asyncio.run(migrate.current_revision(url)) == head


async def test_models_match_migrations(engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


def test_ensure_database_creates_once() -> None:
    url = random_database_url()
    try:
        assert migrate.ensure_database(url) is True
        assert migrate.ensure_database(url) is False
    finally:
        drop_database(url)


def test_migrate_main_creates_and_migrates_the_settings_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = random_database_url()
    monkeypatch.setenv("PID_DATABASE_URL", url)
    get_settings.cache_clear()
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    try:
        migrate.main()
        migrate.main()
        assert capsys.readouterr().out.splitlines() == [
            f"database {url}: created and migrated to {head}",
            f"database {url}: migrated to {head}",
        ]
        assert asyncio.run(migrate.current_revision(url)) == head
    finally:
        get_settings.cache_clear()
        drop_database(url)
