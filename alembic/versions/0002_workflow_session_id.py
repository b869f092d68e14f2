"""Keep workflow_session_id: agno's agent and team sessions have the field, its tables drop it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agno_orm.sql.models import ShortString

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MODES = ("agent", "team")


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    if mode in _MODES:
        op.add_column(table_name, sa.Column("workflow_session_id", ShortString, nullable=True), schema=schema)


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    if mode in _MODES:
        with op.batch_alter_table(table_name, schema=schema) as batch:
            batch.drop_column("workflow_session_id")
