"""A private in-memory SQLite database (SqliteStorage() with no file, agno's default) is one
connection shared by every thread: threads take turns on it, so none sees another's half-done
transaction and every session written is stored."""

from __future__ import annotations

import threading

from agno_orm import AgentSession, SqliteStorage


def test_threads_writing_and_reading_an_in_memory_database_lose_nothing() -> None:
    storage = SqliteStorage("sessions")
    errors: list[BaseException] = []
    threads, sessions_each = 8, 15

    def worker(index: int) -> None:
        try:
            for n in range(sessions_each):
                session_id = f"t{index}-s{n}"
                runs = [{"run_id": f"r{k}", "content": "x" * 200} for k in range(3)]
                storage.upsert(
                    AgentSession(session_id=session_id, user_id=f"u{index}", memory={"runs": runs})
                )
                stored = storage.read(session_id)
                assert stored is not None and len(stored.memory["runs"]) == 3
                storage.list_sessions(user_id=f"u{index}")
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert errors == []
    assert len(storage.get_all_session_ids()) == threads * sessions_each
    for index in range(threads):
        assert len(storage.get_all_session_ids(user_id=f"u{index}")) == sessions_each
