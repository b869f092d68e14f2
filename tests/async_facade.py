"""Async storages driven from the sync contract suite: one event loop, in a thread, for the session.

`SyncFacade` turns each coroutine method of an async storage into a plain call that runs it on
that loop and waits; attributes (mode, table_name...) pass through. The contract's assertions
then run unchanged against the async API, and its threads become concurrent tasks on one loop,
as in an asyncio service.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

CALL_TIMEOUT_SECONDS = 300


class LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="async-storages", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(CALL_TIMEOUT_SECONDS)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncFacade:
    """An async storage whose coroutine methods are called like the sync storage's."""

    def __init__(self, storage: Any, loop: LoopThread) -> None:
        object.__setattr__(self, "_storage", storage)
        object.__setattr__(self, "_loop", loop)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._storage, name)
        if not inspect.iscoroutinefunction(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run(value(*args, **kwargs))

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._storage, name, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> SyncFacade:
        return SyncFacade(copy.deepcopy(self._storage, memo), self._loop)

    def __repr__(self) -> str:
        return f"SyncFacade({self._storage!r})"
