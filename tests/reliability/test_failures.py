"""Failures are loud and safe, on every backend: a stored session that cannot be read raises a
StorageError (never None, never an empty list), and so nothing is written over it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from agno_orm import AgentSession, SqliteStorage, Storage, StorageConnectionError, StorageError
from agno_orm.nosql import (
    DynamoDbStorage,
    FileStorage,
    JsonStorage,
    MongoDbStorage,
    RedisStorage,
    YamlStorage,
)
from agno_orm.nosql.files import file_name
from agno_orm.sql import SqlStorage


def corrupt_memory(storage: Storage, session_id: str) -> Any:
    """Store a list as the session's `memory` (a session holds a dict there), the way a faulty tool
    or a bad migration would; returns what is now stored, as the backend holds it."""
    if isinstance(storage, SqlStorage):
        table = storage.spec.qualified_name
        value = "CAST('[1]' AS jsonb)" if storage.db_engine.dialect.name == "postgresql" else "'[1]'"
        with storage.db_engine.begin() as connection:
            connection.execute(
                text(f"UPDATE {table} SET memory = {value} WHERE session_id = :id"), {"id": session_id}
            )
        with storage.db_engine.connect() as connection:
            return connection.execute(text(f"SELECT * FROM {table}")).all()
    if isinstance(storage, FileStorage):
        path = storage.dir_path / file_name(session_id, storage.suffix)
        document = storage.deserialize(path.read_bytes())
        path.write_bytes(storage.serialize({**document, "memory": [1]}))
        return path.read_bytes()
    if isinstance(storage, RedisStorage):
        key = f"{storage.prefix}:{session_id}"
        document = json.loads(storage.redis_client.get(key))
        storage.redis_client.set(key, json.dumps({**document, "memory": [1]}))
        return storage.redis_client.get(key)
    if isinstance(storage, MongoDbStorage):
        storage.collection.update_one({"session_id": session_id}, {"$set": {"memory": [1]}})
        return storage.collection.find_one({"session_id": session_id}, {"_id": 0})
    if isinstance(storage, DynamoDbStorage):
        key = {"session_id": {"S": session_id}}
        client, table = storage.dynamodb_client, storage.table_name
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #m = :m",
            ExpressionAttributeNames={"#m": "memory"},
            ExpressionAttributeValues={":m": {"S": "[1]"}},
        )
        return client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    raise AssertionError(f"no way to corrupt a {type(storage).__name__}")


def stored_now(storage: Storage, session_id: str) -> Any:
    """What `corrupt_memory` returned, read again."""
    if isinstance(storage, SqlStorage):
        with storage.db_engine.connect() as connection:
            return connection.execute(text(f"SELECT * FROM {storage.spec.qualified_name}")).all()
    if isinstance(storage, FileStorage):
        return (storage.dir_path / file_name(session_id, storage.suffix)).read_bytes()
    if isinstance(storage, RedisStorage):
        return storage.redis_client.get(f"{storage.prefix}:{session_id}")
    if isinstance(storage, MongoDbStorage):
        return storage.collection.find_one({"session_id": session_id}, {"_id": 0})
    if isinstance(storage, DynamoDbStorage):
        key = {"session_id": {"S": session_id}}
        return storage.dynamodb_client.get_item(TableName=storage.table_name, Key=key, ConsistentRead=True)[
            "Item"
        ]
    raise AssertionError(type(storage).__name__)


def test_reading_a_session_stored_corrupt_raises_instead_of_answering_none(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r1"}]}))
    corrupt_memory(storage, "s1")
    with pytest.raises(StorageError, match="not a valid") as raised:
        storage.read("s1")
    assert raised.value.__cause__ is not None  # the validation error, chained


def test_listing_sessions_with_one_stored_corrupt_raises_instead_of_skipping_it(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r1"}]}))
    storage.upsert(AgentSession(session_id="s2"))
    corrupt_memory(storage, "s1")
    with pytest.raises(StorageError):
        storage.get_all_sessions()


def test_a_session_whose_read_failed_is_left_as_stored(storage: Storage) -> None:
    """agno's pattern, read then upsert: the read raises, so the caller never writes a fresh
    session over the stored history, and the stored data stays as it was."""
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r1"}]}))
    before = corrupt_memory(storage, "s1")

    def agent_turn() -> None:
        session = storage.read("s1")  # raises: the turn stops here
        storage.upsert(session if session is not None else AgentSession(session_id="s1"))

    with pytest.raises(StorageError):
        agent_turn()
    assert stored_now(storage, "s1") == before


@pytest.mark.sqlite
def test_a_sqlite_file_the_storage_opens_is_in_wal_mode(tmp_path: Path) -> None:
    storage = SqliteStorage("sessions", db_file=str(tmp_path / "s.db"))
    storage.upsert(AgentSession(session_id="s1"))
    with storage.db_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    storage.db_engine.dispose()


@pytest.mark.sqlite
def test_a_sqlite_file_that_cannot_be_opened_raises_storage_connection_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    storage = SqliteStorage("sessions", db_url=f"sqlite:///{tmp_path / 'not-a-dir' / 's.db'}")
    with pytest.raises(StorageConnectionError):
        storage.read("s1")


@pytest.mark.parametrize(
    "storage_class",
    [pytest.param(JsonStorage, marks=pytest.mark.json), pytest.param(YamlStorage, marks=pytest.mark.yaml)],
)
def test_listing_a_directory_holding_a_torn_session_file_raises(
    tmp_path: Path, storage_class: type[FileStorage]
) -> None:
    """A session file cut short (agno's own storage writes in place, so a writer it lost leaves one)
    is an error in listings as it is in read, never a session silently left out."""
    storage = storage_class(tmp_path)
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r1"}]}))
    storage.upsert(AgentSession(session_id="s2"))
    (tmp_path / file_name("s1", storage.suffix)).write_text('{"session_id": "s1", "memo')
    with pytest.raises(StorageError):
        storage.read("s1")
    with pytest.raises(StorageError):
        storage.get_all_session_ids()


@pytest.mark.parametrize(
    "storage_class",
    [pytest.param(JsonStorage, marks=pytest.mark.json), pytest.param(YamlStorage, marks=pytest.mark.yaml)],
)
def test_a_session_directory_that_cannot_be_read_raises_from_every_method(
    tmp_path: Path, storage_class: type[FileStorage]
) -> None:
    """The file backends' "connection": a dir_path replaced by a regular file under a running
    application (the constructor refuses one with InvalidInputError). Every call raises
    StorageError with the OSError chained; none answers None or [] as if there were no session."""
    storage = storage_class(tmp_path / "sessions")
    if (tmp_path / "sessions").is_dir():
        (tmp_path / "sessions").rmdir()
    (tmp_path / "sessions").write_text("not a directory")
    calls = {
        "read": lambda: storage.read("s1"),
        "get_all_session_ids": storage.get_all_session_ids,
        "get_all_sessions": storage.get_all_sessions,
        "get_recent_sessions": storage.get_recent_sessions,
        "list_sessions": storage.list_sessions,
        "upsert": lambda: storage.upsert(AgentSession(session_id="s1")),
        "delete_session": lambda: storage.delete_session("s1"),
    }
    for name, call in calls.items():
        with pytest.raises(StorageError) as raised:
            call()
        assert isinstance(raised.value.__cause__, OSError), name
    assert (tmp_path / "sessions").read_text() == "not a directory"
