"""DynamoDbStorage on a DynamoDB-compatible server over loopback (moto's server unless one is given)."""

from __future__ import annotations

import random
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agno_orm import (
    AgentSession,
    InvalidSessionError,
    PayloadTooLargeError,
    StorageConnectionError,
    StorageError,
)
from agno_orm.nosql import DynamoDbStorage
from agno_orm.nosql.dynamodb import MAX_ITEM_BYTES
from tests.backends.dynamodb import TEST_CREDENTIALS
from tests.skip_policy import client_module

pytestmark = pytest.mark.dynamodb
boto3 = client_module("boto3")  # not a module skip: tests/skip_policy.py decides

SESSIONS, BLOB = 30, "x" * 40_000  # 1.2 MB of sessions: more than one 1 MB page of any query or scan


def make(endpoint: str, table_name: str, **options: Any) -> DynamoDbStorage:
    options = {"billing_mode": "PAY_PER_REQUEST", **TEST_CREDENTIALS, **options}
    return DynamoDbStorage(table_name, endpoint_url=endpoint, **options)


@pytest.fixture
def table_name(dynamodb_endpoint: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    make(dynamodb_endpoint, name).drop()


class QueryLog:
    """Wraps a client's query and scan and records each call's arguments."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for operation in ("query", "scan"):
            setattr(client, operation, self._recorded(operation, getattr(client, operation)))

    def _recorded(self, operation: str, call: Any) -> Any:
        def recorded(**arguments: Any) -> Any:
            self.calls.append((operation, arguments))
            return call(**arguments)

        return recorded

    @property
    def pages(self) -> int:
        return len(self.calls)

    @property
    def continued(self) -> int:
        return sum("ExclusiveStartKey" in arguments for _, arguments in self.calls)


@pytest.fixture(scope="module")
def big_table(dynamodb_endpoint: str) -> Iterator[tuple[str, list[str]]]:
    """A table of 30 sessions of 40 KB each, created in shuffled order; their ids newest first."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    storage = make(dynamodb_endpoint, name)
    created = list(range(1, SESSIONS + 1))
    random.Random(4).shuffle(created)
    for n in created:
        storage.upsert(
            AgentSession(
                session_id=f"s{n:02}", user_id="u", agent_id="a", created_at=n, session_data={"b": BLOB}
            )
        )
    yield name, [f"s{n:02}" for n in range(SESSIONS, 0, -1)]
    storage.drop()


def logged_storage(endpoint: str, table_name: str) -> tuple[DynamoDbStorage, QueryLog]:
    storage = make(endpoint, table_name)
    return storage, QueryLog(storage.dynamodb_client)


@pytest.mark.parametrize("filters", [{}, {"user_id": "u"}, {"entity_id": "a"}], ids=["all", "user", "entity"])
def test_listing_follows_last_evaluated_key_past_one_megabyte(
    dynamodb_endpoint: str, big_table: tuple[str, list[str]], filters: dict[str, str]
) -> None:
    storage, log = logged_storage(dynamodb_endpoint, big_table[0])
    sessions = storage.get_all_sessions(**filters)
    assert [s.session_id for s in sessions] == big_table[1]
    assert all(s.session_data == {"b": BLOB} for s in sessions)
    assert log.continued >= 1 and {op for op, _ in log.calls} == {"query"}  # GSIs, no scan


def test_recent_sessions_without_filters_are_the_newest(
    dynamodb_endpoint: str, big_table: tuple[str, list[str]]
) -> None:
    storage, log = logged_storage(dynamodb_endpoint, big_table[0])
    assert [s.session_id for s in storage.get_recent_sessions(limit=3)] == big_table[1][:3]
    assert log.pages == 1  # the index is ordered by time: the first page holds the answer


def test_session_ids_are_listed_from_a_projection(
    dynamodb_endpoint: str, big_table: tuple[str, list[str]]
) -> None:
    storage, log = logged_storage(dynamodb_endpoint, big_table[0])
    assert storage.get_all_session_ids(user_id="u") == big_table[1]
    assert all("ProjectionExpression" in arguments for _, arguments in log.calls)


def test_a_session_over_the_item_limit_is_refused_before_writing(
    dynamodb_endpoint: str, table_name: str
) -> None:
    storage = make(dynamodb_endpoint, table_name)
    storage.upsert(AgentSession(session_id="s1", session_data={"v": 1}))
    with pytest.raises(PayloadTooLargeError, match="400000 bytes"):
        storage.upsert(AgentSession(session_id="s1", session_data={"v": 2, "b": "x" * 500_000}))
    read = storage.read("s1")
    assert read is not None and read.session_data == {"v": 1}


def test_a_session_just_under_the_item_limit_is_stored(dynamodb_endpoint: str, table_name: str) -> None:
    storage = make(dynamodb_endpoint, table_name)
    blob = "é" * ((MAX_ITEM_BYTES - 1_000) // 2)  # two bytes each in UTF-8
    storage.upsert(AgentSession(session_id="s1", session_data={"b": blob}))
    read = storage.read("s1")
    assert read is not None and read.session_data == {"b": blob}


@pytest.mark.parametrize("billing_mode", ["PAY_PER_REQUEST", "PROVISIONED"])
def test_a_created_table_has_agnos_indexes_and_the_billing_asked_for(
    dynamodb_endpoint: str, table_name: str, billing_mode: str
) -> None:
    storage = make(dynamodb_endpoint, table_name, billing_mode=billing_mode)
    storage.create()
    table = storage.dynamodb_client.describe_table(TableName=table_name)["Table"]
    indexes = {
        i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in table["GlobalSecondaryIndexes"]
    }
    assert indexes["user_id-index"] == ["user_id", "created_at"]
    assert indexes["agent_id-index"] == ["agent_id", "created_at"]
    assert indexes["team_id-index"] == ["team_id", "created_at"]
    assert indexes["workflow_id-index"] == ["workflow_id", "created_at"]
    assert indexes["mode-index"] == ["mode", "created_at"]
    assert table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == billing_mode


def test_a_missing_table_is_an_error_when_it_may_not_be_created(
    dynamodb_endpoint: str, table_name: str
) -> None:
    storage = make(dynamodb_endpoint, table_name, create_table_if_not_exists=False)
    with pytest.raises(StorageError, match="does not exist"):
        storage.read("s1")
    assert not storage.table_exists()


def test_a_table_agno_made_is_read_and_listed(dynamodb_endpoint: str, table_name: str) -> None:
    client = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, **TEST_CREDENTIALS)
    gsi = [
        {
            "IndexName": f"{field}-index",
            "KeySchema": [
                {"AttributeName": field, "KeyType": "HASH"},
                {"AttributeName": "created_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        for field in ("user_id", "agent_id")
    ]
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in [("session_id", "S"), ("user_id", "S"), ("agent_id", "S"), ("created_at", "N")]
        ],
        GlobalSecondaryIndexes=gsi,
        BillingMode="PAY_PER_REQUEST",
    )
    for n in (1, 2):  # agno's items: native maps, numbers, no mode
        client.put_item(
            TableName=table_name,
            Item={
                "session_id": {"S": f"s{n}"},
                "user_id": {"S": "u"},
                "agent_id": {"S": "a"},
                "created_at": {"N": str(n)},
                "memory": {"M": {"runs": {"L": [{"M": {"score": {"N": "0.5"}, "n": {"N": "3"}}}]}}},
            },
        )
    storage = make(dynamodb_endpoint, table_name)
    read = storage.read("s1", user_id="u")
    assert read is not None and read.memory == {"runs": [{"score": 0.5, "n": 3}]}
    assert storage.get_all_session_ids() == ["s2", "s1"]  # no mode-index there: a scan, then ordered
    assert storage.get_all_session_ids(user_id="u", entity_id="a") == ["s2", "s1"]


def test_an_unreachable_endpoint_raises_storage_connection_error(table_name: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the socket is closed
    config = boto3.session.Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1)
    client = boto3.client(
        "dynamodb", endpoint_url=f"http://127.0.0.1:{port}", config=config, **TEST_CREDENTIALS
    )
    with pytest.raises(StorageConnectionError):
        DynamoDbStorage(table_name, client=client).read("s1")


def test_an_empty_user_id_is_refused_as_an_index_key(dynamodb_endpoint: str, table_name: str) -> None:
    storage = make(dynamodb_endpoint, table_name)
    with pytest.raises(InvalidSessionError, match="empty user_id"):
        storage.upsert(AgentSession(session_id="s1", user_id=""))
    assert storage.get_all_session_ids(user_id="") == []
