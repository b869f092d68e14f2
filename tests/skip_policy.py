"""The one policy for a backend that cannot run here, and the summary naming the engine behind each.

A test belongs to the backends of its markers (`-m postgres`) and of the server fixtures it uses
(`SERVER_FIXTURES`). Before it runs, its backends' client libraries are imported (`BACKENDS`); a
missing library or server is `unavailable()`: the test is skipped with the reason, or, under
CI=true, fails. Under that, as a net, a test of a backend that is skipped for any other reason
fails under CI too (a stray `pytest.importorskip`, say), except `not_for_this_engine()`: a test of
one engine only (a real SingleStore's DDL) on a run that has the other (the MariaDB stand-in).

At the end of the run, one line per backend names the engine its tests ran on (a real server, or
which stand-in) and counts their outcomes; a backend whose tests were skipped gets a loud line
with the reason and what to set or install.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest

__all__ = [
    "BACKENDS",
    "NotForThisEngine",
    "backends_of",
    "check_clients",
    "client_module",
    "in_ci",
    "judge",
    "judge_collection",
    "not_for_this_engine",
    "record_engine",
    "summary_lines",
    "unavailable",
]


@dataclass(frozen=True)
class Backend:
    label: str
    clients: tuple[tuple[str, str], ...] = ()
    """(module, pip package) of each client library the backend's tests need."""
    server: str | None = None
    """The server kind whose engine the backend's tests run on (several backends share one)."""
    hint: str = "pip install -e '.[dev]'"


_GREENLET = ("greenlet", "greenlet")
_POSTGRES_HINT = "set AGNO_ORM_TEST_POSTGRES_URL or install postgresql (apt-get install -y postgresql)"
_MARIADB_HINT = "set AGNO_ORM_TEST_MYSQL_URL or install mariadb-server (apt-get install -y mariadb-server)"

BACKENDS = {
    "sqlite": Backend("SQLite", server="sqlite"),
    "async_sqlite": Backend("SQLite (async)", (("aiosqlite", "aiosqlite"), _GREENLET), "sqlite"),
    "postgres": Backend("PostgreSQL", (("psycopg", "psycopg"),), "postgres", _POSTGRES_HINT),
    "async_postgres": Backend(
        "PostgreSQL (async)", (("psycopg", "psycopg"), _GREENLET), "postgres", _POSTGRES_HINT
    ),
    "mysql": Backend("MariaDB/MySQL", (("pymysql", "pymysql"),), "mysql", _MARIADB_HINT),
    "async_mysql": Backend(
        "MariaDB/MySQL (async)",
        (("aiomysql", "aiomysql"), ("pymysql", "pymysql"), _GREENLET),
        "mysql",
        _MARIADB_HINT,
    ),
    "singlestore": Backend(
        "SingleStore",
        (("pymysql", "pymysql"), ("sqlalchemy_singlestoredb", "sqlalchemy-singlestoredb")),
        "singlestore",
        "set AGNO_ORM_TEST_SINGLESTORE_URL, or have MariaDB for the stand-in (" + _MARIADB_HINT + ")",
    ),
    "redis": Backend(
        "Redis",
        (("redis", "redis"),),
        "redis",
        "set AGNO_ORM_TEST_REDIS_URL or install redis-server (apt-get install -y redis-server)",
    ),
    "mongodb": Backend(
        "MongoDB",
        (("pymongo", "pymongo"),),
        "mongodb",
        "set AGNO_ORM_TEST_MONGODB_URL, or pip install mongomock-ng for the in-process stand-in",
    ),
    "dynamodb": Backend(
        "DynamoDB",
        (("boto3", "boto3"),),
        "dynamodb",
        "set AGNO_ORM_TEST_DYNAMODB_URL, or pip install 'moto[dynamodb,server]' for the stand-in",
    ),
    "json": Backend("JSON files", server="json"),
    "yaml": Backend("YAML files", (("yaml", "PyYAML"),), "yaml"),
}

SERVER_FIXTURES = {
    "postgres_url": "postgres",
    "mysql_url": "mysql",
    "singlestore_url": "singlestore",
    "redis_url": "redis",
    "dynamodb_endpoint": "dynamodb",
    "mongodb_client": "mongodb",
}
"""A test using one of these fixtures (directly or through another) is a test of that backend."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """This test's backend (or a server or library it needs) cannot be had: skip, or fail under CI."""
    if in_ci():
        pytest.fail(f"CI=true and a backend is unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


class NotForThisEngine(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """A skip that is no hole: the backend ran, on an engine this one test is not about."""

    __module__ = "builtins"  # reported as "NotForThisEngine: <reason>", as pytest's own Skipped is


def not_for_this_engine(reason: str) -> NoReturn:
    """Skip a test written for another engine of its backend (a real server vs its stand-in); allowed
    under CI, and counted apart in the summary."""
    raise NotForThisEngine(reason, _use_item_location=True)  # reported at the test, not here


def backends_of(item: pytest.Item) -> list[str]:
    names = {mark.name for mark in item.iter_markers() if mark.name in BACKENDS}
    names |= {SERVER_FIXTURES[f] for f in getattr(item, "fixturenames", ()) if f in SERVER_FIXTURES}
    return sorted(names)


@functools.cache
def _missing_client(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return str(exc)
    return None


def check_clients(item: pytest.Item) -> None:
    """`unavailable()` if a client library of one of the test's backends cannot be imported."""
    for name in backends_of(item):
        for module, package in BACKENDS[name].clients:
            if error := _missing_client(module):
                unavailable(
                    f"{BACKENDS[name].label}: {package} is not installed ({error}); pip install -e '.[dev]'"
                )


# -- what ran where ------------------------------------------------------------------------------

_ENGINES = pytest.StashKey[dict[str, str]]()
_OUTCOMES = pytest.StashKey["Outcomes"]()


def record_engine(config: pytest.Config, server: str, description: str) -> None:
    """Name the engine the tests of `server`'s backends run on, for the summary."""
    config.stash.setdefault(_ENGINES, {})[server] = description


@dataclass
class Outcomes:
    by_test: dict[str, tuple[list[str], str, str]] = field(default_factory=dict)
    """nodeid -> (backends, outcome, skip reason)."""

    def add(self, backends: list[str], report: pytest.TestReport, outcome: str, reason: str) -> None:
        """Record one phase's outcome; a test's is its worst phase's (a failed teardown fails it)."""
        _, before, before_reason = self.by_test.get(report.nodeid, (backends, "passed", ""))
        if _RANK[outcome] >= _RANK[before]:
            before, before_reason = outcome, reason
        self.by_test[report.nodeid] = (backends, before, before_reason)

    def per_backend(self) -> Iterator[tuple[str, Counter[str], str]]:
        for name in BACKENDS:
            counts: Counter[str] = Counter()
            reason = ""
            for backends, outcome, why in self.by_test.values():
                if name in backends:
                    counts[outcome] += 1
                    reason = reason or (why if outcome in ("skipped", "failed") else "")
            if counts:
                yield name, counts, reason


_RANK = {"passed": 0, "xfailed": 1, "not for this engine": 2, "skipped": 3, "failed": 4}


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr or "")


def judge(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Under CI fail a skipped test of a backend; record the outcome for the summary."""
    backends = backends_of(item)
    outcome, reason = report.outcome, ""
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else outcome
    elif report.skipped:
        reason = _skip_reason(report)
        if call.excinfo is not None and isinstance(call.excinfo.value, NotForThisEngine):
            outcome = "not for this engine"
        elif backends and in_ci():
            report.outcome = "failed"
            report.longrepr = (
                f"CI=true: a test of {', '.join(backends)} was skipped, which fails under CI: {reason}"
            )
            outcome = "failed"
    elif report.failed and call.excinfo is not None and "a backend is unavailable" in str(call.excinfo.value):
        reason = str(call.excinfo.value)
    if backends:
        item.config.stash.setdefault(_OUTCOMES, Outcomes()).add(backends, report, outcome, reason)


_UNCOLLECTED = pytest.StashKey[list[tuple[str, str, str]]]()


def judge_collection(config: pytest.Config, report: pytest.CollectReport) -> None:
    """A test module that cannot be imported for want of a backend's client library: outside CI
    skipped and named in the summary (the other tests still run); under CI left the error it is."""
    if not report.failed or in_ci():
        return
    text = str(report.longrepr)
    for name, backend in BACKENDS.items():
        for module, package in backend.clients:
            if re.search(rf"(No module named|import of) '?{module}\b", text):
                reason = f"{package} is not installed: {report.nodeid} was not collected"
                config.stash.setdefault(_UNCOLLECTED, []).append((name, report.nodeid, reason))
                report.outcome = "skipped"
                report.longrepr = (report.nodeid, 0, f"Skipped: {reason}")


def summary_lines(config: pytest.Config) -> Iterator[tuple[str, bool]]:
    """One line per backend whose tests were selected: (the line, whether it is a warning)."""
    engines = {**_files_and_sqlite(), **config.stash.get(_ENGINES, {})}
    for name, _, reason in config.stash.get(_UNCOLLECTED, []):
        yield f"{BACKENDS[name].label} ({name}): {reason}; {BACKENDS[name].hint}", True
    outcomes = config.stash.get(_OUTCOMES, None)
    if outcomes is None:
        return
    for name, counts, reason in outcomes.per_backend():
        backend = BACKENDS[name]
        ranked = sorted(counts.items(), key=lambda count: _RANK[count[0]])
        counted = ", ".join(f"{n} {outcome}" for outcome, n in ranked)
        trouble = bool(counts["skipped"] or counts["failed"])
        engine = engines.get(backend.server or "")
        yield (f"{name}[{engine}]: {counted}" if engine else f"{name}: {counted}"), trouble
        if reason:  # tests of this backend did not run: say so loudly, with why and what to do
            what, n = ("skipped", counts["skipped"]) if counts["skipped"] else ("failed", counts["failed"])
            yield f"{backend.label} ({name}): {n} tests {what} — {_short(reason)}; {backend.hint}", True


def _files_and_sqlite() -> dict[str, str]:
    """The engines that need no server: this interpreter's SQLite and the file system."""
    engines = {"sqlite": f"SQLite {sqlite3.sqlite_version}, a database file per test", "json": "files"}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        engines["yaml"] = f"files, PyYAML {importlib.metadata.version('PyYAML')}"
    return engines


def _short(reason: str, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", reason).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _MissingModule:
    """Stands for a client library that is not installed; any use is `unavailable()`."""

    def __init__(self, name: str, error: str) -> None:
        self._name, self._error = name, error

    def __getattr__(self, attribute: str) -> NoReturn:
        if attribute.startswith("_"):  # pytest's collection looks for __test__ and its own markers
            raise AttributeError(attribute)
        unavailable(f"{self._name} is not installed: {self._error}")


def client_module(name: str) -> Any:
    """The client library `name` for a test module's own use, imported without skipping the module
    when it is missing: the module's tests then meet `check_clients` (their backend marker) first."""
    if error := _missing_client(name):
        return _MissingModule(name, error)
    return importlib.import_module(name)
