"""`alembic` from the repository root, with its alembic.ini: a missing URL is one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.sql.conftest import REPO


@pytest.mark.sqlite
@pytest.mark.parametrize("command", ["current", "check"])
def test_bare_alembic_command_without_a_url_fails_in_one_line(command: str) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "AGNO_ORM_DB_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", command],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert "no database URL: set AGNO_ORM_DB_URL" in line
