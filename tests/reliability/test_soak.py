"""Soak: many threads mixing reads, upserts, listings and deletes on one PostgreSQL database through
one storage, as a busy application does. Short in the test run; AGNO_ORM_SOAK_OPS=N runs N
operations per thread instead (e.g. 2000 for a long soak), AGNO_ORM_SOAK_THREADS=N that many threads.
Prints its figures (operations, errors, runs written and lost, time, the pool at the end)."""

from __future__ import annotations

import collections
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from agno_orm import AgentSession, PostgresStorage

pytestmark = pytest.mark.postgres

# More than the engine's pool holds (5, and 10 more in overflow): some threads wait for a connection
# another returns, and none fails for want of one.
THREADS = int(os.environ.get("AGNO_ORM_SOAK_THREADS", "20"))
OPERATIONS_PER_THREAD = int(os.environ.get("AGNO_ORM_SOAK_OPS", "30"))
SHARED_SESSIONS = 3


@pytest.fixture
def storage(postgres_url: str) -> Iterator[PostgresStorage]:
    storage = PostgresStorage(f"soak_{uuid.uuid4().hex[:12]}", db_url=postgres_url, session_types="pydantic")
    yield storage
    storage.drop()
    storage.db_engine.dispose()


class Soak:
    def __init__(self, storage: PostgresStorage) -> None:
        self.storage = storage
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: list[BaseException] = []
        self.written: dict[str, set[str]] = {f"shared-{i}": set() for i in range(SHARED_SESSIONS)}
        self.lock = threading.Lock()

    def add_run(self, rng: random.Random, worker: int, step: int) -> None:
        session_id = rng.choice(list(self.written))
        session = self.storage.read(session_id)
        runs: list[Any] = list(session.memory["runs"]) if session is not None else []  # type: ignore[attr-defined]
        run_id = f"w{worker}-{step}"
        runs.append(
            {"run_id": run_id, "messages": [{"role": "user", "content": "x" * rng.randint(10, 2000)}]}
        )
        owner = f"u{int(session_id.rsplit('-', 1)[1]) % 3}"  # a session has one user, whoever writes it
        self.storage.upsert(AgentSession(session_id=session_id, user_id=owner, memory={"runs": runs}))
        with self.lock:
            self.written[session_id].add(run_id)

    def scratch(self, worker: int, step: int) -> None:
        session_id = f"scratch-{worker}-{step}"
        self.storage.upsert(AgentSession(session_id=session_id, user_id=f"u{worker % 3}"))
        self.storage.delete_session(session_id, user_id=f"u{worker % 3}")
        assert self.storage.read(session_id) is None

    def worker(self, worker: int) -> None:
        rng = random.Random(worker)
        for step in range(OPERATIONS_PER_THREAD):
            kind = rng.choices(["upsert", "read", "list", "delete"], weights=[4, 3, 2, 1])[0]
            try:
                if kind == "upsert":
                    self.add_run(rng, worker, step)
                elif kind == "read":
                    self.storage.read(rng.choice(list(self.written)), runs_limit=rng.choice([None, 2]))
                elif kind == "list":
                    self.storage.list_sessions(user_id=f"u{rng.randint(0, 2)}", limit=5)
                    self.storage.get_recent_sessions(limit=2)
                else:
                    self.scratch(worker, step)
            except BaseException as exc:  # every error is a finding: counted and shown
                with self.lock:
                    self.errors.append(exc)
            with self.lock:
                self.counts[kind] += 1


def test_threads_mixing_every_operation_see_no_error_and_lose_no_run(
    storage: PostgresStorage, capsys: pytest.CaptureFixture[str]
) -> None:
    soak = Soak(storage)
    busiest = [0]  # the most connections checked out at once

    def checked_out(*_: Any) -> None:
        busiest[0] = max(busiest[0], storage.db_engine.pool.checkedout())  # type: ignore[attr-defined]

    event.listen(storage.db_engine, "checkout", checked_out)
    workers = [threading.Thread(target=soak.worker, args=(i,)) for i in range(THREADS)]
    started = time.monotonic()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.monotonic() - started
    pool = storage.db_engine.pool
    lost = 0
    for session_id, written in soak.written.items():
        session = storage.read(session_id)
        stored = {run["run_id"] for run in session.memory["runs"]} if session is not None else set()  # type: ignore[attr-defined]
        lost += len(written - stored)
    runs_written = sum(map(len, soak.written.values()))
    with capsys.disabled():
        print(
            f"\nsoak: {THREADS} threads, {sum(soak.counts.values())} operations ({dict(soak.counts)}), "
            f"errors {len(soak.errors)}, runs written {runs_written}, runs lost {lost}, "
            f"{elapsed:.1f} s, at most {busiest[0]} connections at once, "
            f"pool at the end: {pool.status()}"  # type: ignore[attr-defined]
        )
    assert soak.errors == []
    assert lost == 0
    assert sum(soak.counts.values()) == THREADS * OPERATIONS_PER_THREAD
    assert pool.checkedout() == 0  # type: ignore[attr-defined]  # every connection went back
