"""Session versions: which version of a session a writer read, so a write can tell it changed since.

Every stored session carries a version: 1 when first written (and for sessions agno or an older
agno_orm wrote, which carry none), one more on every upsert; 0 stands for "no session". What a
writer saw of a session is a `View`: the version it read and, when it was handed only the last
runs (`read(..., runs_limit=N)`), the position of the first of them. A storage learns it from the
session itself when it is one of ours (`Session` keeps it privately), else from `SeenVersions`:
the view the storage last returned for that id to the same thread (and the same asyncio task),
which is how sessions handed in as agno dataclasses or dicts are matched to what was read.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, get_args

from agno_orm.errors import InvalidInputError

__all__ = [
    "ABSENT",
    "MAX_REMEMBERED",
    "ON_CONFLICT_CHOICES",
    "UNSEEN",
    "VERSION_KEY",
    "OnConflict",
    "SeenVersions",
    "View",
    "check_on_conflict",
    "stored_version",
    "written_since",
]

OnConflict = Literal["overwrite", "raise"]
ON_CONFLICT_CHOICES: tuple[OnConflict, ...] = get_args(OnConflict)

VERSION_KEY = "version"
"""The column, document field or item attribute holding a stored session's version."""

ABSENT = 0
"""The version of a session that is not stored."""

MAX_REMEMBERED = 10_000
"""Versions a storage remembers (per thread and task, together); the least recently seen go first."""


class View(NamedTuple):
    """What a writer saw of a stored session: the `version` it read, `seen_from`, the position of
    the first run it was handed (None: every run), and `hidden`, the keys of runs left out of what
    it was handed (runs agno's classes cannot take)."""

    version: int
    seen_from: int | None = None
    hidden: frozenset[str] = frozenset()

    def saw(self, written_version: int, position: int, key: str) -> bool:
        """Whether this writer saw the stored run `key` at `position` that the upsert of session
        version `written_version` wrote: it existed as it is in the version read, among the runs
        handed out."""
        return (
            written_version <= self.version
            and (self.seen_from is None or position >= self.seen_from)
            and key not in self.hidden
        )


def written_since(view: View, written_version: int) -> bool:
    """Whether the upsert of session version `written_version` came after the read `view` names;
    a writer that never read tells nothing (False)."""
    return view.version != ABSENT and written_version > view.version


UNSEEN = View(ABSENT)
"""The view of a writer that never read the session: it saw no run."""


def check_on_conflict(value: Any) -> OnConflict:
    if value not in ON_CONFLICT_CHOICES:
        raise InvalidInputError(f"on_conflict must be one of {', '.join(ON_CONFLICT_CHOICES)}; got {value!r}")
    return value  # type: ignore[no-any-return]


def stored_version(record: Mapping[str, Any] | None) -> int:
    """The version of a stored record: ABSENT for None, 1 for a record written without one."""
    if record is None:
        return ABSENT
    version = record.get(VERSION_KEY)
    return version if isinstance(version, int) and not isinstance(version, bool) and version > 0 else 1


class SeenVersions:
    """The view of each session id last returned to a thread (and asyncio task); thread-safe.

    Shared by a storage's copies (agno deep-copies storages per request): entries are kept apart
    by thread and task, not by copy. Bounded: the least recently seen entries are forgotten.
    """

    def __init__(self) -> None:
        self._versions: OrderedDict[tuple[int, int, str], View] = OrderedDict()
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> SeenVersions:
        return self

    def saw(self, session_id: str, version: int | View) -> None:
        key = _reader(session_id)
        view = version if isinstance(version, View) else View(version)
        with self._lock:
            self._versions[key] = view
            self._versions.move_to_end(key)
            if len(self._versions) > MAX_REMEMBERED:
                self._versions.popitem(last=False)

    def last_seen(self, session_id: str) -> int | None:
        view = self.last_view(session_id)
        return None if view is None else view.version

    def last_view(self, session_id: str) -> View | None:
        with self._lock:
            return self._versions.get(_reader(session_id))


_TASK_NUMBERS: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = weakref.WeakKeyDictionary()
_NEXT_TASK_NUMBER = itertools.count(1)
_TASK_NUMBERS_LOCK = threading.Lock()


def _reader(session_id: str) -> tuple[int, int, str]:
    """The key of what the current thread and task saw of `session_id`.

    A task is told apart by a number of its own, never reused: `id()` of a finished task is
    soon another task's, which would hand the new task the versions the old one read.
    """
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop runs in this thread
        task = None
    if task is None:
        return threading.get_ident(), 0, session_id
    with _TASK_NUMBERS_LOCK:
        number = _TASK_NUMBERS.get(task)
        if number is None:
            number = _TASK_NUMBERS[task] = next(_NEXT_TASK_NUMBER)
    return threading.get_ident(), number, session_id
