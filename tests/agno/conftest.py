"""Fixtures of the tests that drive the real agno package (1.8.4) on every backend.

No network and no API key: models are the deterministic classes in `models.py`, agno's telemetry
is off, and every connection to an address off this machine is refused. `storages` builds the
storages of the test's backend (the `backend` parameter of tests/conftest.py) as a user does,
from a URL, file or directory, with our default `session_types`; server databases get a schema
of their own per test (on MySQL a database), dropped afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from agno_orm import Storage
from tests import servers
from tests.agno import network
from tests.agno.storages import MONGODB_DATABASE, SQL_BACKENDS, StorageRecipe, build, build_agno


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in network.TELEMETRY_OFF.items():
        monkeypatch.setenv(name, value)
    for target, attribute, replacement in network.loopback_only():
        monkeypatch.setattr(target, attribute, replacement)


class Storages:
    """The storages of one test on one backend, ours and agno's, closed and removed afterwards."""

    def __init__(self, recipe: StorageRecipe, mongodb_client: Any) -> None:
        self.recipe = recipe
        self.backend = recipe.backend
        self.mongodb_client = mongodb_client
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        self.names: set[str] = set()
        self._opened: list[Any] = []

    def name(self, table: str = "sessions") -> str:
        """The real name of the test's table (collection, key prefix, directory) called `table`."""
        name = f"{self.prefix}_{table}"
        self.names.add(name)
        return name

    def build(self, mode: str = "agent", table: str = "sessions", **options: Any) -> Storage:
        """Our storage on `table`, built from the recipe, with default session_types unless given."""
        storage = build(self.recipe, self.name(table), mode, mongodb_client=self.mongodb_client, **options)
        self._opened.append(storage)
        return storage

    def build_agno(self, mode: str, table: str = "sessions") -> Any:
        """agno 1.8.4's own storage class on `table`."""
        storage = build_agno(self.recipe, self.name(table), mode, mongodb_client=self.mongodb_client)
        self._opened.append(storage)
        return storage

    def close(self) -> None:
        for storage in self._opened:
            if hasattr(storage, "db_engine"):  # ours and agno's SQL storages
                storage.db_engine.dispose()
            elif hasattr(storage, "redis_client"):
                storage.redis_client.close()


@pytest.fixture
def storages(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Storages]:
    recipe, cleanup = _recipe(request, backend, tmp_path)
    mongodb_client = request.getfixturevalue("mongodb_client") if backend == "mongodb" else None
    made = Storages(recipe, mongodb_client)
    try:
        yield made
    finally:
        made.close()
        cleanup(made)


def _recipe(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> tuple[StorageRecipe, Any]:
    private = f"agno_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        return StorageRecipe("sqlite", str(tmp_path / "sessions.db")), _nothing
    if backend in SQL_BACKENDS:
        url = request.getfixturevalue(f"{backend}_url")
        engine = request.getfixturevalue(f"{backend}_engine")
        drop = (
            f'DROP SCHEMA IF EXISTS "{private}" CASCADE'
            if backend == "postgres"
            else f"DROP DATABASE IF EXISTS `{private}`"
        )

        def drop_schema(made: Storages) -> None:
            with engine.begin() as connection:
                connection.execute(text(drop))

        return StorageRecipe(backend, url, private), drop_schema
    if backend in ("json", "yaml"):
        return StorageRecipe(backend, str(tmp_path / "sessions")), _nothing
    if backend == "redis":
        url = request.getfixturevalue("redis_url")

        def delete_keys(made: Storages) -> None:
            import redis

            client = redis.Redis.from_url(url)
            for name in made.names:
                keys = list(client.scan_iter(match=f"{name}*", count=1000))
                if keys:
                    client.delete(*keys)
            client.close()

        return StorageRecipe("redis", url), delete_keys
    if backend == "mongodb":
        request.getfixturevalue("mongodb_client")
        try:
            url = servers.mongodb_url()
        except servers.ServerUnavailable:
            url = ""  # the in-process engine the mongodb_client fixture falls back to

        def drop_collections(made: Storages) -> None:
            for name in made.names:
                made.mongodb_client[MONGODB_DATABASE].drop_collection(name)

        return StorageRecipe("mongodb", url), drop_collections
    if backend == "dynamodb":
        endpoint = request.getfixturevalue("dynamodb_endpoint")
        client = request.getfixturevalue("dynamodb_client")

        def delete_tables(made: Storages) -> None:
            for name in made.names:
                with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                    client.delete_table(TableName=name)

        return StorageRecipe("dynamodb", endpoint), delete_tables
    raise AssertionError(f"no recipe for backend {backend!r}")


def _nothing(made: Storages) -> None:
    """Files live in the test's tmp_path, which pytest removes."""
