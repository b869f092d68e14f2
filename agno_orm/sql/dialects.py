"""The few things that differ between SQL dialects, and nothing else.

Everything else — the models, the queries, the revisions — is shared. A dialect contributes:
its one-statement upsert, how a schema upgrade is made exclusive across processes, how a
named schema is created, and which driver errors mean the connection is gone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.schema import CreateSchema
from sqlalchemy.sql.dml import Insert

__all__ = ["DialectHooks", "hooks_for"]

_UPGRADE_LOCK_NAME = "agno_orm_schema_upgrade"

Rows = Mapping[str, Any] | Sequence[Mapping[str, Any]]
"""One row's values, or several rows' for a multi-row INSERT."""


class DialectHooks:
    """Behaviour shared by the dialects; subclasses override what their dialect does differently."""

    name = "default"
    upsert_returns_row = True
    """Whether the upsert statement can return the stored row (else it is selected afterwards)."""

    def upsert(self, table: Table, values: Rows, keep_on_update: frozenset[str]) -> Insert:
        """One INSERT of one row or many, replacing rows with the same key but for `keep_on_update`."""
        raise NotImplementedError(f"no upsert for dialect {self.name}")

    @contextmanager
    def upgrade_lock(self, connection: Connection) -> Iterator[None]:
        """Hold a database-wide lock for the duration of a schema upgrade."""
        yield

    def ensure_schema(self, connection: Connection, schema: str | None) -> None:
        if schema is not None:
            connection.execute(CreateSchema(schema, if_not_exists=True))

    def is_connection_error(self, exc: DBAPIError) -> bool:
        return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))


class SqliteHooks(DialectHooks):
    name = "sqlite"

    def upsert(self, table: Table, values: Rows, keep_on_update: frozenset[str]) -> Insert:
        stmt = sqlite.insert(table).values(values)
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keep_on_update}
        return stmt.on_conflict_do_update(index_elements=list(table.primary_key.columns), set_=updates)

    @contextmanager
    def upgrade_lock(self, connection: Connection) -> Iterator[None]:
        # pysqlite opens no transaction before DDL, so two processes could both create the table.
        # BEGIN IMMEDIATE takes the database's write lock now and makes the DDL atomic.
        dbapi_connection: Any = connection.connection.dbapi_connection
        if not getattr(dbapi_connection, "in_transaction", True):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield

    def ensure_schema(self, connection: Connection, schema: str | None) -> None:
        """SQLite has no schemas to create (an attached database must already be attached)."""

    def is_connection_error(self, exc: DBAPIError) -> bool:
        return exc.connection_invalidated or "unable to open database" in str(exc.orig)


class PostgresHooks(DialectHooks):
    name = "postgresql"

    def upsert(self, table: Table, values: Rows, keep_on_update: frozenset[str]) -> Insert:
        stmt = postgresql.insert(table).values(values)
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keep_on_update}
        return stmt.on_conflict_do_update(index_elements=list(table.primary_key.columns), set_=updates)

    @contextmanager
    def upgrade_lock(self, connection: Connection) -> Iterator[None]:
        # A transaction-scoped advisory lock: released by the commit or rollback that ends the upgrade.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key()})
        yield


class MySQLHooks(DialectHooks):
    name = "mysql"
    upsert_returns_row = False

    def upsert(self, table: Table, values: Rows, keep_on_update: frozenset[str]) -> Insert:
        stmt = mysql.insert(table).values(values)
        updates = {c.name: stmt.inserted[c.name] for c in table.columns if c.name not in keep_on_update}
        return stmt.on_duplicate_key_update(updates)

    @contextmanager
    def upgrade_lock(self, connection: Connection) -> Iterator[None]:
        # MySQL commits DDL implicitly, so the lock is a session-level named lock, released explicitly.
        acquired = connection.execute(
            text("SELECT GET_LOCK(:name, :timeout)"), {"name": _UPGRADE_LOCK_NAME, "timeout": 300}
        ).scalar()
        if acquired != 1:
            raise TimeoutError("timed out after 300 s waiting for another process's schema upgrade")
        try:
            yield
        finally:
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": _UPGRADE_LOCK_NAME})


def _lock_key() -> int:
    digest = hashlib.blake2b(_UPGRADE_LOCK_NAME.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_HOOKS: dict[str, DialectHooks] = {
    hooks.name: hooks for hooks in (SqliteHooks(), PostgresHooks(), MySQLHooks())
}
_HOOKS["mariadb"] = _HOOKS["mysql"]
_HOOKS["singlestoredb"] = _HOOKS["mysql"]


def hooks_for(dialect_name: str) -> DialectHooks:
    """The hooks of a SQLAlchemy dialect name; the generic defaults for a dialect we do not know."""
    return _HOOKS.get(dialect_name, DialectHooks())
