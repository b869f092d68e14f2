"""`SqlStorage`: the one implementation of `Storage` for every SQL dialect."""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Inspector
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from agno_orm import codec
from agno_orm._greenlets import in_async_operation
from agno_orm._retry import pause
from agno_orm._versions import ABSENT, VERSION_KEY, OnConflict, View, stored_version, written_since
from agno_orm.errors import (
    InvalidSessionError,
    PayloadTooLargeError,
    SchemaError,
    SchemaOutOfDateError,
    StorageConnectionError,
    StorageError,
)
from agno_orm.runs import (
    carried_positions,
    fresh_content_keys,
    join_runs,
    run_digest,
    run_digest_and_size,
    run_keys,
    runs_path,
    split_runs,
)
from agno_orm.sessions import (
    ENTITY_FIELD,
    AnySession,
    Mode,
    Session,
    SessionPage,
    SessionSummary,
    SessionTypes,
)
from agno_orm.sql import migrations
from agno_orm.sql._known_runs import KNOWN_RUNS, KnownRuns, copy_runs
from agno_orm.sql.dialects import DialectHooks, failed_statement, hooks_for
from agno_orm.sql.models import SessionModels, TableSpec, session_models, session_table
from agno_orm.storage import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    Storage,
    check_created_range,
    check_ids,
    check_limit,
    check_page_limit,
    check_session_id,
    decode_cursor,
    make_page,
    not_the_owner,
    session_owner,
)

__all__ = ["SqlStorage"]

_LOG = logging.getLogger("agno_orm")

# Columns an upsert of an existing row leaves as they are: created_at is set once, on insert.
_KEEP_ON_UPDATE = frozenset({"session_id", "created_at"})
TOKEN_KEY = "incarnation"
PRIOR_TOKEN_KEY = "prior_incarnation"
"""The columns of a session row's incarnation, a token new on every upsert, and the one that
upsert replaced (revisions 0005 and 0006; see `_known_runs`)."""


def _new_token() -> str:
    """A fresh write token: 32 random hex characters (the column's width), never repeated."""
    return secrets.token_hex(16)


_KEEP_RUN = frozenset({"session_id", "run_key", "created_at"})
_CHUNK = 500
"""Rows per statement: below every dialect's limit on bound parameters."""
_MAX_ATTEMPTS = 5
"""Tries of one transaction that failed in a way that is safe to try again (see `SqlStorage._run`)."""
T = TypeVar("T")


class _Raced(Exception):
    """Another writer wrote the session between this transaction's read and its write: run it again
    (it then reads what that writer stored)."""


@dataclass
class _Runs:
    """The runs an upsert carries, encoded, with their digests, JSON sizes and keys.

    `reused[i]`: run i was equal to the run at index i of `known` (see `_known_runs`) and is that
    run's private copy, neither encoded nor digested again; `raw[i]` is then the caller's run.
    The first `prefix` runs are all reused, and have `known`'s keys."""

    runs: list[Any]
    digests: list[str]
    sizes: list[int]
    keys: list[str]
    reused: list[bool]
    known: KnownRuns | None
    raw: list[Any]
    prefix: int = 0

    @property
    def appended(self) -> bool:
        """Whether the runs are the known ones (all of them, unchanged) followed by new ones: an
        agent's usual upsert, for which the known prefix is taken whole (lists sliced in C)."""
        return (
            self.known is not None
            and self.prefix == len(self.known.keys)
            and not any(self.reused[self.prefix :])
        )

    def digest_again(self) -> None:
        """Digest and key every run afresh (the stored runs are not what `known` says)."""
        self.digests = [run_digest(run) for run in self.runs]
        self.keys = run_keys(self.runs, self.digests)
        self.known = None

    def handed_out(self) -> list[Any]:
        """The runs for the session `upsert` returns, never the cache's private copies: where a run
        was equal to its known copy, the caller's own run (equal to what is stored, and not copied:
        a copy would make every upsert's cost grow with the history); else its encoded value."""
        if not any(self.reused):
            return self.runs
        if not any(self.reused[self.prefix :]):
            return [*self.raw[: self.prefix], *self.runs[self.prefix :]]
        return [
            raw if reused else run for raw, run, reused in zip(self.raw, self.runs, self.reused, strict=True)
        ]

    def to_known(self, stored: _StoredRuns) -> KnownRuns:
        """The entry to keep once the upsert committed: the cache's own copies of every run."""
        if not any(self.reused[self.prefix :]):
            known_runs = [*self.runs[: self.prefix], *copy_runs(self.runs[self.prefix :])]
        else:
            known_runs = self._copies()
        return KnownRuns(
            runs=known_runs,
            keys=self.keys,
            digests=self.digests,
            sizes=self.sizes,
            stored=stored.runs,
            token=stored.token,
            version=stored.version,
        )

    def _copies(self) -> list[Any]:
        """The cache's copy of each run: the known copy where reused, a new one elsewhere."""
        copies = iter(
            copy_runs([run for run, reused in zip(self.runs, self.reused, strict=True) if not reused])
        )
        return [run if reused else next(copies) for run, reused in zip(self.runs, self.reused, strict=True)]


@dataclass
class _StoredRuns:
    """The runs a session holds once an upsert wrote them, (digest, position, written version) by
    key, and the write token of its row then: what the next upsert may take instead of reading
    them back."""

    runs: dict[str, tuple[str, int, int]]
    token: str | None
    version: int


_CONNECTION_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_CONNECTION_LOCKS_LOCK = threading.Lock()


def _one_connection(engine: Engine) -> contextlib.AbstractContextManager[Any]:
    """A lock for the threads using `engine` where its pool is one shared connection (an in-memory
    SQLite database): their transactions would interleave on it, one committing another's
    half-done writes. Reentrant, since one operation nests (a read checks the schema first).
    An async storage's tasks take turns before they get here (`aio.AsyncSqlStorage._spawn`)."""
    if not isinstance(engine.pool, StaticPool) or in_async_operation():
        return contextlib.nullcontext()
    with _CONNECTION_LOCKS_LOCK:
        return _CONNECTION_LOCKS.setdefault(engine, threading.RLock())


@functools.lru_cache(maxsize=256)  # as DialectHooks.upsert's own cache: bounded as that one is
def _returning_row(stmt: Insert) -> Insert:
    """`stmt` returning the whole row it wrote; made once per statement (`DialectHooks.upsert`)."""
    return stmt.returning(*stmt.table.columns)


@functools.lru_cache(maxsize=1024)
def _table_spec(mode: Mode, table_name: str, schema: str | None) -> TableSpec:
    """`TableSpec(...)`, its names checked once rather than on every use (a storage's mode can change)."""
    return TableSpec(mode, table_name, schema)


_DATABASE_KEYS: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def _database_key(engine: Engine) -> str:
    """The engine's URL as text, password hidden: which database a `KNOWN_RUNS` key names (a URL
    object renders itself to text on every hash)."""
    key = _DATABASE_KEYS.get(engine)
    if key is None:
        key = _DATABASE_KEYS.setdefault(engine, engine.url.render_as_string(hide_password=True))
    return key


# Statements built once per table and shape, with bound parameters: SQLAlchemy then compiles each
# once, and a call only binds its values (building a statement costs more than running a small one).


@functools.cache
def _read_statement(spec: TableSpec, hooks: DialectHooks, *, by_user: bool) -> Select[Any]:
    """The session row with the id bound as `session_id` (and the user as `user_id`)."""
    table = session_table(spec)
    stmt = select(table).where(hooks.equals(table.c.session_id, "session_id"))
    if by_user:
        stmt = stmt.where(hooks.equals(table.c.user_id, "user_id"))
    return stmt


@functools.cache
def _listing_statement(
    spec: TableSpec,
    hooks: DialectHooks,
    *,
    by_user: bool,
    by_entity: bool,
    since: bool,
    until: bool,
    after: bool,
) -> Select[Any]:
    """`list_sessions`' query: summaries newest first, filtered by what is given (bound by name:
    user_id, entity_id, since, until, after_created_at and after_session_id), `limit` rows."""
    models = session_models(spec)
    table, Run = models.session_table, models.run
    run_count = select(func.count()).where(Run.session_id == table.c.session_id).scalar_subquery()
    stmt = select(
        table.c.session_id,
        table.c.user_id,
        table.c[ENTITY_FIELD[spec.mode]],
        table.c.session_data["session_name"].as_string(),
        table.c.created_at,
        table.c.updated_at,
        run_count,
    )
    if since:
        stmt = stmt.where(table.c.created_at >= bindparam("since", type_=Integer))
    if until:
        stmt = stmt.where(table.c.created_at < bindparam("until", type_=Integer))
    if after:
        created_at = bindparam("after_created_at", type_=Integer)
        stmt = stmt.where(
            or_(
                table.c.created_at < created_at,
                and_(table.c.created_at == created_at, table.c.session_id < bindparam("after_session_id")),
            )
        )
    return _newest_first(stmt, spec, hooks, by_user, by_entity, limited=True)


@functools.cache
def _sessions_statement(
    spec: TableSpec, hooks: DialectHooks, *, ids_only: bool, by_user: bool, by_entity: bool, limited: bool
) -> Select[Any]:
    """Session rows (or only their ids) newest first, filtered by what is given (bound by name:
    user_id, entity_id), at most `limit` rows where `limited`."""
    table = session_table(spec)
    stmt = select(table.c.session_id) if ids_only else select(table)
    return _newest_first(stmt, spec, hooks, by_user, by_entity, limited=limited)


def _newest_first(
    stmt: Select[Any], spec: TableSpec, hooks: DialectHooks, by_user: bool, by_entity: bool, *, limited: bool
) -> Select[Any]:
    """`stmt` restricted to the user bound as `user_id` and the entity as `entity_id` where asked,
    newest first, at most the bound `limit` rows where `limited`; session_id breaks ties between
    sessions created in the same second (a stable order, which keyset pagination needs)."""
    table = session_table(spec)
    if by_user:
        stmt = stmt.where(hooks.equals(table.c.user_id, "user_id"))
    if by_entity:
        stmt = stmt.where(hooks.equals(table.c[ENTITY_FIELD[spec.mode]], "entity_id"))
    stmt = stmt.order_by(table.c.created_at.desc(), table.c.session_id.desc())
    return stmt.limit(bindparam("limit", type_=Integer)) if limited else stmt


def _run_order(Run: Any) -> tuple[Any, ...]:
    """Runs in order: by position; runs two writers put at one position, by age, then key."""
    return (Run.position, Run.created_at, Run.run_key)


class SqlStorage(Storage):
    """Sessions in a SQL table through SQLAlchemy; one table per storage and mode.

    A missing table is created at the newest revision on first use. A table behind it is
    upgraded when `auto_upgrade_schema` is True; otherwise SchemaOutOfDateError names the
    command that upgrades it. Copies (`copy.deepcopy`, as agno does per request) share the engine.

    Each operation is one transaction (writes on SQLite take the write lock first, BEGIN
    IMMEDIATE). A transaction the database rolled back (deadlock, serialization failure, busy
    SQLite file) or whose connection broke before its commit was sent is run again, up to
    5 times; so is one that broke during its commit when running it twice equals running it once
    (everything but an upsert with on_conflict="raise"). Engines made from a URL replace a
    connection the server closed (pool_pre_ping), so the first call after a restart succeeds.

    An upsert writes only the runs that are new, changed or moved, and encodes only those that
    differ (`==`) from what this process last wrote for the session (`_known_runs`, a bounded
    per-process cache of private copies), and reads the stored run keys back only when another
    writer may have come between (the row's write tokens say so): its cost grows with
    the history by that comparison, in memory. The session it returns holds the caller's own runs
    where they equal the remembered ones (not copies). A read of a session whose row says its runs
    are still those this process wrote copies them from that memory instead of fetching them.
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
        on_conflict: OnConflict = "overwrite",
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(
            mode, session_types=session_types, on_conflict=on_conflict, max_payload_bytes=max_payload_bytes
        )
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
        return _table_spec(self.mode, self.table_name, self.schema)

    # agno 1.8.4's public attributes of its SQL storages, where they mean the same here. agno's
    # ORM session factory (`Session`, `SqlSession` on SQLite) is not one of them: make one with
    # `sqlalchemy.orm.sessionmaker(bind=storage.db_engine)`.

    @property
    def table(self) -> Table:
        """The current mode's session table, as mapped (agno's `table`); its runs are in `<name>_runs`."""
        return session_table(self.spec)

    def get_table(self) -> Table:
        """`table` (agno's `get_table()`)."""
        return self.table

    @property
    def metadata(self) -> MetaData:
        """The MetaData holding `table` and its runs table."""
        return self.table.metadata

    @property
    def inspector(self) -> Inspector:
        """A SQLAlchemy inspector of the database (agno's `inspector`)."""
        return inspect(self.db_engine)

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
        KNOWN_RUNS.forget_where(self._known_table(spec))
        self._ensure_ready(spec)

    def drop(self) -> None:
        spec = self.spec
        models = session_models(spec)
        with self._translated("dropping the table"), self.db_engine.begin() as connection:
            models.runs_table.drop(connection, checkfirst=True)
            models.session_table.drop(connection, checkfirst=True)
            migrations.version_table(spec).drop(connection, checkfirst=True)
        self._forget(spec)
        KNOWN_RUNS.forget_where(self._known_table(spec))

    def read(
        self, session_id: str, user_id: str | None = None, *, runs_limit: int | None = None
    ) -> AnySession | None:
        check_session_id(session_id)
        check_ids(user_id=user_id)
        check_limit(runs_limit)
        models = self._models()
        stmt = _read_statement(self.spec, self._hooks, by_user=user_id is not None)  # "" too: never dropped
        params = self._hooks.bind("session_id", session_id)
        if user_id is not None:
            params.update(self._hooks.bind("user_id", user_id))

        def read_row(connection: Connection) -> AnySession | None:
            row = connection.execute(stmt, params).one_or_none()
            if row is None:
                return None
            remembered = self._remembered_runs(row, runs_limit)
            if remembered is not None:
                return self._assemble(row, *remembered)
            Run = models.run
            if runs_limit is None:
                runs = select(Run.payload).where(Run.session_id == session_id).order_by(*_run_order(Run))
                return self._assemble(row, list(connection.scalars(runs)))
            # one run more than handed out: where there is one, the runs from its position on
            # count as not handed out (`View.seen_from`), a run sharing it included
            newest_first = (
                select(Run.position, Run.payload)
                .where(Run.session_id == session_id)
                .order_by(*(c.desc() for c in _run_order(Run)))
                .limit(runs_limit + 1)
            )
            found = list(connection.execute(newest_first))
            seen_from = found[runs_limit].position + 1 if len(found) > runs_limit else None
            return self._assemble(row, [payload for _, payload in found[:runs_limit]][::-1], seen_from)

        session = self._run("reading a session", read_row)
        if session is None:
            self._saw_absent(session_id)
        return session

    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> list[str]:
        self._ensure_ready(self.spec)
        stmt, params = self._filtered(user_id, entity_id, ids_only=True)
        return self._run(
            "listing session ids",
            lambda connection: list(connection.scalars(stmt, params)),
            one_statement=True,
        )

    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> list[AnySession]:
        return self.get_recent_sessions(user_id, entity_id, limit=None)

    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> list[AnySession]:
        check_limit(limit)
        models = self._models()
        stmt, params = self._filtered(user_id, entity_id, ids_only=False, limit=limit)

        def read_rows(connection: Connection) -> list[AnySession]:
            rows = list(connection.execute(stmt, params))
            Run = models.run
            payloads: dict[str, list[Any]] = {}
            ids = []  # the sessions whose runs are fetched: those not remembered as stored
            for row in rows:
                remembered = self._remembered_runs(row)
                if remembered is None:
                    ids.append(row.session_id)
                else:
                    payloads[row.session_id] = remembered[0]
            for start in range(0, len(ids), _CHUNK):
                runs = (
                    select(Run.session_id, Run.payload)
                    .where(Run.session_id.in_(ids[start : start + _CHUNK]))
                    .order_by(Run.session_id, *_run_order(Run))
                )
                for run_session_id, payload in connection.execute(runs):
                    payloads.setdefault(run_session_id, []).append(payload)
            return [self._assemble(row, payloads.get(row.session_id, [])) for row in rows]

        return self._run("listing sessions", read_rows)

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
        check_created_range(since, until)
        after = decode_cursor(cursor)
        check_ids(user_id=user_id, entity_id=entity_id)
        self._ensure_ready(self.spec)
        stmt = _listing_statement(
            self.spec,
            self._hooks,
            by_user=user_id is not None,
            by_entity=entity_id is not None,
            since=since is not None,
            until=until is not None,
            after=after is not None,
        )
        params: dict[str, Any] = {"limit": limit + 1, **self._filter_params(user_id, entity_id)}
        if since is not None:
            params["since"] = since
        if until is not None:
            params["until"] = until
        if after is not None:
            params["after_created_at"], params["after_session_id"] = after
        rows = self._run(
            "listing sessions", lambda connection: list(connection.execute(stmt, params)), one_statement=True
        )
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
            for row in rows
        ]
        return make_page(summaries, limit)

    def upsert(self, session: Any) -> AnySession:
        validated = self._validated(session)
        known_key = self._known_key(validated.session_id)
        record, runs = self._encoded(validated, KNOWN_RUNS.get(known_key))
        view = self._view_read(session, record["session_id"])
        now = int(time.time())
        record["created_at"] = record["created_at"] or now
        record["updated_at"] = now
        session_id = record["session_id"]
        models = self._models()
        raising = self.on_conflict == "raise"

        def write(
            connection: Connection,
        ) -> tuple[dict[str, Any], list[int], list[tuple[int, int, Any]], _StoredRuns, bool]:
            if raising:
                stored = self._write_if_unchanged(connection, models, record, view)
            else:
                stored = self._write_over(connection, models, record)
            positions, kept, after = self._write_runs(connection, models, stored, runs, now, view)
            theirs = self._runs_written_elsewhere(connection, models, session_id, set(kept))
            return stored, positions, theirs, after, any(v > view.version for v in kept.values())

        # With on_conflict="raise" a second try after a commit that may have happened would find
        # its own write and report it as a conflict: that write is not tried twice.
        try:
            stored, positions, theirs, after, kept_since = self._run(
                "upserting a session", write, write=True, repeatable=not raising
            )
        except BaseException:
            KNOWN_RUNS.forget(known_key)  # rolled back, or not known whether committed
            raise
        if runs is None:
            KNOWN_RUNS.forget(known_key)
            carried: list[Any] = []
        else:
            KNOWN_RUNS.put(known_key, runs.to_known(after))
            carried = runs.handed_out()  # never the cache's copies
            if self.mode == "workflow_v2" and self._agno_classes is not None:
                carried = copy_runs(carried)  # agno's workflow_v2 run classes pop from what they get
        if theirs:
            ours = [(position, 0, run) for position, run in zip(positions, carried, strict=True)]
            carried = [run for _, _, run in sorted([*ours, *theirs], key=lambda t: t[:2])]
        join_runs(self.mode, stored, carried)  # alone, the carried runs are in order (ascending positions)
        return self._upserted(session, stored, view, kept_since=kept_since)

    def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        if session_id is None:
            return
        check_session_id(session_id)
        check_ids(user_id=user_id)
        models = self._models()
        Row, Run = models.session, models.run
        stmt = delete(Row).where(self._hooks.equals(Row.session_id, "session_id"))
        params = self._hooks.bind("session_id", session_id)
        if user_id is not None:
            stmt = stmt.where(self._hooks.equals(Row.user_id, "user_id"))
            params.update(self._hooks.bind("user_id", user_id))

        def delete_rows(connection: Connection) -> bool:
            if not connection.execute(stmt, params).rowcount:
                return False
            # not left to ON DELETE CASCADE: SQLite enforces it only where a pragma is set
            connection.execute(delete(Run).where(Run.session_id == session_id))
            return True

        try:
            if self._run("deleting a session", delete_rows, write=True):
                self._saw_absent(session_id)
        finally:
            KNOWN_RUNS.forget(self._known_key(session_id))

    # -- internals -------------------------------------------------------------------------------

    def _models(self) -> SessionModels:
        """The mapped classes of the current mode's tables, once those tables are ready."""
        spec = self.spec
        self._ensure_ready(spec)
        return session_models(spec)

    def _write_over(
        self, connection: Connection, models: SessionModels, record: dict[str, Any]
    ) -> dict[str, Any]:
        """Insert or update the session row whatever its version (one more); return the stored row.

        The owner check (`session_owner`) is part of the one upsert statement, whatever the isolation
        level: where it returns the row, no row comes back where the id holds another user's
        session; elsewhere (the MySQL family) the row keeps its stored owner and is checked here,
        the transaction rolling back if that is another user. (A SELECT ... FOR UPDATE first would
        not do: under READ COMMITTED it locks nothing where the row does not exist yet.)
        """
        table = models.session_table
        session_id = record["session_id"]
        values = {**record, VERSION_KEY: 1, TOKEN_KEY: _new_token(), PRIOR_TOKEN_KEY: None}
        stmt = self._hooks.upsert(
            table, _KEEP_ON_UPDATE, bump=VERSION_KEY, owner="user_id", shift=(PRIOR_TOKEN_KEY, TOKEN_KEY)
        )
        if self._hooks.upsert_returns_row:
            row = connection.execute(_returning_row(stmt), values).mappings().one_or_none()
            if row is None:
                raise not_the_owner(session_id, self.spec.qualified_name)
            stored = dict(row)
        else:
            connection.execute(stmt, values)  # the row stays locked to this transaction from here
            stored = self._stored_row(connection, models, session_id)
        self._check_same_id(session_id, stored["session_id"])
        self._owner(record, stored["user_id"])  # refuses a row that kept another user (MySQL family)
        return stored

    def _write_if_unchanged(
        self, connection: Connection, models: SessionModels, record: dict[str, Any], view: View
    ) -> dict[str, Any]:
        """Write the session row if its stored version is the one `view` read (ABSENT: if there is
        none), else raise SessionConflictError; return the stored row.

        The owner check holds whatever the isolation level: a missing row is written by a plain
        INSERT, which fails if another writer inserted it meanwhile, and a stored one by an UPDATE
        conditioned on the version its owner was read at (every write changes the version)."""
        table = models.session_table
        session_id = record["session_id"]
        # The row stays locked to this transaction from here (SQLite: the whole file already is).
        row = connection.execute(
            select(table.c.session_id, table.c.user_id, table.c.version, table.c[TOKEN_KEY])
            .where(table.c.session_id == session_id)
            .with_for_update()
        ).one_or_none()
        if row is not None:
            self._check_same_id(session_id, row.session_id)
        found, replaced = (None, None) if row is None else (row.version, row.incarnation)
        self._check_version(session_id, view, ABSENT if found is None else found)
        if row is not None:
            record = {**record, "user_id": self._owner(record, row.user_id)}
        if found is None:
            try:
                connection.execute(insert(table).values({**record, VERSION_KEY: 1, TOKEN_KEY: _new_token()}))
            except IntegrityError as exc:  # inserted meanwhile: the next try finds it, a conflict
                raise _Raced from exc
        else:
            changes = {name: value for name, value in record.items() if name not in _KEEP_ON_UPDATE}
            # the version in the WHERE clause too: where the row lock does not hold, it still does
            updated = connection.execute(
                update(table)
                .where(table.c.session_id == session_id, table.c.version == found)
                .values(
                    {
                        **changes,
                        VERSION_KEY: found + 1,
                        TOKEN_KEY: _new_token(),
                        PRIOR_TOKEN_KEY: replaced,
                    }
                )
            )
            if updated.rowcount != 1:
                raise _Raced
        return self._stored_row(connection, models, session_id)

    def _owner(self, record: dict[str, Any], stored_user_id: str | None) -> str | None:
        """The user the session has once `record` is written over one stored for `stored_user_id`."""
        where = self.spec.qualified_name
        return session_owner(record["session_id"], stored_user_id, record["user_id"], where)

    def _check_same_id(self, session_id: str, stored_id: str) -> None:
        """Refuse to write a session over one whose id only the table's collation finds equal
        (MariaDB's utf8mb4_bin ignores trailing spaces: 'a ' = 'a'); the transaction rolls back."""
        if stored_id != session_id:
            raise InvalidSessionError(
                f"{self.spec.qualified_name}: session_id {session_id!r} is taken by session {stored_id!r} "
                "(this table's collation ignores trailing spaces); nothing was written"
            )

    def _stored_row(self, connection: Connection, models: SessionModels, session_id: str) -> dict[str, Any]:
        table = models.session_table
        return self._row_record(
            connection.execute(select(table).where(table.c.session_id == session_id)).one()
        )

    def _known_table(self, spec: TableSpec) -> tuple[Hashable, ...]:
        """The start of the `KNOWN_RUNS` keys of `spec`'s sessions in this storage's database."""
        return (_database_key(self.db_engine), spec)

    def _known_key(self, session_id: str) -> tuple[Hashable, ...]:
        return (*self._known_table(self.spec), session_id)

    def _encoded(self, session: Session, known: KnownRuns | None) -> tuple[dict[str, Any], _Runs | None]:
        """What `Storage._record` makes of `session`, with the runs taken out (`split_runs`) and
        encoded apart (None: the session holds no run list); same refusals, same size check.

        A run equal (`==`) to the run at its index in `known` is not encoded, digested or measured
        again: its known private copy, digest and size are taken (see `_known_runs`, and its
        limitation: True -> 1 or 1 -> 1.0 in an already-written run is not seen by `==`).
        """
        record = dict(session)
        raw = split_runs(self.mode, record)
        if raw is None:  # no run list, or one the codec turns into a list (a tuple): encode it all
            record = self._record(session)  # size checked there, runs in
            runs = split_runs(self.mode, record)
            if runs is None:
                return record, None
            measured = [run_digest_and_size(run) for run in runs]
            all_digests = [digest for digest, _ in measured]
            all_sizes = [size for _, size in measured]
            keys = run_keys(runs, all_digests)
            return record, _Runs(runs, all_digests, all_sizes, keys, [False] * len(runs), None, runs)
        self._encoded_fields(record, session.json_fields)
        where, depth = runs_path(self.mode)
        known_runs: list[Any] = known.runs if known is not None else []
        encoded: list[Any] = []
        digests: list[str] = []
        sizes: list[int] = []
        reused: list[bool] = []
        prefix = min(len(known_runs), len(raw))  # the leading runs all known: their keys are known too
        if known is not None and known_runs[:prefix] == raw[:prefix]:  # one comparison, in C
            encoded, digests, sizes = known_runs[:prefix], known.digests[:prefix], known.sizes[:prefix]
            reused = [True] * prefix
        else:
            prefix = 0
        for index in range(prefix, len(raw)):
            run = raw[index]
            if known is not None and index < len(known_runs) and known_runs[index] == run:
                encoded.append(known_runs[index])
                digests.append(known.digests[index])
                sizes.append(known.sizes[index])
                reused.append(True)
                if prefix == index:
                    prefix += 1
            else:
                value = codec.encode(run, where=f"{where}[{index}]", depth=depth)
                digest, size = run_digest_and_size(value)
                encoded.append(value)
                digests.append(digest)
                sizes.append(size)
                reused.append(False)
        self._check_size(record, runs_sizes=sizes)
        known_keys = known.keys[:prefix] if known is not None else []
        keys = run_keys(encoded, digests, known=known_keys)
        return record, _Runs(encoded, digests, sizes, keys, reused, known, raw, prefix)

    def _write_runs(
        self,
        connection: Connection,
        models: SessionModels,
        row: dict[str, Any],
        runs: _Runs | None,
        now: int,
        view: View,
    ) -> tuple[list[int], dict[str, int], _StoredRuns]:
        """Write the runs that are new, changed or moved, and delete the stored runs the writer saw
        (`view`) but no longer carries, once the session `row` is written (see `agno_orm.runs`);
        return the carried runs' positions (`runs.carried_positions`), the written versions of the
        stored runs kept though not carried, by key, and the runs the session then has stored.

        The stored keys, digests and versions are taken from what this process last wrote where the
        row says that is still what is stored (`KnownRuns.is_stored_as`), else read (a few bytes
        per run); the payloads written are only those that changed: the bytes an upsert writes do
        not grow with the session's history.
        """
        session_id, token, version = row["session_id"], row[TOKEN_KEY], row[VERSION_KEY]
        known = runs.known if runs is not None else None
        if known is not None and known.is_stored_as(row[PRIOR_TOKEN_KEY]):
            stored = known.stored
            if (
                runs is not None
                and runs.appended
                and len(stored) == runs.prefix
                and known.version <= view.version
            ):
                # stored: the known runs and nothing else, all seen by this writer and carried
                # unchanged; the rest is new
                first = stored[runs.keys[0]][1] if runs.prefix else 0
                positions = list(range(first, first + len(runs.keys)))
                appended = dict(stored)
                new = range(runs.prefix, len(runs.keys))
                appended.update((runs.keys[i], (runs.digests[i], positions[i], version)) for i in new)
                rows = [(i, positions[i], version) for i in new]
                self._upsert_runs(connection, models, session_id, rows, runs, now)
                return positions, {}, _StoredRuns(appended, token, version)
        else:
            Run = models.run
            stored = {
                key: (digest, position, written)
                for key, digest, position, written in connection.execute(
                    select(Run.run_key, Run.digest, Run.position, Run.written_version).where(
                        Run.session_id == session_id
                    )
                )
            }
            if runs is not None and known is not None and len(known.stored) != len(stored):
                # another writer added or removed runs since this process last wrote the session:
                # its known runs are not trusted, every run is digested again (the full path)
                runs.digest_again()
        if runs is None:  # no run list carried: every stored run stays
            every = {key: written for key, (_, _, written) in stored.items()}
            return [], every, _StoredRuns(stored, token, version)
        unseen = {key for key, (_, _, written) in stored.items() if written_since(view, written)}
        runs.keys = keys = fresh_content_keys(runs.keys, unseen, stored)
        positions = carried_positions(keys, {key: position for key, (_, position, _) in stored.items()})
        after: dict[str, tuple[str, int, int]] = {}
        changed: list[tuple[int, int, int]] = []
        for index, (key, digest, position) in enumerate(zip(keys, runs.digests, positions, strict=True)):
            was = stored.get(key)
            written = was[2] if was is not None and was[0] == digest else version
            after[key] = (digest, position, written)
            if was != after[key]:
                changed.append((index, position, written))
        self._upsert_runs(connection, models, session_id, changed, runs, now)
        kept: dict[str, int] = {}
        gone: list[str] = []
        for key in stored.keys() - after.keys():
            _, position, written = stored[key]
            if view.saw(written, position, key):
                gone.append(key)
            else:
                kept[key] = written
                after[key] = stored[key]
        Run = models.run
        for start in range(0, len(gone), _CHUNK):
            connection.execute(
                delete(Run).where(Run.session_id == session_id, Run.run_key.in_(gone[start : start + _CHUNK]))
            )
        return positions, kept, _StoredRuns(after, token, version)

    def _upsert_runs(
        self,
        connection: Connection,
        models: SessionModels,
        session_id: str,
        changed: list[tuple[int, int, int]],
        runs: _Runs,
        now: int,
    ) -> None:
        """Write the runs at these (index, position, written version)s of `runs`, over any stored
        under their keys."""
        rows = [
            {
                "session_id": session_id,
                "run_key": runs.keys[index],
                "position": position,
                "digest": runs.digests[index],
                "written_version": written,
                "payload": runs.runs[index],
                "created_at": now,
                "updated_at": now,
            }
            for index, position, written in changed
        ]
        upsert = self._hooks.upsert(models.runs_table, _KEEP_RUN)
        for start in range(0, len(rows), _CHUNK):
            connection.execute(upsert, rows[start : start + _CHUNK])

    def _runs_written_elsewhere(
        self, connection: Connection, models: SessionModels, session_id: str, keys: set[str]
    ) -> list[tuple[int, int, Any]]:
        """The stored runs with these `keys` (runs this upsert did not carry: another writer's),
        as (position, 1, payload) in their stored order.

        `keys` were read after this transaction wrote the session row, which no other writer can
        write (nor, so, its runs) before this transaction ends: they are all such runs.
        """
        if not keys:
            return []
        Run = models.run
        query = select(Run.run_key, Run.position, Run.payload).where(Run.session_id == session_id)
        if len(keys) <= _CHUNK:
            query = query.where(Run.run_key.in_(keys))
        return [
            (position, 1, payload)
            for key, position, payload in connection.execute(query.order_by(*_run_order(Run)))
            if key in keys
        ]

    def _assemble(self, row: Any, runs: list[Any], seen_from: int | None = None) -> AnySession:
        """The session of a `row` and its `runs`, handed out from position `seen_from` on (None: all)."""
        record = self._row_record(row)
        join_runs(self.mode, record, runs)
        return self._from_record(record, view=View(stored_version(record), seen_from))

    def _row_record(self, row: Any) -> dict[str, Any]:
        """A session row (selected from the session table) as a dict by column name."""
        return dict(row._mapping)

    def _filtered(
        self, user_id: str | None, entity_id: str | None, *, ids_only: bool, limit: int | None = None
    ) -> tuple[Select[Any], dict[str, Any]]:
        """The session rows (or ids) of the user and entity given, newest first, at most `limit`
        (`_sessions_statement`), and the values to bind."""
        check_ids(user_id=user_id, entity_id=entity_id)
        stmt = _sessions_statement(
            self.spec,
            self._hooks,
            ids_only=ids_only,
            by_user=user_id is not None,
            by_entity=entity_id is not None,
            limited=limit is not None,
        )
        params = self._filter_params(user_id, entity_id)
        if limit is not None:
            params["limit"] = limit
        return stmt, params

    def _remembered_runs(
        self, row: Any, runs_limit: int | None = None
    ) -> tuple[list[Any], int | None] | None:
        """The session's runs (its last `runs_limit`) copied from what this process last wrote,
        where the session `row` as read says they are what is stored (`KnownRuns.is_all_stored`),
        with the position the runs handed out start from (None: all); None where they have to be
        fetched."""
        known = KNOWN_RUNS.get(self._known_key(row.session_id))
        if known is None or not known.is_all_stored(row.incarnation):
            return None
        first = 0 if runs_limit is None else max(0, len(known.runs) - runs_limit)
        seen_from = known.stored[known.keys[first - 1]][1] + 1 if first else None
        return copy_runs(known.runs[first:]), seen_from

    def _filter_params(self, user_id: str | None, entity_id: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if user_id is not None:
            params.update(self._hooks.bind("user_id", user_id))
        if entity_id is not None:
            params.update(self._hooks.bind("entity_id", entity_id))
        return params

    def _run(
        self,
        action: str,
        work: Callable[[Connection], T],
        *,
        write: bool = False,
        repeatable: bool = True,
        one_statement: bool = False,
    ) -> T:
        """`work` done in one transaction, errors translated, tried again where that is safe.

        Tried again (up to _MAX_ATTEMPTS, with a growing pause): a transaction the database rolled
        back (dialect hooks' `is_transient_error`), or whose connection broke before its commit
        was sent, since either left nothing behind; one whose connection broke during its commit
        only if `repeatable` (running it twice leaves what running it once does). Never tried again:
        what another try would meet again, such as a timeout or a value over the database's limits
        (raised as the dialect hooks' `explained` and `oversized` say).
        """
        with self._translated(action):
            for attempt in range(1, _MAX_ATTEMPTS + 1):
                committing = False
                try:
                    with self.db_engine.connect() as connection:
                        if one_statement and self._hooks.autocommit_one_statement:
                            # one SELECT is consistent on its own: no BEGIN and COMMIT round trips
                            connection.execution_options(isolation_level="AUTOCOMMIT")
                            return work(connection)
                        with connection.begin():
                            if write:
                                self._hooks.begin_write(connection)
                            result = work(connection)
                            committing = True  # leaving the block commits
                    return result
                except _Raced:
                    pass
                except DBAPIError as raised:
                    exc = failed_statement(raised)
                    rolled_back = self._hooks.is_transient_error(exc)  # also when raised by the commit
                    lost = not rolled_back and self._hooks.is_connection_error(exc)
                    oversized = self._hooks.oversized(exc, self.db_engine) if lost and write else None
                    if oversized is not None:  # the server dropped the connection for that: no retry
                        raise PayloadTooLargeError(
                            f"{action} in {self.spec.qualified_name}: {oversized}; nothing was written"
                        ) from exc
                    if lost and committing and not repeatable:
                        raise StorageConnectionError(
                            f"{action} in {self.spec.qualified_name}: the connection broke during the "
                            f"commit, so whether it was written is unknown (it is not tried again, "
                            f"re-read the session): {exc.orig}"
                        ) from exc
                    if attempt == _MAX_ATTEMPTS or not (lost or rolled_back):
                        raise
                pause(attempt, base=0.05, cap=1.0)
            raise StorageError(f"{action} in {self.spec.qualified_name}: another writer kept winning")

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """The one boundary where driver errors become ours, with the cause chained; on an engine of
        one shared connection, also where threads take turns (`_one_connection`)."""
        where = f"{action} in {self.spec.qualified_name}"
        try:
            with _one_connection(self.db_engine):
                yield
        except StorageError:
            raise
        except DBAPIError as raised:
            exc = failed_statement(raised)
            explained = self._hooks.explained(exc)  # a timeout, a value over a limit: by code
            if explained is not None:
                error_class, meaning = explained
                raise error_class(f"{where}: {meaning}: {exc.orig}") from exc
            if self._hooks.is_connection_error(exc):
                raise StorageConnectionError(f"{where}: database unreachable: {exc.orig}") from exc
            raise StorageError(f"{where}: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"{where}: {exc}") from exc
        except pydantic.ValidationError as exc:
            raise StorageError(
                f"{where}: a stored session is not a valid {self.session_type.__name__}: {exc}"
            ) from exc

    def _is_ready(self) -> bool:
        """Whether the current mode's table was checked (or made) ready by this storage."""
        return self.spec in self._ready

    def _forget(self, spec: TableSpec) -> None:
        with self._ready_lock:
            self._ready.discard(spec)

    def _ensure_ready(self, spec: TableSpec) -> None:
        """Make sure `spec`'s table exists at head and has the mode's columns; once per storage and mode."""
        if spec in self._ready:
            return
        # An async storage's operation runs on the event loop's thread, where a thread lock held
        # across a database wait would block the loop; there the upgrade's database lock serializes.
        lock = contextlib.nullcontext() if in_async_operation() else self._ready_lock
        with lock, self._translated("checking the schema"):
            if spec in self._ready:
                return
            with self.db_engine.connect() as connection:
                state = migrations.table_state(connection, spec)
            head = migrations.head_revision()
            adopting = state.exists and state.revision is None  # made by agno: taken over on first use
            if not state.exists or adopting or (state.revision != head and self.auto_upgrade_schema):
                if adopting and not self.auto_upgrade_schema:
                    _LOG.warning(
                        "%s has no version recorded (agno made it): adopting it in place, up to revision "
                        "%s; every row is kept and its runs move to %s_runs, where agno's own storage "
                        "classes no longer see them (hand it back with alembic downgrade 0001)",
                        spec.qualified_name,
                        head,
                        spec.table_name,
                    )
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
