"""Which session version last wrote each run, and a token no two writes share.

- `<table>_runs.written_version`: the session version whose upsert last wrote the run (existing
  runs take their session's version). An upsert removes a stored run it does not carry only when
  its writer saw it: the run was written at or before the version that writer read. A run another
  writer wrote since is kept (agno_orm.runs, "Which runs an upsert removes").
- The session row's `incarnation` (revision 0005: random on insert, kept by updates) becomes
  `write_token`, a random id every upsert writes anew, and `prior_write_token`, the token the
  upsert replaced. A process trusts what it remembers of a session's runs only while the row
  carries the token its own last write left, which a database restored from a backup and written
  to again cannot repeat (a version can).

Self-contained: it imports nothing from agno_orm, so what it does cannot change after it ships.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _runs_table(table_name: str) -> str:
    return f"{table_name}_runs"  # the name revision 0003 gave it


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    runs_name = _runs_table(table_name)
    op.add_column(
        runs_name,
        sa.Column("written_version", sa.Integer(), nullable=False, server_default="0"),
        schema=schema,
    )
    sessions = sa.table(table_name, sa.column("session_id"), sa.column("version"), schema=schema)
    runs = sa.table(runs_name, sa.column("session_id"), sa.column("written_version"), schema=schema)
    version = sa.select(sessions.c.version).where(sessions.c.session_id == runs.c.session_id)
    op.execute(runs.update().values(written_version=sa.func.coalesce(version.scalar_subquery(), 0)))
    with op.batch_alter_table(table_name, schema=schema) as batch:
        batch.alter_column(
            "incarnation", new_column_name="write_token", existing_type=sa.String(32), existing_nullable=True
        )
        batch.add_column(sa.Column("prior_write_token", sa.String(32), nullable=True))


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    with op.batch_alter_table(table_name, schema=schema) as batch:
        batch.drop_column("prior_write_token")
        batch.alter_column(
            "write_token", new_column_name="incarnation", existing_type=sa.String(32), existing_nullable=True
        )
    with op.batch_alter_table(_runs_table(table_name), schema=schema) as batch:
        batch.drop_column("written_version")
