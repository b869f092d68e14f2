"""Many threads in several processes add runs to one session at once, as agno agents serving one
session do (read, append a run, upsert the whole session): on every backend, no run is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agno_orm import Storage
from agno_orm.sql import SqlStorage
from tests.conftest import StorageFactory, unique_table_name
from tests.reliability.recipes import Recipe, build, recipe_for
from tests.reliability.writer import SESSION_ID, run_threads

REPO = Path(__file__).resolve().parents[2]
PROCESSES, THREADS_PER_PROCESS, THREADS_HERE, RUNS_PER_THREAD = 2, 3, 4, 3


@pytest.fixture
def recipe(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Recipe | None:
    return recipe_for(backend, request, unique_table_name(), tmp_path)


@pytest.fixture
def shared_storage(recipe: Recipe | None, make_storage: StorageFactory) -> Iterator[Storage]:
    """This process's storage of the shared session: built from the recipe the writer processes
    get, or, for a backend no other process can reach, the contract suite's."""
    if recipe is None:
        yield make_storage()
        return
    storage = build(recipe)
    storage.create()  # before the writers race to create it
    yield storage
    storage.drop()
    if isinstance(storage, SqlStorage):
        storage.db_engine.dispose()


def start_writers(
    recipe: Recipe,
    processes: int = PROCESSES,
    threads: int = THREADS_PER_PROCESS,
    runs: int = RUNS_PER_THREAD,
) -> list[subprocess.Popen[str]]:
    shape = [str(threads), str(runs)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.writer", json.dumps(recipe), f"p{i}", *shape],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    for writer in writers:  # every writer has built its storage before any of them writes
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    return writers


def test_threads_and_processes_adding_runs_to_one_session_lose_none(
    recipe: Recipe | None, shared_storage: Storage
) -> None:
    """A soak under real load; test_interleaved_writers.py forces the decisive interleaving."""
    writers = start_writers(recipe) if recipe is not None else []
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    written = run_threads(shared_storage, "here", THREADS_HERE, RUNS_PER_THREAD)
    for writer in writers:
        output, errors = writer.communicate(timeout=300)
        assert writer.returncode == 0, errors
        written += json.loads(output)
    stored = shared_storage.read(SESSION_ID)
    assert stored is not None
    stored_ids = [run["run_id"] for run in stored.memory["runs"]]  # type: ignore[attr-defined]
    assert len(written) == (THREADS_HERE + len(writers) * THREADS_PER_PROCESS) * RUNS_PER_THREAD
    assert len(stored_ids) == len(written)
    assert set(stored_ids) == set(written)


@pytest.mark.sqlite
def test_sqlite_writer_processes_under_load_never_surface_database_is_locked(tmp_path: Path) -> None:
    """Issue 7 item 3: four processes of four threads each, every thread reading and upserting one
    SQLite file's shared session as fast as it can: no "database is locked" reaches a writer (a
    writer that raises exits non-zero with the error on stderr) and no run is lost."""
    processes, threads, runs = 4, 4, 12
    recipe: Recipe = {
        "class": "SqliteStorage",
        "kwargs": {"table_name": unique_table_name(), "db_file": str(tmp_path / "sessions.db")},
    }
    storage = build(recipe)
    storage.create()
    writers = start_writers(recipe, processes, threads, runs)
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    written: list[str] = []
    for writer in writers:
        output, errors = writer.communicate(timeout=300)
        assert "locked" not in errors and writer.returncode == 0, errors
        written += json.loads(output)
    stored = storage.read(SESSION_ID)
    assert stored is not None
    stored_ids = [run["run_id"] for run in stored.memory["runs"]]  # type: ignore[attr-defined]
    assert len(written) == processes * threads * runs
    assert sorted(stored_ids) == sorted(written)
    assert isinstance(storage, SqlStorage)
    storage.db_engine.dispose()
