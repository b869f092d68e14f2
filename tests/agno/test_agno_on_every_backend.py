"""agno 1.8.4's Agent, Team and v2 Workflow run unchanged on every backend, through our storages.

Each test runs once per backend (the `backend` parameter), with storages built as a user builds
them (tests/agno/storages.py) and our default `session_types`, which hands agno its own session
classes since agno is installed.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agno.agent import Agent
from agno.run.v2.workflow import WorkflowRunResponse
from agno.storage.session import AgentSession as AgnoAgentSession
from agno.storage.session import TeamSession as AgnoTeamSession
from agno.storage.session import WorkflowSession as AgnoWorkflowSession
from agno.storage.session import WorkflowSessionV2 as AgnoWorkflowSessionV2
from agno.team import Team
from agno.workflow.v2 import Step, StepInput, StepOutput, Workflow

from agno_orm import AgentSession, Storage, TeamSession, WorkflowSession, WorkflowSessionV2
from tests.agno.conftest import Storages
from tests.agno.memory_model import MemoryModel
from tests.agno.models import LAST_QUESTION, HistorySearchingModel, TeamLeaderModel
from tests.agno.network import TELEMETRY_OFF
from tests.agno.storages import StorageRecipe

REPO = Path(__file__).resolve().parents[2]
QUESTION = "What is the capital of France?"

AGNO_CLASSES: dict[str, type] = {
    "agent": AgnoAgentSession,
    "team": AgnoTeamSession,
    "workflow": AgnoWorkflowSession,
    "workflow_v2": AgnoWorkflowSessionV2,
}
OUR_CLASSES: dict[str, type] = {
    "agent": AgentSession,
    "team": TeamSession,
    "workflow": WorkflowSession,
    "workflow_v2": WorkflowSessionV2,
}


def agent_on(storage: Storage, session_id: str, **options: Any) -> Agent:
    return Agent(
        model=MemoryModel(),
        session_id=session_id,
        storage=storage,
        add_history_to_messages=True,
        telemetry=False,
        **options,
    )


def questions(runs: list[dict[str, Any]]) -> list[str]:
    """The question each stored run answered: its last user message."""
    return [[m["content"] for m in run["messages"] if m["role"] == "user"][-1] for run in runs]


def ask_in_second_process(
    recipe: StorageRecipe, table: str, session_id: str, question: str
) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.agno.second_process", recipe.to_json(), table, session_id, question],
        cwd=REPO,
        env={**os.environ, **TELEMETRY_OFF},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_a_second_process_continues_the_conversation(storages: Storages) -> None:
    """agno's storage example: an agent with a fixed session_id answers in one process; a second
    process builds the same storage from the same settings and asks "What was my last question?".

    MongoDB runs on an in-process engine here (mongomock-ng; no MongoDB server can run on this
    machine), whose data no other process can see: for it, the second run is a fresh Agent with a
    fresh storage object in this process (with a real MongoDB URL it is a second process too).
    """
    session_id = "fixed_id_for_demo"
    first = agent_on(storages.build(), session_id)
    assert first.run(QUESTION).content == f"Answer to: {QUESTION}"
    if storages.recipe.crosses_processes:
        second = ask_in_second_process(storages.recipe, storages.name(), session_id, LAST_QUESTION)
    else:
        storage = storages.build()
        answer = agent_on(storage, session_id).run(LAST_QUESTION).content
        stored = storage.read(session_id)
        second = {"answer": answer, "session_class": f"{type(stored).__module__}.{type(stored).__name__}"}
    assert second == {
        "answer": f"Your last question was: {QUESTION}",
        "session_class": "agno.storage.session.agent.AgentSession",
    }
    runs = storages.build().read(session_id).memory["runs"]  # type: ignore[union-attr]
    assert questions(runs) == [QUESTION, LAST_QUESTION]


def test_a_team_with_a_member_agent_is_persisted_and_reloaded(storages: Storages) -> None:
    session_id = "team-session"

    def team() -> Team:
        member = Agent(
            name="Researcher",
            agent_id="researcher",
            model=MemoryModel(),
            storage=storages.build(table="members"),
            telemetry=False,
        )
        return Team(
            name="Research team",
            team_id="research-team",
            mode="coordinate",
            members=[member],
            model=TeamLeaderModel(member_id="researcher"),
            storage=storages.build(mode="team", table="teams"),
            session_id=session_id,
            enable_team_history=True,
            telemetry=False,
        )

    answer = team().run("Find the capital of Peru").content
    assert answer.startswith("The team found: Answer to:") and "Find the capital of Peru" in answer
    assert team().run(LAST_QUESTION).content == "Your last question was: Find the capital of Peru"

    stored = storages.build(mode="team", table="teams").read(session_id)
    assert isinstance(stored, AgnoTeamSession) and stored.team_id == "research-team"
    assert questions(stored.memory["runs"]) == ["Find the capital of Peru", LAST_QUESTION]  # type: ignore[index]
    members = storages.build(table="members").get_all_sessions()
    assert [(m.agent_id, m.team_session_id) for m in members] == [("researcher", session_id)]  # type: ignore[union-attr]
    assert "Find the capital of Peru" in questions(members[0].memory["runs"])[0]  # type: ignore[union-attr]


def shout(step_input: StepInput) -> StepOutput:
    return StepOutput(content=str(step_input.previous_step_content).upper())


def workflow_on(storage: Storage, session_id: str) -> Workflow:
    answerer = Agent(name="answerer", model=MemoryModel(), telemetry=False)
    return Workflow(
        name="pipeline",
        workflow_id="pipeline-1",
        session_id=session_id,
        storage=storage,
        steps=[Step(name="answer", agent=answerer), Step(name="shout", executor=shout)],
    )


def test_a_v2_workflow_with_steps_is_persisted_and_reloaded(storages: Storages) -> None:
    session_id = "workflow-session"
    first = workflow_on(storages.build(mode="workflow_v2", table="workflows"), session_id).run(
        message="hello"
    )
    assert first.content == "ANSWER TO: HELLO"

    reloaded = workflow_on(storages.build(mode="workflow_v2", table="workflows"), session_id)
    found = reloaded.get_run(first.run_id)  # type: ignore[arg-type]
    assert isinstance(found, WorkflowRunResponse)
    assert (found.run_id, found.content) == (first.run_id, "ANSWER TO: HELLO")
    assert [step.content for step in found.step_responses] == ["Answer to: hello", "ANSWER TO: HELLO"]  # type: ignore[union-attr]
    second = reloaded.run(message="again")

    stored = storages.build(mode="workflow_v2", table="workflows").read(session_id)
    assert isinstance(stored, AgnoWorkflowSessionV2)
    assert (stored.workflow_id, stored.workflow_name) == ("pipeline-1", "pipeline")
    assert [(run.run_id, run.content) for run in stored.runs] == [  # type: ignore[union-attr]
        (first.run_id, "ANSWER TO: HELLO"),
        (second.run_id, "ANSWER TO: AGAIN"),
    ]


def test_search_previous_sessions_history_finds_the_users_earlier_sessions(storages: Storages) -> None:
    """agno reads the user's recent sessions with get_recent_sessions and keeps the AgentSessions."""
    agent_on(storages.build(), "earlier-1", user_id="u1").run("What is the capital of Spain?")
    agent_on(storages.build(), "earlier-2", user_id="u1").run(QUESTION)
    agent_on(storages.build(), "someone-else", user_id="u2").run("What is the capital of Chile?")
    searcher = Agent(
        model=HistorySearchingModel(),
        session_id="now",
        user_id="u1",
        storage=storages.build(),
        search_previous_sessions_history=True,
        num_history_sessions=3,
        telemetry=False,
    )
    # The model answers with the first question agno found: the newest session's.
    assert searcher.run(LAST_QUESTION).content == f"Your last question was: {QUESTION}"
    searched = searcher.run_response.messages[-2].content  # the tool's result: the earlier messages
    assert "capital of Spain" in searched and "capital of Chile" not in searched


def client_of(storage: Storage) -> Any:
    """What a storage connects through (None for files, which need nothing)."""
    for attribute in ("db_engine", "redis_client", "collection", "dynamodb_client"):
        if hasattr(storage, attribute):
            return getattr(storage, attribute)
    return None


def test_a_deep_copied_agent_shares_the_storage_client_and_continues(storages: Storages) -> None:
    """agno's apps deep-copy an agent, and so its storage, per request: no new pool per copy."""
    agent = agent_on(storages.build(), "copied")
    agent.run(QUESTION)
    copied = agent.deep_copy()
    assert copied.storage is not agent.storage
    assert client_of(copied.storage) is client_of(agent.storage)  # type: ignore[arg-type]
    assert copied.run(LAST_QUESTION).content == f"Your last question was: {QUESTION}"
    assert len(agent.storage.read("copied").memory["runs"]) == 2  # type: ignore[union-attr]


def test_a_deep_copy_of_a_storage_shares_its_client_and_works(storages: Storages) -> None:
    storage = storages.build()
    copied = copy.deepcopy(storage)
    assert copied is not storage and client_of(copied) is client_of(storage)
    copied.upsert(AgentSession(session_id="s1", user_id="u1"))
    assert storage.read("s1").user_id == "u1"  # type: ignore[union-attr]
    copied.mode = "team"
    assert storage.mode == "agent"  # a copy's mode is its own


def sessions_of(mode: str) -> list[Any]:
    """Two sessions of `mode` as agno's classes hold them, each with two runs."""
    made = []
    for i in (1, 2):
        common: dict[str, Any] = {
            "session_id": f"s{i}",
            "user_id": "u1",
            "session_data": {"session_name": f"n{i}"},
        }
        runs = [{"run_id": f"r{i}-{j}", "content": f"answer {j}"} for j in (1, 2)]
        if mode == "agent":
            made.append(AgnoAgentSession(**common, agent_id="a1", memory={"runs": runs}))
        elif mode == "team":
            made.append(AgnoTeamSession(**common, team_id="a1", memory={"runs": runs}))
        elif mode == "workflow":
            made.append(AgnoWorkflowSession(**common, workflow_id="a1", memory={"runs": runs}))
        else:
            responses = [WorkflowRunResponse(run_id=r["run_id"], content=r["content"]) for r in runs]
            made.append(AgnoWorkflowSessionV2(**common, workflow_id="a1", workflow_name="wf", runs=responses))
    return made


def run_ids(session: Any, mode: str) -> list[str]:
    if mode == "workflow_v2":
        return [run.run_id for run in session.runs]
    return [run["run_id"] for run in session.memory["runs"]]


@pytest.mark.parametrize("mode", ["agent", "team", "workflow", "workflow_v2"])
def test_returned_sessions_are_agnos_classes_by_default_and_ours_on_request(
    storages: Storages, mode: str
) -> None:
    storage = storages.build(mode=mode)
    agno_class = AGNO_CLASSES[mode]
    upserted = [storage.upsert(session) for session in sessions_of(mode)]
    assert all(type(s) is agno_class for s in upserted)
    read = storage.read("s1")
    assert type(read) is agno_class and run_ids(read, mode) == ["r1-1", "r1-2"]
    assert all(type(s) is agno_class for s in storage.get_recent_sessions(limit=None))
    assert sorted(s.session_id for s in storage.get_all_sessions(user_id="u1")) == ["s1", "s2"]
    assert all(type(s) is agno_class for s in storage.get_all_sessions())
    last = storage.read("s2", runs_limit=1)
    assert type(last) is agno_class and run_ids(last, mode) == ["r2-2"]
    page = storage.list_sessions(user_id="u1")
    assert sorted((s.session_id, s.session_name, s.run_count) for s in page.items) == [
        ("s1", "n1", 2),
        ("s2", "n2", 2),
    ]

    # The same data with session_types="pydantic": our classes, everywhere.
    ours = storages.build(mode=mode, session_types="pydantic")
    as_ours = ours.read("s1")
    assert type(as_ours) is OUR_CLASSES[mode]
    assert all(
        type(s) is OUR_CLASSES[mode] for s in [*ours.get_all_sessions(), ours.upsert(sessions_of(mode)[1])]
    )
    as_agno = storages.build(mode=mode, session_types="agno").read("s1")
    assert type(as_agno) is agno_class
    # agno's class holds what agno's own from_dict makes of our session (it adds defaults to runs)
    assert as_agno.to_dict() == AGNO_CLASSES[mode].from_dict(as_ours.to_dict()).to_dict()  # type: ignore[union-attr]
