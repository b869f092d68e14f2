"""Data agno 1.8.4 wrote with its own storage classes is adopted by ours, on every backend and mode.

The old data is made in each test by agno itself: its Agent, Team, Workflow (v1) and v2 Workflow
run with agno's own storage class of the backend. Then our storage opens the same table
(collection, key prefix, directory), built as agno's was (only the import changed): SQL tables
are adopted in place on first use (upgraded to head, with a warning; or by `alembic upgrade
head`), the others are read as they are (agno's Redis keys are indexed on the first listing).
What agno read back before, ours reads after, value for value, and an agent, team or workflow
continues where agno left off.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import pytest
from agno.agent import Agent
from agno.team import Team
from agno.workflow import Workflow as WorkflowV1
from alembic import command
from sqlalchemy import inspect

from agno_orm import SchemaError, Storage
from agno_orm.sql import SqlStorage, migrations
from tests.agno.conftest import Storages
from tests.agno.memory_model import MemoryModel
from tests.agno.models import LAST_QUESTION, TeamLeaderModel
from tests.agno.storages import SQL_BACKENDS, create_agno_table
from tests.agno.test_agno_on_every_backend import QUESTION, REPO, questions, workflow_on

# agno's own create() calls a method SQLAlchemy 2 deprecates; pytest turns warnings into errors.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The Column.copy\\(\\) method is deprecated:DeprecationWarning"
)

MODES = ["agent", "team", "workflow", "workflow_v2"]
SQL_PARAMS = [pytest.param(name, marks=getattr(pytest.mark, name)) for name in SQL_BACKENDS]
SESSION_ID = "adopted"


def agent_on(storage: Any, session_id: str = SESSION_ID) -> Agent:
    return Agent(
        model=MemoryModel(),
        agent_id="agent-1",
        user_id="u1",
        session_id=session_id,
        storage=storage,
        add_history_to_messages=True,
        telemetry=False,
    )


def team_on(storage: Any) -> Team:
    member = Agent(name="Researcher", agent_id="researcher", model=MemoryModel(), telemetry=False)
    return Team(
        name="Research team",
        team_id="research-team",
        mode="coordinate",
        members=[member],
        model=TeamLeaderModel(member_id="researcher"),
        user_id="u1",
        session_id=SESSION_ID,
        storage=storage,
        enable_team_history=True,
        telemetry=False,
    )


class Pipeline(WorkflowV1):
    """An agno 1.x (v1) workflow: its run() is ours, agno stores its runs in the session's memory."""

    description: str = "answers a question"

    def run(self, question: str) -> Any:  # type: ignore[override]
        return Agent(model=MemoryModel(), telemetry=False).run(question)


def workflow_v1_on(storage: Any) -> Pipeline:
    return Pipeline(
        workflow_id="pipeline-1", user_id="u1", session_id=SESSION_ID, storage=storage, telemetry=False
    )


def agno_writes(storages: Storages, mode: str) -> tuple[Any, dict[str, Any]]:
    """agno 1.8.4 runs with its own storage class in `mode`, on its own table; returns that
    storage and facts to check later: the id of the v2 workflow's run (`run_id`)."""
    agno_storage = storages.build_agno(mode)
    create_agno_table(storages.recipe, agno_storage)
    facts: dict[str, Any] = {}
    if mode == "agent":
        agent_on(agno_storage).run(QUESTION)
        agent_on(agno_storage, "another").run("What is the capital of Spain?")
    elif mode == "team":
        team_on(agno_storage).run(QUESTION)
    elif mode == "workflow":
        workflow_v1_on(agno_storage).run(question=QUESTION)
    elif storages.backend == "singlestore":
        # agno's SingleStore table has no workflow_name column, which its upsert writes: agno can
        # store no v2 session there (its table is adopted all the same, empty).
        with pytest.raises(Exception, match="Failed to create new WorkflowSessionV2 in storage"):
            workflow_on(agno_storage, SESSION_ID).run(message="hello")
    else:
        facts["run_id"] = workflow_on(agno_storage, SESSION_ID).run(message="hello").run_id
    return agno_storage, facts


def read_back(storage: Any) -> dict[str, Any]:
    return {session_id: storage.read(session_id).to_dict() for session_id in storage.get_all_session_ids()}


def adopt(storages: Storages, mode: str) -> Storage:
    """Our storage on agno's table, as a user switching builds it: only the import line changed
    (SQL: agno's table, which has no version recorded, is adopted in place on first use)."""
    return storages.build(mode=mode)


def assert_no_drift(storage: SqlStorage) -> None:
    """`alembic check` for this one table: the adopted table equals the models at head."""
    with storage.db_engine.connect() as connection:
        command.check(migrations.make_config(connection, [storage.spec]))
        assert migrations.table_state(connection, storage.spec).revision == migrations.head_revision()


@pytest.mark.parametrize("mode", MODES)
def test_agno_data_is_read_as_agno_read_it_and_continued(storages: Storages, mode: str) -> None:
    agno_storage, facts = agno_writes(storages, mode)
    before = read_back(agno_storage)
    assert SESSION_ID in before or (storages.backend == "singlestore" and mode == "workflow_v2")

    storage = adopt(storages, mode)
    assert read_back(storage) == before
    if storages.backend in SQL_BACKENDS:
        assert_no_drift(storage)  # type: ignore[arg-type]

    if mode == "agent":
        assert agent_on(storage).run(LAST_QUESTION).content == f"Your last question was: {QUESTION}"
        assert storage.read("another").to_dict() == before["another"]  # type: ignore[union-attr]
    elif mode == "team":
        assert team_on(storage).run(LAST_QUESTION).content == f"Your last question was: {QUESTION}"
    elif mode == "workflow":
        workflow_v1_on(storage).run(question="And of Peru?")
        runs = storage.read(SESSION_ID).memory["runs"]  # type: ignore[union-attr]
        assert [run["content"] for run in runs] == [f"Answer to: {QUESTION}", "Answer to: And of Peru?"]
    else:
        workflow = workflow_on(storage, SESSION_ID)
        if before:
            assert workflow.get_run(facts["run_id"]).content == "ANSWER TO: HELLO"  # type: ignore[union-attr]
        workflow.run(message="again")
        contents = [run.content for run in storage.read(SESSION_ID).runs]  # type: ignore[union-attr]
        assert contents == (["ANSWER TO: HELLO"] if before else []) + ["ANSWER TO: AGAIN"]


@pytest.mark.parametrize("backend", SQL_PARAMS, indirect=True)
def test_alembic_upgrade_head_adopts_an_agno_table_on_the_command_line(storages: Storages) -> None:
    agno_storage, _ = agno_writes(storages, "agent")
    before = read_back(agno_storage)
    recipe = storages.recipe
    url = f"sqlite:///{recipe.location}" if recipe.backend == "sqlite" else recipe.location
    options = ["-x", f"table={storages.name()}", "-x", "mode=agent"]
    if recipe.schema:
        options += ["-x", f"schema={recipe.schema}"]
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *options, "upgrade", "head"],
        cwd=REPO,
        env={**os.environ, "AGNO_ORM_DB_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    adopted = storages.build()
    assert read_back(adopted) == before
    assert_no_drift(adopted)  # type: ignore[arg-type]


def sql_columns(storage: Any) -> set[str]:
    with storage.db_engine.connect() as connection:
        columns = inspect(connection).get_columns(storage.table_name, schema=getattr(storage, "schema", None))
        return {c["name"] for c in columns}


def drop_columns(agno_storage: Any, columns: list[str]) -> None:
    """Make agno's table one of an older agno version, which lacked `columns` (and their indexes)."""
    engine = agno_storage.db_engine
    quote = engine.dialect.identifier_preparer.quote
    schema = getattr(agno_storage, "schema", None)
    table = f"{quote(schema)}.{quote(agno_storage.table_name)}" if schema else quote(agno_storage.table_name)
    with engine.begin() as connection:
        indexes = inspect(connection).get_indexes(agno_storage.table_name, schema=schema)
        for index in indexes:
            if set(index["column_names"]) & set(columns):
                on = f" ON {table}" if engine.dialect.name in ("mysql", "mariadb") else ""
                name = (
                    f"{quote(schema)}.{quote(index['name'])}" if schema and not on else quote(index["name"])
                )
                connection.exec_driver_sql(f"DROP INDEX {name}{on}")
        for column in columns:
            connection.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {quote(column)}")


@pytest.mark.parametrize("backend", SQL_PARAMS, indirect=True)
@pytest.mark.parametrize(
    ("mode", "missing"),
    [("team", ["team_session_id"]), ("workflow_v2", ["workflow_name", "runs"])],
    ids=["team-without-team_session_id", "workflow_v2-without-workflow_name-and-runs"],
)
def test_tables_of_older_agno_versions_get_the_columns_they_lack(
    storages: Storages, mode: str, missing: list[str]
) -> None:
    """agno's own upgrade only ever adds team_session_id, in agent mode: team tables of older agno
    versions lack it, and workflow_v2 tables made before v2 workflows existed lack theirs.

    agno 1.8.4 writes those columns, so it cannot write to such a table: the team's rows are
    written by agno 1.8.4 first, then the columns dropped, giving the table the older shape; the
    workflow_v2 table has no rows.
    """
    agno_storage = storages.build_agno(mode)
    create_agno_table(storages.recipe, agno_storage)
    if mode == "team":
        team_on(agno_storage).run(QUESTION)
    before = read_back(agno_storage)
    drop_columns(agno_storage, [c for c in missing if c in sql_columns(agno_storage)])
    assert not set(missing) & sql_columns(agno_storage)

    storage = storages.build(mode=mode, auto_upgrade_schema=True)
    assert read_back(storage) == before
    assert set(missing) <= sql_columns(storage)
    assert_no_drift(storage)  # type: ignore[arg-type]
    if mode == "team":
        assert team_on(storage).run(LAST_QUESTION).content == f"Your last question was: {QUESTION}"
    else:
        workflow_on(storage, SESSION_ID).run(message="hello")
        assert [run.content for run in storage.read(SESSION_ID).runs] == ["ANSWER TO: HELLO"]  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", SQL_PARAMS, indirect=True)
def test_an_agno_table_of_another_mode_is_refused_and_left_unchanged(storages: Storages) -> None:
    agno_storage, _ = agno_writes(storages, "agent")
    columns = sql_columns(agno_storage)
    storage = storages.build(mode="team", auto_upgrade_schema=True)
    with pytest.raises(SchemaError, match="not a table of team sessions"):
        storage.read(SESSION_ID)
    assert sql_columns(agno_storage) == columns
    with storage.db_engine.connect() as connection:  # type: ignore[attr-defined]
        assert migrations.table_state(connection, storage.spec).revision is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", SQL_PARAMS, indirect=True)
def test_downgrading_to_the_baseline_hands_the_table_back_to_agno(storages: Storages) -> None:
    agno_writes(storages, "agent")
    storage = storages.build(auto_upgrade_schema=True)
    agent_on(storage).run("And of Peru?")  # a run stored in our runs table
    migrations.downgrade(storage.db_engine, [storage.spec], migrations.BASELINE_REVISION)  # type: ignore[attr-defined]

    answer = agent_on(storages.build_agno("agent")).run(LAST_QUESTION).content
    assert answer == "Your last question was: And of Peru?"
    runs = storages.build_agno("agent").read(SESSION_ID).memory["runs"]
    assert questions(runs) == [QUESTION, "And of Peru?", LAST_QUESTION]


@pytest.mark.parametrize("backend", SQL_PARAMS, indirect=True)
def test_the_first_use_of_an_agno_table_adopts_it_saying_so(
    storages: Storages, caplog: pytest.LogCaptureFixture
) -> None:
    """agno's sqlite_storage.py cookbook example, run with agno and then with only the import
    swapped: no auto_upgrade_schema, no command to run first; a warning says what happened."""
    agno_storage, _ = agno_writes(storages, "agent")
    before = read_back(agno_storage)
    storage = storages.build()
    with caplog.at_level(logging.WARNING, logger="agno_orm"):
        answer = agent_on(storage).run(LAST_QUESTION).content
    assert answer == f"Your last question was: {QUESTION}"
    assert "no version recorded (agno made it): adopting it in place" in caplog.text
    assert "alembic downgrade 0001" in caplog.text
    assert storage.read("another").to_dict() == before["another"]  # type: ignore[union-attr]
    assert_no_drift(storage)  # type: ignore[arg-type]
