from __future__ import annotations

from typing import Any

import pytest

from agno_orm import AsyncMySQLStorage
from tests.async_facade import SyncFacade

NAME = "async_mysql"
ASYNC = True
FIXTURES = ("event_loop_thread", "async_mysql_engine")


def make(request: pytest.FixtureRequest, table_name: str, mode: Any, **options: Any) -> Any:
    storage = AsyncMySQLStorage(
        table_name, db_engine=request.getfixturevalue("async_mysql_engine"), mode=mode, **options
    )
    return SyncFacade(storage, request.getfixturevalue("event_loop_thread"))
