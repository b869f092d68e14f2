"""Async storages: the SQL storages' methods as coroutines, for asyncio services (FastAPI and the like).

`AsyncPostgresStorage`, `AsyncSqliteStorage` and `AsyncMySQLStorage` drive an `AsyncEngine`
(psycopg's async mode, aiosqlite, aiomysql). They cannot drift from the sync storages because
they are the sync storages: each wraps the sync storage of its dialect built on the AsyncEngine's
`sync_engine`, and runs each method in SQLAlchemy's greenlet (`greenlet_spawn`, what
`AsyncSession.run_sync` is made of), where every database call awaits the async driver and
yields the event loop to other tasks. Statements, input checks, retries and Alembic upgrades
are the one implementation in `SqlStorage`; only the entry points here are coroutines.

Install the `asyncio` extra (greenlet, aiosqlite, aiomysql; psycopg brings its async mode).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import greenlet_spawn
from typing_extensions import ParamSpec, Unpack

from agno_orm._greenlets import HAVE_GREENLET
from agno_orm._urls import check_storage_kind
from agno_orm._versions import OnConflict
from agno_orm.errors import InvalidInputError, MissingDependencyError
from agno_orm.sessions import AnySession, Mode, SessionPage, SessionTypes
from agno_orm.sql import sqlite
from agno_orm.sql.engines import async_engine_from_url, parse_url
from agno_orm.sql.mysql import MySQLStorage, with_utf8mb4
from agno_orm.sql.postgres import PostgresStorage
from agno_orm.sql.sqlite import SqliteStorage
from agno_orm.sql.storage import SqlStorage

if TYPE_CHECKING:  # SQLAlchemy's asyncio extension cannot be imported without greenlet (see _sync_engine)
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["AsyncMySQLStorage", "AsyncPostgresStorage", "AsyncSqlStorage", "AsyncSqliteStorage"]

P = ParamSpec("P")
T = TypeVar("T")


class StorageOptions(TypedDict, total=False):
    """The keyword options every SQL storage takes, as the sync storages document them."""

    schema_version: int
    auto_upgrade_schema: bool
    mode: Mode | None
    session_types: SessionTypes
    on_conflict: OnConflict
    max_payload_bytes: int | None


class AsyncSqlStorage:
    """A SQL storage whose methods are coroutines; see `SqlStorage` for what each one does.

    `db_engine` is an `AsyncEngine` (`sqlalchemy.ext.asyncio.create_async_engine`). Like the sync
    storages, a missing table is created at the newest revision on first use, errors are
    `StorageError`s with the cause chained, and `copy.deepcopy` shares the engine. An engine made
    from `db_url` belongs to the storage: close it with `await storage.db_engine.dispose()`.
    """

    def __init__(
        self,
        table_name: str,
        db_engine: AsyncEngine,
        *,
        schema: str | None = None,
        **options: Unpack[StorageOptions],
    ) -> None:
        self._wrap(SqlStorage(table_name, _sync_engine(db_engine), schema=schema, **options), db_engine)

    def _wrap(self, storage: SqlStorage, db_engine: AsyncEngine) -> None:
        self._storage = storage
        self.db_engine = db_engine
        self._ready_lock = asyncio.Lock()
        self._one_connection = _one_connection(db_engine)

    def __deepcopy__(self, memo: dict[int, Any]) -> AsyncSqlStorage:
        clone = copy.copy(self)
        clone._storage = copy.deepcopy(self._storage, memo)
        clone._ready_lock = asyncio.Lock()
        return clone

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._storage.spec.qualified_name!r}, mode={self.mode!r})"

    # -- what the sync storage has as attributes -------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._storage.mode

    @mode.setter
    def mode(self, value: Mode | None) -> None:
        self._storage.mode = value

    @property
    def table_name(self) -> str:
        return self._storage.table_name

    @property
    def schema(self) -> str | None:
        return self._storage.schema

    @property
    def on_conflict(self) -> OnConflict:
        return self._storage.on_conflict

    @property
    def session_type(self) -> type[Any]:
        return self._storage.session_type

    # -- Storage's methods, as coroutines --------------------------------------------------------

    async def create(self) -> None:
        await self._ready()

    async def table_exists(self) -> bool:
        return await self._spawn(self._storage.table_exists)

    async def upgrade_schema(self) -> None:
        async with self._ready_lock:
            await self._spawn(self._storage.upgrade_schema)

    async def drop(self) -> None:
        async with self._ready_lock:
            await self._spawn(self._storage.drop)

    async def read(
        self, session_id: str, user_id: str | None = None, *, runs_limit: int | None = None
    ) -> AnySession | None:
        return await self._call(self._storage.read, session_id, user_id, runs_limit=runs_limit)

    async def get_all_session_ids(
        self, user_id: str | None = None, entity_id: str | None = None
    ) -> list[str]:
        return await self._call(self._storage.get_all_session_ids, user_id, entity_id)

    async def get_all_sessions(
        self, user_id: str | None = None, entity_id: str | None = None
    ) -> list[AnySession]:
        return await self._call(self._storage.get_all_sessions, user_id, entity_id)

    async def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> list[AnySession]:
        return await self._call(self._storage.get_recent_sessions, user_id, entity_id, limit)

    async def list_sessions(
        self,
        *,
        user_id: str | None = None,
        entity_id: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SessionPage:
        return await self._call(
            self._storage.list_sessions,
            user_id=user_id,
            entity_id=entity_id,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )

    async def upsert(self, session: Any) -> AnySession:
        return await self._call(self._storage.upsert, session)

    async def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        await self._call(self._storage.delete_session, session_id, user_id)

    # -- internals -------------------------------------------------------------------------------

    async def _call(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`method` of the sync storage, once the table is ready."""
        await self._ready()
        return await self._spawn(method, *args, **kwargs)

    async def _spawn(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`method` of the sync storage run in SQLAlchemy's greenlet. On an engine of one connection
        (an in-memory SQLite database) calls take turns: tasks sharing it would interleave their
        transactions on it."""
        call = functools.partial(method, *args, **kwargs)
        if self._one_connection is None:
            return await greenlet_spawn(call)
        async with self._one_connection:
            return await greenlet_spawn(call)

    async def _ready(self) -> None:
        """The current mode's table checked (created, upgraded) once, by one task at a time:
        tasks share the event loop's thread, so the sync storage's thread lock cannot order them."""
        if self._storage._is_ready():
            return
        async with self._ready_lock:
            await self._spawn(self._storage.create)


class _AsyncServerStorage(AsyncSqlStorage):
    """The async face of a server's storage (`_sync_class`), with its constructor's arguments."""

    _sync_class: ClassVar[type[PostgresStorage] | type[MySQLStorage]]
    _extra: ClassVar[str]
    """The extra that installs the async driver `async_engine_from_url` picks."""

    def __init__(  # the sync constructor's arguments, in its order
        self,
        table_name: str,
        schema: str | None = "ai",
        db_url: str | None = None,
        db_engine: AsyncEngine | None = None,
        **options: Unpack[StorageOptions],
    ) -> None:
        if db_engine is None:
            if db_url is None:
                raise InvalidInputError(f"{type(self).__name__} needs db_url or db_engine")
            db_engine = async_engine_from_url(self._engine_url(db_url), extra=self._extra)
        sync = self._sync_class(table_name, schema, db_engine=_sync_engine(db_engine), **options)
        self._wrap(sync, db_engine)
        self.db_url = db_url

    @staticmethod
    def _engine_url(db_url: str) -> str | URL:
        return db_url


class AsyncPostgresStorage(_AsyncServerStorage):
    """`PostgresStorage` with coroutine methods, on psycopg's async mode.

    Give `db_engine` (an AsyncEngine) or `db_url`; a `postgresql://` or `postgresql+psycopg://`
    URL is opened with psycopg's async driver.
    """

    _sync_class = PostgresStorage
    _extra = "postgres"


class AsyncMySQLStorage(_AsyncServerStorage):
    """`MySQLStorage` with coroutine methods, on aiomysql (MySQL and MariaDB).

    Give `db_engine` (an AsyncEngine) or `db_url`; a `mysql://` or `mysql+pymysql://` URL is
    opened with aiomysql, as utf8mb4 unless it names a charset.
    """

    _sync_class = MySQLStorage
    _extra = "asyncio"

    @staticmethod
    def _engine_url(db_url: str) -> str | URL:
        return with_utf8mb4(check_storage_kind(parse_url(db_url), "AsyncMySQLStorage"))


class AsyncSqliteStorage(AsyncSqlStorage):
    """`SqliteStorage` with coroutine methods, on aiosqlite.

    The database is, in this order: `db_engine` (an AsyncEngine, used as given), `db_url`
    (`sqlite://` URLs are opened with aiosqlite), `db_file`, else a private in-memory database.
    Files are set up for several writers as `SqliteStorage` does (WAL, busy timeout).
    """

    def __init__(
        self,
        table_name: str,
        db_url: str | None = None,
        db_file: str | None = None,
        db_engine: AsyncEngine | None = None,
        **options: Unpack[StorageOptions],
    ) -> None:
        if db_engine is None:
            url = sqlite.database_url(db_url, db_file)
            # no pre-ping, as for SqliteStorage: a file has no server that could close a connection
            if url is None:
                db_engine = async_engine_from_url(
                    sqlite.MEMORY_URL, extra="asyncio", pool_pre_ping=False, **sqlite.memory_engine_options()
                )
            else:
                db_engine = async_engine_from_url(
                    check_storage_kind(parse_url(url), "AsyncSqliteStorage"),
                    extra="asyncio",
                    pool_pre_ping=False,
                )
                sqlite.configured(db_engine.sync_engine)
        sync = SqliteStorage(table_name, db_engine=_sync_engine(db_engine), **options)
        self._wrap(sync, db_engine)
        self.db_url = db_url
        self.db_file = db_file


_CONNECTION_LOCKS: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _one_connection(db_engine: AsyncEngine) -> asyncio.Lock | None:
    """The lock storages on `db_engine` take turns with, where its pool is one shared connection."""
    if not isinstance(db_engine.sync_engine.pool, StaticPool):
        return None
    return _CONNECTION_LOCKS.setdefault(db_engine, asyncio.Lock())


def _sync_engine(db_engine: Any) -> Engine:
    """The sync face of an AsyncEngine, which the sync storage drives inside the greenlet."""
    if not HAVE_GREENLET:
        raise MissingDependencyError("greenlet", "asyncio")
    from sqlalchemy.ext.asyncio import AsyncEngine

    if not isinstance(db_engine, AsyncEngine):
        raise InvalidInputError(
            f"an async storage needs an AsyncEngine (sqlalchemy.ext.asyncio.create_async_engine); "
            f"got {type(db_engine).__name__}"
        )
    return db_engine.sync_engine
