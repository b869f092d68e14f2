"""The install docs, the extras pyproject.toml defines and MissingDependencyError's hint agree."""

from __future__ import annotations

import re
from importlib.metadata import metadata

import pytest

from agno_orm import MissingDependencyError
from tests.package.conftest import REPO

EXTRAS = sorted(set(metadata("agno-orm").get_all("Provides-Extra") or []) - {"dev"})
"""The extras of the installed agno-orm (pyproject.toml's, as of the last install)."""


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("extra", EXTRAS)
def test_every_extra_is_in_the_install_docs_table(extra: str) -> None:
    page = (REPO / "docs" / "install.md").read_text()
    assert re.search(rf"^\|[^|\n]*`{extra}`", page, re.MULTILINE), f"docs/install.md has no row for {extra}"


@pytest.mark.parametrize("extra", EXTRAS)
def test_the_missing_dependency_hint_is_the_command_the_install_docs_give(extra: str) -> None:
    hint = str(MissingDependencyError("some-driver", extra))
    assert f"pip install 'agno-orm[{extra}]'" in hint  # beside an installed agno-orm, as the docs say
    assert f"pip install -e '.[{extra}]'" in hint  # in a clone
    for page in (REPO / "README.md", REPO / "docs" / "install.md"):
        text = flat(page.read_text())
        assert "pip install 'agno-orm[redis]'" in text and "pip install -e '.[" in text, page.name
