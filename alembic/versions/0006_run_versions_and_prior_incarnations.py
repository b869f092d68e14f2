"""Which session version last wrote each run, and an incarnation no two writes share.

- `<table>_runs.written_version`: the session version whose upsert last wrote the run (existing
  runs take their session's version). An upsert removes a stored run it does not carry only when
  its writer saw it: the run was written at or before the version that writer read. A run another
  writer wrote since is kept (agno_orm.runs, "Which runs an upsert removes").
- The session row's `incarnation` (revision 0005: random on insert, kept by updates) is, from
  this revision on, a random id every upsert writes anew, and `prior_incarnation` the one the
  upsert replaced. A process trusts what it remembers of a session's runs only while the row
  carries the incarnation its own last write left, which a database restored from a backup and
  written to again cannot repeat (a version can). Only columns are added (no rename: SingleStore
  and MySQL spell a rename differently).

Self-contained but for agno_orm.sql._revision_ops (whose operations never change once shipped),
so what it does cannot change after it ships. Re-runnable (MySQL commits each DDL statement on
its own): each step is skipped where it is done, and the back-fill gives the same values again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agno_orm.sql import _revision_ops as ops

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _runs_table(table_name: str) -> str:
    return f"{table_name}_runs"  # the name revision 0003 gave it


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    runs_name = _runs_table(table_name)
    ops.add_column(
        runs_name, sa.Column("written_version", sa.Integer(), nullable=False, server_default="0"), schema
    )
    sessions = sa.table(table_name, sa.column("session_id"), sa.column("version"), schema=schema)
    runs = sa.table(runs_name, sa.column("session_id"), sa.column("written_version"), schema=schema)
    version = sa.select(sessions.c.version).where(sessions.c.session_id == runs.c.session_id)
    op.execute(runs.update().values(written_version=sa.func.coalesce(version.scalar_subquery(), 0)))
    ops.add_column(table_name, sa.Column("prior_incarnation", sa.String(32), nullable=True), schema)


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    ops.drop_columns(table_name, ["prior_incarnation"], schema)
    ops.drop_columns(_runs_table(table_name), ["written_version"], schema)
