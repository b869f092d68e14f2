"""mongomock-ng with MongoDB's per-operation atomicity, for tests with concurrent writers.

MongoDB applies each operation to a document atomically: a `replace_one` whose filter matched
replaces that document before any other write to it. mongomock-ng finds and then writes under
separate locks, so two threads can both match a filter and both write, which no server allows.
`serialized(client)` returns the client with every operation of its databases and collections
taken under one lock; cursors are read outside it, as a server's are read between operations.
A document is encoded to BSON before it is inserted or replaces one, as pymongo does.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["serialized"]

_ENCODED_FIRST = {"insert_one": 0, "replace_one": 1}
"""Writes whose document pymongo encodes before sending anything (mongomock-ng replaces a document
field by field, so one failing to encode would be left half replaced): position of the document."""


def _encode(document: Any) -> None:
    try:
        import bson  # pymongo's
    except ImportError:
        return
    bson.encode(document)


def serialized(client: Any) -> Any:
    return _Serialized(client, threading.RLock())


class _Serialized:
    def __init__(self, target: Any, lock: threading.RLock) -> None:
        self._target, self._lock = target, lock

    def __getitem__(self, name: str) -> Any:
        return _Serialized(self._target[name], self._lock)  # a database, or a collection

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute
        lock = self._lock

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in _ENCODED_FIRST and len(args) > _ENCODED_FIRST[name]:
                _encode(args[_ENCODED_FIRST[name]])  # as pymongo does: what BSON cannot hold sends nothing
            with lock:
                result = attribute(*args, **kwargs)
            kind = type(result).__name__
            return _Serialized(result, lock) if kind in ("Database", "Collection") else result

        return call
