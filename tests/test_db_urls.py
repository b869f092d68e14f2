"""One URL check for the storage classes, `agno-orm` and `alembic`: the same wrong URL reads the
same wherever it was given, and a URL of another database names the storage class to use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agno_orm import (
    AsyncMySQLStorage,
    AsyncPostgresStorage,
    AsyncSqliteStorage,
    InvalidInputError,
    MySQLStorage,
    PostgresStorage,
    SingleStoreStorage,
    SqliteStorage,
)
from agno_orm.cli import main

REPO = Path(__file__).resolve().parents[1]

BAD_URLS = [
    ("postgres://me@db/app", "SQLAlchemy does not accept postgres://; write postgresql+psycopg://me@db/app"),
    ("postgresql+psycog://me@db/app", "SQLAlchemy has no PostgreSQL driver 'psycog'"),
    ("postgresql+psycopg://me@db:port/app", "not a database URL"),
]


def test_text_that_is_no_url_says_which_urls_are_expected() -> None:
    with pytest.raises(
        InvalidInputError, match=r"^not a database URL: 'not a url'; expected sqlite:///file.db, "
    ):
        PostgresStorage("sessions", db_url="not a url")


@pytest.mark.parametrize(("url", "says"), BAD_URLS)
def test_a_bad_url_reads_the_same_from_the_api_and_the_cli(
    url: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        PostgresStorage("sessions", db_url=url)
    assert says in str(refused.value)
    assert main(["sessions", "list", "--db-url", url]) == 2
    assert capsys.readouterr().err == f"agno-orm: error: {refused.value}\n"


def test_a_refused_url_never_shows_its_password(capsys: pytest.CaptureFixture[str]) -> None:
    for url in (
        "postgres://me:s3cret@db/app",
        "postgresql+psycog://me:s3cret@db/app",
        "oracle://me:s3cret@db/x",
    ):
        with pytest.raises(InvalidInputError) as refused:
            PostgresStorage("sessions", db_url=url)
        main(["sessions", "list", "--db-url", url])
        assert "s3cret" not in str(refused.value) + capsys.readouterr().err


@pytest.mark.parametrize(
    ("storage_class", "url", "says"),
    [
        (PostgresStorage, "sqlite:///app.db", "sqlite:///app.db is a SQLite URL: use SqliteStorage"),
        (SqliteStorage, "postgresql+psycopg://me@db/app", "is a PostgreSQL URL: use PostgresStorage"),
        (MySQLStorage, "postgresql://me@db/app", "is a PostgreSQL URL: use PostgresStorage"),
        (SingleStoreStorage, "sqlite:///app.db", "is a SQLite URL: use SqliteStorage"),
        (PostgresStorage, "mysql+pymysql://me@db/app", "is a MySQL URL: use MySQLStorage"),
        (PostgresStorage, "singlestoredb://me@db/app", "is a SingleStore URL: use SingleStoreStorage"),
        (AsyncPostgresStorage, "sqlite:///app.db", "is a SQLite URL: use AsyncSqliteStorage"),
        (AsyncMySQLStorage, "sqlite:///app.db", "is a SQLite URL: use AsyncSqliteStorage"),
        (AsyncSqliteStorage, "mysql://me@db/app", "is a MySQL URL: use AsyncMySQLStorage"),
        (AsyncPostgresStorage, "singlestoredb://me@db/app", "use SingleStoreStorage (it has no async twin)"),
    ],
)
def test_a_url_of_another_database_names_the_storage_class_to_use(
    storage_class: type, url: str, says: str
) -> None:
    with pytest.raises(
        InvalidInputError,
        match=rf"^{storage_class.__name__} takes .*{says.replace('(', '.').replace(')', '.')}",
    ):
        storage_class("sessions", db_url=url)


def test_the_url_a_storage_class_takes_is_accepted(tmp_path: Path) -> None:
    SqliteStorage("sessions", db_url=f"sqlite:///{tmp_path / 'app.db'}").db_engine.dispose()
    PostgresStorage("sessions", db_url="postgresql+psycopg://me@db/app").db_engine.dispose()
    MySQLStorage("sessions", db_url="mysql+pymysql://me@db/app").db_engine.dispose()
    SingleStoreStorage(
        "sessions", db_url="mysql+pymysql://me@db/app"
    ).db_engine.dispose()  # as in agno's examples


@pytest.mark.sqlite
@pytest.mark.parametrize(("url", "says"), BAD_URLS[:2])
def test_alembic_with_a_bad_url_says_the_same_in_one_line(url: str, says: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        PostgresStorage("sessions", db_url=url)
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"db_url={url}", "current"],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "AGNO_ORM_DB_URL"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.endswith(str(refused.value))
