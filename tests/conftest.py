"""Fixtures shared by all tests: one `backend` parameter, storages on fresh tables, real servers.

A server is started only when a selected test needs its backend (servers.py says how it is
found or started). Where a backend's server or client library cannot be had, its tests are
skipped with the reason, except under CI=true, where that fails the run: a backend is never
silently skipped there (skip_policy.py, the one policy). The run ends with one line per backend
naming the engine it ran on: a real server, or which stand-in.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hypothesis
import pytest
from sqlalchemy import Engine, NullPool, create_engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agno_orm import Storage
from agno_orm.sql.engines import asyncio_url
from tests import backends, servers
from tests.async_facade import LoopThread
from tests.atomic_mongomock import serialized
from tests.skip_policy import (
    check_clients,
    in_ci,
    judge,
    judge_collection,
    record_engine,
    summary_lines,
    unavailable,
)

__all__ = ["BACKENDS", "StorageFactory", "backend_params", "unavailable", "unique_table_name"]

StorageFactory = Callable[..., Storage]

BACKEND_MODULES = {
    module.NAME: module
    for module in (
        importlib.import_module(f"tests.backends.{info.name}")
        for info in pkgutil.iter_modules(backends.__path__)
    )
}


def backend_params(*, with_async: bool) -> list[Any]:
    """The backends as pytest parameters, each marked with its name; the async storages' (modules
    with ASYNC = True) only `with_async`: they run the contract suite (tests/contract/conftest.py)."""
    return [
        pytest.param(name, marks=getattr(pytest.mark, name))
        for name, module in sorted(BACKEND_MODULES.items())
        if with_async or not getattr(module, "ASYNC", False)
    ]


BACKENDS = backend_params(with_async=False)


HYPOTHESIS_EXAMPLES = {"default": 12, "ci": 200}  # AGNO_ORM_HYPOTHESIS_EXAMPLES overrides either


@pytest.hookimpl(tryfirst=True)  # before Hypothesis's plugin, which reads --hypothesis-seed
def pytest_configure(config: pytest.Config) -> None:
    for name in BACKEND_MODULES:
        config.addinivalue_line("markers", f"{name}: runs on the {name} backend")
    for profile, examples in HYPOTHESIS_EXAMPLES.items():
        examples = int(os.environ.get("AGNO_ORM_HYPOTHESIS_EXAMPLES", examples))
        hypothesis.settings.register_profile(profile, max_examples=examples, print_blob=True)
    hypothesis.settings.load_profile("ci" if in_ci() else "default")  # --hypothesis-profile wins
    if config.getoption("hypothesis_seed") is None:  # a seed of our own, to print: the run is repeatable
        config.option.hypothesis_seed = str(random.getrandbits(32))


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.getoption("hypothesis_seed")
    return f"hypothesis: rerun the same examples with --hypothesis-seed={seed}"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    check_clients(item)  # before any fixture: a missing library is named as such, not as an ImportError


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    report = yield
    judge_collection(collector.config, report)  # type: ignore[arg-type]
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    judge(item, call, report)  # type: ignore[arg-type]
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    failed = terminalreporter.stats.get("failed", [])
    if any("hypothesis" in report.keywords for report in failed):
        seed = terminalreporter.config.getoption("hypothesis_seed")
        terminalreporter.section("hypothesis")
        terminalreporter.line(f"property tests failed: rerun them with --hypothesis-seed={seed}", red=True)
    lines = list(summary_lines(terminalreporter.config))
    if lines:
        terminalreporter.section("backends, and the engine each ran on")
        for line, warning in lines:
            terminalreporter.line(line, red=warning, bold=warning)


def sql_server(url: str) -> str:
    """ "<product> <version> at <host>:<port>" of the server at `url`."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            dialect = connection.dialect
            version = ".".join(str(n) for n in dialect.server_version_info or ())
    finally:
        engine.dispose()
    product = "PostgreSQL" if dialect.name == "postgresql" else "MariaDB" if dialect.is_mariadb else "MySQL"
    return f"{product} {version} at {engine.url.host}:{engine.url.port}"


def unique_table_name(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def postgres_url(pytestconfig: pytest.Config) -> str:
    try:
        url = servers.postgres_url()
    except servers.ServerUnavailable as exc:
        unavailable(f"PostgreSQL: {exc}")
    record_engine(pytestconfig, "postgres", f"real {sql_server(url)}, {servers.how_found('PostgreSQL')}")
    return url


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> str:
    try:
        url = servers.redis_url()
    except servers.ServerUnavailable as exc:
        unavailable(f"Redis: {exc}")
    import redis

    with redis.Redis.from_url(url) as client:
        version = client.info("server")["redis_version"]
    address = urlsplit(url).netloc.rpartition("@")[2]
    record_engine(pytestconfig, "redis", f"real Redis {version} at {address}, {servers.how_found('Redis')}")
    return url


@pytest.fixture(scope="session")
def dynamodb_endpoint(pytestconfig: pytest.Config) -> str:
    """Endpoint URL of a DynamoDB-compatible server on loopback (moto's server unless one is given)."""
    try:
        url = servers.dynamodb_url()
    except servers.ServerUnavailable as exc:
        unavailable(f"DynamoDB: {exc}")
    how = servers.how_found("DynamoDB")
    if how.startswith("from "):
        record_engine(pytestconfig, "dynamodb", f"DynamoDB-compatible server at {url}, {how}")
    else:
        moto = importlib.metadata.version("moto")
        record_engine(pytestconfig, "dynamodb", f"stand-in: moto {moto} server at {url} (no DynamoDB here)")
    return url


@pytest.fixture(scope="session")
def dynamodb_client(dynamodb_endpoint: str) -> Any:
    """One boto3 client for the suite (making one takes a tenth of a second); moto takes any key."""
    import boto3

    credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    return boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1", **credentials)


@pytest.fixture(scope="session")
def mongodb_client(pytestconfig: pytest.Config) -> Iterator[Any]:
    """A real MongoDB server's client when one can be had (servers.mongodb_url), else the in-process
    pymongo-compatible engine mongomock-ng: no MongoDB server can run on this machine."""
    try:
        url = servers.mongodb_url()
    except servers.ServerUnavailable as exc:
        try:
            mongomock = importlib.import_module("mongomock_ng")
        except ImportError as missing:
            unavailable(f"MongoDB: mongomock-ng is not installed (the in-process stand-in: {missing}); {exc}")
        version = importlib.metadata.version("mongomock-ng")
        record_engine(
            pytestconfig, "mongodb", f"stand-in: mongomock-ng {version}, in-process (no MongoDB server)"
        )
        yield serialized(mongomock.MongoClient())  # each operation atomic, as a server's are
        return
    import pymongo

    client = pymongo.MongoClient(url)
    version = client.server_info()["version"]
    record_engine(pytestconfig, "mongodb", f"real MongoDB {version}, {servers.how_found('MongoDB')}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def mysql_url(pytestconfig: pytest.Config) -> str:
    """A MariaDB server here (servers.mariadb_url), or the MySQL 8 of AGNO_ORM_TEST_MYSQL_URL."""
    try:
        url = servers.mariadb_url()
    except servers.ServerUnavailable as exc:
        unavailable(f"MariaDB/MySQL: {exc}")
    record_engine(pytestconfig, "mysql", f"real {sql_server(url)}, {servers.how_found('MariaDB/MySQL')}")
    return url


@pytest.fixture(scope="session")
def mysql_engine(mysql_url: str) -> Iterator[Engine]:
    engine = create_engine(mysql_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def singlestore_url(pytestconfig: pytest.Config) -> str:
    """A real SingleStore when one is given or Docker answers, else MariaDB through the singlestoredb
    dialect (servers.singlestore_url says which): no SingleStore server can run on this machine."""
    try:
        url = servers.singlestore_url()
    except servers.ServerUnavailable as exc:
        unavailable(f"SingleStore: {exc}")
    how = servers.how_found("SingleStore")
    if how == "stand-in":
        server = sql_server(servers.mariadb_url())
        engine = f"stand-in: {server} through the singlestoredb dialect (no SingleStore server)"
    else:
        engine = f"real SingleStore at {make_url(url).host}:{make_url(url).port}, {how}"
    record_engine(pytestconfig, "singlestore", engine)
    return url


@pytest.fixture(scope="session")
def singlestore_engine(singlestore_url: str) -> Iterator[Engine]:
    engine = create_engine(singlestore_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def event_loop_thread() -> Iterator[LoopThread]:
    """The event loop the async storages of the tests run on (see tests/async_facade.py)."""
    loop = LoopThread()
    yield loop
    loop.close()


def async_engine(loop: LoopThread, url: str, **options: Any) -> Iterator[AsyncEngine]:
    engine = create_async_engine(asyncio_url(make_url(url)), **options)
    yield engine
    loop.run(engine.dispose)


@pytest.fixture(scope="session")
def async_postgres_engine(event_loop_thread: LoopThread, postgres_url: str) -> Iterator[AsyncEngine]:
    yield from async_engine(event_loop_thread, postgres_url)


@pytest.fixture(scope="session")
def async_mysql_engine(event_loop_thread: LoopThread, mysql_url: str) -> Iterator[AsyncEngine]:
    yield from async_engine(event_loop_thread, mysql_url)


@pytest.fixture
def async_sqlite_engine(event_loop_thread: LoopThread, sqlite_url: str) -> Iterator[AsyncEngine]:
    yield from async_engine(event_loop_thread, sqlite_url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sessions.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_storage(request: pytest.FixtureRequest, backend: str) -> Iterator[StorageFactory]:
    """Builds storages of `backend` on fresh tables (same table for the same `table_name`).

    They return our pydantic sessions (`session_types="pydantic"`): the contract asserts those
    types, whether or not agno is installed; tests/agno covers agno's.
    """
    created: list[Storage] = []
    default_table = unique_table_name()
    # Fixtures a backend names are set up now, so they are torn down after the storages are dropped.
    for name in getattr(BACKEND_MODULES[backend], "FIXTURES", ()):
        request.getfixturevalue(name)

    def make(*, mode: str = "agent", table_name: str | None = None, **options: Any) -> Storage:
        options.setdefault("session_types", "pydantic")
        storage = BACKEND_MODULES[backend].make(request, table_name or default_table, mode, **options)
        created.append(storage)
        return storage

    yield make
    for storage in created:
        storage.drop()


@pytest.fixture
def storage(make_storage: StorageFactory) -> Storage:
    return make_storage()
