"""Names a storage is given (prefix, collection and database, table, directory) are checked before
anything connects: a name the backend would refuse or read as something else is an InvalidInputError.
The SQL backends' table and schema names: tests/sql/test_migrations.py."""

from __future__ import annotations

from typing import Any

import pytest

from agno_orm import InvalidInputError
from agno_orm.nosql import DynamoDbStorage, JsonStorage, MongoDbStorage, RedisStorage


@pytest.mark.parametrize("prefix", ["", "a\0b", "new\nline", "tab\there", "x" * 201, 42, "lone \ud800"])
def test_a_redis_prefix_that_is_no_printable_name_is_refused(prefix: Any) -> None:
    with pytest.raises(InvalidInputError, match="prefix"):
        RedisStorage(prefix, client=object())


@pytest.mark.parametrize("db_name", ["", "a/b", "a.b", "a b", "a$b", "a\0b", "x" * 64, None])
def test_a_mongodb_database_name_mongodb_refuses_is_refused(db_name: Any) -> None:
    with pytest.raises(InvalidInputError, match="db_name"):
        MongoDbStorage("sessions", db_name=db_name, client=object())


@pytest.mark.parametrize("collection", ["", "a$b", "a\0b", "system.users", "x" * 121, 7])
def test_a_mongodb_collection_name_mongodb_refuses_is_refused(collection: Any) -> None:
    with pytest.raises(InvalidInputError, match="collection_name"):
        MongoDbStorage(collection, client=object())


@pytest.mark.parametrize("table", ["ab", "a;b", "a b", 'a"b', "x" * 256, "é"])
def test_a_dynamodb_table_name_dynamodb_refuses_is_refused(table: str) -> None:
    with pytest.raises(InvalidInputError, match="table_name"):
        DynamoDbStorage(table, client=object())


@pytest.mark.parametrize("dir_path", ["a\0b", 42])
def test_a_directory_path_that_is_no_path_is_refused(dir_path: Any) -> None:
    with pytest.raises(InvalidInputError, match="dir_path"):
        JsonStorage(dir_path)
