"""The upsert's cache of the runs this process last wrote (agno_orm/sql/_known_runs.py): what a
user relies on stays true with it. Changed runs are written wherever they are, another writer's
runs are neither lost nor overwritten by what this process remembers, mutating a session after
an upsert is seen by the next one, the codec's refusals and the size limit hold for runs it does
not encode again, and the cache stays bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, delete, event, insert, select

from agno_orm import AgentSession, WorkflowSessionV2
from agno_orm.errors import InvalidSessionError, PayloadTooLargeError, SessionConflictError
from agno_orm.sql import SqlStorage
from agno_orm.sql._known_runs import KNOWN_RUNS, KnownRuns, KnownRunsCache
from agno_orm.sql.models import session_models
from tests.sql.conftest import REPO


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    engine = create_engine(empty_db_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    KNOWN_RUNS.clear()
    yield
    KNOWN_RUNS.clear()


def storage_on(engine: Engine, mode: str = "agent", **options: Any) -> SqlStorage:
    schema = "ai" if engine.dialect.name == "postgresql" else None
    options.setdefault("session_types", "pydantic")
    return SqlStorage("sessions", engine, schema=schema, mode=mode, **options)  # type: ignore[arg-type]


def run(i: int, content: str = "answer") -> dict[str, Any]:
    return {"run_id": f"run-{i}", "content": f"{content} {i}", "messages": [{"role": "user", "content": "q"}]}


def stored_runs(engine: Engine, session_id: str = "s1") -> list[Any]:
    """The runs as stored, read by a storage that never wrote them (and with no cache)."""
    KNOWN_RUNS.clear()
    session = storage_on(engine).read(session_id)
    assert session is not None
    return session.memory["runs"]  # type: ignore[attr-defined,no-any-return]


def known_entry(storage: SqlStorage, session_id: str = "s1") -> KnownRuns | None:
    return KNOWN_RUNS.get(storage._known_key(session_id))


def other_process(engine: Engine, code: str) -> None:
    """Run `code` in another Python process, with `storage` on the same table and `run` defined."""
    url = engine.url.render_as_string(hide_password=False)
    schema = "ai" if engine.dialect.name == "postgresql" else None
    script = textwrap.dedent(
        f"""
        from sqlalchemy import create_engine
        from agno_orm import AgentSession
        from agno_orm.sql import SqlStorage
        def run(i, content="answer"):
            return {{"run_id": f"run-{{i}}", "content": f"{{content}} {{i}}",
                    "messages": [{{"role": "user", "content": "q"}}]}}
        storage = SqlStorage("sessions", create_engine({url!r}), schema={schema!r}, session_types="pydantic")
        """
    ) + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def another_process_appends(engine: Engine, run_number: int) -> None:
    """Another process reads session s1, appends `run(run_number)` and writes it back."""
    other_process(
        engine,
        f"""
        s = storage.read("s1")
        s.memory["runs"].append(run({run_number}))
        storage.upsert(s)
        """,
    )


# -- changes are written --------------------------------------------------------------------------------


def test_a_run_changed_in_the_middle_of_the_history_is_written(engine: Engine) -> None:
    storage = storage_on(engine)
    runs = [run(i) for i in range(8)]
    storage.upsert(AgentSession(session_id="s1", memory={"runs": runs}))
    assert known_entry(storage) is not None
    runs = [*runs[:3], {**runs[3], "content": "edited"}, *runs[4:], run(8)]
    returned = storage.upsert(AgentSession(session_id="s1", memory={"runs": runs}))
    assert returned.memory["runs"] == runs  # type: ignore[attr-defined]
    assert stored_runs(engine) == runs


def test_runs_removed_reordered_or_replaced_by_the_caller_are_stored_as_carried(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1), run(2)]}))
    # a different run at index 1 (same id, other content) and one more: written
    runs = [run(0), run(1, "other"), run(2), run(3)]
    storage.upsert(AgentSession(session_id="s1", memory={"runs": runs}))
    assert stored_runs(engine) == runs


def test_a_session_mutated_in_place_after_its_upsert_is_stored_with_the_mutation(engine: Engine) -> None:
    storage = storage_on(engine)
    memory = {"runs": [run(0), run(1), run(2)]}
    session = AgentSession(session_id="s1", memory=memory)
    storage.upsert(session)
    assert session.memory is not None
    session.memory["runs"][1]["content"] = "mutated in place"  # the caller's own dict, not a copy
    session.memory["runs"][2]["messages"].append({"role": "assistant", "content": "late"})
    storage.upsert(session)
    stored = stored_runs(engine)
    assert stored[1]["content"] == "mutated in place"
    assert stored[2]["messages"][-1] == {"role": "assistant", "content": "late"}


@pytest.mark.parametrize("session_types", ["pydantic", "agno"])
def test_the_returned_session_mutated_in_place_then_upserted_is_stored(
    engine: Engine, session_types: str
) -> None:
    storage = storage_on(engine, session_types=session_types)
    returned = storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    returned.memory["runs"][0]["content"] = "edited in the returned session"
    returned.memory["runs"].append(run(2))
    again = storage.upsert(returned)
    assert [r["content"] for r in again.memory["runs"]] == [
        "edited in the returned session",
        "answer 1",
        "answer 2",
    ]
    assert stored_runs(engine)[0]["content"] == "edited in the returned session"
    # and what this upsert returned is not the cache's copy either
    again.memory["runs"][1]["content"] = "edited again"
    storage.upsert(again)
    assert stored_runs(engine)[1]["content"] == "edited again"


@pytest.mark.parametrize("session_types", ["pydantic", "agno"])
def test_workflow_v2_sessions_returned_as_agnos_do_not_consume_the_cache(
    engine: Engine, session_types: str
) -> None:
    """agno's workflow_v2 run classes pop from the dicts they are built from."""
    storage = storage_on(engine, mode="workflow_v2", session_types=session_types)
    runs = [{"run_id": "r0", "content": "a", "extra_data": {"k": 1}, "events": []}]
    storage.upsert(WorkflowSessionV2(session_id="s1", runs=runs))
    storage.upsert(WorkflowSessionV2(session_id="s1", runs=runs))  # returned again from the cache
    entry = known_entry(storage)
    assert entry is not None and entry.runs == runs
    runs = [*runs, {"run_id": "r1", "content": "b"}]
    storage.upsert(WorkflowSessionV2(session_id="s1", runs=runs))
    KNOWN_RUNS.clear()
    stored = storage_on(engine, mode="workflow_v2").read("s1")
    assert stored is not None and stored.runs == runs  # type: ignore[union-attr]


def test_runs_the_codec_must_convert_first_take_the_full_path(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    as_tuple = AgentSession(
        session_id="s1", memory={"runs": (run(0), {**run(1), "content": "edited"}, run(2))}
    )
    returned = storage.upsert(as_tuple)
    expected = [run(0), {**run(1), "content": "edited"}, run(2)]
    assert returned.memory["runs"] == expected  # type: ignore[attr-defined]
    assert stored_runs(engine) == expected


def test_workflow_v2_runs_use_the_cache_too(engine: Engine) -> None:
    storage = storage_on(engine, mode="workflow_v2")
    runs = [run(0), run(1)]
    storage.upsert(WorkflowSessionV2(session_id="s1", runs=runs))
    runs = [run(0), {**run(1), "content": "edited"}, run(2)]
    storage.upsert(WorkflowSessionV2(session_id="s1", runs=runs))
    KNOWN_RUNS.clear()
    stored = storage_on(engine, mode="workflow_v2").read("s1")
    assert stored is not None and stored.runs == runs  # type: ignore[union-attr]


# -- other writers ----------------------------------------------------------------------------------------


def test_a_run_another_process_changed_is_not_overwritten_from_the_cache(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1), run(2)]}))
    other_process(
        engine,
        """
        s = storage.read("s1")
        s.memory["runs"][1]["content"] = "changed elsewhere"
        storage.upsert(s)
        """,
    )
    # this process reads the session (the other writer's run 1) and adds a run
    session = storage.read("s1")
    assert session is not None and session.memory is not None
    session.memory["runs"].append(run(3))
    storage.upsert(session)
    stored = stored_runs(engine)
    assert [r["content"] for r in stored] == ["answer 0", "changed elsewhere", "answer 2", "answer 3"]


def test_runs_another_process_added_are_kept_by_a_writer_that_did_not_read_them(engine: Engine) -> None:
    storage = storage_on(engine)
    runs = [run(0), run(1)]
    storage.upsert(AgentSession(session_id="s1", memory={"runs": runs}))
    another_process_appends(engine, run_number=10)
    returned = storage.upsert(AgentSession(session_id="s1", memory={"runs": [*runs, run(2)]}))
    ids = [r["run_id"] for r in returned.memory["runs"]]  # type: ignore[attr-defined]
    assert sorted(ids) == ["run-0", "run-1", "run-10", "run-2"]
    assert sorted(r["run_id"] for r in stored_runs(engine)) == sorted(ids)


def test_a_stale_writer_overwrites_a_run_it_carries_as_without_the_cache(engine: Engine) -> None:
    """The cache changes no outcome: a writer that carries an old version of a run another
    process changed writes it back (the last writer wins on the runs it carries), cache or not."""
    outcomes = []
    for warm in (True, False):
        KNOWN_RUNS.clear()
        storage = storage_on(engine)
        storage.delete_session("s1")
        stale = [run(0), run(1), run(2)]
        storage.upsert(AgentSession(session_id="s1", memory={"runs": stale}))
        other_process(
            engine,
            """
            s = storage.read("s1")
            s.memory["runs"][1]["content"] = "changed elsewhere"
            s.memory["runs"].append(run(5))
            storage.upsert(s)
            """,
        )
        if not warm:
            KNOWN_RUNS.clear()
        storage.upsert(AgentSession(session_id="s1", memory={"runs": [*stale, run(3)]}))
        # (two runs share position 3: which reads first depends on the second each was written in)
        outcomes.append(sorted((r["run_id"], r["content"]) for r in stored_runs(engine)))
    assert outcomes[0] == outcomes[1]
    assert ("run-1", "answer 1") in outcomes[0] and ("run-5", "answer 5") in outcomes[0]


def test_a_session_another_process_deleted_and_recreated_is_not_taken_for_the_known_one(
    engine: Engine,
) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    other_process(
        engine,
        """
        storage.delete_session("s1")
        storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1, "recreated")]}))
        """,
    )
    # same number of runs stored as this process remembers; it carries its own, older run 1
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1), run(2)]}))
    assert [r["content"] for r in stored_runs(engine)] == ["answer 0", "answer 1", "answer 2"]


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements sent to the database inside the block."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def reads_of_run_keys(sent: list[str]) -> list[str]:
    return [s for s in sent if s.lstrip().upper().startswith("SELECT") and "sessions_runs" in s]


def test_stored_run_keys_are_read_back_only_after_another_writer(engine: Engine) -> None:
    """The keys this process wrote are taken from its cache while the session row says no writer
    came since (same incarnation, one version more); after another process's write they are read."""
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    with statements(engine) as sent:
        storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1), run(2)]}))
    assert reads_of_run_keys(sent) == []
    another_process_appends(engine, run_number=10)
    with statements(engine) as sent:
        storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1), run(2), run(3)]}))
    assert len(reads_of_run_keys(sent)) >= 1
    assert sorted(r["run_id"] for r in stored_runs(engine)) == ["run-0", "run-1", "run-10", "run-2", "run-3"]


def runs_of(session: Any) -> list[Any]:
    return session.runs if isinstance(session, WorkflowSessionV2) else session.memory["runs"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["agent", "workflow_v2"])
def test_a_read_after_this_processs_upsert_takes_the_runs_from_memory(engine: Engine, mode: str) -> None:
    """The session row says its runs are the ones this process wrote last (same incarnation and
    version, no run stored beside them): they are not fetched, and the read returns what a
    process that never wrote the session reads from the database."""
    storage = storage_on(engine, mode=mode)
    runs = [run(i) for i in range(5)]
    fields: dict[str, Any] = {"runs": runs} if mode == "workflow_v2" else {"memory": {"runs": runs}}
    session_class = WorkflowSessionV2 if mode == "workflow_v2" else AgentSession
    storage.upsert(session_class(session_id="s1", **fields))
    with statements(engine) as sent:
        whole = storage.read("s1")
        last_two = storage.read("s1", runs_limit=2)
        none = storage.read("s1", runs_limit=0)
        more_than_stored = storage.read("s1", runs_limit=50)
    assert reads_of_run_keys(sent) == []
    assert runs_of(whole) == runs
    assert runs_of(last_two) == runs[-2:]
    assert runs_of(none) == []
    assert runs_of(more_than_stored) == runs
    KNOWN_RUNS.clear()
    from_the_database = storage_on(engine, mode=mode).read("s1")
    assert from_the_database == whole


def test_runs_read_from_memory_are_the_callers_to_mutate(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    session = storage.read("s1")
    assert session is not None and session.memory is not None
    session.memory["runs"][0]["messages"][0]["content"] = "mutated after the read"
    session.memory["runs"][1]["content"] = "mutated too"
    again = storage.read("s1")
    assert again is not None and again.memory == {"runs": [run(0), run(1)]}  # not the caller's objects
    storage.upsert(session)  # the agent's turn: read, change, write back
    stored = stored_runs(engine)
    assert stored[0]["messages"][0]["content"] == "mutated after the read"
    assert stored[1]["content"] == "mutated too"


def test_a_read_after_another_writer_fetches_the_runs(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    other_process(
        engine,
        """
        s = storage.read("s1")
        s.memory["runs"][0]["content"] = "changed elsewhere"
        s.memory["runs"].append(run(2))
        storage.upsert(s)
        """,
    )
    with statements(engine) as sent:
        session = storage.read("s1")
    assert len(reads_of_run_keys(sent)) == 1
    assert session is not None
    assert [r["content"] for r in session.memory["runs"]] == ["changed elsewhere", "answer 1", "answer 2"]  # type: ignore[attr-defined]


def test_runs_this_process_did_not_carry_are_fetched_by_its_reads(engine: Engine) -> None:
    """An upsert that kept another writer's run (it did not carry it) knows of it only by key:
    the next read fetches the runs, and returns that one too."""
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0)]}))
    another_process_appends(engine, run_number=10)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    with statements(engine) as sent:
        session = storage.read("s1")
    assert len(reads_of_run_keys(sent)) == 1
    assert session is not None
    assert sorted(r["run_id"] for r in session.memory["runs"]) == ["run-0", "run-1", "run-10"]  # type: ignore[attr-defined]


def test_a_read_of_a_session_deleted_and_recreated_elsewhere_returns_the_new_one(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    other_process(
        engine,
        """
        storage.delete_session("s1")
        storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1, "recreated")]}))
        """,
    )
    # same version (1) and run count as this process remembers, another incarnation
    session = storage.read("s1")
    assert session is not None
    assert [r["content"] for r in session.memory["runs"]] == ["answer 0", "recreated 1"]  # type: ignore[attr-defined]


def test_recent_sessions_take_the_runs_of_sessions_this_process_wrote_last_from_memory(
    engine: Engine,
) -> None:
    storage = storage_on(engine)
    for i in range(3):
        storage.upsert(AgentSession(session_id=f"s{i}", user_id="u", memory={"runs": [run(i), run(10 + i)]}))
    with statements(engine) as sent:
        recent = storage.get_recent_sessions(user_id="u", limit=None)
    assert reads_of_run_keys(sent) == []
    assert [runs_of(s) for s in recent] == [[run(i), run(10 + i)] for i in (2, 1, 0)]
    another_process_appends(engine, run_number=99)
    fetched_for: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if reads_of_run_keys([statement]):
            values = parameters.values() if isinstance(parameters, dict) else parameters
            fetched_for.extend(str(value) for value in values)

    event.listen(engine, "before_cursor_execute", record)
    try:
        recent = storage.get_recent_sessions(user_id="u", limit=2)
        everything = storage.get_all_sessions()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert fetched_for == ["s1", "s1"]  # one runs SELECT per call, for s1 only
    assert [runs_of(s) for s in recent] == [[run(2), run(12)], [run(1), run(11), run(99)]]
    KNOWN_RUNS.clear()
    assert storage_on(engine).get_all_sessions() == everything


def test_a_database_set_back_and_written_to_the_same_version_elsewhere_is_read_from_the_database(
    engine: Engine,
) -> None:
    """A backup restored while this process runs, then another process writing the session up to
    the version this process last wrote: the write tokens differ, so this process reads and
    writes what the database holds, not what it remembers (0005's incarnation and version did not
    tell: the same incarnation at the same version)."""
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0)]}))
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    models = session_models(storage.spec)
    tables = [models.session_table, models.runs_table]
    with engine.connect() as connection:  # the backup, at version 2
        backup = [[dict(row._mapping) for row in connection.execute(select(table))] for table in tables]
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1), run(2)]}))  # version 3
    with engine.begin() as connection:  # restored
        for table in reversed(tables):
            connection.execute(delete(table))
        for table, rows in zip(tables, backup, strict=True):
            connection.execute(insert(table), rows)
    other_process(
        engine,
        """
        s = storage.read("s1")
        s.memory["runs"].append(run(7, "elsewhere"))
        storage.upsert(s)
        """,
    )
    read = storage.read("s1")
    assert read is not None and read.memory["runs"] == [run(0), run(1), run(7, "elsewhere")]  # type: ignore[attr-defined]
    written = storage.upsert(read)
    assert written.memory["runs"] == [run(0), run(1), run(7, "elsewhere")]  # type: ignore[attr-defined]
    assert stored_runs(engine) == [run(0), run(1), run(7, "elsewhere")]


def test_upserts_taking_the_known_keys_store_what_a_fresh_process_reads(engine: Engine) -> None:
    """Appending, editing, removing and reordering runs through the cached path leaves the table
    as a writer without any cache would: same runs, same order, same positions."""
    storage = storage_on(engine)
    steps: list[list[dict[str, Any]]] = [
        [run(0)],
        [run(0), run(1)],
        [run(0), run(1), run(2)],
        [run(0), run(1, "edited"), run(2), run(3)],
        [run(0), run(2), run(3)],
        [run(3), run(0), run(2), run(4)],
        [run(2), run(4)],  # the writer saw the others (it wrote them) and drops them
        [run(2), run(4), run(5)],
    ]
    for runs in steps:
        storage.upsert(AgentSession(session_id="s1", memory={"runs": [dict(r) for r in runs]}))
        KNOWN_RUNS.forget(storage._known_key("s1"))
        # the same upsert again by a process that knows nothing stores the same thing
        fresh = stored_runs(engine)
        cached = storage_on(engine)
        cached.upsert(AgentSession(session_id="s1", memory={"runs": [dict(r) for r in runs]}))
        assert stored_runs(engine) == fresh
        storage.upsert(AgentSession(session_id="s1", memory={"runs": [dict(r) for r in runs]}))
        assert stored_runs(engine) == fresh
    # runs the writer saw and no longer carries are gone: the last carried runs are stored, in order
    assert [r["run_id"] for r in stored_runs(engine)] == ["run-2", "run-4", "run-5"]


def test_delete_then_recreate_in_this_process(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1), run(2)]}))
    storage.delete_session("s1")
    assert known_entry(storage) is None
    assert storage.read("s1") is None
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0)]}))
    assert stored_runs(engine) == [run(0)]
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    assert stored_runs(engine) == [run(0), run(1)]


def test_drop_forgets_the_tables_sessions(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0)]}))
    assert known_entry(storage) is not None
    storage.drop()
    assert known_entry(storage) is None
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    assert stored_runs(engine) == [run(0), run(1)]


def test_a_failed_upsert_forgets_the_session(engine: Engine) -> None:
    storage = storage_on(engine, on_conflict="raise")
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0)]}))
    assert known_entry(storage) is not None
    storage_on(engine).upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    stale = AgentSession(session_id="s1", memory={"runs": [run(0), run(2)]})
    with pytest.raises(SessionConflictError):
        storage.upsert(stale)
    assert known_entry(storage) is None
    assert [r["run_id"] for r in stored_runs(engine)] == ["run-0", "run-1"]


# -- refusals hold for runs not encoded again ---------------------------------------------------------------


def test_the_codec_refuses_a_new_run_with_the_path_it_always_names(engine: Engine) -> None:
    storage = storage_on(engine)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), run(1)]}))
    for bad, message in [
        ({"x": float("nan")}, "memory['runs'][2]['x']"),
        ({"x": "\x00"}, "memory['runs'][2]['x']: text with a NUL"),
        ({"x": "\ud800"}, "memory['runs'][2]['x']: text with a lone surrogate"),
        ({"x": {1: "a"}}, "memory['runs'][2]['x']: mapping key 1"),
    ]:
        with pytest.raises(InvalidSessionError, match=message.replace("[", r"\[").replace("]", r"\]")):
            storage.upsert(
                AgentSession(session_id="s1", memory={"runs": [run(0), run(1), {**run(2), **bad}]})
            )
    assert stored_runs(engine) == [run(0), run(1)]


def test_the_depth_limit_counts_the_runs_place_in_the_session(engine: Engine) -> None:
    from agno_orm import codec

    def nested(levels: int) -> dict[str, Any]:
        value: dict[str, Any] = {"run_id": "deep"}
        for _ in range(levels):
            value = {"run_id": "deep", "inner": value}
        return value

    # the deepest run the codec accepts inside a session's memory, and one level more
    deepest = next(
        k
        for k in range(300, 200, -1)
        if _accepted(lambda k=k: codec.encode({"runs": [nested(k)]}, where="memory"))
    )
    storage_on(engine).upsert(AgentSession(session_id="s1", memory={"runs": [run(0)]}))  # a cache entry
    # not stored (some servers limit JSON nesting themselves): past the codec, the size limit refuses it
    tiny = storage_on(engine, max_payload_bytes=10)
    with pytest.raises(PayloadTooLargeError):
        tiny.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), nested(deepest)]}))
    with pytest.raises(InvalidSessionError, match="nested more than"):
        tiny.upsert(AgentSession(session_id="s1", memory={"runs": [run(0), nested(deepest + 1)]}))


def _accepted(action: Any) -> bool:
    try:
        action()
    except InvalidSessionError:
        return False
    return True


@pytest.mark.parametrize("warm", [False, True])
def test_the_size_limit_counts_runs_not_encoded_again_exactly(engine: Engine, warm: bool) -> None:
    runs = [run(i, "é" * 50) for i in range(6)]  # multi-byte text: bytes, not characters, count
    session = AgentSession(session_id="s1", memory={"runs": runs, "summary": "s"}, session_data={"a": 1})
    unlimited = storage_on(engine, max_payload_bytes=None)
    record = unlimited._record(unlimited._validated(session))  # what Storage checks: no runs taken out
    size = len(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
    if warm:  # the cache knows every run but the last
        smaller = AgentSession(
            session_id="s1", memory={"runs": runs[:-1], "summary": "s"}, session_data={"a": 1}
        )
        storage_on(engine, max_payload_bytes=None).upsert(smaller)
        assert known_entry(unlimited) is not None
    with pytest.raises(PayloadTooLargeError, match=f"is {size} bytes"):
        storage_on(engine, max_payload_bytes=size - 1).upsert(session)
    storage_on(engine, max_payload_bytes=size).upsert(session)
    assert stored_runs(engine) == runs


# -- bounded ---------------------------------------------------------------------------------------------


def test_the_cache_is_bounded_by_sessions_and_by_bytes() -> None:
    def entry(size: int) -> KnownRuns:
        return KnownRuns(runs=[{}], keys=["k"], digests=["d"], sizes=[size], stored={"k": ("d", 0)})

    cache = KnownRunsCache(max_sessions=3, max_bytes=100)
    for n in range(5):
        cache.put(("s", n), entry(10))
    assert len(cache) == 3 and cache.get(("s", 0)) is None and cache.get(("s", 4)) is not None
    cache.get(("s", 2))  # used: the least recently used is now ("s", 3)
    cache.put(("s", 5), entry(10))
    assert cache.get(("s", 3)) is None and cache.get(("s", 2)) is not None
    cache.put(("s", 6), entry(95))  # over the byte budget: the oldest go, all three
    assert cache.get(("s", 6)) is not None and len(cache) == 1
    cache.put(("s", 7), entry(101))  # larger than the budget: not kept
    assert cache.get(("s", 7)) is None
    cache.forget_where(("s",))
    assert len(cache) == 0


def test_many_sessions_do_not_grow_the_process_cache(engine: Engine) -> None:
    storage = storage_on(engine)
    for n in range(KNOWN_RUNS.max_sessions + 20):
        storage.upsert(AgentSession(session_id=f"s{n}", memory={"runs": [run(n)]}))
    assert len(KNOWN_RUNS) == KNOWN_RUNS.max_sessions
    assert known_entry(storage, "s0") is None
    assert known_entry(storage, f"s{KNOWN_RUNS.max_sessions + 19}") is not None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+: fork() in a process with threads
def test_a_forked_child_starts_with_no_known_runs() -> None:
    KNOWN_RUNS.put(
        ("db", "table", "s1"),
        KnownRuns(runs=[{}], keys=["k"], digests=["d"], sizes=[2], stored={"k": ("d", 0)}),
    )
    pid = os.fork()
    if pid == 0:  # the child: its cache is empty, and usable
        KNOWN_RUNS.put(("db", "table", "s2"), KnownRuns(runs=[], keys=[], digests=[], sizes=[], stored={}))
        os._exit(0 if len(KNOWN_RUNS) == 1 and KNOWN_RUNS.get(("db", "table", "s1")) is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert KNOWN_RUNS.get(("db", "table", "s1")) is not None  # the parent's is untouched
