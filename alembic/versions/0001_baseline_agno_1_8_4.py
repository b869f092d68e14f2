"""Baseline: agno 1.8.4's session table for each mode.

An agno-created table with no version recorded is stamped at this revision and upgraded from
here, so the columns, types and index names must stay exactly agno 1.8.4's.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agno_orm.sql import _singlestore_ddl
from agno_orm.sql.models import EpochSeconds, JsonDocument, SessionIdType, ShortString, index_name

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_MODE_INDEXED_COLUMNS: dict[str, list[str]] = {
    "agent": ["agent_id", "team_session_id"],
    "team": ["team_id", "team_session_id"],
    "workflow": ["workflow_id"],
    "workflow_v2": ["workflow_id", "workflow_name"],
}
_MODE_JSON_COLUMNS: dict[str, list[str]] = {
    "agent": ["agent_data"],
    "team": ["team_data"],
    "workflow": ["workflow_data"],
    "workflow_v2": ["workflow_data", "runs"],
}


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    op.create_table(
        table_name,
        sa.Column("session_id", SessionIdType, primary_key=True),
        sa.Column("user_id", ShortString, nullable=True),
        sa.Column("memory", JsonDocument, nullable=True),
        sa.Column("session_data", JsonDocument, nullable=True),
        sa.Column("extra_data", JsonDocument, nullable=True),
        sa.Column("created_at", EpochSeconds, nullable=True),
        sa.Column("updated_at", EpochSeconds, nullable=True),
        *(sa.Column(name, ShortString, nullable=True) for name in _MODE_INDEXED_COLUMNS[mode]),
        *(sa.Column(name, JsonDocument, nullable=True) for name in _MODE_JSON_COLUMNS[mode]),
        schema=schema,
        # utf8mb4 on the MySQL family; SingleStore's shard and sort keys (see _singlestore_ddl)
        **_singlestore_ddl.table_options(),
    )
    for column in ["user_id", *_MODE_INDEXED_COLUMNS[mode]]:
        op.create_index(
            index_name(table_name, schema, column),
            table_name,
            [column],
            schema=schema,
            **_singlestore_ddl.index_options(),
        )


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    op.drop_table(table_name, schema=schema)
