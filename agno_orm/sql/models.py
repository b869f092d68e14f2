"""Declarative ORM models of the session tables, minted per (mode, table name, schema).

Users choose the table name and schema, and one database may hold many session tables, so a
mapped class cannot be declared once at import time. `session_row_class` builds it from column
mixins on a fresh declarative base (mapping one table name twice into one MetaData fails) and
caches it on the frozen `TableSpec`, so a storage builds each class once, not per call.

The columns are agno 1.8.4's (so its tables are adopted in place), plus what later revisions
add; `alembic check` proves the models and the revisions in alembic/versions agree.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from agno_orm.errors import InvalidInputError
from agno_orm.sessions import ENTITY_FIELD, MODES, Mode
from agno_orm.sql import _singlestore_ddl

__all__ = [
    "DEFAULT_TABLE_NAMES",
    "EpochSeconds",
    "JsonDocument",
    "RunKeyType",
    "SessionIdType",
    "SessionModels",
    "ShortString",
    "TableSpec",
    "index_name",
    "listing_indexes",
    "runs_position_index",
    "runs_table_name",
    "session_models",
    "session_row_class",
    "session_table",
]

_MYSQL_FAMILY = ("mysql", "mariadb", "singlestoredb")

SessionIdType = String().with_variant(String(255), *_MYSQL_FAMILY)
"""Unbounded VARCHAR as agno has it; the MySQL family needs a length to index it (InnoDB key limits)."""

ShortString = String().with_variant(String(255), *_MYSQL_FAMILY)
"""The other id and name columns: VARCHAR, VARCHAR(255) on the MySQL family (as agno's MySQL tables)."""

RunKeyType = String(255)
"""A run's key (see agno_orm.runs); bounded so MySQL can make it part of the primary key."""

JsonDocument = JSON().with_variant(postgresql.JSONB(), "postgresql")
EpochSeconds = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")
"""Epoch seconds as agno stores them: BIGINT, INTEGER on SQLite (which is 64-bit there)."""

DEFAULT_TABLE_NAMES: dict[Mode, str] = {
    "agent": "agent_sessions",
    "team": "team_sessions",
    "workflow": "workflow_sessions",
    "workflow_v2": "workflow_v2_sessions",
}
"""Table names `alembic upgrade head` creates when no -x option names others."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_TABLE_NAME_LENGTH = 48
"""Leaves room for the suffixes of the names derived from it (`_runs_pos`, `_by_entity`, ...)
within PostgreSQL's 63 characters."""


@dataclass(frozen=True)
class TableSpec:
    """One session table: which mode's sessions it holds, its name and its schema."""

    mode: Mode
    table_name: str
    schema: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        check_identifier(self.table_name, "table_name", MAX_TABLE_NAME_LENGTH)
        if self.schema is not None:
            check_identifier(self.schema, "schema", 63)

    @property
    def version_table(self) -> str:
        """Our Alembic version table for this session table; never the host's `alembic_version`."""
        return f"{self.table_name}_version"

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.table_name}" if self.schema else self.table_name


def check_identifier(value: object, what: str, max_length: int) -> None:
    """Refuse anything but a plain SQL identifier, so no name can smuggle SQL or need quoting rules."""
    if not isinstance(value, str) or not _IDENTIFIER.match(value) or len(value) > max_length:
        raise InvalidInputError(
            f"{what} must be letters, digits and underscores, not starting with a digit, "
            f"at most {max_length} characters; got {value!r}"
        )


class _CommonColumns:
    session_id: Mapped[str] = mapped_column(SessionIdType, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(ShortString)
    memory: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    session_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    extra_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    created_at: Mapped[int | None] = mapped_column(EpochSeconds)
    updated_at: Mapped[int | None] = mapped_column(EpochSeconds)
    # added by revision 0004: one more on every upsert (agno_orm._versions); 1 for rows agno wrote
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    # revision 0005, and from 0006 on: a random id every upsert writes anew, and the one it replaced
    # (sql/_known_runs.py); NULL for rows not written since
    incarnation: Mapped[str | None] = mapped_column(String(32))
    prior_incarnation: Mapped[str | None] = mapped_column(String(32))


class _AgentColumns(_CommonColumns):
    agent_id: Mapped[str | None] = mapped_column(ShortString)
    team_session_id: Mapped[str | None] = mapped_column(ShortString, index=True)
    agent_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    # added by revision 0002: agno's tables drop the field the dataclass has
    workflow_session_id: Mapped[str | None] = mapped_column(ShortString)


class _TeamColumns(_CommonColumns):
    team_id: Mapped[str | None] = mapped_column(ShortString)
    team_session_id: Mapped[str | None] = mapped_column(ShortString, index=True)
    team_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    workflow_session_id: Mapped[str | None] = mapped_column(ShortString)


class _WorkflowColumns(_CommonColumns):
    workflow_id: Mapped[str | None] = mapped_column(ShortString)
    workflow_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)


class _WorkflowV2Columns(_CommonColumns):
    workflow_id: Mapped[str | None] = mapped_column(ShortString)
    workflow_name: Mapped[str | None] = mapped_column(ShortString, index=True)
    workflow_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    runs: Mapped[Any] = mapped_column(JsonDocument, nullable=True)


_COLUMNS_BY_MODE: dict[Mode, type[_CommonColumns]] = {
    "agent": _AgentColumns,
    "team": _TeamColumns,
    "workflow": _WorkflowColumns,
    "workflow_v2": _WorkflowV2Columns,
}

_ROW_CLASS_NAMES: dict[Mode, str] = {
    "agent": "AgentSessionRow",
    "team": "TeamSessionRow",
    "workflow": "WorkflowSessionRow",
    "workflow_v2": "WorkflowV2SessionRow",
}


def listing_indexes(table_name: str, entity_column: str) -> dict[str, list[str]]:
    """The indexes that serve listings newest first, by name: by user, by entity, by time.

    Each ends in (created_at, session_id), so a filtered listing reads the index in order and
    stops after a page, never sorting; session_id makes the order total for keyset pagination.
    """
    return {
        f"{table_name}_by_user": ["user_id", "created_at", "session_id"],
        f"{table_name}_by_entity": [entity_column, "created_at", "session_id"],
        f"{table_name}_by_time": ["created_at", "session_id"],
    }


def runs_table_name(table_name: str) -> str:
    return f"{table_name}_runs"


def runs_position_index(table_name: str) -> str:
    return f"{table_name}_runs_pos"


@dataclass(frozen=True)
class SessionModels:
    """The mapped classes of one session table: its sessions and their runs, on one declarative base."""

    session: Any
    run: Any

    @property
    def session_table(self) -> Table:
        return self.session.__table__  # type: ignore[no-any-return]

    @property
    def runs_table(self) -> Table:
        return self.run.__table__  # type: ignore[no-any-return]


@functools.cache
def session_models(spec: TableSpec) -> SessionModels:
    """The mapped classes of `spec`'s tables, built once per spec on their own declarative base."""

    class Base(DeclarativeBase):
        pass

    entity = ENTITY_FIELD[spec.mode]
    table_args: dict[str, Any] = {"schema": spec.schema, **_singlestore_ddl.table_options()}
    session_indexes = [
        Index(name, *columns) for name, columns in listing_indexes(spec.table_name, entity).items()
    ]
    session_class = type(
        _ROW_CLASS_NAMES[spec.mode],
        (Base, _COLUMNS_BY_MODE[spec.mode]),
        {"__tablename__": spec.table_name, "__table_args__": (*session_indexes, table_args)},
    )
    parent = f"{spec.qualified_name}.session_id"
    run_class = type(
        _ROW_CLASS_NAMES[spec.mode].replace("SessionRow", "RunRow"),
        (Base,),
        {
            "__tablename__": runs_table_name(spec.table_name),
            "__table_args__": (
                Index(runs_position_index(spec.table_name), "session_id", "position"),
                table_args,
            ),
            "__annotations__": {},
            # SingleStore has no foreign keys: _singlestore_ddl leaves this one out of its DDL.
            "session_id": mapped_column(
                SessionIdType, ForeignKey(parent, ondelete="CASCADE"), primary_key=True
            ),
            "run_key": mapped_column(RunKeyType, primary_key=True),
            "position": mapped_column(Integer, nullable=False),
            "digest": mapped_column(String(32), nullable=False),
            # revision 0006: the session version whose upsert last wrote the run
            "written_version": mapped_column(Integer, nullable=False, server_default="0"),
            "payload": mapped_column(JsonDocument, nullable=False),
            "created_at": mapped_column(EpochSeconds, nullable=False),
            "updated_at": mapped_column(EpochSeconds, nullable=False),
        },
    )
    for table in (session_class.__table__, run_class.__table__):  # type: ignore[attr-defined]
        for index in table.indexes:
            index.dialect_kwargs.update(_singlestore_ddl.index_options())
    return SessionModels(session=session_class, run=run_class)


def session_row_class(spec: TableSpec) -> Any:
    """The mapped class of `spec`'s session table."""
    return session_models(spec).session


def session_table(spec: TableSpec) -> Table:
    """The Core table of `spec`'s sessions."""
    return session_models(spec).session_table


def index_name(table_name: str, schema: str | None, column: str) -> str:
    """SQLAlchemy's default name for an `index=True` column, the name agno's tables carry."""
    return f"ix_{schema}_{table_name}_{column}" if schema else f"ix_{table_name}_{column}"
