from __future__ import annotations

from typing import Any

import pytest

from agno_orm import PostgresStorage, Storage

NAME = "postgres"


def make(request: pytest.FixtureRequest, table_name: str, mode: Any, **options: Any) -> Storage:
    return PostgresStorage(
        table_name, db_engine=request.getfixturevalue("postgres_engine"), mode=mode, **options
    )
