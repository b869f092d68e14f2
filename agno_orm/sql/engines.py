"""Engines made from a URL, with the settings every server-backed storage wants."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from agno_orm.errors import InvalidInputError, MissingDependencyError

__all__ = ["engine_from_url"]


def engine_from_url(db_url: str, *, extra: str) -> Engine:
    """An engine for a server URL; a missing driver raises MissingDependencyError naming `extra`."""
    try:
        url = make_url(db_url)
    except ArgumentError as exc:
        raise InvalidInputError(f"not a database URL: {db_url!r}") from exc
    try:
        # pre_ping: a connection the server closed (restart, idle timeout) is replaced, not returned.
        return create_engine(url, pool_pre_ping=True)
    except ImportError as exc:
        raise MissingDependencyError(exc.name or url.drivername, extra) from exc
