"""Database errors raised as the class of their cause, told apart by SQLSTATE or server error code
(a driver's exception class does not tell them apart): a timeout is a StorageTimeoutError, a value
over the database's limits a PayloadTooLargeError or InvalidSessionError, and neither is retried
nor reported as an unreachable database. Real PostgreSQL and MariaDB."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError

from agno_orm import (
    AgentSession,
    InvalidSessionError,
    MySQLStorage,
    PayloadTooLargeError,
    PostgresStorage,
    StorageConnectionError,
    StorageTimeoutError,
)
from agno_orm.sql import SqlStorage
from agno_orm.sql.dialects import hooks_for
from tests.conftest import unique_table_name


def count_writes(storage: SqlStorage) -> list[str]:
    """The INSERTs the storage sends from now on into its tables (each try of an upsert sends one)."""
    writes: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO"):
            writes.append(statement)

    event.listen(storage.db_engine, "before_cursor_execute", before)
    return writes


def stored_ids(storage: SqlStorage) -> list[str]:
    with storage.db_engine.connect() as connection:
        return list(connection.scalars(text(f"SELECT session_id FROM {storage.spec.qualified_name}")))


def nested(depth: int) -> Any:
    """A value of `depth` nested lists."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


# -- classification, by code ----------------------------------------------------------------------


def postgres_error(sqlstate: str | None) -> OperationalError:
    orig = psycopg.errors.lookup(sqlstate)("message") if sqlstate else psycopg.OperationalError("closed")
    return OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("sqlstate", "lost", "error_class"),
    [
        (None, True, None),  # the client lost or never had a connection
        ("08006", True, None),  # connection_failure
        ("57P01", True, None),  # admin_shutdown
        ("53300", True, None),  # too_many_connections
        ("28P01", True, None),  # invalid_password: the login refused, as MySQL's 1045
        ("40P01", False, None),  # deadlock: retried as a rolled-back transaction, not as lost
        ("55P03", False, StorageTimeoutError),  # lock_not_available (lock_timeout)
        ("57014", False, StorageTimeoutError),  # query_canceled (statement_timeout)
        ("54000", False, PayloadTooLargeError),  # program_limit_exceeded (index row too large)
    ],
)
def test_postgres_errors_are_classified_by_sqlstate_not_by_class(
    sqlstate: str | None, lost: bool, error_class: type | None
) -> None:
    hooks, error = hooks_for("postgresql"), postgres_error(sqlstate)
    assert hooks.is_connection_error(error) is lost
    explained = hooks.explained(error)
    assert (explained[0] if explained else None) is error_class


@pytest.mark.parametrize(
    ("code", "transient", "error_class"),
    [
        (1213, True, None),  # deadlock: rolled back, tried again
        (1205, False, StorageTimeoutError),  # lock wait timeout
        (1969, False, StorageTimeoutError),  # MariaDB max_statement_time
        (3024, False, StorageTimeoutError),  # MySQL max_execution_time
        (1153, False, PayloadTooLargeError),  # max_allowed_packet
        (4025, False, InvalidSessionError),  # MariaDB's json_valid CHECK (nesting 32 deep)
        (1146, False, None),  # no such table: a plain StorageError
    ],
)
@pytest.mark.parametrize("dialect", ["mysql", "singlestoredb"])
def test_mysql_errors_are_classified_by_code(
    dialect: str, code: int, transient: bool, error_class: type | None
) -> None:
    hooks = hooks_for(dialect)
    error = OperationalError("SELECT 1", {}, pymysql.err.OperationalError(code, "message"))
    assert hooks.is_transient_error(error) is transient
    assert not hooks.is_connection_error(error)
    explained = hooks.explained(error)
    assert (explained[0] if explained else None) is error_class


# -- PostgreSQL --------------------------------------------------------------------------------------


@pytest.fixture
def postgres_storages(postgres_url: str) -> Iterator[Any]:
    """Makes PostgresStorages on one fresh table, each on its own engine with the given server
    settings (`-c name=value` options); drops the table and the engines afterwards."""
    table, engines = unique_table_name(), []

    def make(**settings: str) -> PostgresStorage:
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        engine = create_engine(postgres_url, connect_args={"options": options} if options else {})
        engines.append(engine)
        return PostgresStorage(table, db_engine=engine, session_types="pydantic")

    yield make
    make().drop()
    for engine in engines:
        engine.dispose()


def holding_the_row_lock(storage: SqlStorage, session_id: str) -> Any:
    """A transaction of its own holding the lock of the session's row (close it to release)."""
    connection = storage.db_engine.connect()
    transaction = connection.begin()
    connection.execute(
        text(f"SELECT 1 FROM {storage.spec.qualified_name} WHERE session_id = :id FOR UPDATE"),
        {"id": session_id},
    )
    return connection, transaction


@pytest.mark.postgres
@pytest.mark.parametrize("setting", ["lock_timeout", "statement_timeout"])
def test_postgres_timeouts_raise_a_timeout_error_without_retries(
    postgres_storages: Any, setting: str
) -> None:
    owner = postgres_storages()
    owner.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r1"}]}))
    storage = postgres_storages(**{setting: "300"})
    writes = count_writes(storage)
    connection, transaction = holding_the_row_lock(owner, "s1")
    try:
        with pytest.raises(StorageTimeoutError, match="timed out") as raised:
            storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r2"}]}))
    finally:
        transaction.rollback()
        connection.close()
    assert not isinstance(raised.value, StorageConnectionError)
    assert len(writes) == 1  # not tried again
    assert [run["run_id"] for run in owner.read("s1").memory["runs"]] == ["r1"]  # type: ignore[union-attr]


@pytest.mark.postgres
def test_postgres_id_over_the_index_size_limit_is_too_large_not_unreachable(postgres_storages: Any) -> None:
    storage = postgres_storages()
    storage.create()
    writes = count_writes(storage)
    user_id = secrets.token_urlsafe(9000)  # random: 12,000 characters PostgreSQL cannot compress
    with pytest.raises(PayloadTooLargeError, match="size limits") as raised:
        storage.upsert(AgentSession(session_id="s1", user_id=user_id))
    assert "unreachable" not in str(raised.value)
    assert len(writes) == 1
    assert stored_ids(storage) == []


# -- MariaDB -------------------------------------------------------------------------------------------


@pytest.fixture
def mysql_storage(mysql_url: str) -> Iterator[MySQLStorage]:
    storage = MySQLStorage(unique_table_name(), db_url=mysql_url, schema=None, session_types="pydantic")
    yield storage
    storage.drop()
    storage.db_engine.dispose()


@pytest.mark.mysql
def test_mariadb_lock_wait_timeout_raises_a_timeout_error_without_retries(
    mysql_storage: MySQLStorage, mysql_url: str
) -> None:
    mysql_storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r1"}]}))
    engine: Engine = create_engine(
        mysql_url, connect_args={"init_command": "SET innodb_lock_wait_timeout = 1"}
    )
    storage = MySQLStorage(mysql_storage.table_name, db_engine=engine, schema=None, session_types="pydantic")
    writes = count_writes(storage)
    connection, transaction = holding_the_row_lock(mysql_storage, "s1")
    try:
        with pytest.raises(StorageTimeoutError, match="innodb_lock_wait_timeout"):
            storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r2"}]}))
    finally:
        transaction.rollback()
        connection.close()
        engine.dispose()
    assert len(writes) == 1
    assert [run["run_id"] for run in mysql_storage.read("s1").memory["runs"]] == ["r1"]  # type: ignore[union-attr]


@pytest.mark.mysql
def test_mariadb_session_over_max_allowed_packet_is_too_large_and_not_retried(
    mysql_storage: MySQLStorage,
) -> None:
    mysql_storage.create()
    with mysql_storage.db_engine.connect() as connection:
        packet = connection.execute(text("SELECT @@max_allowed_packet")).scalar_one()
    storage = MySQLStorage(
        mysql_storage.table_name,
        db_engine=mysql_storage.db_engine,
        schema=None,
        session_types="pydantic",
        max_payload_bytes=None,
    )
    writes = count_writes(storage)
    huge = AgentSession(
        session_id="s1", memory={"runs": [{"run_id": "r1", "content": "x" * (packet + 1024)}]}
    )
    with pytest.raises(PayloadTooLargeError, match="max_allowed_packet") as raised:
        storage.upsert(huge)
    assert "unreachable" not in str(raised.value)
    assert len([sql for sql in writes if "_runs" in sql]) == 1  # the runs INSERT, sent once
    assert stored_ids(storage) == []
    storage.upsert(AgentSession(session_id="s2"))  # the storage goes on working
    assert stored_ids(storage) == ["s2"]


@pytest.mark.mysql
@pytest.mark.parametrize("where", ["session_data", "run"])
def test_mariadb_refuses_json_nested_32_deep_as_an_invalid_session_naming_its_limit(
    mysql_storage: MySQLStorage, where: str
) -> None:
    def session(depth: int) -> AgentSession:
        # the field's (or the run's) own object is one level: `depth` levels in all
        if where == "run":
            return AgentSession(session_id="s1", memory={"runs": [{"run_id": "r1", "x": nested(depth - 1)}]})
        return AgentSession(session_id="s1", session_data={"x": nested(depth - 1)})

    with pytest.raises(InvalidSessionError, match="at most 31 levels"):
        mysql_storage.upsert(session(32))
    assert stored_ids(mysql_storage) == []
    mysql_storage.upsert(session(31))
    read = mysql_storage.read("s1")
    assert read is not None and (read.memory, read.session_data) == (
        session(31).memory,
        session(31).session_data,
    )
