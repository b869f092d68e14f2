"""The main job from a user's own project: only the built wheel installed in a fresh venv, run in a
folder outside the repository, with the commands and code the README and the docs give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.package.conftest import REPO, UserVenv, fenced_blocks

pytestmark = pytest.mark.sqlite

HEAD = sorted(p.name for p in (REPO / "alembic" / "versions").glob("0*.py"))[-1][:4]
TABLES = ("agent_sessions", "team_sessions", "workflow_sessions", "workflow_v2_sessions")


def documented_alembic_ini() -> str:
    """The alembic.ini docs/migrations.md tells users to write (its first ini block)."""
    (ini, *_) = fenced_blocks((REPO / "docs" / "migrations.md").read_text(), "ini")
    return ini


def ok(result: object) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    return result.stdout  # type: ignore[attr-defined,no-any-return]


def test_the_package_is_imported_from_the_venv_not_the_repository(user_venv: UserVenv, project: Path) -> None:
    where = ok(user_venv.run("python", "-c", "import agno_orm; print(agno_orm.__file__)", cwd=project))
    assert Path(where.strip()).resolve().is_relative_to(user_venv.root.resolve())


def test_the_documented_alembic_ini_is_three_lines(project: Path) -> None:
    assert len(documented_alembic_ini().strip().splitlines()) == 3


def test_alembic_upgrade_head_with_the_documented_alembic_ini(user_venv: UserVenv, project: Path) -> None:
    (project / "alembic.ini").write_text(documented_alembic_ini())
    out = ok(user_venv.run("alembic", "upgrade", "head", cwd=project))
    for table in TABLES:
        assert f"{table} (" in out
    assert (project / "app.db").is_file()  # the URL of the documented ini, relative to the project
    current = ok(user_venv.run("alembic", "current", cwd=project))
    assert current.count(f"{HEAD} (head)") == len(TABLES)
    assert "No new upgrade operations detected" in ok(user_venv.run("alembic", "check", cwd=project))
    # -x db_url= and AGNO_ORM_DB_URL name another database than the ini's
    other = f"sqlite:///{project / 'other.db'}"
    ok(user_venv.run("alembic", "-x", f"db_url={other}", "-x", "table=bots", "upgrade", "head", cwd=project))
    env_current = user_venv.run("alembic", "current", cwd=project, env={"AGNO_ORM_DB_URL": other})
    assert "agent_sessions" in ok(env_current)  # the default set: bots was a table of its own


def test_agno_orm_upgrade_check_and_sessions_list(user_venv: UserVenv, project: Path) -> None:
    url = "sqlite:///app.db"
    check = user_venv.run("agno-orm", "check", "--db-url", url, cwd=project)
    assert check.returncode == 1, check.stderr
    out = ok(user_venv.run("agno-orm", "upgrade", "--db-url", url, cwd=project))
    assert out.count(f"created at {HEAD} (head)") == len(TABLES)
    assert f"at head {HEAD}" in ok(user_venv.run("agno-orm", "check", "--db-url", url, cwd=project))
    assert "no agent sessions" in ok(
        user_venv.run("agno-orm", "sessions", "list", "--db-url", url, cwd=project)
    )
    write = (
        "from agno_orm import AgentSession, SqliteStorage\n"
        "SqliteStorage('agent_sessions', db_file='app.db').upsert("
        "AgentSession(session_id='s1', user_id='u1', agent_id='a1', memory={'runs': [{'run_id': 'r1'}]}))\n"
    )
    ok(user_venv.run("python", "-c", write, cwd=project))
    listing = ok(user_venv.run("agno-orm", "sessions", "list", "--db-url", url, cwd=project))
    assert "s1" in listing and "u1" in listing
    shown = json.loads(ok(user_venv.run("agno-orm", "sessions", "show", "s1", "--db-url", url, cwd=project)))
    assert shown["memory"]["runs"] == [{"run_id": "r1"}]


def test_the_readme_python_example_runs(user_venv: UserVenv, project: Path) -> None:
    readme = (REPO / "README.md").read_text()
    (example,) = [block for block in fenced_blocks(readme, "python") if "SqliteStorage(" in block][:1]
    (project / "example.py").write_text(example)
    ok(user_venv.run("python", "example.py", cwd=project))


@pytest.mark.parametrize("command", [("current",), ("check",), ("upgrade", "head")])
def test_alembic_without_a_url_says_so_in_one_line_on_stderr(
    user_venv: UserVenv, project: Path, command: tuple[str, ...]
) -> None:
    ini = "".join(line for line in documented_alembic_ini().splitlines(True) if "sqlalchemy.url" not in line)
    (project / "alembic.ini").write_text(ini)
    result = user_venv.run("alembic", *command, cwd=project)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert "no database URL" in line and "AGNO_ORM_DB_URL" in line and "-x db_url=" in line


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["-x", "tabel=x"], "unknown -x option(s): tabel"),
        (["-x", "table=x", "-x", "mode=teams"], "-x mode=teams is not one of"),
    ],
)
def test_alembic_with_a_wrong_option_says_so_in_one_line_on_stderr(
    user_venv: UserVenv, project: Path, options: list[str], says: str
) -> None:
    (project / "alembic.ini").write_text(documented_alembic_ini())
    result = user_venv.run("alembic", *options, "current", cwd=project)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert says in line


def test_the_demo_persists_a_session_in_one_process_and_resumes_it_in_the_next(
    user_venv: UserVenv, project: Path
) -> None:
    """scripts/demo's main job, with the installed package: the example script copied into the
    user's folder (the repository is not on the path)."""
    script = project / "resume_session.py"
    script.write_text((REPO / "examples" / "resume_session.py").read_text())
    (project / "alembic.ini").write_text(documented_alembic_ini())
    ok(user_venv.run("alembic", "-x", "db_url=sqlite:///data.db", "upgrade", "head", cwd=project))

    def ask(question: str) -> str:
        return ok(user_venv.run("python", script.name, "data.db", question, cwd=project))

    assert "You have not asked anything yet." in ask("What was my last question?")
    assert "2 runs stored" in ask("What is the capital of France?")
    last = ask("What was my last question?")
    assert "Your last question was: 'What is the capital of France?'" in last and "3 runs stored" in last
