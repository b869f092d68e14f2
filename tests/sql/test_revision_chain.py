"""The revision chain on data written at each older revision reads and stores as a fresh write does.

A session is written into a table at revision 0001, 0002, ... as a storage of that revision wrote
it (runs inside the row before 0003, in `<table>_runs` from it on; a version from 0004, an
incarnation from 0005), the table is upgraded to head, and what is read back, and the runs rows
stored, are compared with the same session upserted into a fresh table at head. The revisions
carry their own frozen copy of what they need (agno_orm.sql._revision_0003), so this keeps
holding when agno_orm.runs changes how later writes key runs, or says which revision must
re-key stored runs.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Engine, MetaData, Table, create_engine, select

from agno_orm import AgentSession, WorkflowSessionV2
from agno_orm.sql import SqlStorage, migrations
from agno_orm.sql._revision_0003 import run_digest, run_keys
from agno_orm.sql.models import TableSpec
from tests.conftest import unique_table_name

CHAIN = [
    s.revision for s in reversed(list(ScriptDirectory(str(migrations.script_location())).walk_revisions()))
]
RUNS: list[Any] = [
    {"run_id": "r1", "content": "first", "metrics": {"tokens": 3}},
    {"content": "no id"},
    {"content": "no id"},  # an identical run without id: kept twice
    {"response": {"run_id": "r2", "content": "agno's older memory class"}},
    {"run_id": "r1", "content": "a repeated id"},
]


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    engine = create_engine(empty_db_url)
    yield engine
    engine.dispose()


def schema_of(engine: Engine) -> str | None:
    return "ai" if engine.dialect.name == "postgresql" else None


def fields(mode: str, revision: str) -> dict[str, Any]:
    """The session's fields, as a session of `mode` holds them (workflow_session_id from 0002)."""
    common = {"session_id": "s1", "user_id": "u1", "created_at": 1000, "session_data": {"session_name": "n"}}
    if mode == "workflow_v2":
        return {**common, "workflow_id": "wf", "workflow_name": "flow", "runs": RUNS}
    agent = {
        **common,
        "agent_id": "a1",
        "memory": {"runs": RUNS, "summary": "s"},
        "agent_data": {"model": "m"},
    }
    return {**agent, "workflow_session_id": "w1"} if revision >= "0002" else agent


def write_at(engine: Engine, spec: TableSpec, revision: str) -> None:
    """Session s1 written as a storage at `revision` wrote it."""
    row = dict(fields(spec.mode, revision))
    holder = "runs" if spec.mode == "workflow_v2" else "memory"
    run_rows = []
    if revision >= "0003":  # runs in their own rows, keyed as the storage keyed them then
        digests = [run_digest(run) for run in RUNS]
        keys = run_keys(RUNS, digests)
        run_rows = [
            {"session_id": "s1", "run_key": key, "position": position, "digest": digest, "payload": run}
            | {"created_at": 1000, "updated_at": 1000}
            for position, (key, digest, run) in enumerate(zip(keys, digests, RUNS, strict=True))
        ]
        row[holder] = [] if spec.mode == "workflow_v2" else {**row["memory"], "runs": []}
    if revision >= "0004":
        row["version"] = 1
    if revision >= "0005":
        row["incarnation"] = "0" * 32
    metadata = MetaData()
    sessions = Table(spec.table_name, metadata, schema=spec.schema, autoload_with=engine)
    with engine.begin() as connection:
        connection.execute(sessions.insert(), [_encoded(sessions, row)])
        if run_rows:
            runs = Table(f"{spec.table_name}_runs", metadata, schema=spec.schema, autoload_with=engine)
            connection.execute(runs.insert(), [_encoded(runs, r) for r in run_rows])


def _encoded(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """JSON values as text where the column reflects as text (MariaDB's JSON is LONGTEXT)."""
    return {
        name: json.dumps(value)
        if isinstance(value, dict | list) and not isinstance(table.c[name].type, JSON)
        else value
        for name, value in row.items()
    }


def stored_runs(engine: Engine, spec: TableSpec) -> list[tuple[Any, ...]]:
    runs = Table(f"{spec.table_name}_runs", MetaData(), schema=spec.schema, autoload_with=engine)
    query = select(runs.c.run_key, runs.c.position, runs.c.digest, runs.c.payload, runs.c.written_version)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(runs.c.position)).all()
    return [(*row[:3], json.loads(row[3]) if isinstance(row[3], str) else row[3], row[4]) for row in rows]


@pytest.mark.parametrize("mode", ["agent", "workflow_v2"])
@pytest.mark.parametrize("revision", CHAIN[:-1])
def test_a_session_written_at_an_older_revision_reads_and_stores_as_a_fresh_write(
    engine: Engine, revision: str, mode: str
) -> None:
    schema = schema_of(engine)
    old = TableSpec(mode, unique_table_name("old"), schema)  # type: ignore[arg-type]
    migrations.upgrade(engine, [old], revision)
    write_at(engine, old, revision)
    migrations.upgrade(engine, [old])

    session_class = WorkflowSessionV2 if mode == "workflow_v2" else AgentSession
    fresh = SqlStorage(unique_table_name("new"), engine, schema=schema, mode=mode, session_types="pydantic")  # type: ignore[arg-type]
    fresh.upsert(session_class(**fields(mode, revision)))
    upgraded = SqlStorage(old.table_name, engine, schema=schema, mode=mode, session_types="pydantic")  # type: ignore[arg-type]

    ignored = {"updated_at"}  # the fresh write's time
    expected, found = fresh.read("s1"), upgraded.read("s1")
    assert found is not None and expected is not None
    assert found.model_dump(exclude=ignored) == expected.model_dump(exclude=ignored)
    assert stored_runs(engine, old) == stored_runs(engine, fresh.spec)


# What a revision may take from agno_orm: its frozen helpers, the append-only operations, the DDL
# options and column types (a change to those is a schema change `alembic check` reports), agno's
# index names and the error it raises. Never live behaviour such as agno_orm.runs.
ALLOWED_FROM_AGNO_ORM = {
    "agno_orm.errors": {"SchemaError"},
    "agno_orm.sql": {"_revision_ops", "_singlestore_ddl"},
    "agno_orm.sql.models": {
        "EpochSeconds",
        "JsonDocument",
        "RunKeyType",
        "SessionIdType",
        "ShortString",
        "index_name",
    },
}


def test_revisions_take_no_live_code_from_agno_orm() -> None:
    versions = migrations.script_location() / "versions"
    taken = set()
    for path in sorted(versions.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("agno_orm"):
                taken |= {(path.name, node.module, alias.name) for alias in node.names}
            elif isinstance(node, ast.Import):
                assert not [a.name for a in node.names if a.name.startswith("agno_orm")], path.name
    live = {
        (name, module, imported)
        for name, module, imported in taken
        if imported not in ALLOWED_FROM_AGNO_ORM.get(module or "", set())
        and not (module or "").startswith("agno_orm.sql._revision_0")
    }
    assert not live
