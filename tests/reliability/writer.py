"""A writer process: `python -m tests.reliability.writer RECIPE WRITER THREADS RUNS`.

Builds the storage of RECIPE (see recipes.py), prints "ready", waits for a line on stdin, then
runs THREADS threads that each add RUNS runs to session "shared" the way agno does (read the
session, append a run, upsert the whole session), and prints the run ids it wrote as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from agno_orm import AgentSession, Storage
from tests.reliability.recipes import build

SESSION_ID = "shared"


def add_runs(storage: Storage, writer: str, runs: int) -> list[str]:
    """Add `runs` runs to the shared session as agno's Agent does: read, append one, upsert all."""
    written = []
    for i in range(runs):
        session = storage.read(SESSION_ID)
        stored: list[Any] = list(session.memory["runs"]) if session is not None else []  # type: ignore[attr-defined]
        run_id = f"{writer}-{i}"
        storage.upsert(
            AgentSession(
                session_id=SESSION_ID, memory={"runs": [*stored, {"run_id": run_id, "content": "x" * 200}]}
            )
        )
        written.append(run_id)
    return written


def run_threads(storage: Storage, writer: str, threads: int, runs: int) -> list[str]:
    results: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            results[index] = add_runs(storage, f"{writer}-t{index}", runs)
        except BaseException as exc:  # reported by the caller, which fails the test
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return [run_id for result in results for run_id in result]


def main() -> None:
    recipe, writer, threads, runs = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    storage = build(recipe)
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps(run_threads(storage, writer, threads, runs)), flush=True)


if __name__ == "__main__":
    main()
