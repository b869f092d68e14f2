"""SQLite: `SqliteStorage`, agno 1.8.4's constructor on the shared SQL implementation."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from agno_orm.sessions import Mode, SessionTypes
from agno_orm.sql.storage import SqlStorage

__all__ = ["SqliteStorage"]


class SqliteStorage(SqlStorage):
    """Sessions in a SQLite table.

    The database is, in this order: `db_engine` (used as given, unlike agno's), `db_url`,
    `db_file` (its folder is created), else a private in-memory database.
    """

    def __init__(
        self,
        table_name: str,
        db_url: str | None = None,
        db_file: str | None = None,
        db_engine: Engine | None = None,
        schema_version: int = 1,
        auto_upgrade_schema: bool = False,
        mode: Mode | None = "agent",
        *,
        session_types: SessionTypes = "auto",
    ) -> None:
        if db_engine is None:
            db_engine = _engine_for(db_url, db_file)
        super().__init__(
            table_name,
            db_engine,
            schema=None,
            schema_version=schema_version,
            auto_upgrade_schema=auto_upgrade_schema,
            mode=mode,
            session_types=session_types,
        )
        self.db_url = db_url
        self.db_file = db_file


def _engine_for(db_url: str | None, db_file: str | None) -> Engine:
    if db_url is not None:
        return create_engine(db_url)
    if db_file is not None:
        path = Path(db_file).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    # One connection shared by all threads, or each thread would see its own empty database.
    return create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
