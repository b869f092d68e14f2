"""Arguments no backend can take are refused alike on every backend, typed (InvalidInputError or
InvalidSessionError, both ValueErrors), before anything is written or read: numbers beyond 64 bits,
listing bounds that are not epoch seconds, cursors list_sessions never issued."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from agno_orm import AgentSession, InvalidInputError, InvalidSessionError, Storage

BEYOND_64_BITS = [2**63, -(2**63) - 1]


def cursor_of(value: Any) -> str:
    """A cursor in list_sessions' own encoding around `value`."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode("ascii")


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
@pytest.mark.parametrize("value", BEYOND_64_BITS)
def test_a_timestamp_beyond_64_bits_is_refused_and_nothing_is_written(
    storage: Storage, field: str, value: int
) -> None:
    with pytest.raises(InvalidSessionError, match=field):
        storage.upsert(AgentSession(session_id="s1", **{field: value}))
    assert storage.read("s1") is None
    assert storage.get_all_session_ids() == []


def test_the_largest_64_bit_timestamp_is_stored(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", created_at=2**63 - 1))
    read = storage.read("s1")
    assert read is not None and read.created_at == 2**63 - 1


@pytest.mark.parametrize(
    "call",
    [
        lambda storage: storage.get_recent_sessions(limit=2**63),
        lambda storage: storage.read("s1", runs_limit=2**63),
        lambda storage: storage.list_sessions(limit=2**63),
    ],
    ids=["get_recent_sessions", "read", "list_sessions"],
)
def test_a_limit_beyond_64_bits_is_refused(storage: Storage, call: Any) -> None:
    storage.upsert(AgentSession(session_id="s1"))
    with pytest.raises(InvalidInputError, match="limit"):
        call(storage)


@pytest.mark.parametrize("bound", ["since", "until"])
@pytest.mark.parametrize("value", ["abc", 1.5, True, 2**63])
def test_list_sessions_refuses_since_and_until_that_are_not_epoch_seconds(
    storage: Storage, bound: str, value: Any
) -> None:
    storage.upsert(AgentSession(session_id="s1", created_at=100))
    with pytest.raises(InvalidInputError, match=bound):
        storage.list_sessions(**{bound: value})


@pytest.mark.parametrize(
    "cursor",
    [
        5,
        "\ud800",
        cursor_of([1, "\ud800"]),  # a session id with a lone surrogate
        cursor_of([1, ""]),
        cursor_of([2**63, "s1"]),
        cursor_of([True, "s1"]),
    ],
    ids=repr,
)
def test_list_sessions_refuses_a_cursor_it_never_issued(storage: Storage, cursor: Any) -> None:
    storage.upsert(AgentSession(session_id="s1", created_at=100))
    with pytest.raises(InvalidInputError, match="cursor"):
        storage.list_sessions(cursor=cursor)


def test_list_sessions_takes_its_own_cursors_and_bounds(storage: Storage) -> None:
    for i in range(3):
        storage.upsert(AgentSession(session_id=f"s{i}", created_at=100 + i))
    first = storage.list_sessions(limit=1, since=100, until=102)
    assert [s.session_id for s in first.items] == ["s1"]
    second = storage.list_sessions(limit=1, since=100, until=102, cursor=first.next_cursor)
    assert [s.session_id for s in second.items] == ["s0"] and second.next_cursor is None
