"""Runs: where a session keeps them, and how a run is told apart from every other run.

agno 1.x keeps a session's runs inside it (`memory["runs"]`, `runs` for workflow_v2) and rewrites
all of them after every run. Backends that store runs on their own take them out of the encoded
record with `split_runs`, key each with `run_keys`, and put them back with `join_runs`.

A run's key is its `run_id`, or the `run_id` of its nested `response` (agno's older memory
class), or, for a run with no id at all, its content digest and how many identical runs precede
it. Keys are unique within a session: a run_id that repeats gets its position as a suffix, so two
different runs are never merged into one and a repeated run reads back as often as it was written.

Which runs an upsert removes, on every backend: each stored run records the session version
whose upsert last wrote it. A stored run the upsert does not carry is removed when its writer saw
it (`View.saw`: written at or before the version the writer read, and among the runs it was
handed); a run the writer never saw (another writer's, written since) is kept. A carried run
without id whose key names a stored run written since the writer read is another writer's
identical run: it takes the next free occurrence (`fresh_content_keys`), so both are kept (a
writer that never read matches such runs by content, so writing the same session twice stores
it once).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from typing import Any

from agno_orm._versions import View, written_since
from agno_orm.sessions import Mode

__all__ = [
    "MAX_RUN_KEY_LENGTH",
    "carried_positions",
    "fresh_content_keys",
    "join_runs",
    "merge_runs",
    "run_digest",
    "run_digest_and_size",
    "run_keys",
    "runs_path",
    "split_runs",
]

MAX_RUN_KEY_LENGTH = 255


def split_runs(mode: Mode, record: dict[str, Any]) -> list[Any] | None:
    """Take the runs out of an encoded record, in place; None when the session holds no run list.

    What stays behind is an empty list, which marks that the session had a run list.
    """
    if mode == "workflow_v2":
        runs = record.get("runs")
        if isinstance(runs, list):
            record["runs"] = []
            return runs
        return None
    memory = record.get("memory")
    if isinstance(memory, dict) and isinstance(memory.get("runs"), list):
        record["memory"] = {**memory, "runs": []}
        runs_in_memory: list[Any] = memory["runs"]
        return runs_in_memory
    return None


def join_runs(mode: Mode, record: dict[str, Any], runs: list[Any]) -> None:
    """Put stored runs back where agno reads them, in place. No runs: the record stays as it is."""
    if not runs:
        return
    if mode == "workflow_v2":
        record["runs"] = runs
        return
    memory = record.get("memory")
    if memory is not None and not isinstance(memory, dict):
        return  # no session's memory: the record is refused when validated, runs or not
    record["memory"] = {**(memory or {}), "runs": runs}


def runs_path(mode: Mode) -> tuple[str, int]:
    """Where a session of `mode` keeps its runs, as the codec names a value there and counts its
    depth: (path of the run list, depth of a run), for encoding runs apart from their session."""
    return ("runs", 1) if mode == "workflow_v2" else ("memory['runs']", 2)


def run_digest(run: Any) -> str:
    """A digest of the run's content: equal for equal JSON values, whatever their key order."""
    return run_digest_and_size(run)[0]


def run_digest_and_size(run: Any) -> tuple[str, int]:
    """`run_digest` of an encoded run, and the bytes of its compact JSON text (what
    `Storage._check_size` counts; key order does not change the length)."""
    canonical = json.dumps(run, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.blake2b(canonical, digest_size=16).hexdigest(), len(canonical)


def run_keys(runs: list[Any], digests: list[str], *, known: Sequence[str] = ()) -> list[str]:
    """One key per run, unique within the list, stable as runs are appended.

    `known`: the keys of the first len(known) runs, as an earlier call returned them for runs
    equal to those (a key depends only on its run and the runs before it); they are not computed again.
    """
    if len(runs) != len(digests) or len(known) > len(runs):
        raise ValueError("run_keys: one digest per run, and no more known keys than runs")
    keys: list[str] = list(known)
    taken: set[str] = set(keys)
    occurrences: dict[str, int] | None = None  # counted from the known keys when first needed
    for position in range(len(keys), len(runs)):
        run, digest = runs[position], digests[position]
        declared = _declared_run_id(run)
        if declared is None:
            if occurrences is None:
                occurrences = _content_key_counts(keys)
            seen = occurrences.get(digest, 0)
            occurrences[digest] = seen + 1
            key = f"c:{digest}:{seen}"
        else:
            key = f"id:{declared}"
            if len(key) > MAX_RUN_KEY_LENGTH - 12:
                key = "idh:" + hashlib.blake2b(declared.encode(), digest_size=16).hexdigest()
            if key in taken:
                key = f"{key}#{position}"
        taken.add(key)
        keys.append(key)
    return keys


def _content_key_counts(keys: list[str]) -> dict[str, int]:
    """How many runs keyed by content (`c:<digest>:<seen>`) each digest has among `keys` (ids are
    keyed "id:..." or "idh:...")."""
    counts: dict[str, int] = {}
    for key in keys:
        if key.startswith("c:"):
            digest = key[2 : key.rindex(":")]
            counts[digest] = counts.get(digest, 0) + 1
    return counts


def carried_positions(keys: list[str], stored: dict[str, int]) -> list[int]:
    """The positions of the runs an upsert carries (their `keys`, in order), given the stored runs'
    positions by key. A writer may carry only the last runs (it read with runs_limit): its runs
    are placed from where its first stored run is; a writer that carries no stored run adds its
    runs after every stored one."""
    shift = next((stored[key] - index for index, key in enumerate(keys) if key in stored), None)
    if shift is None:
        shift = max(stored.values(), default=-1) + 1
    return [index + shift for index in range(len(keys))]


def fresh_content_keys(keys: list[str], unseen: Collection[str], taken: Collection[str]) -> list[str]:
    """`keys`, each content key (a run without id) naming a stored run its writer never saw
    (`unseen`) replaced by its digest's next occurrence free in `keys` and `taken` (the stored
    keys): two writers appending the same run without id keep both."""
    if not unseen:
        return keys
    fresh = list(keys)
    used = {*keys, *taken}
    for index, key in enumerate(keys):
        if key.startswith("c:") and key in unseen:
            stem, _, seen = key.rpartition(":")
            occurrence = int(seen) + 1
            while f"{stem}:{occurrence}" in used:
                occurrence += 1
            fresh[index] = f"{stem}:{occurrence}"
            used.add(fresh[index])
    return fresh


def merge_runs(
    stored: list[Any], stored_versions: list[int], carried: list[Any], view: View, version: int
) -> tuple[list[Any], list[int], bool]:
    """The runs a session holds after the upsert of session `version` carrying `carried` over
    `stored` (written at `stored_versions`), by a writer that saw `view`, as the SQL backends'
    runs table does it, for documents: every carried run in its order, placed as
    `carried_positions` says, and every stored run it does not carry that the writer never saw
    (see the module's docstring), at its stored position; at one position the carried run first.

    Returns the runs, the version that last wrote each (a carried run unchanged keeps its own),
    and whether a run written since the writer's view was kept.
    """
    carried_digests = [run_digest(run) for run in carried]
    stored_digests = [run_digest(run) for run in stored]
    stored_keys = run_keys(stored, stored_digests)
    stored_written = zip(stored_keys, stored_versions, strict=True)
    unseen = {key for key, written in stored_written if written_since(view, written)}
    carried_keys = fresh_content_keys(run_keys(carried, carried_digests), unseen, stored_keys)
    index_of = {key: i for i, key in enumerate(stored_keys)}
    positions = carried_positions(carried_keys, index_of)
    taken = set(carried_keys)
    ours = [
        (
            position,
            0,
            run,
            stored_versions[index_of[key]]
            if key in index_of and stored_digests[index_of[key]] == digest
            else version,
        )
        for position, run, key, digest in zip(positions, carried, carried_keys, carried_digests, strict=True)
    ]
    kept = [
        (i, 1, run, written)
        for i, (key, run, written) in enumerate(zip(stored_keys, stored, stored_versions, strict=True))
        if key not in taken and not view.saw(written, i, key)
    ]
    ordered = sorted([*ours, *kept], key=lambda t: t[:2])
    kept_since = any(written > view.version for _, _, _, written in kept)
    return [run for _, _, run, _ in ordered], [written for _, _, _, written in ordered], kept_since


def _declared_run_id(run: Any) -> str | None:
    if not isinstance(run, dict):
        return None
    for holder in (run, run.get("response")):
        if isinstance(holder, dict):
            run_id = holder.get("run_id")
            if isinstance(run_id, str) and run_id:
                return run_id
    return None
