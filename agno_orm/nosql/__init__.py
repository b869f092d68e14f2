"""The non-SQL family, sibling of `agno_orm.sql`: JSON and YAML files, Redis, MongoDB, DynamoDB.

Each implements `agno_orm.Storage` with agno 1.8.4's constructor. Their client libraries are
optional extras (`yaml`, `redis`, `mongodb`, `dynamodb`), imported only when a storage is made:
importing this package needs none of them, and a storage whose client is missing raises
MissingDependencyError naming the extra. What they share lives in `_documents`.
"""

from agno_orm.nosql.dynamodb import DynamoDbStorage
from agno_orm.nosql.files import FileStorage, JsonStorage, YamlStorage
from agno_orm.nosql.mongodb import MongoDbStorage
from agno_orm.nosql.redis import RedisStorage

__all__ = ["DynamoDbStorage", "FileStorage", "JsonStorage", "MongoDbStorage", "RedisStorage", "YamlStorage"]
