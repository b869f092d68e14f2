"""Sync code run for an async storage: SQLAlchemy's asyncio extension runs it in a greenlet on the
event loop, where a database call awaits the async driver. These helpers let the one sync
implementation behave there: wait without blocking the loop, and know not to hold thread locks.

greenlet is optional (SQLAlchemy's `asyncio` extra): without it no async storage can run, and
these report "not in an async operation".
"""

from __future__ import annotations

import asyncio
import importlib.util
import time

__all__ = ["HAVE_GREENLET", "in_async_operation", "sleep"]

from sqlalchemy.util.concurrency import await_only, in_greenlet

HAVE_GREENLET = importlib.util.find_spec("greenlet") is not None

if HAVE_GREENLET:
    # SQLAlchemy imports greenlet on first use, and not thread-safely: two threads making their
    # first call at once can recurse until RecursionError (sqlalchemy.util.concurrency's
    # `_concurrency_shim` finds greenlet imported before its own attributes are set). Done here,
    # once, while this module is imported (under the import lock).
    in_greenlet()


def in_async_operation() -> bool:
    """Whether this code runs inside an async storage's operation (SQLAlchemy's greenlet)."""
    return HAVE_GREENLET and bool(in_greenlet())


def sleep(seconds: float) -> None:
    """time.sleep, or inside an async operation asyncio.sleep, so the loop serves other tasks meanwhile."""
    if in_async_operation():
        await_only(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)
