"""SingleStore: `SingleStoreStorage`, agno 1.8.4's constructor on the shared SQL implementation.

The tables are the shared models' with SingleStore's keys (see `_singlestore_ddl`): sharded by
session_id, sorted by created_at, hash indexes on user_id and the mode's entity ids, written by
the `singlestoredb` dialect of the `sqlalchemy-singlestoredb` package.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from agno_orm._urls import check_storage_kind
from agno_orm._versions import OnConflict
from agno_orm.errors import InvalidInputError, MissingDependencyError
from agno_orm.sessions import Mode, SessionTypes
from agno_orm.sql._singlestore_ddl import SINGLESTORE_DIALECT
from agno_orm.sql.engines import engine_from_url, parse_url
from agno_orm.sql.storage import SqlStorage
from agno_orm.storage import DEFAULT_MAX_PAYLOAD_BYTES

__all__ = ["SingleStoreStorage"]

_EXTRA = "singlestore"


class SingleStoreStorage(SqlStorage):
    """Sessions in a SingleStore table, in database `ai` unless told otherwise.

    `db_url` is `singlestoredb://...`, or `mysql+pymysql://...` as in agno's examples: that URL is
    opened with the `singlestoredb` dialect too, the one that writes SingleStore's shard key,
    sort key and hash indexes. A `db_engine` of that dialect is used as it is; one of the MySQL
    dialects (agno's examples pass `create_engine("mysql+pymysql://...")`) stands for its URL: the
    storage opens its own `singlestoredb` engine on it (the given engine's pool options are not
    carried over). `schema` names the database (created if missing); `schema=None` uses the URL's.
    Install the `singlestore` extra.
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
        _require_dialect()
        if db_engine is None:
            if db_url is None:
                raise InvalidInputError("SingleStoreStorage needs db_url or db_engine")
            db_engine = engine_from_url(singlestore_url(parse_url(db_url)), extra=_EXTRA)
        elif db_engine.dialect.name in ("mysql", "mariadb"):
            # agno's SingleStore examples pass create_engine("mysql+pymysql://..."): the same server
            # and credentials, opened with the dialect that writes SingleStore's keys
            db_engine = engine_from_url(singlestore_url(db_engine.url), extra=_EXTRA)
        elif db_engine.dialect.name != SINGLESTORE_DIALECT:
            raise InvalidInputError(
                f"SingleStoreStorage needs an engine of the {SINGLESTORE_DIALECT} dialect, which writes "
                f"SingleStore's keys; got {db_engine.dialect.name}. Pass db_url (mysql+pymysql:// works) "
                f"or create_engine('{SINGLESTORE_DIALECT}://...')"
            )
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


def singlestore_url(url: URL) -> URL:
    """`url` on the singlestoredb dialect: a MySQL URL (`mysql+pymysql://`) is turned into one."""
    backend = url.get_backend_name()
    if backend == SINGLESTORE_DIALECT:
        return url
    if backend in ("mysql", "mariadb"):
        return url.set(drivername=SINGLESTORE_DIALECT)
    return check_storage_kind(url, "SingleStoreStorage")  # refuses it, naming the class to use


def _require_dialect() -> None:
    try:
        import sqlalchemy_singlestoredb  # type: ignore[import-untyped]  # noqa: F401  # no type information
    except ImportError as exc:
        raise MissingDependencyError("sqlalchemy-singlestoredb", _EXTRA) from exc
