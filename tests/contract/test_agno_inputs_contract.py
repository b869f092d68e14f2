"""What agno (and a user's code around it) hands a storage, accepted on every backend: ids given
as UUIDs, and any object carrying the session's fields as attributes (issue 17 items 5 and 6)."""

from __future__ import annotations

import uuid

import pytest

from agno_orm import AgentSession, InvalidSessionError, Storage, TeamSession


class Conversation:
    """A user's own class with the fields of an agent session, and one of its own."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.user_id = "u1"
        self.agent_id = "agent-1"
        self.memory = {"runs": [{"run_id": "r1", "content": "hello"}]}
        self.cached_reply = "not a session field"


def test_uuid_ids_are_stored_as_their_text(storage: Storage) -> None:
    user, agent = uuid.uuid4(), uuid.uuid4()
    storage.upsert({"session_id": "s1", "user_id": user, "agent_id": agent})
    stored = storage.read("s1", user_id=str(user))
    assert stored is not None and (stored.user_id, stored.agent_id) == (str(user), str(agent))  # type: ignore[union-attr]
    assert storage.get_all_session_ids(user_id=str(user), entity_id=str(agent)) == ["s1"]


def test_an_id_of_another_type_than_text_or_uuid_is_still_refused(storage: Storage) -> None:
    with pytest.raises(InvalidSessionError):
        storage.upsert({"session_id": "s1", "user_id": 42})
    assert storage.read("s1") is None


def test_an_object_with_the_sessions_attributes_is_stored(storage: Storage) -> None:
    storage.upsert(Conversation("s1"))
    stored = storage.read("s1")
    assert stored is not None
    assert (stored.user_id, stored.agent_id) == ("u1", "agent-1")  # type: ignore[union-attr]
    assert stored.memory == {"runs": [{"run_id": "r1", "content": "hello"}]}  # type: ignore[union-attr]


def test_an_object_without_a_session_id_is_refused_naming_the_fields_it_lacks(storage: Storage) -> None:
    with pytest.raises(InvalidSessionError, match=r"has no session_id .*session_id, user_id"):
        storage.upsert(object())


def test_a_session_of_another_mode_is_still_refused(storage: Storage) -> None:
    with pytest.raises(InvalidSessionError):
        storage.upsert(TeamSession(session_id="s1", team_id="t1"))
    assert storage.read("s1") is None
    assert storage.upsert(AgentSession(session_id="s1")).session_id == "s1"
