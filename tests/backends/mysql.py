from __future__ import annotations

from typing import Any

import pytest

from agno_orm import MySQLStorage, Storage

NAME = "mysql"


def make(request: pytest.FixtureRequest, table_name: str, mode: Any, **options: Any) -> Storage:
    return MySQLStorage(table_name, db_engine=request.getfixturevalue("mysql_engine"), mode=mode, **options)
