"""MySQL and MariaDB: `MySQLStorage`, agno 1.8.4's constructor on the shared SQL implementation."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from agno_orm._versions import OnConflict
from agno_orm.errors import InvalidInputError
from agno_orm.sessions import Mode, SessionTypes
from agno_orm.sql.engines import engine_from_url, parse_url
from agno_orm.sql.storage import SqlStorage
from agno_orm.storage import DEFAULT_MAX_PAYLOAD_BYTES

__all__ = ["MySQLStorage"]


class MySQLStorage(SqlStorage):
    """Sessions in a MySQL or MariaDB table (JSON columns, utf8mb4), in database `ai` unless told otherwise.

    On MySQL a schema is a database: `schema` names the database holding the table, created if
    missing; `schema=None` uses the URL's database. Give `db_engine` or `db_url`
    (`mysql+pymysql://...`; install the `mysql` extra); a URL without `charset` connects as utf8mb4.

    Limits of the server, refused with nothing written: JSON nested 32 levels deep or more in one
    session field or one run on MariaDB (its `json_valid` check; more than 100 on MySQL 8) raises
    InvalidSessionError; a statement over the server's `max_allowed_packet` PayloadTooLargeError
    (keep `max_payload_bytes` below it).
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
                raise InvalidInputError("MySQLStorage needs db_url or db_engine")
            db_engine = engine_from_url(with_utf8mb4(parse_url(db_url)), extra="mysql")
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


def with_utf8mb4(url: URL) -> URL:
    """`url` asking for a utf8mb4 connection unless it names a charset (older drivers default to less)."""
    return url if "charset" in url.query else url.update_query_dict({"charset": "utf8mb4"})
