"""RedisStorage on a real Redis server: index-driven listing, expiry, agno's key layout, errors."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agno_orm import AgentSession, InvalidSessionError, StorageConnectionError
from agno_orm.nosql import RedisStorage
from tests.skip_policy import client_module

pytestmark = pytest.mark.redis
redis = client_module("redis")  # not a module skip: tests/skip_policy.py decides


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def prefix(client: Any) -> Iterator[str]:
    prefix = f"t_{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


class CommandLog:
    """Wraps a client's execute_command and records the name of every command sent."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        original = client.execute_command

        def recorded(*args: Any, **options: Any) -> Any:
            self.names.append(str(args[0]).upper())
            return original(*args, **options)

        client.execute_command = recorded


def seed(storage: RedisStorage, count: int) -> None:
    for i in range(count):
        storage.upsert(
            AgentSession(session_id=f"s{i:03}", user_id=f"u{i % 3}", agent_id="a", created_at=i + 1)
        )


def test_listing_sends_one_script_call_and_no_scan(client: Any, prefix: str) -> None:
    seed(RedisStorage(prefix, client=client), 60)
    RedisStorage(prefix, client=client).get_all_session_ids()  # the first listing indexes agno's sessions
    storage = RedisStorage(prefix, client=client)  # a process started later: that is remembered in Redis
    log = CommandLog(client)
    assert len(storage.get_all_session_ids()) == 60
    assert [s.session_id for s in storage.get_recent_sessions(user_id="u0", limit=3)] == [
        "s057",
        "s054",
        "s051",
    ]
    assert len(storage.get_all_sessions(entity_id="a")) == 60
    assert log.names == ["EVALSHA"] * 3  # no SCAN, no KEYS, no GET per session


def test_a_session_claimed_by_a_user_enters_that_users_index(client: Any, prefix: str) -> None:
    storage = RedisStorage(prefix, client=client)
    storage.upsert(AgentSession(session_id="s1"))
    assert storage.get_all_session_ids(user_id="bob") == []
    storage.upsert(AgentSession(session_id="s1", user_id="bob"))
    assert storage.get_all_session_ids(user_id="bob") == ["s1"]
    with pytest.raises(InvalidSessionError):  # never handed on to another user
        storage.upsert(AgentSession(session_id="s1", user_id="alice"))
    assert storage.get_all_session_ids(user_id="alice") == []
    assert storage.get_all_session_ids(user_id="bob") == ["s1"]


def test_concurrent_upserts_leave_the_session_in_its_users_index_only(client: Any, prefix: str) -> None:
    storage = RedisStorage(prefix, client=client)
    users = [f"u{i}" for i in range(8)]

    refused: list[str] = []

    def write(user: str) -> None:
        for _ in range(10):
            try:
                storage.upsert(AgentSession(session_id="s1", user_id=user))
            except InvalidSessionError:  # another user created it first
                refused.append(user)

    threads = [threading.Thread(target=write, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = storage.read("s1")
    assert stored is not None
    assert sorted(refused) == sorted(u for u in users if u != stored.user_id for _ in range(10))
    assert {u: storage.get_all_session_ids(user_id=u) for u in users} == {
        u: ["s1"] if u == stored.user_id else [] for u in users
    }


def test_expire_gives_each_written_session_its_time_to_live(client: Any, prefix: str) -> None:
    storage = RedisStorage(prefix, client=client, expire=300)
    storage.upsert(AgentSession(session_id="s1"))
    assert 0 < client.ttl(f"{prefix}:s1") <= 300


def test_an_expired_session_is_not_read(client: Any, prefix: str) -> None:
    storage = RedisStorage(prefix, client=client, expire=300)
    storage.upsert(AgentSession(session_id="s1"))
    client.pexpire(f"{prefix}:s1", 1)  # as if its time to live had run out
    time.sleep(0.05)
    assert storage.read("s1") is None


def test_expired_sessions_leave_no_index_entries_behind(client: Any, prefix: str) -> None:
    storage = RedisStorage(prefix, client=client)
    seed(storage, 5)
    for session_id in ("s004", "s003"):  # the two newest, as if their time to live had run out
        client.pexpire(f"{prefix}:{session_id}", 1)
    time.sleep(0.05)
    assert [s.session_id for s in storage.get_recent_sessions(limit=2)] == ["s002", "s001"]
    assert storage.get_all_session_ids(user_id="u0") == ["s000"]  # s003 was u0's: pruned everywhere
    index_keys = [k for k in client.scan_iter(match=f"{prefix}\0*") if client.type(k) == b"zset"]
    members = {m for key in index_keys for m in client.zrange(key, 0, -1)}
    assert members == {b"s000", b"s001", b"s002"}
    assert set(client.hkeys(f"{prefix}\0agent\0members")) == members


def test_sessions_live_under_agnos_keys_as_json(client: Any, prefix: str) -> None:
    storage = RedisStorage(prefix, client=client)
    storage.upsert(AgentSession(session_id="s1", agent_id="a", memory={"runs": []}))
    value = json.loads(client.get(f"{prefix}:s1"))
    assert value["session_id"] == "s1" and value["agent_id"] == "a" and value["memory"] == {"runs": []}
    assert list(client.scan_iter(match=f"{prefix}:*")) == [
        f"{prefix}:s1".encode()
    ]  # agno's SCAN sees only it


def agno_redis(redis_url: str, prefix: str, mode: str = "agent") -> Any:
    """agno 1.8.4's own RedisStorage on the test server."""
    from agno.storage.redis import RedisStorage as AgnoRedis

    url = redis.connection.parse_url(redis_url)
    return AgnoRedis(
        prefix, host=url.get("host", "localhost"), port=url.get("port", 6379), db=url.get("db", 0), mode=mode
    )


@pytest.mark.parametrize("mode", ["agent", "team", "workflow", "workflow_v2"])
def test_sessions_agno_wrote_are_listed_on_first_use(
    redis_url: str, client: Any, prefix: str, mode: str
) -> None:
    """A user who swaps the import over agno's data lists every session agno wrote, without a call
    to upgrade_schema()."""
    pytest.importorskip("agno")
    from agno.storage.session import AgentSession as AgnoAgent
    from agno.storage.session import TeamSession as AgnoTeam
    from agno.storage.session.v2.workflow import WorkflowSession as AgnoWorkflowV2
    from agno.storage.session.workflow import WorkflowSession as AgnoWorkflow

    make_session = {
        "agent": lambda i: AgnoAgent(
            session_id=f"s{i}", user_id=f"u{i % 2}", agent_id="e", created_at=10 + i
        ),
        "team": lambda i: AgnoTeam(session_id=f"s{i}", user_id=f"u{i % 2}", team_id="e", created_at=10 + i),
        "workflow": lambda i: AgnoWorkflow(
            session_id=f"s{i}", user_id=f"u{i % 2}", workflow_id="e", created_at=10 + i
        ),
        "workflow_v2": lambda i: AgnoWorkflowV2(
            session_id=f"s{i}", user_id=f"u{i % 2}", workflow_id="e", created_at=10 + i
        ),
    }[mode]
    theirs = agno_redis(redis_url, prefix, mode)
    for i in range(4):
        assert theirs.upsert(make_session(i)) is not None
    assert sorted(theirs.get_all_session_ids()) == ["s0", "s1", "s2", "s3"]
    storage = RedisStorage(prefix, client=client, mode=mode, session_types="pydantic")  # type: ignore[arg-type]
    assert storage.get_all_session_ids() == ["s3", "s2", "s1", "s0"]
    assert storage.get_all_session_ids(user_id="u1", entity_id="e") == ["s3", "s1"]
    assert [s.session_id for s in storage.get_recent_sessions(user_id="u0", limit=1)] == ["s2"]
    assert [s.session_id for s in storage.list_sessions(limit=3).items] == ["s3", "s2", "s1"]


def test_agnos_sessions_are_indexed_once_per_prefix_and_mode_and_upgrade_schema_indexes_newer_ones(
    redis_url: str, client: Any, prefix: str
) -> None:
    pytest.importorskip("agno")
    from agno.storage.session import AgentSession as AgnoAgent

    theirs = agno_redis(redis_url, prefix)
    theirs.upsert(AgnoAgent(session_id="old", agent_id="a", created_at=5))
    assert RedisStorage(prefix, client=client).get_all_session_ids() == ["old"]
    assert RedisStorage(prefix, client=client, mode="team").get_all_session_ids() == []  # a mode of its own
    theirs.upsert(AgnoAgent(session_id="newer", agent_id="a", created_at=6))  # agno still writing
    storage = RedisStorage(prefix, client=client)
    log = CommandLog(client)
    assert storage.get_all_session_ids() == ["old"]  # indexed once: remembered in Redis, no SCAN again
    assert "SCAN" not in log.names
    storage.upgrade_schema()
    assert storage.get_all_session_ids() == ["newer", "old"]


def test_many_processes_listing_first_all_see_agnos_sessions_and_index_them_once(
    redis_url: str, client: Any, prefix: str
) -> None:
    pytest.importorskip("agno")
    from agno.storage.session import AgentSession as AgnoAgent

    theirs = agno_redis(redis_url, prefix)
    for i in range(50):
        theirs.upsert(AgnoAgent(session_id=f"s{i:02}", created_at=i))
    expected = [f"s{i:02}" for i in reversed(range(50))]
    clients = [redis.Redis.from_url(redis_url) for _ in range(8)]
    logs = [CommandLog(c) for c in clients]
    start = threading.Barrier(len(clients))
    listed: list[Any] = [None] * len(clients)

    def first_listing(i: int) -> None:
        storage = RedisStorage(prefix, client=clients[i])
        start.wait(timeout=30)
        listed[i] = storage.get_all_session_ids()

    threads = [threading.Thread(target=first_listing, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for c in clients:
        c.close()
    assert listed == [expected] * len(clients)
    assert sum("SCAN" in log.names for log in logs) == 1  # one of them indexed, under the lock


def test_a_storage_connects_through_redis_url(redis_url: str, prefix: str) -> None:
    storage = RedisStorage(prefix, redis_url=redis_url)
    storage.upsert(AgentSession(session_id="s1"))
    assert storage.get_all_session_ids() == ["s1"]


def test_an_unreachable_server_raises_storage_connection_error(prefix: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the socket is closed
    no_retries = redis.retry.Retry(redis.backoff.NoBackoff(), 0)  # fail at once, not after backoffs
    storage = RedisStorage(prefix, client=redis.Redis(host="127.0.0.1", port=port, retry=no_retries))
    with pytest.raises(StorageConnectionError) as raised:
        storage.read("s1")
    assert isinstance(raised.value.__cause__, redis.exceptions.ConnectionError)


def test_serialize_and_deserialize_are_agnos_json_text_of_a_stored_session(client: Any, prefix: str) -> None:
    """agno's RedisStorage has them public; ours stores what serialize returns."""
    storage = RedisStorage(prefix, client=client, session_types="pydantic")
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r1"}]}))
    raw = client.get(f"{prefix}:s1")
    document = storage.deserialize(raw)
    assert document["session_id"] == "s1" and document["memory"] == {"runs": [{"run_id": "r1"}]}
    assert storage.deserialize(storage.serialize(document)) == document
