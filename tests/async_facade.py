"""Async storages driven from the sync contract suite: one event loop, in a thread, for the session.

`SyncFacade` turns each coroutine method of an async storage into a plain call that runs it on
that loop and waits; attributes (mode, table_name...) pass through. The calls of one test thread
run one after another in one task of their own, as the calls of one request do in an asyncio
service (a storage matches a session handed in as a dict to what was read in the same task); the
threads of a test are so many concurrent tasks on one loop. The contract's assertions then run
unchanged against the async API.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

CALL_TIMEOUT_SECONDS = 300

Call = tuple[Callable[[], Coroutine[Any, Any, Any]], "concurrent.futures.Future[Any]"]


class LoopThread:
    """An event loop running forever in a daemon thread, with one worker task per calling thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="async-storages", daemon=True)
        self._thread.start()
        self._local = threading.local()  # the calling thread's queue (its ident may be reused, this not)
        self._workers: set[asyncio.Task[None]] = set()

    def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The result of the coroutine `make()` returns, run in the calling thread's task."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        queue = self._queue_of_this_thread()
        self.loop.call_soon_threadsafe(queue.put_nowait, (make, done))
        return done.result(CALL_TIMEOUT_SECONDS)

    def _queue_of_this_thread(self) -> asyncio.Queue[Call]:
        queue: asyncio.Queue[Call] | None = getattr(self._local, "queue", None)
        if queue is None:
            queue = asyncio.run_coroutine_threadsafe(self._start_worker(), self.loop).result(
                CALL_TIMEOUT_SECONDS
            )
            self._local.queue = queue
        return queue

    async def _start_worker(self) -> asyncio.Queue[Call]:
        queue: asyncio.Queue[Call] = asyncio.Queue()
        self._workers.add(asyncio.create_task(self._work(queue)))
        return queue

    @staticmethod
    async def _work(queue: asyncio.Queue[Call]) -> None:
        while True:
            make, done = await queue.get()
            try:
                done.set_result(await make())
            except BaseException as exc:  # handed to the calling thread, which raises it
                done.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise

    def close(self) -> None:
        async def cancel_workers() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_workers(), self.loop).result(CALL_TIMEOUT_SECONDS)
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
            return self._loop.run(lambda: value(*args, **kwargs))

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._storage, name, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> SyncFacade:
        return SyncFacade(copy.deepcopy(self._storage, memo), self._loop)

    def __repr__(self) -> str:
        return f"SyncFacade({self._storage!r})"
