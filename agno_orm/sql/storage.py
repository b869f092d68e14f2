"""`SqlStorage`: the one implementation of `Storage` for every SQL dialect."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Select, delete, inspect, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from agno_orm.errors import SchemaError, SchemaOutOfDateError, StorageConnectionError, StorageError
from agno_orm.sessions import ENTITY_FIELD, Mode, Session
from agno_orm.sql import migrations
from agno_orm.sql.dialects import DialectHooks, hooks_for
from agno_orm.sql.models import TableSpec, session_row_class, session_table
from agno_orm.storage import Storage, check_limit, check_session_id

__all__ = ["SqlStorage"]

# Columns an upsert of an existing row leaves as they are: created_at is set once, on insert.
_KEEP_ON_UPDATE = frozenset({"session_id", "created_at"})


class SqlStorage(Storage):
    """Sessions in a SQL table through SQLAlchemy; one table per storage and mode.

    A missing table is created at the newest revision on first use. A table behind it is
    upgraded when `auto_upgrade_schema` is True; otherwise SchemaOutOfDateError names the
    command that upgrades it. Copies (`copy.deepcopy`, as agno does per request) share the engine.
    """

    def __init__(
        self,
        table_name: str,
        db_engine: Engine,
        *,
        schema: str | None = None,
        schema_version: int = 1,
        auto_upgrade_schema: bool = False,
        mode: Mode | None = "agent",
    ) -> None:
        super().__init__(mode)
        if schema_version != 1:
            raise SchemaError(
                f"schema_version={schema_version!r}: only 1 exists (agno's); "
                "the table's revision is managed by Alembic"
            )
        TableSpec(self.mode, table_name, schema)  # validates the names before anything connects
        self.table_name = table_name
        self.schema = schema
        self.schema_version = schema_version
        self.auto_upgrade_schema = auto_upgrade_schema
        self.db_engine = db_engine
        self._hooks: DialectHooks = hooks_for(db_engine.dialect.name)
        self._sessions = sessionmaker(db_engine, expire_on_commit=False)
        self._ready: set[TableSpec] = set()
        self._ready_lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> SqlStorage:
        clone = copy.copy(self)
        clone._ready = set(self._ready)
        clone._ready_lock = threading.Lock()
        return clone

    @property
    def spec(self) -> TableSpec:
        """The table of the current mode."""
        return TableSpec(self.mode, self.table_name, self.schema)

    # -- Storage ---------------------------------------------------------------------------------

    def create(self) -> None:
        self._ensure_ready(self.spec)

    def table_exists(self) -> bool:
        with self._translated("checking the table"), self.db_engine.connect() as connection:
            return inspect(connection).has_table(self.table_name, schema=self.schema)

    def upgrade_schema(self) -> None:
        spec = self.spec
        with self._translated("upgrading the schema"):
            migrations.upgrade(self.db_engine, [spec])
        self._forget(spec)
        self._ensure_ready(spec)

    def drop(self) -> None:
        spec = self.spec
        table = session_table(spec)
        with self._translated("dropping the table"), self.db_engine.begin() as connection:
            table.drop(connection, checkfirst=True)
            version = migrations.version_table(spec)
            version.drop(connection, checkfirst=True)
        self._forget(spec)

    def read(self, session_id: str, user_id: str | None = None) -> Session | None:
        check_session_id(session_id)
        row_class = self._row_class()
        stmt = select(row_class).where(row_class.session_id == session_id)
        if user_id:
            stmt = stmt.where(row_class.user_id == user_id)
        with self._orm_session("reading a session") as orm:
            row = orm.scalars(stmt).one_or_none()
            return None if row is None else self._to_session(row)

    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> list[str]:
        row_class = self._row_class()
        stmt = self._filtered(select(row_class.session_id), user_id, entity_id)
        with self._orm_session("listing session ids") as orm:
            return list(orm.scalars(stmt))

    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> list[Session]:
        return self.get_recent_sessions(user_id, entity_id, limit=None)

    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> list[Session]:
        check_limit(limit)
        stmt = self._filtered(select(self._row_class()), user_id, entity_id).limit(limit)
        with self._orm_session("listing sessions") as orm:
            return [self._to_session(row) for row in orm.scalars(stmt)]

    def upsert(self, session: Any) -> Session:
        record = self._record(self._validated(session))
        now = int(time.time())
        record["created_at"] = record["created_at"] or now
        record["updated_at"] = now
        row_class = self._row_class()
        table = session_table(self.spec)
        stmt = self._hooks.upsert(table, record, _KEEP_ON_UPDATE)
        with self._orm_session("upserting a session", write=True) as orm:
            if self._hooks.upsert_returns_row:
                return self._from_record(dict(orm.execute(stmt.returning(*table.columns)).mappings().one()))
            orm.execute(stmt)
            row = orm.scalars(select(row_class).where(row_class.session_id == record["session_id"])).one()
            return self._to_session(row)

    def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        if session_id is None:
            return
        check_session_id(session_id)
        row_class = self._row_class()
        stmt = delete(row_class).where(row_class.session_id == session_id)
        if user_id is not None:
            stmt = stmt.where(row_class.user_id == user_id)
        with self._orm_session("deleting a session", write=True) as orm:
            orm.execute(stmt)

    # -- internals -------------------------------------------------------------------------------

    def _row_class(self) -> Any:
        """The mapped class of the current mode's table, once that table is ready."""
        spec = self.spec
        self._ensure_ready(spec)
        return session_row_class(spec)

    def _filtered(self, stmt: Select[Any], user_id: str | None, entity_id: str | None) -> Select[Any]:
        row_class = session_row_class(self.spec)
        if user_id is not None:
            stmt = stmt.where(row_class.user_id == user_id)
        if entity_id is not None:
            stmt = stmt.where(getattr(row_class, ENTITY_FIELD[self.mode]) == entity_id)
        # session_id breaks ties between sessions created in the same second: a stable order.
        return stmt.order_by(row_class.created_at.desc(), row_class.session_id.desc())

    def _to_session(self, row: Any) -> Session:
        table = session_table(self.spec)
        return self._from_record({c.name: getattr(row, c.key) for c in table.columns})

    @contextmanager
    def _orm_session(self, action: str, *, write: bool = False) -> Iterator[OrmSession]:
        with self._translated(action), self._sessions() as orm:
            if write:
                with orm.begin():
                    yield orm
            else:
                yield orm

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """The one boundary where driver errors become ours, with the cause chained."""
        where = f"{action} in {self.spec.qualified_name}"
        try:
            yield
        except StorageError:
            raise
        except DBAPIError as exc:
            if self._hooks.is_connection_error(exc):
                raise StorageConnectionError(f"{where}: database unreachable: {exc.orig}") from exc
            raise StorageError(f"{where}: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"{where}: {exc}") from exc

    def _forget(self, spec: TableSpec) -> None:
        with self._ready_lock:
            self._ready.discard(spec)

    def _ensure_ready(self, spec: TableSpec) -> None:
        """Make sure `spec`'s table exists at head and has the mode's columns; once per storage and mode."""
        if spec in self._ready:
            return
        with self._ready_lock, self._translated("checking the schema"):
            if spec in self._ready:
                return
            with self.db_engine.connect() as connection:
                state = migrations.table_state(connection, spec)
            head = migrations.head_revision()
            if not state.exists or (state.revision != head and self.auto_upgrade_schema):
                migrations.upgrade(self.db_engine, [spec])
                with self.db_engine.connect() as connection:
                    state = migrations.table_state(connection, spec)
            self._check_state(spec, state, head)
            self._ready.add(spec)

    def _check_state(self, spec: TableSpec, state: migrations.TableState, head: str) -> None:
        if state.revision is not None and state.revision not in migrations.known_revisions():
            raise SchemaError(
                f"{spec.qualified_name} is at revision {state.revision}, which this version of agno_orm "
                "does not know: a newer agno_orm upgraded it; upgrade agno_orm here too"
            )
        if state.revision != head:
            found = "no recorded version (created by agno)" if state.revision is None else state.revision
            raise SchemaOutOfDateError(
                f"{spec.qualified_name} is behind the newest revision {head} (it has {found}); "
                f"upgrade it with: {migrations.describe_upgrade_command(spec)}"
            )
        missing = migrations.mode_columns(spec) - state.columns
        if missing:
            raise SchemaError(
                f"{spec.qualified_name} does not hold {spec.mode} sessions: it lacks the columns "
                f"{', '.join(sorted(missing))}; use another table_name for this mode"
            )
