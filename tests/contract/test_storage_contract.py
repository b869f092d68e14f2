"""The Storage contract (agno 1.8.4's semantics, minus its defects), once, for every backend."""

from __future__ import annotations

import copy
import datetime as dt
import enum
import time
import uuid
from decimal import Decimal
from typing import Any

import pydantic
import pytest

from agno_orm import (
    AgentSession,
    InvalidInputError,
    InvalidSessionError,
    Session,
    Storage,
    TeamSession,
    WorkflowSession,
    WorkflowSessionV2,
)
from tests.conftest import StorageFactory

MODES = ["agent", "team", "workflow", "workflow_v2"]


def full_session(mode: str, session_id: str = "s1", **overrides: Any) -> Session:
    """A session of `mode` with every field set, as agno writes them after a run."""
    memory = {"runs": [{"run_id": "r1", "messages": [{"role": "user", "content": "héllo 👋"}]}]}
    common: dict[str, Any] = {
        "session_id": session_id,
        "user_id": "u1",
        "session_data": {"session_name": "first chat", "session_state": {"n": 1}},
        "extra_data": {"tags": ["a", "b"]},
        "created_at": 1_700_000_000,
    }
    if mode == "agent":
        session: Session = AgentSession(
            **common,
            memory=memory,
            agent_id="agent-1",
            team_session_id="ts-1",
            workflow_session_id="ws-1",
            agent_data={"model": "gpt-x", "name": "helper"},
        )
    elif mode == "team":
        session = TeamSession(
            **common,
            memory=memory,
            team_id="team-1",
            team_session_id="ts-1",
            workflow_session_id="ws-1",
            team_data={"model": "gpt-x"},
        )
    elif mode == "workflow":
        session = WorkflowSession(
            **common, memory=memory, workflow_id="wf-1", workflow_data={"name": "pipeline"}
        )
    else:
        session = WorkflowSessionV2(
            **common,
            workflow_id="wf-1",
            workflow_name="pipeline",
            runs=[{"run_id": "r1", "content": "done"}],
            workflow_data={"steps": 2},
        )
    return session.model_copy(update=overrides)


def entity_field(mode: str) -> str:
    return {"agent": "agent_id", "team": "team_id"}.get(mode, "workflow_id")


def comparable(session: Session) -> dict[str, Any]:
    data = session.to_dict()
    data.pop("created_at")
    data.pop("updated_at")
    return data


# -- read and upsert ---------------------------------------------------------------------------


def test_read_of_missing_session_returns_none(storage: Storage) -> None:
    assert storage.read("nope") is None


@pytest.mark.parametrize("mode", MODES)
def test_upsert_then_read_returns_every_field(make_storage: StorageFactory, mode: str) -> None:
    storage = make_storage(mode=mode)
    session = full_session(mode)
    stored = storage.upsert(session)
    assert type(stored) is type(session)
    assert comparable(stored) == comparable(session)
    read = storage.read("s1")
    assert read is not None
    assert type(read) is type(session)
    assert read.to_dict() == stored.to_dict()


def test_upsert_returns_the_stored_session_with_timestamps(storage: Storage) -> None:
    before = int(time.time())
    stored = storage.upsert(AgentSession(session_id="s1"))
    assert stored.session_id == "s1"
    assert stored.created_at is not None and stored.created_at >= before
    assert stored.updated_at is not None and stored.updated_at >= stored.created_at


def test_upsert_keeps_the_sessions_own_created_at(storage: Storage) -> None:
    stored = storage.upsert(AgentSession(session_id="s1", created_at=1_600_000_000))
    assert stored.created_at == 1_600_000_000
    assert stored.updated_at is not None and stored.updated_at > 1_600_000_000


def test_second_upsert_replaces_fields_and_keeps_created_at(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", created_at=1_600_000_000, memory={"runs": [1]}))
    second = storage.upsert(
        AgentSession(session_id="s1", created_at=1_700_000_000, memory={"runs": [1, 2]}, user_id="u")
    )
    assert second.created_at == 1_600_000_000
    assert second.memory == {"runs": [1, 2]}
    read = storage.read("s1")
    assert read is not None and read.user_id == "u" and read.memory == {"runs": [1, 2]}


def test_updated_at_is_never_null_and_moves_forward(storage: Storage) -> None:
    first = storage.upsert(AgentSession(session_id="s1", created_at=1_600_000_000))
    assert first.updated_at is not None
    time.sleep(1.05)
    second = storage.upsert(AgentSession(session_id="s1"))
    assert second.updated_at is not None and second.updated_at > first.updated_at


def test_upsert_accepts_a_mapping_and_an_object_with_to_dict(storage: Storage) -> None:
    class AgnoLike:
        def to_dict(self) -> dict[str, Any]:
            return {"session_id": "s2", "agent_id": "a", "memory": {"runs": []}}

    assert storage.upsert({"session_id": "s1", "agent_id": "a"}).session_id == "s1"
    assert storage.upsert(AgnoLike()).session_id == "s2"
    assert sorted(storage.get_all_session_ids()) == ["s1", "s2"]


def test_read_with_matching_user_id_returns_the_session(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", user_id="alice"))
    read = storage.read("s1", user_id="alice")
    assert read is not None and read.user_id == "alice"


def test_read_with_other_users_id_returns_none(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", user_id="alice"))
    assert storage.read("s1", user_id="mallory") is None


# -- listing -------------------------------------------------------------------------------------


def seed_three(storage: Storage, mode: str = "agent") -> None:
    """s-old (alice, e1), s-mid (bob, e1), s-new (alice, e2), created in that order."""
    for session_id, user, entity, created in [
        ("s-old", "alice", "e1", 1_000),
        ("s-mid", "bob", "e1", 2_000),
        ("s-new", "alice", "e2", 3_000),
    ]:
        storage.upsert(
            full_session(mode, session_id, user_id=user, created_at=created, **{entity_field(mode): entity})
        )


@pytest.mark.parametrize("mode", MODES)
def test_get_all_session_ids_is_newest_first_and_filters(make_storage: StorageFactory, mode: str) -> None:
    storage = make_storage(mode=mode)
    seed_three(storage, mode)
    assert storage.get_all_session_ids() == ["s-new", "s-mid", "s-old"]
    assert storage.get_all_session_ids(user_id="alice") == ["s-new", "s-old"]
    assert storage.get_all_session_ids(entity_id="e1") == ["s-mid", "s-old"]
    assert storage.get_all_session_ids(user_id="alice", entity_id="e1") == ["s-old"]
    assert storage.get_all_session_ids(user_id="nobody") == []


@pytest.mark.parametrize("mode", MODES)
def test_get_all_sessions_returns_full_sessions_newest_first(make_storage: StorageFactory, mode: str) -> None:
    storage = make_storage(mode=mode)
    seed_three(storage, mode)
    sessions = storage.get_all_sessions(user_id="alice")
    assert [s.session_id for s in sessions] == ["s-new", "s-old"]
    assert all(type(s) is storage.session_type for s in sessions)
    assert comparable(sessions[0]) == comparable(
        full_session(mode, "s-new", user_id="alice", **{entity_field(mode): "e2"})
    )


def test_get_recent_sessions_defaults_to_two_newest(storage: Storage) -> None:
    seed_three(storage)
    assert [s.session_id for s in storage.get_recent_sessions()] == ["s-new", "s-mid"]


def test_get_recent_sessions_with_limit_none_returns_all(storage: Storage) -> None:
    seed_three(storage)
    assert [s.session_id for s in storage.get_recent_sessions(limit=None)] == ["s-new", "s-mid", "s-old"]


def test_get_recent_sessions_filters_by_user_and_entity(storage: Storage) -> None:
    seed_three(storage)
    recent = storage.get_recent_sessions(user_id="alice", entity_id="e2", limit=5)
    assert [s.session_id for s in recent] == ["s-new"]


@pytest.mark.parametrize("limit", [-1, 1.5, "2", True])
def test_get_recent_sessions_rejects_a_bad_limit(storage: Storage, limit: Any) -> None:
    with pytest.raises(InvalidInputError):
        storage.get_recent_sessions(limit=limit)


def test_sessions_created_in_the_same_second_list_in_a_stable_order(storage: Storage) -> None:
    for session_id in ["b", "c", "a"]:
        storage.upsert(AgentSession(session_id=session_id, created_at=5_000))
    first = storage.get_all_session_ids()
    assert first == storage.get_all_session_ids()
    assert sorted(first) == ["a", "b", "c"]


# -- delete, drop, create ----------------------------------------------------------------------------


def test_delete_session_removes_only_that_session(storage: Storage) -> None:
    seed_three(storage)
    storage.delete_session("s-mid")
    assert storage.read("s-mid") is None
    assert storage.get_all_session_ids() == ["s-new", "s-old"]


def test_delete_session_with_none_or_missing_id_is_a_no_op(storage: Storage) -> None:
    seed_three(storage)
    storage.delete_session(None)
    storage.delete_session()
    storage.delete_session("missing")
    assert len(storage.get_all_session_ids()) == 3


def test_delete_session_with_other_users_id_deletes_nothing(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", user_id="alice"))
    storage.delete_session("s1", user_id="mallory")
    assert storage.read("s1") is not None
    storage.delete_session("s1", user_id="alice")
    assert storage.read("s1") is None


def test_drop_removes_every_session(storage: Storage) -> None:
    seed_three(storage)
    storage.drop()
    assert storage.get_all_session_ids() == []
    assert storage.read("s-new") is None


def test_create_is_idempotent_and_keeps_data(storage: Storage) -> None:
    storage.create()
    storage.upsert(AgentSession(session_id="s1"))
    storage.create()
    assert storage.read("s1") is not None


# -- mode --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_mode_selects_the_session_type(make_storage: StorageFactory, mode: str) -> None:
    storage = make_storage(mode=mode)
    assert storage.mode == mode
    assert storage.session_type is type(full_session(mode))


def test_mode_none_means_agent(make_storage: StorageFactory) -> None:
    assert make_storage(mode=None).mode == "agent"


def test_unknown_mode_is_rejected(make_storage: StorageFactory, storage: Storage) -> None:
    with pytest.raises(InvalidInputError, match="unknown mode"):
        make_storage(mode="chat")
    with pytest.raises(InvalidInputError, match="unknown mode"):
        storage.mode = "chat"  # type: ignore[assignment]
    assert storage.mode == "agent"


def test_reassigned_mode_stores_that_modes_sessions(make_storage: StorageFactory) -> None:
    storage = make_storage(mode="agent")
    storage.mode = "team"  # as agno's Team does on every run
    storage.upsert(full_session("team", "t1"))
    read = storage.read("t1")
    assert type(read) is TeamSession
    assert storage.get_all_session_ids(entity_id="team-1") == ["t1"]


def test_upsert_of_another_modes_session_is_rejected(storage: Storage) -> None:
    with pytest.raises(InvalidSessionError, match="agent mode"):
        storage.upsert(full_session("team"))
    assert storage.get_all_session_ids() == []


# -- bad input: a clear error and nothing written -------------------------------------------------


@pytest.mark.parametrize("session_id", [None, 42, "", b"bytes", "x" * 256])
def test_upsert_rejects_a_bad_session_id_and_writes_nothing(storage: Storage, session_id: Any) -> None:
    with pytest.raises(InvalidSessionError, match="session_id"):
        storage.upsert({"session_id": session_id, "agent_id": "a"})
    assert storage.get_all_session_ids() == []


def test_upsert_rejects_unknown_fields(storage: Storage) -> None:
    with pytest.raises(InvalidSessionError, match="colour"):
        storage.upsert({"session_id": "s1", "colour": "blue"})
    assert storage.get_all_session_ids() == []


def test_read_rejects_a_non_string_session_id(storage: Storage) -> None:
    with pytest.raises(InvalidInputError, match="session_id"):
        storage.read(42)  # type: ignore[arg-type]


def test_upsert_rejects_a_non_session(storage: Storage) -> None:
    with pytest.raises(InvalidSessionError):
        storage.upsert(42)
    assert storage.get_all_session_ids() == []


class Colour(enum.Enum):
    RED = "red"


class Point(pydantic.BaseModel):
    x: int
    at: dt.datetime


def test_values_json_lacks_are_encoded_not_rejected(storage: Storage) -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    state = {
        "when": when,
        "day": dt.date(2026, 1, 2),
        "id": ident,
        "price": Decimal("1.10"),
        "colour": Colour.RED,
        "tags": {"b", "a"},
        "point": Point(x=1, at=when),
        "pair": (1, 2),
    }
    stored = storage.upsert(AgentSession(session_id="s1", session_data={"session_state": state}))
    assert stored.session_data == {
        "session_state": {
            "when": "2026-01-02T03:04:05+00:00",
            "day": "2026-01-02",
            "id": "12345678-1234-5678-1234-567812345678",
            "price": "1.10",
            "colour": "red",
            "tags": ["a", "b"],
            "point": {"x": 1, "at": "2026-01-02T03:04:05Z"},
            "pair": [1, 2],
        }
    }
    assert storage.read("s1") == stored


@pytest.mark.parametrize(
    "bad_value", [object(), float("nan"), float("inf"), {1: "int key"}], ids=["object", "nan", "inf", "key"]
)
def test_a_value_json_cannot_hold_is_rejected_and_nothing_written(storage: Storage, bad_value: Any) -> None:
    storage.upsert(AgentSession(session_id="s1", session_data={"ok": 1}))
    with pytest.raises(InvalidSessionError, match="session_data"):
        storage.upsert(AgentSession(session_id="s1", session_data={"state": {"v": bad_value}}))
    read = storage.read("s1")
    assert read is not None and read.session_data == {"ok": 1}


def test_a_mutated_session_is_revalidated_before_writing(storage: Storage) -> None:
    session = AgentSession(session_id="s1")
    session.__dict__["session_id"] = 123  # bypasses validate_assignment, as careless code might
    with pytest.raises(InvalidSessionError):
        storage.upsert(session)
    assert storage.get_all_session_ids() == []


# -- copies ------------------------------------------------------------------------------------------


def test_deep_copy_works_and_shares_the_data(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1"))
    clone = copy.deepcopy(storage)
    assert clone.read("s1") is not None
    clone.upsert(AgentSession(session_id="s2"))
    assert sorted(storage.get_all_session_ids()) == ["s1", "s2"]
