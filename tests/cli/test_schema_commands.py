"""`agno-orm upgrade|current|check`: the revisions `alembic upgrade head` runs, with exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from agno_orm.sql import migrations
from agno_orm.sql.models import DEFAULT_TABLE_NAMES, TableSpec
from tests.cli.conftest import ok, run_cli, sqlite_location

HEAD = migrations.head_revision()


def rows(output: str) -> list[list[str]]:
    """The lines of an aligned table as cells (cells are separated by two or more spaces)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()]


@pytest.mark.sqlite
def test_upgrade_creates_the_default_tables_and_check_turns_from_failing_to_passing(tmp_path: Path) -> None:
    db = sqlite_location(tmp_path / "app.db")

    before = run_cli("check", "--db-url", db)
    assert before.returncode == 1
    for table in DEFAULT_TABLE_NAMES.values():
        assert f"{table} (" in before.stdout and "missing" in before.stdout

    upgraded = ok(run_cli("upgrade", "--db-url", db))
    assert upgraded.splitlines() == [
        f"{table} ({mode}): created at {HEAD} (head)" for mode, table in DEFAULT_TABLE_NAMES.items()
    ]
    after = run_cli(
        "check", env={"AGNO_ORM_DB_URL": db}
    )  # the URL may come from the variable, as for alembic
    assert (after.returncode, after.stdout) == (0, f"all 4 table(s) at head {HEAD}\n")


@pytest.mark.postgres
def test_check_exits_1_naming_a_table_behind_head_until_upgrade_brings_it_to_head(
    postgres_location: str,
) -> None:
    url = make_url(postgres_location)
    schema = url.query["schema"]
    assert isinstance(schema, str)
    engine = create_engine(url.difference_update_query(["schema"]))
    migrations.upgrade(engine, [TableSpec("team", "old_teams", schema)], "0001")  # an old release's table
    engine.dispose()
    one_table = ["--db-url", postgres_location, "--table", "old_teams", "--mode", "team"]

    # `current` prints each table's revision; the URL may come from AGNO_ORM_DB_URL, as for alembic.
    current = ok(run_cli("current", *one_table[2:], env={"AGNO_ORM_DB_URL": postgres_location}))
    assert rows(current) == [
        ["TABLE", "MODE", "REVISION"],
        [f"{schema}.old_teams", "team", f"0001 (behind head {HEAD})"],
    ]

    behind = run_cli("check", *one_table)
    assert behind.returncode == 1, behind.stderr
    assert f"{schema}.old_teams (team): 0001 (behind head {HEAD})" in behind.stdout
    assert "agno-orm upgrade" in behind.stdout

    upgraded = ok(run_cli("upgrade", *one_table))
    assert upgraded == f"{schema}.old_teams (team): 0001 -> {HEAD} (head)\n"
    assert ok(run_cli("check", *one_table)) == f"all 1 table(s) at head {HEAD}\n"


def pasted(output: str) -> list[str]:
    """The arguments of the `agno-orm ...` command that check's last line says to run."""
    import shlex

    hint = output.splitlines()[-1]
    assert hint.startswith(f"not at head {HEAD}; upgrade with: agno-orm upgrade"), hint
    command = shlex.split(hint.split("upgrade with: ", 1)[1])
    assert command[0] == "agno-orm"
    return command[1:]


@pytest.mark.postgres
def test_checks_hint_pasted_upgrades_the_tables_it_checked_keeping_the_locations_options(
    postgres_location: str,
) -> None:
    location = f"{postgres_location}&agent_table=hint_bots"  # ?schema=... of its own, and a table name
    check = run_cli("check", "--db-url", location, "--team-table", "hint_crews")
    assert check.returncode == 1, check.stderr
    assert not check.stdout.rstrip().endswith("...")
    ok(run_cli(*pasted(check.stdout)))
    assert ok(run_cli("check", "--db-url", location, "--team-table", "hint_crews")).startswith(
        "all 4 table(s)"
    )
    schema = make_url(postgres_location).query["schema"]
    current = ok(run_cli("current", "--db-url", location, "--team-table", "hint_crews"))
    assert f"{schema}.hint_bots" in current and f"{schema}.hint_crews" in current


@pytest.mark.postgres
def test_checks_hint_never_prints_the_password_and_leaves_a_url_from_the_environment_there(
    postgres_location: str,
) -> None:
    url = make_url(postgres_location).set(password="s3cret-pw")  # trust auth here: any password works
    environment = {"AGNO_ORM_DB_URL": url.render_as_string(hide_password=False)}
    check = run_cli("check", "--table", "hint_one", "--mode", "team", env=environment)
    assert check.returncode == 1, check.stderr
    assert "s3cret-pw" not in check.stdout
    assert pasted(check.stdout) == ["upgrade", "--table", "hint_one", "--mode", "team"]
    ok(run_cli(*pasted(check.stdout), env=environment))
    assert ok(run_cli("check", "--table", "hint_one", "--mode", "team", env=environment)).startswith("all 1")

    given = run_cli("check", "--db-url", environment["AGNO_ORM_DB_URL"], "--table", "hint_two")
    assert "s3cret-pw" not in given.stdout
    assert given.stdout.rstrip().endswith("(with your password in place of ***)")


@pytest.mark.sqlite
def test_checks_hint_pasted_upgrades_one_sqlite_table(tmp_path: Path) -> None:
    location = sqlite_location(tmp_path / "app.db", table="my_sessions", mode="team")
    check = run_cli("check", "--db-url", location)
    assert check.returncode == 1
    ok(run_cli(*pasted(check.stdout)))
    assert ok(run_cli("check", "--db-url", location)) == f"all 1 table(s) at head {HEAD}\n"


@pytest.mark.sqlite
def test_a_copy_from_a_table_behind_head_names_the_upgrade_and_works_once_it_is_pasted(
    tmp_path: Path,
) -> None:
    import shlex

    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")
    migrations.upgrade(engine, [TableSpec("team", "old_teams", None)], "0001")  # an older release's table
    engine.dispose()
    source = sqlite_location(db, table="old_teams", mode="team")
    copy = ["copy", "--from", source, "--to", f"json:///{tmp_path / 'out'}", "--no-progress"]
    refused = run_cli(*copy)
    assert refused.returncode == 2
    command = refused.stderr.strip().split("upgrade it first: ", 1)[1]
    assert shlex.split(command)[:2] == ["agno-orm", "upgrade"]
    ok(run_cli(*shlex.split(command)[1:]))
    assert "verified" in ok(run_cli(*copy))
