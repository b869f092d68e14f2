"""The shared document rules of the non-SQL backends: the mode of agno's documents, listing order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agno_orm.nosql._documents import document_mode, newest

AGNO_DOCUMENTS = {  # what agno 1.8.4's asdict(session) holds besides the common fields
    "agent": {"team_session_id": None, "workflow_session_id": None, "agent_id": None, "agent_data": None},
    "team": {"team_session_id": None, "workflow_session_id": None, "team_id": None, "team_data": None},
    "workflow": {"memory": None, "workflow_id": None, "workflow_data": None},
    "workflow_v2": {"workflow_id": None, "workflow_name": None, "runs": None, "workflow_data": None},
}


@pytest.mark.parametrize("mode", sorted(AGNO_DOCUMENTS))
def test_the_mode_of_an_agno_document_is_told_by_its_fields(mode: str) -> None:
    assert document_mode({"session_id": "s", "user_id": None, **AGNO_DOCUMENTS[mode]}) == mode


def test_a_stored_mode_wins_over_the_fields() -> None:
    assert document_mode({"session_id": "s", "agent_id": "a", "mode": "team"}) == "team"


def test_newest_reads_past_the_limit_only_through_ties() -> None:
    read: list[str] = []

    def arriving() -> Iterator[dict[str, Any]]:  # newest created_at first, ties in any order
        for session_id, created in [("a", 9), ("c", 8), ("b", 8), ("d", 8), ("e", 7), ("f", 6)]:
            read.append(session_id)
            yield {"session_id": session_id, "created_at": created}

    assert [d["session_id"] for d in newest(arriving(), 2)] == ["a", "d"]
    assert read == ["a", "c", "b", "d", "e"]
