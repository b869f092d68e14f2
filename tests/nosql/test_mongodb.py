"""MongoDbStorage: indexes ensured by the storage, conditional upserts, modes, agno's documents, errors.

Runs on the `mongodb_client` fixture: a real server when one can be had, else mongomock-ng.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agno_orm import AgentSession, InvalidInputError, InvalidSessionError, StorageConnectionError, TeamSession
from agno_orm.nosql import MongoDbStorage
from tests.skip_policy import client_module

pytestmark = pytest.mark.mongodb
pymongo = client_module("pymongo")  # not a module skip: tests/skip_policy.py decides


@pytest.fixture
def collection_name(mongodb_client: Any) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    mongodb_client["agno_orm_test"].drop_collection(name)


def make(client: Any, name: str, mode: str = "agent") -> MongoDbStorage:
    return MongoDbStorage(
        name,
        db_name="agno_orm_test",
        client=client,
        mode=mode,  # type: ignore[arg-type]
        session_types="pydantic",
    )


class RecordingCollection:
    """A collection proxy that records the name of every method called on it."""

    def __init__(self, collection: Any) -> None:
        self.calls: list[str] = []
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if callable(attribute):
            self.calls.append(name)
        return attribute


def test_the_unique_session_id_index_exists_after_first_use(
    mongodb_client: Any, collection_name: str
) -> None:
    make(mongodb_client, collection_name).read("s1")  # no create() call, unlike agno
    indexes = mongodb_client["agno_orm_test"][collection_name].index_information()
    assert any(spec["key"] == [("session_id", 1)] and spec.get("unique") for spec in indexes.values())


def test_listing_indexes_lead_with_the_filter_and_order_by_time(
    mongodb_client: Any, collection_name: str
) -> None:
    make(mongodb_client, collection_name, mode="team").create()
    keys = [
        spec["key"] for spec in mongodb_client["agno_orm_test"][collection_name].index_information().values()
    ]
    for field in ("user_id", "team_id"):
        assert [(field, 1), ("created_at", -1), ("session_id", -1)] in keys


def test_an_upsert_whose_document_changed_after_its_read_reads_again_and_keeps_both_runs(
    mongodb_client: Any, collection_name: str
) -> None:
    storage, other = make(mongodb_client, collection_name), make(mongodb_client, collection_name)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r0"}]}, created_at=5))
    recording = RecordingCollection(storage.collection)
    storage.collection = recording
    original_find_one = recording._collection.find_one

    def find_one_then_another_writer_wins(*args: Any, **kwargs: Any) -> Any:
        found = original_find_one(*args, **kwargs)
        if recording.calls.count("find_one") == 1:  # between this upsert's read and its write
            other.upsert(
                AgentSession(session_id="s1", memory={"runs": [{"run_id": "r0"}, {"run_id": "theirs"}]})
            )
        return found

    recording._collection = _Overriding(recording._collection, find_one=find_one_then_another_writer_wins)
    stored = storage.upsert(
        AgentSession(session_id="s1", memory={"runs": [{"run_id": "r0"}, {"run_id": "mine"}]})
    )
    assert recording.calls == ["find_one", "replace_one", "find_one", "replace_one"]  # refused, read again
    assert sorted(run["run_id"] for run in stored.memory["runs"]) == ["mine", "r0", "theirs"]  # type: ignore[index]
    assert stored.created_at == 5  # kept from the first write


class _Overriding:
    """A proxy of `target` with some of its attributes replaced."""

    def __init__(self, target: Any, **overrides: Any) -> None:
        self._target, self._overrides = target, overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(self._target, name)


def test_an_id_held_by_another_mode_is_refused(mongodb_client: Any, collection_name: str) -> None:
    make(mongodb_client, collection_name, mode="agent").upsert(AgentSession(session_id="s1", agent_id="a"))
    with pytest.raises(InvalidSessionError, match="taken by a agent session"):
        make(mongodb_client, collection_name, mode="team").upsert(TeamSession(session_id="s1"))
    kept = make(mongodb_client, collection_name).read("s1")
    assert kept is not None and kept.agent_id == "a"


def test_documents_agno_wrote_are_read_by_their_mode(mongodb_client: Any, collection_name: str) -> None:
    collection = mongodb_client["agno_orm_test"][collection_name]
    collection.insert_one({"session_id": "a1", "agent_id": "x", "agent_data": None, "created_at": 1})
    collection.insert_one({"session_id": "t1", "team_id": "x", "team_data": None, "created_at": 2})
    agents, teams = make(mongodb_client, collection_name), make(mongodb_client, collection_name, "team")
    assert agents.get_all_session_ids(entity_id="x") == ["a1"]
    assert teams.get_all_session_ids(entity_id="x") == ["t1"]
    assert agents.read("t1") is None
    assert isinstance(teams.read("t1"), TeamSession)


def test_an_unreachable_server_raises_storage_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the socket is closed
    storage = MongoDbStorage("sessions", db_url=f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=200")
    with pytest.raises(StorageConnectionError) as raised:
        storage.read("s1")
    assert isinstance(raised.value.__cause__, pymongo.errors.ConnectionFailure)
    storage._client.close()


@pytest.mark.parametrize("where", ["session_data", "run"])
@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_an_int_bson_cannot_hold_is_an_invalid_session_and_nothing_is_written(
    mongodb_client: Any, collection_name: str, where: str, value: int
) -> None:
    storage = make(mongodb_client, collection_name)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r1"}]}))
    if where == "run":
        session = AgentSession(
            session_id="s1", memory={"runs": [{"run_id": "r1"}, {"run_id": "r2", "n": value}]}
        )
    else:
        session = AgentSession(session_id="s1", session_data={"n": value})
    with pytest.raises(InvalidSessionError, match="64 bits"):
        storage.upsert(session)
    with pytest.raises(InvalidSessionError, match="64 bits"):
        storage.upsert(session.model_copy(update={"session_id": "s2"}))
    assert storage.get_all_session_ids() == ["s1"]
    assert storage.read("s1").memory == {"runs": [{"run_id": "r1"}]}  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["..", "a..b", ".a", "a.", "a$b", "system.users", ""])
def test_a_collection_name_mongodb_refuses_is_an_invalid_input(mongodb_client: Any, name: str) -> None:
    with pytest.raises(InvalidInputError, match="collection_name"):
        make(mongodb_client, name)
