"""Cheap reads, on every backend: a session's last runs, and listings without history, page by page."""

from __future__ import annotations

import pytest

from agno_orm import AgentSession, InvalidInputError, Storage, WorkflowSessionV2
from tests.conftest import StorageFactory


def agent_with_runs(session_id: str, count: int, **fields: object) -> AgentSession:
    runs = [{"run_id": f"{session_id}-r{i}", "content": f"answer {i}"} for i in range(count)]
    return AgentSession(session_id=session_id, memory={"runs": runs, "summary": "kept"}, **fields)  # type: ignore[arg-type]


def test_read_with_runs_limit_returns_only_the_last_runs(storage: Storage) -> None:
    storage.upsert(agent_with_runs("s1", 5))
    session = storage.read("s1", runs_limit=2)
    assert isinstance(session, AgentSession) and session.memory is not None
    assert [run["run_id"] for run in session.memory["runs"]] == ["s1-r3", "s1-r4"]
    assert session.memory["summary"] == "kept"
    full = storage.read("s1")
    assert full is not None and len(full.memory["runs"]) == 5  # type: ignore[attr-defined]


def test_read_with_runs_limit_zero_returns_no_runs(storage: Storage) -> None:
    storage.upsert(agent_with_runs("s1", 3))
    session = storage.read("s1", runs_limit=0)
    assert session is not None and session.memory["runs"] == []  # type: ignore[attr-defined]


def test_read_with_runs_limit_on_workflow_v2_limits_its_runs(make_storage: StorageFactory) -> None:
    storage = make_storage(mode="workflow_v2")
    runs = [{"run_id": f"r{i}", "status": "done"} for i in range(4)]
    storage.upsert(WorkflowSessionV2(session_id="w1", runs=runs))
    session = storage.read("w1", runs_limit=1)
    assert isinstance(session, WorkflowSessionV2) and session.runs == [{"run_id": "r3", "status": "done"}]


def seed(storage: Storage) -> None:
    """Ten sessions of two users; s0..s9, created at 100, 100, 200, 200, ... (ties in pairs)."""
    for i in range(10):
        storage.upsert(
            agent_with_runs(
                f"s{i}",
                i % 3,
                user_id="alice" if i % 2 == 0 else "bob",
                agent_id="a1" if i < 5 else "a2",
                created_at=100 * (i // 2 + 1),
                session_data={"session_name": f"chat {i}"},
            )
        )


def test_list_sessions_returns_summaries_newest_first(storage: Storage) -> None:
    seed(storage)
    page = storage.list_sessions(limit=3)
    assert [s.session_id for s in page.items] == ["s9", "s8", "s7"]
    first = page.items[0]
    assert first.user_id == "bob" and first.entity_id == "a2" and first.session_name == "chat 9"
    assert first.created_at == 500 and first.updated_at is not None and first.run_count == 0
    assert page.items[1].run_count == 2


def test_list_sessions_pages_through_ties_without_skipping_or_repeating(storage: Storage) -> None:
    seed(storage)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = storage.list_sessions(limit=3, cursor=cursor)
        seen += [s.session_id for s in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"s{i}" for i in range(9, -1, -1)]


def test_list_sessions_filters_by_user_entity_and_time(storage: Storage) -> None:
    seed(storage)
    assert [s.session_id for s in storage.list_sessions(user_id="alice").items] == [
        "s8",
        "s6",
        "s4",
        "s2",
        "s0",
    ]
    assert [s.session_id for s in storage.list_sessions(entity_id="a1", user_id="bob").items] == ["s3", "s1"]
    window = storage.list_sessions(since=200, until=400)
    assert [s.session_id for s in window.items] == ["s5", "s4", "s3", "s2"]
    assert window.next_cursor is None


def test_list_sessions_last_page_has_no_cursor(storage: Storage) -> None:
    seed(storage)
    page = storage.list_sessions(limit=10)
    assert len(page.items) == 10 and page.next_cursor is None
    assert storage.list_sessions(user_id="nobody").items == []


@pytest.mark.parametrize("cursor", ["garbage", "W1tdXQ==", ""])
def test_list_sessions_refuses_a_cursor_it_did_not_issue(storage: Storage, cursor: str) -> None:
    with pytest.raises(InvalidInputError, match="cursor"):
        storage.list_sessions(cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_list_sessions_refuses_a_bad_limit(storage: Storage, limit: object) -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        storage.list_sessions(limit=limit)  # type: ignore[arg-type]
