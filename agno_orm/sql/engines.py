"""Engines made from a URL, with the settings every server-backed storage wants."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, InvalidRequestError

from agno_orm._greenlets import HAVE_GREENLET
from agno_orm._urls import engine_url, parse_db_url
from agno_orm.errors import InvalidInputError, MissingDependencyError

if TYPE_CHECKING:  # SQLAlchemy's asyncio extension needs greenlet, which only the `asyncio` extra installs
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["ASYNC_DRIVERS", "async_engine_from_url", "asyncio_url", "engine_from_url", "parse_url"]


def parse_url(db_url: str) -> URL:
    """`db_url` parsed and checked (agno_orm._urls, shared with `agno-orm` and `alembic`), or
    InvalidInputError saying what to write."""
    return parse_db_url(db_url)


def engine_from_url(db_url: str | URL, *, extra: str, **options: Any) -> Engine:
    """An engine for a server URL; a missing driver raises MissingDependencyError naming `extra`."""
    url = engine_url(db_url, extra=extra)  # a URL of another database names the storage class to use
    # pre_ping: a connection the server closed (restart, idle timeout) is replaced, not returned.
    options.setdefault("pool_pre_ping", True)
    with _opening(url, extra):
        return create_engine(url, **options)


ASYNC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "mysql": "mysql+aiomysql",
    "mysql+pymysql": "mysql+aiomysql",
    "mysql+mysqldb": "mysql+aiomysql",
}
"""The async driver an async storage uses for a URL naming a sync one (or none): psycopg's async
mode, aiosqlite, aiomysql. Other drivers are used as named (they must be async)."""


def asyncio_url(url: URL) -> URL:
    """`url` with the async driver of ASYNC_DRIVERS where it names a sync one."""
    drivername = ASYNC_DRIVERS.get(url.drivername, url.drivername)
    return url if drivername == url.drivername else url.set(drivername=drivername)


def async_engine_from_url(db_url: str | URL, *, extra: str, **options: Any) -> AsyncEngine:
    """An AsyncEngine for `db_url` (its async driver, see `asyncio_url`), set up as `engine_from_url`'s."""
    if not HAVE_GREENLET:  # SQLAlchemy's asyncio extension cannot be imported without it
        raise MissingDependencyError("greenlet", "asyncio")
    from sqlalchemy.ext.asyncio import create_async_engine

    url = asyncio_url(engine_url(db_url, extra=extra, asyncio=True))
    options.setdefault("pool_pre_ping", True)
    with _opening(url, extra):
        return create_async_engine(url, **options)


@contextmanager
def _opening(url: URL, extra: str) -> Iterator[None]:
    """Errors of making an engine for `url` as ours: a missing driver names the extra installing it."""
    try:
        yield
    except ImportError as exc:
        raise MissingDependencyError(exc.name or url.drivername, extra) from exc
    # a dialect refusing the URL's options, or a sync driver given to an async engine
    except (ArgumentError, InvalidRequestError, TypeError, ValueError) as exc:
        shown = url.render_as_string(hide_password=True)
        raise InvalidInputError(f"cannot open a database with {shown!r}: {exc}") from exc
