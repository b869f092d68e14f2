"""The README's demo (scripts/demo): a session written by one process is continued by the next,
with agno installed (storages then return agno's classes) as without."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "resume_session.py"


@pytest.mark.sqlite
def test_each_process_continues_the_session_the_last_one_stored(tmp_path: Path) -> None:
    db_file = str(tmp_path / "data.db")

    def ask(question: str) -> str:
        result = subprocess.run(
            [sys.executable, str(EXAMPLE), db_file, question], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "You have not asked anything yet." in ask("What was my last question?")
    assert "2 runs stored" in ask("What is the capital of France?")
    last = ask("What was my last question?")
    assert "Your last question was: 'What is the capital of France?'" in last
    assert "3 runs stored" in last
