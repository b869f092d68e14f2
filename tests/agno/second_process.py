"""The second process of the persistence test: rebuild the storage from its recipe, ask a question.

    python -m tests.agno.second_process RECIPE_JSON TABLE SESSION_ID QUESTION

Prints one JSON object: the agent's answer and the class of the session the storage returns.
"""

from __future__ import annotations

import json
import sys

from tests.agno import network

network.refuse_network_for_this_process()  # before agno is imported: telemetry is read at import

from agno.agent import Agent  # noqa: E402

from tests.agno.memory_model import MemoryModel  # noqa: E402
from tests.agno.storages import StorageRecipe, build  # noqa: E402


def main(recipe_json: str, table: str, session_id: str, question: str) -> None:
    storage = build(StorageRecipe.from_json(recipe_json), table)
    agent = Agent(
        model=MemoryModel(),
        session_id=session_id,
        storage=storage,
        add_history_to_messages=True,
        telemetry=False,
    )
    answer = agent.run(question).content
    stored = storage.read(session_id)
    print(
        json.dumps({"answer": answer, "session_class": f"{type(stored).__module__}.{type(stored).__name__}"})
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
