"""Real PostgreSQL, MariaDB and Redis servers for the test suite (and SingleStore, or its stand-in).

Each ``*_url()`` function returns the URL of a server that answers, found in this order:

1. the URL in ``AGNO_ORM_TEST_<KIND>_URL``, if set; it must answer, there is no fallback;
2. a server already listening on the default local port (PostgreSQL and MariaDB: database ``test``,
   created if missing);
3. a testcontainers container, if that package is installed and a Docker engine answers;
4. a private server started from the locally installed binaries in a temporary directory,
   stopped and deleted when the interpreter exits.

``AGNO_ORM_TEST_PRIVATE_SERVERS=1`` skips steps 2 and 3, which proves that a fresh machine
(one with the server packages but nothing running) can run the suite.

When none of these works, the function raises ``ServerUnavailable`` with every step's reason.
Outcomes, failures included, are cached: a server starts at most once per process, and a failed
start is not retried by every test.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import glob
import importlib
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

__all__ = [
    "PrivateMariaDB",
    "PrivatePostgres",
    "PrivateRedis",
    "PrivateServer",
    "ServerUnavailable",
    "dynamodb_url",
    "how_found",
    "mariadb_url",
    "mongodb_url",
    "postgres_url",
    "redis_url",
    "singlestore_url",
]

POSTGRES_URL_ENV = "AGNO_ORM_TEST_POSTGRES_URL"
MYSQL_URL_ENV = "AGNO_ORM_TEST_MYSQL_URL"
REDIS_URL_ENV = "AGNO_ORM_TEST_REDIS_URL"
DYNAMODB_URL_ENV = "AGNO_ORM_TEST_DYNAMODB_URL"
MONGODB_URL_ENV = "AGNO_ORM_TEST_MONGODB_URL"
PRIVATE_SERVERS_ENV = "AGNO_ORM_TEST_PRIVATE_SERVERS"

START_TIMEOUT = 30.0  # seconds a private server may take to answer


class ServerUnavailable(RuntimeError):
    """No server of the requested kind was configured, found, or could be started."""


def _once(find: Callable[[], str]) -> Callable[[], str]:
    """Cache the outcome of ``find`` for the process, failures included."""

    @functools.cache
    def outcome() -> str | ServerUnavailable:
        try:
            return find()
        except ServerUnavailable as exc:
            return exc

    @functools.wraps(find)
    def url() -> str:
        result = outcome()
        if isinstance(result, ServerUnavailable):
            raise ServerUnavailable(str(result))  # a fresh instance: tracebacks don't pile up
        return result

    return url


_FOUND: dict[str, str] = {}  # what -> how its server was found: see how_found()
_HOW = {
    "running": "already running here",
    "container": "in a testcontainers container",
    "private": "a private server started for this run",
    "stand_in": "stand-in",
}


def how_found(what: str) -> str:
    """How the server of ``what`` ("PostgreSQL", "SingleStore"...) was found: "from <variable>",
    "already running here", "in a testcontainers container", "a private server started for this
    run" or "stand-in"; "" if it was not asked for or not found."""
    return _FOUND.get(what, "")


def _given(what: str, variable: str, url: str) -> str:
    _FOUND[what] = f"from {variable}"
    return url


def _first(what: str, *attempts: Callable[[], str]) -> str:
    """Return the first attempt that succeeds; otherwise fail with every attempt's reason."""
    reasons = []
    for attempt in attempts:
        try:
            url = attempt()
        except ServerUnavailable as exc:
            reasons.append(f"- {exc}")
        else:
            _FOUND[what] = next(how for end, how in _HOW.items() if attempt.__name__.endswith(end))
            return url
    raise ServerUnavailable(f"no {what} server for the tests:\n" + "\n".join(reasons))


# --- PostgreSQL -----------------------------------------------------------------------------


@_once
def postgres_url() -> str:
    """SQLAlchemy URL (``postgresql+psycopg://``) of a PostgreSQL server with a database ``test``."""
    if url := os.environ.get(POSTGRES_URL_ENV):
        return _given("PostgreSQL", POSTGRES_URL_ENV, _verified_sql_url(POSTGRES_URL_ENV, url))
    return _first("PostgreSQL", _postgres_running, _postgres_container, _postgres_private)


def _postgres_running() -> str:
    _skip_shared_servers("127.0.0.1:5432")
    if error := _postgres_prepare(5432):
        raise ServerUnavailable(f"127.0.0.1:5432 (user postgres, trust auth): {error}")
    return "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_container() -> str:
    container = _start_container(
        "testcontainers.postgres",
        "PostgresContainer",
        "postgres:16-alpine",
        username="postgres",
        password="test",
        dbname="test",
        driver="psycopg",
    )
    return str(container.get_connection_url())


def _postgres_private() -> str:
    server = PrivatePostgres()
    server.start()
    return server.url


class PrivateServer:
    """A server of our own in a temporary directory, which a test may stop and start again (the
    machine's shared servers are never stopped). Stopped at exit; its directory is then deleted."""

    def __init__(self, kind: str, owner: str | None) -> None:
        self.owner = owner
        self.base = _private_dir(kind, owner)
        self.port = _free_port()
        self.log = self.base / f"{kind}.log"
        atexit.register(self.stop)  # after _private_dir's clean-up was registered: runs before it

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        """Start the server and wait until it answers; ServerUnavailable if it does not."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server cleanly, if it runs."""
        raise NotImplementedError

    def restart(self) -> None:
        self.stop()
        self.start()


class _SpawnedServer(PrivateServer):
    """A server that runs in the foreground as our child process."""

    name: str
    process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> str | None:
        raise NotImplementedError

    def start(self) -> None:
        self.process = _spawn(self.command(), self.base)
        _wait_until_answers(self.name, self.process, self.log, self.answers)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            _stop_process(self.process)


class PrivatePostgres(PrivateServer):
    """A PostgreSQL cluster of our own (initdb and pg_ctl, run as user postgres when we are root)."""

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        super().__init__("postgres", "postgres" if _is_root() else None)  # initdb refuses root
        self.data = self.base / "data"
        # No locale and fsync off: a throwaway server should behave the same everywhere, and be fast.
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres"]
        _run(_as_user(self.owner, [*initdb, "--encoding=UTF8", "--no-locale", "--no-sync"]), cwd=self.base)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/test"

    def _pg_ctl(self, *args: str) -> list[str]:
        return _as_user(self.owner, [str(self.bindir / "pg_ctl"), "-D", str(self.data), *args])

    def start(self) -> None:
        # fsync off unless AGNO_ORM_TEST_PG_FSYNC=on (benchmarks/run: commits as durable as in production)
        fsync = "on" if os.environ.get("AGNO_ORM_TEST_PG_FSYNC") == "on" else "off"
        options = (
            f"-p {self.port} -k {shlex.quote(str(self.base))} -c listen_addresses=127.0.0.1 -c fsync={fsync}"
        )
        # -l sends the server's output to a file; without it the daemon would hold our pipes open.
        timeout = str(int(START_TIMEOUT))
        _run(
            self._pg_ctl("-o", options, "-l", str(self.log), "-w", "-t", timeout, "start"),
            self.base,
            self.log,
        )
        if error := _postgres_prepare(self.port):
            raise ServerUnavailable(f"private PostgreSQL on port {self.port} does not answer: {error}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            _quietly(self._pg_ctl("-m", "fast", "-w", "stop"), cwd=self.base)


def _postgres_prepare(port: int) -> str | None:
    """Create database ``test`` on 127.0.0.1:port if missing; return why not, or None on success."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user="postgres",
            dbname="postgres",
            connect_timeout=2,
            autocommit=True,
        ) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'test'").fetchone() is None:
                conn.execute("CREATE DATABASE test")
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


def _postgres_bindir() -> Path:
    # Debian keeps initdb and pg_ctl in /usr/lib/postgresql/<version>/bin, off the PATH.
    candidates = [Path(p).resolve().parent for p in [shutil.which("initdb")] if p]
    candidates += [
        Path(p).parent
        for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key, reverse=True)
    ]
    for bindir in candidates:
        if (bindir / "pg_ctl").exists():
            return bindir
    raise ServerUnavailable("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install -y postgresql")


def _version_key(path: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path)]


# --- MariaDB / MySQL ------------------------------------------------------------------------


@_once
def mariadb_url() -> str:
    """SQLAlchemy URL (``mysql+pymysql://``) of a MariaDB/MySQL server with a database ``test``."""
    if url := os.environ.get(MYSQL_URL_ENV):
        return _given("MariaDB/MySQL", MYSQL_URL_ENV, _verified_sql_url(MYSQL_URL_ENV, url))
    return _first("MariaDB/MySQL", _mariadb_running, _mariadb_container, _mariadb_private)


def _mysql_url(port: int) -> str:
    return f"mysql+pymysql://root@127.0.0.1:{port}/test?charset=utf8mb4"


def _mariadb_running() -> str:
    _skip_shared_servers("127.0.0.1:3306")
    if error := _mariadb_prepare(3306):
        raise ServerUnavailable(f"127.0.0.1:3306 (user root, no password): {error}")
    return _mysql_url(3306)


def _mariadb_container() -> str:
    container = _start_container(
        "testcontainers.mysql",
        "MySqlContainer",
        "mariadb:11",
        dialect="pymysql",
        username="root",
        password="test",
        dbname="test",
    )
    return f"{container.get_connection_url()}?charset=utf8mb4"


def _mariadb_private() -> str:
    server = PrivateMariaDB()
    server.start()
    return server.url


class PrivateMariaDB(_SpawnedServer):
    """A MariaDB server of our own (mariadb-install-db, then mariadbd as user mysql when we are root)."""

    name = "mariadbd"

    def __init__(self) -> None:
        self.mariadbd, install_db = _find_binary("mariadbd"), _find_binary("mariadb-install-db")
        if not (self.mariadbd and install_db):
            raise ServerUnavailable(
                "mariadbd or mariadb-install-db not found: apt-get install -y mariadb-server"
            )
        super().__init__("mariadb", "mysql" if _is_root() else None)  # mariadbd refuses root without --user
        self.user_option = [f"--user={self.owner}"] if self.owner else []
        self.data = self.base / "data"
        self.socket_option = f"--socket={self.base / 'mariadb.sock'}"
        # --no-defaults (always the first option) keeps the machine's my.cnf out of our server.
        root_login = "--auth-root-authentication-method=normal"  # root@localhost, no password
        _run(
            [
                install_db,
                "--no-defaults",
                f"--datadir={self.data}",
                *self.user_option,
                root_login,
                "--skip-test-db",
            ],
            cwd=self.base,
        )

    @property
    def url(self) -> str:
        return _mysql_url(self.port)

    def command(self) -> list[str]:
        assert self.mariadbd is not None
        files = [f"--datadir={self.data}", self.socket_option, f"--pid-file={self.base / 'mariadb.pid'}"]
        network = [f"--port={self.port}", "--bind-address=127.0.0.1"]
        fast = "--innodb-flush-log-at-trx-commit=0"  # a throwaway server need not flush every commit
        log = f"--log-error={self.log}"
        return [self.mariadbd, "--no-defaults", *files, log, *network, fast, *self.user_option]

    def answers(self) -> str | None:
        return _mariadb_prepare(self.port, ours=self.socket_option)


def _mariadb_prepare(port: int, ours: str | None = None) -> str | None:
    """Create database ``test`` on 127.0.0.1:port if missing; return why not, or None on success.

    ``ours`` is the ``--socket=`` option of a server we started: the port must be answered by it,
    not by another server that took the port first (our server then exits, which the caller sees).
    """
    try:
        import pymysql  # type: ignore[import-untyped,unused-ignore]  # stubs are optional
    except ImportError:
        return "pymysql is not installed (pip install -e '.[dev]')"
    try:
        conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", connect_timeout=2)
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT CONCAT('--socket=', @@socket)")
            if ours and (theirs := cursor.fetchone()[0]) != ours:
                return f"port {port} is answered by another server ({theirs})"
            cursor.execute("CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4")
    except pymysql.MySQLError as exc:
        return str(exc)
    return None


# --- SingleStore ----------------------------------------------------------------------------

SINGLESTORE_URL_ENV = "AGNO_ORM_TEST_SINGLESTORE_URL"
SINGLESTORE_IMAGE = "ghcr.io/singlestore-labs/singlestoredb-dev:latest"
SINGLESTORE_START_TIMEOUT = 300.0  # the dev image starts a whole cluster: minutes, not seconds


@_once
def singlestore_url() -> str:
    """SQLAlchemy URL (``singlestoredb://``) for the SingleStore tests.

    SingleStore cannot run on this machine, so after step 1 (``AGNO_ORM_TEST_SINGLESTORE_URL``)
    come SingleStore's dev image where a Docker engine answers (set ``SINGLESTORE_LICENSE`` if
    the image asks for one), then the stand-in: the MariaDB/MySQL server of ``mariadb_url()``
    through the ``singlestoredb`` dialect, which speaks the MySQL protocol. Only a real server
    runs SingleStore's own DDL (shard and sort keys, hash indexes): tests tell the two apart with
    ``SHOW VARIABLES LIKE 'memsql_version'``, which only SingleStore answers.
    """
    if url := os.environ.get(SINGLESTORE_URL_ENV):
        return _given("SingleStore", SINGLESTORE_URL_ENV, _verified_sql_url(SINGLESTORE_URL_ENV, url))
    return _first("SingleStore", _singlestore_container, _singlestore_stand_in)


def _singlestore_stand_in() -> str:
    import sqlalchemy as sa

    if importlib.util.find_spec("sqlalchemy_singlestoredb") is None:
        raise ServerUnavailable("sqlalchemy-singlestoredb is not installed (pip install -e '.[dev]')")
    url = sa.make_url(mariadb_url()).set(drivername="singlestoredb")
    return url.render_as_string(hide_password=False)


def _singlestore_container() -> str:
    _skip_shared_servers("SingleStore's dev image")
    try:
        from testcontainers.core.container import DockerContainer
    except ImportError as exc:
        raise ServerUnavailable("testcontainers is not installed (optional)") from exc
    if not _docker_answers():
        raise ServerUnavailable("no Docker engine answers, so SingleStore's dev image cannot run")
    container = DockerContainer(SINGLESTORE_IMAGE).with_env("ROOT_PASSWORD", "test").with_exposed_ports(3306)
    if licence := os.environ.get("SINGLESTORE_LICENSE"):
        container.with_env("SINGLESTORE_LICENSE", licence)
    try:
        container.start()
    except Exception as exc:  # pulling or starting can fail in many ways; fall back to the stand-in
        raise ServerUnavailable(f"testcontainers could not start {SINGLESTORE_IMAGE}: {exc}") from exc
    atexit.register(container.stop)
    host, port = container.get_container_host_ip(), container.get_exposed_port(3306)
    server = f"singlestoredb://root:test@{host}:{port}"
    deadline = time.monotonic() + SINGLESTORE_START_TIMEOUT
    while error := _singlestore_prepare(server):
        if time.monotonic() > deadline:
            raise ServerUnavailable(
                f"{SINGLESTORE_IMAGE} did not answer in {SINGLESTORE_START_TIMEOUT:.0f} s: {error}"
            )
        time.sleep(2)
    return f"{server}/test"


def _singlestore_prepare(server: str) -> str | None:
    """Create database ``test`` on the server; return why not, or None on success."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(server, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("CREATE DATABASE IF NOT EXISTS test")
        finally:
            engine.dispose()
    except Exception as exc:  # not up yet: refused, reset, still starting its nodes
        return str(exc)
    return None


# --- Redis ----------------------------------------------------------------------------------


@_once
def redis_url() -> str:
    """URL (``redis://``) of a Redis server."""
    if url := os.environ.get(REDIS_URL_ENV):
        parts = urlsplit(url)
        # Only plain TCP can be probed without a client library; other schemes are taken on trust.
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        if parts.scheme == "redis" and (error := _redis_ping(host, port)):
            raise ServerUnavailable(f"{REDIS_URL_ENV} is set but does not answer: {error}")
        return _given("Redis", REDIS_URL_ENV, url)
    return _first("Redis", _redis_running, _redis_private)


def _redis_running() -> str:
    _skip_shared_servers("127.0.0.1:6379")
    if error := _redis_ping("127.0.0.1", 6379):
        raise ServerUnavailable(f"127.0.0.1:6379: {error}")
    return "redis://127.0.0.1:6379/0"


def _redis_private() -> str:
    server = PrivateRedis()
    server.start()
    return server.url


class PrivateRedis(_SpawnedServer):
    """A Redis server of our own; its append-only file keeps the data across a restart."""

    name = "redis-server"

    def __init__(self) -> None:
        self.redis_server = _find_binary("redis-server")
        if not self.redis_server:
            raise ServerUnavailable("redis-server not found: apt-get install -y redis-server")
        super().__init__("redis", None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        assert self.redis_server is not None
        network = ["--port", str(self.port), "--bind", "127.0.0.1"]
        persistence = ["--save", "", "--appendonly", "yes", "--dir", str(self.base)]
        return [self.redis_server, *network, *persistence, "--logfile", str(self.log), "--daemonize", "no"]

    def answers(self) -> str | None:
        # Ask for the working directory, not just PING: the port must be answered by our server.
        return _redis_ask("127.0.0.1", self.port, b"CONFIG GET dir", str(self.base.resolve()).encode())


def _redis_ping(host: str, port: int) -> str | None:
    """Return why the server does not answer PING, or None if it does."""
    # -NOAUTH still proves a Redis server is there; the client will authenticate with the URL.
    return _redis_ask(host, port, b"PING", b"+PONG", b"-NOAUTH")


def _redis_ask(host: str, port: int, command: bytes, *expected: bytes) -> str | None:
    """Send an inline command; return None if the reply contains one of ``expected``, else the problem."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(command + b"\r\n")
            reply = sock.recv(4096)
    except OSError as exc:
        return str(exc)
    return None if any(e in reply for e in expected) else f"unexpected reply to {command.decode()}: {reply!r}"


# --- DynamoDB -------------------------------------------------------------------------------


@_once
def dynamodb_url() -> str:
    """Endpoint URL (``http://``) of a DynamoDB-compatible server.

    No DynamoDB server is installed anywhere: step 2 and 3 do not apply, and step 4 is moto's
    server (``moto[dynamodb,server]``, a dev dependency) in a subprocess on a free loopback port.
    """
    if url := os.environ.get(DYNAMODB_URL_ENV):
        if error := _http_answers(url):
            raise ServerUnavailable(f"{DYNAMODB_URL_ENV} is set but does not answer: {error}")
        return _given("DynamoDB", DYNAMODB_URL_ENV, url)
    return _first("DynamoDB", _dynamodb_private)


def _dynamodb_private() -> str:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise ServerUnavailable("moto[dynamodb,server] is not installed (pip install -e '.[dev]')")
    base = _private_dir("moto", None)
    log, port = base / "moto.log", _free_port()
    with log.open("wb") as output:
        server = subprocess.Popen(
            # one request at a time: moto checks a put's condition and stores the item without a
            # lock, so racing conditional puts could both succeed (see tests/moto_serial.py)
            [sys.executable, str(Path(__file__).with_name("moto_serial.py")), "127.0.0.1", str(port)],
            cwd=base,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    atexit.register(_stop_process, server)
    url = f"http://127.0.0.1:{port}"
    _wait_until_answers("moto_server", server, log, lambda: _http_answers(f"{url}/moto-api/"))
    return url


def _http_answers(url: str) -> str | None:
    """Return why ``url`` does not answer an HTTP GET, or None if it does (any status)."""
    try:
        with urlopen(url, timeout=2):
            return None
    except URLError as exc:
        if getattr(exc, "code", None) is not None:  # an HTTP error status is an answer
            return None
        return str(exc.reason)
    except OSError as exc:
        return str(exc)


# --- MongoDB --------------------------------------------------------------------------------


@_once
def mongodb_url() -> str:
    """URL (``mongodb://``) of a real MongoDB server: AGNO_ORM_TEST_MONGODB_URL, or testcontainers.

    MongoDB cannot be installed here (Debian ships no server), so there is no step 2 or 4; the
    tests then use an in-process engine instead (see conftest.py).
    """
    if url := os.environ.get(MONGODB_URL_ENV):
        if error := _mongodb_ping(url):
            raise ServerUnavailable(f"{MONGODB_URL_ENV} is set but does not answer: {error}")
        return _given("MongoDB", MONGODB_URL_ENV, url)
    return _first("MongoDB", _mongodb_container)


def _mongodb_container() -> str:
    container = _start_container("testcontainers.mongodb", "MongoDbContainer", "mongo:7")
    return str(container.get_connection_url())


def _mongodb_ping(url: str) -> str | None:
    try:
        import pymongo
    except ImportError:
        return "pymongo is not installed (pip install -e '.[dev]')"
    try:
        with pymongo.MongoClient(url, serverSelectionTimeoutMS=3000) as client:
            client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        return str(exc)
    return None


# --- Shared helpers -------------------------------------------------------------------------


def _skip_shared_servers(what: str) -> None:
    """Refuse steps 2 and 3 under AGNO_ORM_TEST_PRIVATE_SERVERS, so the private server is used."""
    if os.environ.get(PRIVATE_SERVERS_ENV, "") not in ("", "0"):
        raise ServerUnavailable(f"{what} not tried: {PRIVATE_SERVERS_ENV} is set")


def _verified_sql_url(variable: str, url: str) -> str:
    """Return ``url`` if ``SELECT 1`` works there; a set but broken variable is an error, not a fallback."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url, poolclass=sa.NullPool, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # any failure (driver missing, refused, auth) means the same thing here
        shown = sa.make_url(url).render_as_string(hide_password=True)
        raise ServerUnavailable(f"{variable}={shown} is set but does not answer: {exc}") from exc
    return url


def _start_container(module_name: str, class_name: str, image: str, **options: str) -> Any:
    """Start a testcontainers container, stopped at exit; ServerUnavailable if that is not possible."""
    _skip_shared_servers("testcontainers")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ServerUnavailable(f"{module_name} is not installed (optional)") from exc
    if not _docker_answers():
        raise ServerUnavailable("no Docker engine answers, so testcontainers cannot be used")
    container = getattr(module, class_name)(image, **options)
    try:
        container.start()
    except Exception as exc:  # pulling or starting can fail in many ways; fall back to a private server
        raise ServerUnavailable(f"testcontainers could not start {image}: {exc}") from exc
    atexit.register(container.stop)
    return container


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker:  # `docker info` knows about contexts and DOCKER_HOST; a stopped engine fails it at once
        try:
            return subprocess.run([docker, "info"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return not host.startswith("unix://") or os.path.exists(host.removeprefix("unix://"))


def _find_binary(name: str) -> str | None:
    # Server binaries live in sbin directories, which are not on an ordinary user's PATH.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_user(user: str | None, command: list[str]) -> list[str]:
    """``command`` run as ``user`` (we are root then), or unchanged for ``None``."""
    if user is None:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *command]
    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(command)]


def _private_dir(kind: str, owner: str | None) -> Path:
    """A fresh temporary directory, deleted at exit (after the server registered later has stopped:
    atexit runs last-in first-out), and owned by ``owner`` when the server must run as that OS user."""
    if owner is None:
        base = Path(tempfile.mkdtemp(prefix=f"agno_orm_{kind}_"))
    else:
        try:
            account = pwd.getpwnam(owner)
        except KeyError as exc:
            raise ServerUnavailable(f"running as root needs the OS user {owner!r}") from exc
        # /tmp rather than $TMPDIR: the server's user must be able to reach the directory.
        base = Path(tempfile.mkdtemp(prefix=f"agno_orm_{kind}_", dir="/tmp"))
        os.chown(base, account.pw_uid, account.pw_gid)
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    return base


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(command: list[str], cwd: Path, log: Path | None = None) -> None:
    """Run a setup command; on failure raise ServerUnavailable with its output (and the log's tail)."""
    try:
        subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    except subprocess.CalledProcessError as exc:
        output = f"{exc.stdout}{exc.stderr}".strip()
        raise ServerUnavailable(
            f"`{shlex.join(command)}` exited with {exc.returncode}:\n{output}{_tail(log)}"
        ) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerUnavailable(f"`{shlex.join(command)}` failed: {exc}{_tail(log)}") from exc


def _spawn(command: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start a server in the foreground; its output goes to its log file, set by the caller."""
    return subprocess.Popen(
        command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _quietly(command: list[str], cwd: Path) -> None:
    """Run a clean-up command at exit; failures must not mask the test run's own result."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


def _wait_until_answers(
    name: str, server: subprocess.Popen[bytes], log: Path, answers: Callable[[], str | None]
) -> None:
    """Poll ``answers`` (None means ready) until the server is up, has died, or the time is over."""
    deadline = time.monotonic() + START_TIMEOUT
    while error := answers():
        if server.poll() is not None:
            raise ServerUnavailable(f"{name} exited with {server.returncode}{_tail(log)}")
        if time.monotonic() > deadline:
            waited = f"{name} did not answer within {START_TIMEOUT:.0f} s: {error}"
            raise ServerUnavailable(f"{waited}{_tail(log)}")
        time.sleep(0.1)


def _stop_process(server: subprocess.Popen[bytes]) -> None:
    """Stop a private server; SIGTERM is a clean shutdown for mariadbd and redis-server."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _tail(log: Path | None, lines: int = 20) -> str:
    if log is None:
        return ""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return f"\n--- last lines of {log} ---\n" + "\n".join(text.splitlines()[-lines:])
