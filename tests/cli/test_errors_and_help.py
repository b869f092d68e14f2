"""Errors are one line on stderr with exit code 2, never a traceback; every command has --help."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from agno_orm import cli
from tests.cli.conftest import json_location, run_cli, sqlite_location


def free_port() -> int:
    """A loopback port nothing listens on (bound and released: refused when connected to)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_clear_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.startswith("agno-orm: error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.postgres
def test_an_unreachable_server_is_a_one_line_error(postgres_url: str) -> None:
    port = free_port()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"
    assert_clear_error(
        run_cli("sessions", "list", "--db-url", url), f"port {port} failed: Connection refused"
    )


@pytest.mark.sqlite
def test_a_missing_table_is_a_one_line_error_and_the_copy_writes_nothing(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE unrelated (x INTEGER)"))
    engine.dispose()
    source = sqlite_location(tmp_path / "app.db", table="agent_sesions")
    result = run_cli("copy", "--from", source, "--to", json_location(tmp_path / "out"))
    assert_clear_error(result, "there is no table agent_sesions")
    assert not (tmp_path / "out").exists()


def test_a_bad_location_is_a_one_line_error() -> None:
    assert_clear_error(
        run_cli("export", "--db-url", "postgresql://me:secret@db:port/app"), "not a database URL"
    )


# In-process from here on: the same main() the console script runs, without a process per case.


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["sessions", "list"], "no database: pass --db-url or set AGNO_ORM_DB_URL"),
        (["sessions", "list", "--db-url", "sqlite:///{tmp}/missing.db"], "there is no SQLite database file"),
        (["export", "--db-url", "json:///{tmp}/missing"], "there is no directory"),
        (["copy", "--from", "yaml:///{tmp}", "--to", "redis://127.0.0.1:{port}/0?prefix=p"], "unreachable"),
        (["copy", "--from", "redis://127.0.0.1:{port}/0?prefix=p", "--to", "json:///{tmp}/x"], "unreachable"),
        (
            ["copy", "--from", "sqlite:///{tmp}/a.db?tabel=x", "--to", "json:///{tmp}/x"],
            "unknown option(s) tabel",
        ),
        (["upgrade", "--db-url", "json:///{tmp}", "--table", "x"], "--table applies to SQL databases"),
        (["current", "--db-url", "json:///{tmp}"], "current applies to SQL databases"),
        (["import", "{tmp}/missing.jsonl", "--db-url", "json:///{tmp}/x"], "cannot read"),
        (["sessions", "list", "--db-url", "sqlite:///{tmp}/a.db", "--cursor", "bogus"], "not a cursor"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: list[str],
    fragment: str,
) -> None:
    monkeypatch.delenv("AGNO_ORM_DB_URL", raising=False)
    create_engine(f"sqlite:///{tmp_path}/a.db").dispose()
    from agno_orm import SqliteStorage

    SqliteStorage("agent_sessions", db_file=str(tmp_path / "a.db")).create()
    args = [a.format(tmp=tmp_path, port=free_port()) for a in args]
    status, out, err = run_main(capsys, *args)
    assert (status, out) == (2, "")
    assert err.startswith("agno-orm: error: ") and err.count("\n") == 1, err
    assert fragment in err
    assert not (tmp_path / "missing.db").exists()  # a read never creates a database


@pytest.mark.sqlite
@pytest.mark.json
def test_a_target_without_a_storage_for_a_mode_of_the_source_is_refused_before_any_write(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from agno_orm import TeamSession
    from agno_orm.nosql import JsonStorage

    JsonStorage(tmp_path / "src", mode="team", session_types="pydantic").upsert(TeamSession(session_id="t"))
    target = sqlite_location(tmp_path / "t.db", table="bots", mode="agent")
    status, _, err = run_main(capsys, "copy", "--from", json_location(tmp_path / "src"), "--to", target)
    assert status == 2
    assert "the source holds 1 team session(s), and the target names no storage for that mode" in err
    assert not (tmp_path / "t.db").exists()


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the parser: (), ("upgrade",), ("sessions", "list"), ..."""
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += commands(sub, (*path, name))
    return found


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths = commands(cli.build_parser())
    assert {" ".join(p) for p in paths} >= {
        "upgrade",
        "current",
        "check",
        "sessions list",
        "sessions show",
        "export",
        "import",
        "copy",
    }
    for path in paths:
        with pytest.raises(SystemExit) as exited:
            cli.main([*path, "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: agno-orm {' '.join(path)}".rstrip()), out


def test_the_installed_console_script_runs_main() -> None:
    script = Path(sys.executable).with_name("agno-orm")
    assert script.exists(), "reinstall the package (scripts/test does): pip install -e '.[dev]'"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: agno-orm ")
    for command in ("upgrade", "current", "check", "sessions", "export", "import", "copy"):
        assert f"    {command} " in result.stdout
