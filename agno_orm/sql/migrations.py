"""Running the Alembic revisions: from `alembic` on the command line and from a storage in code.

The revisions live once, in the repository's top-level `alembic/` folder; the wheel carries a
copy at `agno_orm/sql/_alembic` (see pyproject.toml), so `auto_upgrade_schema` works after
`pip install`. Both paths run the same `env.py`, which hands over to `run_env` here:

- from code (`upgrade`), the live connection and the tables come in `config.attributes`;
- on the command line, the URL comes from `-x db_url=...` or `AGNO_ORM_DB_URL`, the tables from
  `-x table=NAME -x mode=MODE`, or `-x agent_table=...` (likewise team_table, workflow_table,
  workflow_v2_table) with the four default names otherwise, and `-x schema=...`.

Every revision's `upgrade()`/`downgrade()` receives `table_name`, `schema` and `mode` (Alembic
passes the keyword arguments of `run_migrations`), so one revision serves any table. Each session
table records its revision in its own version table, `<table>_version`, never in the host
application's `alembic_version`. Upgrades hold a database lock, so concurrent processes upgrade once.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, create_engine, inspect
from sqlalchemy.pool import NullPool

from agno_orm.errors import InvalidInputError, StorageError
from agno_orm.sessions import MODES
from agno_orm.sql import _singlestore_ddl  # noqa: F401  # registers Alembic's implementation for `singlestoredb`
from agno_orm.sql.dialects import DialectHooks, hooks_for
from agno_orm.sql.engines import parse_url
from agno_orm.sql.models import DEFAULT_TABLE_NAMES, TableSpec, index_name, runs_table_name, session_table

__all__ = [
    "BASELINE_REVISION",
    "TableState",
    "downgrade",
    "head_revision",
    "run_env",
    "script_location",
    "table_state",
    "upgrade",
]

BASELINE_REVISION = "0001"
"""agno 1.8.4's table shape. A table agno created has no version recorded: upgrading it runs this
revision first, which completes the table to that shape in place (adoption) instead of creating it."""

DEFAULT_POSTGRES_SCHEMA = "ai"

_SPECS_ATTRIBUTE = "agno_orm_tables"
_AGNO_AGENT_LEFTOVERS = ("agent_id", "agent_data")  # see revision 0001
_DDL_COMMITS_AS_IT_GOES = frozenset({"mysql", "mariadb", "singlestoredb"})
_HEAD_DESTINATIONS = ("head", "heads")


def script_location() -> Path:
    """The revisions: the copy inside an installed wheel, else the repository's `alembic/` folder."""
    packaged = Path(__file__).with_name("_alembic")
    if (packaged / "env.py").is_file():
        return packaged
    source = Path(__file__).resolve().parents[2] / "alembic"
    if (source / "env.py").is_file():
        return source
    raise StorageError(f"agno_orm's Alembic revisions are missing: neither {packaged} nor {source} exists")


@functools.cache
def _script_directory(location: Path) -> ScriptDirectory:
    return ScriptDirectory(str(location))


def head_revision() -> str:
    head = _script_directory(script_location()).get_current_head()
    assert head is not None, "alembic/versions holds no revision"
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in _script_directory(script_location()).walk_revisions()}


def make_config(connection: Connection | None = None, specs: Sequence[TableSpec] = ()) -> Config:
    """An Alembic config that runs our revisions on `connection` for `specs`, as env.py expects."""
    config = Config(stdout=io.StringIO())  # from code, Alembic's console output is not ours to print
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    if specs:
        config.attributes[_SPECS_ATTRIBUTE] = list(specs)
    return config


def upgrade(engine: Engine, specs: Sequence[TableSpec], revision: str = "head") -> None:
    """Upgrade `specs`' tables to `revision`, creating missing tables, in one locked transaction."""
    with engine.connect() as connection:
        command.upgrade(make_config(connection, specs), revision)


def downgrade(engine: Engine, specs: Sequence[TableSpec], revision: str) -> None:
    """Downgrade `specs`' tables to `revision` ("base" removes them), in one locked transaction."""
    with engine.connect() as connection:
        command.downgrade(make_config(connection, specs), revision)


@dataclass(frozen=True)
class TableState:
    """What the database holds for one session table."""

    exists: bool
    revision: str | None
    columns: frozenset[str]


def table_state(connection: Connection, spec: TableSpec) -> TableState:
    """What the database holds for `spec`'s table.

    On the MySQL family, where DDL commits as it goes, it is read under the upgrade lock, so an
    upgrade another process is running is waited for, never seen half done (a table without its
    version row, or columns of a revision not yet recorded) nor read while its DDL runs (MariaDB
    refuses that with error 1684). Elsewhere an upgrade is one transaction, seen whole or not at all.
    """
    if connection.dialect.name not in _DDL_COMMITS_AS_IT_GOES:
        return _read_state(connection, spec)
    with hooks_for(connection.dialect.name).upgrade_lock(connection):
        return _read_state(connection, spec)


def _read_state(connection: Connection, spec: TableSpec) -> TableState:
    # The revision is read first: an upgrade commits its version and its DDL together, so
    # columns read afterwards include at least that revision's, even if another process's
    # upgrade commits between these statements (each sees a fresh snapshot in READ COMMITTED).
    revision = _version_context(connection, spec).get_current_revision()
    inspector = inspect(connection)
    exists = inspector.has_table(spec.table_name, schema=spec.schema)
    columns = (
        frozenset(c["name"] for c in inspector.get_columns(spec.table_name, schema=spec.schema))
        if exists
        else frozenset()
    )
    return TableState(exists=exists, revision=revision, columns=columns)


def version_table(spec: TableSpec) -> Table:
    """`spec`'s version table as Alembic creates it, for dropping it with its session table."""
    return Table(spec.version_table, MetaData(), Column("version_num", String(32)), schema=spec.schema)


def _version_context(connection: Connection, spec: TableSpec) -> MigrationContext:
    return MigrationContext.configure(
        connection, opts={"version_table": spec.version_table, "version_table_schema": spec.schema}
    )


def run_env(context: EnvironmentContext) -> None:
    """The body of alembic/env.py."""
    config = context.config
    x_args: dict[str, str] = context.get_x_argument(as_dictionary=True)
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _run_online(context, connection, config.attributes.get(_SPECS_ATTRIBUTE), x_args)
        return
    try:
        _run_command_line(context, x_args)
    except StorageError as exc:
        # Alembic's command line prints a CommandError as one line and exits non-zero; anything
        # else would be a traceback ending in the same message.
        raise CommandError(str(exc)) from exc


def _run_command_line(context: EnvironmentContext, x_args: dict[str, str]) -> None:
    config = context.config
    url = (
        x_args.get("db_url") or os.environ.get("AGNO_ORM_DB_URL") or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise StorageError(
            "no database URL: set AGNO_ORM_DB_URL, pass -x db_url=..., or set sqlalchemy.url in alembic.ini"
        )
    if context.is_offline_mode():
        _run_offline(context, url, x_args)
        return
    engine = create_engine(parse_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _run_online(context, connection, None, x_args)
    finally:
        engine.dispose()


def specs_from_x_args(x_args: dict[str, str], dialect_name: str) -> list[TableSpec]:
    """The tables the command line names, with the four default tables when it names none."""
    unknown = set(x_args) - {"db_url", "schema", "table", "mode", *(f"{m}_table" for m in MODES)}
    if unknown:
        raise InvalidInputError(f"unknown -x option(s): {', '.join(sorted(unknown))}")
    default_schema = DEFAULT_POSTGRES_SCHEMA if dialect_name == "postgresql" else None
    schema = x_args.get("schema", default_schema) or None
    if "table" in x_args:
        mode = x_args.get("mode", "agent")
        if mode not in MODES:
            raise InvalidInputError(f"-x mode={mode} is not one of {', '.join(MODES)}")
        return [TableSpec(mode, x_args["table"], schema)]
    return [TableSpec(m, x_args.get(f"{m}_table", DEFAULT_TABLE_NAMES[m]), schema) for m in MODES]


def _configure(context: EnvironmentContext, spec: TableSpec, dialect_name: str, **options: Any) -> None:
    table = session_table(spec)
    ours = {spec.table_name, runs_table_name(spec.table_name)}
    # An agno table that revision 0001 adopted with the agent columns agno's cookbook leaves beside
    # another mode's keeps them, unused: no drift (only the reflected ones the models lack).
    leftovers = (
        set()
        if spec.mode == "agent"
        else {*_AGNO_AGENT_LEFTOVERS, index_name(spec.table_name, spec.schema, "agent_id")}
    )

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return name == spec.schema if type_ == "schema" else True

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        # Compare our tables only: never propose to drop the host's tables or another storage's.
        if type_ == "table":
            return name in ours
        if reflected and compare_to is None and name in leftovers:
            return False
        if type_ == "foreign_key_constraint" and dialect_name == "singlestoredb":
            return False  # SingleStore has none; _singlestore_ddl leaves them out of its DDL
        owner = getattr(obj, "table", None)
        return owner is None or owner.name in ours

    context.configure(
        target_metadata=table.metadata,
        version_table=spec.version_table,
        version_table_schema=spec.schema,
        include_schemas=spec.schema is not None,
        include_name=include_name,
        include_object=include_object,
        # MariaDB has no JSON type: JSON creates LONGTEXT with CHECK (json_valid(col)), and reflection
        # reads LONGTEXT back. Alembic's MySQL implementation (and our SingleStore one, its subclass)
        # counts JSON and LONGTEXT as synonyms, so `alembic check` sees no drift there while still
        # seeing any other type change (tests/sql: test_alembic_check_still_sees_a_json_column_...).
        compare_type=True,
        render_as_batch=dialect_name == "sqlite",
        **options,
    )


def _run_online(
    context: EnvironmentContext,
    connection: Connection,
    specs: list[TableSpec] | None,
    x_args: dict[str, str],
) -> None:
    dialect_name = connection.dialect.name
    hooks = hooks_for(dialect_name)
    specs = specs or specs_from_x_args(x_args, dialect_name)
    with _locked_transaction(connection, hooks):
        for spec in specs:
            # On the command line, say which table the lines Alembic prints next are about.
            context.config.print_stdout(f"{spec.qualified_name} ({spec.mode} sessions):")
            hooks.ensure_schema(connection, spec.schema)
            _configure(context, spec, dialect_name, connection=connection)
            # The argument as typed ("head"), not resolved: only an upgrade to head forgets versions.
            if context.get_context().opts.get("destination_rev") in _HEAD_DESTINATIONS:
                _reconcile_version(context, connection, spec)
            with context.begin_transaction():
                context.run_migrations(table_name=spec.table_name, schema=spec.schema, mode=spec.mode)


def _reconcile_version(context: EnvironmentContext, connection: Connection, spec: TableSpec) -> None:
    """Before an upgrade to head: forget the version of a table that vanished, so it is created again.

    A table with no version (agno's) needs nothing here: the upgrade starts at the baseline
    revision, which adopts an existing table in place.
    """
    state = _read_state(connection, spec)  # the upgrade lock is held
    if not state.exists and state.revision is not None:
        context.get_context().stamp(context.script, "base")


@contextmanager
def _locked_transaction(connection: Connection, hooks: DialectHooks) -> Iterator[None]:
    """The upgrade lock, and inside it one transaction, committed on success before the lock is let go.

    The commit comes first because on the MySQL family the lock belongs to the session, not to the
    transaction: a process let in before the version row is committed would read the old revision
    and run the same revisions again. Inside a transaction the caller began, the commit is theirs.
    Everything after the lock is taken is read afresh, so a process that waited re-checks.
    """
    if connection.in_transaction():
        with hooks.upgrade_lock(connection):
            yield
        return
    with hooks.upgrade_lock(connection):  # begins the transaction (SQLite: BEGIN IMMEDIATE)
        try:
            yield
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


def _run_offline(context: EnvironmentContext, url: str, x_args: dict[str, str]) -> None:
    dialect_name = url.split(":", 1)[0].split("+", 1)[0]
    for spec in specs_from_x_args(x_args, dialect_name):
        _configure(context, spec, dialect_name, url=url, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations(table_name=spec.table_name, schema=spec.schema, mode=spec.mode)


def mode_columns(spec: TableSpec) -> frozenset[str]:
    """Column names the mode's model has at head."""
    return frozenset(column.name for column in session_table(spec).columns)


def describe_upgrade_command(spec: TableSpec) -> str:
    """The command line that upgrades this one table, for error messages."""
    schema = f" -x schema={spec.schema}" if spec.schema else ""
    return (
        f"AGNO_ORM_DB_URL=... alembic upgrade head -x table={spec.table_name} -x mode={spec.mode}{schema}"
        " (or pass auto_upgrade_schema=True, or call storage.upgrade_schema())"
    )
