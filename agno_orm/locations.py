"""Storage locations: one string names where sessions are kept, on any backend.

The `agno-orm` command takes a location wherever it reads or writes sessions. agno_orm's own
options go in the query string; everything else in a URL is passed on to the driver.

    SQL        any SQLAlchemy URL of SQLite, PostgreSQL, MySQL/MariaDB or SingleStore:
                 sqlite:///relative/path.db   sqlite:////absolute/path.db
                 postgresql+psycopg://user:pw@host:5432/db
                 mysql+pymysql://user:pw@host:3306/db      singlestoredb://user:pw@host:3306/db
               options (the `-x` options of `alembic upgrade head`):
                 table=NAME      one table; mode=MODE says whose sessions it holds (default agent)
                 mode=MODE       without table=: that mode's table of the default set
                 schema=S        default: `ai` on PostgreSQL, the URL's database elsewhere
                 agent_table=, team_table=, workflow_table=, workflow_v2_table=
                                 names in the default set (agent_sessions, team_sessions,
                                 workflow_sessions, workflow_v2_sessions)
    JSON       json:///relative/dir   json:////absolute/dir   (slashes as in sqlite: URLs)
    YAML       yaml:///relative/dir   yaml:////absolute/dir
    Redis      redis://[:password@]host:port/db?prefix=PREFIX   (rediss:// for TLS)
    MongoDB    mongodb://host:port/?collection=NAME[&db=agno]   (mongodb+srv:// too)
    DynamoDB   dynamodb://TABLE[?region=R][&endpoint_url=URL][&profile=P][&billing_mode=PAY_PER_REQUEST]
               credentials come from the environment or profile, never from the location

Every location takes `mode=MODE` (agent, team, workflow, workflow_v2). A location with `mode=`
(or, for SQL, `table=`) names one storage; without, it names one per mode: the four default
tables of a SQL database, or every mode's sessions in a directory, key prefix, collection or
DynamoDB table (those keep sessions of all modes side by side, as agno does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL

from agno_orm._urls import without_password
from agno_orm.errors import InvalidInputError, StorageConnectionError, StorageError
from agno_orm.sessions import MODES, Mode, SessionTypes
from agno_orm.sql import MySQLStorage, PostgresStorage, SingleStoreStorage, SqliteStorage, SqlStorage
from agno_orm.sql.engines import engine_from_url, parse_url
from agno_orm.sql.migrations import specs_from_x_args, table_state
from agno_orm.sql.models import DEFAULT_TABLE_NAMES, TableSpec
from agno_orm.sql.mysql import with_utf8mb4
from agno_orm.sql.singlestore import singlestore_url
from agno_orm.storage import Storage

__all__ = [
    "Location",
    "LocationError",
    "StorageSet",
    "describe",
    "missing_reason",
    "open_storage",
    "open_storages",
    "parse_location",
    "sql_engine",
]

Kind = Literal["sql", "json", "yaml", "redis", "mongodb", "dynamodb"]

SQL_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb", "singlestoredb", "postgres")
"""Schemes read as database URLs; agno_orm._urls refuses postgres:// saying what to write."""
SQL_OPTIONS = ("table", "mode", "schema", *(f"{m}_table" for m in MODES))
OPTIONS: dict[Kind, tuple[str, ...]] = {
    "sql": SQL_OPTIONS,
    "json": ("mode",),
    "yaml": ("mode",),
    "redis": ("mode", "prefix"),
    "mongodb": ("mode", "db", "collection"),
    "dynamodb": ("mode", "region", "endpoint_url", "profile", "billing_mode"),
}
_SCHEMES: dict[str, Kind] = {
    "json": "json",
    "yaml": "yaml",
    "redis": "redis",
    "rediss": "redis",
    "mongodb": "mongodb",
    "mongodb+srv": "mongodb",
    "dynamodb": "dynamodb",
}
# Query arguments pysqlite takes; any other one would be ignored with a warning (a typo of ours).
_SQLITE_DRIVER_OPTIONS = frozenset(
    {"timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements", "uri"}
)
_CONNECT_TIMEOUT = "10"  # seconds: a server that does not answer is an error, not a hang
_MONGODB_SELECTION_TIMEOUT_MS = 5000
_OURS: SessionTypes = "pydantic"  # sessions as stored; agno's classes would rebuild run objects


class LocationError(InvalidInputError):
    """Raised when a location cannot be parsed, or does not name an existing store where one must exist."""


@dataclass(frozen=True)
class Location:
    """A parsed location: its kind, the address its driver gets, and agno_orm's options."""

    kind: Kind
    address: str
    """SQL: the URL without our options; json/yaml: the directory; redis/mongodb: the URL without
    our options; dynamodb: the table name."""
    options: Mapping[str, str] = field(default_factory=dict)
    display: str = ""
    """The location as it may be printed: passwords hidden."""

    @property
    def mode(self) -> Mode | None:
        """The one mode the location names, or None when it names every mode."""
        mode = self.options.get("mode")
        if mode is None and self.kind == "sql" and "table" in self.options:
            return "agent"
        return _mode(mode) if mode is not None else None

    def sql_url(self) -> URL:
        if self.kind != "sql":
            raise LocationError(f"{self.display} is not a SQL database URL")
        return parse_url(self.address)

    def url_with_options(self) -> tuple[str, bool]:
        """The location as one URL to pass again (agno_orm's options back in its query string), with
        its password as ***; and whether a password was hidden (the URL then needs it put back)."""
        if self.kind != "sql":
            return self.display, False
        url = self.sql_url()
        if self.options:
            url = url.update_query_dict(dict(self.options))
        return url.render_as_string(hide_password=True), url.password is not None

    def table_specs(self) -> list[TableSpec]:
        """The SQL tables the location names: one, or the set of four (as `alembic upgrade head`)."""
        url = self.sql_url()
        x_args = dict(self.options)
        mode = x_args.get("mode")
        if mode is not None and "table" not in x_args:
            x_args["table"] = x_args.get(f"{_mode(mode)}_table", DEFAULT_TABLE_NAMES[_mode(mode)])
        if "table" in x_args:
            x_args = {k: v for k, v in x_args.items() if k in ("table", "mode", "schema")}
        return specs_from_x_args(x_args, _dialect_name(url))


def parse_location(
    text: str, *, table: str | None = None, mode: str | None = None, schema: str | None = None
) -> Location:
    """Parse a location; `table`, `mode`, `schema` (command-line flags) override its query options.

    Raises LocationError for anything that is not a location this module documents.
    """
    text = text.strip()
    if not text:
        raise LocationError("no location given: pass a database URL or a location such as json:///dir")
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    backend = scheme.split("+", 1)[0]
    overrides = {k: v for k, v in (("table", table), ("mode", mode), ("schema", schema)) if v is not None}
    if backend in SQL_BACKENDS:
        location = _parse_sql(text, overrides)
    elif scheme in _SCHEMES:
        for option in ("table", "schema"):
            if option in overrides:
                raise LocationError(f"--{option} applies to SQL databases, not to {scheme}: locations")
        location = _parse_other(_SCHEMES[scheme], text, overrides)
    else:
        raise LocationError(
            f"not a storage location: {without_password(text)!r}; expected a database URL (sqlite:///, "
            "postgresql+psycopg://, mysql+pymysql://, singlestoredb://) or json:///, yaml:///, redis://, "
            "mongodb://, dynamodb://"
        )
    if "mode" in location.options:
        _mode(location.options["mode"])
    return location


def _parse_sql(text: str, overrides: Mapping[str, str]) -> Location:
    try:
        url = parse_url(text)  # the storage classes' check and wording (agno_orm._urls)
    except InvalidInputError as exc:
        raise LocationError(str(exc)) from exc
    options: dict[str, str] = {}
    for key, value in url.query.items():
        if key in SQL_OPTIONS:
            if not isinstance(value, str):
                raise LocationError(f"{without_password(text)}: option {key} is given more than once")
            options[key] = value
    options.update(overrides)
    url = url.difference_update_query(SQL_OPTIONS)
    if url.get_backend_name() == "sqlite":
        unknown = set(url.query) - _SQLITE_DRIVER_OPTIONS
        if unknown:
            raise LocationError(
                f"unknown option(s) {', '.join(sorted(unknown))} in {without_password(text)}; "
                f"agno_orm's options are {', '.join(SQL_OPTIONS)}"
            )
    table_info = ", ".join(f"{k}={v}" for k, v in options.items())
    display = url.render_as_string(hide_password=True) + (f" ({table_info})" if table_info else "")
    return Location("sql", url.render_as_string(hide_password=False), options, display)


def _parse_other(kind: Kind, text: str, overrides: Mapping[str, str]) -> Location:
    parts = urlsplit(text)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    ours = OPTIONS[kind]
    options = {name: value for name, value in pairs if name in ours}
    for name in options:
        if names.count(name) > 1:
            raise LocationError(f"{without_password(text)}: option {name} is given more than once")
    options.update(overrides)
    rest = [(name, value) for name, value in pairs if name not in ours]
    if kind in ("json", "yaml", "dynamodb") and rest:
        unknown = ", ".join(sorted({name for name, _ in rest}))
        raise LocationError(
            f"unknown option(s) {unknown} in {text!r}; {kind}: locations take {', '.join(ours)}"
        )
    if kind in ("json", "yaml"):
        if parts.netloc:
            raise LocationError(
                f"{text!r}: a {kind} location names a directory, as sqlite: URLs name a file: "
                f"{kind}:///relative/dir or {kind}:////absolute/dir"
            )
        directory = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not directory:
            raise LocationError(
                f"{text!r} names no directory: {kind}:///relative/dir or {kind}:////absolute/dir"
            )
        return Location(kind, directory, options, f"{kind}:///{directory}" + _query(options))
    if kind == "dynamodb":
        if not parts.netloc or parts.path not in ("", "/"):
            raise LocationError(f"{text!r}: a DynamoDB location is dynamodb://TABLE_NAME?region=...")
        return Location(kind, parts.netloc, options, f"dynamodb://{parts.netloc}" + _query(options))
    if kind == "redis" and not options.get("prefix"):
        raise LocationError(
            f"{without_password(text)}: a Redis location needs ?prefix=... (the key prefix of the sessions)"
        )
    if kind == "mongodb" and not options.get("collection"):
        raise LocationError(
            f"{without_password(text)}: a MongoDB location needs ?collection=... (and db=..., default agno)"
        )
    address = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return Location(kind, address, options, without_password(address) + _query(options))


def _query(options: Mapping[str, str]) -> str:
    return "?" + urlencode(dict(options), safe=":/") if options else ""


def _mode(value: str) -> Mode:
    for mode in MODES:
        if value == mode:
            return mode
    raise LocationError(f"unknown mode {value!r}; expected one of {', '.join(MODES)}")


def _dialect_name(url: URL) -> str:
    backend = url.get_backend_name()
    return "mysql" if backend == "mariadb" else backend


# -- opening ------------------------------------------------------------------------------------


@dataclass
class StorageSet:
    """The storages a location names, one per mode, sharing one engine or client; close() releases it."""

    location: Location
    storages: dict[Mode, Storage]
    explicit: bool
    """Whether the location named its table or mode (else it names the default set)."""
    _close: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for closer in self._close:
            with contextlib.suppress(Exception):  # releasing a broken connection must not mask the cause
                closer()

    def __enter__(self) -> StorageSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_storages(location: Location | str) -> StorageSet:
    """The storages `location` names. Nothing is connected or created yet (drivers connect lazily)."""
    if isinstance(location, str):
        location = parse_location(location)
    explicit = location.mode is not None
    modes: tuple[Mode, ...] = (location.mode,) if location.mode is not None else MODES
    if location.kind == "sql":
        engine = sql_engine(location.sql_url())
        specs = location.table_specs()
        return StorageSet(
            location, {s.mode: _sql_storage(engine, s) for s in specs}, explicit, [engine.dispose]
        )
    if location.kind in ("json", "yaml"):
        from agno_orm.nosql import JsonStorage, YamlStorage

        file_class = JsonStorage if location.kind == "json" else YamlStorage
        return StorageSet(
            location, {m: file_class(location.address, mode=m, session_types=_OURS) for m in modes}, explicit
        )
    if location.kind == "redis":
        from agno_orm.nosql import RedisStorage
        from agno_orm.nosql._drivers import require

        redis = require("redis", package="redis", extra="redis")
        try:
            client = redis.Redis.from_url(location.address, socket_connect_timeout=float(_CONNECT_TIMEOUT))
        except ValueError as exc:
            raise LocationError(f"{location.display}: {exc}") from exc
        prefix = location.options["prefix"]
        storages: dict[Mode, Storage] = {
            m: RedisStorage(prefix, client=client, mode=m, session_types=_OURS) for m in modes
        }
        return StorageSet(location, storages, explicit, [client.close])
    if location.kind == "mongodb":
        from agno_orm.nosql import MongoDbStorage
        from agno_orm.nosql._drivers import require

        pymongo = require("pymongo", package="pymongo", extra="mongodb")
        try:
            client = pymongo.MongoClient(
                location.address, serverSelectionTimeoutMS=_MONGODB_SELECTION_TIMEOUT_MS
            )
        except pymongo.errors.PyMongoError as exc:
            raise LocationError(f"{location.display}: {exc}") from exc
        collection, db = location.options["collection"], location.options.get("db", "agno")
        storages = {
            m: MongoDbStorage(collection, db_name=db, client=client, mode=m, session_types=_OURS)
            for m in modes
        }
        return StorageSet(location, storages, explicit, [client.close])
    return _open_dynamodb(location, modes, explicit)


def _open_dynamodb(location: Location, modes: tuple[Mode, ...], explicit: bool) -> StorageSet:
    from agno_orm.nosql import DynamoDbStorage
    from agno_orm.nosql._drivers import require
    from agno_orm.nosql.dynamodb import BillingMode

    boto3 = require("boto3", package="boto3", extra="dynamodb")
    botocore_config = require("botocore.config", package="boto3", extra="dynamodb")
    options = location.options
    billing_mode: BillingMode
    if options.get("billing_mode", "PROVISIONED") == "PROVISIONED":
        billing_mode = "PROVISIONED"
    elif options["billing_mode"] == "PAY_PER_REQUEST":
        billing_mode = "PAY_PER_REQUEST"
    else:
        raise LocationError(
            f"billing_mode must be PROVISIONED or PAY_PER_REQUEST; got {options['billing_mode']!r}"
        )
    try:
        session = boto3.session.Session(
            profile_name=options.get("profile"), region_name=options.get("region")
        )
        client = session.client(
            "dynamodb",
            endpoint_url=options.get("endpoint_url"),
            config=botocore_config.Config(
                connect_timeout=int(_CONNECT_TIMEOUT), retries={"max_attempts": 2, "mode": "standard"}
            ),
        )
    except Exception as exc:  # botocore: no region, unknown profile, bad endpoint; all say what is wrong
        raise LocationError(f"{location.display}: {exc}") from exc
    storages: dict[Mode, Storage] = {
        m: DynamoDbStorage(
            location.address, client=client, mode=m, billing_mode=billing_mode, session_types=_OURS
        )
        for m in modes
    }
    return StorageSet(location, storages, explicit)


def open_storage(location: Location | str, mode: Mode | None = None) -> Storage:
    """The one storage a location names (`mode` chooses one of several; default agent).

    The caller owns its engine or client; `open_storages` returns them with a close().
    """
    storage_set = open_storages(location)
    chosen: Mode = mode or storage_set.location.mode or "agent"
    if chosen not in storage_set.storages:
        raise LocationError(f"{storage_set.location.display} names no {chosen} sessions")
    return storage_set.storages[chosen]


def sql_engine(url: URL) -> Engine:
    """An engine for a SQL location, set up as the storage classes set theirs up."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return create_engine(url, connect_args={"timeout": 30})
    if backend == "postgresql":
        return engine_from_url(_with_default(url, "connect_timeout", _CONNECT_TIMEOUT), extra="postgres")
    if backend in ("mysql", "mariadb"):
        url = with_utf8mb4(_with_default(url, "connect_timeout", _CONNECT_TIMEOUT))
        return engine_from_url(url, extra="mysql")
    return engine_from_url(singlestore_url(url), extra="singlestore")


def _with_default(url: URL, key: str, value: str) -> URL:
    return url if key in url.query else url.update_query_dict({key: value})


def _sql_storage(engine: Engine, spec: TableSpec) -> SqlStorage:
    backend = engine.dialect.name
    if backend == "sqlite":
        return SqliteStorage(spec.table_name, db_engine=engine, mode=spec.mode, session_types=_OURS)
    if backend == "postgresql":
        return PostgresStorage(
            spec.table_name, schema=spec.schema, db_engine=engine, mode=spec.mode, session_types=_OURS
        )
    if backend in ("mysql", "mariadb"):
        return MySQLStorage(
            spec.table_name, schema=spec.schema, db_engine=engine, mode=spec.mode, session_types=_OURS
        )
    return SingleStoreStorage(
        spec.table_name, schema=spec.schema, db_engine=engine, mode=spec.mode, session_types=_OURS
    )


# -- existence ----------------------------------------------------------------------------------


def describe(storage: Storage) -> str:
    """What a storage is, for messages: its table, directory, prefix, collection."""
    from agno_orm.nosql import DynamoDbStorage, FileStorage, MongoDbStorage, RedisStorage

    if isinstance(storage, SqlStorage):
        return f"table {storage.spec.qualified_name}"
    if isinstance(storage, FileStorage):
        return f"directory {storage.dir_path}"
    if isinstance(storage, RedisStorage):
        return f"prefix {storage.prefix!r}"
    if isinstance(storage, MongoDbStorage):
        return f"collection {storage.db_name}.{storage.collection_name}"
    if isinstance(storage, DynamoDbStorage):
        return f"DynamoDB table {storage.table_name}"
    return type(storage).__name__


def missing_reason(storage: Storage) -> str | None:
    """Why the store `storage` reads from does not exist, or None if it does; creates nothing.

    Raises StorageConnectionError when the server cannot be reached.
    """
    from agno_orm.nosql import DynamoDbStorage, FileStorage, MongoDbStorage, RedisStorage

    if isinstance(storage, SqlStorage):
        database = storage.db_engine.url.database
        is_file = storage.db_engine.dialect.name == "sqlite" and database and database != ":memory:"
        if is_file and not Path(str(database)).is_file():
            return f"there is no SQLite database file {database}"
        with _sql_errors(storage), storage.db_engine.connect() as connection:
            exists = table_state(connection, storage.spec).exists
        return None if exists else f"there is no table {storage.spec.qualified_name}"
    if isinstance(storage, FileStorage):
        return None if storage.dir_path.is_dir() else f"there is no directory {storage.dir_path}"
    if isinstance(storage, RedisStorage):
        storage.create()  # a PING: Redis has nothing to be missing
        return None
    if isinstance(storage, MongoDbStorage):
        pymongo = storage._pymongo
        try:
            names = storage.db.list_collection_names()
        except pymongo.errors.PyMongoError as exc:
            # pymongo appends its whole topology description to the reason: keep the reason
            reason = str(exc).split(", Timeout: ", 1)[0]
            raise StorageConnectionError(f"checking {describe(storage)}: unreachable: {reason}") from exc
        if storage.collection_name in names:
            return None
        return f"there is no collection {storage.collection_name} in database {storage.db_name}"
    if isinstance(storage, DynamoDbStorage):
        return None if storage.table_exists() else f"there is no DynamoDB table {storage.table_name}"
    return None


@contextlib.contextmanager
def _sql_errors(storage: SqlStorage) -> Iterator[None]:
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    try:
        yield
    except DBAPIError as exc:
        error = StorageConnectionError if storage._hooks.is_connection_error(exc) else StorageError
        raise error(f"checking {describe(storage)}: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"checking {describe(storage)}: {exc}") from exc
