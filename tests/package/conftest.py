"""A user's install: the distributions `python -m build` makes, and one fresh virtualenv per test
run, in a temporary folder outside the repository, holding the built wheel and its dependencies only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Distributions:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """The sdist, and the wheel built from it, as `python -m build` makes them (hatchling is a dev
    dependency, so the build needs no isolated environment)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("agno_orm-*.whl")
    (sdist,) = out.glob("agno_orm-*.tar.gz")
    return Distributions(wheel, sdist)


@dataclass(frozen=True)
class UserVenv:
    """A virtualenv with the built wheel installed, as `pip install` leaves it for a user."""

    root: Path
    """Outside the repository; each test works in a folder of its own below it."""
    bin: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a user's shell with the venv activated: nothing of the repository's."""
        keep = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        keep = {k: v for k, v in keep.items() if not k.startswith("AGNO_ORM_")}
        return {
            **keep,
            "PATH": f"{self.bin}{os.pathsep}{keep.get('PATH', '')}",
            "VIRTUAL_ENV": str(self.bin.parent),
            **extra,
        }

    def run(
        self, command: str, *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`command` (a program of the venv: python, alembic, agno-orm) run in `cwd`."""
        return subprocess.run(
            [str(self.bin / command), *args],
            cwd=cwd,
            env=self.env(**(env or {})),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="session")
def user_venv(distributions: Distributions, tmp_path_factory: pytest.TempPathFactory) -> UserVenv:
    """One venv per test run (installing the dependencies takes seconds); tests must not change it."""
    root = tmp_path_factory.mktemp("user")
    assert not root.resolve().is_relative_to(REPO)
    venv = root / "venv"
    # no pip of its own (ensurepip takes seconds): the test run's pip installs into it
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            str(distributions.wheel),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return UserVenv(root, venv / "bin")


@pytest.fixture
def project(user_venv: UserVenv, request: pytest.FixtureRequest) -> Path:
    """An empty folder of the user's project, outside the repository."""
    name = re.sub(r"\W+", "_", request.node.name)
    folder = user_venv.root / "projects" / name
    folder.mkdir(parents=True)
    return folder


def fenced_blocks(markdown: str, language: str) -> list[str]:
    """The fenced code blocks of `language` in a Markdown text, in order."""
    pattern = re.compile(rf"^```{re.escape(language)}\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    return [match.group(1) for match in pattern.finditer(markdown)]
