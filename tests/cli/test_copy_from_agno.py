"""Tables agno 1.8.4 wrote, with agno's own storage and session classes: inspected and copied as they are."""

from __future__ import annotations

import copy
import itertools
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import json_location, ok, run_cli, sqlite_location
from tests.cli.test_copy import assert_verified, stored
from tests.conftest import unavailable

pytestmark = [pytest.mark.sqlite, pytest.mark.postgres, pytest.mark.json]


def write_with_agno(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Sessions of every mode written by agno 1.8.4's SqliteStorage into its default-named tables;
    returns them as agno reads them back."""
    try:
        from agno.run.v2.workflow import WorkflowRunResponse
        from agno.storage.session.agent import AgentSession
        from agno.storage.session.team import TeamSession
        from agno.storage.session.v2.workflow import WorkflowSession as WorkflowSessionV2
        from agno.storage.session.workflow import WorkflowSession
        from agno.storage.sqlite import SqliteStorage
    except ImportError as exc:
        unavailable(f"agno is not installed: {exc}")
        raise
    run = {
        "run_id": "r1",
        "messages": [{"role": "user", "content": "Bonjour ✓"}],
        "metrics": {"tokens": [3, 4.5]},
    }
    sessions: dict[str, list[Any]] = {
        "agent": [
            AgentSession(
                session_id=f"agent-{i}",
                user_id=f"user-{i % 2}",
                agent_id="support-bot",
                memory={"runs": [run] * i, "messages": []},
                session_data={"session_name": f"Ticket {i}", "session_state": {"step": i}},
                agent_data={"model": {"id": "gpt-4o"}},
            )
            for i in range(3)
        ],
        "team": [
            TeamSession(session_id="team-0", team_id="crew", memory={"runs": [run]}, team_data={"k": 1})
        ],
        "workflow": [WorkflowSession(session_id="wf-0", workflow_id="etl", memory={"runs": []})],
        "workflow_v2": [
            WorkflowSessionV2(
                session_id="wf2-0",
                workflow_id="flow",
                workflow_name="Flow",
                runs=[WorkflowRunResponse(run_id="w1", content="done", workflow_id="flow")],
            )
        ],
    }
    written = {}
    with warnings.catch_warnings():
        # agno 1.8.4 calls SQLAlchemy's deprecated Column.copy(); that is agno's, not under test here
        warnings.simplefilter("ignore", DeprecationWarning)
        for mode, mode_sessions in sessions.items():
            storage = SqliteStorage(table_name=f"{mode}_sessions", db_file=str(path), mode=mode)  # type: ignore[arg-type]
            storage.create()
            for session in mode_sessions:
                assert storage.upsert(session) is not None
            for session in storage.get_all_sessions():
                data = session.to_dict()
                data.pop("updated_at")
                written[(mode, data["session_id"])] = data
    return written


def test_an_agno_table_is_listed_as_it_is_and_check_says_it_has_no_version(tmp_path: Path) -> None:
    write_with_agno(tmp_path / "agno.db")
    db = sqlite_location(tmp_path / "agno.db")
    before = (tmp_path / "agno.db").read_bytes()

    checked = run_cli("check", "--db-url", db, "--table", "agent_sessions")
    assert checked.returncode == 1
    assert (
        "agent_sessions (agent): no version recorded (agno 1.8.4's table; upgrade adopts it)"
        in checked.stdout
    )

    listed = ok(run_cli("sessions", "list", "--db-url", db))
    assert [re.split(r"\s{2,}", line)[:4] for line in listed.splitlines()[1:]] == [
        [f"agent-{i}", f"user-{i % 2}", "support-bot", f"Ticket {i}"] for i in (2, 1, 0)
    ]
    assert (tmp_path / "agno.db").read_bytes() == before


def test_copy_from_an_agno_sqlite_table_to_postgres_to_json_and_back_is_verified_equal(
    tmp_path: Path, postgres_location: str
) -> None:
    agno_sessions = write_with_agno(tmp_path / "agno.db")
    before = (tmp_path / "agno.db").read_bytes()
    hops = [
        sqlite_location(tmp_path / "agno.db"),
        postgres_location,
        json_location(tmp_path / "dir"),
        sqlite_location(tmp_path / "back.db"),
    ]
    tables = []
    for origin, target in itertools.pairwise(hops):
        output = ok(run_cli("copy", "--from", origin, "--to", target))
        assert output.startswith("copying 6 sessions (agent 3, team 1, workflow 1, workflow_v2 1)\n")
        tables.append(assert_verified(output, 6))
    assert tables[0] == tables[1] == tables[2]
    assert (tmp_path / "agno.db").read_bytes() == before  # agno's table is read, never upgraded
    # agno reads every copy as it reads its own table (agno's run classes add defaults, such as a
    # v2 run's "events", to what is stored, so the comparison is made through agno's classes).
    for copied in (stored(postgres_location), stored(hops[-1])):
        assert {key: as_agno_reads_it(key[0], data) for key, data in copied.items()} == agno_sessions


def as_agno_reads_it(mode: str, data: dict[str, Any]) -> dict[str, Any]:
    from agno.storage.session import AgentSession, TeamSession, WorkflowSession, WorkflowSessionV2

    agno_class: Any = {
        "agent": AgentSession,
        "team": TeamSession,
        "workflow": WorkflowSession,
        "workflow_v2": WorkflowSessionV2,
    }[mode]
    read: dict[str, Any] = agno_class.from_dict(copy.deepcopy(data)).to_dict()
    read.pop("updated_at")
    return read


@pytest.mark.sqlite
@pytest.mark.filterwarnings("ignore:The Column.copy\\(\\) method is deprecated")  # agno's own create()
def test_listing_agnos_table_in_place_refuses_bad_bounds_as_the_storages_do(tmp_path: Path) -> None:
    """The reader of an agno table (no version recorded) checks since/until as Storage does."""
    from agno.storage.sqlite import SqliteStorage as AgnoSqlite

    from agno_orm import InvalidInputError, SqliteStorage
    from agno_orm.transfer import AgnoTable, _sql_reader

    AgnoSqlite("agent_sessions", db_file=str(tmp_path / "agno.db")).create()
    storage = SqliteStorage("agent_sessions", db_file=str(tmp_path / "agno.db"))
    reader = _sql_reader(storage, None)  # type: ignore[arg-type]  # the set is only named for a behind table
    assert isinstance(reader, AgnoTable)
    with pytest.raises(InvalidInputError):
        reader.list_sessions(since="abc")  # type: ignore[arg-type]
