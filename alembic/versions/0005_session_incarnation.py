"""An incarnation on every session row, so a writer can tell the row is the one it last wrote.

`incarnation` is a random id a session row gets when it is inserted and keeps through every
update (a row from before this revision gets one on its next upsert). With `version` (one more
on every upsert), it lets an upsert trust what this process remembers of the session's stored
runs (agno_orm/sql/_known_runs.py) instead of reading their keys back: a row deleted and
inserted again by another writer has another incarnation, even at the same version.
Re-runnable: a column that exists is not added again, one that is missing is not dropped.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa

from agno_orm.sql import _revision_ops as ops

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    ops.add_column(table_name, sa.Column("incarnation", sa.String(32), nullable=True), schema)


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    ops.drop_columns(table_name, ["incarnation"], schema)
