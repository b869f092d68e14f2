"""`Storage`: the one repository interface every backend implements (agno 1.8.4's contract)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import pydantic

from agno_orm import codec
from agno_orm.errors import InvalidInputError, InvalidSessionError, StorageError
from agno_orm.sessions import MODES, SESSION_TYPES, Mode, Session

__all__ = ["Storage"]


class Storage(ABC):
    """Where agent, team and workflow sessions live between runs.

    `mode` selects the session type and may be reassigned at any time (agno's Agent, Team and
    Workflow set it on every run). Methods answer "not found" with None or an empty list and
    raise a `StorageError` for every failure; listings are ordered newest `created_at` first.
    """

    def __init__(self, mode: Mode | None = "agent") -> None:
        self.mode = mode  # the setter accepts None

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, value: Mode | None) -> None:
        if value is None:
            value = "agent"
        if value not in MODES:
            raise InvalidInputError(f"unknown mode {value!r}; expected one of {', '.join(MODES)}")
        self._mode: Mode = value

    @property
    def session_type(self) -> type[Session]:
        """The session class of the current mode."""
        return SESSION_TYPES[self.mode]

    @abstractmethod
    def create(self) -> None:
        """Create the table, collection or directory of the current mode if it is missing."""

    @abstractmethod
    def read(self, session_id: str, user_id: str | None = None) -> Session | None:
        """The session with this id (and this user, when given), or None if there is none."""

    @abstractmethod
    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> list[str]:
        """Ids of the sessions matching the filters, newest first."""

    @abstractmethod
    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> list[Session]:
        """Sessions matching the filters, newest first. `entity_id` is the agent, team or workflow id."""

    @abstractmethod
    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> list[Session]:
        """The `limit` newest sessions matching the filters; `limit=None` returns all of them."""

    @abstractmethod
    def upsert(self, session: Any) -> Session:
        """Insert or replace the session by its id and return it as stored.

        Accepts a session of the current mode, a mapping of its fields, or an object with a
        `to_dict()` (agno's session dataclasses). Raises InvalidSessionError, with nothing
        written, when it cannot be stored.
        """

    @abstractmethod
    def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        """Delete the session with this id (and this user, when given); no-op for None or a missing id."""

    @abstractmethod
    def drop(self) -> None:
        """Remove the current mode's table, collection or files and everything in them."""

    @abstractmethod
    def upgrade_schema(self) -> None:
        """Bring the current mode's schema up to date."""

    # Shared by every backend: input is checked and encoded here, once.

    def _validated(self, session: Any) -> Session:
        """`session` as an instance of the current mode's session class, or InvalidSessionError."""
        expected = self.session_type
        if isinstance(session, Session):
            if not isinstance(session, expected):
                raise InvalidSessionError(
                    f"this storage is in {self.mode} mode and stores {expected.__name__}; "
                    f"got {type(session).__name__}"
                )
            # Revalidate: values set without assignment (in place, or via __dict__) were never checked.
            data: Any = dict(session)
        elif isinstance(session, Mapping):
            data = session
        elif callable(getattr(session, "to_dict", None)):
            data = session.to_dict()
        else:
            raise InvalidSessionError(
                f"cannot store a {type(session).__name__}; pass a {expected.__name__} or a mapping"
            )
        try:
            return expected.model_validate(data)
        except pydantic.ValidationError as exc:
            raise InvalidSessionError(f"invalid {expected.__name__}: {exc}") from exc

    def _from_record(self, record: Mapping[str, Any]) -> Session:
        """The session a stored record (row, document, file) holds, as every backend returns it."""
        session = self.session_type.from_dict(record)
        if session is None:
            raise StorageError(f"a stored {self.mode} session has no session_id: {dict(record)!r:.200}")
        return session

    def _record(self, session: Session) -> dict[str, Any]:
        """The session's fields as stored: JSON fields encoded by the codec, others as they are."""
        record = dict(session)
        for name in session.json_fields:
            record[name] = codec.encode(record[name], where=name)
        return record


def check_limit(limit: int | None) -> None:
    """Refuse a limit that is not None or a non-negative int (bool is not a count)."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise InvalidInputError(f"limit must be None or an int >= 0; got {limit!r}")


def check_session_id(session_id: Any) -> None:
    """Refuse an id no session could have been stored under."""
    if not isinstance(session_id, str):
        raise InvalidInputError(f"session_id must be a str; got {type(session_id).__name__}")
