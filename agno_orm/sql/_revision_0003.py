"""What revision 0003 needs of agno_orm, frozen as it shipped: never edit this module.

Revision 0003 moves each session's runs into `<table>_runs`, keyed and digested as the storage
keyed them then. agno_orm.runs may change how later writes key runs (that needs a new revision
to re-key stored ones); what 0003 does to a user's rows must not change with it. So this is a
copy of what it used, as it was: where a mode keeps its runs, their keys and digests, the
entity column of each mode, and the names 0003 gives its tables and indexes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

ENTITY_COLUMN = {
    "agent": "agent_id",
    "team": "team_id",
    "workflow": "workflow_id",
    "workflow_v2": "workflow_id",
}
_MAX_RUN_KEY_LENGTH = 255


def runs_holder(mode: str) -> str:
    """The session column holding the runs: `runs` in workflow_v2 mode, else `memory` (its "runs")."""
    return "runs" if mode == "workflow_v2" else "memory"


def split_runs(mode: str, held: Any) -> tuple[list[Any] | None, Any]:
    """The runs inside the holder column's value, and the value without them (an empty list left
    where they were); (None, held) when it holds no run list."""
    if mode == "workflow_v2":
        return (held, []) if isinstance(held, list) else (None, held)
    if isinstance(held, dict) and isinstance(held.get("runs"), list):
        return held["runs"], {**held, "runs": []}
    return None, held


def join_runs(mode: str, held: Any, runs: list[Any]) -> Any:
    """The holder column's value with `runs` put back where agno reads them."""
    if not runs:
        return held
    if mode == "workflow_v2":
        return runs
    if held is not None and not isinstance(held, dict):
        return held
    return {**(held or {}), "runs": runs}


def run_digest(run: Any) -> str:
    canonical = json.dumps(run, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def run_keys(runs: list[Any], digests: list[str]) -> list[str]:
    """One key per run, unique within the session: `id:<run_id>` (a long id hashed, `idh:`; a
    repeated id suffixed `#<position>`), or `c:<digest>:<identical runs before it>` without id."""
    keys: list[str] = []
    taken: set[str] = set()
    occurrences: dict[str, int] = {}
    for position, (run, digest) in enumerate(zip(runs, digests, strict=True)):
        declared = _declared_run_id(run)
        if declared is None:
            seen = occurrences.get(digest, 0)
            occurrences[digest] = seen + 1
            key = f"c:{digest}:{seen}"
        else:
            key = f"id:{declared}"
            if len(key) > _MAX_RUN_KEY_LENGTH - 12:
                key = "idh:" + hashlib.blake2b(declared.encode(), digest_size=16).hexdigest()
            if key in taken:
                key = f"{key}#{position}"
        taken.add(key)
        keys.append(key)
    return keys


def _declared_run_id(run: Any) -> str | None:
    if not isinstance(run, dict):
        return None
    for holder in (run, run.get("response")):
        if isinstance(holder, dict):
            run_id = holder.get("run_id")
            if isinstance(run_id, str) and run_id:
                return run_id
    return None


def agno_index_name(table_name: str, schema: str | None, column: str) -> str:
    """The name of agno's single-column indexes (SQLAlchemy's default for `index=True`)."""
    return f"ix_{schema}_{table_name}_{column}" if schema else f"ix_{table_name}_{column}"


def listing_indexes(table_name: str, entity_column: str) -> dict[str, list[str]]:
    return {
        f"{table_name}_by_user": ["user_id", "created_at", "session_id"],
        f"{table_name}_by_entity": [entity_column, "created_at", "session_id"],
        f"{table_name}_by_time": ["created_at", "session_id"],
    }


def runs_table_name(table_name: str) -> str:
    return f"{table_name}_runs"


def runs_position_index(table_name: str) -> str:
    return f"{table_name}_runs_pos"
