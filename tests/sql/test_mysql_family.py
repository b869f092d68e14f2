"""MySQLStorage and SingleStoreStorage beyond the contract: character sets, ids, URLs, errors.

Each database test runs on a fresh database whose default character set is 3-byte utf8 (see
`empty_db_url`), so nothing here passes because the server happens to default to utf8mb4.
"""

from __future__ import annotations

import socket
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from agno_orm import (
    AgentSession,
    InvalidInputError,
    InvalidSessionError,
    MissingDependencyError,
    MySQLStorage,
    SessionConflictError,
    SingleStoreStorage,
    StorageConnectionError,
    StorageError,
)
from agno_orm.sql import SqlStorage
from agno_orm.sql.dialects import hooks_for
from tests.sql.conftest import run_alembic

MYSQL_FAMILY = [
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("singlestore", marks=pytest.mark.singlestore),
]
on_both = pytest.mark.parametrize("empty_db_url", MYSQL_FAMILY, indirect=True)
on_mysql = pytest.mark.parametrize("empty_db_url", MYSQL_FAMILY[:1], indirect=True)


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    engine = create_engine(empty_db_url)
    yield engine
    engine.dispose()


def storage_at(db_url: str, **options: Any) -> SqlStorage:
    """The storage class of the URL's dialect, on the URL's own database (schema=None)."""
    storage_class = (
        SingleStoreStorage if make_url(db_url).get_backend_name() == "singlestoredb" else MySQLStorage
    )
    options.setdefault("schema", None)
    return storage_class(f"t_{uuid.uuid4().hex[:12]}", db_url=db_url, **options)


def is_singlestore(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(text("SHOW VARIABLES LIKE 'memsql_version'")).first() is not None


# -- character set and ids ---------------------------------------------------------------------------


@on_both
def test_tables_are_utf8mb4_in_a_database_whose_default_is_not(empty_db_url: str, engine: Engine) -> None:
    storage = storage_at(empty_db_url)
    storage.create()
    with engine.connect() as connection:
        if not is_singlestore(engine):
            database_charset = connection.execute(
                text(
                    "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA"
                    " WHERE SCHEMA_NAME = DATABASE()"
                )
            ).scalar()
            assert database_charset in ("utf8", "utf8mb3")
        collation = connection.execute(
            text(
                "SELECT TABLE_COLLATION FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
            ),
            {"t": storage.table_name},
        ).scalar()
    assert collation == "utf8mb4_bin"


@on_both
def test_emoji_and_non_latin_text_round_trip_in_ids_and_payloads(empty_db_url: str) -> None:
    storage = storage_at(empty_db_url)
    session = AgentSession(
        session_id="会话-🚀",
        user_id="用户👤",
        agent_id="агент",
        memory={"runs": [{"messages": [{"role": "user", "content": "héllo 👋 مرحبا 𝄞"}]}]},
        session_data={"session_name": "チャット 💬"},
    )
    storage.upsert(session)
    read = storage.read("会话-🚀")
    assert read is not None
    assert read.to_dict() | {"created_at": None, "updated_at": None} == session.to_dict()
    assert storage.get_all_session_ids(user_id="用户👤", entity_id="агент") == ["会话-🚀"]


@on_both
def test_ids_differing_only_in_case_or_accents_are_different_sessions(empty_db_url: str) -> None:
    storage = storage_at(empty_db_url)
    for session_id, user in [("abc", "lower"), ("ABC", "upper"), ("abć", "accent")]:
        storage.upsert(AgentSession(session_id=session_id, user_id=user))
    assert sorted(storage.get_all_session_ids()) == sorted(["abc", "ABC", "abć"])
    assert [storage.read(i).user_id for i in ["abc", "ABC", "abć"]] == ["lower", "upper", "accent"]  # type: ignore[union-attr]
    assert storage.get_all_session_ids(user_id="LOWER") == []


@on_both
def test_a_session_of_several_megabytes_round_trips(empty_db_url: str) -> None:
    storage = storage_at(empty_db_url)
    runs = [{"run_id": f"r{i}", "content": "x" * 1000 + "é👋"} for i in range(3000)]  # ~3 MB
    storage.upsert(AgentSession(session_id="big", memory={"runs": runs}))
    read = storage.read("big")
    assert read is not None and read.memory == {"runs": runs}


@on_both
def test_schema_names_a_database_created_when_missing(empty_db_url: str, engine: Engine) -> None:
    database = f"agno_orm_{uuid.uuid4().hex[:12]}"
    storage = storage_at(empty_db_url, schema=database)
    try:
        assert not inspect(engine).has_schema(database)
        storage.upsert(AgentSession(session_id="s1"))
        assert inspect(engine).has_schema(database)
        assert storage.table_name in inspect(engine).get_table_names(schema=database)
        assert storage.read("s1") is not None
    finally:
        with engine.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))


# -- URLs and engines -----------------------------------------------------------------------------------


@on_mysql
def test_a_url_without_charset_connects_as_utf8mb4(empty_db_url: str) -> None:
    url = make_url(empty_db_url)
    url = url.set(query={k: v for k, v in url.query.items() if k != "charset"})
    storage = storage_at(url.render_as_string(hide_password=False))
    assert storage.db_engine.url.query["charset"] == "utf8mb4"
    storage.upsert(AgentSession(session_id="s1", user_id="👤"))
    assert storage.get_all_session_ids(user_id="👤") == ["s1"]


@pytest.mark.singlestore
def test_singlestore_storage_opens_a_mysql_url_with_the_singlestoredb_dialect(singlestore_url: str) -> None:
    mysql_url = (
        make_url(singlestore_url).set(drivername="mysql+pymysql").render_as_string(hide_password=False)
    )
    storage = SingleStoreStorage(f"t_{uuid.uuid4().hex[:12]}", db_url=mysql_url)
    try:
        assert storage.db_engine.dialect.name == "singlestoredb"
        storage.upsert(AgentSession(session_id="s1", memory={"runs": ["👋"]}))
        assert storage.read("s1").memory == {"runs": ["👋"]}  # type: ignore[union-attr]
    finally:
        storage.drop()


def test_singlestore_storage_refuses_an_engine_of_another_dialect() -> None:
    # a MySQL engine stands for its URL (agno's examples make one; see SingleStoreStorage), others do not
    engine = create_engine("postgresql+psycopg://user@127.0.0.1/db")
    with pytest.raises(InvalidInputError, match="singlestoredb dialect"):
        SingleStoreStorage("sessions", db_engine=engine)


@pytest.mark.parametrize(
    ("db_url", "message"),
    [
        ("postgresql+psycopg://user@host/db", "singlestoredb:// or mysql"),
        ("singlestoredb://user@host/db?no_such_option=1", "no_such_option"),
        ("not a url", "not a database URL"),
    ],
)
def test_singlestore_storage_refuses_urls_it_cannot_open(db_url: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        SingleStoreStorage("sessions", db_url=db_url)


@pytest.mark.parametrize("storage_class", [MySQLStorage, SingleStoreStorage])
def test_a_storage_needs_a_url_or_an_engine(storage_class: type[SqlStorage]) -> None:
    with pytest.raises(InvalidInputError, match="db_url or db_engine"):
        storage_class("sessions")  # type: ignore[call-arg]


def test_singlestore_without_its_dialect_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy_singlestoredb", None)  # makes its import fail
    with pytest.raises(MissingDependencyError, match=r"agno-orm\[singlestore\]"):
        SingleStoreStorage("sessions", db_url="singlestoredb://user@host/db")


# -- errors ----------------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the socket is: nothing listens there


@pytest.mark.parametrize(
    ("storage_class", "scheme"), [(MySQLStorage, "mysql+pymysql"), (SingleStoreStorage, "singlestoredb")]
)
def test_an_unreachable_server_raises_storage_connection_error(
    storage_class: type[SqlStorage], scheme: str
) -> None:
    storage = storage_class("sessions", db_url=f"{scheme}://root@127.0.0.1:{closed_port()}/db")  # type: ignore[call-arg]
    with pytest.raises(StorageConnectionError, match="unreachable"):
        storage.read("s1")


@pytest.mark.parametrize(
    ("code", "lost"),
    [(2013, True), (2006, True), (2003, True), (1045, True), (1213, False), (1205, False), (1146, False)],
)
def test_only_connection_failures_count_as_lost_connections(code: int, lost: bool) -> None:
    # pymysql raises every server error it has no class for as OperationalError: a deadlock (1213)
    # or a lock wait timeout (1205) is not a lost connection, though the class says "operational".
    error = OperationalError("SELECT 1", {}, pymysql.err.OperationalError(code, "message"))
    assert hooks_for("mysql").is_connection_error(error) is lost
    assert hooks_for("singlestoredb").is_connection_error(error) is lost


class RefusingConnection:
    """A connection whose server refuses GET_LOCK with `code`, and records what it was asked."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.statements: list[str] = []

    def execute(self, statement: Any, parameters: Any = None) -> Any:
        self.statements.append(str(statement))
        raise OperationalError(str(statement), parameters, pymysql.err.OperationalError(self.code, "refused"))


def test_singlestore_upgrades_without_the_lock_where_get_lock_does_not_exist() -> None:
    connection = RefusingConnection(1305)  # FUNCTION GET_LOCK does not exist
    with hooks_for("singlestoredb").upgrade_lock(connection):  # type: ignore[arg-type]
        pass
    assert connection.statements == ["SELECT GET_LOCK(:name, :timeout)"]  # and no RELEASE_LOCK


@pytest.mark.parametrize("dialect", ["mysql", "singlestoredb"])
def test_other_errors_taking_the_upgrade_lock_are_raised(dialect: str) -> None:
    with pytest.raises(OperationalError), hooks_for(dialect).upgrade_lock(RefusingConnection(2013)):  # type: ignore[arg-type]
        pass


def test_mysql_does_not_upgrade_unlocked_when_get_lock_is_missing() -> None:
    with pytest.raises(OperationalError), hooks_for("mysql").upgrade_lock(RefusingConnection(1305)):  # type: ignore[arg-type]
        pass


class TimingOutConnection:
    def execute(self, statement: Any, parameters: Any = None) -> Any:
        class Result:
            def scalar(self) -> int:
                return 0  # GET_LOCK's answer when the timeout passed

        return Result()


def test_waiting_too_long_for_another_upgrade_raises_storage_error() -> None:
    with (
        pytest.raises(StorageError, match="timed out"),
        hooks_for("mysql").upgrade_lock(TimingOutConnection()),
    ):  # type: ignore[arg-type]
        pass


# -- migrations ---------------------------------------------------------------------------------------


@on_mysql
def test_alembic_check_still_sees_a_json_column_turned_into_text(empty_db_url: str, engine: Engine) -> None:
    # MariaDB's JSON reads back as LONGTEXT and that is no drift; any other text type still is.
    result = run_alembic(empty_db_url, "-x", "table=drifting", "-x", "mode=agent", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE drifting MODIFY memory VARCHAR(100)"))
    result = run_alembic(empty_db_url, "-x", "table=drifting", "-x", "mode=agent", "check")
    assert result.returncode != 0
    assert "memory" in result.stdout + result.stderr


# -- ownership under every isolation level ------------------------------------------------------------


class FirstInsertsTogether:
    """Holds each thread's first INSERT into `table` until both threads of a pair reach theirs: two
    writers of one new session id then both pass whatever they do before writing (a SELECT ... FOR
    UPDATE of the missing row, say) before either writes, the interleaving that loses a session."""

    def __init__(self, engine: Engine, table: str) -> None:
        self.prefix = f"INSERT INTO {table} "
        self.barrier = threading.Barrier(2)
        self.waited = threading.local()
        event.listen(engine, "before_cursor_execute", self.before_cursor_execute)

    def before_cursor_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(self.prefix) and not getattr(self.waited, "done", False):
            self.waited.done = True
            self.barrier.wait(timeout=30)

    def next_pair(self) -> None:
        self.barrier = threading.Barrier(2)


@on_mysql
@pytest.mark.parametrize("on_conflict", ["overwrite", "raise"])
@pytest.mark.parametrize("isolation_level", ["READ COMMITTED", "REPEATABLE READ"])
def test_two_users_creating_one_session_id_at_once_never_share_it(
    empty_db_url: str, isolation_level: str, on_conflict: str
) -> None:
    """Both users' first upserts of one new id race (each holding back its INSERT until the other
    reached its own): one creates the session, the other is refused, and the session holds only
    its owner's run, whatever the isolation level (READ COMMITTED takes no gap lock on a missing row)."""
    engine = create_engine(empty_db_url, isolation_level=isolation_level)
    storage = storage_at(empty_db_url, db_engine=engine, on_conflict=on_conflict, session_types="pydantic")
    storage.create()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT @@tx_isolation")).scalar() == isolation_level.replace(" ", "-")
    together = FirstInsertsTogether(engine, storage.table_name)
    refused = (InvalidSessionError, SessionConflictError)
    try:
        for pair in range(20):
            session_id = f"s{pair}"
            outcomes: dict[str, BaseException | None] = {}

            def upsert(user: str, session_id: str = session_id, outcomes: dict[str, Any] = outcomes) -> None:
                private = AgentSession(
                    session_id=session_id, user_id=user, memory={"runs": [{"run_id": f"{user}-private"}]}
                )
                try:
                    storage.upsert(private)
                    outcomes[user] = None
                except BaseException as exc:
                    outcomes[user] = exc

            threads = [threading.Thread(target=upsert, args=(user,)) for user in ("alice", "bob")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            together.next_pair()
            winners = [user for user, outcome in outcomes.items() if outcome is None]
            assert len(winners) == 1, (pair, outcomes)
            (loser,) = {"alice", "bob"} - set(winners)
            assert isinstance(outcomes[loser], refused), (pair, outcomes)
            stored = storage.read(session_id)
            assert stored is not None
            assert (stored.user_id, stored.memory) == (
                winners[0],
                {"runs": [{"run_id": f"{winners[0]}-private"}]},
            )
    finally:
        engine.dispose()
