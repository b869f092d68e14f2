"""The public names are exactly the documented ones: adding or removing one is a decision."""

from __future__ import annotations

import agno_orm
import agno_orm.sql

DOCUMENTED = {
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
}


def test_public_names_are_the_documented_ones() -> None:
    assert set(agno_orm.__all__) == DOCUMENTED
    assert agno_orm.__all__ == sorted(agno_orm.__all__, key=lambda n: (n.startswith("_"), n))


def test_every_public_name_exists() -> None:
    for name in agno_orm.__all__:
        assert hasattr(agno_orm, name), name


def test_sql_storages_are_importable_from_the_sql_family() -> None:
    for name in agno_orm.sql.__all__:
        assert getattr(agno_orm.sql, name) is getattr(agno_orm, name)


def test_package_ships_py_typed() -> None:
    from importlib.resources import files

    assert files("agno_orm").joinpath("py.typed").is_file()


def test_every_error_is_a_storage_error() -> None:
    errors = [getattr(agno_orm, n) for n in agno_orm.__all__ if n.endswith("Error")]
    assert all(issubclass(e, agno_orm.StorageError) for e in errors)
    assert issubclass(agno_orm.InvalidInputError, ValueError)
    assert issubclass(agno_orm.MissingDependencyError, ImportError)
