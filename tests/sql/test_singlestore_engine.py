"""SingleStoreStorage takes the engine agno's SingleStore examples make (issue 17 item 3):
`create_engine("mysql+pymysql://...")`, opened again with the singlestoredb dialect."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from agno.agent import Agent
from agno.storage.singlestore import SingleStoreStorage as AgnoSingleStoreStorage
from sqlalchemy import Engine, create_engine, make_url

from agno_orm import InvalidInputError, SingleStoreStorage
from tests.agno.memory_model import MemoryModel
from tests.agno.models import LAST_QUESTION
from tests.agno.storages import create_agno_table
from tests.conftest import unique_table_name

pytestmark = [
    pytest.mark.singlestore,
    # agno's own create() calls a method SQLAlchemy 2 deprecates; pytest turns warnings into errors.
    pytest.mark.filterwarnings("ignore:The Column.copy\\(\\) method is deprecated:DeprecationWarning"),
]


@pytest.fixture
def cookbook_engine(singlestore_url: str) -> Iterator[Engine]:
    """The engine agno's SingleStore cookbook makes: the server's URL with mysql+pymysql."""
    engine = create_engine(make_url(singlestore_url).set(drivername="mysql+pymysql"))
    yield engine
    engine.dispose()


def agent_on(storage: object) -> Agent:
    return Agent(
        model=MemoryModel(),
        session_id="cookbook",
        storage=storage,
        add_history_to_messages=True,
        telemetry=False,
    )


def test_a_mysql_engine_is_opened_again_with_the_singlestoredb_dialect(cookbook_engine: Engine) -> None:
    storage = SingleStoreStorage(unique_table_name(), db_engine=cookbook_engine, schema=None)
    assert storage.db_engine.dialect.name == "singlestoredb"
    assert storage.db_engine.url == cookbook_engine.url.set(drivername="singlestoredb")
    try:
        agent_on(storage).run("What is the capital of France?")
        assert (
            agent_on(storage).run(LAST_QUESTION).content
            == "Your last question was: What is the capital of France?"
        )
    finally:
        storage.drop()
        storage.db_engine.dispose()


def test_a_session_agno_stored_through_that_engine_is_continued_by_ours(cookbook_engine: Engine) -> None:
    table = unique_table_name()
    database = cookbook_engine.url.database
    agno_storage = AgnoSingleStoreStorage(table_name=table, db_engine=cookbook_engine, schema=database)
    create_agno_table(SimpleNamespace(backend="singlestore", schema=database), agno_storage)  # type: ignore[arg-type]
    agent_on(agno_storage).run("What is the capital of Peru?")
    before = agno_storage.read("cookbook").to_dict()  # type: ignore[union-attr]
    ours = SingleStoreStorage(table, db_engine=cookbook_engine, schema=database, auto_upgrade_schema=True)
    try:
        assert ours.read("cookbook").to_dict() == before  # type: ignore[union-attr]
        assert (
            agent_on(ours).run(LAST_QUESTION).content
            == "Your last question was: What is the capital of Peru?"
        )
    finally:
        ours.drop()
        ours.db_engine.dispose()


def test_an_engine_of_another_database_is_refused() -> None:
    engine = create_engine("sqlite://")
    with pytest.raises(InvalidInputError, match="singlestoredb"):
        SingleStoreStorage(unique_table_name(), db_engine=engine)
    engine.dispose()
