"""The README is a front door: short, and what it shows is what runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_the_readme_is_at_most_about_200_lines() -> None:
    assert len(README.splitlines()) <= 200


@pytest.mark.sqlite
def test_the_demo_prints_what_the_readme_shows() -> None:
    shown = re.search(r"`scripts/demo` prints[^\n]*\n\n```\n(.*?)```\n", README, re.DOTALL)
    assert shown is not None, "the README shows scripts/demo's output after '`scripts/demo` prints'"
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo")], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown.group(1)


def test_every_link_of_the_readme_into_the_docs_names_a_page() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", README)
    assert links
    for link in links:
        assert (REPO / link).is_file(), link
