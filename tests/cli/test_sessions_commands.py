"""`agno-orm sessions list|show`: a readable table newest first, paginated, and one session as JSON."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from agno_orm import Session
from tests.cli.conftest import (
    BASE_TIME,
    comparable,
    fill_sqlite,
    ok,
    run_cli,
    sample_sessions,
    sqlite_location,
)

pytestmark = pytest.mark.sqlite

SESSIONS = sample_sessions(12)
AGENTS = [s for s in SESSIONS if s.mode == "agent"]
NEWEST_FIRST = sorted(AGENTS, key=lambda s: (s.created_at, s.session_id), reverse=True)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sessions") / "app.db"
    fill_sqlite(path, SESSIONS)
    return sqlite_location(path)


def utc(epoch: int | None) -> str:
    assert epoch is not None
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def table_rows(output: str) -> list[list[str]]:
    """The table's lines as cells, after checking that every column starts at the same offset."""
    lines = [line for line in output.splitlines() if not line.startswith("next page:")]
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?<=  )\S", header)]
    for line in lines[1:]:
        for start in starts:
            assert line[start - 2 : start] == "  " and line[start] != " ", f"misaligned:\n{output}"
    return [re.split(r"\s{2,}", line.strip()) for line in lines]


def expected_row(session: Session) -> list[str]:
    runs = session.memory["runs"]  # type: ignore[attr-defined]
    return [
        session.session_id,
        str(session.user_id),
        session.agent_id,  # type: ignore[attr-defined]
        str(session.session_data["session_name"]),  # type: ignore[index]
        utc(session.created_at),
        str(len(runs)),
    ]


def without_updated(row: list[str]) -> list[str]:
    return row[:5] + row[6:]  # UPDATED is the time of the write


def test_list_pages_through_every_agent_session_newest_first_in_aligned_columns(db: str) -> None:
    path = Path(db.removeprefix("sqlite:///"))
    before = path.read_bytes()
    seen: list[list[str]] = []
    args = ["sessions", "list", "--db-url", db, "--limit", "5"]
    while True:
        output = ok(run_cli(*args))
        rows = table_rows(output)
        assert rows[0] == ["ID", "USER", "ENTITY", "NAME", "CREATED (UTC)", "UPDATED (UTC)", "RUNS"]
        seen += rows[1:]
        cursor = re.search(r"^next page: --cursor (\S+)$", output, re.MULTILINE)
        if cursor is None:
            break
        assert len(rows) == 6
        args = [*args[:6], "--cursor", cursor.group(1)]
    assert [without_updated(row) for row in seen] == [expected_row(s) for s in NEWEST_FIRST]
    assert path.read_bytes() == before  # listing only reads


def test_list_filters_by_user_entity_and_creation_time(db: str) -> None:
    since = dt.datetime.fromtimestamp(BASE_TIME + 1, dt.timezone.utc).isoformat()  # ISO 8601 or epoch
    output = ok(
        run_cli(
            *("sessions", "list", "--db-url", db, "--user", "user-1", "--entity", "agent-0"),
            *("--since", since, "--until", str(BASE_TIME + 6)),
        )
    )
    expected = [
        s
        for s in NEWEST_FIRST
        if s.user_id == "user-1" and s.agent_id == "agent-0" and BASE_TIME + 1 <= s.created_at < BASE_TIME + 6  # type: ignore[attr-defined,operator]
    ]
    assert expected
    assert [without_updated(row) for row in table_rows(output)[1:]] == [expected_row(s) for s in expected]


def test_show_prints_the_whole_session_as_pretty_json(db: str) -> None:
    session = next(s for s in AGENTS if len(s.memory["runs"]) == 3)  # type: ignore[attr-defined]
    output = ok(run_cli("sessions", "show", session.session_id, "--db-url", db))
    assert output.startswith('{\n  "session_id": ')
    shown = json.loads(output)
    assert comparable(type(session).model_validate(shown)) == comparable(session)


def test_show_can_limit_the_runs_and_choose_the_mode(db: str) -> None:
    team = next(s for s in SESSIONS if s.mode == "team")
    runs = team.memory["runs"]  # type: ignore[attr-defined]
    assert len(runs) > 1
    shown = json.loads(
        ok(run_cli("sessions", "show", team.session_id, "--db-url", db, "--mode", "team", "--runs", "1"))
    )
    assert shown["team_id"] == "team-1"
    assert shown["memory"]["runs"] == runs[-1:]


def test_show_of_a_missing_session_exits_1_saying_so(db: str) -> None:
    result = run_cli("sessions", "show", "no-such-session", "--db-url", db)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"agno-orm: error: no agent session 'no-such-session' in {db} (mode=agent)\n"


def test_list_json_pages_through_the_same_sessions_as_the_table(db: str) -> None:
    seen: list[dict[str, object]] = []
    args = ["sessions", "list", "--db-url", db, "--limit", "5", "--json"]
    while True:
        page = json.loads(ok(run_cli(*args)))
        assert page["mode"] == "agent"
        seen += page["sessions"]
        if page["next_cursor"] is None:
            break
        assert len(page["sessions"]) == 5
        args = [*args, "--cursor", page["next_cursor"]]
    assert [s["session_id"] for s in seen] == [s.session_id for s in NEWEST_FIRST]
    first, newest = seen[0], NEWEST_FIRST[0]
    assert first["created_at"] == newest.created_at  # epoch seconds, not the table's text
    assert first["user_id"] == newest.user_id and first["entity_id"] == newest.agent_id  # type: ignore[attr-defined]
    assert first["session_name"] == newest.session_data["session_name"]  # type: ignore[index]
    assert first["run_count"] == len(newest.memory["runs"])  # type: ignore[attr-defined]
    assert set(first) == {
        "session_id",
        "user_id",
        "entity_id",
        "session_name",
        "created_at",
        "updated_at",
        "run_count",
    }


def test_list_json_of_no_sessions_is_an_empty_page(db: str) -> None:
    page = json.loads(ok(run_cli("sessions", "list", "--db-url", db, "--user", "nobody", "--json")))
    assert page == {"mode": "agent", "sessions": [], "next_cursor": None}


def test_show_json_is_the_session_as_plain_json(db: str) -> None:
    session = AGENTS[0]
    output = ok(run_cli("sessions", "show", session.session_id, "--db-url", db, "--json"))
    assert "\x1b" not in output
    assert comparable(type(session).model_validate(json.loads(output))) == comparable(session)


def test_show_on_a_terminal_colors_the_json_and_list_draws_a_table(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from agno_orm import cli

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    session = AGENTS[0]
    for args, json_out in ((["sessions", "show", session.session_id], True), (["sessions", "list"], False)):
        terminal = Terminal()
        monkeypatch.setattr("sys.stdout", terminal)
        assert cli.main([*args, "--db-url", db]) == 0
        drawn = terminal.getvalue()
        assert "\x1b[" in drawn
        plain = re.sub(r"\x1b\[[0-9;]*m", "", drawn)
        if json_out:
            assert json.loads(plain)["session_id"] == session.session_id
        else:
            assert plain.split()[:3] == ["ID", "USER", "ENTITY"] and NEWEST_FIRST[0].session_id in plain
