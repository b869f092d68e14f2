"""Which version a writer read: per thread and asyncio task for sessions passed as dicts or agno's
dataclasses, carried by our own sessions. Shown on JsonStorage (the logic is shared by every backend)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from agno_orm import AgentSession, SessionConflictError
from agno_orm._versions import MAX_REMEMBERED, SeenVersions
from agno_orm.nosql import JsonStorage


@pytest.fixture
def storage(tmp_path: Path) -> JsonStorage:
    storage = JsonStorage(tmp_path, on_conflict="raise", session_types="pydantic")
    storage.upsert({"session_id": "s1", "session_data": {"n": 0}})
    return storage


def test_a_read_in_another_thread_does_not_count_as_read_in_this_one(storage: JsonStorage) -> None:
    reader = threading.Thread(target=storage.read, args=("s1",))
    reader.start()
    reader.join()
    other = JsonStorage(storage.dir_path, on_conflict="raise")
    with pytest.raises(SessionConflictError):  # this thread of `other` never read s1
        other.upsert({"session_id": "s1", "session_data": {"n": 1}})


def test_asyncio_tasks_sharing_a_thread_are_told_apart(storage: JsonStorage) -> None:
    async def turn(first_to_write: asyncio.Event, wrote: asyncio.Event, n: int) -> None:
        storage.read("s1")
        await first_to_write.wait()
        storage.upsert({"session_id": "s1", "session_data": {"n": n}})
        wrote.set()

    async def main() -> list[BaseException | None]:
        go, first_wrote, second_wrote = asyncio.Event(), asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(turn(go, first_wrote, 1))
        second = asyncio.create_task(turn(first_wrote, second_wrote, 2))
        await asyncio.sleep(0)  # both have read version 1
        go.set()
        results = await asyncio.gather(first, second, return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    first_outcome, second_outcome = asyncio.run(main())
    assert first_outcome is None
    assert isinstance(second_outcome, SessionConflictError)  # it read version 1, the first wrote 2
    assert storage.read("s1").session_data == {"n": 1}  # type: ignore[union-attr]


def test_our_session_carries_the_version_it_was_read_at_to_another_thread(storage: JsonStorage) -> None:
    session = storage.read("s1")
    assert session is not None
    session.session_data = {"n": 1}
    errors: list[BaseException] = []
    writer = threading.Thread(target=lambda: errors.extend(_upsert_catching(storage, session)))
    writer.start()
    writer.join()
    assert errors == []
    assert storage.read("s1").session_data == {"n": 1}  # type: ignore[union-attr]


def _upsert_catching(storage: JsonStorage, session: AgentSession) -> list[BaseException]:
    try:
        storage.upsert(session)
    except BaseException as exc:
        return [exc]
    return []


def test_the_version_a_session_was_read_at_is_not_part_of_its_value(storage: JsonStorage) -> None:
    read = storage.read("s1")
    assert read is not None and read._stored_version is not None
    assert read == AgentSession(**read.to_dict())


def test_remembered_versions_are_bounded() -> None:
    seen = SeenVersions()
    for i in range(MAX_REMEMBERED + 1):
        seen.saw(f"s{i}", 1)
    assert seen.last_seen("s0") is None
    assert seen.last_seen(f"s{MAX_REMEMBERED}") == 1


def test_a_task_never_inherits_the_versions_a_finished_task_read() -> None:
    """`id()` of a finished task is soon another's: keyed by it, a task that read nothing would
    be handed the version an earlier task read, and raise mode would accept its stale write."""
    seen = SeenVersions()

    async def one_request(version: int) -> int | None:
        before = seen.last_seen("s1")
        seen.saw("s1", version)
        return before

    async def requests() -> list[int | None]:
        return [await asyncio.create_task(one_request(version)) for version in range(1, 51)]

    assert asyncio.run(requests()) == [None] * 50
