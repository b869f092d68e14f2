"""The SQL family: ORM models, the shared SqlStorage, thin per-dialect storages, the Alembic runner,
and the async storages on SQLAlchemy's asyncio extension."""

from agno_orm.sql.aio import AsyncMySQLStorage, AsyncPostgresStorage, AsyncSqliteStorage, AsyncSqlStorage
from agno_orm.sql.mysql import MySQLStorage
from agno_orm.sql.postgres import PostgresStorage
from agno_orm.sql.singlestore import SingleStoreStorage
from agno_orm.sql.sqlite import SqliteStorage
from agno_orm.sql.storage import SqlStorage

__all__ = [
    "AsyncMySQLStorage",
    "AsyncPostgresStorage",
    "AsyncSqlStorage",
    "AsyncSqliteStorage",
    "MySQLStorage",
    "PostgresStorage",
    "SingleStoreStorage",
    "SqlStorage",
    "SqliteStorage",
]
