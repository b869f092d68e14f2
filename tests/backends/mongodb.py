"""MongoDB through `client`: a real server's when one can be had, else mongomock-ng in-process."""

from __future__ import annotations

from typing import Any

import pytest

from agno_orm import Storage
from agno_orm.nosql import MongoDbStorage

NAME = "mongodb"


def make(request: pytest.FixtureRequest, table_name: str, mode: Any, **options: Any) -> Storage:
    client = request.getfixturevalue("mongodb_client")
    return MongoDbStorage(table_name, db_name="agno_orm_test", client=client, mode=mode, **options)
