"""`session_types`: which classes a storage returns, and why agno needs its own.

The choice is made once, in `Storage`, for every backend (tests/agno/test_agno_on_every_backend.py
runs it on each); these tests cover the choice itself on SQLite.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agno.agent import Agent
from agno.storage.session import AgentSession as AgnoAgentSession

from agno_orm import (
    AgentSession,
    InvalidInputError,
    MissingDependencyError,
    SqliteStorage,
    WorkflowSessionV2,
)
from agno_orm._agno import _imported_agno_classes
from tests.agno.memory_model import NO_HISTORY, MemoryModel
from tests.agno.models import LAST_QUESTION, HistorySearchingModel
from tests.agno.test_agno_on_every_backend import workflow_on

pytestmark = pytest.mark.sqlite


@pytest.fixture
def db_file(tmp_path: Path) -> str:
    return str(tmp_path / "sessions.db")


@pytest.fixture
def without_agno(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if the agno package were not installed."""
    _imported_agno_classes.cache_clear()
    monkeypatch.setitem(sys.modules, "agno.storage.session", None)  # importing it raises ImportError
    yield
    _imported_agno_classes.cache_clear()


def test_auto_returns_agnos_classes_where_agno_is_installed() -> None:
    storage = SqliteStorage("sessions")
    assert storage.session_types == "auto"
    assert type(storage.upsert(AgentSession(session_id="s1"))) is AgnoAgentSession


def test_auto_returns_ours_where_agno_cannot_be_imported(without_agno: None) -> None:
    storage = SqliteStorage("sessions")
    assert type(storage.upsert(AgentSession(session_id="s1"))) is AgentSession
    assert type(storage.read("s1")) is AgentSession


def test_agno_without_agno_installed_names_the_extra(without_agno: None) -> None:
    with pytest.raises(MissingDependencyError, match=r"pip install 'agno-orm\[agno\]'"):
        SqliteStorage("sessions", session_types="agno")


def test_pydantic_needs_no_agno(without_agno: None) -> None:
    storage = SqliteStorage("sessions", session_types="pydantic")
    assert type(storage.upsert(AgentSession(session_id="s1"))) is AgentSession


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="session_types must be one of auto, agno, pydantic"):
        SqliteStorage("sessions", session_types="dataclasses")  # type: ignore[arg-type]


def test_the_choice_can_be_changed_on_a_storage() -> None:
    storage = SqliteStorage("sessions", session_types="pydantic")
    storage.upsert(AgentSession(session_id="s1"))
    storage.session_types = "agno"
    assert type(storage.read("s1")) is AgnoAgentSession


def test_a_run_agno_cannot_hold_is_left_out_of_agnos_session_naming_the_way_out(
    db_file: str, caplog: pytest.LogCaptureFixture
) -> None:
    ours = SqliteStorage("runs", db_file=db_file, mode="workflow_v2", session_types="pydantic")
    odd, fine = {"run_id": "r1", "not_an_agno_field": 1}, {"run_id": "r2", "content": "ok"}
    ours.upsert(WorkflowSessionV2(session_id="s1", runs=[odd, fine]))
    agnos = SqliteStorage("runs", db_file=db_file, mode="workflow_v2", session_types="agno")
    with caplog.at_level(logging.WARNING, logger="agno_orm"):
        read = agnos.read("s1")
    assert [run.run_id for run in read.runs] == ["r2"]  # type: ignore[union-attr]
    assert "run r1" in caplog.text and "session_types='pydantic'" in caplog.text
    agnos.upsert(read)  # written back without it: agno never saw it, so it stays
    runs = ours.read("s1").runs  # type: ignore[union-attr]
    assert runs[0] == odd and [run["run_id"] for run in runs] == ["r1", "r2"]  # r2 as agno's to_dict wrote it


# Why agno needs its own classes: with ours, agno's isinstance checks quietly find nothing.


def test_with_our_classes_a_v2_workflow_cannot_store_its_session(db_file: str) -> None:
    def storage(session_types: str) -> SqliteStorage:
        return SqliteStorage("workflows", db_file=db_file, mode="workflow_v2", session_types=session_types)  # type: ignore[arg-type]

    # agno checks the class of what upsert returns, and gives up on anything but its own
    with pytest.raises(Exception, match="Failed to create new WorkflowSessionV2 in storage"):
        workflow_on(storage("pydantic"), "s1").run(message="hello")
    run_id = workflow_on(storage("auto"), "s2").run(message="hello").run_id
    assert workflow_on(storage("auto"), "s2").get_run(run_id).content == "ANSWER TO: HELLO"  # type: ignore[arg-type,union-attr]


def test_with_our_classes_searching_previous_sessions_finds_nothing(db_file: str) -> None:
    def ask(session_types: str) -> str:
        storage = SqliteStorage("agents", db_file=db_file, session_types=session_types)  # type: ignore[arg-type]
        searcher = Agent(
            model=HistorySearchingModel(),
            storage=storage,
            search_previous_sessions_history=True,
            num_history_sessions=3,
            telemetry=False,
        )
        return str(searcher.run(LAST_QUESTION).content)

    Agent(model=MemoryModel(), storage=SqliteStorage("agents", db_file=db_file), telemetry=False).run(
        "Hello?"
    )
    assert ask("pydantic") == NO_HISTORY
    assert ask("auto") == "Your last question was: Hello?"
