"""Schema operations for the revisions in alembic/versions, each skipped where its change is made.

MySQL's DDL is not transactional (each statement commits on its own), so a revision stopped half
way (a killed `alembic upgrade`, a lost connection) leaves some of its changes behind while the
version row still names the revision before. Run again, a revision must make what is missing and
skip what exists; these operations do that on every dialect. Offline (`alembic upgrade --sql`)
nothing can be looked at, and each operation is written out as it is.

The revisions call these as they shipped: never change what one of them does (add another).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

__all__ = [
    "add_column",
    "column_names",
    "create_index",
    "create_table",
    "drop_columns",
    "drop_index",
    "drop_table",
    "has_table",
    "offline",
]

# Dialects with no DROP INDEX IF EXISTS (MySQL 8 lacks it; whether SingleStore has it is unverified).
_NO_DROP_INDEX_IF_EXISTS = frozenset({"mysql", "singlestoredb"})


def offline() -> bool:
    """Whether the revision is written out as SQL (`--sql`) instead of run on a database."""
    return bool(op.get_context().as_sql)


def has_table(table_name: str, schema: str | None) -> bool:
    return sa.inspect(op.get_bind()).has_table(table_name, schema=schema)


def column_names(table_name: str, schema: str | None) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table_name, schema=schema)}


def _index_names(table_name: str, schema: str | None) -> set[str]:
    return {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table_name, schema=schema) if i["name"]}


def add_column(table_name: str, column: sa.Column[Any], schema: str | None) -> None:
    if offline() or column.name not in column_names(table_name, schema):
        op.add_column(table_name, column, schema=schema)


def drop_columns(table_name: str, names: list[str], schema: str | None) -> None:
    """Drop those of the columns `names` the table has (in batch mode: SQLite copies the table)."""
    present = names if offline() else [n for n in names if n in column_names(table_name, schema)]
    if present:
        with op.batch_alter_table(table_name, schema=schema) as batch:
            for name in present:
                batch.drop_column(name)


def create_table(table_name: str, *columns: Any, schema: str | None, **options: Any) -> None:
    if offline() or not has_table(table_name, schema):
        op.create_table(table_name, *columns, schema=schema, **options)


def drop_table(table_name: str, schema: str | None) -> None:
    if offline() or has_table(table_name, schema):
        op.drop_table(table_name, schema=schema)


def create_index(name: str, table_name: str, columns: list[str], schema: str | None, **options: Any) -> None:
    if offline() or name not in _index_names(table_name, schema):
        op.create_index(name, table_name, columns, schema=schema, **options)


def drop_index(name: str, table_name: str, schema: str | None) -> None:
    """Drop the index where the table has it. Offline: DROP INDEX IF EXISTS where the dialect has
    it; on MySQL and SingleStore, a plain DROP INDEX (the script then needs the index to exist)."""
    if not offline():
        if name in _index_names(table_name, schema):
            op.drop_index(name, table_name=table_name, schema=schema)
        return
    if_exists = None if op.get_context().dialect.name in _NO_DROP_INDEX_IF_EXISTS else True
    op.drop_index(name, table_name=table_name, schema=schema, if_exists=if_exists)
