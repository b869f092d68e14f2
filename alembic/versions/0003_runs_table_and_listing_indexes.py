"""Runs in their own table, and indexes that serve listings in order.

- `<table>_runs`: one row per run (session_id, run_key, position, digest, payload, timestamps),
  so an upsert writes the runs that changed instead of the whole history. Existing runs are moved
  out of `memory["runs"]` (the `runs` column for workflow_v2) and back on downgrade.
- `<table>_by_user`, `<table>_by_entity`, `<table>_by_time`: (filter, created_at, session_id)
  indexes, which replace agno's single-column user and entity indexes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

from agno_orm.runs import join_runs, run_digest, run_keys, split_runs
from agno_orm.sessions import ENTITY_FIELD
from agno_orm.sql import _singlestore_ddl
from agno_orm.sql.models import (
    EpochSeconds,
    JsonDocument,
    RunKeyType,
    SessionIdType,
    index_name,
    listing_indexes,
    runs_position_index,
    runs_table_name,
)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 500


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    entity = ENTITY_FIELD[mode]  # type: ignore[index]
    # Only the indexes the table has: agno's own create() carries on when an index fails, and its
    # SingleStore makes none. Looked up, not DROP INDEX IF EXISTS, which MySQL 8 lacks; a script
    # written offline (alembic upgrade --sql) cannot look, and says IF EXISTS.
    offline = op.get_context().as_sql
    existing = (
        set()
        if offline
        else {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table_name, schema=schema)}
    )
    for column in ("user_id", entity):
        name = index_name(table_name, schema, column)
        if offline or name in existing:
            op.drop_index(name, table_name=table_name, schema=schema, if_exists=offline or None)
    for name, columns in listing_indexes(table_name, entity).items():
        op.create_index(name, table_name, columns, schema=schema, **_singlestore_ddl.index_options())
    parent = f"{schema}.{table_name}" if schema else table_name
    op.create_table(
        runs_table_name(table_name),
        sa.Column("session_id", SessionIdType, sa.ForeignKey(f"{parent}.session_id", ondelete="CASCADE")),
        sa.Column("run_key", RunKeyType),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("payload", JsonDocument, nullable=False),
        sa.Column("created_at", EpochSeconds, nullable=False),
        sa.Column("updated_at", EpochSeconds, nullable=False),
        sa.PrimaryKeyConstraint("session_id", "run_key"),
        schema=schema,
        **_singlestore_ddl.table_options(),  # utf8mb4_bin like its parent: a foreign key needs equal types
    )
    op.create_index(
        runs_position_index(table_name),
        runs_table_name(table_name),
        ["session_id", "position"],
        schema=schema,
        **_singlestore_ddl.index_options(),
    )
    _move_runs_out(table_name, schema, mode)


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    _move_runs_back(table_name, schema, mode)
    op.drop_table(runs_table_name(table_name), schema=schema)
    entity = ENTITY_FIELD[mode]  # type: ignore[index]
    for name in listing_indexes(table_name, entity):
        op.drop_index(name, table_name=table_name, schema=schema)
    for column in ("user_id", entity):
        op.create_index(
            index_name(table_name, schema, column),
            table_name,
            [column],
            schema=schema,
            **_singlestore_ddl.index_options(),
        )


def _tables(table_name: str, schema: str | None, mode: str) -> tuple[sa.Table, sa.Table, str]:
    """The two tables as this revision knows them: only the columns it reads and writes."""
    metadata = sa.MetaData()
    holder = "runs" if mode == "workflow_v2" else "memory"
    sessions = sa.Table(
        table_name,
        metadata,
        sa.Column("session_id", SessionIdType, primary_key=True),
        sa.Column(holder, JsonDocument),
        sa.Column("created_at", EpochSeconds),
        schema=schema,
    )
    runs = sa.Table(
        runs_table_name(table_name),
        metadata,
        sa.Column("session_id", SessionIdType, primary_key=True),
        sa.Column("run_key", RunKeyType, primary_key=True),
        sa.Column("position", sa.Integer()),
        sa.Column("digest", sa.String(32)),
        sa.Column("payload", JsonDocument),
        sa.Column("created_at", EpochSeconds),
        sa.Column("updated_at", EpochSeconds),
        schema=schema,
    )
    return sessions, runs, holder


def _batches(connection: sa.Connection, sessions: sa.Table) -> Iterator[list[sa.Row[Any]]]:
    """Every session row, in batches by session_id, so memory stays flat on large tables."""
    last: str | None = None
    while True:
        query = sa.select(sessions).order_by(sessions.c.session_id).limit(_BATCH)
        if last is not None:
            query = query.where(sessions.c.session_id > last)
        rows = list(connection.execute(query))
        if not rows:
            return
        yield rows
        last = rows[-1].session_id


def _move_runs_out(table_name: str, schema: str | None, mode: str) -> None:
    if op.get_context().as_sql:
        # Offline (--sql) there are no rows to read. Nothing is lost: runs left in a session row are
        # read from it as before, and its next upsert moves them.
        return
    connection = op.get_bind()
    sessions, runs, holder = _tables(table_name, schema, mode)
    now = int(time.time())
    for rows in _batches(connection, sessions):
        run_rows: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for row in rows:
            record = {holder: row._mapping[holder]}
            found = split_runs(mode, record)  # type: ignore[arg-type]
            if not found:
                continue
            digests = [run_digest(run) for run in found]
            for position, (key, digest, payload) in enumerate(
                zip(run_keys(found, digests), digests, found, strict=True)
            ):
                created = row.created_at or now
                run_rows.append(
                    {
                        "session_id": row.session_id,
                        "run_key": key,
                        "position": position,
                        "digest": digest,
                        "payload": payload,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
            updates.append({"key": row.session_id, "value": record[holder]})
        if run_rows:
            connection.execute(runs.insert(), run_rows)
        if updates:
            statement = (
                sessions.update()
                .where(sessions.c.session_id == sa.bindparam("key"))
                .values({holder: sa.bindparam("value")})
            )
            connection.execute(statement, updates)


def _move_runs_back(table_name: str, schema: str | None, mode: str) -> None:
    if op.get_context().as_sql:
        raise RuntimeError("revision 0003 moves runs back into their sessions: downgrade online, not --sql")
    connection = op.get_bind()
    sessions, runs, holder = _tables(table_name, schema, mode)
    for rows in _batches(connection, sessions):
        ids = [row.session_id for row in rows]
        stored: dict[str, list[Any]] = {}
        query = (
            sa.select(runs.c.session_id, runs.c.payload)
            .where(runs.c.session_id.in_(ids))
            .order_by(runs.c.session_id, runs.c.position, runs.c.created_at, runs.c.run_key)
        )
        for session_id, payload in connection.execute(query):
            stored.setdefault(session_id, []).append(payload)
        updates = []
        for row in rows:
            if row.session_id in stored:
                record = {holder: row._mapping[holder]}
                join_runs(mode, record, stored[row.session_id])  # type: ignore[arg-type]
                updates.append({"key": row.session_id, "value": record[holder]})
        if updates:
            statement = (
                sessions.update()
                .where(sessions.c.session_id == sa.bindparam("key"))
                .values({holder: sa.bindparam("value")})
            )
            connection.execute(statement, updates)
