"""agno 1.8.4's Agent, Team and Workflows (v1, v2) truncate or clear their history and write it:
the next turn finds exactly that history stored, on every backend, as on agno's own storage.

agno reads the session at the start of every run and writes it whole at the end; a user bounds or
erases a history by truncating the object's runs and writing it (`write_to_storage`). Each
scenario runs twice, on agno's own storage class and on ours, and both must store the same.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.agno.conftest import Storages
from tests.agno.models import LAST_QUESTION
from tests.agno.storages import create_agno_table
from tests.agno.test_adoption import SESSION_ID, agent_on, team_on, workflow_v1_on
from tests.agno.test_agno_on_every_backend import questions, workflow_on

# agno's own create() calls a method SQLAlchemy 2 deprecates; pytest turns warnings into errors.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The Column.copy\\(\\) method is deprecated:DeprecationWarning"
)

ASKED = ["What is 1?", "What is 2?", "What is 3?"]


def agent_forgetting(forget: Any) -> Any:
    """The scenario: three runs, then `forget(agent)` and a write, then the next turn."""

    def scenario(storage: Any) -> tuple[list[str], str]:
        agent = agent_on(storage)
        for question in ASKED:
            agent.run(question)
        forget(agent)
        agent.write_to_storage(session_id=SESSION_ID)
        answer = agent.run(LAST_QUESTION).content
        return questions(storage.read(SESSION_ID).memory["runs"]), answer

    return scenario


def keep_the_last_run(agent: Any) -> None:
    agent.memory.runs[SESSION_ID] = agent.memory.runs[SESSION_ID][-1:]


def clear_the_memory(agent: Any) -> None:
    agent.memory.clear()


def team_keeps_its_last_run(storage: Any) -> tuple[list[str], str]:
    team = team_on(storage)
    for question in ASKED:
        team.run(question)
    team.memory.runs[SESSION_ID] = team.memory.runs[SESSION_ID][-1:]  # type: ignore[union-attr]
    team.write_to_storage(session_id=SESSION_ID)
    answer = team.run(LAST_QUESTION).content
    return questions(storage.read(SESSION_ID).memory["runs"]), answer


def workflow_v1_keeps_its_last_run(storage: Any) -> list[str]:
    workflow = workflow_v1_on(storage)
    for question in ASKED:
        workflow.run(question=question)
    workflow.memory.runs[SESSION_ID] = workflow.memory.runs[SESSION_ID][-1:]  # type: ignore[union-attr,index]
    workflow.write_to_storage()
    workflow_v1_on(storage).run(question="And 4?")
    return [run["content"] for run in storage.read(SESSION_ID).memory["runs"]]


def workflow_v2_keeps_its_last_run(storage: Any) -> list[str]:
    workflow = workflow_on(storage, SESSION_ID)
    for question in ASKED:
        workflow.run(message=question)
    workflow.workflow_session.runs = workflow.workflow_session.runs[-1:]  # type: ignore[union-attr]
    workflow.write_to_storage()
    workflow_on(storage, SESSION_ID).run(message="and 4?")
    return [run.content for run in storage.read(SESSION_ID).runs]


def on_both(storages: Storages, mode: str, scenario: Any) -> tuple[Any, Any]:
    """The scenario's result on agno's own storage and on ours (each on its own table)."""
    agno_storage = storages.build_agno(mode, table="agno")
    create_agno_table(storages.recipe, agno_storage)
    return scenario(agno_storage), scenario(storages.build(mode=mode, table="ours"))


@pytest.mark.parametrize("forget", [keep_the_last_run, clear_the_memory])
def test_an_agents_truncated_history_is_the_one_the_next_turn_finds(storages: Storages, forget: Any) -> None:
    agnos, ours = on_both(storages, "agent", agent_forgetting(forget))
    if forget is keep_the_last_run:
        assert ours == ([ASKED[-1], LAST_QUESTION], f"Your last question was: {ASKED[-1]}")
    else:
        assert ours == ([LAST_QUESTION], "I do not know your last question.")
    assert ours == agnos


def test_a_teams_truncated_history_is_the_one_the_next_turn_finds(storages: Storages) -> None:
    agnos, ours = on_both(storages, "team", team_keeps_its_last_run)
    assert ours == ([ASKED[-1], LAST_QUESTION], f"Your last question was: {ASKED[-1]}")
    assert ours == agnos


def test_a_v1_workflows_truncated_history_is_the_one_the_next_run_finds(storages: Storages) -> None:
    agnos, ours = on_both(storages, "workflow", workflow_v1_keeps_its_last_run)
    assert ours == [f"Answer to: {ASKED[-1]}", "Answer to: And 4?"]
    assert ours == agnos


def test_a_v2_workflows_truncated_history_is_the_one_the_next_run_finds(storages: Storages) -> None:
    ours = workflow_v2_keeps_its_last_run(storages.build(mode="workflow_v2", table="ours"))
    assert ours == [f"ANSWER TO: {ASKED[-1].upper()}", "ANSWER TO: AND 4?"]
    if storages.backend != "singlestore":  # agno's SingleStore table cannot hold v2 sessions
        agno_storage = storages.build_agno("workflow_v2", table="agno")
        create_agno_table(storages.recipe, agno_storage)
        assert workflow_v2_keeps_its_last_run(agno_storage) == ours
