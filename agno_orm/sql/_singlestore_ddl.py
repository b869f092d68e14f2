"""What SingleStore needs in our DDL, and the Alembic implementation for its dialect.

SingleStore distributes a table's rows over partitions by a shard key, and refuses what it cannot
enforce across partitions: a unique key must contain the shard key, a shard key column cannot be
updated, and a columnstore table (the default kind) takes hash indexes only. Our session tables
therefore carry, for the `singlestoredb` dialect of the `sqlalchemy-singlestoredb` package:

- `SHARD KEY (session_id)`: every point read, upsert and delete goes to one partition; the only
  unique key, the primary key (session_id), contains it;
- `SORT KEY (created_at)`: the listing order, so listings read segments in created_at order;
- `USING HASH` on every secondary index (user_id and the mode's entity ids), which the listing
  filters use;
- no FOREIGN KEY, which SingleStore does not support (the runs table's is left out).

These are dialect options of the `singlestoredb` dialect only, present when that package is
installed (without it no `singlestoredb://` engine can exist, and SQLAlchemy would warn about
options for a dialect it cannot load). Other dialects ignore them.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

from alembic.ddl import mysql as alembic_mysql
from alembic.ddl.mysql import MySQLImpl
from sqlalchemy import Column, ForeignKeyConstraint, MetaData, String, Table, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler

__all__ = [
    "MYSQL_FAMILY_COLLATION",
    "SingleStoreImpl",
    "index_options",
    "is_singlestore_server",
    "table_options",
]

SINGLESTORE_DIALECT = "singlestoredb"
SHARD_KEY = ("session_id",)
SORT_KEY = ("created_at",)
_SINGLESTORE_ONLY_TABLE_OPTIONS = ("shard_key", "sort_key")

# Binary collation: ids match exactly, as on PostgreSQL and SQLite (a _ci collation would make
# "S1" and "s1" one session), and utf8mb4 holds every character, emoji included, whatever the
# server's or the database's default character set.
MYSQL_FAMILY_COLLATION = "utf8mb4_bin"
_MYSQL_FAMILY_TABLE_OPTIONS = {"charset": "utf8mb4", "collate": MYSQL_FAMILY_COLLATION}


@functools.cache
def singlestore_dialect_installed() -> bool:
    return importlib.util.find_spec("sqlalchemy_singlestoredb") is not None


def table_options() -> dict[str, Any]:
    """Keyword arguments of every session table: character set and SingleStore's keys."""
    options: dict[str, Any] = {}
    # `mysql_` serves mysql:// URLs (also to MariaDB), `mariadb_` serves mariadb:// URLs.
    for dialect in ("mysql", "mariadb"):
        options.update({f"{dialect}_{key}": value for key, value in _MYSQL_FAMILY_TABLE_OPTIONS.items()})
    if singlestore_dialect_installed():
        from sqlalchemy_singlestoredb import (  # type: ignore[import-untyped]  # no type information
            ShardKey,
            SortKey,
        )

        # SingleStore documents the table-level COLLATE clause (the collation implies the charset).
        options[f"{SINGLESTORE_DIALECT}_collate"] = _MYSQL_FAMILY_TABLE_OPTIONS["collate"]
        options[f"{SINGLESTORE_DIALECT}_shard_key"] = ShardKey(*SHARD_KEY)
        options[f"{SINGLESTORE_DIALECT}_sort_key"] = SortKey(*SORT_KEY)
    return options


def index_options() -> dict[str, Any]:
    """Keyword arguments of every secondary index: hash indexes on SingleStore (columnstore has no other)."""
    return {f"{SINGLESTORE_DIALECT}_using": "hash"} if singlestore_dialect_installed() else {}


@compiles(ForeignKeyConstraint, SINGLESTORE_DIALECT)
def _no_foreign_keys(constraint: ForeignKeyConstraint, compiler: DDLCompiler, **kw: Any) -> None:
    """SingleStore has no foreign keys: leave them out (a session's runs are deleted with it explicitly)."""
    return None


# Alembic compiles its MySQL column alterations for the dialect names it knows; SingleStore speaks
# the same ALTER TABLE ... MODIFY/CHANGE (used when a table agno made is adopted, see revision 0001).
for _element, _compile in (
    (alembic_mysql.MySQLModifyColumn, alembic_mysql._mysql_modify_column),
    (alembic_mysql.MySQLChangeColumn, alembic_mysql._mysql_change_column),
    (alembic_mysql.MySQLAlterDefault, alembic_mysql._mysql_alter_default),
):
    compiles(_element, SINGLESTORE_DIALECT)(_compile)


def is_singlestore_server(impl: Any) -> bool:
    """Whether Alembic's implementation `impl` talks to a real SingleStore server (or writes SQL
    offline for one), as opposed to MariaDB standing in for it, or another database."""
    return isinstance(impl, SingleStoreImpl) and impl._server_is_singlestore()


class SingleStoreImpl(MySQLImpl):
    """Alembic's MySQL implementation for the `singlestoredb` dialect, which Alembic does not know.

    Registered by being defined (Alembic keys implementations by `__dialect__`). Two differences:
    the version table has no primary key, and SingleStore-only clauses are left out when the
    dialect talks to a server that is not SingleStore (MariaDB stands in for it in our tests).
    """

    __dialect__ = SINGLESTORE_DIALECT

    def version_table_impl(
        self,
        *,
        version_table: str,
        version_table_schema: str | None,
        version_table_pk: bool,
        **kw: Any,
    ) -> Table:
        # On SingleStore a primary key is also the shard key, and a shard key column cannot be
        # updated; Alembic updates version_num in place at every step. Without a key the table is
        # keyless-sharded and version_num an ordinary column.
        return Table(
            version_table,
            MetaData(),
            Column("version_num", String(32), nullable=False),
            schema=version_table_schema,
        )

    def create_table(self, table: Table, **kw: Any) -> None:
        if not self._server_is_singlestore():
            table = table.to_metadata(MetaData())  # a copy: the caller's table keeps its options
            options = table.dialect_options[SINGLESTORE_DIALECT]
            for name in _SINGLESTORE_ONLY_TABLE_OPTIONS:
                options.pop(name, None)
        super().create_table(table, **kw)

    def _server_is_singlestore(self) -> bool:
        """True on SingleStore, and when writing SQL offline (the dialect's purpose)."""
        if self.as_sql or self.connection is None:
            return True
        cached: bool | None = getattr(self, "_is_singlestore", None)
        if cached is None:
            variable = text("SHOW VARIABLES LIKE 'memsql_version'")
            cached = self.connection.execute(variable).first() is not None
            self._is_singlestore = cached
        return cached
