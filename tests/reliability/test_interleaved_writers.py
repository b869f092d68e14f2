"""Two writers of one session, interleaved at the point of contention on purpose, so one run decides.

The threaded tests (test_concurrent_writers.py, the contract's retrying writers) race writers and
catch a broken guard only when the scheduler happens to interleave them badly. Here writer A is
held inside its upsert, after it read the stored session (NoSQL: `next_document`, which computes
the document to write from it) or took the row (SQL: `_write_runs`, after the row is written in
the open transaction), and writer B runs its whole upsert meanwhile, in a thread. A resumes when
B has finished (optimistic backends: A's write must then notice B's) or when B is seen waiting
for A's lock (PostgreSQL's pg_blocking_pids, InnoDB's lock waits, the kernel's /proc/locks for
the file storages' flock). The wait is for a condition, not for time.

SQLite is left out: one writer holds the database file's lock, and a second one waiting on it
cannot be seen from outside (it sleeps in SQLite's busy handler); its writers are covered by
test_concurrent_writers.py's processes and the contract's sequential interleavings.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from agno_orm import AgentSession, SessionConflictError, Storage
from agno_orm.nosql import FileStorage
from agno_orm.nosql import _documents as documents
from agno_orm.sql import SqlStorage
from tests.conftest import BACKENDS, StorageFactory

WAIT_LIMIT = 120.0  # seconds before a writer that neither finishes nor waits is a failure


@pytest.fixture(params=[p for p in BACKENDS if p.values[0] != "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def with_runs(*run_ids: str) -> AgentSession:
    return AgentSession(session_id="s1", memory={"runs": [{"run_id": r, "content": r} for r in run_ids]})


def run_ids(session: Any) -> list[str]:
    return [run["run_id"] for run in session.memory["runs"]]


class Interleaving:
    """Holds writer A at its point of contention while writer B upserts in a thread."""

    def __init__(self, second: Storage, session: AgentSession, request: pytest.FixtureRequest) -> None:
        self.second, self.session, self.request = second, session, request
        self.fired = False
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run_second(self) -> None:
        try:
            self.second.upsert(self.session)
        except BaseException as exc:  # looked at by the test
            self.error = exc
        finally:
            self.done.set()

    def hold_first(self, waiting_on_first: Callable[[], bool]) -> None:
        """Called once, inside A's upsert: start B, return once B finished or waits for A."""
        self.fired = True
        thread = threading.Thread(target=self.run_second)
        thread.start()
        self.request.addfinalizer(thread.join)
        deadline = threading.Event()
        timer = threading.Timer(WAIT_LIMIT, deadline.set)
        timer.start()
        try:
            # Every 0.2 s: InnoDB refreshes its lock-wait tables only after 0.1 s without a read.
            while not self.done.wait(0.2) and not waiting_on_first():
                assert not deadline.is_set(), "writer B neither finished nor waited for writer A"
        finally:
            timer.cancel()


def hold_sql_writer(storage: SqlStorage, backend: str, interleaving: Interleaving, engine: Engine) -> Any:
    """`storage._write_runs`, holding the writer there the first time (its row taken)."""
    write_runs = storage._write_runs

    def held(connection: Connection, *args: Any, **kwargs: Any) -> Any:
        if not interleaving.fired:
            interleaving.hold_first(sql_waiter(backend, storage, connection, engine))
        return write_runs(connection, *args, **kwargs)

    return held


def sql_waiter(
    backend: str, storage: SqlStorage, connection: Connection, engine: Engine
) -> Callable[[], bool]:
    """Whether another transaction now waits for a lock, the one of `connection` (PostgreSQL) or
    one on the storage's tables (the MySQL family, whose tables only this test's writers use)."""
    if backend == "postgres":
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        query = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")

        def blocked_by_first() -> bool:
            with engine.connect() as observer:
                return bool(observer.execute(query, {"pid": pid}).scalar())

        return blocked_by_first

    # InnoDB's status, not information_schema.innodb_lock_waits: those tables are a cache that
    # is not refreshed while anyone (another test run on the server) reads them every 0.1 s.
    schema, _, table = storage.spec.qualified_name.rpartition(".")
    ours = f"`{schema}`.`{table}" if schema else f"`{table}"

    def waits_on_our_tables() -> bool:
        with engine.connect() as observer:
            status = str(observer.execute(text("SHOW ENGINE INNODB STATUS")).one()[2])
        return any(ours in line and line.endswith("waiting") for line in status.splitlines())

    return waits_on_our_tables


def flock_waiter(directory: Path) -> Callable[[], bool]:
    """Whether a flock on `directory` is waited for (the kernel lists waiters with "->")."""
    inode = os.stat(directory).st_ino

    def waiting() -> bool:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "->" in fields and "FLOCK" in fields and fields[-3].rsplit(":", 1)[-1] == str(inode):
                return True
        return False

    return waiting


def interleave(
    backend: str,
    first: Storage,
    interleaving: Interleaving,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Make `first`'s next upsert hold at its point of contention for `interleaving`."""
    if isinstance(first, SqlStorage):
        engine = request.getfixturevalue(f"{backend}_engine")
        monkeypatch.setattr(first, "_write_runs", hold_sql_writer(first, backend, interleaving, engine))
        return
    waiting = flock_waiter(first.dir_path) if isinstance(first, FileStorage) else (lambda: False)
    next_document, first_thread = documents.next_document, threading.get_ident()

    def held(*args: Any, **kwargs: Any) -> Any:
        if not interleaving.fired and threading.get_ident() == first_thread:
            interleaving.hold_first(waiting)
        return next_document(*args, **kwargs)

    monkeypatch.setattr(documents, "next_document", held)


def test_a_writer_held_at_its_point_of_contention_loses_no_run_of_the_other(
    backend: str,
    make_storage: StorageFactory,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = make_storage(), make_storage()
    first.upsert(with_runs("r0"))
    a, b = first.read("s1"), second.read("s1")
    assert a is not None and b is not None
    interleaving = Interleaving(second, with_runs(*run_ids(b), "from-second"), request)
    interleave(backend, first, interleaving, request, monkeypatch)
    first.upsert(with_runs(*run_ids(a), "from-first"))
    assert interleaving.fired and interleaving.done.wait(WAIT_LIMIT)
    assert interleaving.error is None
    stored = first.read("s1")
    assert stored is not None and sorted(run_ids(stored)) == ["from-first", "from-second", "r0"]


def test_of_two_writers_of_one_version_held_at_the_point_of_contention_one_gets_a_conflict(
    backend: str,
    make_storage: StorageFactory,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = make_storage(on_conflict="raise"), make_storage(on_conflict="raise")
    first.upsert(with_runs("r0"))
    a, b = first.read("s1"), second.read("s1")
    assert a is not None and b is not None
    a.memory["runs"].append({"run_id": "from-first", "content": "a"})  # type: ignore[attr-defined]
    b.memory["runs"].append({"run_id": "from-second", "content": "b"})  # type: ignore[attr-defined]
    interleaving = Interleaving(second, b, request)  # type: ignore[arg-type]
    interleave(backend, first, interleaving, request, monkeypatch)
    try:
        first.upsert(a)
        first_error = None
    except SessionConflictError as exc:
        first_error = exc
    assert interleaving.fired and interleaving.done.wait(WAIT_LIMIT)
    errors = [first_error, interleaving.error]
    assert sum(isinstance(e, SessionConflictError) for e in errors) == 1, errors
    assert all(e is None or isinstance(e, SessionConflictError) for e in errors), errors
    winner = "from-first" if first_error is None else "from-second"
    stored = first.read("s1")
    assert stored is not None and run_ids(stored) == ["r0", winner]
