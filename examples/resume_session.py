"""Persist a session in one process and continue it in the next, the way agno's Agent does.

    python examples/resume_session.py DB_FILE "What is the capital of France?"
    python examples/resume_session.py DB_FILE "What was my last question?"

Each run is a new process: it reads the session (one read at start), answers from the stored
history, appends its run and writes the whole session back (one upsert at the end). No model
or API key is involved; the "agent" only remembers.
"""

from __future__ import annotations

import sys
import uuid

from agno_orm import AgentSession, SqliteStorage

SESSION_ID = "fixed_id_for_demo"


def answer(question: str, runs: list[dict[str, str]]) -> str:
    if question.lower().startswith("what was my last question"):
        return (
            f"Your last question was: {runs[-1]['question']!r}"
            if runs
            else "You have not asked anything yet."
        )
    return f"(an agent would answer {question!r} here)"


def main(db_file: str, question: str) -> None:
    storage = SqliteStorage(table_name="agent_sessions", db_file=db_file)
    session = storage.read(SESSION_ID)  # ours, or agno's AgentSession where agno is installed
    if session is None:
        session = AgentSession(session_id=SESSION_ID, user_id="demo-user", agent_id="demo-agent", memory={})
    runs = list((session.memory or {}).get("runs", []))
    reply = answer(question, runs)
    runs.append({"run_id": str(uuid.uuid4()), "question": question, "answer": reply})
    session.memory = {**(session.memory or {}), "runs": runs}
    stored = storage.upsert(session)
    print(f"> {question}\n{reply}\n  (session {stored.session_id}: {len(runs)} runs stored)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
