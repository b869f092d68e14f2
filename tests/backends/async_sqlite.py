from __future__ import annotations

from typing import Any

import pytest

from agno_orm import AsyncSqliteStorage
from tests.async_facade import SyncFacade

NAME = "async_sqlite"
ASYNC = True
FIXTURES = ("event_loop_thread", "async_sqlite_engine")


def make(request: pytest.FixtureRequest, table_name: str, mode: Any, **options: Any) -> Any:
    storage = AsyncSqliteStorage(
        table_name, db_engine=request.getfixturevalue("async_sqlite_engine"), mode=mode, **options
    )
    return SyncFacade(storage, request.getfixturevalue("event_loop_thread"))
