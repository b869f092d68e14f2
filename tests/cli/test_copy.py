"""`agno-orm copy --from SOURCE --to TARGET`: between backends, verified, interrupted for real and resumed."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from agno_orm import Session
from agno_orm.locations import open_storages
from agno_orm.nosql import YamlStorage
from agno_orm.sql.models import DEFAULT_TABLE_NAMES
from tests.cli.conftest import (
    comparable,
    fill_sqlite,
    json_location,
    ok,
    run_cli,
    sample_sessions,
    sqlite_location,
)

SESSIONS = sample_sessions(20)
MANY = 200  # enough that a copy is still running when the test stops it


def stored(location: str) -> dict[tuple[str, str], dict[str, object]]:
    """Every session a location holds, by (mode, session_id), as comparable field dicts."""
    found = {}
    with open_storages(location) as storage_set:
        for mode, storage in storage_set.storages.items():
            for session in storage.get_all_sessions():
                found[(mode, session.session_id)] = comparable(session)
    return found


def expected(sessions: list[Session]) -> dict[tuple[str, str], dict[str, object]]:
    return {(s.mode, s.session_id): comparable(s) for s in sessions}


def checksums(output: str) -> dict[str, tuple[str, str, str, str]]:
    """The verification table: mode -> (source count, target count, source checksum, target checksum)."""
    rows = re.findall(
        r"^  (\w+)\s+(\d+)\s+(\d+)\s+([0-9a-f]{16})\s+([0-9a-f]{16})\s+ok$", output, re.MULTILINE
    )
    return {mode: (s, t, sd, td) for mode, s, t, sd, td in rows}


def assert_verified(output: str, count: int) -> dict[str, tuple[str, str, str, str]]:
    assert f"verified: the target holds all {count} sessions, identical" in output, output
    table = checksums(output)
    for source_count, target_count, source_sum, target_sum in table.values():
        assert (source_count, source_sum) == (target_count, target_sum)
    return table


@pytest.mark.mysql
@pytest.mark.redis
@pytest.mark.dynamodb
@pytest.mark.yaml
def test_copy_from_yaml_through_mysql_and_redis_to_dynamodb_keeps_every_session(
    tmp_path: Path,
    mysql_url: str,
    redis_url: str,
    dynamodb_endpoint: str,
    dynamodb_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for session in SESSIONS:
        YamlStorage(tmp_path / "from", mode=session.mode, session_types="pydantic").upsert(session)
    name = f"cli_{uuid.uuid4().hex[:12]}"
    mysql = make_url(mysql_url).update_query_dict({"schema": name}).render_as_string(hide_password=False)
    redis = f"{redis_url}?prefix={name}"
    dynamodb = (
        f"dynamodb://{name}?region=us-east-1&endpoint_url={dynamodb_endpoint}&billing_mode=PAY_PER_REQUEST"
    )
    credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}  # moto takes any
    hops = [json_location(tmp_path / "from", "yaml"), mysql, redis, dynamodb]
    try:
        tables = []
        for origin, target in itertools.pairwise(hops):
            output = ok(run_cli("copy", "--from", origin, "--to", target, env=credentials))
            assert output.startswith("copying 20 sessions (agent 14, team 2, workflow 2, workflow_v2 2)\n")
            tables.append(assert_verified(output, 20))
        assert tables[0] == tables[1] == tables[2]  # the same content, so the same checksums on every hop
        for variable, value in credentials.items():
            monkeypatch.setenv(variable, value)
        assert stored(mysql) == stored(redis) == stored(dynamodb) == expected(SESSIONS)
    finally:
        engine = create_engine(mysql_url)
        with engine.begin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()
        with open_storages(redis) as storage_set:
            for storage in storage_set.storages.values():
                storage.drop()
        dynamodb_client.delete_table(TableName=name)


# -- interrupted copies -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_sessions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("many") / "source.db"
    fill_sqlite(path, sample_sessions(MANY))
    return path


def start_copy(source: str, target: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if k != "AGNO_ORM_DB_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "agno_orm.cli", "copy", "--from", source, "--to", target],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def progress_lines(process: subprocess.Popen[str]) -> Iterator[int]:
    """The number of sessions each progress line of a running copy reports (stderr is no TTY: plain lines)."""
    assert process.stderr is not None
    deadline = time.monotonic() + 120
    for line in process.stderr:
        assert "\r" not in line  # not animated when stderr is not a terminal
        if match := re.fullmatch(r"copy: (\d+)/(\d+) sessions \(\d+%\)\n", line):
            assert int(match.group(2)) == MANY
            yield int(match.group(1))
        assert time.monotonic() < deadline


def stop_midway(process: subprocess.Popen[str], signum: int) -> str:
    """Signal the copy once its progress shows a tenth of the sessions copied; returns the rest of stderr."""
    for done in progress_lines(process):
        if done >= MANY // 10:
            process.send_signal(signum)
            break
    else:
        pytest.fail(f"the copy ended before it could be stopped: {process.communicate()}")
    _, rest = process.communicate(timeout=60)
    return rest


def count_postgres_rows(postgres_location: str) -> int:
    url = make_url(postgres_location)
    schema = url.query["schema"]
    engine = create_engine(url.difference_update_query(["schema"]))
    with engine.connect() as connection:
        total = sum(
            connection.execute(text(f'SELECT count(*) FROM "{schema}"."{table}"')).scalar_one()
            for table in DEFAULT_TABLE_NAMES.values()
        )
    engine.dispose()
    return int(total)


@pytest.mark.sqlite
@pytest.mark.postgres
def test_a_copy_stopped_by_sigterm_resumes_where_it_stopped_without_duplicates(
    tmp_path: Path, many_sessions: Path, postgres_location: str
) -> None:
    source = sqlite_location(shutil.copy(many_sessions, tmp_path / "source.db"))
    process = start_copy(source, postgres_location)
    rest = stop_midway(process, signal.SIGTERM)
    assert process.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in rest
    stopped = re.search(
        rf"agno-orm: stopped by SIGTERM \(copy: (\d+) of {MANY} sessions\); run the same command again", rest
    )
    assert stopped, rest
    copied_before = count_postgres_rows(postgres_location)
    assert MANY // 10 <= copied_before < MANY
    assert int(stopped.group(1)) == copied_before  # sessions being written when stopped were finished

    resumed = ok(run_cli("copy", "--from", source, "--to", postgres_location))
    assert f"copied {MANY - copied_before}, skipped {copied_before} already identical" in resumed
    assert_verified(resumed, MANY)
    assert count_postgres_rows(postgres_location) == MANY


@pytest.mark.sqlite
@pytest.mark.json
def test_a_copy_killed_with_sigkill_resumes_and_verifies(tmp_path: Path, many_sessions: Path) -> None:
    source = sqlite_location(shutil.copy(many_sessions, tmp_path / "source.db"))
    target_dir = tmp_path / "dir"
    process = start_copy(source, json_location(target_dir))
    stop_midway(process, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    files_before = [
        p for p in target_dir.iterdir() if not p.name.startswith(".")
    ]  # dot files: unfinished writes
    assert MANY // 10 <= len(files_before) < MANY

    resumed = ok(run_cli("copy", "--from", source, "--to", json_location(target_dir)))
    assert f"copied {MANY - len(files_before)}, skipped {len(files_before)} already identical" in resumed
    assert_verified(resumed, MANY)
    assert (
        len([p for p in target_dir.iterdir() if p.suffix == ".json" and not p.name.startswith(".")]) == MANY
    )


@pytest.mark.sqlite
def test_a_copied_session_replaces_the_stored_history_whatever_the_versions(tmp_path: Path) -> None:
    """The source's session (at version 1) over a target's written three times (its runs at
    versions 1 to 3): the target holds exactly the source's runs afterwards."""
    from agno_orm import AgentSession, SqliteStorage

    def runs(*ids: int) -> dict[str, Any]:
        return {"runs": [{"run_id": f"r{i}"} for i in ids]}

    source_db, target_db = tmp_path / "source.db", tmp_path / "target.db"
    SqliteStorage("agent_sessions", db_file=str(source_db)).upsert(
        AgentSession(session_id="s1", memory=runs(0), created_at=5)
    )
    target = SqliteStorage("agent_sessions", db_file=str(target_db), session_types="pydantic")
    for last in range(3):
        target.upsert(AgentSession(session_id="s1", memory=runs(*range(last + 1)), created_at=5))
    ok(run_cli("copy", "--from", sqlite_location(source_db), "--to", sqlite_location(target_db)))
    stored_session = SqliteStorage("agent_sessions", db_file=str(target_db), session_types="pydantic").read(
        "s1"
    )
    assert stored_session is not None and stored_session.memory == runs(0)  # type: ignore[attr-defined]
