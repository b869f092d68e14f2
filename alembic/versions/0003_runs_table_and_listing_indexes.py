"""Runs in their own table, and indexes that serve listings in order.

- `<table>_runs`: one row per run (session_id, run_key, position, digest, payload, timestamps),
  so an upsert writes the runs that changed instead of the whole history. Existing runs are moved
  out of `memory["runs"]` (the `runs` column for workflow_v2) and back on downgrade.
- `<table>_by_user`, `<table>_by_entity`, `<table>_by_time`: (filter, created_at, session_id)
  indexes, which replace agno's single-column user and entity indexes.

Re-runnable (MySQL commits each DDL statement on its own): what exists is skipped, and the move
takes only runs still inside a session row, replacing any rows of that session an interrupted run
left in `<table>_runs`; the move back likewise deletes each session's rows as it restores them.
What it needs of agno_orm (how runs are keyed, the names) is frozen in agno_orm.sql._revision_0003.

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

from agno_orm.sql import _revision_ops as ops
from agno_orm.sql import _singlestore_ddl
from agno_orm.sql._revision_0003 import (
    ENTITY_COLUMN,
    agno_index_name,
    join_runs,
    listing_indexes,
    run_digest,
    run_keys,
    runs_holder,
    runs_position_index,
    runs_table_name,
    split_runs,
)
from agno_orm.sql.models import EpochSeconds, JsonDocument, RunKeyType, SessionIdType

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 500


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    entity = ENTITY_COLUMN[mode]
    # Only the indexes the table has: agno's own create() carries on when an index fails, and its
    # SingleStore makes none.
    for column in ("user_id", entity):
        ops.drop_index(agno_index_name(table_name, schema, column), table_name, schema)
    for name, columns in listing_indexes(table_name, entity).items():
        ops.create_index(name, table_name, columns, schema, **_singlestore_ddl.index_options())
    parent = f"{schema}.{table_name}" if schema else table_name
    ops.create_table(
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
    ops.create_index(
        runs_position_index(table_name),
        runs_table_name(table_name),
        ["session_id", "position"],
        schema,
        **_singlestore_ddl.index_options(),
    )
    _move_runs_out(table_name, schema, mode)


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    if ops.offline():
        raise RuntimeError("revision 0003 moves runs back into their sessions: downgrade online, not --sql")
    if ops.has_table(runs_table_name(table_name), schema):
        _move_runs_back(table_name, schema, mode)
    ops.drop_table(runs_table_name(table_name), schema)
    entity = ENTITY_COLUMN[mode]
    for name in listing_indexes(table_name, entity):
        ops.drop_index(name, table_name, schema)
    for column in ("user_id", entity):
        ops.create_index(
            agno_index_name(table_name, schema, column),
            table_name,
            [column],
            schema,
            **_singlestore_ddl.index_options(),
        )


def _tables(table_name: str, schema: str | None, mode: str) -> tuple[sa.Table, sa.Table, str]:
    """The two tables as this revision knows them: only the columns it reads and writes."""
    metadata = sa.MetaData()
    holder = runs_holder(mode)
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


def _update_holders(
    connection: sa.Connection, sessions: sa.Table, holder: str, updates: list[dict[str, Any]]
) -> None:
    if updates:
        statement = (
            sessions.update()
            .where(sessions.c.session_id == sa.bindparam("key"))
            .values({holder: sa.bindparam("value")})
        )
        connection.execute(statement, updates)


def _move_runs_out(table_name: str, schema: str | None, mode: str) -> None:
    if ops.offline():
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
            found, rest = split_runs(mode, row._mapping[holder])
            if not found:
                continue
            digests = [run_digest(run) for run in found]
            created = row.created_at or now
            for position, (key, digest, payload) in enumerate(
                zip(run_keys(found, digests), digests, found, strict=True)
            ):
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
            updates.append({"key": row.session_id, "value": rest})
        if updates:
            # Runs still in the session row are the truth: rows an interrupted run left are replaced.
            moved = [update["key"] for update in updates]
            connection.execute(runs.delete().where(runs.c.session_id.in_(moved)))
            connection.execute(runs.insert(), run_rows)
        _update_holders(connection, sessions, holder, updates)


def _move_runs_back(table_name: str, schema: str | None, mode: str) -> None:
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
        updates = [
            {"key": row.session_id, "value": join_runs(mode, row._mapping[holder], stored[row.session_id])}
            for row in rows
            if row.session_id in stored
        ]
        _update_holders(connection, sessions, holder, updates)
        if stored:  # moved back: a run of this revision again finds them in their sessions only
            connection.execute(runs.delete().where(runs.c.session_id.in_(list(stored))))
