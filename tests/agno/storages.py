"""Storages of every backend built as a user builds them: from a URL, a file or a directory.

A `StorageRecipe` holds only strings, so another process can rebuild the same storage from it,
as an application restarted with the same settings does. The one exception is MongoDB on its
in-process engine (mongomock-ng: no MongoDB server can run on this machine), whose data lives in
the test process: its recipe has no location, the client comes from the caller, and nothing
built from it can be seen by another process.

`build` makes our storage with its default `session_types`; `build_agno` makes agno 1.8.4's own
storage class on the same place, to write the data our storages must adopt.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateTable

from agno_orm import MySQLStorage, PostgresStorage, SingleStoreStorage, SqliteStorage, Storage
from agno_orm.nosql import DynamoDbStorage, JsonStorage, MongoDbStorage, RedisStorage, YamlStorage

SQL_BACKENDS = ("sqlite", "postgres", "mysql", "singlestore")
MONGODB_DATABASE = "agno_orm_test"
# moto accepts any credentials; real ones must never be needed (or picked up) by the tests.
DYNAMODB_SETTINGS = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}


@dataclass(frozen=True)
class StorageRecipe:
    """Where a backend keeps its sessions: `location` is a database URL (SQLite: a file), a
    directory, a Redis URL, a DynamoDB endpoint, or a MongoDB URL ("" for the in-process engine);
    `schema` the schema (on MySQL: the database) holding SQL tables."""

    backend: str
    location: str
    schema: str | None = None

    @property
    def crosses_processes(self) -> bool:
        """Whether another process sees what a storage of this recipe writes."""
        return self.backend != "mongodb" or bool(self.location)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: str) -> StorageRecipe:
        return cls(**json.loads(data))


def build(
    recipe: StorageRecipe, name: str, mode: str = "agent", *, mongodb_client: Any = None, **options: Any
) -> Storage:
    """Our storage of the recipe's backend on the table (collection, key prefix, directory) `name`."""
    location, schema = recipe.location, recipe.schema
    if recipe.backend == "sqlite":
        return SqliteStorage(name, db_file=location, mode=mode, **options)  # type: ignore[arg-type]
    if recipe.backend == "postgres":
        return PostgresStorage(name, schema=schema, db_url=location, mode=mode, **options)  # type: ignore[arg-type]
    if recipe.backend == "mysql":
        return MySQLStorage(name, schema=schema, db_url=location, mode=mode, **options)  # type: ignore[arg-type]
    if recipe.backend == "singlestore":
        return SingleStoreStorage(name, schema=schema, db_url=location, mode=mode, **options)  # type: ignore[arg-type]
    if recipe.backend == "json":
        return JsonStorage(Path(location) / name, mode=mode, **options)  # type: ignore[arg-type]
    if recipe.backend == "yaml":
        return YamlStorage(Path(location) / name, mode=mode, **options)  # type: ignore[arg-type]
    if recipe.backend == "redis":
        return RedisStorage(name, mode=mode, redis_url=location, **options)  # type: ignore[arg-type]
    if recipe.backend == "mongodb":
        client = None if location else mongodb_client
        return MongoDbStorage(
            name, db_url=location or None, db_name=MONGODB_DATABASE, client=client, mode=mode, **options
        )  # type: ignore[arg-type]
    if recipe.backend == "dynamodb":
        return DynamoDbStorage(
            name,
            endpoint_url=location,
            mode=mode,  # type: ignore[arg-type]
            billing_mode="PAY_PER_REQUEST",
            **DYNAMODB_SETTINGS,
            **options,
        )
    raise AssertionError(f"no recipe for backend {recipe.backend!r}")


def build_agno(recipe: StorageRecipe, name: str, mode: str, *, mongodb_client: Any = None) -> Any:
    """agno 1.8.4's own storage class of the recipe's backend on the same table as `build`'s, its
    table (collection, directory) created by agno (see `create_agno_table` for SingleStore)."""
    location, schema = recipe.location, recipe.schema
    if recipe.backend == "sqlite":
        from agno.storage.sqlite import SqliteStorage as AgnoSqlite

        return AgnoSqlite(name, db_file=location, mode=mode)  # agno ignores a db_engine
    if recipe.backend == "postgres":
        from agno.storage.postgres import PostgresStorage as AgnoPostgres

        return AgnoPostgres(name, schema=schema, db_url=location, mode=mode)
    if recipe.backend == "mysql":
        from agno.storage.mysql import MySQLStorage as AgnoMySQL

        return AgnoMySQL(name, schema=schema, db_url=location, mode=mode)
    if recipe.backend == "singlestore":
        from agno.storage.singlestore import SingleStoreStorage as AgnoSingleStore

        # agno's examples connect to SingleStore with mysql+pymysql://
        url = make_url(location).set(drivername="mysql+pymysql").render_as_string(hide_password=False)
        return AgnoSingleStore(name, schema=schema, db_url=url, mode=mode)
    if recipe.backend == "json":
        from agno.storage.json import JsonStorage as AgnoJson

        return AgnoJson(Path(location) / name, mode=mode)
    if recipe.backend == "yaml":
        from agno.storage.yaml import YamlStorage as AgnoYaml

        return AgnoYaml(Path(location) / name, mode=mode)
    if recipe.backend == "redis":
        from agno.storage.redis import RedisStorage as AgnoRedis

        parts = urlsplit(location)
        database = int(parts.path.strip("/") or 0)
        return AgnoRedis(
            name, host=parts.hostname or "localhost", port=parts.port or 6379, db=database, mode=mode
        )
    if recipe.backend == "mongodb":
        from agno.storage.mongodb import MongoDbStorage as AgnoMongo

        client = None if location else mongodb_client
        return AgnoMongo(name, db_url=location or None, db_name=MONGODB_DATABASE, client=client, mode=mode)
    if recipe.backend == "dynamodb":
        from agno.storage.dynamodb import DynamoDbStorage as AgnoDynamo

        return AgnoDynamo(name, endpoint_url=location, mode=mode, **DYNAMODB_SETTINGS)
    raise AssertionError(f"no recipe for backend {recipe.backend!r}")


def create_agno_table(recipe: StorageRecipe, agno_storage: Any) -> None:
    """Create agno's table (collection, directory) with agno's own code.

    One exception: agno's SingleStore table has a TEXT primary key, which SingleStore accepts and
    MariaDB, standing in for SingleStore here, refuses without a key length. On MariaDB the table is
    created from agno's own table definition with that key length added, and nothing else changed.
    """
    if recipe.backend == "singlestore" and not _is_singlestore_server(agno_storage.db_engine):
        ddl = str(CreateTable(agno_storage.get_table()).compile(agno_storage.db_engine))
        keyed = ddl.replace("PRIMARY KEY (session_id)", "PRIMARY KEY (session_id(255))")
        assert keyed != ddl, ddl
        with agno_storage.db_engine.begin() as connection:
            connection.execute(text(f"CREATE DATABASE IF NOT EXISTS `{recipe.schema}`"))
            connection.execute(text(keyed))
        return
    agno_storage.create()


def _is_singlestore_server(engine: Any) -> bool:
    with engine.connect() as connection:
        return connection.execute(text("SHOW VARIABLES LIKE 'memsql_version'")).first() is not None
