"""Runs: where a session keeps them, and how a run is told apart from every other run.

agno 1.x keeps a session's runs inside it (`memory["runs"]`, `runs` for workflow_v2) and rewrites
all of them after every run. Backends that store runs on their own take them out of the encoded
record with `split_runs`, key each with `run_keys`, and put them back with `join_runs`.

A run's key is its `run_id`, or the `run_id` of its nested `response` (agno's older memory
class), or, for a run with no id at all, its content digest and how many identical runs precede
it. Keys are unique within a session: a run_id that repeats gets its position as a suffix, so two
different runs are never merged into one and a repeated run reads back as often as it was written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from agno_orm.sessions import Mode

__all__ = [
    "MAX_RUN_KEY_LENGTH",
    "carried_positions",
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


def merge_runs(stored: list[Any], carried: list[Any]) -> list[Any]:
    """The runs a session holds after an upsert carrying `carried` over `stored`: every carried run,
    in its order, placed as `carried_positions` says, and every stored run it does not carry (by
    key) at its stored position; at one position the carried run comes first. What the SQL
    backends' runs table does, for documents."""
    carried_keys = run_keys(carried, [run_digest(run) for run in carried])
    stored_keys = run_keys(stored, [run_digest(run) for run in stored])
    positions = carried_positions(carried_keys, {key: i for i, key in enumerate(stored_keys)})
    taken = set(carried_keys)
    kept = [
        (i, 1, run) for i, (key, run) in enumerate(zip(stored_keys, stored, strict=True)) if key not in taken
    ]
    ordered = sorted(
        [*((p, 0, run) for p, run in zip(positions, carried, strict=True)), *kept], key=lambda t: t[:2]
    )
    return [run for _, _, run in ordered]


def _declared_run_id(run: Any) -> str | None:
    if not isinstance(run, dict):
        return None
    for holder in (run, run.get("response")):
        if isinstance(holder, dict):
            run_id = holder.get("run_id")
            if isinstance(run_id, str) and run_id:
                return run_id
    return None
