"""agno_orm: session storage for agno agents, teams and workflows.

SQLAlchemy ORM models with Alembic migrations, behind agno 1.8.4's `Storage` interface: change
`from agno.storage.sqlite import SqliteStorage` to `from agno_orm import SqliteStorage`.
"""

from agno_orm._versions import OnConflict
from agno_orm.errors import (
    InvalidInputError,
    InvalidSessionError,
    MissingDependencyError,
    PayloadTooLargeError,
    SchemaError,
    SchemaOutOfDateError,
    SessionConflictError,
    StorageConnectionError,
    StorageError,
    StorageTimeoutError,
)
from agno_orm.sessions import (
    AgentSession,
    AnySession,
    Mode,
    Session,
    SessionTypes,
    TeamSession,
    WorkflowSession,
    WorkflowSessionV2,
)
from agno_orm.sql import (
    AsyncMySQLStorage,
    AsyncPostgresStorage,
    AsyncSqliteStorage,
    AsyncSqlStorage,
    MySQLStorage,
    PostgresStorage,
    SingleStoreStorage,
    SqliteStorage,
    SqlStorage,
)
from agno_orm.storage import Storage

__version__ = "0.1.0"

__all__ = [
    "AgentSession",
    "AnySession",
    "AsyncMySQLStorage",
    "AsyncPostgresStorage",
    "AsyncSqlStorage",
    "AsyncSqliteStorage",
    "InvalidInputError",
    "InvalidSessionError",
    "MissingDependencyError",
    "Mode",
    "MySQLStorage",
    "OnConflict",
    "PayloadTooLargeError",
    "PostgresStorage",
    "SchemaError",
    "SchemaOutOfDateError",
    "Session",
    "SessionConflictError",
    "SessionTypes",
    "SingleStoreStorage",
    "SqlStorage",
    "SqliteStorage",
    "Storage",
    "StorageConnectionError",
    "StorageError",
    "StorageTimeoutError",
    "TeamSession",
    "WorkflowSession",
    "WorkflowSessionV2",
    "__version__",
]
