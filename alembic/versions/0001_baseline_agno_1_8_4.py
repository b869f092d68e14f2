"""Baseline: agno 1.8.4's session table for each mode, created, or completed where agno made it.

A missing table is created with agno 1.8.4's columns, types and index names. A table that already
exists when this revision runs was made by agno (no version is recorded for it), and is adopted
in place, its rows untouched:

- on MySQL and MariaDB, a table not in utf8mb4 with binary collation is converted to it, as the
  tables made here are (agno's take the database's default: ids that differ in case would be one
  session, emoji could not be stored, and the runs table's foreign key needs equal column types);
- columns of the baseline it lacks are added (agno's own upgrade only ever adds team_session_id
  in agent mode, so tables of older agno versions lack it in team mode, and workflow_name or runs
  in workflow_v2 mode; agno's SingleStore tables have no workflow_name);
- columns whose type differs from the baseline's as `alembic check` sees it are altered to it
  (agno's SingleStore tables have TEXT ids where the baseline has VARCHAR(255));
- the baseline's indexes it lacks are created (agno's create() carries on when an index fails,
  and its SingleStore tables have none).

A table of another mode (one with another mode's id or data column, or none of this mode's) is
refused with SchemaError, unchanged: it is not the table this storage or command was meant for.
One exception: agno's cookbook makes a team's storage without a mode (agent, agno's default) and
agno's Team switches it to team mode, so agno creates the table with the agent columns beside the
team's. A table with every id and data column of this mode and another mode's only agent_id and
agent_data is adopted, those columns (and agno's index on agent_id) kept as they are.
Offline (`--sql`) no table can be looked at, so the script always creates it.

Downgrading removes the table, adopted or not (and what revision 0002's downgrade kept beside it):
`base` means no table. To hand a table back to agno 1.8.4, downgrade to this revision instead.

Re-runnable (MySQL commits each DDL statement on its own): a table this revision created but did
not finish is found and completed like agno's; the downgrade drops only what exists.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agno_orm.errors import SchemaError
from agno_orm.sql import _revision_ops as ops
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
_AGENT_LEFTOVERS = {"agent_id", "agent_data"}
"""What agno's storage made in agent mode and switched to another leaves beside that mode's columns."""
# The columns that say which mode's sessions a table holds: its entity id and its data.
_MODE_MARKERS: dict[str, set[str]] = {
    "agent": {"agent_id", "agent_data"},
    "team": {"team_id", "team_data"},
    "workflow": {"workflow_id", "workflow_data"},
    "workflow_v2": {"workflow_id", "workflow_data", "workflow_name", "runs"},
}


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    if not op.get_context().as_sql and sa.inspect(op.get_bind()).has_table(table_name, schema=schema):
        _adopt(table_name, schema, mode)
        return
    op.create_table(
        table_name,
        *_baseline_columns(mode),
        schema=schema,
        # utf8mb4 on the MySQL family; SingleStore's shard and sort keys (see _singlestore_ddl)
        **_singlestore_ddl.table_options(),
    )
    for column in _indexed_columns(mode):
        _create_index(table_name, schema, column)


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    ops.drop_table(f"{table_name}_0002_kept", schema)  # see revision 0002
    ops.drop_table(table_name, schema)


def _baseline_columns(mode: str) -> list[sa.Column[object]]:
    return [
        sa.Column("session_id", SessionIdType, primary_key=True),
        sa.Column("user_id", ShortString, nullable=True),
        sa.Column("memory", JsonDocument, nullable=True),
        sa.Column("session_data", JsonDocument, nullable=True),
        sa.Column("extra_data", JsonDocument, nullable=True),
        sa.Column("created_at", EpochSeconds, nullable=True),
        sa.Column("updated_at", EpochSeconds, nullable=True),
        *(sa.Column(name, ShortString, nullable=True) for name in _MODE_INDEXED_COLUMNS[mode]),
        *(sa.Column(name, JsonDocument, nullable=True) for name in _MODE_JSON_COLUMNS[mode]),
    ]


def _indexed_columns(mode: str) -> list[str]:
    return ["user_id", *_MODE_INDEXED_COLUMNS[mode]]


def _create_index(table_name: str, schema: str | None, column: str) -> None:
    op.create_index(
        index_name(table_name, schema, column),
        table_name,
        [column],
        schema=schema,
        **_singlestore_ddl.index_options(),
    )


def _adopt(table_name: str, schema: str | None, mode: str) -> None:
    """Bring the existing table `table_name` (agno's) to the baseline shape of `mode`, rows untouched."""
    connection = op.get_bind()
    table = sa.Table(table_name, sa.MetaData(), schema=schema, autoload_with=connection)
    _check_mode(table, mode)
    _convert_to_utf8mb4_bin(table)
    compare_type = op.get_context().impl.compare_type
    baseline = _baseline_columns(mode)
    for column in baseline:
        if column.name not in table.c:
            op.add_column(table_name, column, schema=schema)
    retyped = [c for c in baseline if c.name in table.c and compare_type(table.c[c.name], c)]
    if retyped:
        # Batch mode: SQLite can change a type only by copying the table (never needed for agno's).
        with op.batch_alter_table(table_name, schema=schema) as batch:
            for column in retyped:
                existing = table.c[column.name]
                batch.alter_column(
                    column.name,
                    type_=column.type,
                    existing_type=existing.type,
                    existing_nullable=existing.nullable,
                )
    # By name, as `alembic check` compares them (agno's carry these names).
    existing_indexes = {index.name for index in table.indexes}
    for column in _indexed_columns(mode):
        if index_name(table_name, schema, column) not in existing_indexes:
            _create_index(table_name, schema, column)


def _convert_to_utf8mb4_bin(table: sa.Table) -> None:
    connection = op.get_bind()
    if connection.dialect.name not in ("mysql", "mariadb", _singlestore_ddl.SINGLESTORE_DIALECT):
        return
    if _singlestore_ddl.is_singlestore_server(op.get_context().impl):
        return  # SingleStore converts no table in place; its tables stay as they were made
    collation = connection.execute(
        sa.text(
            "SELECT table_collation FROM information_schema.tables "
            "WHERE table_schema = COALESCE(:schema, DATABASE()) AND table_name = :table"
        ),
        {"schema": table.schema, "table": table.name},
    ).scalar()
    if collation != _singlestore_ddl.MYSQL_FAMILY_COLLATION:
        name = connection.dialect.identifier_preparer.format_table(table)
        op.execute(
            f"ALTER TABLE {name} CONVERT TO CHARACTER SET utf8mb4 "
            f"COLLATE {_singlestore_ddl.MYSQL_FAMILY_COLLATION}"
        )


def _check_mode(table: sa.Table, mode: str) -> None:
    """Refuse a table that does not hold sessions of `mode`, before anything is changed."""
    columns = set(table.c.keys())
    own = _MODE_MARKERS[mode]
    foreign = set().union(*(m for other, m in _MODE_MARKERS.items() if other != mode)) - own
    agno_default_mode = _AGENT_LEFTOVERS if own <= columns else set()  # see the module docstring
    qualified = f"{table.schema}.{table.name}" if table.schema else table.name
    if "session_id" not in columns or not columns & own or (columns & foreign) - agno_default_mode:
        raise SchemaError(
            f"{qualified} exists without a recorded version, but it is not a table of {mode} sessions "
            f"(its columns: {', '.join(sorted(columns))}); nothing was changed. Use another table_name "
            "for this mode"
        )
