"""JsonStorage and YamlStorage: atomic writes, locking across processes, contained file names, modes."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from agno_orm import AgentSession, InvalidInputError, InvalidSessionError, StorageError, TeamSession
from agno_orm.nosql import FileStorage, JsonStorage, YamlStorage
from agno_orm.nosql.files import file_name

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:multiprocessing")

STORAGES = [JsonStorage, YamlStorage]
TRAVERSAL_IDS = [
    "../x",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b",
    "a\\b",
    ".",
    "..",
    ".hidden",
    "~tilde",
    "%2E%2E",
    "a%2Fb",
    "C:\\Windows",
    "line\nbreak",
    "ünïcødé 👋",
]


@pytest.fixture(params=STORAGES, ids=lambda cls: cls.__name__)
def storage_class(request: pytest.FixtureRequest) -> type[FileStorage]:
    return request.param  # type: ignore[no-any-return]


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def agno_file(directory: Path, data: dict[str, Any]) -> None:
    """A session file as agno 1.8.4 writes it: the dataclass as a dict, named by the raw id, no mode."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{data['session_id']}.json").write_text(json.dumps(data, indent=4))


# -- file names --------------------------------------------------------------------------------


def test_traversal_ids_stay_inside_the_directory(tmp_path: Path, storage_class: type[FileStorage]) -> None:
    directory = tmp_path / "sessions"
    storage = storage_class(directory)
    for session_id in TRAVERSAL_IDS:
        storage.upsert(AgentSession(session_id=session_id))
    assert files_under(tmp_path) == {"sessions"} | {f"sessions/{n}" for n in files_under(directory)}
    assert len(files_under(directory)) == len(TRAVERSAL_IDS)
    assert all("/" not in name and not name.startswith(".") for name in files_under(directory))


def test_traversal_ids_round_trip(tmp_path: Path, storage_class: type[FileStorage]) -> None:
    storage = storage_class(tmp_path)
    for session_id in TRAVERSAL_IDS:
        storage.upsert(AgentSession(session_id=session_id, agent_id=session_id))
    assert sorted(storage.get_all_session_ids()) == sorted(TRAVERSAL_IDS)
    for session_id in TRAVERSAL_IDS:
        read = storage.read(session_id)
        assert read is not None and read.session_id == session_id
        assert storage.get_all_session_ids(entity_id=session_id) == [session_id]


def test_ids_that_encode_alike_get_distinct_files() -> None:
    ids = ["a/b", "a%2Fb", "a%252Fb", ".x", "%2Ex", "x" * 255, "x" * 254 + "y", "é", "%C3%A9"]
    assert len({file_name(i, ".json") for i in ids}) == len(ids)


def test_a_long_id_gets_a_short_file_name(tmp_path: Path, storage_class: type[FileStorage]) -> None:
    storage = storage_class(tmp_path)
    session_id = "👋" * 255  # 3 060 bytes percent-encoded: far over a file name's 255
    storage.upsert(AgentSession(session_id=session_id))
    (name,) = files_under(tmp_path)
    assert len(name.encode()) <= 255
    read = storage.read(session_id)
    assert read is not None and read.session_id == session_id


def test_uuid_ids_keep_agnos_file_names(tmp_path: Path) -> None:
    JsonStorage(tmp_path).upsert(AgentSession(session_id="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"))
    assert files_under(tmp_path) == {"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0.json"}


def test_a_session_id_with_nul_is_refused(tmp_path: Path, storage_class: type[FileStorage]) -> None:
    storage = storage_class(tmp_path)
    with pytest.raises(InvalidSessionError, match="session_id"):
        storage.upsert({"session_id": "a\0b"})
    assert files_under(tmp_path) == set()


# -- agno's files and modes ------------------------------------------------------------------------


def test_a_file_agno_wrote_is_read_and_listed(tmp_path: Path) -> None:
    agno_file(
        tmp_path,
        {
            "session_id": "s1", "user_id": "u1", "team_session_id": None, "workflow_session_id": None,
            "memory": {"runs": []}, "session_data": None, "extra_data": None, "created_at": 1_700_000_000,
            "updated_at": 1_700_000_001, "agent_id": "a1", "agent_data": {"model": "gpt"},
        },
    )  # fmt: skip
    storage = JsonStorage(tmp_path, session_types="pydantic")
    read = storage.read("s1", user_id="u1")
    assert isinstance(read, AgentSession) and read.agent_data == {"model": "gpt"}
    assert storage.get_all_session_ids(entity_id="a1") == ["s1"]


def test_an_agno_team_file_is_read_by_team_mode_only(tmp_path: Path) -> None:
    agno_file(
        tmp_path,
        {
            "session_id": "t1", "team_session_id": None, "workflow_session_id": None, "team_id": "team-1",
            "user_id": None, "memory": None, "team_data": None, "session_data": None, "extra_data": None,
            "created_at": 1, "updated_at": 1,
        },
    )  # fmt: skip
    assert JsonStorage(tmp_path, mode="agent").read("t1") is None
    assert JsonStorage(tmp_path, mode="agent").get_all_session_ids() == []
    assert isinstance(JsonStorage(tmp_path, mode="team", session_types="pydantic").read("t1"), TeamSession)


def test_modes_share_a_directory_without_confusion(tmp_path: Path, storage_class: type[FileStorage]) -> None:
    agents, teams = storage_class(tmp_path, mode="agent"), storage_class(tmp_path, mode="team")
    agents.upsert(AgentSession(session_id="a1"))
    teams.upsert(TeamSession(session_id="t1"))
    assert agents.get_all_session_ids() == ["a1"]
    assert teams.get_all_session_ids() == ["t1"]
    assert agents.read("t1") is None and teams.read("a1") is None
    agents.delete_session("t1")
    assert teams.read("t1") is not None


def test_an_id_taken_by_another_mode_is_refused_and_kept(
    tmp_path: Path, storage_class: type[FileStorage]
) -> None:
    storage_class(tmp_path, mode="agent").upsert(AgentSession(session_id="s1", agent_id="a"))
    with pytest.raises(InvalidSessionError, match="taken by a agent session"):
        storage_class(tmp_path, mode="team").upsert(TeamSession(session_id="s1"))
    kept = storage_class(tmp_path, mode="agent", session_types="pydantic").read("s1")
    assert isinstance(kept, AgentSession) and kept.agent_id == "a"


def test_drop_removes_only_this_modes_session_files(tmp_path: Path, storage_class: type[FileStorage]) -> None:
    agents, teams = storage_class(tmp_path, mode="agent"), storage_class(tmp_path, mode="team")
    agents.upsert(AgentSession(session_id="a1"))
    agents.upsert(AgentSession(session_id="a2"))
    teams.upsert(TeamSession(session_id="t1"))
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / f"settings{storage_class.suffix}").write_text('{"theme": "dark"}\n')
    agents.drop()
    assert files_under(tmp_path) == {
        file_name("t1", storage_class.suffix),
        "notes.txt",
        f"settings{storage_class.suffix}",
    }
    assert teams.get_all_session_ids() == ["t1"]


def test_a_corrupt_session_file_is_an_error_not_a_missing_session(tmp_path: Path) -> None:
    (tmp_path / "s1.json").write_text('{"session_id": "s1", "memo')
    with pytest.raises(StorageError, match="not valid json"):
        JsonStorage(tmp_path).read("s1")


def test_yaml_keeps_strings_that_look_like_other_types(tmp_path: Path) -> None:
    state = {
        "a": "yes",
        "b": "null",
        "c": "1.0",
        "d": "0x10",
        "e": "~",
        "f": "2026-01-02",
        "g": "",
        "h": "1e3",
    }
    storage = YamlStorage(tmp_path)
    storage.upsert(AgentSession(session_id="s1", session_data={"state": state, "n": 10**20, "x": 0.1}))
    read = storage.read("s1")
    assert read is not None and read.session_data == {"state": state, "n": 10**20, "x": 0.1}


# -- crashes --------------------------------------------------------------------------------------

CHILD_PRELUDE = """
import os, sys, time
from agno_orm.nosql import {cls}
storage = {cls}(sys.argv[1])
"""


def spawn_writer(storage_class: type[FileStorage], directory: Path, body: str) -> subprocess.Popen[str]:
    code = CHILD_PRELUDE.format(cls=storage_class.__name__) + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )


def test_a_writer_killed_before_its_rename_leaves_the_previous_version(
    tmp_path: Path, storage_class: type[FileStorage]
) -> None:
    with spawn_writer(
        storage_class,
        tmp_path,
        """
        storage.upsert({"session_id": "s1", "session_data": {"version": 1}})
        def killed_here(*args, **kwargs):  # the new version is written and fsynced, not yet renamed
            print("renaming", flush=True)
            time.sleep(60)
        os.replace = killed_here
        storage.upsert({"session_id": "s1", "session_data": {"version": 2}})
        """,
    ) as child:
        assert child.stdout is not None and child.stdout.readline() == "renaming\n"
        child.send_signal(signal.SIGKILL)
    storage = storage_class(tmp_path)
    read = storage.read("s1")
    assert read is not None and read.session_data == {"version": 1}
    assert storage.get_all_session_ids() == ["s1"]  # the orphaned temporary file is not a session
    storage.upsert(AgentSession(session_id="s1", session_data={"version": 3}))  # the lock died with it
    read = storage.read("s1")
    assert read is not None and read.session_data == {"version": 3}


KILLED_INSIDE_THE_WRITE = """
import resource, signal
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores SIGXFSZ; by default it kills
# The kernel stops this process with SIGXFSZ when a write reaches byte {limit} of any file.
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))
"""


def test_a_writer_killed_inside_its_write_leaves_the_previous_version(
    tmp_path: Path, storage_class: type[FileStorage]
) -> None:
    """The writer is killed by the kernel in the middle of writing the new version: RLIMIT_FSIZE
    makes the write that reaches byte 500,000 of the 2 MB file raise SIGXFSZ, whatever the writing
    code (a temporary file, or the session file itself), so the kill lands inside the write every
    time (the exit signal and the half-written temporary file say so).

    Checked with atomic writes removed (`_write_atomically` replaced by `path.write_bytes(data)`,
    writing in place, in a copy of the tree): the test failed in all 10 of 10 runs for JSON and for
    YAML. JSON: the read raised StorageError "s1.json is not valid json" (the torn file); YAML: the
    torn file still parses, and the read returned version 2 with its blob cut short, silently.
    """
    limit = 500_000
    writes = (
        'storage.upsert({"session_id": "s1", "session_data": {"version": 1}})\n'
        + KILLED_INSIDE_THE_WRITE.format(limit=limit)
        + 'storage.upsert({"session_id": "s1", "session_data": {"version": 2, "blob": "x" * 2_000_000}})\n'
        + 'print("not killed", flush=True)\n'
    )
    with spawn_writer(storage_class, tmp_path, writes) as child:
        assert child.wait(timeout=60) == -signal.SIGXFSZ
        assert child.stdout is not None and child.stdout.read() == ""
    storage = storage_class(tmp_path)
    read = storage.read("s1")
    assert read is not None and read.session_data == {"version": 1}
    assert storage.get_all_session_ids() == ["s1"]
    (temporary,) = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert temporary.stat().st_size == limit  # the kill cut the new version's write in two
    storage.upsert(AgentSession(session_id="s1", session_data={"version": 3}))
    assert files_under(tmp_path) == {file_name("s1", storage_class.suffix)}  # the stale file is gone
    read = storage.read("s1")
    assert read is not None and read.session_data == {"version": 3}


def test_drop_removes_the_temporary_files_killed_writers_left(
    tmp_path: Path, storage_class: type[FileStorage]
) -> None:
    storage = storage_class(tmp_path)
    storage.upsert(AgentSession(session_id="s1"))
    stale = [f".s1{storage_class.suffix}.tmp", f".s2{storage_class.suffix}.k3j_x9.tmp"]  # ours, older
    for name in stale:
        (tmp_path / name).write_text("session_data: half a session")
    (tmp_path / ".notes.tmp").write_text("not ours")
    storage.drop()
    assert files_under(tmp_path) == {".notes.tmp"}


def test_a_writer_killed_at_any_moment_leaves_a_whole_session(
    tmp_path: Path, storage_class: type[FileStorage]
) -> None:
    """A soak beside the deterministic test above: kills at random moments, so it may rarely land in
    a write; it passes whenever the storage is right, whatever the moment."""
    with spawn_writer(
        storage_class,
        tmp_path,
        """
        for version in range(1_000_000):
            data = {"version": version, "blob": "x" * 2_000_000}
            storage.upsert({"session_id": "s1", "session_data": data})
            print(version, flush=True)
        """,
    ) as child:
        assert child.stdout is not None
        last = [int(child.stdout.readline()) for _ in range(3)][-1]
        time.sleep(random.uniform(0, 0.05))  # lands anywhere in a write of several milliseconds
        child.send_signal(signal.SIGKILL)
    read = storage_class(tmp_path).read("s1")
    assert read is not None and read.session_data is not None
    assert read.session_data["version"] >= last
    assert read.session_data["blob"] == "x" * 2_000_000


# -- a damaged directory ----------------------------------------------------------------------------


def test_a_directory_path_that_is_a_regular_file_is_refused_by_the_constructor(
    tmp_path: Path, storage_class: type[FileStorage]
) -> None:
    (tmp_path / "sessions").write_text("not a directory")
    with pytest.raises(InvalidInputError, match="is not a directory"):
        storage_class(tmp_path / "sessions")


def test_a_directory_replaced_by_a_regular_file_fails_every_call_with_a_storage_error(
    tmp_path: Path, storage_class: type[FileStorage]
) -> None:
    directory = tmp_path / "sessions"
    storage = storage_class(directory)
    storage.upsert(AgentSession(session_id="s1"))
    shutil.rmtree(directory)
    directory.write_text("not a directory")
    calls = [
        lambda: storage.read("s1"),
        lambda: storage.get_all_session_ids(),
        lambda: storage.get_recent_sessions(),
        lambda: storage.list_sessions(),
        lambda: storage.upsert(AgentSession(session_id="s2")),
        lambda: storage.delete_session("s1"),
        lambda: storage.drop(),
        lambda: storage.create(),
    ]
    for call in calls:
        with pytest.raises(StorageError):
            call()
    assert directory.read_text() == "not a directory"


@pytest.mark.parametrize("created_at", ["yesterday", "1700000000", [1], True, float("nan")])
def test_a_session_file_whose_created_at_is_no_time_fails_listings_loudly(
    tmp_path: Path, created_at: Any
) -> None:
    storage = JsonStorage(tmp_path, session_types="pydantic")
    storage.upsert(AgentSession(session_id="good"))
    agno_file(tmp_path, {"session_id": "bad", "memory": None, "created_at": created_at, "updated_at": 1})
    listings = [
        storage.get_all_session_ids,
        storage.get_all_sessions,
        storage.get_recent_sessions,
        storage.list_sessions,
        lambda: storage.read("bad"),
    ]
    for listing in listings:
        with pytest.raises(StorageError, match=r"bad\.json is corrupt: created_at is"):
            listing()
    assert storage.read("good") is not None
    with pytest.raises(StorageError, match="corrupt"):
        storage.delete_session("bad")  # a corrupt file is left for its owner to look at
    assert (tmp_path / "bad.json").exists()


# -- concurrent processes ------------------------------------------------------------------------


def write_sessions(directory: str, worker: int, count: int, report: str, start: Any) -> None:
    """One writer process: its own sessions, and the shared one on every turn, each time claiming
    another created_at; reports the created_at every upsert of the shared session returned."""
    storage = JsonStorage(directory)
    seen = set()
    start.wait()  # all writers begin together, so their first writes of the shared session race
    for i in range(count):
        shared = AgentSession(session_id="shared", created_at=1000 + worker, session_data={"turn": i})
        seen.add(storage.upsert(shared).created_at)
        storage.upsert(AgentSession(session_id=f"w{worker}-{i}", user_id=f"u{worker}"))
    Path(report).write_text(json.dumps(sorted(seen)))


@pytest.fixture(scope="module")
def concurrent_writers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int, set[int]]:
    """4 processes writing 15 sessions each, and one shared session on every turn, in one directory."""
    workers, count = 4, 15
    tmp_path = tmp_path_factory.mktemp("concurrent")
    directory, reports = tmp_path / "sessions", tmp_path / "reports"
    reports.mkdir()
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(workers)
    processes = [
        context.Process(target=write_sessions, args=(str(directory), w, count, str(reports / str(w)), start))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    seen = {created for report in reports.iterdir() for created in json.loads(report.read_text())}
    return directory, workers, count, seen


def test_concurrent_processes_lose_no_session(concurrent_writers: tuple[Path, int, int, set[int]]) -> None:
    directory, workers, count, _ = concurrent_writers
    storage = JsonStorage(directory)
    expected = {f"w{w}-{i}" for w in range(workers) for i in range(count)} | {"shared"}
    assert set(storage.get_all_session_ids()) == expected
    assert all(len(storage.get_all_session_ids(user_id=f"u{w}")) == count for w in range(workers))
    shared = storage.read("shared")
    assert shared is not None and shared.session_data == {"turn": count - 1}  # whole, never torn
    assert not [name for name in os.listdir(directory) if name.startswith(".")]  # no temporary file left


def test_concurrent_processes_agree_on_created_at(
    concurrent_writers: tuple[Path, int, int, set[int]],
) -> None:
    directory, _, _, seen = concurrent_writers
    shared = JsonStorage(directory).read("shared")
    # Read-check-write under the lock: the first writer's created_at, seen by every later upsert.
    assert shared is not None and seen == {shared.created_at}
