"""agno's own session classes: what a storage returns when it hands sessions to agno.

agno 1.8.4 checks the type of what a storage returns with `isinstance` against its own session
dataclasses: `AgentSession` in `Agent.get_previous_session_messages` (behind
`search_previous_sessions_history`), its v2 `WorkflowSession` in Workflow v2's
`read_from_storage`, `write_to_storage` and `get_run`, which also needs the runs as agno's run
objects. Our pydantic sessions would fail those checks, so a storage can return agno's classes,
built by agno's own `from_dict`. agno is an optional dependency: it is imported here only, and
only when a storage is made.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, get_args

from agno_orm.errors import InvalidInputError, MissingDependencyError
from agno_orm.sessions import Mode, SessionTypes

__all__ = ["agno_asdict_session_classes", "agno_session_classes"]

_CHOICES: tuple[SessionTypes, ...] = get_args(SessionTypes)


def agno_session_classes(session_types: SessionTypes) -> Mapping[Mode, Any] | None:
    """agno's session class of each mode when sessions are returned as agno's; None for ours.

    Raises InvalidInputError for an unknown choice, MissingDependencyError for "agno" without agno.
    """
    if session_types not in _CHOICES:
        raise InvalidInputError(f"session_types must be one of {', '.join(_CHOICES)}; got {session_types!r}")
    if session_types == "pydantic":
        return None
    classes = _imported_agno_classes()
    if classes is None and session_types == "agno":
        raise MissingDependencyError("agno", "agno")
    return classes


@functools.cache
def _imported_agno_classes() -> Mapping[Mode, Any] | None:
    try:
        from agno.storage.session import (
            AgentSession,
            TeamSession,
            WorkflowSession,
            WorkflowSessionV2,
        )
    except ImportError:
        return None
    return {
        "agent": AgentSession,
        "team": TeamSession,
        "workflow": WorkflowSession,
        "workflow_v2": WorkflowSessionV2,
    }


@functools.cache
def agno_asdict_session_classes() -> tuple[type[Any], ...]:
    """agno's session dataclasses whose to_dict is `dataclasses.asdict(self)` (agent, team and
    workflow; not workflow_v2, which converts its runs): () without agno."""
    classes = _imported_agno_classes()
    if classes is None:
        return ()
    return tuple(classes[mode] for mode in ("agent", "team", "workflow"))
