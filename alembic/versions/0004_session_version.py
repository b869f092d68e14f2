"""A version on every session row, so concurrent writers can tell that a session changed.

`version` is one more on every upsert (see agno_orm._versions): a storage made with
`on_conflict="raise"` writes a session only where its version is still the one its writer read.
Rows written before this revision, by agno or an older agno_orm, start at 1. Re-runnable: a
column that exists is not added again, one that is missing is not dropped.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa

from agno_orm.sql import _revision_ops as ops

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    ops.add_column(table_name, sa.Column("version", sa.Integer(), nullable=False, server_default="1"), schema)


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    ops.drop_columns(table_name, ["version"], schema)
