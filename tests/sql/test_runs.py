"""Runs in their own rows: what an upsert writes, how runs are told apart, the move in revision 0003."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text

from agno_orm import AgentSession, WorkflowSessionV2
from agno_orm.sql import SqlStorage, migrations
from agno_orm.sql.models import TableSpec, session_models
from tests.conftest import unique_table_name


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    engine = create_engine(empty_db_url)
    yield engine
    engine.dispose()


def schema_of(engine: Engine) -> str | None:
    return "ai" if engine.dialect.name == "postgresql" else None


def storage_on(engine: Engine, mode: str = "agent", table: str = "sessions") -> SqlStorage:
    return SqlStorage(table, engine, schema=schema_of(engine), mode=mode, session_types="pydantic")  # type: ignore[arg-type]


def run(i: int, size: int = 2000) -> dict[str, Any]:
    return {"run_id": f"run-{i}", "messages": [{"role": "assistant", "content": "x" * size}], "n": i}


class WriteMeter:
    """Bytes of parameters sent in INSERT and UPDATE statements: what a write costs, independent of timing."""

    def __init__(self, engine: Engine) -> None:
        self.bytes = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            self.bytes += len(json.dumps(parameters, default=str))

    def measure(self, action: Any) -> int:
        before = self.bytes
        action()
        return self.bytes - before


def test_bytes_written_per_upsert_do_not_grow_with_history(engine: Engine) -> None:
    storage = storage_on(engine)
    meter = WriteMeter(engine)
    runs: list[dict[str, Any]] = []
    cost: dict[int, int] = {}
    for i in range(1, 61):
        runs.append(run(i))
        session = AgentSession(session_id="s1", memory={"runs": list(runs)}, session_data={"n": i})
        cost[i] = meter.measure(lambda session=session: storage.upsert(session))
    assert abs(cost[60] - cost[2]) < 200, cost  # one new run each time, whatever came before
    assert cost[60] < 2 * len(json.dumps(run(60)))


def test_upsert_of_an_unchanged_session_writes_no_run(engine: Engine) -> None:
    storage = storage_on(engine)
    session = AgentSession(session_id="s1", memory={"runs": [run(i) for i in range(20)]})
    storage.upsert(session)
    meter = WriteMeter(engine)
    assert meter.measure(lambda: storage.upsert(session)) < len(json.dumps(run(0)))


def test_a_changed_old_run_is_rewritten_alone(engine: Engine) -> None:
    storage = storage_on(engine)
    runs = [run(i) for i in range(10)]
    storage.upsert(AgentSession(session_id="s1", memory={"runs": runs}))
    runs[3] = {**runs[3], "n": "edited"}
    stored = storage.upsert(AgentSession(session_id="s1", memory={"runs": runs}))
    assert stored.memory["runs"] == runs  # type: ignore[attr-defined]
    assert storage.read("s1").memory["runs"] == runs  # type: ignore[union-attr]


def test_runs_from_agnos_older_memory_are_kept_apart(engine: Engine) -> None:
    legacy = [
        {"message": {"content": "hi"}, "response": {"run_id": "r1", "content": "hello"}},
        {"message": {"content": "again"}, "response": {"run_id": "r2", "content": "hello again"}},
        {"message": {"content": "no id"}, "response": {"content": "same"}},
        {"message": {"content": "no id"}, "response": {"content": "same"}},  # identical, still two runs
        {"run_id": "dup", "content": "first"},
        {"run_id": "dup", "content": "second"},  # a repeated id on other content
    ]
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": legacy}))
    assert storage.read("s1").memory["runs"] == legacy  # type: ignore[union-attr]
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [*legacy, {"run_id": "r3"}]}))
    assert storage.read("s1").memory["runs"] == [*legacy, {"run_id": "r3"}]  # type: ignore[union-attr]


def test_two_writers_from_the_same_version_keep_both_runs(engine: Engine) -> None:
    first, second = storage_on(engine), storage_on(engine)
    first.upsert(AgentSession(session_id="s1", memory={"runs": [run(0)]}))
    a, b = first.read("s1"), second.read("s1")
    assert a is not None and b is not None
    a.memory = {"runs": [*a.memory["runs"], run(1)]}  # type: ignore[attr-defined]
    b.memory = {"runs": [*b.memory["runs"], run(2)]}  # type: ignore[attr-defined]
    first.upsert(a)
    returned = second.upsert(b)
    ids = [r["run_id"] for r in storage_on(engine).read("s1").memory["runs"]]  # type: ignore[union-attr]
    assert sorted(ids) == ["run-0", "run-1", "run-2"]
    assert sorted(r["run_id"] for r in returned.memory["runs"]) == sorted(ids)  # type: ignore[attr-defined]


def test_delete_session_deletes_its_runs(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    storage.upsert(AgentSession(session_id="s2", memory={"runs": [run(2)]}))
    storage.delete_session("s1")
    Run = session_models(storage.spec).run
    with engine.connect() as connection:
        counts = dict(connection.execute(select(Run.session_id, func.count()).group_by(Run.session_id)).all())
    assert counts == {"s2": 1}


def test_session_without_a_run_list_reads_back_without_one(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"summary": "x"}))
    assert storage.read("s1").memory == {"summary": "x"}  # type: ignore[union-attr]
    storage.upsert(AgentSession(session_id="s2", memory={"runs": []}))
    assert storage.read("s2").memory == {"runs": []}  # type: ignore[union-attr]


# -- revision 0003 moves existing runs ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["agent", "workflow_v2"])
def test_revision_0003_moves_runs_out_and_back(engine: Engine, mode: str) -> None:
    table = unique_table_name()
    spec = TableSpec(mode, table, schema_of(engine))  # type: ignore[arg-type]
    migrations.upgrade(engine, [spec], "0002")
    runs = [run(i, 100) for i in range(3)] + [{"response": {"content": "legacy"}}]
    holder = "runs" if mode == "workflow_v2" else "memory"
    value = runs if mode == "workflow_v2" else {"runs": runs, "summary": "s"}
    qualified = f"{spec.schema}.{table}" if spec.schema else table
    with engine.begin() as connection:
        value_sql = "CAST(:v AS jsonb)" if engine.dialect.name == "postgresql" else ":v"
        connection.execute(
            text(f"INSERT INTO {qualified} (session_id, {holder}, created_at) VALUES ('s1', {value_sql}, 7)"),
            {"v": json.dumps(value)},
        )
    migrations.upgrade(engine, [spec], "head")  # through 0003, which moves the runs, to where storages read
    storage = SqlStorage(table, engine, schema=spec.schema, mode=mode, session_types="pydantic")  # type: ignore[arg-type]
    session = storage.read("s1")
    assert session is not None
    if mode == "workflow_v2":
        assert isinstance(session, WorkflowSessionV2) and session.runs == runs
    else:
        assert session.memory == value  # type: ignore[attr-defined]
    with engine.connect() as connection:
        assert connection.execute(text(f"SELECT count(*) FROM {qualified}_runs")).scalar() == 4
    migrations.downgrade(engine, [spec], "0002")
    with engine.connect() as connection:
        stored = connection.execute(text(f"SELECT {holder} FROM {qualified}")).scalar()
    assert (json.loads(stored) if isinstance(stored, str) else stored) == value


# -- listings are served by indexes -------------------------------------------------------------------------


def plan(engine: Engine, statement: tuple[str, Any]) -> str:
    """The query plan of a statement as the driver received it (SQL text and its parameters)."""
    sql, parameters = statement
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Tiny test tables make a scan and a sort cheapest; what matters is that an index can
            # serve the query in order: with those disabled, a plan that still sorts has no such index.
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                connection.execute(text(f"SET {setting} = off"))
            return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}", parameters))
        return "\n".join(
            row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
        )


def listing_statements(storage: SqlStorage) -> dict[str, tuple[str, Any]]:
    """The first statement each listing method runs (the listing; runs are read after it)."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(storage.db_engine, "before_cursor_execute", capture)
    try:
        result = {}
        for name, call in {
            "recent by user": lambda: storage.get_recent_sessions(user_id="u1", limit=5),
            "ids by entity": lambda: storage.get_all_session_ids(entity_id="a1"),
            "ids": lambda: storage.get_all_session_ids(),
            "summaries by user": lambda: storage.list_sessions(user_id="u1", limit=5),
            "summaries by user, next page": lambda: storage.list_sessions(
                user_id="u1", limit=2, cursor=storage.list_sessions(user_id="u1", limit=2).next_cursor
            ),
        }.items():
            captured.clear()
            call()
            result[name] = captured[-1] if name.endswith("next page") else captured[0]
        return result
    finally:
        event.remove(storage.db_engine, "before_cursor_execute", capture)


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def plan_engine(request: pytest.FixtureRequest) -> Engine:
    """The dialects whose query plans are asserted: PostgreSQL and SQLite."""
    return request.getfixturevalue(f"{request.param}_engine")  # type: ignore[no-any-return]


def test_listings_read_an_index_in_order_without_sorting(plan_engine: Engine) -> None:
    engine = plan_engine
    storage = SqlStorage(unique_table_name(), engine, schema=schema_of(engine), session_types="pydantic")
    for i in range(30):
        storage.upsert(
            AgentSession(session_id=f"s{i}", user_id=f"u{i % 3}", agent_id=f"a{i % 2}", created_at=i)
        )
    for name, statement in listing_statements(storage).items():
        text_plan = plan(engine, statement)
        if engine.dialect.name == "postgresql":
            assert "Index" in text_plan and "Sort" not in text_plan, (name, text_plan)
        else:
            assert "USING" in text_plan and "INDEX" in text_plan, (name, text_plan)
            assert "TEMP B-TREE" not in text_plan, (name, text_plan)
