"""The non-SQL family's public names are exactly the documented ones."""

from __future__ import annotations

import agno_orm
import agno_orm.nosql
from agno_orm.nosql import (
    DynamoDbStorage,
    FileStorage,
    JsonStorage,
    MongoDbStorage,
    RedisStorage,
    YamlStorage,
)


def test_nosql_public_names_are_the_documented_ones() -> None:
    assert agno_orm.nosql.__all__ == [
        "DynamoDbStorage", "FileStorage", "JsonStorage", "MongoDbStorage", "RedisStorage", "YamlStorage"
    ]  # fmt: skip


def test_every_nosql_storage_is_a_storage() -> None:
    for cls in (DynamoDbStorage, FileStorage, JsonStorage, MongoDbStorage, RedisStorage, YamlStorage):
        assert issubclass(cls, agno_orm.Storage)
