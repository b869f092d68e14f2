"""Engines made from a URL, with the settings every server-backed storage wants."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from agno_orm.errors import InvalidInputError, MissingDependencyError

__all__ = ["engine_from_url", "parse_url"]


def parse_url(db_url: str) -> URL:
    """`db_url` parsed, or InvalidInputError."""
    try:
        return make_url(db_url)
    except ArgumentError as exc:
        raise InvalidInputError(f"not a database URL: {db_url!r}") from exc


def engine_from_url(db_url: str | URL, *, extra: str) -> Engine:
    """An engine for a server URL; a missing driver raises MissingDependencyError naming `extra`."""
    url = parse_url(db_url) if isinstance(db_url, str) else db_url
    try:
        # pre_ping: a connection the server closed (restart, idle timeout) is replaced, not returned.
        return create_engine(url, pool_pre_ping=True)
    except ImportError as exc:
        raise MissingDependencyError(exc.name or url.drivername, extra) from exc
    except (ArgumentError, TypeError, ValueError) as exc:  # a dialect refusing the URL's options
        shown = url.render_as_string(hide_password=True)
        raise InvalidInputError(f"cannot open a database with {shown!r}: {exc}") from exc
