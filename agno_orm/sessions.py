"""Session models: the field names and methods of agno 1.8.4's session dataclasses, on pydantic v2.

Field names equal column names, so a backend turns a stored row into a session with `from_dict`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from typing_extensions import Self

from agno_orm._versions import View

if TYPE_CHECKING:
    # agno ships type information; where it is not installed, type checkers read this name as Any.
    from agno.storage.session import Session as AgnoSession  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "ENTITY_FIELD",
    "ID_FIELDS",
    "MAX_SESSION_ID_LENGTH",
    "MODES",
    "SESSION_TYPES",
    "AgentSession",
    "AnySession",
    "Mode",
    "Session",
    "SessionPage",
    "SessionSummary",
    "SessionTypes",
    "TeamSession",
    "WorkflowSession",
    "WorkflowSessionV2",
]

Mode = Literal["agent", "team", "workflow", "workflow_v2"]
MODES: tuple[Mode, ...] = get_args(Mode)

SessionTypes = Literal["auto", "agno", "pydantic"]
"""The classes a storage returns sessions as: "pydantic" ours (below), "agno" agno's own session
dataclasses (whose type agno checks with isinstance), "auto" agno's when agno can be imported."""

AnySession: TypeAlias = Union["Session", "AgnoSession"]
"""A session as a storage returns it: ours, or agno's dataclass of the same fields (see SessionTypes)."""

MAX_SESSION_ID_LENGTH = 255
"""Longest accepted session_id: the key length every backend can index (MySQL's VARCHAR(255))."""

JsonDict = dict[str, Any]

ID_FIELDS = frozenset(
    {"user_id", "agent_id", "team_id", "workflow_id", "team_session_id", "workflow_session_id"}
)
"""The fields naming a user, an agent, team or workflow, or a parent session: text, a UUID taken as its."""


class Session(BaseModel):
    """Fields and behaviour shared by every session type."""

    # strict: a wrong type is an error, never quietly converted (b"id" must not become "id")
    model_config = ConfigDict(validate_assignment=True, extra="forbid", strict=True)

    mode: ClassVar[Mode]
    json_fields: ClassVar[tuple[str, ...]]
    """Fields stored as JSON documents; every other field is a plain column."""

    session_id: str = Field(min_length=1, max_length=MAX_SESSION_ID_LENGTH, pattern=r"^[^\x00]+$")
    user_id: str | None = None
    session_data: JsonDict | None = None
    extra_data: JsonDict | None = None
    created_at: int | None = None
    updated_at: int | None = None

    _stored_version: tuple[str, View] | None = PrivateAttr(default=None)
    """(session_id, what its writer saw: version and first run handed out) of the stored session
    this one was read or written as, set by storages (see `Storage`); None for a session no
    storage returned. Not a field: never stored, never compared."""

    @model_validator(mode="before")
    @classmethod
    def _ids_as_text(cls, data: Any) -> Any:
        """A uuid.UUID given as a user, entity or parent session id is kept as its text (agno's
        storages write it so); any other non-string id stays refused."""
        if isinstance(data, Mapping) and any(isinstance(data.get(name), uuid.UUID) for name in ID_FIELDS):
            return {
                name: str(value) if name in ID_FIELDS and isinstance(value, uuid.UUID) else value
                for name, value in data.items()
            }
        return data

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class with equal fields (the stored version does not count)."""
        if not isinstance(other, BaseModel):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def to_dict(self) -> dict[str, Any]:
        """Return every field as a dict, as agno's `asdict`-based `to_dict` does."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self | None:
        """Build a session from a mapping (a row), reading only known keys; None without a session_id."""
        if not data.get("session_id"):
            return None
        return cls.model_validate({name: data[name] for name in cls.model_fields if name in data})

    def telemetry_data(self) -> dict[str, Any]:
        return {"created_at": self.created_at, "updated_at": self.updated_at}


class AgentSession(Session):
    mode: ClassVar[Mode] = "agent"
    json_fields = ("memory", "session_data", "extra_data", "agent_data")

    team_session_id: str | None = None
    workflow_session_id: str | None = None
    memory: JsonDict | None = None
    agent_id: str | None = None
    agent_data: JsonDict | None = None

    def telemetry_data(self) -> dict[str, Any]:
        model = self.agent_data.get("model") if self.agent_data else None
        return {"model": model, "created_at": self.created_at, "updated_at": self.updated_at}


class TeamSession(Session):
    mode: ClassVar[Mode] = "team"
    json_fields = ("memory", "session_data", "extra_data", "team_data")

    team_session_id: str | None = None
    workflow_session_id: str | None = None
    team_id: str | None = None
    memory: JsonDict | None = None
    team_data: JsonDict | None = None

    def telemetry_data(self) -> dict[str, Any]:
        model = self.team_data.get("model") if self.team_data else None
        return {"model": model, "created_at": self.created_at, "updated_at": self.updated_at}


class WorkflowSession(Session):
    mode: ClassVar[Mode] = "workflow"
    json_fields = ("memory", "session_data", "extra_data", "workflow_data")

    memory: JsonDict | None = None
    workflow_id: str | None = None
    workflow_data: JsonDict | None = None


class WorkflowSessionV2(Session):
    """agno's `agno.storage.session.v2.workflow.WorkflowSession`: runs are kept in their own field."""

    mode: ClassVar[Mode] = "workflow_v2"
    json_fields = ("runs", "session_data", "extra_data", "workflow_data")

    workflow_id: str | None = None
    workflow_name: str | None = None
    runs: list[Any] | None = None
    workflow_data: JsonDict | None = None

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.runs is not None:
            data["runs"] = [_run_as_dict(run) for run in self.runs]
        return data

    def upsert_run(self, run: Any) -> None:
        """Replace the run with the same run_id, or append it."""
        runs = list(self.runs or [])
        run_id = _run_id(run)
        for i, existing in enumerate(runs):
            if run_id is not None and _run_id(existing) == run_id:
                runs[i] = run
                break
        else:
            runs.append(run)
        self.runs = runs


def _run_as_dict(run: Any) -> Any:
    to_dict = getattr(run, "to_dict", None)
    return to_dict() if callable(to_dict) else run


def _run_id(run: Any) -> Any:
    if isinstance(run, Mapping):
        return run.get("run_id")
    return getattr(run, "run_id", None)


SESSION_TYPES: dict[Mode, type[Session]] = {
    cls.mode: cls for cls in (AgentSession, TeamSession, WorkflowSession, WorkflowSessionV2)
}

ENTITY_FIELD: dict[Mode, str] = {
    "agent": "agent_id",
    "team": "team_id",
    "workflow": "workflow_id",
    "workflow_v2": "workflow_id",
}
"""The field `entity_id` filters on, by mode."""


class SessionSummary(BaseModel):
    """A session without its history: what a list of sessions shows."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    user_id: str | None
    entity_id: str | None
    """The agent, team or workflow id, by mode."""
    session_name: str | None
    """`session_data["session_name"]`, the title agno gives a session."""
    created_at: int | None
    updated_at: int | None
    run_count: int


class SessionPage(BaseModel):
    """One page of a listing, newest first; pass `next_cursor` back for the next page (None: last page)."""

    model_config = ConfigDict(frozen=True)

    items: list[SessionSummary]
    next_cursor: str | None
