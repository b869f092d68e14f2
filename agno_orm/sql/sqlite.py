"""SQLite: `SqliteStorage`, agno 1.8.4's constructor on the shared SQL implementation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import StaticPool

from agno_orm._urls import check_storage_kind, parse_db_url
from agno_orm._versions import OnConflict
from agno_orm.sessions import Mode, SessionTypes
from agno_orm.sql.storage import SqlStorage
from agno_orm.storage import DEFAULT_MAX_PAYLOAD_BYTES

__all__ = ["SqliteStorage"]


class SqliteStorage(SqlStorage):
    """Sessions in a SQLite table.

    The database is, in this order: `db_engine` (used as given, unlike agno's), `db_url`,
    `db_file` (its folder is created), else a private in-memory database.

    A database file opened from `db_url` or `db_file` is switched to write-ahead logging (WAL:
    readers never wait for the writer) and its connections wait up to BUSY_TIMEOUT_SECONDS for
    another process's write; writes take the lock first (BEGIN IMMEDIATE) and one that still
    finds the file busy is tried again, so several processes can share one file. An engine
    passed as `db_engine` is used with its own settings.
    """

    def __init__(
        self,
        table_name: str,
        db_url: str | None = None,
        db_file: str | None = None,
        db_engine: Engine | None = None,
        schema_version: int = 1,
        auto_upgrade_schema: bool = False,
        mode: Mode | None = "agent",
        *,
        session_types: SessionTypes = "auto",
        on_conflict: OnConflict = "overwrite",
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        if db_engine is None:
            db_engine = _engine_for(db_url, db_file)
        super().__init__(
            table_name,
            db_engine,
            schema=None,
            schema_version=schema_version,
            auto_upgrade_schema=auto_upgrade_schema,
            mode=mode,
            session_types=session_types,
            on_conflict=on_conflict,
            max_payload_bytes=max_payload_bytes,
        )
        self.db_url = db_url
        self.db_file = db_file


BUSY_TIMEOUT_SECONDS = 30
"""How long a connection to a database file waits for another connection's write to end."""


def _engine_for(db_url: str | None, db_file: str | None) -> Engine:
    url = database_url(db_url, db_file)
    if url is None:
        return create_engine(MEMORY_URL, **memory_engine_options())
    return configured(create_engine(check_storage_kind(parse_db_url(url), "SqliteStorage")))


MEMORY_URL = "sqlite://"
"""A private in-memory database."""


def memory_engine_options() -> dict[str, Any]:
    """The engine options of a private in-memory database: one connection shared by all threads
    (and tasks), or each would see its own empty database; they take turns on it (see SqlStorage)."""
    return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}


def database_url(db_url: str | None, db_file: str | None) -> str | None:
    """The URL of the database `db_url` or `db_file` names (the file's folder is created); None:
    a private in-memory database."""
    if db_url is not None:
        return db_url
    if db_file is not None:
        path = Path(db_file).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    return None


def configured(engine: Engine) -> Engine:
    """`engine` with a database file's connections set up for several writers (WAL, busy timeout)."""
    if engine.url.database not in (None, "", ":memory:"):
        event.listen(engine, "connect", _configure_file_connection)
    return engine


def _configure_file_connection(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()
