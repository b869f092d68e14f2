"""The suite's own policy (tests/skip_policy.py): a backend that cannot run fails the run under CI,
and outside CI is named at the end with the reason and what to do; the engine behind each backend
is named in the summary. Each test runs pytest in a subprocess with a library hidden or a server
URL pointing at a port where nothing listens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTRACT = "tests/contract/test_listing_contract.py"
NOWHERE = "127.0.0.1:9"  # the discard port: nothing listens there on a test machine


def run_pytest(
    *args: str,
    ci: bool,
    hide: tuple[str, ...] | list[str] = (),
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
) -> subprocess.CompletedProcess[str]:
    """pytest run in a fresh interpreter, with the modules `hide` made unimportable."""
    hidden = "".join(f"sys.modules[{module!r}] = None; " for module in hide)
    code = f"import sys; {hidden}import pytest; sys.exit(pytest.main(sys.argv[1:]))"
    environment = {k: v for k, v in os.environ.items() if k != "CI"} | (env or {})
    if ci:
        environment["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-c", code, "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def summary_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "backends, and the engine each ran on" in result.stdout, result.stdout + result.stderr
    return result.stdout.split("backends, and the engine each ran on")[1].splitlines()


def loud_line(summary: list[str], label: str, backend: str) -> str:
    (line,) = [line for line in summary if line.startswith(f"{label} ({backend}): ") and " tests " in line]
    return line


# each backend's client library (the one its tests cannot do without), hidden all at once
CLIENTS = {
    "async_sqlite": ("SQLite (async)", "aiosqlite"),
    "postgres": ("PostgreSQL", "psycopg"),
    "async_postgres": ("PostgreSQL (async)", "psycopg"),
    "mysql": ("MariaDB/MySQL", "pymysql"),
    "async_mysql": ("MariaDB/MySQL (async)", "pymysql"),
    "singlestore": ("SingleStore", "pymysql"),
    "redis": ("Redis", "redis"),
    "mongodb": ("MongoDB", "mongomock-ng"),
    "dynamodb": ("DynamoDB", "boto3"),
    "yaml": ("YAML files", "PyYAML"),
}
NOSQL = ["tests/nosql/test_redis.py", "tests/nosql/test_mongodb.py", "tests/nosql/test_dynamodb.py"]


def test_outside_ci_each_backend_missing_its_client_library_is_named_at_the_end() -> None:
    hidden = ["aiosqlite", "psycopg", "pymysql", "redis", "mongomock_ng", "boto3", "yaml"]
    result = run_pytest(CONTRACT, *NOSQL, "tests/sql/test_mysql_family.py", ci=False, hide=hidden)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = summary_of(result)
    for backend, (label, package) in CLIENTS.items():
        line = loud_line(summary, label, backend)
        assert " tests skipped — " in line and "is not installed" in line and package in line, line
        assert "pip install" in line or "set AGNO_ORM_TEST_" in line, line
    uncollected = (
        "MariaDB/MySQL (mysql): pymysql is not installed: tests/sql/test_mysql_family.py was not collected"
    )
    assert any(line.startswith(uncollected) for line in summary), summary
    assert any(line.startswith("sqlite[SQLite ") for line in summary)  # what needs no client still ran


@pytest.mark.parametrize(
    ("module", "backend", "paths"),
    [
        pytest.param("boto3", "dynamodb", [CONTRACT, "tests/nosql/test_dynamodb.py"], id="boto3"),
        pytest.param("mongomock_ng", "mongodb", [CONTRACT, "tests/nosql/test_mongodb.py"], id="mongomock-ng"),
        pytest.param("yaml", "yaml", [CONTRACT], id="PyYAML"),
        pytest.param("pymysql", "mysql", [CONTRACT, "tests/sql/test_mysql_family.py"], id="pymysql"),
    ],
)
def test_under_ci_a_missing_client_library_fails_the_run(module: str, backend: str, paths: list[str]) -> None:
    result = run_pytest(*paths, "-m", backend, ci=True, hide=[module])
    assert result.returncode in (1, 2), result.stdout + result.stderr  # 2: a module failed to import
    assert "skipped" not in result.stdout.splitlines()[-1], result.stdout


# a server's URL variable, pointing nowhere; the backends on that server; their label
NO_SERVER = {
    "AGNO_ORM_TEST_POSTGRES_URL": (f"postgresql+psycopg://postgres@{NOWHERE}/test", "PostgreSQL", "postgres"),
    "AGNO_ORM_TEST_MYSQL_URL": (f"mysql+pymysql://root@{NOWHERE}/test", "MariaDB/MySQL", "mysql"),
    "AGNO_ORM_TEST_REDIS_URL": (f"redis://{NOWHERE}/0", "Redis", "redis"),
    "AGNO_ORM_TEST_DYNAMODB_URL": (f"http://{NOWHERE}", "DynamoDB", "dynamodb"),
}


def test_outside_ci_each_unreachable_server_is_named_at_the_end() -> None:
    urls = {variable: url for variable, (url, _, _) in NO_SERVER.items()}
    result = run_pytest(CONTRACT, ci=False, env=urls)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = summary_of(result)
    for variable, (_, label, backend) in NO_SERVER.items():
        line = loud_line(summary, label, backend)
        assert " tests skipped — " in line and f"{variable}" in line, line
        assert "is set but does not answer" in line and f"set {variable}" in line, line


def test_under_ci_an_unreachable_server_fails_the_run() -> None:
    url = f"postgresql+psycopg://postgres@{NOWHERE}/test"
    result = run_pytest(CONTRACT, "-m", "postgres", ci=True, env={"AGNO_ORM_TEST_POSTGRES_URL": url})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CI=true and a backend is unavailable: PostgreSQL: AGNO_ORM_TEST_POSTGRES_URL=" in result.stdout
    assert re.search(r"^PostgreSQL \(postgres\): \d+ tests failed — ", result.stdout, re.MULTILINE)


STRAY_SKIPS = """
import pytest
from tests.skip_policy import not_for_this_engine

@pytest.mark.redis
def test_a_backend_test_skipping_itself():
    pytest.importorskip("no_such_client_library")

@pytest.mark.singlestore
def test_a_test_of_another_engine():
    not_for_this_engine("needs a real SingleStore")

def test_a_test_of_no_backend():
    pytest.skip("has nothing to do with a backend")
"""


def test_under_ci_any_skip_of_a_backend_test_fails_but_one_meant_for_another_engine(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_configure, pytest_make_collect_report, pytest_runtest_makereport\n"
        "from tests.conftest import pytest_runtest_setup, pytest_terminal_summary\n"
    )
    (tmp_path / "test_stray.py").write_text(STRAY_SKIPS)
    env = {"PYTHONPATH": str(REPO)}
    result = run_pytest("-rA", "-p", "no:randomly", str(tmp_path), ci=True, env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 2 skipped" in result.stdout
    assert "CI=true: a test of redis was skipped, which fails under CI" in result.stdout
    assert re.search(r"^singlestore(\[.*\])?: 1 not for this engine$", result.stdout, re.MULTILINE)
    assert run_pytest(str(tmp_path), ci=False, env=env, cwd=tmp_path).returncode == 0


def test_the_summary_names_the_engine_behind_every_backend() -> None:
    result = run_pytest(CONTRACT, "-k", "test_list_sessions_pages", ci=True)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.split("backends, and the engine each ran on")[1]
    for expected in [
        "sqlite[SQLite ",
        "postgres[real PostgreSQL ",
        "async_postgres[real PostgreSQL ",
        "mysql[real MariaDB ",
        "singlestore[stand-in: MariaDB ",
        "mongodb[stand-in: mongomock-ng ",
        "dynamodb[stand-in: moto ",
        "redis[real Redis ",
        "json[files]",
        "yaml[files, PyYAML ",
    ]:
        assert f"\n{expected}" in summary, summary
