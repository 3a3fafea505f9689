"""The schema comes from the migrations, and they match the models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from service.db import create_engine, migrate
from service.models import Base
from tests.postgres import _psql


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables, on each supported engine."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}"
        return
    host, port = request.getfixturevalue("postgres_server")
    name = f"audiovault_schema_{uuid.uuid4().hex[:10]}"
    _psql(host, port, f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@{host}:{port}/{name}"
    finally:
        _psql(host, port, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _inspect(database_url: str) -> tuple[set[str], list[object]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(_tables)
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    return tables, differences


def test_migrations_build_the_schema_the_models_describe(empty_database: str) -> None:
    migrate(empty_database)
    migrate(empty_database)  # a second run finds nothing to do

    tables, differences = asyncio.run(_inspect(empty_database))

    assert {"users", "recordings", "alembic_version"} <= tables
    assert differences == []
