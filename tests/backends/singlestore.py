"""SingleStoreStorage on a real SingleStore when one can be had, else on MariaDB through the
singlestoredb dialect (tests/servers.singlestore_url says which)."""

from __future__ import annotations

from typing import Any

import pytest

from agno_orm import SingleStoreStorage, Storage

NAME = "singlestore"


def make(request: pytest.FixtureRequest, table_name: str, mode: Any, **options: Any) -> Storage:
    engine = request.getfixturevalue("singlestore_engine")
    return SingleStoreStorage(table_name, db_engine=engine, mode=mode, **options)
