"""agno 1.8.4's public attributes of its SQL storages that user code touches: `table`,
`get_table()`, `metadata`, `inspector` (issue 17 item 6)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, select

from agno_orm import AgentSession
from agno_orm.sql import SqlStorage


@pytest.fixture
def storage(empty_db_url: str) -> Iterator[SqlStorage]:
    engine: Engine = create_engine(empty_db_url)
    schema = "ai" if engine.dialect.name == "postgresql" else None
    yield SqlStorage("agent_sessions", engine, schema=schema, session_types="pydantic")
    engine.dispose()


def test_table_is_the_mapped_session_table_of_the_current_mode(storage: SqlStorage) -> None:
    storage.upsert(AgentSession(session_id="s1", agent_id="a1"))
    table = storage.table
    assert storage.get_table() is table and table.name == "agent_sessions" and table.schema == storage.schema
    assert "agent_id" in table.c and table.metadata is storage.metadata
    with storage.db_engine.connect() as connection:  # what a user's own query of agno's table does
        assert connection.execute(select(table.c.agent_id).where(table.c.session_id == "s1")).scalar() == "a1"
    storage.mode = "team"
    assert storage.table.name == "agent_sessions" and "team_id" in storage.table.c


def test_inspector_sees_the_storages_tables(storage: SqlStorage) -> None:
    storage.create()
    assert storage.inspector.has_table("agent_sessions", schema=storage.schema)
    assert storage.inspector.has_table("agent_sessions_runs", schema=storage.schema)
