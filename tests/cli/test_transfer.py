"""The copy engine behind `agno-orm copy` and `import`, in process: digests, verification, resumption,
backends no subprocess can reach (MongoDB here is in-process), and the progress bar."""

from __future__ import annotations

import io
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agno_orm import AgentSession, Session, SqliteStorage, Storage, cli, transfer
from agno_orm.locations import StorageSet, parse_location
from agno_orm.nosql import JsonStorage, MongoDbStorage
from agno_orm.sessions import MODES
from agno_orm.transfer import copy_sessions, no_progress, open_source, session_digest, verify
from tests.cli.conftest import comparable, json_location, sample_sessions

SESSIONS = sample_sessions(8)


def json_storages(directory: Path) -> dict[str, Storage]:
    return {m: JsonStorage(directory, mode=m, session_types="pydantic") for m in MODES}


def fill(storages: dict[str, Storage], sessions: list[Session]) -> None:
    for session in sessions:
        storages[session.mode].upsert(session)


def test_the_digest_ignores_updated_at_and_key_order_but_nothing_else() -> None:
    session = AgentSession(session_id="s", created_at=1, updated_at=2, session_data={"a": 1, "b": [1.5, "x"]})
    reordered = AgentSession(
        session_id="s", created_at=1, updated_at=9, session_data={"b": [1.5, "x"], "a": 1}
    )
    assert session_digest(session) == session_digest(reordered)
    assert session_digest(session) != session_digest(session.model_copy(update={"created_at": 3}))
    assert session_digest(session) != session_digest(session.model_copy(update={"session_data": {"a": 1.0}}))


def test_copy_and_verify_between_mongodb_and_json(tmp_path: Path, mongodb_client: Any) -> None:
    mongo = {
        m: MongoDbStorage(
            "cli_copy", db_name="agno_orm_cli", client=mongodb_client, mode=m, session_types="pydantic"
        )
        for m in MODES
    }
    try:
        fill(mongo, SESSIONS)
        source = open_source(
            StorageSet(parse_location("mongodb://h/?collection=cli_copy"), mongo, explicit=False)
        )
        targets = json_storages(tmp_path)
        stats = copy_sessions(source, targets, jobs=3)
        assert (stats.total, stats.written, stats.skipped) == (8, 8, 0)
        assert verify(targets, stats.expected).ok
        back = {(s.mode, s.session_id): comparable(s) for m in MODES for s in targets[m].get_all_sessions()}
        assert back == {(s.mode, s.session_id): comparable(s) for s in SESSIONS}
    finally:
        for storage in mongo.values():
            storage.drop()


def test_a_session_the_target_holds_with_another_created_at_is_replaced_with_the_sources(
    tmp_path: Path,
) -> None:
    source_dir, target_dir = tmp_path / "a", tmp_path / "b"
    fill(json_storages(source_dir), SESSIONS[:1])
    target = json_storages(target_dir)
    target["agent"].upsert(SESSIONS[0].model_copy(update={"created_at": 5}))  # an upsert keeps created_at
    source = open_source(
        StorageSet(parse_location(json_location(source_dir)), json_storages(source_dir), False)
    )
    stats = copy_sessions(source, target)
    assert stats.written == 1
    assert target["agent"].read(SESSIONS[0].session_id).created_at == SESSIONS[0].created_at  # type: ignore[union-attr]
    assert verify(target, stats.expected).ok


def test_copy_exits_1_and_names_the_sessions_whose_copy_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(json_storages(tmp_path / "a"), SESSIONS)
    tampered = SESSIONS[1].session_id
    real_upsert = SqliteStorage.upsert

    def lossy_upsert(self: SqliteStorage, session: Any) -> Any:
        if session.session_id == tampered:  # a target that stores something else than it was given
            session = session.model_copy(update={"user_id": "someone-else"})
        return real_upsert(self, session)

    monkeypatch.setattr(SqliteStorage, "upsert", lossy_upsert)
    status = cli.main(
        [
            "copy",
            "--from",
            json_location(tmp_path / "a"),
            "--to",
            f"sqlite:///{tmp_path}/t.db",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert f"  differs: agent {tampered}" in out
    assert "verification failed: 1 of 8 sessions missing or different in the target" in out
    assert "  agent  " in out and "1 missing or different" in out


class Terminal(io.StringIO):
    """Output as a terminal takes it (isatty), kept to be read back."""

    def isatty(self) -> bool:
        return True


def test_the_progress_bar_redraws_in_place_on_a_terminal_and_prints_plain_lines_otherwise() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        bar = cli.ProgressBar(stream, "copy", 40)
        for _ in range(40):
            bar.advance()
        bar.close()
        bar.close()  # closing twice is harmless (the command closes every bar when it ends)
    drawn = terminal.getvalue()
    assert "\r" in drawn or "\x1b[2K" in drawn  # redrawn in place
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn.replace("\r", "\n")).splitlines()[-1]
    assert last.startswith("copy ") and "40/40" in last and "100%" in last
    assert drawn.endswith("\n\x1b[?25h")  # the line is left, the cursor shown again
    plain = pipe.getvalue().splitlines()
    assert "\r" not in pipe.getvalue() and "\x1b" not in pipe.getvalue()
    assert plain[0] == "copy: 2/40 sessions (5%)" and plain[-1] == "copy: 40/40 sessions (100%)"
    assert len(plain) == 20


def test_tables_are_drawn_by_rich_on_a_terminal_and_aligned_plain_text_otherwise() -> None:
    rows = [["ID", "USER", "NAME"], ["sess-1", "alice", "Refund"], ["sess-22", "-", "Invoice copy"]]
    terminal, pipe = Terminal(), io.StringIO()
    cli._table(rows, terminal)
    cli._table(rows, pipe)
    assert "\x1b[1m" in terminal.getvalue()  # a bold header
    drawn = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue())
    for row in rows:
        assert re.search(r"\s+".join(map(re.escape, row)), drawn), drawn
    assert pipe.getvalue().splitlines() == [
        "ID       USER   NAME",
        "sess-1   alice  Refund",
        "sess-22  -      Invoice copy",
    ]


@pytest.mark.parametrize("jobs", [1, 4])
def test_a_stop_signal_never_falls_between_copying_a_session_and_counting_it(jobs: int) -> None:
    """What `copy` says it copied when stopped is what the target holds: SIGTERM arriving just after
    a session was written (its commit done) waits until that session is counted."""
    written: list[int] = []
    counted: list[int] = []

    def task(number: int) -> Callable[[], int]:
        def copy_one() -> int:
            written.append(number)  # the session is in the target now
            if number == 3:
                signal.raise_signal(signal.SIGTERM)
            return number

        return copy_one

    previous = signal.signal(signal.SIGTERM, cli._stop)
    try:
        with pytest.raises(cli._Stopped):
            transfer._run(
                (task(n) for n in range(1000)), counted.append, jobs=jobs, bar=no_progress("copy", 1000)
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert 3 in counted
    assert sorted(counted) == sorted(written)
