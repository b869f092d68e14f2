"""Keep workflow_session_id: agno's agent and team sessions have the field, its tables drop it.

Downgrading drops the column (agno 1.8.4's table has none), but not its values: they move to
`<table>_0002_kept` (session_id, workflow_session_id), made only when a row has one, and the
upgrade puts them back into the sessions still there and drops that table. Downgrading to base
drops it with the session table (revision 0001).

Re-runnable (MySQL commits each DDL statement on its own): each step is skipped where it is done.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agno_orm.sql import _revision_ops as ops
from agno_orm.sql import _singlestore_ddl
from agno_orm.sql.models import SessionIdType, ShortString

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MODES = ("agent", "team")
_COLUMN = "workflow_session_id"


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    if mode not in _MODES:
        return
    ops.add_column(table_name, sa.Column(_COLUMN, ShortString, nullable=True), schema)
    if ops.offline() or not ops.has_table(_kept_name(table_name), schema):
        return  # offline no kept values can be looked for: restore them by upgrading online
    sessions, kept = _tables(table_name, schema)
    value = sa.select(kept.c[_COLUMN]).where(kept.c.session_id == sessions.c.session_id)
    op.execute(
        sessions.update()
        .where(sessions.c[_COLUMN].is_(None), sa.exists(value))
        .values({_COLUMN: value.scalar_subquery()})
    )
    ops.drop_table(kept.name, schema)


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    if mode not in _MODES:
        return
    if not ops.offline() and _COLUMN not in ops.column_names(table_name, schema):
        return  # dropped already: the values were kept before that
    sessions, kept = _tables(table_name, schema)
    with_value = sessions.c[_COLUMN].is_not(None)
    if ops.offline() or op.get_bind().execute(sa.select(sa.literal(1)).where(with_value).limit(1)).first():
        ops.create_table(
            kept.name,
            sa.Column("session_id", SessionIdType, primary_key=True),
            sa.Column(_COLUMN, ShortString, nullable=False),
            schema=schema,
            **_singlestore_ddl.table_options(),
        )
        not_kept = ~sa.exists().where(kept.c.session_id == sessions.c.session_id)
        rows = sa.select(sessions.c.session_id, sessions.c[_COLUMN]).where(with_value, not_kept)
        op.execute(kept.insert().from_select(["session_id", _COLUMN], rows))
        op.execute(sessions.update().where(with_value).values({_COLUMN: None}))
    ops.drop_columns(table_name, [_COLUMN], schema)


def _kept_name(table_name: str) -> str:
    return f"{table_name}_0002_kept"


def _tables(table_name: str, schema: str | None) -> tuple[sa.Table, sa.Table]:
    metadata = sa.MetaData()
    sessions, kept = (
        sa.Table(
            name,
            metadata,
            sa.Column("session_id", SessionIdType, primary_key=True),
            sa.Column(_COLUMN, ShortString),
            schema=schema,
        )
        for name in (table_name, _kept_name(table_name))
    )
    return sessions, kept
