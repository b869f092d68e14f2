"""PostgreSQL: `PostgresStorage`, agno 1.8.4's constructor on the shared SQL implementation."""

from __future__ import annotations

from sqlalchemy import Engine

from agno_orm._versions import OnConflict
from agno_orm.errors import InvalidInputError
from agno_orm.sessions import Mode, SessionTypes
from agno_orm.sql.engines import engine_from_url
from agno_orm.sql.storage import SqlStorage
from agno_orm.storage import DEFAULT_MAX_PAYLOAD_BYTES

__all__ = ["PostgresStorage"]


class PostgresStorage(SqlStorage):
    """Sessions in a PostgreSQL table (JSONB columns), in schema `ai` unless told otherwise.

    Give `db_engine` or `db_url` (`postgresql+psycopg://...`; install the `postgres` extra).
    """

    def __init__(
        self,
        table_name: str,
        schema: str | None = "ai",
        db_url: str | None = None,
        db_engine: Engine | None = None,
        schema_version: int = 1,
        auto_upgrade_schema: bool = False,
        mode: Mode | None = "agent",
        *,
        session_types: SessionTypes = "auto",
        on_conflict: OnConflict = "overwrite",
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        if db_engine is None:
            if db_url is None:
                raise InvalidInputError("PostgresStorage needs db_url or db_engine")
            db_engine = engine_from_url(db_url, extra="postgres")
        super().__init__(
            table_name,
            db_engine,
            schema=schema,
            schema_version=schema_version,
            auto_upgrade_schema=auto_upgrade_schema,
            mode=mode,
            session_types=session_types,
            on_conflict=on_conflict,
            max_payload_bytes=max_payload_bytes,
        )
        self.db_url = db_url
