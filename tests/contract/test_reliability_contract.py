"""Reliability and hostile input, once, for every backend: concurrent writers lose no run, conflicts
are the user's choice, limits hold, bad input is refused with nothing written, and JSON round-trips."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agno_orm import (
    AgentSession,
    InvalidInputError,
    InvalidSessionError,
    PayloadTooLargeError,
    SessionConflictError,
    Storage,
)
from tests.conftest import StorageFactory


def run_ids(session: Any) -> list[str]:
    return [run["run_id"] for run in session.memory["runs"]]


def with_runs(session_id: str, *run_ids: str, **fields: Any) -> AgentSession:
    return AgentSession(
        session_id=session_id,
        memory={"runs": [{"run_id": r, "content": f"answer {r}"} for r in run_ids]},
        **fields,
    )


# -- concurrent writers ---------------------------------------------------------------------------


def test_two_writers_of_one_version_both_keep_their_runs(make_storage: StorageFactory) -> None:
    first, second = make_storage(), make_storage()
    first.upsert(with_runs("s1", "r0"))
    a, b = first.read("s1"), second.read("s1")
    assert a is not None and b is not None
    first.upsert(with_runs("s1", *run_ids(a), "from-first"))
    second.upsert(with_runs("s1", *run_ids(b), "from-second"))
    stored = first.read("s1")
    assert stored is not None and sorted(run_ids(stored)) == ["from-first", "from-second", "r0"]


def test_an_upsert_keeps_stored_runs_it_does_not_carry(storage: Storage) -> None:
    storage.upsert(with_runs("s1", "r0", "r1", "r2"))
    last = storage.read("s1", runs_limit=1)  # an agent that reads only its last run
    assert last is not None and run_ids(last) == ["r2"]
    storage.upsert(with_runs("s1", "r2", "r3"))
    stored = storage.read("s1")
    assert stored is not None and run_ids(stored) == ["r0", "r1", "r2", "r3"]


def test_by_default_the_last_writer_wins_the_session_fields(make_storage: StorageFactory) -> None:
    first, second = make_storage(), make_storage()
    first.upsert(AgentSession(session_id="s1", session_data={"by": "nobody"}))
    a, b = first.read("s1"), second.read("s1")
    assert a is not None and b is not None
    a.session_data, b.session_data = {"by": "first"}, {"by": "second"}
    first.upsert(a)
    second.upsert(b)
    stored = first.read("s1")
    assert stored is not None and stored.session_data == {"by": "second"}


def test_raise_refuses_a_write_over_a_version_its_writer_did_not_read(make_storage: StorageFactory) -> None:
    first, second = make_storage(on_conflict="raise"), make_storage(on_conflict="raise")
    first.upsert(with_runs("s1", "r0", session_data={"by": "nobody"}))
    stale = second.read("s1")
    fresh = first.read("s1")
    assert stale is not None and fresh is not None
    fresh.session_data = {"by": "first"}
    first.upsert(fresh)
    stale.session_data = {"by": "second"}
    stale.memory = {"runs": [*stale.memory["runs"], {"run_id": "lost?"}]}  # type: ignore[attr-defined]
    with pytest.raises(SessionConflictError) as raised:
        second.upsert(stale)
    assert (raised.value.expected, raised.value.found) == (1, 2)
    stored = second.read("s1")
    assert stored is not None and stored.session_data == {"by": "first"} and run_ids(stored) == ["r0"]


def test_raise_matches_a_session_passed_as_a_dict_to_the_version_last_read(
    make_storage: StorageFactory,
) -> None:
    first, second = make_storage(on_conflict="raise"), make_storage(on_conflict="raise")
    first.upsert({"session_id": "s1", "session_data": {"n": 0}})
    second.read("s1")  # as agno does: read, then upsert a session it builds itself
    second.upsert({"session_id": "s1", "session_data": {"n": 1}})
    with pytest.raises(SessionConflictError):
        first.upsert({"session_id": "s1", "session_data": {"n": 2}})  # first last saw version 1
    first.read("s1")
    first.upsert({"session_id": "s1", "session_data": {"n": 2}})
    stored = first.read("s1")
    assert stored is not None and stored.session_data == {"n": 2}


def test_raise_refuses_creating_a_session_another_writer_created(make_storage: StorageFactory) -> None:
    first, second = make_storage(on_conflict="raise"), make_storage(on_conflict="raise")
    assert second.read("s1") is None
    first.upsert(AgentSession(session_id="s1", user_id="first"))
    with pytest.raises(SessionConflictError):
        second.upsert(AgentSession(session_id="s1", user_id="second"))
    stored = second.read("s1")
    assert stored is not None and stored.user_id == "first"


def test_raise_accepts_upserting_the_same_session_again(make_storage: StorageFactory) -> None:
    storage = make_storage(on_conflict="raise")
    session = AgentSession(session_id="s1")
    storage.upsert(session)
    session.session_data = {"again": True}
    storage.upsert(session)
    stored = storage.read("s1")
    assert stored is not None and stored.session_data == {"again": True}


def test_raise_accepts_recreating_a_session_it_deleted(make_storage: StorageFactory) -> None:
    storage = make_storage(on_conflict="raise")
    storage.upsert(AgentSession(session_id="s1"))
    storage.delete_session("s1")
    storage.upsert(AgentSession(session_id="s1", user_id="again"))
    stored = storage.read("s1")
    assert stored is not None and stored.user_id == "again"


def test_writers_that_reread_and_retry_on_conflict_lose_no_update(make_storage: StorageFactory) -> None:
    """A soak: threads interleave as the scheduler has them. The interleaving that decides (a writer
    held at its point of contention while another writes) is forced in
    tests/reliability/test_interleaved_writers.py, so that one run decides."""
    storage = make_storage(on_conflict="raise")
    storage.upsert(AgentSession(session_id="s1", session_data={"count": 0}))
    threads, increments = 4, 5

    def add_one() -> None:
        while True:
            session = storage.read("s1")
            assert session is not None and session.session_data is not None
            session.session_data = {"count": session.session_data["count"] + 1}
            try:
                storage.upsert(session)
                return
            except SessionConflictError:
                continue  # re-read, re-apply, retry

    def worker() -> None:
        for _ in range(increments):
            add_one()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    stored = storage.read("s1")
    assert stored is not None and stored.session_data == {"count": threads * increments}


def test_on_conflict_must_be_overwrite_or_raise(make_storage: StorageFactory) -> None:
    with pytest.raises(InvalidInputError, match="on_conflict"):
        make_storage(on_conflict="merge")


# -- size limit ------------------------------------------------------------------------------------


def test_a_session_over_max_payload_bytes_is_refused_and_nothing_written(
    make_storage: StorageFactory,
) -> None:
    storage = make_storage(max_payload_bytes=4_000)
    storage.upsert(AgentSession(session_id="s1", session_data={"blob": "small"}))
    with pytest.raises(PayloadTooLargeError, match="max_payload_bytes=4000"):
        storage.upsert(AgentSession(session_id="s1", session_data={"blob": "é" * 2_500}))  # 5,000 bytes
    stored = storage.read("s1")
    assert stored is not None and stored.session_data == {"blob": "small"}


def test_a_session_under_max_payload_bytes_is_stored(make_storage: StorageFactory) -> None:
    storage = make_storage(max_payload_bytes=4_000)
    storage.upsert(AgentSession(session_id="s1", session_data={"blob": "x" * 3_000}))
    stored = storage.read("s1")
    assert stored is not None and stored.session_data == {"blob": "x" * 3_000}


def test_by_default_a_session_over_8_mib_is_refused_and_nothing_written(storage: Storage) -> None:
    with pytest.raises(PayloadTooLargeError, match="max_payload_bytes=8388608"):
        storage.upsert(AgentSession(session_id="s1", session_data={"blob": "x" * (8 * 1024 * 1024)}))
    assert storage.get_all_session_ids() == []


def test_max_payload_bytes_must_be_a_positive_int_or_none(make_storage: StorageFactory) -> None:
    for limit in [0, -1, 1.5, "big", True]:
        with pytest.raises(InvalidInputError, match="max_payload_bytes"):
            make_storage(max_payload_bytes=limit)


# -- hostile and bad input ------------------------------------------------------------------------

IMPOSSIBLE_IDS = ["", "a\0b", "x" * 5_000, "lone \ud800 surrogate"]
PATH_LIKE_IDS = [
    "../x",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b",
    "a\\b",
    ".",
    "..",
    "a:b",
    "*",
    "%2e%2e",
    " ",
]


def test_session_ids_no_session_can_have_are_refused_by_upsert(storage: Storage) -> None:
    for session_id in IMPOSSIBLE_IDS:
        with pytest.raises(InvalidSessionError, match="session_id"):
            storage.upsert({"session_id": session_id})
    assert storage.get_all_session_ids() == []


def test_session_ids_no_session_can_have_are_refused_by_read_and_delete(storage: Storage) -> None:
    for session_id in IMPOSSIBLE_IDS:
        with pytest.raises(InvalidInputError, match=r"session_id|session can have"):
            storage.read(session_id)
        with pytest.raises(InvalidInputError, match=r"session_id|session can have"):
            storage.delete_session(session_id)


def test_session_ids_like_paths_are_stored_apart_and_read_back(storage: Storage) -> None:
    for session_id in PATH_LIKE_IDS:
        storage.upsert(AgentSession(session_id=session_id, agent_id=session_id))
    assert sorted(storage.get_all_session_ids()) == sorted(PATH_LIKE_IDS)
    for session_id in PATH_LIKE_IDS:
        read = storage.read(session_id)
        assert read is not None and read.agent_id == session_id  # type: ignore[attr-defined]


def test_a_user_id_that_is_not_text_is_refused_by_every_method_taking_one(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", user_id="1"))
    calls = {
        "read": lambda: storage.read("s1", user_id=1),  # type: ignore[arg-type]
        "delete_session": lambda: storage.delete_session("s1", user_id=1),  # type: ignore[arg-type]
        "get_all_session_ids": lambda: storage.get_all_session_ids(user_id=1),  # type: ignore[arg-type]
        "get_recent_sessions": lambda: storage.get_recent_sessions(user_id=1),  # type: ignore[arg-type]
    }
    for name, call in calls.items():
        with pytest.raises(InvalidInputError, match="user_id"):
            call()
        assert storage.read("s1") is not None, name


def test_an_entity_id_that_is_not_text_is_refused(storage: Storage) -> None:
    with pytest.raises(InvalidInputError, match="entity_id"):
        storage.get_all_session_ids(entity_id=1.5)  # type: ignore[arg-type]


def test_a_payload_nested_thousands_deep_is_refused_and_nothing_written(storage: Storage) -> None:
    deep: Any = "leaf"
    for _ in range(5_000):
        deep = {"k": deep}
    with pytest.raises(InvalidSessionError, match="nested"):
        storage.upsert(AgentSession(session_id="s1", session_data={"deep": deep}))
    assert storage.get_all_session_ids() == []


UNSTORABLE_TEXT = [
    {"session_data": {"text": "lone \udc00"}},
    {"session_data": {"key \ud83d": 1}},
    {"memory": {"runs": [{"run_id": "r1", "content": "NUL \x00 inside"}]}},
    {"user_id": "u\udfff"},
    {"agent_id": "a\x00b"},
]


def test_text_no_backend_can_store_is_refused_and_nothing_written(storage: Storage) -> None:
    for fields in UNSTORABLE_TEXT:
        with pytest.raises(InvalidSessionError, match=r"surrogate|NUL"):
            storage.upsert(AgentSession(session_id="s1", **fields))
    assert storage.get_all_session_ids() == []


SQL_SMUGGLING_NAMES = [
    't"; DROP TABLE agent_sessions; --',
    "t`; DROP DATABASE test; #",
    "t' OR '1'='1",
    "t\0nul",
]


def test_a_table_name_smuggling_sql_is_refused_or_names_only_itself(
    make_storage: StorageFactory, storage: Storage
) -> None:
    storage.upsert(AgentSession(session_id="kept"))
    for name in SQL_SMUGGLING_NAMES:
        try:
            hostile = make_storage(table_name=name)
        except InvalidInputError:
            continue  # the SQL, MongoDB and DynamoDB backends: not a name they take
        # a directory or a key prefix: the name is data, never code
        hostile.upsert(AgentSession(session_id=f"s-{len(name)}"))
        assert hostile.get_all_session_ids() == [f"s-{len(name)}"]
    assert storage.get_all_session_ids() == ["kept"]


def test_read_with_an_empty_user_id_does_not_return_another_users_session(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", user_id="alice"))
    assert storage.read("s1", user_id="") is None


def test_ids_differing_in_trailing_spaces_never_reach_each_others_session(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", user_id="alice"))
    try:  # MySQL's collations find "s1 " equal to "s1": refused there, a session of its own elsewhere
        storage.upsert(AgentSession(session_id="s1 ", user_id="mallory"))
    except InvalidSessionError:
        assert storage.read("s1 ") is None
    else:
        assert storage.read("s1 ").user_id == "mallory"  # type: ignore[union-attr]
    assert storage.read("s1").user_id == "alice"  # type: ignore[union-attr]
    assert storage.read("s1", user_id="alice ") is None
    assert storage.get_all_session_ids(user_id="alice ") == []
    storage.delete_session("s1", user_id="alice ")
    assert storage.read("s1") is not None


def test_non_string_ids_are_refused_by_upsert_and_delete_and_nothing_written(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="1", user_id="alice"))
    for bad in [1, 1.5, b"s1", None, ["s1"]]:
        with pytest.raises(InvalidSessionError, match="session_id"):
            storage.upsert({"session_id": bad})
        with pytest.raises(InvalidSessionError, match="user_id"):
            storage.upsert({"session_id": "s2", "user_id": bad if bad is not None else 7})
    for bad in [1, 1.5, b"1", ["1"]]:
        with pytest.raises(InvalidInputError, match="session_id"):
            storage.delete_session(bad)  # type: ignore[arg-type]
    assert storage.get_all_session_ids() == ["1"]


def test_a_user_filter_never_reaches_a_session_stored_without_a_user(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", memory={"runs": [{"run_id": "r1"}]}))
    assert storage.read("s1", user_id="alice") is None
    assert storage.get_all_session_ids(user_id="alice") == []
    storage.delete_session("s1", user_id="alice")
    read = storage.read("s1")
    assert read is not None and run_ids(read) == ["r1"]


def test_delete_by_session_and_user_deletes_that_users_session_and_its_runs(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="s1", user_id="alice", memory={"runs": [{"run_id": "r1"}]}))
    storage.upsert(AgentSession(session_id="s2", user_id="alice"))
    storage.delete_session("s1", user_id="alice")
    assert storage.read("s1") is None and storage.get_all_session_ids() == ["s2"]
    storage.upsert(with_runs("s1", "r2", user_id="alice"))  # made again: the deleted run stays gone
    read = storage.read("s1")
    assert read is not None and run_ids(read) == ["r2"]


@pytest.mark.parametrize("on_conflict", ["overwrite", "raise"])
def test_an_upsert_by_another_user_is_refused_and_never_hands_them_the_first_users_runs(
    make_storage: StorageFactory, on_conflict: str
) -> None:
    """agno's turn for a user-chosen session id: read(id, user_id=mallory) finds nothing (the session
    is alice's), so the agent upserts a fresh session of mallory's under the same id. An upsert
    keeps stored runs it does not carry, so that write would hand mallory alice's history: it is
    refused, and alice's session stays as it was."""
    storage = make_storage(on_conflict=on_conflict)
    secret = {"run_id": "alice-secret", "content": "alice's history"}
    storage.upsert(AgentSession(session_id="s1", user_id="alice", memory={"runs": [secret]}))
    assert storage.read("s1", user_id="mallory") is None
    # "raise" refuses it as a conflict first: the intruder's read found no session
    with pytest.raises(InvalidSessionError if on_conflict == "overwrite" else SessionConflictError):
        storage.upsert(with_runs("s1", "mallory-1", user_id="mallory"))
    assert storage.read("s1") is not None  # read without a user filter: the version is current
    with pytest.raises(InvalidSessionError, match="another user"):
        storage.upsert(with_runs("s1", "mallory-1", user_id="mallory"))
    assert storage.read("s1", user_id="mallory") is None
    kept = storage.read("s1", user_id="alice")
    assert kept is not None and run_ids(kept) == ["alice-secret"]
    assert storage.get_all_session_ids(user_id="alice") == ["s1"]
    assert storage.get_all_session_ids(user_id="mallory") == []


def test_a_write_naming_no_user_leaves_the_sessions_user_as_it_is(storage: Storage) -> None:
    storage.upsert(with_runs("s1", "r1", user_id="alice"))
    written = storage.upsert({"session_id": "s1", "memory": {"runs": [{"run_id": "r1"}, {"run_id": "r2"}]}})
    assert written.user_id == "alice"
    stored = storage.read("s1", user_id="alice")
    assert stored is not None and run_ids(stored) == ["r1", "r2"]
    assert storage.get_all_session_ids(user_id="alice") == ["s1"]


def test_a_session_stored_without_a_user_may_be_claimed_by_one(storage: Storage) -> None:
    storage.upsert(with_runs("s1", "r1"))
    storage.upsert(with_runs("s1", "r1", "r2", user_id="u1"))
    claimed = storage.read("s1", user_id="u1")
    assert claimed is not None and run_ids(claimed) == ["r1", "r2"]


def test_listing_by_user_never_lists_another_users_session(storage: Storage) -> None:
    storage.upsert(AgentSession(session_id="a1", user_id="alice"))
    storage.upsert(AgentSession(session_id="m1", user_id="mallory"))
    assert storage.get_all_session_ids(user_id="mallory") == ["m1"]
    assert [s.session_id for s in storage.get_all_sessions(user_id="mallory")] == ["m1"]
    assert [s.session_id for s in storage.list_sessions(user_id="mallory").items] == ["m1"]


# -- property: JSON round trip ----------------------------------------------------------------------

# Text: every code point UTF-8 carries but NUL (refused, see agno_orm.codec), so astral characters,
# combining marks, controls, BOM, U+2028 and noncharacters included. Numbers within I-JSON's exact
# range (RFC 7493, +-2**53): PostgreSQL's JSONB keeps numbers as decimals, and returns an integral
# one beyond it (the float 3.634411625579714e16) as an int, of another value (JSON has one number type).
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(min_value=-(2.0**53), max_value=2.0**53)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
OBJECTS = st.dictionaries(TEXT, JSON, max_size=4)


@settings(  # examples: the profile's (tests/conftest.py: 12 by default, 200 under CI)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(session_data=OBJECTS, runs=st.lists(JSON, max_size=3), extra=OBJECTS, user_id=TEXT.filter(bool))
def test_any_json_payload_reads_back_equal(
    storage: Storage, session_data: Any, runs: Any, extra: Any, user_id: str
) -> None:
    session_id = str(uuid.uuid4())
    memory = {"runs": runs, "summary": extra}
    storage.upsert(
        AgentSession(session_id=session_id, user_id=user_id, session_data=session_data, memory=memory)
    )
    read = storage.read(session_id)
    assert read is not None
    assert (read.session_data, read.memory, read.user_id) == (session_data, memory, user_id)  # type: ignore[attr-defined]
