from __future__ import annotations

from typing import Any

import pytest

from agno_orm import Storage
from agno_orm.nosql import JsonStorage

NAME = "json"


def make(request: pytest.FixtureRequest, table_name: str, mode: Any, **options: Any) -> Storage:
    return JsonStorage(request.getfixturevalue("tmp_path") / table_name, mode=mode, **options)
