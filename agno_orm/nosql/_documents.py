"""What every non-SQL backend shares: a session as a stored document, its mode, filters and order.

A document is the session's record (`Storage._record`: JSON fields already encoded by the codec)
plus `mode`, the mode it was stored in. agno 1.8.4 keys these stores by session_id alone (one
file, key, document or item per id), and so do we: one store may hold sessions of several modes,
and a storage sees only its current mode's. An id already used by a session of another mode is
refused (InvalidSessionError), never overwritten.

Documents written by agno itself carry no `mode`; theirs is inferred from the fields only that
mode's sessions have (`LEGACY_MODE_KEYS`, first match wins, none means agent), so agno's data is
read in place, by the right mode.

An upsert stores `next_document`: the record with created_at kept, the stored runs it does not
carry kept where its writer never saw them (as the SQL backends' runs table does: see
`agno_orm.runs`), and the next version; each backend makes the read of the stored document and
the write of the next one a single atomic step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from agno_orm._versions import VERSION_KEY, View, stored_version
from agno_orm.errors import InvalidSessionError, StorageError
from agno_orm.runs import join_runs, merge_runs, split_runs
from agno_orm.sessions import ENTITY_FIELD, AnySession, Mode
from agno_orm.storage import Storage, session_owner

__all__ = [
    "LEGACY_MODE_KEYS",
    "MODE_KEY",
    "RUN_VERSIONS_KEY",
    "VERSION_KEY",
    "Document",
    "check_replaceable",
    "document_mode",
    "in_listing",
    "is_readable",
    "legacy_rule",
    "newest",
    "newest_first",
    "next_document",
    "order_key",
    "stamped",
    "to_session",
]

Document = dict[str, Any]

MODE_KEY = "mode"
"""The document field naming the mode a session was stored in (no session field has this name)."""

RUN_VERSIONS_KEY = "run_versions"
"""The document field holding, for each stored run in order, the session version whose upsert last
wrote it (`runs.merge_runs`); agno's documents have none: their runs count as written at version 1."""

LEGACY_MODE_KEYS: tuple[tuple[Mode, tuple[str, ...]], ...] = (
    ("agent", ("agent_id", "agent_data")),
    ("team", ("team_id", "team_data")),
    ("workflow_v2", ("workflow_name", "runs")),
    ("workflow", ("workflow_id", "workflow_data")),
)
"""For a document without `mode` (agno's): the first mode having one of these keys is its mode."""


def document_mode(document: Mapping[str, Any]) -> str:
    """The mode `document` was stored in: its `mode` field, else inferred as LEGACY_MODE_KEYS says."""
    marked = document.get(MODE_KEY)
    if marked is not None:
        return str(marked)
    for mode, keys in LEGACY_MODE_KEYS:
        if any(key in document for key in keys):
            return mode
    return "agent"


def legacy_rule(mode: Mode) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """`document_mode` as data for query languages: (own keys, earlier modes' keys, takes the rest).

    A document without `mode` belongs to `mode` when it has one of the own keys and none of the
    earlier keys, or, if the flag is set (agent), when it has none of any mode's keys.
    """
    earlier: tuple[str, ...] = ()
    for candidate, keys in LEGACY_MODE_KEYS:
        if candidate == mode:
            return keys, earlier, mode == "agent"
        earlier += keys
    raise AssertionError(f"no legacy keys for mode {mode!r}")  # every mode has an entry


def stamped(record: Mapping[str, Any], existing: Mapping[str, Any] | None, mode: Mode, now: int) -> Document:
    """The document to store for `record`: created_at kept from `existing` (else the session's own,
    else now), updated_at now, and the mode."""
    document = dict(record)
    kept = existing.get("created_at") if existing is not None else None
    document["created_at"] = kept if kept is not None else (record.get("created_at") or now)
    document["updated_at"] = now
    document[MODE_KEY] = mode
    return document


def next_document(
    record: Mapping[str, Any],
    existing: Mapping[str, Any] | None,
    mode: Mode,
    now: int,
    *,
    where: str,
    view: View,
) -> tuple[Document, bool]:
    """The document an upsert of `record` stores over `existing` (None: there is none), by a
    writer that saw `view` of it: `stamped`, at the next version, with the runs `runs.merge_runs`
    leaves (the carried ones, and the stored ones the writer never saw) and the version that last
    wrote each (`RUN_VERSIONS_KEY`). A record carrying no run list keeps the stored runs. The
    session keeps its user (`session_owner`: a record of another user is refused).

    Returns the document, and whether it kept runs written since the writer's view."""
    document = stamped(record, existing, mode, now)
    if existing is not None:
        document["user_id"] = session_owner(
            record["session_id"], existing.get("user_id"), record.get("user_id"), where
        )
    version = stored_version(existing) + 1
    stored_runs = (split_runs(mode, dict(existing)) if existing is not None else None) or []
    stored_versions = existing.get(RUN_VERSIONS_KEY) if existing is not None else None
    if not (isinstance(stored_versions, list) and len(stored_versions) == len(stored_runs)):
        stored_versions = [stored_version(existing)] * len(stored_runs)  # written by agno, or before
    carried = split_runs(mode, document)
    kept_since = False
    if carried is None:
        runs, versions = stored_runs, stored_versions
    else:
        runs, versions, kept_since = merge_runs(stored_runs, stored_versions, carried, view, version)
    join_runs(mode, document, runs)
    document[RUN_VERSIONS_KEY] = versions
    document[VERSION_KEY] = version
    return document, kept_since


def check_replaceable(
    existing: Mapping[str, Any] | None, record: Mapping[str, Any], mode: Mode, where: str
) -> None:
    """Refuse to write `record` over a stored session of another mode (or another id)."""
    if existing is None:
        return
    session_id = record["session_id"]
    if existing.get("session_id") != session_id:
        raise InvalidSessionError(
            f"{where}: session_id {session_id!r} maps to the place of session "
            f"{existing.get('session_id')!r}; nothing was written"
        )
    stored_mode = document_mode(existing)
    if stored_mode != mode:
        raise InvalidSessionError(
            f"{where}: session_id {session_id!r} is taken by a {stored_mode} session; this store keeps "
            f"one session per id, so a {mode} session cannot use it (nothing was written)"
        )


def is_readable(document: Mapping[str, Any], session_id: str, mode: Mode, user_id: str | None) -> bool:
    """Whether `read(session_id, user_id)` in `mode` returns this document (any user for user_id None)."""
    return (
        document.get("session_id") == session_id
        and document_mode(document) == mode
        and (user_id is None or document.get("user_id") == user_id)
    )


def in_listing(document: Mapping[str, Any], mode: Mode, user_id: str | None, entity_id: str | None) -> bool:
    """Whether a listing in `mode` with these filters (each applied unless None) includes `document`."""
    return (
        document_mode(document) == mode
        and (user_id is None or document.get("user_id") == user_id)
        and (entity_id is None or document.get(ENTITY_FIELD[mode]) == entity_id)
    )


def order_key(document: Mapping[str, Any]) -> tuple[int, str]:
    """Sort key of the listing order, used reversed: newest created_at first, then session_id desc."""
    return (document.get("created_at") or 0, str(document["session_id"]))


def newest_first(documents: Iterable[Document], limit: int | None = None) -> list[Document]:
    """`documents` in listing order, the first `limit` of them (all for None)."""
    ordered = sorted(documents, key=order_key, reverse=True)
    return ordered if limit is None else ordered[:limit]


def newest(documents: Iterable[Document], limit: int | None) -> list[Document]:
    """The first `limit` documents in listing order, from documents arriving newest created_at first
    with ties in any order (an index ordered by time alone). Reads past the limit only through the
    documents sharing the last kept created_at, so a paginated source is read no further."""
    if limit == 0:
        return []
    taken: list[Document] = []
    for document in documents:
        if limit is not None and len(taken) >= limit:
            boundary = taken[-1].get("created_at") or 0
            if (document.get("created_at") or 0) < boundary:
                break
        taken.append(document)
    return newest_first(taken, limit)


def to_session(
    storage: Storage, document: Mapping[str, Any], where: str, *, runs_limit: int | None = None
) -> AnySession:
    """The session a stored document holds (with its last `runs_limit` runs, all for None), as the
    storage returns sessions; StorageError if the stored data is not a valid session."""
    try:
        return storage._from_record(document, runs_limit=runs_limit)
    except pydantic.ValidationError as exc:
        raise StorageError(
            f"{where}: stored session {document.get('session_id')!r} is not a valid "
            f"{storage.session_type.__name__}: {exc}"
        ) from exc
