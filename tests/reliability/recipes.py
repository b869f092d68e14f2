"""Storages described as data, so a child process can build the same storage as its parent test.

A recipe is `{"class": name in agno_orm or agno_orm.nosql, "kwargs": {...}}`, all JSON.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agno_orm import Storage

if TYPE_CHECKING:  # writer processes import this module: they need neither pytest nor the fixtures
    import pytest

Recipe = dict[str, Any]


def recipe_for(
    backend: str, request: pytest.FixtureRequest, table_name: str, tmp_path: Path
) -> Recipe | None:
    """A recipe of `backend` on `table_name`; None where no second process can reach the same data
    (MongoDB here is an in-process engine, unless AGNO_ORM_TEST_MONGODB_URL names a server)."""
    fixture = request.getfixturevalue
    kwargs: dict[str, Any]
    if backend == "sqlite":
        kwargs = {"table_name": table_name, "db_file": str(tmp_path / "sessions.db")}
        return {"class": "SqliteStorage", "kwargs": kwargs}
    if backend in ("postgres", "mysql", "singlestore"):
        url = fixture(f"{backend}_url")
        name = {"postgres": "PostgresStorage", "mysql": "MySQLStorage", "singlestore": "SingleStoreStorage"}
        return {"class": name[backend], "kwargs": {"table_name": table_name, "db_url": url}}
    if backend in ("json", "yaml"):
        kwargs = {"dir_path": str(tmp_path / table_name)}
        return {"class": "JsonStorage" if backend == "json" else "YamlStorage", "kwargs": kwargs}
    if backend == "redis":
        return {"class": "RedisStorage", "kwargs": {"prefix": table_name, "redis_url": fixture("redis_url")}}
    if backend == "dynamodb":
        from tests.backends.dynamodb import TEST_CREDENTIALS

        kwargs = {
            "table_name": table_name,
            "endpoint_url": fixture("dynamodb_endpoint"),
            "billing_mode": "PAY_PER_REQUEST",
            **TEST_CREDENTIALS,
        }
        return {"class": "DynamoDbStorage", "kwargs": kwargs}
    if backend == "mongodb":
        url = os.environ.get("AGNO_ORM_TEST_MONGODB_URL")
        if url is None:
            return None
        kwargs = {"collection_name": table_name, "db_url": url, "db_name": "agno_orm_test"}
        return {"class": "MongoDbStorage", "kwargs": kwargs}
    raise AssertionError(f"no recipe for backend {backend!r}")


def build(recipe: Recipe, **options: Any) -> Storage:
    name = recipe["class"]
    package = (
        "agno_orm.nosql"
        if name in ("JsonStorage", "YamlStorage", "RedisStorage", "DynamoDbStorage", "MongoDbStorage")
        else "agno_orm"
    )
    storage_class = getattr(importlib.import_module(package), name)
    storage: Storage = storage_class(**recipe["kwargs"], session_types="pydantic", **options)
    return storage
