"""Faults on real servers: connections killed, servers restarted, unreachable servers, writers
killed mid-commit. The application keeps its storage object throughout, as a running app would.

Restarts use private servers started for these tests (tests/servers.py), never the machine's
shared ones. A process killed while writing a JSON or YAML file: tests/nosql/test_files.py.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from agno_orm import (
    AgentSession,
    MySQLStorage,
    PostgresStorage,
    Storage,
    StorageConnectionError,
)
from agno_orm.nosql import RedisStorage
from agno_orm.sql import SqlStorage
from tests import servers
from tests.conftest import unavailable, unique_table_name


def private_server(factory: Callable[[], servers.PrivateServer]) -> Iterator[servers.PrivateServer]:
    try:
        server = factory()
        server.start()
    except servers.ServerUnavailable as exc:
        unavailable(f"a private server for restart tests: {exc}")
        raise
    yield server
    server.stop()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[servers.PrivateServer]:
    yield from private_server(servers.PrivatePostgres)


@pytest.fixture(scope="module")
def private_mariadb() -> Iterator[servers.PrivateServer]:
    yield from private_server(servers.PrivateMariaDB)


@pytest.fixture(scope="module")
def private_redis() -> Iterator[servers.PrivateServer]:
    yield from private_server(servers.PrivateRedis)


def session_with_runs(*run_ids: str) -> AgentSession:
    return AgentSession(session_id="s1", user_id="u1", memory={"runs": [{"run_id": r} for r in run_ids]})


def run_ids(session: Any) -> list[str]:
    return [run["run_id"] for run in session.memory["runs"]]


@pytest.fixture
def postgres_storage(postgres_url: str) -> Iterator[PostgresStorage]:
    """A PostgresStorage made from a URL (as an application makes it), its connections marked with
    an application_name of their own so a test can find and kill exactly them."""
    url = make_url(postgres_url).update_query_dict({"application_name": f"agno_orm_{uuid.uuid4().hex[:12]}"})
    storage = PostgresStorage(
        unique_table_name(), db_url=url.render_as_string(hide_password=False), session_types="pydantic"
    )
    yield storage
    storage.drop()
    storage.db_engine.dispose()


class PostgresKiller:
    """Terminates server backends from a connection of its own."""

    def __init__(self, postgres_url: str) -> None:
        self.engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")

    def kill_application(self, application_name: str) -> int:
        query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"
        with self.engine.connect() as connection:
            return int(connection.execute(text(query), {"name": application_name}).scalar_one())

    def kill_backend(self, pid: int) -> None:
        with self.engine.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()


@pytest.fixture
def killer(postgres_url: str) -> Iterator[PostgresKiller]:
    killer = PostgresKiller(postgres_url)
    yield killer
    killer.engine.dispose()


def kill_on_statement(
    storage: SqlStorage, killer: PostgresKiller, matches: Callable[[str], bool], times: int = 1
) -> list[str]:
    """Kill the connection running the first `times` statements that `matches`, just before they
    are sent; returns the log of every statement that matched (killed or not)."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if matches(statement):
            seen.append(statement)
            if len(seen) <= times:
                killer.kill_backend(conn.connection.dbapi_connection.info.backend_pid)

    event.listen(storage.db_engine, "before_cursor_execute", before)
    return seen


# -- PostgreSQL ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_calls_after_the_sessions_connections_are_killed_succeed(
    postgres_storage: PostgresStorage, killer: PostgresKiller
) -> None:
    postgres_storage.upsert(session_with_runs("r1"))
    assert postgres_storage.read("s1") is not None  # the pool now holds a connection
    name = postgres_storage.db_engine.url.query["application_name"]
    assert killer.kill_application(str(name)) >= 1
    read = postgres_storage.read("s1")
    assert read is not None and run_ids(read) == ["r1"]
    postgres_storage.upsert(session_with_runs("r1", "r2"))
    assert run_ids(postgres_storage.read("s1")) == ["r1", "r2"]


@pytest.mark.postgres
def test_postgres_read_whose_connection_dies_mid_query_is_tried_again(
    postgres_storage: PostgresStorage, killer: PostgresKiller
) -> None:
    postgres_storage.upsert(session_with_runs("r1"))
    seen = kill_on_statement(postgres_storage, killer, lambda sql: sql.lstrip().startswith("SELECT"))
    read = postgres_storage.read("s1")
    assert read is not None and run_ids(read) == ["r1"]
    assert len(seen) > 1  # the killed query, then the queries of the second try


@pytest.mark.postgres
def test_postgres_upsert_whose_connection_dies_before_its_commit_is_written_once(
    postgres_url: str, killer: PostgresKiller
) -> None:
    storage = PostgresStorage(
        unique_table_name(), db_url=postgres_url, on_conflict="raise", session_types="pydantic"
    )
    try:
        session = storage.upsert(session_with_runs("r1"))
        inserts = kill_on_statement(storage, killer, lambda sql: "_runs" in sql and sql.startswith("INSERT"))
        session.memory = {"runs": [{"run_id": "r1"}, {"run_id": "r2"}]}  # type: ignore[attr-defined]
        storage.upsert(session)  # "raise" mode: a write tried twice would conflict with itself
        assert len(inserts) == 2  # killed once, written by the second try
        assert run_ids(storage.read("s1")) == ["r1", "r2"]
        with storage.db_engine.connect() as connection:
            table = f"{storage.schema}.{storage.table_name}"
            assert connection.execute(text(f"SELECT version FROM {table}")).scalar_one() == 2
    finally:
        storage.drop()
        storage.db_engine.dispose()


@pytest.mark.postgres
def test_postgres_upsert_in_raise_mode_whose_commit_breaks_is_not_tried_again(
    postgres_storage: PostgresStorage, killer: PostgresKiller
) -> None:
    storage = PostgresStorage(
        postgres_storage.table_name, db_engine=postgres_storage.db_engine, on_conflict="raise"
    )
    storage.upsert(session_with_runs("r1"))
    writes = kill_on_statement(storage, killer, lambda sql: sql.startswith("UPDATE"), times=0)

    def kill_before_commit(conn: Any) -> None:
        killer.kill_backend(conn.connection.dbapi_connection.info.backend_pid)

    event.listen(storage.db_engine, "commit", kill_before_commit)
    try:
        with pytest.raises(StorageConnectionError, match="unknown"):
            storage.upsert({"session_id": "s1", "memory": {"runs": [{"run_id": "r1"}, {"run_id": "r2"}]}})
    finally:
        event.remove(storage.db_engine, "commit", kill_before_commit)
    assert len(writes) == 1  # one try only
    reread = storage.read("s1")  # the outcome was unknown: the application reads again
    assert reread is not None and run_ids(reread) == ["r1"]  # the server was gone before it committed
    storage.upsert({"session_id": "s1", "memory": {"runs": [{"run_id": "r1"}, {"run_id": "r2"}]}})
    assert run_ids(storage.read("s1")) == ["r1", "r2"]


@pytest.mark.postgres
def test_postgres_restarted_under_a_running_application_is_used_again(
    private_postgres: servers.PrivateServer,
) -> None:
    storage = PostgresStorage("sessions", db_url=private_postgres.url, session_types="pydantic")
    storage.upsert(session_with_runs("r1"))
    private_postgres.restart()
    read = storage.read("s1")
    assert read is not None and run_ids(read) == ["r1"]
    storage.upsert(session_with_runs("r1", "r2"))
    assert run_ids(storage.read("s1")) == ["r1", "r2"]
    storage.db_engine.dispose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


@pytest.mark.postgres
def test_postgres_unreachable_raises_storage_connection_error_not_none() -> None:
    storage = PostgresStorage(
        "sessions", db_url=f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test?connect_timeout=2"
    )
    with pytest.raises(StorageConnectionError, match="unreachable"):
        storage.read("s1")


# -- MariaDB, Redis ---------------------------------------------------------------------------------


@pytest.mark.mysql
def test_mariadb_restarted_under_a_running_application_is_used_again(
    private_mariadb: servers.PrivateServer,
) -> None:
    storage = MySQLStorage("sessions", db_url=private_mariadb.url, session_types="pydantic")
    storage.upsert(session_with_runs("r1"))
    private_mariadb.restart()
    read = storage.read("s1")
    assert read is not None and run_ids(read) == ["r1"]
    storage.upsert(session_with_runs("r1", "r2"))
    assert run_ids(storage.read("s1")) == ["r1", "r2"]
    storage.db_engine.dispose()


@pytest.mark.redis
def test_redis_restarted_under_a_running_application_is_used_again(
    private_redis: servers.PrivateServer,
) -> None:
    storage: Storage = RedisStorage("sessions", redis_url=private_redis.url, session_types="pydantic")
    storage.upsert(session_with_runs("r1"))
    private_redis.restart()
    read = storage.read("s1")
    assert read is not None and run_ids(read) == ["r1"]
    storage.upsert(session_with_runs("r1", "r2"))
    assert run_ids(storage.read("s1")) == ["r1", "r2"]
