"""Session models: agno 1.8.4's field names and methods."""

from __future__ import annotations

import dataclasses

import pytest

from agno_orm import AgentSession, Session, TeamSession, WorkflowSession, WorkflowSessionV2

AGNO_FIELDS = {
    AgentSession: {
        "session_id", "user_id", "team_session_id", "workflow_session_id", "memory", "session_data",
        "extra_data", "created_at", "updated_at", "agent_id", "agent_data",
    },
    TeamSession: {
        "session_id", "team_session_id", "workflow_session_id", "team_id", "user_id", "memory",
        "team_data", "session_data", "extra_data", "created_at", "updated_at",
    },
    WorkflowSession: {
        "session_id", "user_id", "memory", "session_data", "extra_data", "created_at", "updated_at",
        "workflow_id", "workflow_data",
    },
    WorkflowSessionV2: {
        "session_id", "user_id", "workflow_id", "workflow_name", "runs", "session_data", "workflow_data",
        "extra_data", "created_at", "updated_at",
    },
}  # fmt: skip


@pytest.mark.parametrize("cls", AGNO_FIELDS)
def test_fields_are_agnos(cls: type[Session]) -> None:
    assert set(cls.model_fields) == AGNO_FIELDS[cls]


@pytest.mark.parametrize("cls", AGNO_FIELDS)
def test_only_session_id_is_required(cls: type[Session]) -> None:
    session = cls(session_id="s")
    assert all(getattr(session, f) is None for f in AGNO_FIELDS[cls] - {"session_id"})


@pytest.mark.parametrize("cls", AGNO_FIELDS)
def test_from_dict_reads_known_keys_and_ignores_the_rest(cls: type[Session]) -> None:
    session = cls.from_dict({"session_id": "s", "user_id": "u", "not_a_field": 1})
    assert session is not None and session.user_id == "u"


@pytest.mark.parametrize("cls", AGNO_FIELDS)
def test_from_dict_without_session_id_returns_none(cls: type[Session]) -> None:
    assert cls.from_dict({"user_id": "u"}) is None


def test_to_dict_round_trips() -> None:
    session = AgentSession(session_id="s", memory={"runs": []}, agent_data={"model": "m"})
    assert AgentSession.from_dict(session.to_dict()) == session


def test_agent_and_team_telemetry_carry_the_model() -> None:
    agent = AgentSession(session_id="s", agent_data={"model": "gpt"}, created_at=1, updated_at=2)
    assert agent.telemetry_data() == {"model": "gpt", "created_at": 1, "updated_at": 2}
    team = TeamSession(session_id="s", team_data=None, created_at=1)
    assert team.telemetry_data() == {"model": None, "created_at": 1, "updated_at": None}
    assert WorkflowSession(session_id="s", created_at=3).telemetry_data() == {
        "created_at": 3,
        "updated_at": None,
    }


@dataclasses.dataclass
class Run:
    run_id: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "content": self.content}


def test_workflow_v2_upsert_run_replaces_by_run_id_else_appends() -> None:
    session = WorkflowSessionV2(session_id="s")
    session.upsert_run(Run("r1", "first"))
    session.upsert_run(Run("r2", "second"))
    session.upsert_run(Run("r1", "again"))
    assert session.to_dict()["runs"] == [
        {"run_id": "r1", "content": "again"},
        {"run_id": "r2", "content": "second"},
    ]


def test_assignment_is_validated() -> None:
    session = AgentSession(session_id="s")
    with pytest.raises(ValueError):
        session.session_id = 5  # type: ignore[assignment]
