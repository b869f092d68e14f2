"""The few things that differ between SQL dialects, and nothing else.

Everything else — the models, the queries, the revisions — is shared. A dialect contributes:
its one-statement upsert, how a schema upgrade is made exclusive across processes, how a
named schema is created, how a write transaction starts, which driver errors mean the
connection is gone, which mean the database rolled the transaction back (so it may be run again),
and which name a cause of their own (a timeout, a value over a limit), by SQLSTATE or error code:
a driver's exception classes do not tell these apart.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, bindparam, func, inspect, or_, text
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.schema import CreateSchema
from sqlalchemy.sql.dml import Insert

from agno_orm.errors import InvalidSessionError, PayloadTooLargeError, StorageError, StorageTimeoutError

__all__ = ["DialectHooks", "Explained", "failed_statement", "hooks_for"]

_UPGRADE_LOCK_NAME = "agno_orm_schema_upgrade"
_UPGRADE_LOCK_TIMEOUT = 300  # seconds


class DialectHooks:
    """Behaviour shared by the dialects; subclasses override what their dialect does differently."""

    name = "default"
    upsert_returns_row = True
    """Whether the upsert statement can return the stored row (else it is selected afterwards)."""

    def upsert(
        self,
        table: Table,
        keep_on_update: frozenset[str],
        *,
        bump: str | None = None,
        owner: str | None = None,
        shift: tuple[str, str] | None = None,
    ) -> Insert:
        """One INSERT, executed with one row's values or many rows', replacing rows with the same
        key but for `keep_on_update`; the column `bump` of a replaced row becomes its stored value
        plus one instead; with `shift=(prior, token)` the column `prior` of a replaced row takes the
        value its column `token` had (and `token` the new value). A row whose
        `owner` column holds another non-NULL value than the new one is left as it is where
        `upsert_returns_row` (RETURNING then gives no row), else it keeps that owner and the caller
        checks the row (the MySQL family); a NULL new value keeps the stored one.

        Built once per table and arguments: the statement holds no values, so SQLAlchemy compiles
        it once and each upsert only binds its row.
        """
        return self._cached_upsert(table, keep_on_update, bump, owner, shift)

    @functools.lru_cache(maxsize=256)  # noqa: B019  # the hooks are module-level singletons
    def _cached_upsert(
        self,
        table: Table,
        keep_on_update: frozenset[str],
        bump: str | None,
        owner: str | None,
        shift: tuple[str, str] | None,
    ) -> Insert:
        return self._build_upsert(table, keep_on_update, bump, owner, shift)

    def _build_upsert(
        self,
        table: Table,
        keep_on_update: frozenset[str],
        bump: str | None,
        owner: str | None,
        shift: tuple[str, str] | None,
    ) -> Insert:
        """The statement of `upsert`, built (once per arguments: `upsert` caches it)."""
        raise NotImplementedError(f"no upsert for dialect {self.name}")

    def begin_write(self, connection: Connection) -> None:
        """Start the transaction of a write on `connection` (called before its first statement)."""

    def is_transient_error(self, exc: DBAPIError) -> bool:
        """Whether the database rolled the transaction back on its own (deadlock, serialization
        failure, busy): nothing of it remains and it may simply be run again."""
        return False

    autocommit_one_statement = False
    """Whether a read of one statement runs without BEGIN and COMMIT (AUTOCOMMIT): where that saves
    round trips and setting it costs none (psycopg sets it in the client; MySQL drivers send a SET)."""

    def equals(self, column: Any, name: str) -> Any:
        """The condition that a text column holds exactly the value bound as `name` (see `bind`)."""
        return column == bindparam(name)

    def bind(self, name: str, value: str) -> dict[str, Any]:
        """The parameters of `equals(column, name)` for `value`."""
        return {name: value}

    @contextmanager
    def upgrade_lock(self, connection: Connection) -> Iterator[None]:
        """Hold a database-wide lock for the duration of a schema upgrade."""
        yield

    def ensure_schema(self, connection: Connection, schema: str | None) -> None:
        if schema is not None:
            connection.execute(CreateSchema(schema, if_not_exists=True))

    def is_connection_error(self, exc: DBAPIError) -> bool:
        return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))

    def explained(self, exc: DBAPIError) -> Explained | None:
        """Our error class for a driver error whose cause the database names (by SQLSTATE or error
        code: a timeout, a value over one of its limits), and what it means; None for the rest
        (a lost connection, a rolled-back transaction, or a plain StorageError)."""
        return None

    def oversized(self, exc: DBAPIError, engine: Engine) -> str | None:
        """For a lost connection (`is_connection_error`): why the statement that failed was too
        large for the server, where the server closed the connection for that; else None."""
        return None


Explained = tuple[type[StorageError], str]
"""An error class and what the driver error means, for the message (`DialectHooks.explained`)."""


def failed_statement(exc: DBAPIError) -> DBAPIError:
    """The error that made a transaction fail: `exc`, or, where `exc` is the rollback after a failed
    statement failing in turn (a server that refused a statement may drop the connection too), the
    failed statement's error, which says why."""
    context = exc.__context__ if exc.statement is None else None
    while context is not None:  # the rollback's error, the driver's, its socket's, then the statement's
        if isinstance(context, DBAPIError) and context.statement is not None:
            return context
        context = context.__context__
    return exc


class _OnConflictHooks(DialectHooks):
    """The upsert of SQLite and PostgreSQL, the same clause in both: `INSERT ... ON CONFLICT
    (primary key) DO UPDATE [WHERE owner matches]` (see `DialectHooks.upsert`); only the dialect's
    insert construct differs (`_insert`)."""

    @staticmethod
    def _insert(table: Table) -> sqlite.Insert | postgresql.Insert:
        raise NotImplementedError

    def _build_upsert(
        self,
        table: Table,
        keep_on_update: frozenset[str],
        bump: str | None,
        owner: str | None,
        shift: tuple[str, str] | None,
    ) -> Insert:
        stmt = self._insert(table)
        updates: dict[str, Any] = {
            c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keep_on_update
        }
        if bump is not None:
            updates[bump] = table.c[bump] + 1
        if shift is not None:
            prior, token = shift
            updates[prior] = table.c[token]  # SET expressions read the row as it was
        where = None
        if owner is not None:
            stored, new = table.c[owner], stmt.excluded[owner]
            updates[owner] = func.coalesce(new, stored)
            where = or_(stored.is_(None), new.is_(None), stored == new)
        return stmt.on_conflict_do_update(
            index_elements=list(table.primary_key.columns), set_=updates, where=where
        )


class SqliteHooks(_OnConflictHooks):
    name = "sqlite"
    _insert = staticmethod(sqlite.insert)

    @contextmanager
    def upgrade_lock(self, connection: Connection) -> Iterator[None]:
        # pysqlite opens no transaction before DDL, so two processes could both create the table.
        # BEGIN IMMEDIATE takes the database's write lock now and makes the DDL atomic.
        self.begin_write(connection)
        yield

    def begin_write(self, connection: Connection) -> None:
        """BEGIN IMMEDIATE: take the file's write lock first, waiting up to the busy timeout. pysqlite
        would begin on the first INSERT, and a transaction that read before it wrote cannot wait
        for the lock (SQLite refuses at once, to avoid a deadlock)."""
        # the driver's own connection: sqlite3's, or aiosqlite's (whose SQLAlchemy adapter lacks the flag)
        driver_connection: Any = connection.connection.driver_connection
        if not getattr(driver_connection, "in_transaction", True):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def is_transient_error(self, exc: DBAPIError) -> bool:
        # SQLITE_BUSY (5) and SQLITE_LOCKED (6), by code where Python reports it (3.11+)
        code = getattr(exc.orig, "sqlite_errorcode", None)
        return code in (5, 6) or "database is locked" in str(exc.orig)

    def ensure_schema(self, connection: Connection, schema: str | None) -> None:
        """SQLite has no schemas to create (an attached database must already be attached)."""

    def is_connection_error(self, exc: DBAPIError) -> bool:
        return exc.connection_invalidated or "unable to open database" in str(exc.orig)

    def explained(self, exc: DBAPIError) -> Explained | None:
        if getattr(exc.orig, "sqlite_errorcode", None) == 18:  # SQLITE_TOOBIG
            return PayloadTooLargeError, "over SQLite's largest string or blob (SQLITE_MAX_LENGTH)"
        return None


class PostgresHooks(_OnConflictHooks):
    name = "postgresql"
    autocommit_one_statement = True
    _insert = staticmethod(postgresql.insert)

    def is_transient_error(self, exc: DBAPIError) -> bool:
        # serialization_failure, deadlock_detected
        return _sqlstate(exc) in ("40001", "40P01")

    def is_connection_error(self, exc: DBAPIError) -> bool:
        """By SQLSTATE, not by class: psycopg raises OperationalError for a lock or statement timeout
        and a value over a limit too. Without a SQLSTATE the client itself failed (no connection)."""
        sqlstate = _sqlstate(exc)
        if sqlstate is None:
            return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
        return sqlstate.startswith(("08", "28")) or sqlstate in _POSTGRES_CONNECTION_STATES

    def explained(self, exc: DBAPIError) -> Explained | None:
        return _POSTGRES_EXPLAINED.get(_sqlstate(exc) or "")

    @contextmanager
    def upgrade_lock(self, connection: Connection) -> Iterator[None]:
        # A transaction-scoped advisory lock: released by the commit or rollback that ends the upgrade.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key()})
        yield


def _sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE of a PostgreSQL driver error (psycopg 3's `sqlstate`, psycopg2's `pgcode`)."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state if isinstance(state, str) else None


# Beyond classes 08 (connection exception) and 28 (login refused, as MySQL's 1045): the server shut
# down or is starting (57P01-57P03), refused the connection (53300 too many), or ended it for being
# idle (25P03 in a transaction, 57P05).
_POSTGRES_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03", "57P05", "53300", "25P03"})
_POSTGRES_EXPLAINED: dict[str, Explained] = {
    "55P03": (StorageTimeoutError, "timed out waiting for a lock (lock_timeout)"),
    "57014": (StorageTimeoutError, "timed out (statement_timeout), or cancelled"),
    # an index entry (a very long id) or a JSONB value over PostgreSQL's size limits
    "54000": (PayloadTooLargeError, "over one of PostgreSQL's size limits; nothing was written"),
}


# Server error codes of the MySQL family that mean the server is unreachable, refused the login
# or dropped the connection. Every other server error is raised as OperationalError by pymysql
# too (a deadlock, a lock wait timeout), so the exception class cannot tell them apart.
_MYSQL_CONNECTION_ERRORS = frozenset(
    {1040, 1042, 1043, 1044, 1045, 1053, 1129, 1130, 1152, 1927, 2002, 2003, 2005, 2006, 2013, 2026, 2055}
)
_MYSQL_EXPLAINED: dict[int, Explained] = {
    1205: (StorageTimeoutError, "timed out waiting for a lock (innodb_lock_wait_timeout)"),
    1969: (StorageTimeoutError, "timed out (max_statement_time)"),  # MariaDB
    3024: (StorageTimeoutError, "timed out (max_execution_time)"),  # MySQL
    1153: (PayloadTooLargeError, "over the server's max_allowed_packet; nothing was written"),
    1301: (PayloadTooLargeError, "over the server's max_allowed_packet; nothing was written"),
    # MariaDB's JSON columns are LONGTEXT with a json_valid CHECK, which refuses nesting 32 deep;
    # MySQL's JSON type refuses 101 (3157). Nothing else we write can fail those checks.
    4025: (
        InvalidSessionError,
        "MariaDB stores JSON nested at most 31 levels deep in each field and each run (its json_valid "
        "check refused the session); nothing was written",
    ),
    3157: (
        InvalidSessionError,
        "MySQL stores JSON nested at most 100 levels deep in each field and each run; nothing was written",
    ),
}
_SMALLEST_PACKET_LIMIT = 1024 * 1024
"""Below this, a lost connection is not taken for a statement over max_allowed_packet (MySQL's
default is 64 MiB, MariaDB's 16 MiB; 1 MiB was the default of old servers)."""


def _largest_row(params: Any) -> int:
    """The bytes of text in the largest row of a failed statement's parameters (one row, or the
    rows of an executemany), which the driver sends in one packet."""
    rows = (
        params
        if isinstance(params, (list, tuple)) and params and isinstance(params[0], (dict, list, tuple))
        else [params]
    )
    largest = 0
    for row in rows:
        values = row.values() if isinstance(row, dict) else row if isinstance(row, (list, tuple)) else ()
        largest = max(
            largest,
            sum(len(v.encode() if isinstance(v, str) else v) for v in values if isinstance(v, (str, bytes))),
        )
    return largest


# GET_LOCK missing or refused: no such function (1305), not supported (1235), or a feature
# SingleStore's distributed engine does not offer (1706).
_MYSQL_UNSUPPORTED_FUNCTION_ERRORS = frozenset({1235, 1305, 1706})


def _mysql_error_code(exc: DBAPIError) -> int | None:
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code if isinstance(code, int) else None


class MySQLHooks(DialectHooks):
    name = "mysql"
    upsert_returns_row = False

    def _build_upsert(
        self,
        table: Table,
        keep_on_update: frozenset[str],
        bump: str | None,
        owner: str | None,
        shift: tuple[str, str] | None,
    ) -> Insert:
        stmt = mysql.insert(table)
        # MySQL assigns left to right and a later assignment sees an earlier one's new value:
        # `shift`'s prior goes first, so it reads the stored token.
        updates: dict[str, Any] = {}
        if shift is not None:
            prior, token = shift
            updates[prior] = table.c[token]
        updates.update(
            {
                c.name: stmt.inserted[c.name]
                for c in table.columns
                if c.name not in {*keep_on_update, *updates}
            }
        )
        if bump is not None:
            updates[bump] = table.c[bump] + 1
        if owner is not None:
            # ON DUPLICATE KEY UPDATE has no condition (nor RETURNING): a stored owner is kept, and
            # the caller checks the row written (`SqlStorage._write_over`)
            updates[owner] = func.coalesce(table.c[owner], stmt.inserted[owner])
        return stmt.on_duplicate_key_update(list(updates.items()))  # a dict would be put in column order

    def is_transient_error(self, exc: DBAPIError) -> bool:
        # deadlock (1213): the server rolled the transaction back (a lock wait timeout is explained)
        return _mysql_error_code(exc) == 1213

    def explained(self, exc: DBAPIError) -> Explained | None:
        return _MYSQL_EXPLAINED.get(_mysql_error_code(exc) or 0)

    def oversized(self, exc: DBAPIError, engine: Engine) -> str | None:
        """A statement over `max_allowed_packet` makes the server close the connection (the client
        sees 2006 or 2013, seldom 1153): where the failed statement's values were that large, asked
        of the server on a new connection, it was that and not a lost server."""
        size = _largest_row(exc.params)
        if size < _SMALLEST_PACKET_LIMIT:
            return None
        try:
            with engine.connect() as connection:
                limit = connection.execute(text("SELECT @@max_allowed_packet")).scalar()
        except DBAPIError:
            return None  # the server is gone indeed
        if not isinstance(limit, int) or size < limit:
            return None
        return f"a statement of {size} bytes is over the server's max_allowed_packet ({limit} bytes)"

    def equals(self, column: Any, name: str) -> Any:
        """`=` and `LIKE` the same text: `=` serves the index, but ignores trailing spaces under a
        PAD SPACE collation (MariaDB's and MySQL 5's utf8mb4_bin, so 'alice ' = 'alice'), which
        LIKE, comparing character by character, does not."""
        return and_(column == bindparam(name), column.like(bindparam(f"{name}_pattern"), escape="\\"))

    def bind(self, name: str, value: str) -> dict[str, Any]:
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return {name: value, f"{name}_pattern": escaped}

    @contextmanager
    def upgrade_lock(self, connection: Connection) -> Iterator[None]:
        # MySQL commits DDL implicitly, so the lock is a session-level named lock, released explicitly.
        locked = self._get_lock(connection)
        try:
            yield
        finally:
            if locked:
                connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": _UPGRADE_LOCK_NAME})

    def _get_lock(self, connection: Connection) -> bool:
        """Take the named lock, waiting for another process's upgrade; True once it is held."""
        acquired = connection.execute(
            text("SELECT GET_LOCK(:name, :timeout)"),
            {"name": _UPGRADE_LOCK_NAME, "timeout": _UPGRADE_LOCK_TIMEOUT},
        ).scalar()
        if acquired != 1:
            raise StorageError(
                f"timed out after {_UPGRADE_LOCK_TIMEOUT} s waiting for another process's schema upgrade"
            )
        return True

    def ensure_schema(self, connection: Connection, schema: str | None) -> None:
        """Create the database `schema` names (a schema is a database here) only if it is missing.

        Looking first means a user without the CREATE privilege can use a database made for them.
        """
        if schema is not None and not inspect(connection).has_schema(schema):
            super().ensure_schema(connection, schema)

    def is_connection_error(self, exc: DBAPIError) -> bool:
        return (
            exc.connection_invalidated
            or isinstance(exc, InterfaceError)
            or _mysql_error_code(exc) in _MYSQL_CONNECTION_ERRORS
        )


class SingleStoreHooks(MySQLHooks):
    """MySQL's hooks; the upsert too: SingleStore reports a MySQL 5.x server version, for which
    SQLAlchemy writes `ON DUPLICATE KEY UPDATE col = VALUES(col)`, the form SingleStore documents."""

    name = "singlestoredb"

    def begin_write(self, connection: Connection) -> None:
        """START TRANSACTION where the connection autocommits: the `singlestoredb` client does by
        default, so without it every statement of a write would be committed on its own."""
        dbapi_connection: Any = connection.connection.dbapi_connection
        get_autocommit = getattr(dbapi_connection, "get_autocommit", None)
        if callable(get_autocommit) and get_autocommit():
            connection.exec_driver_sql("START TRANSACTION")

    def _get_lock(self, connection: Connection) -> bool:
        """GET_LOCK where the server has it; False (upgrades not serialized) where it refuses it.

        Whether SingleStore offers GET_LOCK could not be verified (no server was available), and a
        refusal must not make every first use fail. Without the lock, two processes creating the
        same table at the same moment can make one of them raise a StorageError; a retry works.
        """
        try:
            return super()._get_lock(connection)
        except DBAPIError as exc:
            if _mysql_error_code(exc) not in _MYSQL_UNSUPPORTED_FUNCTION_ERRORS:
                raise
            return False


def _lock_key() -> int:
    digest = hashlib.blake2b(_UPGRADE_LOCK_NAME.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_HOOKS: dict[str, DialectHooks] = {
    hooks.name: hooks for hooks in (SqliteHooks(), PostgresHooks(), MySQLHooks(), SingleStoreHooks())
}
_HOOKS["mariadb"] = _HOOKS["mysql"]


def hooks_for(dialect_name: str) -> DialectHooks:
    """The hooks of a SQLAlchemy dialect name; the generic defaults for a dialect we do not know."""
    return _HOOKS.get(dialect_name, DialectHooks())
