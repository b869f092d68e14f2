"""Revisions 0004 to 0006: every session row has a version and a write token, older rows too."""

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


def tokens(engine: Engine, spec: TableSpec, session_id: str = "s1") -> tuple[str | None, str | None]:
    """(incarnation, prior_incarnation) of the session row."""
    with engine.connect() as connection:
        row = connection.execute(
            text(f"SELECT incarnation, prior_incarnation FROM {spec.qualified_name} WHERE session_id = :id"),
            {"id": session_id},
        ).one()
    return row[0], row[1]


@pytest.mark.parametrize("on_conflict", ["overwrite", "raise"])
def test_every_upsert_writes_a_new_token_and_keeps_the_one_it_replaced(
    engine: Engine, on_conflict: OnConflict
) -> None:
    """Revision 0006: a token no two writes share tells a process that a row is still the one it
    wrote (a version can repeat after a restore); the upsert keeps the token it replaced, so the
    next upsert can tell no writer came between. Rows from before 0005 have none until written;
    a downgrade gives 0005's incarnation column back."""
    spec, storage = storage_over_a_row_written_at(engine, "0004", on_conflict=on_conflict)
    assert tokens(engine, spec) == (None, None)
    session = storage.read("s1")
    assert session is not None
    session = storage.upsert(session)
    first, prior = tokens(engine, spec)
    assert first is not None and len(first) == 32 and prior is None
    storage.upsert(session)
    second, prior = tokens(engine, spec)
    assert second not in (None, first) and prior == first
    storage.delete_session("s1")
    storage.upsert(AgentSession(session_id="s1"))
    again, prior = tokens(engine, spec)
    assert again not in (None, first, second) and prior is None
    migrations.downgrade(engine, [spec], "0005")
    columns = {c["name"] for c in inspect(engine).get_columns(spec.table_name, schema=spec.schema)}
    assert "incarnation" in columns and "prior_incarnation" not in columns
    migrations.downgrade(engine, [spec], "0004")
    columns = {c["name"] for c in inspect(engine).get_columns(spec.table_name, schema=spec.schema)}
    assert "incarnation" not in columns and "version" in columns
