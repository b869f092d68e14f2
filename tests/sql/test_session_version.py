"""Revisions 0004 and 0005: every session row has a version and an incarnation, older rows too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from agno_orm import AgentSession
from agno_orm._versions import OnConflict
from agno_orm.sql import SqlStorage, migrations
from agno_orm.sql.models import TableSpec
from tests.conftest import unique_table_name


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    engine = create_engine(empty_db_url)
    yield engine
    engine.dispose()


def storage_over_a_row_written_at(
    engine: Engine, revision: str, *, on_conflict: OnConflict
) -> tuple[TableSpec, SqlStorage]:
    """A new agent table with session s1 inserted at `revision` (only its id and created_at), then
    upgraded to head, and a storage on it."""
    schema = "ai" if engine.dialect.name == "postgresql" else None
    spec = TableSpec("agent", unique_table_name(), schema)
    migrations.upgrade(engine, [spec], revision)
    with engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO {spec.qualified_name} (session_id, created_at) VALUES ('s1', 7)")
        )
    migrations.upgrade(engine, [spec], "head")
    storage = SqlStorage(
        spec.table_name,
        engine,
        schema=schema,
        on_conflict=on_conflict,
        session_types="pydantic",
    )
    return spec, storage


def test_rows_written_before_revision_0004_are_at_version_1_and_writable_in_raise_mode(
    engine: Engine,
) -> None:
    spec, storage = storage_over_a_row_written_at(engine, "0003", on_conflict="raise")
    schema = spec.schema
    session = storage.read("s1")
    assert session is not None
    session.session_data = {"written": "after the upgrade"}
    storage.upsert(session)
    with engine.connect() as connection:
        assert connection.execute(text(f"SELECT version FROM {spec.qualified_name}")).scalar_one() == 2
    migrations.downgrade(engine, [spec], "0003")
    columns = {c["name"] for c in inspect(engine).get_columns(spec.table_name, schema=schema)}
    assert "version" not in columns and "session_data" in columns


def test_each_upsert_adds_one_to_the_version(engine: Engine) -> None:
    schema = "ai" if engine.dialect.name == "postgresql" else None
    storage = SqlStorage(unique_table_name(), engine, schema=schema, session_types="pydantic")
    for _ in range(3):
        storage.upsert(AgentSession(session_id="s1"))
    with engine.connect() as connection:
        assert (
            connection.execute(text(f"SELECT version FROM {storage.spec.qualified_name}")).scalar_one() == 3
        )


def incarnation(engine: Engine, spec: TableSpec, session_id: str = "s1") -> str | None:
    with engine.connect() as connection:
        value = connection.execute(
            text(f"SELECT incarnation FROM {spec.qualified_name} WHERE session_id = :id"), {"id": session_id}
        ).scalar_one()
    return value  # type: ignore[no-any-return]


@pytest.mark.parametrize("on_conflict", ["overwrite", "raise"])
def test_a_row_keeps_its_incarnation_until_deleted_and_rows_from_before_0005_get_one(
    engine: Engine, on_conflict: OnConflict
) -> None:
    """Revision 0005: the incarnation tells a writer that a row is still the one it wrote; it is
    given on insert, kept by every update, new after a delete (whatever the version then)."""
    spec, storage = storage_over_a_row_written_at(engine, "0004", on_conflict=on_conflict)
    schema = spec.schema
    assert incarnation(engine, spec) is None
    session = storage.read("s1")
    assert session is not None
    session = storage.upsert(session)
    first = incarnation(engine, spec)
    assert first is not None and len(first) == 32
    storage.upsert(session)
    assert incarnation(engine, spec) == first
    storage.delete_session("s1")
    storage.upsert(AgentSession(session_id="s1"))
    again = incarnation(engine, spec)
    assert again is not None and again != first
    migrations.downgrade(engine, [spec], "0004")
    columns = {c["name"] for c in inspect(engine).get_columns(spec.table_name, schema=schema)}
    assert "incarnation" not in columns and "version" in columns
