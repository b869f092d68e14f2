"""The distributions: metadata that renders (twine check), and a wheel carrying the revisions that
`auto_upgrade_schema` and a user's `alembic upgrade head` run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.package.conftest import REPO, Distributions

pytestmark = pytest.mark.sqlite

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from sqlalchemy import create_engine

    import agno_orm
    from agno_orm import AgentSession, SqliteStorage
    from agno_orm.sql import migrations
    from agno_orm.sql.models import TableSpec

    site = Path(sys.argv[1]).resolve()
    assert Path(agno_orm.__file__).resolve().is_relative_to(site), agno_orm.__file__
    assert migrations.script_location().resolve().is_relative_to(site), migrations.script_location()

    engine = create_engine(f"sqlite:///{sys.argv[2]}")
    spec = TableSpec("agent", "agent_sessions")
    migrations.upgrade(engine, [spec], "0001")  # a table left behind by an older release
    storage = SqliteStorage("agent_sessions", db_engine=engine, auto_upgrade_schema=True)
    storage.upsert(AgentSession(session_id="s1", workflow_session_id="w1"))
    with engine.connect() as connection:
        print(migrations.table_state(connection, spec).revision, migrations.head_revision())
    """
)


def test_twine_check_passes_on_the_wheel_and_sdist(distributions: Distributions) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            str(distributions.wheel),
            str(distributions.sdist),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_carries_the_revisions_and_py_typed(distributions: Distributions) -> None:
    names = set(zipfile.ZipFile(distributions.wheel).namelist())
    revisions = sorted(p.name for p in (REPO / "alembic" / "versions").glob("*.py"))
    assert revisions
    for revision in revisions:
        assert f"agno_orm/sql/_alembic/versions/{revision}" in names
    assert "agno_orm/sql/_alembic/env.py" in names
    assert "agno_orm/py.typed" in names


def test_installed_wheel_upgrades_a_table_with_auto_upgrade_schema(
    distributions: Distributions, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(distributions.wheel),
        ],
        check=True,
        timeout=300,
    )
    # The wheel's copy first on the path; run outside the repository so its sources are not found.
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(site), str(tmp_path / "data.db")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    revision, head = result.stdout.split()
    assert revision == head
