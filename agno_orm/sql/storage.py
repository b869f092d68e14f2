"""`SqlStorage`: the one implementation of `Storage` for every SQL dialect."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Select, and_, delete, func, inspect, or_, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from agno_orm.errors import SchemaError, SchemaOutOfDateError, StorageConnectionError, StorageError
from agno_orm.runs import join_runs, run_digest, run_keys, split_runs
from agno_orm.sessions import ENTITY_FIELD, AnySession, Mode, SessionPage, SessionSummary, SessionTypes
from agno_orm.sql import migrations
from agno_orm.sql.dialects import DialectHooks, hooks_for
from agno_orm.sql.models import SessionModels, TableSpec, session_models, session_row_class, session_table
from agno_orm.storage import (
    Storage,
    check_limit,
    check_page_limit,
    check_session_id,
    decode_cursor,
    make_page,
)

__all__ = ["SqlStorage"]

# Columns an upsert of an existing row leaves as they are: created_at is set once, on insert.
_KEEP_ON_UPDATE = frozenset({"session_id", "created_at"})
_KEEP_RUN = frozenset({"session_id", "run_key", "created_at"})
_CHUNK = 500
"""Rows per statement: below every dialect's limit on bound parameters."""


def _run_order(Run: Any) -> tuple[Any, ...]:
    """Runs in order: by position; runs two writers put at one position, by age, then key."""
    return (Run.position, Run.created_at, Run.run_key)


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
        session_types: SessionTypes = "auto",
    ) -> None:
        super().__init__(mode, session_types=session_types)
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
        models = session_models(spec)
        with self._translated("dropping the table"), self.db_engine.begin() as connection:
            models.runs_table.drop(connection, checkfirst=True)
            models.session_table.drop(connection, checkfirst=True)
            migrations.version_table(spec).drop(connection, checkfirst=True)
        self._forget(spec)

    def read(
        self, session_id: str, user_id: str | None = None, *, runs_limit: int | None = None
    ) -> AnySession | None:
        check_session_id(session_id)
        check_limit(runs_limit)
        models = self._models()
        stmt = select(models.session).where(models.session.session_id == session_id)
        if user_id:
            stmt = stmt.where(models.session.user_id == user_id)
        with self._orm_session("reading a session") as orm:
            row = orm.scalars(stmt).one_or_none()
            if row is None:
                return None
            Run = models.run
            runs = select(Run.payload).where(Run.session_id == session_id)
            if runs_limit is None:
                payloads = list(orm.scalars(runs.order_by(*_run_order(Run))))
            else:
                newest_first = runs.order_by(*(c.desc() for c in _run_order(Run))).limit(runs_limit)
                payloads = list(orm.scalars(newest_first))[::-1]
            return self._assemble(row, payloads)

    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> list[str]:
        models = self._models()
        stmt = self._filtered(select(models.session.session_id), user_id, entity_id)
        with self._orm_session("listing session ids") as orm:
            return list(orm.scalars(stmt))

    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> list[AnySession]:
        return self.get_recent_sessions(user_id, entity_id, limit=None)

    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> list[AnySession]:
        check_limit(limit)
        models = self._models()
        stmt = self._filtered(select(models.session), user_id, entity_id).limit(limit)
        with self._orm_session("listing sessions") as orm:
            rows = list(orm.scalars(stmt))
            Run = models.run
            payloads: dict[str, list[Any]] = {}
            ids = [row.session_id for row in rows]
            for start in range(0, len(ids), _CHUNK):
                runs = (
                    select(Run.session_id, Run.payload)
                    .where(Run.session_id.in_(ids[start : start + _CHUNK]))
                    .order_by(Run.session_id, *_run_order(Run))
                )
                for run_session_id, payload in orm.execute(runs):
                    payloads.setdefault(run_session_id, []).append(payload)
            return [self._assemble(row, payloads.get(row.session_id, [])) for row in rows]

    def list_sessions(
        self,
        *,
        user_id: str | None = None,
        entity_id: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SessionPage:
        check_page_limit(limit)
        after = decode_cursor(cursor)
        models = self._models()
        Row, Run = models.session, models.run
        run_count = select(func.count()).where(Run.session_id == Row.session_id).scalar_subquery()
        stmt = select(
            Row.session_id,
            Row.user_id,
            getattr(Row, ENTITY_FIELD[self.mode]),
            Row.session_data["session_name"].as_string(),
            Row.created_at,
            Row.updated_at,
            run_count,
        )
        if since is not None:
            stmt = stmt.where(Row.created_at >= since)
        if until is not None:
            stmt = stmt.where(Row.created_at < until)
        if after is not None:
            created_at, session_id = after
            stmt = stmt.where(
                or_(
                    Row.created_at < created_at,
                    and_(Row.created_at == created_at, Row.session_id < session_id),
                )
            )
        stmt = self._filtered(stmt, user_id, entity_id).limit(limit + 1)
        with self._orm_session("listing sessions") as orm:
            summaries = [
                SessionSummary(
                    session_id=row[0],
                    user_id=row[1],
                    entity_id=row[2],
                    session_name=row[3],
                    created_at=row[4],
                    updated_at=row[5],
                    run_count=row[6],
                )
                for row in orm.execute(stmt)
            ]
        return make_page(summaries, limit)

    def upsert(self, session: Any) -> AnySession:
        record = self._record(self._validated(session))
        runs = split_runs(self.mode, record)
        now = int(time.time())
        record["created_at"] = record["created_at"] or now
        record["updated_at"] = now
        session_id = record["session_id"]
        models = self._models()
        Row = models.session
        stmt = self._hooks.upsert(models.session_table, record, _KEEP_ON_UPDATE)
        with self._orm_session("upserting a session", write=True) as orm:
            if self._hooks.upsert_returns_row:
                stored = dict(orm.execute(stmt.returning(*models.session_table.columns)).mappings().one())
            else:
                orm.execute(stmt)
                row = orm.scalars(select(Row).where(Row.session_id == session_id)).one()
                stored = self._row_record(row)
            written = self._write_runs(orm, models, session_id, runs or [], now)
            others = self._runs_written_elsewhere(orm, models, session_id, written)
        ordered = sorted([*((i, 0, run) for i, run in enumerate(runs or [])), *others], key=lambda t: t[:2])
        join_runs(self.mode, stored, [run for _, _, run in ordered])
        return self._from_record(stored)

    def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        if session_id is None:
            return
        check_session_id(session_id)
        models = self._models()
        Row, Run = models.session, models.run
        stmt = delete(Row).where(Row.session_id == session_id)
        if user_id is not None:
            stmt = stmt.where(Row.user_id == user_id)
        with self._orm_session("deleting a session", write=True) as orm:
            if orm.execute(stmt).rowcount:  # type: ignore[attr-defined]
                # not left to ON DELETE CASCADE: SQLite enforces it only where a pragma is set
                orm.execute(delete(Run).where(Run.session_id == session_id))

    # -- internals -------------------------------------------------------------------------------

    def _models(self) -> SessionModels:
        """The mapped classes of the current mode's tables, once those tables are ready."""
        spec = self.spec
        self._ensure_ready(spec)
        return session_models(spec)

    def _write_runs(
        self, orm: OrmSession, models: SessionModels, session_id: str, runs: list[Any], now: int
    ) -> set[str]:
        """Write the runs that are new, changed or moved; return the keys of all given runs.

        The stored keys and digests are read (a few bytes per run), the payloads written are only
        those that changed: the bytes an upsert writes do not grow with the session's history.
        """
        Run = models.run
        digests = [run_digest(run) for run in runs]
        keys = run_keys(runs, digests)
        stored = {
            key: (digest, position)
            for key, digest, position in orm.execute(
                select(Run.run_key, Run.digest, Run.position).where(Run.session_id == session_id)
            )
        }
        changed = [
            {
                "session_id": session_id,
                "run_key": key,
                "position": position,
                "digest": digest,
                "payload": run,
                "created_at": now,
                "updated_at": now,
            }
            for position, (key, digest, run) in enumerate(zip(keys, digests, runs, strict=True))
            if stored.get(key) != (digest, position)
        ]
        for start in range(0, len(changed), _CHUNK):
            orm.execute(self._hooks.upsert(models.runs_table, changed[start : start + _CHUNK], _KEEP_RUN))
        return set(keys)

    def _runs_written_elsewhere(
        self, orm: OrmSession, models: SessionModels, session_id: str, written: set[str]
    ) -> list[tuple[int, int, Any]]:
        """Stored runs this upsert did not carry (another writer's): (position, 1, payload)."""
        Run = models.run
        query = select(Run.run_key, Run.position, Run.payload).where(Run.session_id == session_id)
        if len(written) <= _CHUNK:
            query = query.where(Run.run_key.not_in(written))
        return [
            (position, 1, payload)
            for key, position, payload in orm.execute(query.order_by(*_run_order(Run)))
            if key not in written
        ]

    def _assemble(self, row: Any, runs: list[Any]) -> AnySession:
        record = self._row_record(row)
        join_runs(self.mode, record, runs)
        return self._from_record(record)

    def _row_record(self, row: Any) -> dict[str, Any]:
        return {c.name: getattr(row, c.key) for c in session_table(self.spec).columns}

    def _filtered(self, stmt: Select[Any], user_id: str | None, entity_id: str | None) -> Select[Any]:
        row_class = session_row_class(self.spec)
        if user_id is not None:
            stmt = stmt.where(row_class.user_id == user_id)
        if entity_id is not None:
            stmt = stmt.where(getattr(row_class, ENTITY_FIELD[self.mode]) == entity_id)
        # session_id breaks ties between sessions created in the same second: a stable order.
        return stmt.order_by(row_class.created_at.desc(), row_class.session_id.desc())

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
