"""docs/getting-started.md followed literally in a fresh venv holding only the built wheel: its
commands run in a new project folder, its Python file saved under the name the page gives it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.package.conftest import REPO, UserVenv, fenced_blocks

pytestmark = pytest.mark.sqlite

PAGE = REPO / "docs" / "getting-started.md"
SETUP = ("python3 -m venv", "pip install")  # what made the user_venv fixture


def test_the_getting_started_page_works_as_written(user_venv: UserVenv, project: Path) -> None:
    page = PAGE.read_text()
    for block in fenced_blocks(page, "python"):
        name = block.splitlines()[0].removeprefix("# ").strip()
        assert name.endswith(".py"), f"a Python block of {PAGE.name} names its file first: {name!r}"
        (project / name).write_text(block)
    outputs = []
    commands = [line for block in fenced_blocks(page, "bash") for line in block.splitlines() if line.strip()]
    assert commands[0].startswith(SETUP[0]) and commands[1].startswith(SETUP[1])
    for line in commands[2:]:
        argv = shlex.split(line, comments=True)
        result = user_venv.run(argv[0], *argv[1:], cwd=project)
        assert result.returncode == 0, f"{line}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        outputs.append((argv, result.stdout))

    said = dict((" ".join(argv[:3]), out) for argv, out in outputs)
    assert "all 4 table(s) at head" in said["agno-orm check --db-url"]
    assert said["python first_session.py"].strip() == "Refund for order 1042 1 run"  # as the page says
    listing = said["agno-orm sessions list"]
    assert "s1" in listing and "alice" in listing and "Refund for order 1042" in listing
    shown = json.loads(said["agno-orm sessions show"])
    assert shown["memory"]["runs"][0]["run_id"] == "r1"
