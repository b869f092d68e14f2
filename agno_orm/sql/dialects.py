"""The few things that differ between SQL dialects, and nothing else.

Everything else — the models, the queries, the revisions — is shared. A dialect contributes:
its one-statement upsert, how a schema upgrade is made exclusive across processes, how a
named schema is created, how a write transaction starts, which driver errors mean the
connection is gone, and which mean the database rolled the transaction back (so it may be run again).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, func, inspect, or_, text
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.schema import CreateSchema
from sqlalchemy.sql.dml import Insert

from agno_orm.errors import StorageError

__all__ = ["DialectHooks", "hooks_for"]

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
        `owner` column holds another non-NULL value than the new one is left as it is (RETURNING
        then gives no row; only where `upsert_returns_row`); a NULL new value keeps the stored one.

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


class PostgresHooks(_OnConflictHooks):
    name = "postgresql"
    autocommit_one_statement = True
    _insert = staticmethod(postgresql.insert)

    def is_transient_error(self, exc: DBAPIError) -> bool:
        # serialization_failure, deadlock_detected
        return getattr(exc.orig, "sqlstate", None) in ("40001", "40P01")

    @contextmanager
    def upgrade_lock(self, connection: Connection) -> Iterator[None]:
        # A transaction-scoped advisory lock: released by the commit or rollback that ends the upgrade.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key()})
        yield


# Server error codes of the MySQL family that mean the server is unreachable, refused the login
# or dropped the connection. Every other server error is raised as OperationalError by pymysql
# too (a deadlock, a lock wait timeout), so the exception class cannot tell them apart.
_MYSQL_CONNECTION_ERRORS = frozenset(
    {1040, 1042, 1043, 1044, 1045, 1053, 1129, 1130, 1152, 1927, 2002, 2003, 2005, 2006, 2013, 2026, 2055}
)
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
        if owner is not None:  # ON DUPLICATE KEY UPDATE has no condition; RETURNING is missing too
            raise NotImplementedError("the MySQL family checks the owner with a SELECT ... FOR UPDATE")
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
        return stmt.on_duplicate_key_update(list(updates.items()))  # a dict would be put in column order

    def is_transient_error(self, exc: DBAPIError) -> bool:
        # deadlock (1213), lock wait timeout (1205): the transaction ends rolled back either way here
        return _mysql_error_code(exc) in (1205, 1213)

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
