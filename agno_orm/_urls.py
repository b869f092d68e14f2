"""Database URLs: the one place a URL is checked, whoever was given it, and its errors worded.

The storage classes (through `agno_orm.sql.engines`), the `agno-orm` command (through
`agno_orm.locations`) and `alembic` (through `agno_orm.sql.migrations`) all parse a database URL
with `parse_db_url`, so a wrong URL reads the same wherever it was given; `check_storage_kind`
names the storage class to use when a URL is of another database than the class stores in.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from agno_orm.errors import InvalidInputError, MissingDependencyError

__all__ = ["EXPECTED_URLS", "check_storage_kind", "engine_url", "parse_db_url", "without_password"]


class _Backend(NamedTuple):
    title: str
    storage: str
    example: str


_BACKENDS = {
    "sqlite": _Backend("SQLite", "SqliteStorage", "sqlite:///path/to/file.db"),
    "postgresql": _Backend(
        "PostgreSQL", "PostgresStorage", "postgresql+psycopg://user:password@host:5432/db"
    ),
    "mysql": _Backend("MySQL", "MySQLStorage", "mysql+pymysql://user:password@host:3306/db"),
    "mariadb": _Backend("MariaDB", "MySQLStorage", "mysql+pymysql://user:password@host:3306/db"),
    "singlestoredb": _Backend(
        "SingleStore", "SingleStoreStorage", "singlestoredb://user:password@host:3306/db"
    ),
}
"""The databases agno_orm stores sessions in, by SQLAlchemy's backend name."""

EXPECTED_URLS = (
    "sqlite:///file.db, postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db "
    "or singlestoredb://user@host/db"
)

_STORAGE_URLS: dict[str, tuple[tuple[str, ...], str]] = {
    "SqliteStorage": (("sqlite",), "sqlite://"),
    "PostgresStorage": (("postgresql",), "postgresql+psycopg://"),
    "MySQLStorage": (("mysql", "mariadb"), "mysql+pymysql://"),
    # agno's own SingleStore examples give mysql+pymysql:// URLs
    "SingleStoreStorage": (("singlestoredb", "mysql", "mariadb"), "singlestoredb:// or mysql+pymysql://"),
    "AsyncSqliteStorage": (("sqlite",), "sqlite://"),
    "AsyncPostgresStorage": (("postgresql",), "postgresql://"),
    "AsyncMySQLStorage": (("mysql", "mariadb"), "mysql://"),
}
"""The backends each storage class takes URLs of, and the URLs to write for them."""

_ENGINE_STORAGES = {
    ("postgres", False): "PostgresStorage",
    ("mysql", False): "MySQLStorage",
    ("singlestore", False): "SingleStoreStorage",
    ("postgres", True): "AsyncPostgresStorage",
}
"""The storage class an engine is made for, by the extra installing its driver and whether it is
async (`agno_orm.sql.engines`); the asyncio extra serves both AsyncSqliteStorage and AsyncMySQLStorage."""

_ASYNC_STORAGES = {"SqliteStorage", "PostgresStorage", "MySQLStorage"}
"""The storage classes with an Async twin."""


def engine_url(db_url: str | URL, *, extra: str, asyncio: bool = False) -> URL:
    """`db_url` parsed and checked for the storage class whose engine is made with `extra`."""
    url = parse_db_url(db_url)
    storage = _ENGINE_STORAGES.get((extra, asyncio))
    if storage is None and asyncio and url.get_backend_name() not in ("sqlite", "mysql", "mariadb"):
        storage = "AsyncSqliteStorage"  # sqlite or mysql expected: the message names the right class
    return url if storage is None else check_storage_kind(url, storage)


def parse_db_url(db_url: str | URL) -> URL:
    """`db_url` parsed: a URL of a database agno_orm stores sessions in, with a driver SQLAlchemy has.

    Raises InvalidInputError saying what is wrong and what to write instead (never showing a
    password), or MissingDependencyError when the URL's dialect comes with an extra not installed.
    """
    if isinstance(db_url, URL):
        url = db_url
    else:
        text = db_url.strip()
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme.split("+", 1)[0] == "postgres":  # libpq's and Heroku's spelling
            rest = text.split("://", 1)[1]
            raise InvalidInputError(
                f"{without_password(text)}: SQLAlchemy does not accept postgres://; "
                f"write {without_password('postgresql+psycopg://' + rest)}"
            )
        try:
            url = make_url(text)
        except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
            reason = "" if isinstance(exc, ArgumentError) else f" ({exc})"
            raise InvalidInputError(
                f"not a database URL: {without_password(text)!r}{reason}; expected {EXPECTED_URLS}"
            ) from exc
    shown = url.render_as_string(hide_password=True)
    backend = _BACKENDS.get(url.get_backend_name())
    if backend is None:
        raise InvalidInputError(
            f"{shown}: agno_orm stores sessions in SQLite, PostgreSQL, MySQL/MariaDB and SingleStore, "
            f"not {url.get_backend_name()}; expected {EXPECTED_URLS}"
        )
    try:
        url.get_dialect()  # the dialect's module only: its driver is imported when an engine is made
    except NoSuchModuleError as exc:
        if url.get_backend_name() == "singlestoredb":
            raise MissingDependencyError("sqlalchemy-singlestoredb", "singlestore") from exc
        raise InvalidInputError(
            f"{shown}: SQLAlchemy has no {backend.title} driver {url.get_driver_name()!r}; "
            f"write {backend.example}"
        ) from exc
    return url


def check_storage_kind(url: URL, storage: str) -> URL:
    """`url` when `storage` (a storage class's name) stores sessions in its database; otherwise
    InvalidInputError naming the class that does."""
    accepted, schemes = _STORAGE_URLS[storage]
    found = _BACKENDS.get(url.get_backend_name())
    if found is None:  # parse_db_url refuses it, saying why
        return parse_db_url(url)
    if url.get_backend_name() in accepted:
        return url
    use = found.storage
    if storage.startswith("Async"):
        use = f"Async{use}" if use in _ASYNC_STORAGES else f"{use} (it has no async twin)"
    raise InvalidInputError(
        f"{storage} takes {schemes} URLs; {url.render_as_string(hide_password=True)} is a "
        f"{found.title} URL: use {use}"
    )


def without_password(text: str) -> str:
    """`text` (a URL, or what was meant as one) with a password replaced by ***."""
    try:
        parts = urlsplit(text)
        if parts.password is None:
            return text
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return text
