from __future__ import annotations

from typing import Any

import pytest

from agno_orm import Storage
from agno_orm.nosql import RedisStorage

NAME = "redis"


def make(request: pytest.FixtureRequest, table_name: str, mode: Any, **options: Any) -> Storage:
    return RedisStorage(table_name, redis_url=request.getfixturevalue("redis_url"), mode=mode, **options)
