"""Running `agno-orm` as a user runs it: a subprocess, on real databases, files and servers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from agno_orm import AgentSession, Session, SqliteStorage, TeamSession, WorkflowSession, WorkflowSessionV2

BASE_TIME = 1_735_689_600  # 2025-01-01 00:00:00 UTC


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m agno_orm.cli ARGS`; AGNO_ORM_DB_URL is not inherited unless given in `env`."""
    environment = {k: v for k, v in os.environ.items() if k != "AGNO_ORM_DB_URL"}
    return subprocess.run(
        [sys.executable, "-m", "agno_orm.cli", *args],
        env={**environment, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The command's stdout, once it is known to have succeeded."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def sqlite_location(path: Path, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"sqlite:///{path.resolve()}" + (f"?{query}" if query else "")


def json_location(path: Path, scheme: str = "json") -> str:
    return f"{scheme}:///{path.resolve()}"  # json:////abs/dir: an absolute path, as in sqlite URLs


def sample_sessions(count: int, *, start: int = 0) -> list[Session]:
    """Sessions of every mode (mostly agent) with runs, nested state, unicode, floats and ties in
    created_at; session i has created_at BASE_TIME + i // 2 (so pairs share a second)."""
    sessions: list[Session] = []
    for i in range(start, start + count):
        created = BASE_TIME + i // 2
        common: dict[str, Any] = {
            "session_id": f"s{i:05d}",
            "user_id": f"user-{i % 3}",
            "created_at": created,
            "session_data": {"session_name": f"Sitzung {i} — café", "session_state": {"n": i, "x": i / 7}},
            "extra_data": {"tags": ["a", "b"], "nested": {"deep": [1, 2.5, None, True]}},
        }
        runs = [
            {"run_id": f"r{i}-{j}", "messages": [{"role": "user", "content": f"q{j} ✓"}]}
            for j in range(i % 4)
        ]
        kind = i % 10
        if kind < 7:
            sessions.append(
                AgentSession(
                    **common, agent_id=f"agent-{i % 2}", memory={"runs": runs}, agent_data={"model": "m"}
                )
            )
        elif kind == 7:
            sessions.append(
                TeamSession(**common, team_id="team-1", memory={"runs": runs}, team_data={"k": 1})
            )
        elif kind == 8:
            sessions.append(WorkflowSession(**common, workflow_id="wf-1", memory={"runs": runs}))
        else:
            sessions.append(WorkflowSessionV2(**common, workflow_id="wf-2", workflow_name="flow", runs=runs))
    return sessions


def fast_sqlite_engine(path: Path) -> Engine:
    """An engine for filling a test database quickly: no fsync per commit (the data is disposable)."""
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA synchronous=OFF"))
    return engine


def fill_sqlite(path: Path, sessions: Iterable[Session]) -> None:
    """Store sessions in the four default tables of a SQLite file, as agno_orm stores them."""
    engine = fast_sqlite_engine(path)
    storages: dict[str, SqliteStorage] = {}
    try:
        for session in sessions:
            if session.mode not in storages:
                table = f"{session.mode}_sessions"
                storages[session.mode] = SqliteStorage(
                    table, db_engine=engine, mode=session.mode, session_types="pydantic"
                )
            storages[session.mode].upsert(session)
    finally:
        engine.dispose()


def comparable(session: Any) -> dict[str, Any]:
    """A session's fields but updated_at, which every write sets."""
    data = dict(session.to_dict())
    data.pop("updated_at")
    return data


@pytest.fixture
def postgres_location(postgres_url: str) -> Iterator[str]:
    """The PostgreSQL test server with a schema of its own (dropped afterwards), as a location."""
    schema = f"cli_{uuid.uuid4().hex[:12]}"
    yield make_url(postgres_url).update_query_dict({"schema": schema}).render_as_string(hide_password=False)
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
