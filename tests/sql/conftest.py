"""Fixtures for the migration tests: an empty database per test, for every SQL backend."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

REPO = Path(__file__).resolve().parents[2]

SQL_BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("singlestore", marks=pytest.mark.singlestore),
]
MYSQL_FAMILY = {"mysql", "singlestore"}


@pytest.fixture(params=SQL_BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database holding nothing, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    if request.param in MYSQL_FAMILY:
        yield from _empty_mysql_database(make_url(request.getfixturevalue(f"{request.param}_url")))
        return
    server_url = make_url(request.getfixturevalue("postgres_url"))
    name = f"agno_orm_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_mysql_database(server_url: URL) -> Iterator[str]:
    """A fresh database on a MySQL-family server (a schema is a database there), dropped afterwards.

    Its default character set is 3-byte utf8, not the utf8mb4 our tables need: they must set
    their own. (On a real SingleStore the database keeps the server's default.)
    """
    name = f"agno_orm_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, poolclass=NullPool)
    with admin.connect() as connection:
        singlestore = connection.execute(text("SHOW VARIABLES LIKE 'memsql_version'")).first() is not None
        charset = "" if singlestore else " CHARACTER SET utf8"
        connection.execute(text(f"CREATE DATABASE `{name}`{charset}"))
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def run_alembic(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`alembic ARGS` from the repository root, as a backend engineer runs it."""
    env = {**os.environ, "AGNO_ORM_DB_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
