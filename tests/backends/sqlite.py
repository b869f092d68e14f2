from __future__ import annotations

from typing import Any

import pytest

from agno_orm import SqliteStorage, Storage

NAME = "sqlite"


def make(request: pytest.FixtureRequest, table_name: str, mode: Any, **options: Any) -> Storage:
    return SqliteStorage(table_name, db_engine=request.getfixturevalue("sqlite_engine"), mode=mode, **options)
