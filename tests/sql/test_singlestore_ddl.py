"""SingleStore's DDL, checked where no SingleStore server runs: compiled against its dialect.

The statements are those of the models (compiled by the `singlestoredb` dialect) and those the
revisions emit (`alembic upgrade head --sql` for a `singlestoredb://` URL, through our Alembic
implementation for that dialect). A real server runs them only when one is given
(AGNO_ORM_TEST_SINGLESTORE_URL) or Docker answers: see the last tests here.
"""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

import pytest
import sqlalchemy_singlestoredb
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from agno_orm import SingleStoreStorage
from agno_orm.sessions import ENTITY_FIELD, MODES
from agno_orm.sql import migrations
from agno_orm.sql.models import DEFAULT_TABLE_NAMES, TableSpec, session_table
from tests.skip_policy import not_for_this_engine

SHARD_KEY = re.compile(r"SHARD KEY\s*(?:USING \w+\s*)?\(([^)]*)\)")
SORT_KEY = re.compile(r"SORT KEY\s*\(([^)]*)\)")
UNIQUE_KEY = re.compile(r"(?:PRIMARY KEY|UNIQUE(?: KEY| INDEX)?(?: `?\w+`?)?)\s*(?:USING \w+\s*)?\(([^)]*)\)")
LISTING_FILTERS = {mode: {"user_id", ENTITY_FIELD[mode]} for mode in MODES}
"""The columns listings filter on; every one needs an index."""


def columns(match: str) -> list[str]:
    return [c.strip().strip("`").split()[0] for c in match.split(",") if c.strip()]


def model_ddl(mode: str, schema: str | None = "ai") -> list[str]:
    """CREATE TABLE and CREATE INDEX of the mode's model, compiled by the singlestoredb dialect."""
    table = session_table(TableSpec(mode, f"{mode}_sessions", schema))  # type: ignore[arg-type]
    dialect = sqlalchemy_singlestoredb.dialect()
    return [str(CreateTable(table).compile(dialect=dialect)).strip()] + [
        str(CreateIndex(index).compile(dialect=dialect)).strip() for index in table.indexes
    ]


@pytest.fixture(scope="module")
def upgrade_sql() -> list[str]:
    """The statements `alembic upgrade head --sql` writes for SingleStore (the four default tables)."""
    output = io.StringIO()
    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(migrations.script_location()))
    config.set_main_option("sqlalchemy.url", "singlestoredb://user@singlestore.invalid/db")
    command.upgrade(config, "head", sql=True)
    sql = "\n".join(line for line in output.getvalue().splitlines() if not line.startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", sql, flags=re.MULTILINE) if s.strip()]


def create_tables(statements: list[str]) -> dict[str, str]:
    tables = {}
    for statement in statements:
        if match := re.match(r"CREATE TABLE (\S+)", statement):
            tables[match.group(1).split(".")[-1].strip("`")] = statement
    return tables


# -- the models ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_table_is_sharded_by_session_id_and_sorted_by_created_at(mode: str) -> None:
    create = model_ddl(mode)[0]
    assert [columns(m) for m in SHARD_KEY.findall(create)] == [["session_id"]]
    assert [columns(m) for m in SORT_KEY.findall(create)] == [["created_at"]]


@pytest.mark.parametrize("mode", MODES)
def test_every_unique_key_includes_the_shard_key(mode: str) -> None:
    create = model_ddl(mode)[0]
    (shard_key,) = [set(columns(m)) for m in SHARD_KEY.findall(create)]
    unique_keys = [set(columns(m)) for m in UNIQUE_KEY.findall(create)]
    assert unique_keys == [{"session_id"}]  # the primary key, and nothing else unique
    assert all(shard_key <= key for key in unique_keys)


@pytest.mark.parametrize("mode", MODES)
def test_listing_filters_have_hash_indexes(mode: str) -> None:
    indexes = model_ddl(mode)[1:]
    assert all(re.search(r"USING hash$", index, re.IGNORECASE) for index in indexes), indexes
    indexed = {columns(re.search(r"\(([^)]*)\)", index).group(1))[0] for index in indexes}  # type: ignore[union-attr]
    assert indexed >= LISTING_FILTERS[mode]
    assert not any(index.startswith("CREATE UNIQUE") for index in indexes)


@pytest.mark.parametrize("mode", MODES)
def test_table_is_utf8mb4_with_binary_collation(mode: str) -> None:
    assert model_ddl(mode)[0].endswith("COLLATE=utf8mb4_bin")


@pytest.mark.parametrize("dialect", [mysql.dialect(), postgresql.dialect()], ids=["mysql", "postgresql"])
def test_other_dialects_write_none_of_singlestores_clauses(dialect: Any) -> None:
    table = session_table(TableSpec("agent", "agent_sessions", "ai"))
    create = str(CreateTable(table).compile(dialect=dialect))
    assert "SHARD KEY" not in create and "SORT KEY" not in create
    assert all("USING" not in str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes)


# -- the revisions, as `alembic upgrade head --sql` writes them --------------------------------------


def test_revisions_create_every_modes_table_with_shard_and_sort_keys(upgrade_sql: list[str]) -> None:
    tables = create_tables(upgrade_sql)
    assert set(DEFAULT_TABLE_NAMES.values()) <= set(tables)
    for name in DEFAULT_TABLE_NAMES.values():
        create = tables[name]
        assert [columns(m) for m in SHARD_KEY.findall(create)] == [["session_id"]], create
        assert [columns(m) for m in SORT_KEY.findall(create)] == [["created_at"]], create
        assert all({"session_id"} <= set(columns(m)) for m in UNIQUE_KEY.findall(create)), create


def test_revisions_index_every_listing_filter_with_hash_indexes(upgrade_sql: list[str]) -> None:
    indexes = [s for s in upgrade_sql if s.startswith("CREATE INDEX")]
    assert indexes and all(s.endswith("USING hash") for s in indexes), indexes
    for mode, name in DEFAULT_TABLE_NAMES.items():
        indexed = {
            columns(m.group(2))[0]
            for s in indexes
            if (m := re.search(r" ON (\S+) \(([^)]*)\)", s)) and m.group(1) == name
        }
        assert indexed >= LISTING_FILTERS[mode], (mode, indexed)


def test_version_tables_have_no_key_so_updating_the_revision_touches_no_shard_key(
    upgrade_sql: list[str],
) -> None:
    versions = {
        name: create for name, create in create_tables(upgrade_sql).items() if name.endswith("_version")
    }
    assert set(versions) == {f"{name}_version" for name in DEFAULT_TABLE_NAMES.values()}
    for create in versions.values():
        assert not UNIQUE_KEY.search(create) and not SHARD_KEY.search(create), create
    updates = [s for s in upgrade_sql if s.startswith("UPDATE")]
    assert any(re.match(r"UPDATE \w+_version SET version_num=", s) for s in updates), updates
    # a data back-fill (0006's written_version) assigns no shard key: never session_id
    assert all(re.match(r"UPDATE \S+ SET (?!session_id\b)\w+ ?=", s) for s in updates), updates


def test_revisions_use_nothing_singlestore_rejects(upgrade_sql: list[str]) -> None:
    everything = "\n".join(upgrade_sql)
    for rejected in [
        "FOREIGN KEY",
        "CHECK",
        "AUTO_INCREMENT",
        "CREATE UNIQUE INDEX",
        "ALTER TABLE ADD UNIQUE",
    ]:
        assert rejected not in everything
    # Adding a column is the only change to an existing table (SingleStore alters columnstore online).
    alters = [s for s in upgrade_sql if s.startswith("ALTER TABLE")]
    assert alters and all(" ADD COLUMN " in s for s in alters), alters


# -- on the server the suite runs against -------------------------------------------------------------


def is_singlestore(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(text("SHOW VARIABLES LIKE 'memsql_version'")).first() is not None


def show_create_table(engine: Engine, storage: SingleStoreStorage) -> str:
    with engine.connect() as connection:
        return str(connection.execute(text(f"SHOW CREATE TABLE {storage.spec.qualified_name}")).one()[1])


@pytest.mark.singlestore
def test_on_a_real_singlestore_the_table_has_its_keys(singlestore_engine: Engine) -> None:
    if not is_singlestore(singlestore_engine):
        not_for_this_engine("needs a real SingleStore: this run has the MariaDB stand-in")
    storage = SingleStoreStorage(f"t_{uuid.uuid4().hex[:12]}", db_engine=singlestore_engine)
    storage.create()
    try:
        create = show_create_table(singlestore_engine, storage)
        assert "SHARD KEY" in create and "SORT KEY" in create, create
    finally:
        storage.drop()


@pytest.mark.singlestore
def test_on_the_mariadb_stand_in_singlestores_clauses_are_left_out(singlestore_engine: Engine) -> None:
    if is_singlestore(singlestore_engine):
        not_for_this_engine("runs on the MariaDB stand-in; this run has a real SingleStore")
    storage = SingleStoreStorage(f"t_{uuid.uuid4().hex[:12]}", db_engine=singlestore_engine)
    storage.create()
    try:
        create = show_create_table(singlestore_engine, storage)
        assert "SHARD KEY" not in create and "SORT KEY" not in create
        assert "utf8mb4_bin" in create  # the rest of the DDL is still ours
    finally:
        storage.drop()
