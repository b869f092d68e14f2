"""A workflow_v2 run agno could not serialise (issue 17 item 4): agno stores it as
`{"run_id", "status", "error"}`, which its own classes cannot read back. Our storage keeps it
stored as it is, hands agno the session without it (with a warning naming it), and agno's
workflow goes on; the next write keeps it, since agno never saw it."""

from __future__ import annotations

import logging
import threading
import uuid

import pytest
from agno.workflow.v2 import Step, StepInput, StepOutput, Workflow

from agno_orm import WorkflowSessionV2
from tests.agno.conftest import Storages
from tests.agno.storages import SQL_BACKENDS, create_agno_table

pytestmark = pytest.mark.filterwarnings(
    "ignore:The Column.copy\\(\\) method is deprecated:DeprecationWarning"
)

SESSION_ID = "unserialisable"


def answer(step_input: StepInput) -> StepOutput:
    """A step whose output agno cannot serialise (it cannot deep-copy a lock) the first time."""
    if step_input.message == "hello":
        return StepOutput(content={"lock": threading.Lock()})
    return StepOutput(content=f"answer to {step_input.message}")


def workflow_on(storage: object) -> Workflow:
    return Workflow(
        name="locks",
        workflow_id="locks-1",
        session_id=SESSION_ID,
        storage=storage,  # type: ignore[arg-type]
        steps=[Step(name="answer", executor=answer)],
    )


def error_run(run_id: str) -> dict[str, str]:
    """The run agno 1.8.4 stores when it cannot serialise one (its WorkflowSession.to_dict)."""
    return {
        "run_id": run_id,
        "status": "RunStatus.completed",
        "error": "Serialization failed: cannot pickle '_thread.lock' object",
    }


def test_a_run_agno_could_not_serialise_stays_stored_and_the_workflow_goes_on(
    storages: Storages, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"auto_upgrade_schema": True} if storages.backend in SQL_BACKENDS else {}
    mine = storages.build(mode="workflow_v2", session_types="pydantic", **options)
    if storages.backend in ("singlestore", "mongodb"):
        # agno's own storage cannot store it there: its SingleStore table has no workflow_name
        # column, and its MongoDB upsert reads the session back and raises on that very run. The
        # run is stored as agno's WorkflowSession.to_dict writes it.
        first_id = str(uuid.uuid4())
        mine.upsert(
            WorkflowSessionV2(
                session_id=SESSION_ID,
                workflow_id="locks-1",
                workflow_name="locks",
                runs=[error_run(first_id)],
            )
        )
    else:
        agno_storage = storages.build_agno("workflow_v2")
        create_agno_table(storages.recipe, agno_storage)
        first_id = workflow_on(agno_storage).run(message="hello").run_id  # type: ignore[assignment]
    ours = storages.build(mode="workflow_v2", **options)
    assert mine.read(SESSION_ID).runs == [error_run(first_id)]  # type: ignore[union-attr]

    with caplog.at_level(logging.WARNING, logger="agno_orm"):
        second = workflow_on(ours).run(message="again")
    assert second.content == "answer to again"
    assert any(first_id in record.getMessage() for record in caplog.records)
    runs = mine.read(SESSION_ID).runs  # type: ignore[union-attr]
    assert runs[0] == error_run(first_id) and [run["run_id"] for run in runs] == [first_id, second.run_id]
    assert workflow_on(ours).get_run(second.run_id).content == "answer to again"  # type: ignore[union-attr,arg-type]
