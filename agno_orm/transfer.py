"""Moving sessions between storages: copy, export to JSON Lines, import, and verification.

A copy lists the source's session ids, then reads the sessions one by one (a few at a time, on
threads) and upserts each into the target storage of its mode. It keeps no state of its own, so
it can be stopped at any moment (Ctrl-C, SIGTERM, a crash) and run again: a session the target
already holds with the same content digest is skipped, every other one is written (upserts
replace by session_id, so nothing is ever duplicated). Each upsert is one transaction or one
atomic file replacement, so an interrupted copy leaves whole sessions only.

The content digest of a session is the SHA-256 of its canonical JSON (sorted keys, no
whitespace) without `updated_at`, which every write sets; a set of sessions has the digest of
its sorted (mode, session_id, digest) lines. Verification reads every copied session back from
the target once all are written and compares counts and digests with what the copy read from
the source (re-reading the source would report a live source's new writes as copy failures).

Tables agno 1.8.4 wrote (no version recorded) are read as they are, not upgraded: a copy must
leave its source unchanged, and upgrading would move the runs out of agno's `memory` column.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shlex
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, TypeVar

from sqlalchemy import RowMapping, and_, or_, select

from agno_orm.errors import StorageError
from agno_orm.locations import Location, LocationError, StorageSet, missing_reason
from agno_orm.sessions import ENTITY_FIELD, MODES, SESSION_TYPES, AnySession, Mode, Session, SessionPage
from agno_orm.sql import SqlStorage, migrations
from agno_orm.sql.models import session_table
from agno_orm.storage import Storage, check_created_range, check_page_limit, decode_cursor, make_page

__all__ = [
    "CopyStats",
    "JsonLinesSource",
    "Progress",
    "SessionSource",
    "StorageSource",
    "Verification",
    "copy_sessions",
    "defer_signal",
    "export_sessions",
    "open_source",
    "session_digest",
    "set_digest",
    "verify",
]


class Progress(Protocol):
    """What a copy reports its progress to (the command line draws a bar)."""

    def advance(self, count: int = 1) -> None: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[str, int], Progress]
"""Makes a Progress for a phase (its label) of a known number of sessions."""


class _NoProgress:
    def advance(self, count: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def no_progress(label: str, total: int) -> Progress:
    return _NoProgress()


# -- digests ------------------------------------------------------------------------------------


def session_digest(session: Session, *, with_created_at: bool = True) -> str:
    """SHA-256 of the session's canonical JSON without updated_at (and created_at, if told)."""
    data = session.to_dict()
    data.pop("updated_at", None)
    if not with_created_at:
        data.pop("created_at", None)
    canonical = json.dumps(
        {"mode": session.mode, **data}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def set_digest(entries: Iterable[tuple[str, str, str]]) -> str:
    """SHA-256 of a set of sessions given as (mode, session_id, digest); order does not matter."""
    digest = hashlib.sha256()
    for mode, session_id, session_hash in sorted(entries):
        digest.update(f"{mode}\t{session_id}\t{session_hash}\n".encode())
    return digest.hexdigest()


# -- sources ------------------------------------------------------------------------------------


class SessionSource(Protocol):
    """Sessions to copy or verify, by mode: their ids and each session by id."""

    display: str

    def modes(self) -> list[Mode]: ...

    def ids(self, mode: Mode) -> list[str]:
        """The ids of the mode's sessions, newest first."""
        ...

    def read(self, mode: Mode, session_id: str) -> Session | None: ...


class Reader(Protocol):
    """What a source reads one mode's sessions through: a Storage, or an AgnoTable."""

    def get_all_session_ids(self) -> list[str]: ...

    def read(self, session_id: str) -> AnySession | None: ...

    def list_sessions(
        self,
        *,
        user_id: str | None = None,
        entity_id: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SessionPage: ...


class StorageSource:
    """The sessions of a StorageSet's storages (see `open_source`)."""

    def __init__(self, storage_set: StorageSet, readers: Mapping[Mode, Reader]) -> None:
        self.storage_set = storage_set
        self.display = storage_set.location.display
        self._readers = dict(readers)

    def modes(self) -> list[Mode]:
        return list(self._readers)

    def ids(self, mode: Mode) -> list[str]:
        return self._readers[mode].get_all_session_ids()

    def read(self, mode: Mode, session_id: str) -> Session | None:
        return ours(self._readers[mode].read(session_id))

    def reader(self, mode: Mode) -> Reader:
        return self._readers[mode]


def ours(session: AnySession | None) -> Session | None:
    """A session as read from a storage opened by agno_orm.locations (which asks for our classes)."""
    if session is not None and not isinstance(session, Session):
        raise StorageError(f"expected an agno_orm session, got a {type(session).__name__}")
    return session


def open_source(storage_set: StorageSet) -> StorageSource:
    """The storages of `storage_set` as a source, checked to exist; never created or upgraded.

    A store the location names explicitly must exist (LocationError otherwise); of the default
    set, the tables that exist are used, at least one. A SQL table agno 1.8.4 wrote is read as it
    is; a SQL table of an older agno_orm must be upgraded first (LocationError says how).
    """
    from agno_orm.nosql import RedisStorage

    readers: dict[Mode, Reader] = {}
    reasons: list[str] = []
    display = storage_set.location.display
    for mode, storage in storage_set.storages.items():
        with _prefixed(display):
            reason = missing_reason(storage)
        if reason is not None:
            if storage_set.explicit:
                raise LocationError(f"{storage_set.location.display}: {reason}")
            reasons.append(reason)
            continue
        if isinstance(storage, SqlStorage):
            with _prefixed(display):
                readers[mode] = _sql_reader(storage, storage_set)
            continue
        if isinstance(storage, RedisStorage):
            # Sessions agno wrote are listed only once indexed; indexing adds index keys, nothing else.
            with _prefixed(display):
                storage.upgrade_schema()
        readers[mode] = storage
    if not readers:
        raise LocationError(f"{display}: {'; '.join(dict.fromkeys(reasons))}")
    return StorageSource(storage_set, readers)


@contextlib.contextmanager
def _prefixed(prefix: str) -> Iterator[None]:
    """Prefix a StorageError's message (its type stays): which location it is about."""
    try:
        yield
    except StorageError as exc:
        exc.args = (f"{prefix}: {exc}", *exc.args[1:])
        raise


def _sql_reader(storage: SqlStorage, storage_set: StorageSet) -> Reader:
    spec = storage.spec
    with storage._translated("checking the schema"), storage.db_engine.connect() as connection:
        state = migrations.table_state(connection, spec)
    head = migrations.head_revision()
    if state.revision is None:
        return AgnoTable(storage, state.columns)
    if state.revision != head and state.revision in migrations.known_revisions():
        location = storage_set.location
        table = {
            "table": spec.table_name,
            "mode": spec.mode,
            **({"schema": spec.schema} if spec.schema else {}),
        }
        url, hidden = Location(location.kind, location.address, table, location.display).url_with_options()
        password = " (with your password in place of ***)" if hidden else ""
        raise LocationError(
            f"{spec.qualified_name} is at revision {state.revision}, behind {head}; upgrade it first: "
            f"agno-orm upgrade --db-url {shlex.quote(url)}{password}"
        )
    return storage  # at head, or ahead (which the storage refuses with its own message)


class AgnoTable:
    """A table agno 1.8.4 created (no version recorded), read in place: each row is a whole session,
    runs included (in `memory`, or `runs` for workflow_v2)."""

    def __init__(self, storage: SqlStorage, columns: frozenset[str]) -> None:
        if "session_id" not in columns:
            raise LocationError(f"{storage.spec.qualified_name} has no session_id column: no session table")
        self.storage = storage
        self._table = session_table(storage.spec)
        self._columns = [c for c in self._table.columns if c.name in columns]

    def get_all_session_ids(self) -> list[str]:
        t = self._table
        stmt = select(t.c.session_id).order_by(t.c.created_at.desc(), t.c.session_id.desc())
        with self.storage._translated("listing sessions"), self.storage.db_engine.connect() as connection:
            return list(connection.scalars(stmt))

    def read(self, session_id: str) -> Session | None:
        stmt = select(*self._columns).where(self._table.c.session_id == session_id)
        with self.storage._translated("reading a session"), self.storage.db_engine.connect() as connection:
            row = connection.execute(stmt).mappings().one_or_none()
        return None if row is None else self._session(row)

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
        """`Storage.list_sessions` on agno's table, whose rows hold the runs (read for the page only)."""
        check_page_limit(limit)
        check_created_range(since, until)
        after = decode_cursor(cursor)
        t = self._table
        stmt = select(*self._columns)
        if user_id is not None:
            stmt = stmt.where(t.c.user_id == user_id)
        if entity_id is not None:
            stmt = stmt.where(t.c[ENTITY_FIELD[self.storage.mode]] == entity_id)
        if since is not None:
            stmt = stmt.where(t.c.created_at >= since)
        if until is not None:
            stmt = stmt.where(t.c.created_at < until)
        if after is not None:
            created_at, session_id = after
            stmt = stmt.where(
                or_(
                    t.c.created_at < created_at,
                    and_(t.c.created_at == created_at, t.c.session_id < session_id),
                )
            )
        stmt = stmt.order_by(t.c.created_at.desc(), t.c.session_id.desc()).limit(limit + 1)
        with self.storage._translated("listing sessions"), self.storage.db_engine.connect() as connection:
            rows = list(connection.execute(stmt).mappings())
        return make_page([self.storage._summary(self._session(row)) for row in rows], limit)

    def _session(self, row: RowMapping) -> Session:
        try:
            session = ours(self.storage._from_record(dict(row)))
        except ValueError as exc:  # pydantic's ValidationError
            where = self.storage.spec.qualified_name
            raise StorageError(f"{where}: session {row['session_id']!r} is no valid session: {exc}") from exc
        assert session is not None
        return session


class JsonLinesSource:
    """Sessions in a JSON Lines file as `export_sessions` writes them: one session per line, its
    fields plus `mode`. Indexed by byte offset, so the file is never held in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = str(path)
        self._offsets: dict[Mode, dict[str, int]] = {}
        try:
            self._file: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise LocationError(f"cannot read {path}: {exc.strerror}") from exc
        offset = 0
        for number, line in enumerate(self._file, start=1):
            if line.strip():
                mode, session = self._parse(line, number)
                # later lines win, as later upserts of the same id do
                self._offsets.setdefault(mode, {}).pop(session.session_id, None)
                self._offsets[mode][session.session_id] = offset
            offset += len(line)

    def close(self) -> None:
        self._file.close()

    def modes(self) -> list[Mode]:
        return [mode for mode in MODES if mode in self._offsets]

    def ids(self, mode: Mode) -> list[str]:
        return list(self._offsets.get(mode, {}))

    def read(self, mode: Mode, session_id: str) -> Session | None:
        offset = self._offsets.get(mode, {}).get(session_id)
        if offset is None:
            return None
        self._file.seek(offset)
        return self._parse(self._file.readline(), None)[1]

    def _parse(self, line: bytes, number: int | None) -> tuple[Mode, Session]:
        where = f"{self.path}" + (f" line {number}" if number is not None else "")
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise LocationError(f"{where}: not JSON: {exc}") from exc
        if not isinstance(value, dict) or value.get("mode") not in MODES:
            raise LocationError(f"{where}: not a session: a JSON object with mode one of {', '.join(MODES)}")
        mode: Mode = value.pop("mode")
        session_type = SESSION_TYPES[mode]
        unknown = set(value) - set(session_type.model_fields)
        if unknown:
            raise LocationError(
                f"{where}: {session_type.__name__} has no field(s) {', '.join(sorted(unknown))}"
            )
        try:
            session = session_type.from_dict(value)
        except ValueError as exc:
            raise LocationError(f"{where}: not a valid {session_type.__name__}: {exc}") from exc
        if session is None:
            raise LocationError(f"{where}: the session has no session_id")
        return mode, session


# -- copy ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """A source session as the copy read it: the digest the target's copy must have."""

    digest: str
    with_created_at: bool
    """False when the source has no created_at: the target sets its own, so it is not compared."""

    @classmethod
    def of(cls, session: Session) -> Expected:
        with_created_at = session.created_at is not None
        return cls(session_digest(session, with_created_at=with_created_at), with_created_at)

    def matches(self, stored: Session) -> bool:
        return session_digest(stored, with_created_at=self.with_created_at) == self.digest


@dataclass
class CopyStats:
    """What a copy did, and what it read from the source (what the target must now hold)."""

    total: int = 0
    written: int = 0
    skipped: int = 0
    """Already in the target with the same content (a resumed copy skips what it did before)."""
    vanished: int = 0
    """Listed in the source, then deleted from it before it was read."""
    expected: dict[Mode, dict[str, Expected]] = field(default_factory=dict)


def plan(source: SessionSource, targets: Mapping[Mode, object]) -> dict[Mode, list[str]]:
    """The source's session ids by mode (modes without sessions left out).

    Raises LocationError when the target has no storage for a mode the source has sessions of.
    """
    ids = {mode: source.ids(mode) for mode in source.modes()}
    ids = {mode: found for mode, found in ids.items() if found}
    uncovered = [mode for mode in ids if mode not in targets]
    if uncovered:
        counts = ", ".join(f"{len(ids[m])} {m}" for m in uncovered)
        raise LocationError(
            f"the source holds {counts} session(s), and the target names no storage for that mode; "
            "name every mode in the target (no mode= or table=) or that mode's (mode=..., table=...)"
        )
    return ids


def copy_sessions(
    source: SessionSource,
    targets: Mapping[Mode, Storage],
    *,
    progress: ProgressFactory = no_progress,
    ids: Mapping[Mode, list[str]] | None = None,
    jobs: int = 1,
) -> CopyStats:
    """Copy every source session into the target storage of its mode, skipping identical ones.

    `ids` are the source's ids by mode, as `plan` returns them (listed when not given); `jobs`
    sessions are copied at a time (storages are thread-safe). Raises StorageError, naming the
    session, when one cannot be read or written; sessions being copied then are finished first.
    """
    ids = plan(source, targets) if ids is None else ids
    stats = CopyStats(total=sum(map(len, ids.values())))
    present = {mode: set(targets[mode].get_all_session_ids()) for mode in ids}

    def copy_one(mode: Mode, session_id: str) -> tuple[Mode, str, Expected | None, bool]:
        with naming(mode, session_id):
            session = source.read(mode, session_id)
            if session is None:
                return mode, session_id, None, False
            expected = Expected.of(session)
            return (
                mode,
                session_id,
                expected,
                _write(targets[mode], session, expected, session_id in present[mode]),
            )

    def done(result: tuple[Mode, str, Expected | None, bool]) -> None:
        mode, session_id, expected, written = result
        if expected is None:
            stats.vanished += 1
        else:
            stats.expected.setdefault(mode, {})[session_id] = expected
            stats.written += written
            stats.skipped += not written

    tasks = (functools.partial(copy_one, mode, session_id) for mode in ids for session_id in ids[mode])
    _run(tasks, done, jobs=jobs, bar=progress("copy", stats.total))
    return stats


T = TypeVar("T")


class _Deferral(threading.local):
    depth = 0
    signum: int | None = None


_DEFERRAL = _Deferral()


def defer_signal(signum: int) -> bool:
    """For a signal handler: whether signal `signum` must wait, because the main thread is in a
    step that must not be cut short (`_uninterrupted`); it is raised again when that step ends."""
    if _DEFERRAL.depth:
        _DEFERRAL.signum = signum
        return True
    return False


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """A step a signal handler (see `defer_signal`) does not cut short: copying one session and
    counting it, so that the count said when stopped is what the target holds."""
    _DEFERRAL.depth += 1
    try:
        yield
    finally:
        _DEFERRAL.depth -= 1
        if not _DEFERRAL.depth and _DEFERRAL.signum is not None:
            signum, _DEFERRAL.signum = _DEFERRAL.signum, None
            signal.raise_signal(signum)


def _run(tasks: Iterable[Callable[[], T]], done: Callable[[T], None], *, jobs: int, bar: Progress) -> None:
    """Run `tasks`, `jobs` at a time, calling `done` with each result in this thread.

    On an error or an interrupt (KeyboardInterrupt, or whatever a signal handler raises) no task
    is started any more, those running are finished and counted, and the exception is raised.
    """
    try:
        if jobs <= 1:
            for task in tasks:
                with _uninterrupted():
                    done(task())
                    bar.advance()
            return
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="agno-orm") as pool:
            pending: set[Future[T]] = set()
            try:
                for task in tasks:
                    with _uninterrupted():  # submitted and remembered together
                        pending.add(pool.submit(task))
                    if len(pending) >= 4 * jobs:  # a bounded window: ids are many, futures need not be
                        _collect(pending, done, bar, FIRST_COMPLETED)
                _collect(pending, done, bar, ALL_COMPLETED)
            except BaseException:
                with _uninterrupted():
                    for future in pending:
                        future.cancel()
                    # Count the tasks that were running: they finish before the pool shuts down.
                    for future in wait(pending).done:
                        if not future.cancelled() and future.exception() is None:
                            done(future.result())
                            bar.advance()
                raise
    finally:
        bar.close()


def _collect(pending: set[Future[T]], done: Callable[[T], None], bar: Progress, when: str) -> None:
    """Count the futures of `pending` that finished (`when`: the first, or all), taking them out of it."""
    finished, _ = wait(pending, return_when=when)
    for future in finished:
        with _uninterrupted():  # counted and taken out together: a signal never splits the two
            pending.discard(future)
            done(future.result())
            bar.advance()


def _write(target: Storage, session: Session, expected: Expected, present: bool) -> bool:
    """Upsert `session` unless the target holds it already; whether it was written.

    Its history replaces the stored one: the stored session was read first, so the upsert removes
    the stored runs the copy does not carry (a run written meanwhile by another writer stays)."""
    stored = ours(target.read(session.session_id)) if present else None
    if stored is not None:
        if expected.matches(stored):
            return False
        if expected.with_created_at and stored.created_at != session.created_at:
            # An upsert keeps the stored created_at, and the copy must carry the source's.
            target.delete_session(session.session_id)
    session._stored_version = None  # what was read of the source says nothing of the target
    target.upsert(session)
    return True


@contextlib.contextmanager
def naming(mode: Mode, session_id: str) -> Iterator[None]:
    """Say in a StorageError's message which session it is about (its type stays)."""
    with _prefixed(f"{mode} session {session_id!r}"):
        yield


# -- verification -------------------------------------------------------------------------------


@dataclass
class ModeCheck:
    """One mode's counts and checksums, source and target side by side."""

    mode: Mode
    source_count: int
    target_count: int
    """How many of the source's sessions the target holds."""
    source_digest: str
    target_digest: str
    differing: list[str]
    """Ids whose target session is missing or differs."""
    target_others: int
    """Sessions of this mode the target holds that the source does not."""

    @property
    def ok(self) -> bool:
        return not self.differing and self.source_digest == self.target_digest


@dataclass
class Verification:
    modes: list[ModeCheck]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.modes)

    @property
    def source_count(self) -> int:
        return sum(check.source_count for check in self.modes)


def verify(
    targets: Mapping[Mode, Storage],
    expected: Mapping[Mode, Mapping[str, Expected]],
    *,
    progress: ProgressFactory = no_progress,
    jobs: int = 1,
) -> Verification:
    """Read every copied session back from the target and compare it with what was read from the
    source: counts, each session's digest, and each mode's set digest.

    The source side is what the copy read (a source that changes meanwhile is not a failed copy);
    the target side is read anew, after every write.
    """
    actual: dict[Mode, dict[str, str | None]] = {mode: {} for mode in expected}

    def read_back(mode: Mode, session_id: str) -> tuple[Mode, str, str | None]:
        with naming(mode, session_id):
            stored = ours(targets[mode].read(session_id))
        with_created_at = expected[mode][session_id].with_created_at
        return (
            mode,
            session_id,
            None if stored is None else session_digest(stored, with_created_at=with_created_at),
        )

    def done(result: tuple[Mode, str, str | None]) -> None:
        mode, session_id, digest = result
        actual[mode][session_id] = digest

    tasks = (
        functools.partial(read_back, mode, session_id) for mode in expected for session_id in expected[mode]
    )
    _run(tasks, done, jobs=jobs, bar=progress("verify", sum(map(len, expected.values()))))
    checks = []
    for mode in sorted(expected, key=MODES.index):
        sessions = expected[mode]
        found = {session_id: digest for session_id, digest in actual[mode].items() if digest is not None}
        others = len(set(targets[mode].get_all_session_ids()) - set(sessions))
        checks.append(
            ModeCheck(
                mode=mode,
                source_count=len(sessions),
                target_count=len(found),
                source_digest=set_digest((mode, i, wanted.digest) for i, wanted in sessions.items()),
                target_digest=set_digest((mode, i, digest) for i, digest in found.items()),
                differing=sorted(i for i, wanted in sessions.items() if found.get(i) != wanted.digest),
                target_others=others,
            )
        )
    return Verification(checks)


# -- JSON Lines ---------------------------------------------------------------------------------


def export_line(session: Session) -> str:
    """One line of an export: the session's fields plus its mode, as compact JSON."""
    return json.dumps({"mode": session.mode, **session.to_dict()}, ensure_ascii=False, separators=(",", ":"))


def export_sessions(
    source: SessionSource,
    out: IO[str],
    *,
    progress: ProgressFactory = no_progress,
    ids: Mapping[Mode, list[str]] | None = None,
) -> list[tuple[str, str, str]]:
    """Write every source session to `out`, one JSON line each.

    Returns what was written as (mode, session_id, digest), for counts and `set_digest`.
    """
    ids = {mode: source.ids(mode) for mode in source.modes()} if ids is None else ids
    written: list[tuple[str, str, str]] = []
    bar = progress("export", sum(map(len, ids.values())))
    try:
        for mode, session_ids in ids.items():
            for session_id in session_ids:
                with naming(mode, session_id):
                    session = source.read(mode, session_id)
                if session is not None:
                    out.write(export_line(session) + "\n")
                    written.append((mode, session_id, session_digest(session)))
                bar.advance()
    finally:
        bar.close()
    return written


@contextlib.contextmanager
def replaced_atomically(path: Path) -> Iterator[IO[str]]:
    """A text file that replaces `path` only once the block completes: an interrupted export leaves
    no partial file that looks complete."""
    path = path.resolve()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
