"""The async storages beyond the contract suite (which they pass, tests/contract): they mirror the
sync API exactly, never block the event loop while the database makes them wait, and open URLs,
files and in-memory databases as the sync storages do."""

from __future__ import annotations

import asyncio
import inspect
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.util import greenlet_spawn

import agno_orm
from agno_orm import (
    AgentSession,
    AsyncMySQLStorage,
    AsyncPostgresStorage,
    AsyncSqliteStorage,
    AsyncSqlStorage,
    InvalidInputError,
    SqlStorage,
    Storage,
    StorageConnectionError,
)
from agno_orm._greenlets import sleep
from tests.conftest import unique_table_name

PUBLIC_METHODS = sorted(
    name for name, value in inspect.getmembers(Storage, inspect.isfunction) if not name.startswith("_")
)


def session(session_id: str, *runs: str, **fields: Any) -> AgentSession:
    return AgentSession(session_id=session_id, memory={"runs": [{"run_id": r} for r in runs]}, **fields)


@pytest.mark.parametrize("name", PUBLIC_METHODS)
def test_every_method_of_the_sync_storage_is_a_coroutine_with_the_same_signature(name: str) -> None:
    sync, asynchronous = getattr(SqlStorage, name), getattr(AsyncSqlStorage, name)
    assert inspect.iscoroutinefunction(asynchronous), name
    assert inspect.signature(asynchronous).parameters == inspect.signature(sync).parameters


def test_the_async_constructors_take_the_sync_ones_arguments() -> None:
    for async_class in (AsyncPostgresStorage, AsyncMySQLStorage, AsyncSqliteStorage):
        sync_class = getattr(agno_orm, async_class.__name__.removeprefix("Async"))
        sync_parameters = list(inspect.signature(sync_class).parameters)
        async_parameters = list(inspect.signature(async_class).parameters)
        positional = async_parameters[: async_parameters.index("options")]
        assert sync_parameters[: len(positional)] == positional, async_class


def test_a_task_waiting_for_a_locked_row_leaves_the_loop_to_other_tasks(
    postgres_url: str, postgres_engine: Engine
) -> None:
    table = unique_table_name()

    async def scenario() -> None:
        storage = AsyncPostgresStorage(table, db_url=postgres_url)
        try:
            await storage.upsert(session("s1", "r1"))
            with postgres_engine.connect() as blocker:
                blocker.execute(text(f"SELECT 1 FROM ai.\"{table}\" WHERE session_id = 's1' FOR UPDATE"))
                waiting = asyncio.create_task(storage.upsert(session("s1", "r1", "r2")))
                await asyncio.sleep(0.5)
                assert not waiting.done()  # the upsert waits for the row lock...
                # ...while other tasks on the loop read and write
                await asyncio.wait_for(storage.upsert(session("s2", "r1")), timeout=20)
                other = await asyncio.wait_for(storage.read("s2"), timeout=20)
                assert other is not None and not waiting.done()
                blocker.rollback()
            await asyncio.wait_for(waiting, timeout=20)
            stored = await storage.read("s1")
            assert stored is not None and [r["run_id"] for r in stored.memory["runs"]] == ["r1", "r2"]
        finally:
            await storage.drop()
            await storage.db_engine.dispose()

    asyncio.run(scenario())


def test_a_retry_pause_in_an_async_operation_lets_other_tasks_run() -> None:
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(40):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def scenario() -> tuple[float, float]:
        async def paused() -> tuple[float, float]:
            started = time.monotonic()
            await greenlet_spawn(sleep, 0.3)  # what `_retry.pause` calls inside an operation
            return started, time.monotonic()

        window, _ = await asyncio.gather(paused(), ticker())
        return window

    started, ended = asyncio.run(scenario())
    assert ended - started >= 0.29
    assert sum(started < tick < ended for tick in ticks) >= 5  # time.sleep would allow none


def test_an_in_memory_database_serves_concurrent_tasks() -> None:
    async def scenario() -> list[str]:
        storage = AsyncSqliteStorage("sessions")
        await asyncio.gather(*(storage.upsert(session(f"s{i}", "r1")) for i in range(20)))
        reads = await asyncio.gather(*(storage.read(f"s{i}") for i in range(20)))
        assert all(read is not None for read in reads)
        ids = await storage.get_all_session_ids()
        await storage.db_engine.dispose()
        return ids

    assert sorted(asyncio.run(scenario())) == sorted(f"s{i}" for i in range(20))


def test_a_database_file_is_created_and_opened_for_several_writers(tmp_path: Path) -> None:
    db_file = tmp_path / "nested" / "sessions.db"

    async def scenario() -> None:
        storage = AsyncSqliteStorage("sessions", db_file=str(db_file))
        await asyncio.gather(*(storage.upsert(session(f"s{i}", "r1")) for i in range(10)))
        await storage.db_engine.dispose()

    asyncio.run(scenario())
    with sqlite3.connect(db_file) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("SELECT count(*) FROM sessions").fetchone() == (10,)


def test_sync_urls_open_with_the_async_driver(postgres_url: str, mysql_url: str, tmp_path: Path) -> None:
    plain_postgres = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    storages = [
        AsyncPostgresStorage(unique_table_name(), db_url=plain_postgres),
        AsyncMySQLStorage(unique_table_name(), db_url=mysql_url),  # mysql+pymysql://
        AsyncSqliteStorage(unique_table_name(), db_url=f"sqlite:///{tmp_path / 'x.db'}"),
    ]
    assert [s.db_engine.dialect.driver for s in storages] == ["psycopg", "aiomysql", "aiosqlite"]

    async def scenario() -> None:
        for storage in storages:
            await storage.upsert(session("s1", "r1", user_id="u1"))
            stored = await storage.read("s1", user_id="u1")
            assert stored is not None and stored.user_id == "u1"
            await storage.drop()
            await storage.db_engine.dispose()

    asyncio.run(scenario())


def test_a_sync_engine_or_no_database_is_refused(postgres_engine: Engine) -> None:
    with pytest.raises(InvalidInputError, match="AsyncEngine"):
        AsyncPostgresStorage("sessions", db_engine=postgres_engine)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="db_url or db_engine"):
        AsyncPostgresStorage("sessions")
    with pytest.raises(InvalidInputError, match="AsyncEngine"):
        AsyncSqliteStorage("sessions", db_engine=create_engine("sqlite://"))  # type: ignore[arg-type]


def test_an_unreachable_server_raises_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/test?connect_timeout=2"

    async def scenario() -> None:
        storage = AsyncPostgresStorage("sessions", db_url=url)
        try:
            with pytest.raises(StorageConnectionError, match="unreachable") as raised:
                await storage.read("s1")
            assert raised.value.__cause__ is not None
        finally:
            await storage.db_engine.dispose()

    asyncio.run(scenario())


WITHOUT_GREENLET = """
import sys
sys.modules["greenlet"] = None  # as if it were not installed: plain `pip install agno-orm`
import agno_orm
from agno_orm import AgentSession, AsyncSqliteStorage, MissingDependencyError, SqliteStorage

storage = SqliteStorage("sessions")
storage.upsert(AgentSession(session_id="s1"))
assert storage.read("s1") is not None
try:
    AsyncSqliteStorage("sessions")
except MissingDependencyError as exc:
    print(exc)
"""


def test_without_greenlet_the_sync_storages_work_and_the_async_ones_name_the_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_GREENLET], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'agno-orm[asyncio]'" in result.stdout


FIRST_CALLS_FROM_THREADS = """
import threading
import agno_orm
from sqlalchemy.util import concurrency

# SQLAlchemy sets up greenlet on its first use, not thread-safely (threads making the first call
# together recursed until RecursionError in a 4-process x 4-thread SQLite test): importing
# agno_orm has done it already, so no thread of a sync storage can race it.
shim = concurrency._concurrency_shim
print(type(shim).getcurrent.__get__(shim) is not None)
barrier = threading.Barrier(16)
errors = []

def first_call():
    barrier.wait()
    try:
        agno_orm._greenlets.in_async_operation()
    except BaseException as exc:
        errors.append(exc)

threads = [threading.Thread(target=first_call) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors)
"""


def test_importing_agno_orm_sets_up_sqlalchemys_greenlet_support_before_any_thread_needs_it() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FIRST_CALLS_FROM_THREADS], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "[]"]
