"""Revisions run again after an interruption, on the MySQL family (whose DDL commits as it goes).

`alembic upgrade` killed half way leaves the DDL it ran behind with the version row still at the
revision before. Run again, every revision must skip what exists, make what is missing, and
finish a data move without losing or doubling anything.

The kill lands inside a data move deterministically: a trigger the test puts on the table makes
the move's UPDATE of one row (in the second batch of 500) wait for a lock the test holds; once the
server shows the migration waiting there, the test kills `alembic` (SIGKILL) and the server
thread it left, as the server does when it notices the client gone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from agno_orm.sql import SqlStorage, migrations
from agno_orm.sql.models import TableSpec
from tests.sql.conftest import REPO, _empty_mysql_database, run_alembic

SESSIONS = 1200  # three batches of the moves (500 rows each); the pause is in the second
PAUSED = "s0700"


@pytest.fixture(
    params=[
        pytest.param("mysql", marks=pytest.mark.mysql),
        pytest.param("singlestore", marks=pytest.mark.singlestore),
    ]
)
def family_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database on MariaDB, through the mysql and the singlestoredb dialects."""
    yield from _empty_mysql_database(make_url(request.getfixturevalue(f"{request.param}_url")))


@pytest.fixture
def mariadb_url(mysql_url: str) -> Iterator[str]:
    """An empty database on MariaDB."""
    yield from _empty_mysql_database(make_url(mysql_url))


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("family_url" if "family_url" in request.fixturenames else "mariadb_url")
    engine = create_engine(url)
    yield engine
    engine.dispose()


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def revision(engine: Engine, spec: TableSpec) -> str | None:
    with engine.connect() as connection:
        return migrations.table_state(connection, spec).revision


def x_args(spec: TableSpec) -> list[str]:
    return ["-x", f"table={spec.table_name}", "-x", f"mode={spec.mode}"]


def run(i: int) -> dict[str, Any]:
    return {"run_id": f"r{i}", "content": f"run {i}"}


def session_runs(n: int) -> list[dict[str, Any]]:
    """Session n's runs: one with an id, and two identical ones without (keyed by content)."""
    return [run(n), {"content": "no id"}, {"content": "no id"}]


def insert_sessions(
    engine: Engine,
    spec: TableSpec,
    *,
    runs: bool = True,
    workflow_session: bool = False,
    count: int = SESSIONS,
) -> None:
    """`count` sessions written as agno writes them (runs inside the row), at revision 0001 or 0002."""
    table = Table(spec.table_name, MetaData(), autoload_with=engine)
    holder = "runs" if spec.mode == "workflow_v2" else "memory"
    rows = []
    for n in range(count):
        held = session_runs(n) if spec.mode == "workflow_v2" else {"runs": session_runs(n), "summary": n}
        row = {"session_id": f"s{n:04}", "user_id": "u1", "created_at": 1000 + n, holder: None}
        if runs:
            row[holder] = json.dumps(held)
        if workflow_session:
            row["workflow_session_id"] = f"w{n}"
        rows.append(row)
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)


def storage(engine: Engine, spec: TableSpec) -> SqlStorage:
    return SqlStorage(spec.table_name, engine, mode=spec.mode, session_types="pydantic")


def assert_every_run_is_stored_once(engine: Engine, spec: TableSpec, count: int = SESSIONS) -> None:
    sessions = storage(engine, spec).get_all_sessions()
    assert len(sessions) == count
    for session in sessions:
        stored = session.runs if spec.mode == "workflow_v2" else session.memory["runs"]  # type: ignore[attr-defined]
        assert stored == session_runs(int(session.session_id[1:])), session.session_id
    with engine.connect() as connection:
        stored_runs = connection.execute(text(f"SELECT COUNT(*) FROM {spec.table_name}_runs")).scalar()
    assert stored_runs == 3 * count


# -- killing alembic inside a data move -------------------------------------------------------------


def _waiting_thread(connection: Connection) -> int | None:
    query = "SELECT ID FROM information_schema.PROCESSLIST WHERE STATE = 'User lock' AND DB = DATABASE()"
    found = connection.execute(text(query)).scalar()
    connection.rollback()
    return found


@contextmanager
def _pause_updates_of(engine: Engine, table_name: str, session_id: str) -> Iterator[None]:
    """While inside: an UPDATE of `session_id`'s row in `table_name` waits for a lock held here."""
    lock = f"agno_orm_test_{uuid.uuid4().hex}"  # other tests share the server
    trigger = f"{table_name}_pause"
    with engine.connect() as holder:
        assert holder.execute(text("SELECT GET_LOCK(:lock, 0)"), {"lock": lock}).scalar() == 1
        holder.execute(
            text(
                f"CREATE TRIGGER {trigger} BEFORE UPDATE ON {table_name} FOR EACH ROW "
                f"SET @paused = IF(NEW.session_id = '{session_id}', GET_LOCK('{lock}', 600), 0)"
            )
        )
        try:
            yield
        finally:
            holder.execute(text("SELECT RELEASE_LOCK(:lock)"), {"lock": lock})
            holder.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))


def kill_alembic_inside_the_move(engine: Engine, table_name: str, *args: str) -> None:
    """Run `alembic ARGS`, and SIGKILL it once it is inside the move of rows of `table_name`."""
    with _pause_updates_of(engine, table_name, PAUSED), engine.connect() as watcher:
        process = subprocess.Popen(
            [sys.executable, "-m", "alembic", *args],
            cwd=REPO,
            env={**os.environ, "AGNO_ORM_DB_URL": url_of(engine)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        thread = None
        deadline = time.monotonic() + 300
        while thread is None and process.poll() is None and time.monotonic() < deadline:
            thread = _waiting_thread(watcher)
            time.sleep(0.05)
        if thread is None:
            process.kill()
            output = process.communicate()
            pytest.fail(f"alembic {' '.join(args)} never reached the paused row: {output}")
        process.kill()
        process.communicate()
        try:
            watcher.execute(text(f"KILL {int(thread)}"))
        except OperationalError as exc:  # 1094: the server noticed the client gone first
            if exc.orig is None or exc.orig.args[0] != 1094:
                raise
            watcher.rollback()
        while watcher.execute(
            text(f"SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = {int(thread)}")
        ).first():
            watcher.rollback()
            time.sleep(0.05)


@pytest.mark.parametrize("mode", ["agent", "workflow_v2"])
def test_upgrade_killed_inside_0003s_move_runs_again_and_keeps_every_run(
    mariadb_url: str, engine: Engine, mode: str
) -> None:
    spec = TableSpec(mode, "big", None)  # type: ignore[arg-type]
    migrations.upgrade(engine, [spec], "0002")
    insert_sessions(engine, spec)
    kill_alembic_inside_the_move(engine, "big", *x_args(spec), "upgrade", "head")
    assert revision(engine, spec) == "0002"  # 0003's DDL is done, its move rolled back
    ok(run_alembic(mariadb_url, *x_args(spec), "upgrade", "head"))
    assert revision(engine, spec) == migrations.head_revision()
    assert_every_run_is_stored_once(engine, spec)


def test_downgrade_killed_inside_0003s_move_back_runs_again_and_keeps_every_run(
    mariadb_url: str, engine: Engine
) -> None:
    spec = TableSpec("agent", "big", None)
    migrations.upgrade(engine, [spec], "0002")
    insert_sessions(engine, spec)
    migrations.upgrade(engine, [spec])
    kill_alembic_inside_the_move(engine, "big", *x_args(spec), "downgrade", "0002")
    ok(run_alembic(mariadb_url, *x_args(spec), "downgrade", "0002"))
    assert revision(engine, spec) == "0002"
    assert not inspect(engine).has_table("big_runs")
    with engine.connect() as connection:
        memories = connection.execute(text("SELECT session_id, memory FROM big")).all()
    assert {sid: json.loads(memory)["runs"] for sid, memory in memories} == {
        f"s{n:04}": session_runs(n) for n in range(SESSIONS)
    }


def test_workflow_session_ids_survive_kills_inside_0002s_moves_down_and_up(
    mariadb_url: str, engine: Engine
) -> None:
    spec = TableSpec("agent", "big", None)
    migrations.upgrade(engine, [spec], "0002")
    insert_sessions(engine, spec, runs=False, workflow_session=True)
    migrations.upgrade(engine, [spec])
    kill_alembic_inside_the_move(engine, "big", *x_args(spec), "downgrade", "0001")
    ok(run_alembic(mariadb_url, *x_args(spec), "downgrade", "0001"))
    assert revision(engine, spec) == "0001"
    assert "workflow_session_id" not in {c["name"] for c in inspect(engine).get_columns("big")}
    kill_alembic_inside_the_move(engine, "big", *x_args(spec), "upgrade", "head")
    ok(run_alembic(mariadb_url, *x_args(spec), "upgrade", "head"))
    sessions = storage(engine, spec).get_all_sessions()
    assert {s.session_id: s.workflow_session_id for s in sessions} == {  # type: ignore[attr-defined]
        f"s{n:04}": f"w{n}" for n in range(SESSIONS)
    }
    assert not inspect(engine).has_table("big_0002_kept")


def test_upgrade_killed_inside_0006s_back_fill_runs_again(mariadb_url: str, engine: Engine) -> None:
    spec = TableSpec("agent", "big", None)
    migrations.upgrade(engine, [spec], "0002")
    insert_sessions(engine, spec)
    migrations.upgrade(engine, [spec], "0005")
    kill_alembic_inside_the_move(engine, "big_runs", *x_args(spec), "upgrade", "0006")
    ok(run_alembic(mariadb_url, *x_args(spec), "upgrade", "head"))
    assert revision(engine, spec) == migrations.head_revision()
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT DISTINCT written_version FROM big_runs")).scalars().all()
    assert versions == [1]  # the session's version: every row back-filled
    assert_every_run_is_stored_once(engine, spec)


# -- every revision, run again after its changes were made -----------------------------------------

CHAIN = [
    script.revision
    for script in reversed(list(ScriptDirectory(str(migrations.script_location())).walk_revisions()))
]
FEW = 30


def stamp(engine: Engine, spec: TableSpec, to: str) -> None:
    """Record `to` as the table's revision, changing nothing else: an interrupted run's state."""
    with engine.connect() as connection:
        command.stamp(migrations.make_config(connection, [spec]), to)


def assert_no_drift(engine: Engine, spec: TableSpec) -> None:
    with engine.connect() as connection:
        command.check(migrations.make_config(connection, [spec]))  # raises on any difference


def previous(rev: str) -> str:
    index = CHAIN.index(rev)
    return CHAIN[index - 1] if index else "base"


@pytest.mark.parametrize("rev", CHAIN)
def test_upgrade_runs_a_revision_again_whose_changes_are_made(
    family_url: str, engine: Engine, rev: str
) -> None:
    spec = TableSpec("agent", "again", None)
    migrations.upgrade(engine, [spec], "0001")
    insert_sessions(engine, spec, count=FEW)
    migrations.upgrade(engine, [spec], rev)
    stamp(engine, spec, previous(rev))
    migrations.upgrade(engine, [spec])
    assert revision(engine, spec) == migrations.head_revision()
    assert_no_drift(engine, spec)
    assert_every_run_is_stored_once(engine, spec, FEW)


@pytest.mark.parametrize("rev", CHAIN)
def test_downgrade_runs_a_revision_again_whose_changes_are_undone(
    family_url: str, engine: Engine, rev: str
) -> None:
    spec = TableSpec("agent", "again", None)
    migrations.upgrade(engine, [spec], "0001")
    insert_sessions(engine, spec, count=FEW)
    migrations.upgrade(engine, [spec])
    migrations.downgrade(engine, [spec], previous(rev))
    stamp(engine, spec, rev)
    migrations.downgrade(engine, [spec], previous(rev))
    if rev == CHAIN[0]:
        assert not inspect(engine).has_table("again")  # base: no table, as documented
        return
    assert revision(engine, spec) == previous(rev)
    migrations.upgrade(engine, [spec])
    assert_no_drift(engine, spec)
    assert_every_run_is_stored_once(engine, spec, FEW)


# -- MySQL 8 syntax ----------------------------------------------------------------------------------

# DDL that MariaDB accepts and MySQL 8 does not (MySQL has IF [NOT] EXISTS on tables and databases
# only). Not RETURNING: SQLAlchemy uses it only on servers that have it (MariaDB 10.5+).
MYSQL_8_LACKS = re.compile(
    r"DROP INDEX IF EXISTS|CREATE INDEX IF NOT EXISTS|ADD COLUMN IF NOT EXISTS|DROP COLUMN IF EXISTS"
    r"|ADD INDEX IF NOT EXISTS|CREATE OR REPLACE",
    re.IGNORECASE,
)


def test_revisions_written_out_for_mysql_use_only_mysql_8_syntax() -> None:
    result = run_alembic("mysql+pymysql://user@localhost/sessions", "upgrade", "head", "--sql")
    ok(result)
    assert "CREATE TABLE agent_sessions_runs" in result.stdout
    assert not MYSQL_8_LACKS.findall(result.stdout)


def test_revisions_run_on_the_mysql_family_use_only_mysql_8_syntax(family_url: str, engine: Engine) -> None:
    spec = TableSpec("team", "said", None)
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_: seen.append(statement))
    migrations.upgrade(engine, [spec], "0002")
    insert_sessions(engine, spec, count=FEW, workflow_session=True)
    migrations.upgrade(engine, [spec])
    migrations.downgrade(engine, [spec], "0001")
    stamp(engine, spec, "0002")
    migrations.downgrade(engine, [spec], "0001")
    migrations.upgrade(engine, [spec])
    migrations.downgrade(engine, [spec], "base")
    assert any("DROP INDEX" in statement for statement in seen), [s for s in seen if "INDEX" in s]
    assert not [statement for statement in seen if MYSQL_8_LACKS.search(statement)]
