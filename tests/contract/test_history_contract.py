"""A writer's upsert is the history it means, on every backend: runs it saw and dropped are gone,
runs it never saw (another writer's, written since it read) are kept (agno_orm.runs)."""

from __future__ import annotations

from typing import Any

from agno_orm import AgentSession, Storage
from tests.conftest import StorageFactory


def run(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id, "content": f"answer {run_id}"}


def runs_of(session: Any) -> list[Any]:
    return list(session.memory["runs"])


def run_ids(session: Any) -> list[str]:
    return [r["run_id"] for r in runs_of(session)]


def stored_ids(storage: Storage, session_id: str = "s1") -> list[str]:
    session = storage.read(session_id)
    assert session is not None
    return run_ids(session)


def with_runs(session_id: str, runs: list[Any], **fields: Any) -> AgentSession:
    return AgentSession(session_id=session_id, memory={"runs": runs}, **fields)


def test_an_edit_of_an_old_run_reads_back(storage: Storage) -> None:
    storage.upsert(with_runs("s1", [run(f"r{i}") for i in range(5)]))
    session = storage.read("s1")
    assert session is not None
    runs = runs_of(session)
    runs[1] = {**runs[1], "content": "corrected"}
    storage.upsert(with_runs("s1", runs))
    stored = storage.read("s1")
    assert stored is not None and runs_of(stored)[1]["content"] == "corrected"
    assert run_ids(stored) == [f"r{i}" for i in range(5)]


def test_keeping_the_last_10_of_60_runs_stores_exactly_those_in_order(storage: Storage) -> None:
    storage.upsert(with_runs("s1", [run(f"r{i}") for i in range(60)]))
    session = storage.read("s1")
    assert session is not None
    session.memory = {"runs": runs_of(session)[-10:]}  # type: ignore[attr-defined]
    storage.upsert(session)
    assert stored_ids(storage) == [f"r{i}" for i in range(50, 60)]


def test_a_cleared_history_stays_cleared(storage: Storage) -> None:
    storage.upsert(with_runs("s1", [run("r0"), run("r1")]))
    session = storage.read("s1")
    assert session is not None
    session.memory = {"runs": []}  # type: ignore[attr-defined]
    storage.upsert(session)
    assert stored_ids(storage) == []
    storage.upsert(with_runs("s1", [run("r2")]))
    assert stored_ids(storage) == ["r2"]


def test_one_dropped_message_pair_stays_dropped_from_a_dict_written_back(storage: Storage) -> None:
    """agno's own call: read, then upsert a dict (or dataclass) it builds from what it read."""
    storage.upsert(with_runs("s1", [run("r0"), run("r1"), run("r2")]))
    session = storage.read("s1")
    assert session is not None
    record = session.to_dict()
    record["memory"] = {"runs": [r for r in runs_of(session) if r["run_id"] != "r1"]}
    storage.upsert(record)
    assert stored_ids(storage) == ["r0", "r2"]


def test_runs_without_run_id_read_back_exactly(storage: Storage) -> None:
    same, other = {"content": "same"}, {"content": "other"}
    for runs in ([same, same], [same, same, other], [other, same], [same], []):
        storage.upsert(with_runs("s1", [dict(r) for r in runs]))
        stored = storage.read("s1")
        assert stored is not None and runs_of(stored) == runs


def test_a_read_of_the_last_runs_written_back_shorter_keeps_the_runs_it_was_not_handed(
    storage: Storage,
) -> None:
    storage.upsert(with_runs("s1", [run(f"r{i}") for i in range(6)]))
    last = storage.read("s1", runs_limit=3)
    assert last is not None and run_ids(last) == ["r3", "r4", "r5"]
    storage.upsert(with_runs("s1", [r for r in runs_of(last) if r["run_id"] != "r4"]))
    assert stored_ids(storage) == ["r0", "r1", "r2", "r3", "r5"]


def test_a_writer_keeps_the_runs_another_writer_added_since_it_read(make_storage: StorageFactory) -> None:
    first, second, observer = make_storage(), make_storage(), make_storage()
    first.upsert(with_runs("s1", [run("r0"), run("r1")]))
    a, b = first.read("s1"), second.read("s1")
    assert a is not None and b is not None
    second.upsert(with_runs("s1", [*runs_of(b), run("from-second")]))
    first.upsert(with_runs("s1", [run("r1"), run("from-first")]))  # drops r0, which it saw
    assert sorted(stored_ids(observer)) == ["from-first", "from-second", "r1"]
    # the stale session written again, without a read between: the other writer's run still stays
    first.upsert(with_runs("s1", [run("r1"), run("from-first"), run("again")]))
    assert sorted(stored_ids(observer)) == ["again", "from-first", "from-second", "r1"]
    # once it has read them, dropping them removes them
    seen = first.read("s1")
    assert seen is not None
    first.upsert(with_runs("s1", [r for r in runs_of(seen) if r["run_id"] != "from-second"]))
    assert sorted(stored_ids(observer)) == ["again", "from-first", "r1"]


def test_a_run_edited_by_another_writer_since_the_read_is_kept_by_a_writer_dropping_it(
    make_storage: StorageFactory,
) -> None:
    first, second = make_storage(), make_storage()
    first.upsert(with_runs("s1", [run("r0"), run("r1")]))
    a, b = first.read("s1"), second.read("s1")
    assert a is not None and b is not None
    second.upsert(with_runs("s1", [{**run("r0"), "content": "edited"}, run("r1")]))
    first.upsert(with_runs("s1", [run("r1")]))  # drops the r0 it saw, not the edit it never saw
    stored = first.read("s1")
    assert stored is not None and [(r["run_id"], r["content"]) for r in runs_of(stored)] == [
        ("r0", "edited"),
        ("r1", "answer r1"),
    ]


def test_two_writers_appending_the_same_run_without_id_keep_both(make_storage: StorageFactory) -> None:
    first, second = make_storage(), make_storage()
    same = {"content": "same"}
    first.upsert(with_runs("s1", [dict(same)]))
    a, b = first.read("s1"), second.read("s1")
    assert a is not None and b is not None
    first.upsert(with_runs("s1", [*runs_of(a), dict(same)]))
    second.upsert(with_runs("s1", [*runs_of(b), dict(same)]))
    stored = first.read("s1")
    assert stored is not None and runs_of(stored) == [same, same, same]


def test_a_writer_that_never_read_the_session_removes_no_run(make_storage: StorageFactory) -> None:
    """The one case where a writer's view is unknown: nothing tells which runs it saw, so it adds
    and replaces runs but removes none, until it reads the session."""
    observer = make_storage()
    make_storage().upsert(with_runs("s1", [run("r0"), run("r1")]))
    blind = make_storage()
    blind.upsert(with_runs("s1", [run("r1"), run("r2")]))
    assert stored_ids(observer) == ["r0", "r1", "r2"]
    blind.upsert(with_runs("s1", [run("r2")]))  # still blind: its session never held r0
    assert stored_ids(observer) == ["r0", "r1", "r2"]
    blind.read("s1")
    blind.upsert(with_runs("s1", [run("r2")]))
    assert stored_ids(observer) == ["r2"]


def test_a_writer_that_never_read_writing_the_same_runs_again_stores_them_once(
    make_storage: StorageFactory,
) -> None:
    """A retried write (or a service that never reads): runs without id match by content."""
    observer = make_storage()
    same = {"content": "same"}
    for _ in range(2):
        make_storage().upsert(with_runs("s1", [dict(same), {"content": "other"}]))
    stored = observer.read("s1")
    assert stored is not None and runs_of(stored) == [same, {"content": "other"}]
