"""Side-by-side benchmark: agno_orm against agno 1.8.4's own storage, on one server, in one run.

    benchmarks/run                      # full sizes; writes nothing, prints a Markdown report
    benchmarks/run --quick              # small sizes, for checking the harness itself

Both libraries run on the same PostgreSQL server and the same SQLite file in the same process,
one after the other, so the ratios are meaningful on a noisy machine even where the absolute
times are not. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# -- payloads ---------------------------------------------------------------------------------------


def make_run(i: int, content_bytes: int) -> dict[str, Any]:
    """One agno run as agno 1.x stores it in memory["runs"]: messages, metrics, content."""
    answer = ("The quick brown fox jumps over the lazy dog. " * (content_bytes // 45 + 1))[:content_bytes]
    now = int(time.time())
    return {
        "run_id": str(uuid.uuid4()),
        "session_id": "bench",
        "content": answer,
        "content_type": "str",
        "created_at": now,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant.", "created_at": now},
            {"role": "user", "content": f"Question number {i}: what happened next?", "created_at": now},
            {
                "role": "assistant",
                "content": answer,
                "metrics": {"input_tokens": 120 + i, "output_tokens": 700, "time": 1.234},
                "created_at": now,
            },
        ],
        "metrics": {"input_tokens": [120 + i], "output_tokens": [700], "time": [1.234]},
        "model": "gpt-4o-mini",
    }


# -- the two libraries behind one small interface ---------------------------------------------------


@dataclass
class Target:
    name: str
    storage: Any
    session_factory: Callable[..., Any]


def agno_target(backend: str, engine: Engine, table: str) -> Target:
    from agno.storage.postgres import PostgresStorage as AgnoPostgres
    from agno.storage.session.agent import AgentSession as AgnoSession
    from agno.storage.sqlite import SqliteStorage as AgnoSqlite

    if backend == "postgres":
        storage: Any = AgnoPostgres(table_name=table, db_engine=engine, schema="bench")
    else:
        # agno's SqliteStorage ignores db_engine (it falls back to a private in-memory database)
        storage = AgnoSqlite(table_name=table, db_file=str(engine.url.database))
    storage.create()
    return Target("agno 1.8.4", storage, AgnoSession)


def ours_target(backend: str, engine: Engine, table: str) -> Target:
    from agno_orm import AgentSession, PostgresStorage, SqliteStorage

    if backend == "postgres":
        storage: Any = PostgresStorage(table_name=table, db_engine=engine, schema="bench")
    else:
        storage = SqliteStorage(table_name=table, db_engine=engine)
    storage.create()
    return Target(f"agno_orm {version('agno-orm')}", storage, AgentSession)


# -- measurements -------------------------------------------------------------------------------------


@contextmanager
def wal_bytes(engine: Engine, out: list[int]) -> Iterator[None]:
    """Bytes of WAL the block wrote (PostgreSQL): the I/O a write really costs."""
    with engine.connect() as connection:
        before = connection.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar()
        yield
        after = connection.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar()
        out.append(
            int(
                connection.execute(text("SELECT pg_wal_lsn_diff(:a, :b)"), {"a": after, "b": before}).scalar()
            )
        )


def agent_loop(
    target: Target, engine: Engine, runs: int, content_bytes: int, probes: list[int]
) -> dict[str, Any]:
    """One session growing run by run: read at the start of a run, upsert of the whole session at its end.

    Read and upsert are timed apart: the targets are about the upsert, and the read returns the
    whole history by agno's contract.
    """
    session_id = f"loop-{uuid.uuid4().hex[:8]}"
    reads: dict[int, float] = {}
    upserts: dict[int, float] = {}
    wal: dict[int, int] = {}
    for i in range(1, runs + 1):
        started = time.perf_counter()
        session = target.storage.read(session_id)
        reads[i] = time.perf_counter() - started
        if session is None:
            session = target.session_factory(
                session_id=session_id, user_id="u", agent_id="a", memory={"runs": []}
            )
        memory = dict(session.memory or {})
        memory["runs"] = [*memory.get("runs", []), make_run(i, content_bytes)]
        session.memory = memory
        measured: list[int] = []
        started = time.perf_counter()
        if i in probes and engine.dialect.name == "postgresql":
            with wal_bytes(engine, measured):
                target.storage.upsert(session)
            wal[i] = measured[0]
        else:
            target.storage.upsert(session)
        upserts[i] = time.perf_counter() - started
    return {"reads": reads, "upserts": upserts, "wal": wal}


def around(values: dict[int, float], probe: int) -> float:
    """The median of the probe and its neighbours: one sample is at the mercy of a noisy machine."""
    window = [values[i] for i in range(probe - 2, probe + 3) if i in values]
    return statistics.median(window)


def populate(engine: Engine, storage: Any, sessions: int, users: int, history_bytes: int) -> str:
    """`sessions` sessions spread over `users` users, inserted in bulk as each library stores them."""
    run = make_run(0, history_bytes)
    ours = hasattr(storage, "spec")
    if ours:
        from agno_orm.runs import run_digest
        from agno_orm.sql.models import session_models

        storage.create()
        models = session_models(storage.spec)
        table, runs_table = models.session_table, models.runs_table
        memory: dict[str, Any] = {"runs": []}  # the runs themselves go to the runs table
    else:
        table, runs_table = storage.table, None
        memory = {"runs": [run]}
    now = int(time.time())
    with engine.begin() as connection:
        for start in range(0, sessions, 2000):
            numbers = range(start, min(start + 2000, sessions))
            rows = [
                {
                    "session_id": f"p-{n}",
                    "user_id": f"user-{n % users}",
                    "agent_id": "a",
                    "memory": memory,
                    "session_data": {"session_name": f"chat {n}"},
                    "created_at": now - sessions + n,
                    "updated_at": now - sessions + n,
                }
                for n in numbers
            ]
            connection.execute(table.insert(), rows)
            if runs_table is not None:
                digest = run_digest(run)
                connection.execute(
                    runs_table.insert(),
                    [
                        {
                            "session_id": f"p-{n}",
                            "run_key": f"id:{run['run_id']}",
                            "position": 0,
                            "digest": digest,
                            "payload": run,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for n in numbers
                    ],
                )
        if engine.dialect.name == "postgresql":
            for analyzed in (table, runs_table):
                if analyzed is not None:
                    connection.execute(text(f"ANALYZE {analyzed.fullname}"))
    return "user-0"


def single_upsert(target: Target, content_bytes: int) -> float:
    one_run = {"runs": [make_run(1, content_bytes)]}

    def once() -> None:
        target.storage.upsert(
            target.session_factory(session_id="single", user_id="u", agent_id="a", memory=one_run)
        )

    return best_of(20, once)


def best_of(repeats: int, action: Callable[[], Any]) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return min(samples)


def threaded_upserts(target: Target, threads: int, per_thread: int, content_bytes: int) -> float:
    """Upserts per second of `threads` threads each writing its own sessions."""
    runs = {"runs": [make_run(i, content_bytes) for i in range(3)]}
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for n in range(per_thread):
                session_id = f"th-{t}-{n % 10}"
                target.storage.upsert(target.session_factory(session_id=session_id, user_id="u", memory=runs))
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return threads * per_thread / elapsed


def floor_upsert(pg_url: str, table: str, content_bytes: int, repeats: int) -> float:
    """The same single upsert as one hand-written statement through psycopg: the cost of no layers."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    conninfo = f"host={url.host} port={url.port or 5432} user={url.username} dbname={url.database}"
    memory = json.dumps({"runs": [make_run(1, content_bytes)]})
    sql = (
        f"INSERT INTO bench.{table} (session_id, user_id, agent_id, memory, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s::jsonb, %s, %s) ON CONFLICT (session_id) DO UPDATE SET "
        "user_id = excluded.user_id, agent_id = excluded.agent_id, memory = excluded.memory, "
        "updated_at = excluded.updated_at"
    )
    with psycopg.connect(conninfo, autocommit=True) as connection:

        def once() -> None:
            now = int(time.time())
            connection.execute(sql, ("floor", "u", "a", memory, now, now))

        once()
        return best_of(repeats, once)


def listing_rows(args: argparse.Namespace, backend: str, engine: Engine, suffix: str) -> list[str]:
    """A user's 20 newest sessions among `args.sessions` (the user has 1,000), and at 1,000 sessions."""
    agno = agno_target(backend, engine, f"agno_list_{suffix}")
    ours = ours_target(backend, engine, f"ours_list_{suffix}")
    small = ours_target(backend, engine, f"ours_small_{suffix}")
    users = max(1, args.sessions // 1000)
    user = populate(engine, agno.storage, args.sessions, users, args.history_bytes)
    populate(engine, ours.storage, args.sessions, users, args.history_bytes)
    populate(engine, small.storage, 1000, 1, args.history_bytes)
    small_user = "user-0"
    # the best of 10 each: one sample of a millisecond call is at the mercy of a noisy machine
    agno_all = best_of(10, lambda: agno.storage.get_all_sessions(user_id=user))
    agno_recent = best_of(10, lambda: agno.storage.get_recent_sessions(user_id=user, limit=20))
    ours_page = best_of(10, lambda: ours.storage.list_sessions(user_id=user, limit=20))
    ours_recent = best_of(10, lambda: ours.storage.get_recent_sessions(user_id=user, limit=20))
    small_page = best_of(10, lambda: small.storage.list_sessions(user_id=small_user, limit=20))
    of = f"1,000 of {args.sessions:,} sessions"
    return [
        row(f"a user's 20 newest: agno get_all_sessions(user) vs our list_sessions ({of})", backend,
            ms(agno_all), ms(ours_page), ratio(agno_all, ours_page)),
        row(f"a user's 20 newest: agno get_recent_sessions(limit=20) vs our list_sessions ({of})", backend,
            ms(agno_recent), ms(ours_page), ratio(agno_recent, ours_page)),
        row(f"a user's 20 newest as full sessions: get_recent_sessions(limit=20) ({of})", backend,
            ms(agno_recent), ms(ours_recent), ratio(agno_recent, ours_recent)),
        row(f"our list_sessions at {args.sessions:,} sessions / at 1,000", backend,
            "", f"{ours_page / small_page:.2f}x", ""),
    ]  # fmt: skip


# -- the report --------------------------------------------------------------------------------------------


def ratio(agno_value: float, ours_value: float) -> str:
    return f"{agno_value / ours_value:.1f}x" if ours_value else "n/a"


def row(measure: str, backend: str, agno: str, ours: str, comparison: str) -> str:
    return f"| {measure} | {backend} | {agno} | {ours} | {comparison} |"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    parser.add_argument(
        "--private-pg",
        action="store_true",
        help="start a private PostgreSQL server (tests/servers.py), so no other client's writes count as WAL",
    )
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="leave the private server's fsync off, as the tests run it (commits then cost no flush: "
        "only client and round-trip costs remain); by default it is turned on, as in production",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the harness")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--content-bytes", type=int, default=3000, help="assistant answer size per run")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--history-bytes", type=int, default=600, help="answer size of the one run each listed session holds"
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.sessions = 100, 2_000

    if args.private_pg:
        import os

        os.environ["AGNO_ORM_TEST_PRIVATE_SERVERS"] = "1"
        # The tests' throwaway server runs with fsync off; a benchmark of writes wants commits as
        # durable as a production server makes them.
        os.environ["AGNO_ORM_TEST_PG_FSYNC"] = "off" if args.no_fsync else "on"
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.servers import postgres_url

        args.pg_url = postgres_url()
    probes = sorted({1, min(100, args.runs), args.runs})
    pg = create_engine(args.pg_url, pool_size=args.threads + 2)
    with pg.connect() as connection:
        settings = {
            name: connection.execute(text(f"SHOW {name}")).scalar()
            for name in ("server_version", "fsync", "synchronous_commit")
        }
    with pg.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS bench CASCADE"))
        connection.execute(text("CREATE SCHEMA bench"))
    workdir = Path(tempfile.mkdtemp(prefix="agno_orm_bench_"))
    sqlite = create_engine(f"sqlite:///{workdir / 'bench.db'}")
    engines = {"postgres": pg, "sqlite": sqlite}

    lines = [
        "| measure | backend | agno 1.8.4 | agno_orm | agno / agno_orm |",
        "|---|---|---|---|---|",
    ]
    for backend, engine in engines.items():
        suffix = uuid.uuid4().hex[:6]
        targets = [
            agno_target(backend, engine, f"agno_{suffix}"),
            ours_target(backend, engine, f"ours_{suffix}"),
        ]
        # One library at a time: agno's multi-MB writes would slow a neighbour running beside them.
        loops = [agent_loop(t, engine, args.runs, args.content_bytes, probes) for t in targets]
        for kind in ("upserts", "reads"):
            for probe in probes:
                agno_t, ours_t = (around(loop[kind], probe) for loop in loops)
                measure = f"{kind[:-1]} at run {probe}"
                lines.append(row(measure, backend, ms(agno_t), ms(ours_t), ratio(agno_t, ours_t)))
            growth = [around(loop[kind], probes[-1]) / around(loop[kind], 1) for loop in loops]
            measure = f"{kind[:-1]} at run {probes[-1]} / at run 1"
            lines.append(row(measure, backend, f"{growth[0]:.1f}x", f"{growth[1]:.1f}x", ""))
        if backend == "postgres":
            for probe in probes:
                agno_w, ours_w = (loop["wal"][probe] for loop in loops)
                measure = f"WAL bytes of the upsert at run {probe}"
                lines.append(row(measure, backend, f"{agno_w:,}", f"{ours_w:,}", ratio(agno_w, ours_w)))
            singles = [single_upsert(t, args.content_bytes) for t in targets]
            floor = floor_upsert(args.pg_url, targets[1].storage.table_name, args.content_bytes, 20)
            lines.append(row("one upsert, 1 run", backend, ms(singles[0]), ms(singles[1]), ratio(*singles)))
            measure = "floor: the same upsert as one psycopg statement"
            lines.append(
                row(measure, backend, "", ms(floor), f"agno_orm costs {singles[1] / floor:.1f}x the floor")
            )
        per_thread = 200 if not args.quick else 50
        rates = [threaded_upserts(t, args.threads, per_thread, args.content_bytes) for t in targets]
        measure = f"upserts/s, {args.threads} threads"
        lines.append(
            row(measure, backend, f"{rates[0]:,.0f}", f"{rates[1]:,.0f}", f"{rates[1] / rates[0]:.1f}x")
        )
        lines.extend(listing_rows(args, backend, engine, suffix))
    header = [
        f"Run: `benchmarks/run {' '.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d')}",
        f"Machine: {platform.platform()}, Python {platform.python_version()}",
        f"Versions: agno {version('agno')}, agno_orm {version('agno-orm')}, "
        f"SQLAlchemy {version('sqlalchemy')}, psycopg {version('psycopg')}",
        f"PostgreSQL {settings['server_version']}: fsync={settings['fsync']}, "
        f"synchronous_commit={settings['synchronous_commit']}",
        f"Sizes: {args.runs} runs of ~{args.content_bytes} B answers; for listing, {args.sessions:,} "
        f"sessions holding one run with a ~{args.history_bytes} B answer",
        "",
    ]
    print("\n".join(header + lines))


if __name__ == "__main__":
    sys.exit(main())
