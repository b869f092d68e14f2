"""A team table made as agno 1.8.4's cookbook makes it is adopted in place (issue 17, item 1).

agno's examples give a Team a storage made without `mode` (agent, agno's default) and with
`auto_upgrade_schema=True`; agno's Team switches it to team mode, and agno creates a table with
the agent columns beside the team's. Our storage, made the same way with only the import
changed, adopts that table: what agno stored reads back unchanged and the team continues.
"""

from __future__ import annotations

from typing import Any

import pytest
from agno.storage.mysql import MySQLStorage as AgnoMySQL
from agno.storage.postgres import PostgresStorage as AgnoPostgres
from agno.storage.sqlite import SqliteStorage as AgnoSqlite
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from agno_orm import MySQLStorage, PostgresStorage, SqliteStorage
from agno_orm.sql import migrations
from tests.agno.models import LAST_QUESTION
from tests.agno.test_adoption import team_on
from tests.agno.test_agno_on_every_backend import QUESTION

# agno's own create() calls a method SQLAlchemy 2 deprecates; pytest turns warnings into errors.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The Column.copy\\(\\) method is deprecated:DeprecationWarning"
)

TABLE = "team_sessions"


def cookbook_storage(url: str, *, ours: bool) -> Any:
    """The team's storage as agno's cookbook makes it: no mode, auto_upgrade_schema=True."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return (SqliteStorage if ours else AgnoSqlite)(
            table_name=TABLE, db_file=parsed.database, auto_upgrade_schema=True
        )
    if parsed.drivername.startswith("postgresql"):
        return (PostgresStorage if ours else AgnoPostgres)(
            table_name=TABLE, db_url=url, auto_upgrade_schema=True
        )
    return (MySQLStorage if ours else AgnoMySQL)(
        table_name=TABLE, schema=mysql_schema(url), db_url=url, auto_upgrade_schema=True
    )


def mysql_schema(url: str) -> str:
    """The database the MySQL storages keep the table in (agno's default is `ai`; the server is
    shared, so one named for this test's database, which agno creates and the test drops)."""
    return f"{make_url(url).database}_ai"


@pytest.mark.parametrize(
    "empty_db_url",
    [
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
    indirect=True,
)
def test_a_team_table_made_by_agnos_cookbook_pattern_is_adopted(empty_db_url: str) -> None:
    made: list[Any] = []

    def cookbook(*, ours: bool) -> Any:
        made.append(cookbook_storage(empty_db_url, ours=ours))
        return made[-1]

    try:
        agno_storage = cookbook(ours=False)
        team_on(agno_storage).run(QUESTION)
        schema = getattr(agno_storage, "schema", None)
        columns = {c["name"] for c in inspect(agno_storage.db_engine).get_columns(TABLE, schema=schema)}
        assert {"agent_id", "agent_data", "team_id", "team_data"} <= columns  # agno's real-world shape
        stored_by_agno = agno_storage.read("adopted").to_dict()

        storage = cookbook(ours=True)
        storage.mode = "team"  # as agno's Team sets it before each read and write
        assert storage.read("adopted").to_dict() == stored_by_agno
        answer = team_on(cookbook(ours=True)).run(LAST_QUESTION).content
        assert answer == f"Your last question was: {QUESTION}"
        with storage.db_engine.connect() as connection:
            assert migrations.table_state(connection, storage.spec).revision == migrations.head_revision()
            command.check(migrations.make_config(connection, [storage.spec]))  # agent columns kept: no drift
    finally:
        for each in made:
            each.db_engine.dispose()
        if make_url(empty_db_url).drivername.startswith("mysql"):
            engine = create_engine(empty_db_url)
            with engine.begin() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS `{mysql_schema(empty_db_url)}`"))
            engine.dispose()
