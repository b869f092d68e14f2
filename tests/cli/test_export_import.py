"""`agno-orm export` to JSON Lines and `agno-orm import` from it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agno_orm import AgentSession, SqliteStorage
from agno_orm.sessions import SESSION_TYPES
from agno_orm.transfer import export_line, replaced_atomically
from tests.cli.conftest import (
    comparable,
    fill_sqlite,
    json_location,
    ok,
    run_cli,
    sample_sessions,
    sqlite_location,
)

SESSIONS = sample_sessions(12)


def parse_export(text: str) -> dict[tuple[str, str], dict[str, object]]:
    """An export's sessions by (mode, session_id), as comparable field dicts."""
    parsed = {}
    for line in text.splitlines():
        value = json.loads(line)
        mode = value.pop("mode")
        session = SESSION_TYPES[mode].model_validate(value)
        parsed[(mode, session.session_id)] = comparable(session)
    return parsed


@pytest.mark.sqlite
@pytest.mark.postgres
def test_export_then_import_into_postgres_and_export_again_round_trips(
    tmp_path: Path, postgres_location: str
) -> None:
    fill_sqlite(tmp_path / "app.db", SESSIONS)
    export_file = tmp_path / "sessions.jsonl"

    exported = ok(run_cli("export", "--db-url", sqlite_location(tmp_path / "app.db"), "-o", str(export_file)))
    summary = re.fullmatch(
        rf"exported 12 sessions \(agent 9, team 1, workflow 1, workflow_v2 1\) to {export_file}; "
        r"checksum ([0-9a-f]{64})\n",
        exported,
    )
    assert summary, exported
    lines = export_file.read_text().splitlines()
    assert len(lines) == 12  # one session per line, every mode's tables
    assert parse_export(export_file.read_text()) == {(s.mode, s.session_id): comparable(s) for s in SESSIONS}

    imported = ok(run_cli("import", str(export_file), "--db-url", postgres_location))
    assert "copied 12, skipped 0 already identical" in imported
    assert "verified: the target holds all 12 sessions, identical" in imported

    again = run_cli("export", "--db-url", postgres_location)  # to stdout; the summary goes to stderr
    assert again.returncode == 0, again.stderr
    assert parse_export(again.stdout) == parse_export(export_file.read_text())
    assert f"checksum {summary.group(1)}" in again.stderr


@pytest.mark.json
def test_import_from_stdin_is_idempotent_and_skips_what_is_already_stored(tmp_path: Path) -> None:
    text = "".join(export_line(s) + "\n" for s in SESSIONS[:5])
    target = json_location(tmp_path / "dir")
    first = ok(run_cli("import", "-", "--db-url", target, stdin=text))
    assert "copied 5, skipped 0 already identical" in first
    second = ok(run_cli("import", "-", "--db-url", target, stdin=text))
    assert "copied 0, skipped 5 already identical" in second
    assert "verified: the target holds all 5 sessions, identical" in second
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == [
        f"{s.session_id}.json" for s in SESSIONS[:5]
    ]


@pytest.mark.sqlite
def test_an_imported_session_replaces_the_stored_history(tmp_path: Path) -> None:
    """An export is the history it holds: importing it over a longer stored session leaves
    exactly the exported runs, as `agno-orm import --help` says."""
    short = AgentSession(session_id="s1", user_id="u1", memory={"runs": [{"run_id": "r3"}]}, created_at=5)
    longer = AgentSession(
        session_id="s1", user_id="u1", memory={"runs": [{"run_id": f"r{i}"} for i in range(5)]}, created_at=5
    )
    fill_sqlite(tmp_path / "app.db", [longer])
    imported = ok(
        run_cli(
            "import", "-", "--db-url", sqlite_location(tmp_path / "app.db"), stdin=export_line(short) + "\n"
        )
    )
    assert "verified: the target holds all 1 sessions, identical" in imported
    stored = SqliteStorage("agent_sessions", db_file=str(tmp_path / "app.db"), session_types="pydantic").read(
        "s1"
    )
    assert stored is not None and stored.memory == {"runs": [{"run_id": "r3"}]}  # type: ignore[attr-defined]
    assert "runs the stored\nsession has and the file's does not are removed" in ok(
        run_cli("import", "--help")
    )


@pytest.mark.json
def test_import_of_a_malformed_file_exits_2_naming_the_line_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(export_line(SESSIONS[0]) + '\n{"mode": "agent", "sesion_id": "x"}\n')
    result = run_cli("import", str(bad), "--db-url", json_location(tmp_path / "dir"))
    assert result.returncode == 2
    assert result.stderr == f"agno-orm: error: {bad} line 2: AgentSession has no field(s) sesion_id\n"
    assert not (tmp_path / "dir").exists()


def test_an_interrupted_export_leaves_no_file_that_looks_complete(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt), replaced_atomically(target) as file:
        file.write(export_line(SESSIONS[0]) + "\n")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
