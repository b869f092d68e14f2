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
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, text
from sqlalchemy.engine import make_url

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
    engine: Engine, spec: TableSpec, *, runs: bool = True, workflow_session: bool = False
) -> None:
    """SESSIONS sessions written as agno writes them (runs inside the row), at revision 0001 or 0002."""
    table = Table(spec.table_name, MetaData(), autoload_with=engine)
    holder = "runs" if spec.mode == "workflow_v2" else "memory"
    rows = []
    for n in range(SESSIONS):
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


def assert_every_run_is_stored_once(engine: Engine, spec: TableSpec) -> None:
    sessions = storage(engine, spec).get_all_sessions()
    assert len(sessions) == SESSIONS
    for session in sessions:
        stored = session.runs if spec.mode == "workflow_v2" else session.memory["runs"]  # type: ignore[attr-defined]
        assert stored == session_runs(int(session.session_id[1:])), session.session_id
    with engine.connect() as connection:
        count = connection.execute(text(f"SELECT COUNT(*) FROM {spec.table_name}_runs")).scalar()
    assert count == 3 * SESSIONS


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
        watcher.execute(text(f"KILL {int(thread)}"))
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
