"""Alembic revisions: the command line from the repository root, and the same revisions from code."""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, Index, MetaData, String, Table, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.schema import DropIndex

from agno_orm import AgentSession, SchemaError, SchemaOutOfDateError, SqliteStorage, TeamSession
from agno_orm.errors import InvalidInputError
from agno_orm.sql import SqlStorage, migrations
from agno_orm.sql.dialects import hooks_for
from agno_orm.sql.models import DEFAULT_TABLE_NAMES, TableSpec
from tests.sql.conftest import _empty_mysql_database, run_alembic

DEFAULT_TABLES = sorted(DEFAULT_TABLE_NAMES.values())


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    engine = create_engine(empty_db_url)
    yield engine
    engine.dispose()


def default_schema(engine: Engine) -> str | None:
    return "ai" if engine.dialect.name == "postgresql" else None


def versions(engine: Engine, spec: TableSpec) -> str | None:
    with engine.connect() as connection:
        return migrations.table_state(connection, spec).revision


def storage_for(engine: Engine, table_name: str, **options: object) -> SqlStorage:
    """A storage of the engine's dialect (SqlStorage is what both dialect classes are)."""
    return SqlStorage(table_name, engine, schema=default_schema(engine), **options)  # type: ignore[arg-type]


def ok(result: object) -> None:
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"  # type: ignore[attr-defined]


# -- the command line ----------------------------------------------------------------------------


def test_single_head() -> None:
    script = ScriptDirectory(str(migrations.script_location()))
    assert script.get_heads() == [migrations.head_revision()]


def test_alembic_upgrade_head_creates_the_default_tables(empty_db_url: str, engine: Engine) -> None:
    ok(run_alembic(empty_db_url, "upgrade", "head"))
    schema = default_schema(engine)
    names = set(inspect(engine).get_table_names(schema=schema))
    assert set(DEFAULT_TABLES) <= names
    assert "alembic_version" not in names
    for mode, table in DEFAULT_TABLE_NAMES.items():
        assert versions(engine, TableSpec(mode, table, schema)) == migrations.head_revision()


def test_alembic_check_reports_no_drift_after_upgrade(empty_db_url: str) -> None:
    ok(run_alembic(empty_db_url, "upgrade", "head"))
    result = run_alembic(empty_db_url, "check")
    ok(result)
    assert "No new upgrade operations detected" in result.stdout


def test_alembic_check_reports_drift(empty_db_url: str, engine: Engine) -> None:
    ok(run_alembic(empty_db_url, "upgrade", "head"))
    schema = default_schema(engine)
    table = Table("team_sessions", MetaData(), Column("team_id", String(255)), schema=schema)
    with engine.begin() as connection:  # DROP INDEX as the dialect spells it (MySQL: ... ON table)
        connection.execute(DropIndex(Index("team_sessions_by_entity", table.c.team_id)))
    result = run_alembic(empty_db_url, "check")
    assert result.returncode != 0
    assert "team_sessions_by_entity" in result.stdout + result.stderr


def test_alembic_downgrade_base_removes_the_tables_and_upgrade_restores_them(
    empty_db_url: str, engine: Engine
) -> None:
    ok(run_alembic(empty_db_url, "upgrade", "head"))
    ok(run_alembic(empty_db_url, "downgrade", "base"))
    schema = default_schema(engine)
    assert not set(DEFAULT_TABLES) & set(inspect(engine).get_table_names(schema=schema))
    ok(run_alembic(empty_db_url, "upgrade", "head"))
    ok(run_alembic(empty_db_url, "check"))


def test_x_options_choose_table_name_mode_and_schema(empty_db_url: str, engine: Engine) -> None:
    schema = "custom" if engine.dialect.name == "postgresql" else None
    args = ["-x", "table=my_teams", "-x", "mode=team", *(["-x", f"schema={schema}"] if schema else [])]
    ok(run_alembic(empty_db_url, *args, "upgrade", "head"))
    ok(run_alembic(empty_db_url, *args, "check"))
    columns = {c["name"] for c in inspect(engine).get_columns("my_teams", schema=schema)}
    assert {"team_id", "team_data", "team_session_id", "workflow_session_id"} <= columns
    assert versions(engine, TableSpec("team", "my_teams", schema)) == migrations.head_revision()
    assert not set(DEFAULT_TABLES) & set(inspect(engine).get_table_names(schema=schema))


def test_x_option_typos_are_refused(empty_db_url: str) -> None:
    result = run_alembic(empty_db_url, "-x", "tabel=x", "upgrade", "head")
    assert result.returncode != 0
    assert "unknown -x option" in result.stderr


def test_missing_url_names_the_variable_to_set(empty_db_url: str) -> None:
    result = run_alembic("", "upgrade", "head")
    assert result.returncode != 0
    assert "AGNO_ORM_DB_URL" in result.stderr


def test_host_alembic_version_and_tables_are_left_alone(empty_db_url: str, engine: Engine) -> None:
    schema = default_schema(engine)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('host_rev_1')"))
        connection.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY)"))
        if schema:  # a host table inside our schema, too
            connection.execute(text(f"CREATE SCHEMA {schema}"))
            connection.execute(text(f"CREATE TABLE {schema}.host_things (id INTEGER PRIMARY KEY)"))
    ok(run_alembic(empty_db_url, "upgrade", "head"))
    result = run_alembic(empty_db_url, "check")
    ok(result)  # autogenerate proposes nothing, in particular no drop of the host's tables
    ok(run_alembic(empty_db_url, "downgrade", "base"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "host_rev_1"
    assert {"orders", "alembic_version"} <= set(inspect(engine).get_table_names())
    if schema:
        assert "host_things" in inspect(engine).get_table_names(schema=schema)


# -- the same revisions from code ----------------------------------------------------------------------


def test_storages_with_different_tables_upgrade_independently(engine: Engine) -> None:
    schema = default_schema(engine)
    first, second = (
        TableSpec("agent", "first_sessions", schema),
        TableSpec("agent", "second_sessions", schema),
    )
    migrations.upgrade(engine, [first], "0001")
    migrations.upgrade(engine, [second])
    assert versions(engine, first) == "0001"
    assert versions(engine, second) == migrations.head_revision()
    storage_for(engine, "first_sessions", auto_upgrade_schema=True).create()
    assert versions(engine, first) == migrations.head_revision()


def test_missing_table_is_created_at_head_on_first_use(engine: Engine) -> None:
    storage = storage_for(engine, "fresh_sessions")
    assert not storage.table_exists()
    assert storage.read("nope") is None
    assert storage.table_exists()
    assert versions(engine, storage.spec) == migrations.head_revision()


def test_table_behind_head_raises_naming_the_command_and_changes_nothing(engine: Engine) -> None:
    spec = TableSpec("agent", "old_sessions", default_schema(engine))
    migrations.upgrade(engine, [spec], "0001")
    storage = storage_for(engine, "old_sessions")
    with pytest.raises(SchemaOutOfDateError, match="alembic upgrade head -x table=old_sessions"):
        storage.read("s1")
    with pytest.raises(SchemaOutOfDateError):
        storage.upsert(AgentSession(session_id="s1"))
    assert versions(engine, spec) == "0001"
    columns = {c["name"] for c in inspect(engine).get_columns("old_sessions", schema=spec.schema)}
    assert "workflow_session_id" not in columns


def test_auto_upgrade_schema_upgrades_in_place_keeping_rows(engine: Engine) -> None:
    spec = TableSpec("agent", "old_sessions", default_schema(engine))
    migrations.upgrade(engine, [spec], "0001")
    table = f"{spec.schema + '.' if spec.schema else ''}old_sessions"
    with engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO {table} (session_id, user_id, created_at) VALUES ('s1', 'u1', 1000)")
        )
    storage = storage_for(engine, "old_sessions", auto_upgrade_schema=True)
    session = storage.read("s1")
    assert session is not None and session.user_id == "u1" and session.created_at == 1000
    assert versions(engine, spec) == migrations.head_revision()
    storage.upsert(AgentSession(session_id="s1", workflow_session_id="w1"))
    assert storage.read("s1").workflow_session_id == "w1"  # type: ignore[union-attr]


def test_upgrade_schema_runs_the_revisions(engine: Engine) -> None:
    spec = TableSpec("agent", "old_sessions", default_schema(engine))
    migrations.upgrade(engine, [spec], "0001")
    storage_for(engine, "old_sessions").upgrade_schema()
    assert versions(engine, spec) == migrations.head_revision()


def test_unversioned_table_of_agno_shape_is_adopted_at_the_baseline(engine: Engine) -> None:
    spec = TableSpec("team", "agno_teams", default_schema(engine))
    migrations.upgrade(engine, [spec], "0001")
    with engine.begin() as connection:
        migrations.version_table(spec).drop(connection)
    assert versions(engine, spec) is None
    storage = storage_for(engine, "agno_teams", mode="team")  # no auto_upgrade_schema: adopted on first use
    storage.upsert(TeamSession(session_id="t1", workflow_session_id="w1"))
    assert versions(engine, spec) == migrations.head_revision()


def test_table_of_another_mode_raises_schema_error(engine: Engine) -> None:
    storage_for(engine, "agents").create()
    with pytest.raises(SchemaError, match="does not hold team sessions"):
        storage_for(engine, "agents", mode="team").read("x")


def test_revision_unknown_to_this_version_raises(engine: Engine) -> None:
    storage = storage_for(engine, "future_sessions")
    storage.create()
    with engine.begin() as connection:
        version = migrations.version_table(storage.spec)
        connection.execute(version.update().values(version_num="9999"))
    with pytest.raises(SchemaError, match="9999"):
        storage_for(engine, "future_sessions").read("x")


@pytest.mark.parametrize("name", ["x; DROP TABLE y", 'a"b', "1abc", "", "a" * 56, "../x"])
def test_table_names_that_are_not_plain_identifiers_are_refused(engine: Engine, name: str) -> None:
    with pytest.raises(InvalidInputError, match="table_name"):
        storage_for(engine, name)


def test_schema_names_that_are_not_plain_identifiers_are_refused(engine: Engine) -> None:
    with pytest.raises(InvalidInputError, match="schema"):
        SqlStorage("ok", engine, schema="ai; DROP SCHEMA public")


def test_schema_version_other_than_1_is_refused(tmp_path: object) -> None:
    with pytest.raises(SchemaError, match="schema_version"):
        SqliteStorage("t", schema_version=2)


def _create_concurrently(url: str, schema: str | None, barrier: Any, results: Any) -> None:
    """One process starting up: a storage per mode with auto_upgrade_schema, each first used at once
    with the other processes'. Reports the revisions it ran and the calls that failed."""
    steps: list[str] = []

    class Steps(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Running upgrade"):
                steps.append(record.getMessage())

    logger = logging.getLogger("alembic.runtime.migration")
    logger.addHandler(Steps())
    logger.setLevel(logging.INFO)
    engine = create_engine(url)
    storages = [
        SqlStorage(table, engine, schema=schema, mode=mode, auto_upgrade_schema=True)
        for mode, table in DEFAULT_TABLE_NAMES.items()
    ]
    with engine.connect():  # connected and imported: only the upgrade itself is left to race
        pass
    failures: list[str] = []
    barrier.wait(timeout=60)
    for storage in storages:
        try:
            storage.create()
        except Exception as exc:  # reported to the test, which names every failure
            failures.append(f"{storage.table_name}: {exc!r}")
    engine.dispose()
    results.put((steps, failures))


@pytest.mark.parametrize("start_at", [None, "0002"], ids=["fresh", "at_0002"])
def test_six_processes_starting_at_once_upgrade_each_table_once(
    empty_db_url: str, engine: Engine, start_at: str | None
) -> None:
    schema = default_schema(engine)
    specs = [TableSpec(mode, table, schema) for mode, table in DEFAULT_TABLE_NAMES.items()]
    if start_at:
        migrations.upgrade(engine, specs, start_at)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(6), context.Queue()
    processes = [
        context.Process(target=_create_concurrently, args=(empty_db_url, schema, barrier, results))
        for _ in range(6)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0] * 6
    assert [failure for _, failures in reports for failure in failures] == []
    script = ScriptDirectory(str(migrations.script_location()))
    chain = list(script.iterate_revisions("head", start_at or "base"))
    ran = [step for steps, _ in reports for step in steps]
    assert len(ran) == len(chain) * len(specs), ran  # each table's revisions ran once, in one process
    for spec in specs:
        assert versions(engine, spec) == migrations.head_revision()


# -- the MySQL family: DDL commits as it goes --------------------------------------------------------


MYSQL_FAMILY_BACKENDS = [
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("singlestore", marks=pytest.mark.singlestore),
]


@pytest.fixture(params=MYSQL_FAMILY_BACKENDS)
def mysql_family_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An empty database on MariaDB (through the mysql or the singlestoredb dialect)."""
    for url in _empty_mysql_database(make_url(request.getfixturevalue(f"{request.param}_url"))):
        engine = create_engine(url)
        yield engine
        engine.dispose()


def _first_use(url: str, table_name: str, results: Any) -> None:
    engine = create_engine(url)
    try:
        SqlStorage(table_name, engine, schema=None).create()
        results.put(None)
    except Exception as exc:  # reported to the test
        results.put(repr(exc))
    finally:
        engine.dispose()


def _wait_until(engine: Engine, condition: str, process: Any) -> None:
    """Until the server shows `condition` (a PROCESSLIST predicate; other tests share the server, so
    it names this test's database) or `process` ended."""
    deadline = time.monotonic() + 120
    with engine.connect() as connection:
        while process.is_alive() and time.monotonic() < deadline:
            query = text(f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE {condition}")
            if connection.execute(query).scalar():
                return
            connection.rollback()
            time.sleep(0.05)


def test_a_storage_starting_during_an_upgrade_waits_for_it(mysql_family_engine: Engine) -> None:
    engine = mysql_family_engine
    spec = TableSpec("agent", "busy_sessions", None)
    migrations.upgrade(engine, [spec], "0002")
    hooks = hooks_for(engine.dialect.name)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as upgrading, hooks.upgrade_lock(upgrading):
        # Another process's upgrade, stopped before its COMMIT: every revision's DDL is done (MySQL
        # committed it), the version row still says 0002.
        command.upgrade(migrations.make_config(upgrading, [spec]), "head")
        process = context.Process(target=_first_use, args=(url, spec.table_name, results))
        process.start()
        _wait_until(engine, "STATE = 'User lock' AND DB = DATABASE()", process)
        upgrading.commit()
    assert results.get(timeout=120) is None  # not SchemaOutOfDateError for a state seen half done
    process.join(timeout=60)
    assert versions(engine, spec) == migrations.head_revision()


def test_the_upgrade_lock_is_released_after_the_version_row_is_committed(mysql_family_engine: Engine) -> None:
    engine = mysql_family_engine
    spec = TableSpec("agent", "ordered_sessions", None)
    migrations.upgrade(engine, [spec], "0002")
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_: seen.append(statement))
    event.listen(engine, "commit", lambda _c: seen.append("COMMIT"))
    migrations.upgrade(engine, [spec])
    last_version_write = max(i for i, s in enumerate(seen) if s.startswith("UPDATE") and "version_num" in s)
    release = next(i for i, s in enumerate(seen) if "RELEASE_LOCK" in s)
    assert "COMMIT" in seen[last_version_write:release], seen[last_version_write:]


def test_downgrade_to_0001_and_back_keeps_workflow_session_ids(engine: Engine) -> None:
    schema = default_schema(engine)
    spec = TableSpec("team", "round_trip", schema)
    storage = storage_for(engine, "round_trip", mode="team", session_types="pydantic")
    storage.upsert(TeamSession(session_id="t1", workflow_session_id="w1"))
    storage.upsert(TeamSession(session_id="t2"))
    migrations.downgrade(engine, [spec], "0001")
    columns = {c["name"] for c in inspect(engine).get_columns("round_trip", schema=schema)}
    assert "workflow_session_id" not in columns  # agno 1.8.4's table again
    assert inspect(engine).has_table("round_trip_0002_kept", schema=schema)
    migrations.upgrade(engine, [spec])
    again = storage_for(engine, "round_trip", mode="team", session_types="pydantic")
    assert again.read("t1").workflow_session_id == "w1"  # type: ignore[union-attr]
    assert again.read("t2").workflow_session_id is None  # type: ignore[union-attr]
    assert not inspect(engine).has_table("round_trip_0002_kept", schema=schema)


def test_downgrade_to_base_removes_the_kept_workflow_session_ids_too(engine: Engine) -> None:
    schema = default_schema(engine)
    spec = TableSpec("agent", "gone", schema)
    storage_for(engine, "gone").upsert(AgentSession(session_id="a1", workflow_session_id="w1"))
    migrations.downgrade(engine, [spec], "0001")
    migrations.downgrade(engine, [spec], "base")
    assert not {"gone", "gone_0002_kept"} & set(inspect(engine).get_table_names(schema=schema))
