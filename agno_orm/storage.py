"""`Storage`: the one repository interface every backend implements (agno 1.8.4's contract)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from agno_orm import codec
from agno_orm._agno import agno_asdict_session_classes, agno_session_classes
from agno_orm._versions import (
    ABSENT,
    UNSEEN,
    OnConflict,
    SeenVersions,
    View,
    check_on_conflict,
    stored_version,
)
from agno_orm.errors import (
    InvalidInputError,
    InvalidSessionError,
    PayloadTooLargeError,
    SessionConflictError,
    StorageError,
)
from agno_orm.runs import join_runs, run_digest, run_keys, split_runs
from agno_orm.sessions import (
    ENTITY_FIELD,
    MAX_SESSION_ID_LENGTH,
    MODES,
    SESSION_TYPES,
    AnySession,
    Mode,
    Session,
    SessionPage,
    SessionSummary,
    SessionTypes,
)

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "Storage"]

_LOG = logging.getLogger("agno_orm")

DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
"""Largest session accepted by default, as compact JSON text: 8 MiB, some two thousand times a
session of three short runs, and below what every backend's server takes in one write (MongoDB's
16 MiB documents, MariaDB's 16 MB packets). `max_payload_bytes` sets another limit (None: none)."""


class Storage(ABC):
    """Where agent, team and workflow sessions live between runs.

    `mode` selects the session type and may be reassigned at any time (agno's Agent, Team and
    Workflow set it on every run). Methods answer "not found" with None or an empty list and
    raise a `StorageError` for every failure; listings are ordered newest `created_at` first.

    `session_types` chooses the classes of the sessions returned (by read, upsert and the
    listings): "pydantic" ours (`AgentSession`...), "agno" agno's own session dataclasses, which
    agno checks with isinstance (MissingDependencyError without the `agno` extra), "auto" (the
    default) agno's when the `agno` package can be imported, else ours. Both have the same fields
    and `to_dict()`.

    Concurrent writers. A stored session has a version, one more on every upsert. An upsert
    writes the runs it carries (new ones added, changed ones replaced, matched by run_id, see
    `agno_orm.runs`), removes the stored runs its writer saw and no longer carries, and keeps
    those it never saw (written by another writer since it read): a truncated history stays
    truncated, and two writers who read the same version and each add a run leave both runs
    stored, on every backend. For the session's other fields, `on_conflict` chooses:
    "overwrite" (the default, agno's behaviour) lets the last writer win; "raise" makes `upsert`
    raise SessionConflictError, writing nothing, when the stored version is not the one this
    writer read, for callers that re-read, re-apply and retry. What a writer saw (`View`: the
    version, and the first run handed out) is taken from the session passed in if it is one of
    ours returned by a storage (`upsert` updates it on that object), else from what this storage
    last returned for that session id to the same thread and asyncio task (sessions passed as
    agno dataclasses or dicts; a storage remembers the last 10,000 ids so). A session this writer
    never saw counts as read absent: its upsert removes no run, and in "raise" mode it may only
    create the session. Each backend makes the check and the write one atomic
    step (a conditional UPDATE, WATCH/MULTI, a conditional replace or put, a file lock).

    Failures. Every failure is raised as a `StorageError` with the driver's exception chained,
    never answered with None or an empty list. Operations a retry cannot repeat wrongly (reads,
    listings, and writes that never reached their commit) are retried a few times on a lost
    connection or a transaction the database rolled back (deadlock, busy); `StorageConnectionError`
    is raised when the retries are spent. Sessions larger than `max_payload_bytes` as JSON text
    (default DEFAULT_MAX_PAYLOAD_BYTES, None for no limit) are refused with PayloadTooLargeError
    before anything is written.
    """

    def __init__(
        self,
        mode: Mode | None = "agent",
        *,
        session_types: SessionTypes = "auto",
        on_conflict: OnConflict = "overwrite",
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self.mode = mode  # the setter accepts None
        self.session_types = session_types
        self.on_conflict: OnConflict = check_on_conflict(on_conflict)
        if max_payload_bytes is not None and (
            not isinstance(max_payload_bytes, int)
            or isinstance(max_payload_bytes, bool)
            or max_payload_bytes < 1
        ):
            raise InvalidInputError(
                f"max_payload_bytes must be None or an int >= 1; got {max_payload_bytes!r}"
            )
        self.max_payload_bytes = max_payload_bytes
        self._seen_versions = SeenVersions()

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, value: Mode | None) -> None:
        if value is None:
            value = "agent"
        if value not in MODES:
            raise InvalidInputError(f"unknown mode {value!r}; expected one of {', '.join(MODES)}")
        self._mode: Mode = value

    @property
    def session_types(self) -> SessionTypes:
        return self._session_types

    @session_types.setter
    def session_types(self, value: SessionTypes) -> None:
        self._agno_classes = agno_session_classes(value)
        self._session_types: SessionTypes = value

    @property
    def session_type(self) -> type[Session]:
        """Our session class of the current mode: what upsert validates against."""
        return SESSION_TYPES[self.mode]

    @abstractmethod
    def create(self) -> None:
        """Create the table, collection or directory of the current mode if it is missing."""

    @abstractmethod
    def read(
        self, session_id: str, user_id: str | None = None, *, runs_limit: int | None = None
    ) -> AnySession | None:
        """The session with this id (and this user, when given), or None if there is none.

        A given `user_id` always filters, "" too (agno drops a falsy one): a session of another
        user is never returned. Raises InvalidInputError for an id no session can have.

        `runs_limit=N` returns only its last N runs (`memory["runs"]`, or `runs` for workflow_v2).
        """

    @abstractmethod
    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> list[str]:
        """Ids of the sessions matching the filters, newest first."""

    @abstractmethod
    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> list[AnySession]:
        """Sessions matching the filters, newest first. `entity_id` is the agent, team or workflow id."""

    @abstractmethod
    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> list[AnySession]:
        """The `limit` newest sessions matching the filters; `limit=None` returns all of them."""

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
        """One page of session summaries (no history), newest `created_at` first.

        Filters: user, entity (agent/team/workflow id), `since <= created_at < until` (epoch
        seconds). Ties in created_at are ordered by session_id, so pages never skip or repeat a
        session; pass the page's `next_cursor` to get the next one.

        This generic version reads every matching session; backends override it with one that
        reads a page through an index.
        """
        check_page_limit(limit)
        check_created_range(since, until)
        after = decode_cursor(cursor)
        summaries = [
            summary
            for summary in map(self._summary, self.get_all_sessions(user_id, entity_id))
            if in_range(summary.created_at, since, until) and (after is None or sort_key(summary) < after)
        ]
        summaries.sort(key=sort_key, reverse=True)
        return make_page(summaries[: limit + 1], limit)

    @abstractmethod
    def upsert(self, session: Any) -> AnySession:
        """Insert or replace the session by its id and return it as stored.

        Accepts a session of the current mode, a mapping of its fields, or an object with a
        `to_dict()` (agno's session dataclasses). Raises InvalidSessionError, with nothing
        written, when it cannot be stored.
        """

    @abstractmethod
    def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        """Delete the session with this id (and this user, when given); no-op for None or a missing id."""

    @abstractmethod
    def drop(self) -> None:
        """Remove the current mode's table, collection or files and everything in them."""

    @abstractmethod
    def upgrade_schema(self) -> None:
        """Bring the current mode's schema up to date."""

    # Shared by every backend: input is checked and encoded here, once.

    def _validated(self, session: Any) -> Session:
        """`session` as an instance of the current mode's session class, or InvalidSessionError."""
        expected = self.session_type
        if isinstance(session, Session):
            if not isinstance(session, expected):
                raise InvalidSessionError(
                    f"this storage is in {self.mode} mode and stores {expected.__name__}; "
                    f"got {type(session).__name__}"
                )
            # Revalidate: values set without assignment (in place, or via __dict__) were never checked.
            data: Any = dict(session)
        elif isinstance(session, Mapping):
            data = session
        elif _is_agno_asdict_session(session):
            # What its to_dict (dataclasses.asdict) returns, without asdict's deep copy of the whole
            # history: validation and the codec copy what they keep and change nothing they read.
            data = {field.name: getattr(session, field.name) for field in dataclasses.fields(session)}
        elif callable(getattr(session, "to_dict", None)):
            data = session.to_dict()
        elif hasattr(session, "session_id"):  # any object with the fields as attributes, as agno reads them
            data = {name: getattr(session, name) for name in expected.model_fields if hasattr(session, name)}
        else:
            raise InvalidSessionError(
                f"cannot store a {type(session).__name__}: it has no session_id (a {expected.__name__} "
                f"has the fields {', '.join(expected.model_fields)}); pass a {expected.__name__}, a "
                "mapping or an object with those attributes"
            )
        try:
            validated = expected.model_validate(data)
        except pydantic.ValidationError as exc:
            raise InvalidSessionError(f"invalid {expected.__name__}: {exc}") from exc
        for name in ("created_at", "updated_at"):
            if not is_int64(getattr(validated, name), none=True):
                raise InvalidSessionError(
                    f"invalid {expected.__name__}: {name} must be an int from -2**63 to 2**63 - 1 "
                    f"(epoch seconds, as every backend stores them); got {getattr(validated, name)!r}"
                )
        return validated

    def _summary(self, session: AnySession) -> SessionSummary:
        runs = runs_of(session, self.mode)
        return SessionSummary(
            session_id=session.session_id,
            user_id=session.user_id,
            entity_id=getattr(session, ENTITY_FIELD[self.mode]),
            session_name=session_name(session.session_data),
            created_at=session.created_at,
            updated_at=session.updated_at,
            run_count=len(runs) if runs is not None else 0,
        )

    def _from_record(
        self, record: Mapping[str, Any], *, runs_limit: int | None = None, view: View | None = None
    ) -> AnySession:
        """The session a stored record (row, document, file) holds, as every backend returns it:
        validated as ours, with only its last `runs_limit` runs (all for None), then as the class
        `session_types` chose. Raises pydantic's ValidationError for a record that is no valid session.

        The caller is taken to have seen it (`View`): its version and, where only the last runs are
        handed out, from the position (index) of the first of them; `view` says otherwise.
        """
        seen_from = None
        if runs_limit is not None:
            record = dict(record)
            runs = split_runs(self.mode, record)
            if runs is not None:
                if runs_limit < len(runs):
                    seen_from = len(runs) - runs_limit
                join_runs(self.mode, record, runs[-runs_limit:] if runs_limit else [])
        session = self.session_type.from_dict(record)
        if session is None:
            raise StorageError(f"a stored {self.mode} session has no session_id: {dict(record)!r:.200}")
        if view is None:
            view = View(stored_version(record), seen_from)
        presented: AnySession = session
        if self._agno_classes is not None:
            presented, hidden = self._as_agno(session)
            if hidden:
                view = view._replace(hidden=view.hidden | hidden)
        session._stored_version = (session.session_id, view)
        self._seen_versions.saw(session.session_id, view)
        return presented

    def _as_agno(self, session: Session) -> tuple[AnySession, frozenset[str]]:
        """`session` as agno's class of the mode, and the keys of the runs left out of it.

        A stored workflow_v2 run agno's classes cannot take (agno stores a run it cannot serialise
        as `{"run_id", "status", "error"}`) is left out of what agno gets, with a warning naming
        it, so agno's workflow goes on; it stays stored (the writer never saw it, so its upsert
        keeps it) and is read as it is with session_types="pydantic".
        """
        assert self._agno_classes is not None
        agno_class = self._agno_classes[self.mode]
        if self.mode != "workflow_v2":
            # The fields as they are: agno's from_dict keeps what it is given (a deep copy of
            # the whole history would make every read and upsert cost more with it).
            return self._agno_built(
                agno_class, session, {n: getattr(session, n) for n in type(session).model_fields}
            )
        # Deep copies (to_dict): agno's workflow_v2 run classes consume (pop from) the dicts they get.
        try:
            return agno_class.from_dict(session.to_dict()), frozenset()
        except Exception:  # agno's from_dict raises whatever its run classes raise
            pass
        runs = session.to_dict()["runs"] or []
        refused = [i for i, run in enumerate(runs) if not _takes(agno_class, session.session_id, run)]
        fields = session.to_dict()
        fields["runs"] = [run for i, run in enumerate(fields["runs"] or []) if i not in refused]
        presented, _ = self._agno_built(agno_class, session, fields)
        keys = run_keys(runs, [run_digest(run) for run in runs])
        for i in refused:
            _LOG.warning(
                "stored workflow_v2 session %r: run %s cannot be returned as agno's %s; it is left out "
                "of what agno gets and stays stored (read it with session_types='pydantic')",
                session.session_id,
                runs[i].get("run_id", f"#{i}") if isinstance(runs[i], dict) else f"#{i}",
                agno_class.__name__,
            )
        return presented, frozenset(keys[i] for i in refused)

    def _agno_built(
        self, agno_class: Any, session: Session, fields: dict[str, Any]
    ) -> tuple[AnySession, frozenset[str]]:
        try:
            presented: AnySession = agno_class.from_dict(fields)
        except Exception as exc:  # agno's from_dict raises whatever its run classes raise
            raise StorageError(
                f"stored {self.mode} session {session.session_id!r} cannot be returned as agno's "
                f"{agno_class.__name__} ({exc}); pass session_types='pydantic' to read it as ours"
            ) from exc
        return presented, frozenset()

    def _record(self, session: Session) -> dict[str, Any]:
        """The session's fields as stored: JSON fields encoded by the codec, others as they are.

        Raises InvalidSessionError for text UTF-8 cannot carry, PayloadTooLargeError for a session
        over `max_payload_bytes`.
        """
        record = self._encoded_fields(dict(session), session.json_fields)
        self._check_size(record)
        return record

    @staticmethod
    def _encoded_fields(record: dict[str, Any], json_fields: tuple[str, ...]) -> dict[str, Any]:
        """`record` (a session's fields) with its JSON fields encoded by the codec and its text
        fields checked, in place; InvalidSessionError for what cannot be stored."""
        for name, value in record.items():
            if name in json_fields:
                record[name] = codec.encode(value, where=name)
            elif isinstance(value, str):
                codec.check_text(value, name)
        return record

    def _check_size(self, record: Mapping[str, Any], *, runs_sizes: Sequence[int] = ()) -> None:
        """Refuse a record whose JSON text exceeds `max_payload_bytes`: every backend's one size check.

        `runs_sizes`: the sizes (`runs.run_digest_and_size`) of the runs taken out of `record`
        (`runs.split_runs`), counted as if they were back in its run list.
        """
        if self.max_payload_bytes is None:
            return
        size = len(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
        if runs_sizes:  # "[]" becomes "[run,run,...]": the runs and a comma between two
            size += sum(runs_sizes) + len(runs_sizes) - 1
        if size > self.max_payload_bytes:
            raise PayloadTooLargeError(
                f"session {record['session_id']!r} is {size} bytes as JSON, over this storage's "
                f"max_payload_bytes={self.max_payload_bytes}; nothing was written"
            )

    # Versions (see the class docstring): what a writer read, checked where the backend writes.

    def _prepared(self, session: Any) -> tuple[dict[str, Any], View]:
        """The record `upsert` stores for `session` (see `_record`), and what its writer saw."""
        record = self._record(self._validated(session))
        return record, self._view_read(session, record["session_id"])

    def _view_read(self, session: Any, session_id: str) -> View:
        """What the writer of `session` saw of `session_id`: the session's own view when it is one
        of ours that a storage returned, else the one this storage last returned to this thread and
        task, else UNSEEN (the writer saw no session)."""
        if isinstance(session, Session) and session._stored_version is not None:
            read_id, view = session._stored_version
            if read_id == session_id:
                return view
        seen = self._seen_versions.last_view(session_id)
        return UNSEEN if seen is None else seen

    def _check_version(self, session_id: str, read: View, found: int) -> None:
        """In "raise" mode, refuse a write of a session whose stored version is not the one read."""
        expected = read.version
        if self.on_conflict == "raise" and expected != found:
            raise SessionConflictError(
                f"session {session_id!r} changed since it was read (version {expected} read, "
                f"{found} stored{'; 0 means none' if ABSENT in (expected, found) else ''}); "
                "nothing was written: read it again, re-apply the change and upsert it again",
                session_id=session_id,
                expected=expected,
                found=found,
            )

    def _upserted(
        self, source: Any, record: Mapping[str, Any], read: View, *, kept_since: bool
    ) -> AnySession:
        """The session `upsert` returns for the stored `record`, written by a writer that saw `read`;
        a session of ours passed in as `source` takes the new view too, so upserting it again is
        not a conflict.

        The writer has seen the stored version, but for the runs it was not handed: those before
        `read.seen_from`, and, where the upsert kept runs written since `read` (`kept_since`: its
        session lacks them), every run written since, whose removal then takes a read first.
        """
        view = read if kept_since else read._replace(version=stored_version(record))
        stored = self._from_record(record, view=view)
        if isinstance(source, Session):
            source._stored_version = (record["session_id"], view)
        return stored

    def _saw_absent(self, session_id: str) -> None:
        """Remember that this thread found no session `session_id` (read None, or deleted it)."""
        self._seen_versions.saw(session_id, ABSENT)


def _takes(agno_class: Any, session_id: str, run: Any) -> bool:
    """Whether agno's session class `agno_class` takes a session holding `run` alone."""
    try:
        agno_class.from_dict({"session_id": session_id, "runs": [copy.deepcopy(run)]})
    except Exception:  # whatever agno's run classes raise
        return False
    return True


def _is_agno_asdict_session(session: Any) -> bool:
    """Whether `session` is one of agno's session dataclasses whose to_dict is `dataclasses.asdict`
    (not overridden), holding no dataclass in a field (asdict would turn that into a dict)."""
    classes = agno_asdict_session_classes()
    return (
        isinstance(session, classes)
        and any(type(session).to_dict is agno_class.to_dict for agno_class in classes)
        and not any(dataclasses.is_dataclass(getattr(session, f.name)) for f in dataclasses.fields(session))
    )


def runs_of(session: AnySession, mode: Mode) -> list[Any] | None:
    """The run list of a session of `mode`, where that mode keeps it; None when it has none."""
    if mode == "workflow_v2":
        runs = getattr(session, "runs", None)
    else:
        memory = getattr(session, "memory", None)
        runs = memory.get("runs") if isinstance(memory, dict) else None
    return runs if isinstance(runs, list) else None


def session_name(session_data: Any) -> str | None:
    name = session_data.get("session_name") if isinstance(session_data, dict) else None
    return name if isinstance(name, str) else None


def sort_key(summary: SessionSummary) -> tuple[int, str]:
    """The listing order, newest first when reversed: (created_at, session_id)."""
    return (summary.created_at or 0, summary.session_id)


def in_range(created_at: int | None, since: int | None, until: int | None) -> bool:
    value = created_at or 0
    return (since is None or value >= since) and (until is None or value < until)


def encode_cursor(key: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode("ascii")


def decode_cursor(cursor: str | None) -> tuple[int, str] | None:
    """The (created_at, session_id) a page ended at; InvalidInputError for anything we did not issue."""
    if cursor is None:
        return None
    if not isinstance(cursor, str):
        raise InvalidInputError(
            f"cursor must be a str from list_sessions or None; got {type(cursor).__name__}"
        )
    try:
        created_at, session_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        if not is_int64(created_at) or not isinstance(session_id, str):
            raise ValueError("not (created_at, session_id)")
        check_session_id(session_id)
    except (ValueError, TypeError, UnicodeError) as exc:  # InvalidInputError is a ValueError
        raise InvalidInputError(f"not a cursor from list_sessions: {cursor!r}") from exc
    return created_at, session_id


def make_page(summaries: list[SessionSummary], limit: int) -> SessionPage:
    """The page of the first `limit` summaries, given up to limit + 1 (one more says there is a next page)."""
    items = summaries[:limit]
    more = len(summaries) > limit
    return SessionPage(items=items, next_cursor=encode_cursor(sort_key(items[-1])) if more else None)


INT64_MAX = 2**63 - 1
"""The largest count or epoch second every backend takes (SQL BIGINT, BSON's int64, bound parameters)."""


def is_int64(value: Any, *, none: bool = False) -> bool:
    """Whether `value` is an int (not a bool) that fits in 64 bits signed, or None where `none`."""
    if value is None:
        return none
    return isinstance(value, int) and not isinstance(value, bool) and -INT64_MAX - 1 <= value <= INT64_MAX


def check_page_limit(limit: int) -> None:
    if not is_int64(limit) or limit < 1:
        raise InvalidInputError(f"limit must be an int from 1 to 2**63 - 1; got {limit!r}")


def check_limit(limit: int | None) -> None:
    """Refuse a limit that is not None or a non-negative int (bool is not a count) of 64 bits."""
    if not is_int64(limit, none=True) or (limit is not None and limit < 0):
        raise InvalidInputError(f"limit must be None or an int from 0 to 2**63 - 1; got {limit!r}")


def check_created_range(since: Any, until: Any) -> None:
    """Refuse `list_sessions`' `since`/`until` unless each is None or epoch seconds (an int of 64 bits),
    before any I/O: every backend then filters alike (a MySQL server reads 'abc' as 0)."""
    for name, value in (("since", since), ("until", until)):
        if not is_int64(value, none=True):
            raise InvalidInputError(f"{name} must be None or an int (epoch seconds, 64 bits); got {value!r}")


def check_session_id(session_id: Any) -> None:
    """Refuse an id no session could have been stored under (InvalidInputError), before any I/O."""
    if not isinstance(session_id, str):
        raise InvalidInputError(f"session_id must be a str; got {type(session_id).__name__}")
    if not session_id or len(session_id) > MAX_SESSION_ID_LENGTH or "\0" in session_id:
        raise InvalidInputError(
            f"no session can have the id {session_id[:80]!r}{'...' if len(session_id) > 80 else ''}: "
            f"a session_id is 1 to {MAX_SESSION_ID_LENGTH} characters, without NUL"
        )
    codec.check_text(session_id, "session_id")


def session_owner(session_id: str, stored_user_id: str | None, user_id: str | None, where: str) -> str | None:
    """The user a session stored for `stored_user_id` has after a write naming `user_id`.

    A session never changes hands: an upsert keeps the stored runs it does not carry, so a
    session given to another user would take its history along (the agent of a user whose
    `read(id, user_id=...)` found nothing must not make another user's session its own). A write
    naming another user is refused; one naming no user leaves the owner as is; a session stored
    without a user may be claimed.
    """
    if stored_user_id is None or user_id == stored_user_id:
        return user_id
    if user_id is None:
        return stored_user_id
    raise not_the_owner(session_id, where)


def not_the_owner(session_id: str, where: str) -> InvalidSessionError:
    """The error of a write refused by `session_owner`."""
    return InvalidSessionError(
        f"{where}: session {session_id!r} is stored for another user, and a session never "
        "changes hands (its history would go with it); nothing was written"
    )


def check_ids(**ids: Any) -> None:
    """Refuse a user or entity id filter that is neither None nor text (InvalidInputError)."""
    for name, value in ids.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInputError(f"{name} must be a str or None; got {type(value).__name__}")
        codec.check_text(value, name)
