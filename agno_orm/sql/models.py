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

from sqlalchemy import JSON, BigInteger, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from agno_orm.errors import InvalidInputError
from agno_orm.sessions import MODES, Mode
from agno_orm.sql import _singlestore_ddl

__all__ = [
    "DEFAULT_TABLE_NAMES",
    "EpochSeconds",
    "JsonDocument",
    "SessionIdType",
    "ShortString",
    "TableSpec",
    "session_row_class",
    "session_table",
]

_MYSQL_FAMILY = ("mysql", "mariadb", "singlestoredb")

SessionIdType = String().with_variant(String(255), *_MYSQL_FAMILY)
"""Unbounded VARCHAR as agno has it; the MySQL family needs a length to index it (InnoDB key limits)."""

ShortString = String().with_variant(String(255), *_MYSQL_FAMILY)
"""The other id and name columns: VARCHAR, VARCHAR(255) on the MySQL family (as agno's MySQL tables)."""

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
MAX_TABLE_NAME_LENGTH = 55
"""Leaves room for the `_version` suffix of the table's version table within PostgreSQL's 63."""


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
    user_id: Mapped[str | None] = mapped_column(ShortString, index=True)
    memory: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    session_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    extra_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    created_at: Mapped[int | None] = mapped_column(EpochSeconds)
    updated_at: Mapped[int | None] = mapped_column(EpochSeconds)


class _AgentColumns(_CommonColumns):
    agent_id: Mapped[str | None] = mapped_column(ShortString, index=True)
    team_session_id: Mapped[str | None] = mapped_column(ShortString, index=True)
    agent_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    # added by revision 0002: agno's tables drop the field the dataclass has
    workflow_session_id: Mapped[str | None] = mapped_column(ShortString)


class _TeamColumns(_CommonColumns):
    team_id: Mapped[str | None] = mapped_column(ShortString, index=True)
    team_session_id: Mapped[str | None] = mapped_column(ShortString, index=True)
    team_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)
    workflow_session_id: Mapped[str | None] = mapped_column(ShortString)


class _WorkflowColumns(_CommonColumns):
    workflow_id: Mapped[str | None] = mapped_column(ShortString, index=True)
    workflow_data: Mapped[Any] = mapped_column(JsonDocument, nullable=True)


class _WorkflowV2Columns(_CommonColumns):
    workflow_id: Mapped[str | None] = mapped_column(ShortString, index=True)
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


@functools.cache
def session_row_class(spec: TableSpec) -> type[_CommonColumns]:
    """The mapped class of `spec`'s table, built once per spec on its own declarative base."""

    class Base(DeclarativeBase):
        pass

    table_args: dict[str, Any] = {"schema": spec.schema, **_singlestore_ddl.table_options()}
    attributes: dict[str, Any] = {"__tablename__": spec.table_name, "__table_args__": table_args}
    row_class = type(_ROW_CLASS_NAMES[spec.mode], (Base, _COLUMNS_BY_MODE[spec.mode]), attributes)
    for index in row_class.__table__.indexes:  # type: ignore[attr-defined]
        index.dialect_kwargs.update(_singlestore_ddl.index_options())
    return row_class


def session_table(spec: TableSpec) -> Table:
    """The Core table of `spec`'s mapped class."""
    table = session_row_class(spec).__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def index_name(table_name: str, schema: str | None, column: str) -> str:
    """SQLAlchemy's default name for an `index=True` column, the name agno's tables carry."""
    return f"ix_{schema}_{table_name}_{column}" if schema else f"ix_{table_name}_{column}"
