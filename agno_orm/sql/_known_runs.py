"""The runs this process last wrote for a session, so that the next upsert of that session encodes
and digests only the runs that are new or changed.

agno hands over the whole session on every upsert. Encoding, digesting and measuring every run
of it again would make an upsert's time grow with the session's history even though only its
new runs are written. A `KnownRuns` entry holds, for one session of one table of one database,
private deep copies of the encoded runs the last successful upsert in this process carried, with
their keys, digests and JSON sizes. An upsert compares each incoming run with the known run at the
same index (`==`, in C); an equal run takes the known run's encoded value, digest, size and (for
an unchanged prefix) key, without being encoded again. Everything taken from an entry is a
function of the run's content alone, so an entry that another writer made out of date cannot
make an upsert write the wrong thing by itself.

Which runs are written is decided against the keys, digests and written versions of the stored
runs. An entry also holds those as its upsert left them, with the write token that upsert gave
the session row (a random id every upsert writes anew, keeping the one it replaced as the prior
token; revision 0006). The upsert writes the session row first, which locks it until the
commit; when the token it replaced is the entry's, no writer came between, and the entry's stored
runs are taken instead of being read back (the read grows with the history). Otherwise they are
read from the database in the upsert's transaction; an upsert that finds another number of runs
stored than the entry says (another writer added or deleted runs) does not trust the entry's keys
either and digests every run again.

A read uses an entry too: when the session row it reads carries the entry's token (no writer
since that upsert) and the entry's stored runs are the ones it carried (no other writer's run
kept beside them), the stored runs are the entry's, in its order. The read returns fresh dicts
and lists copied from them (`copy_runs`: strings and numbers, being immutable, are shared), so a
caller mutating what it read cannot reach the entry, and the next upsert's `==` finds equal
strings by identity instead of comparing their characters.

Known limitation: `==` cannot see a change between values that Python finds equal and JSON does
not, in a run already written: True -> 1, 1 -> 1.0, 0.0 -> -0.0, 1 -> Decimal("1"), or an
object whose `__eq__` says it equals anything. Such a change of an already-written run is not
written (nor refused by the codec) while this process knows the run; a new or otherwise changed
run is encoded and checked as always.

A token is never written twice, so a database set back behind the process's back (restored
from a backup, or a failover to a replica that lost the last commits) and written to again, even
up to the same version, carries another token: the process reads and writes it from the database.

Entries are copies the caller cannot reach: the runs a caller passed in or got back are never
the ones kept here (for a run equal to its known copy, an upsert hands back the caller's own
run), so mutating a session after an upsert cannot change what the next upsert compares with.
An entry is only stored after its upsert committed, and dropped when an upsert fails, when the
session is deleted and when the table is dropped or upgraded. The cache is bounded (least
recently used first out): 256 sessions and 256 MiB of run JSON text per process.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

__all__ = ["KNOWN_RUNS", "KnownRuns", "KnownRunsCache", "copy_runs"]

_JSON_COPIER: TypeAdapter[Any] = TypeAdapter(Any)


def copy_runs(runs: list[Any]) -> list[Any]:
    """Deep copies of encoded runs (JSON values): new dicts and lists all the way down."""
    copied: list[Any] = _JSON_COPIER.dump_python(runs)
    return copied


@dataclass(frozen=True)
class KnownRuns:
    """What an upsert that committed carried for one session; never mutated once made."""

    runs: list[Any]
    """Private deep copies of the encoded runs, in the order the upsert carried them."""
    keys: list[str]
    digests: list[str]
    sizes: list[int]
    """Bytes of each run's compact JSON text (`runs.run_digest_and_size`)."""
    stored: dict[str, tuple[str, int, int]]
    """Every run the session had stored once that upsert committed: (digest, position, written
    version) by key."""
    token: str | None = None
    """The write token that upsert gave the session row (revision 0006)."""
    version: int = 0
    """The session version that upsert wrote: no stored run was written later."""
    nbytes: int = field(init=False)
    """The bytes of run JSON text the entry holds (`sizes` summed)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "nbytes", sum(self.sizes))

    def is_stored_as(self, prior_token: str | None) -> bool:
        """Whether `stored` is still what the session holds, told by its row as an upsert just
        wrote it: the token that upsert replaced is this entry's (no writer came between that
        upsert and this one, which holds the row until it commits)."""
        return self.token is not None and prior_token == self.token

    def is_all_stored(self, token: str | None) -> bool:
        """Whether these runs are all the session holds, told by its row as read: the token this
        entry's upsert left, and no run stored beside the ones it carried."""
        return self.token is not None and token == self.token and len(self.stored) == len(self.runs)


class KnownRunsCache:
    """A per-process, thread-safe LRU map from a session (database, table, session_id) to its
    `KnownRuns`, bounded by entries and by the bytes of run JSON text they hold."""

    def __init__(self, max_sessions: int = 256, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, KnownRuns] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> KnownRuns | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, entry: KnownRuns) -> None:
        """Keep `entry` for `key` (replacing any), then drop the least recently used over the bounds.
        An entry larger than the whole budget is not kept."""
        nbytes = entry.nbytes
        with self._lock:
            self._pop(key)
            if nbytes > self.max_bytes:
                return
            self._entries[key] = entry
            self._bytes += nbytes
            while len(self._entries) > self.max_sessions or self._bytes > self.max_bytes:
                self._pop(next(iter(self._entries)))

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._pop(key)

    def forget_where(self, prefix: tuple[Hashable, ...]) -> None:
        """Drop every entry whose key (a tuple) starts with `prefix`: all sessions of one table."""
        size = len(prefix)
        with self._lock:
            for key in [k for k in self._entries if isinstance(k, tuple) and k[:size] == prefix]:
                self._pop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held it at the fork), no entries."""
        self._lock = threading.Lock()
        self._entries = OrderedDict()
        self._bytes = 0

    def _pop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.nbytes


KNOWN_RUNS = KnownRunsCache()
"""The process's one cache, shared by every SqlStorage (keys name the database and table)."""

if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=KNOWN_RUNS._after_fork)
