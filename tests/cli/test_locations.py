"""The location syntax: one string per storage, parsed in one place for every command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agno_orm import PostgresStorage, SqliteStorage
from agno_orm.locations import LocationError, open_storage, open_storages, parse_location
from agno_orm.nosql import JsonStorage, YamlStorage
from agno_orm.sql.migrations import specs_from_x_args
from agno_orm.sql.models import TableSpec


def test_sql_options_leave_the_url_and_the_rest_goes_to_the_driver() -> None:
    location = parse_location(
        "postgresql+psycopg://me:secret@db:5432/app?table=bots&mode=team&sslmode=disable"
    )
    assert location.kind == "sql"
    assert location.options == {"table": "bots", "mode": "team"}
    assert location.sql_url().render_as_string(hide_password=False) == (
        "postgresql+psycopg://me:secret@db:5432/app?sslmode=disable"
    )
    assert location.table_specs() == [TableSpec("team", "bots", "ai")]


def test_printed_locations_hide_passwords() -> None:
    for text in ("postgresql+psycopg://me:secret@db/app", "redis://:secret@cache:6379/0?prefix=p"):
        assert "secret" not in parse_location(text).display
        assert "***" in parse_location(text).display


@pytest.mark.parametrize(
    ("options", "x_args"),
    [
        ("", {}),
        ("?schema=s1", {"schema": "s1"}),
        ("?table=t&mode=workflow_v2", {"table": "t", "mode": "workflow_v2"}),
        ("?agent_table=bots&team_table=crews", {"agent_table": "bots", "team_table": "crews"}),
    ],
)
def test_sql_tables_are_the_ones_alembic_upgrade_head_migrates_for_the_same_x_options(
    options: str, x_args: dict[str, str]
) -> None:
    location = parse_location(f"postgresql+psycopg://db/app{options}")
    assert location.table_specs() == specs_from_x_args(x_args, "postgresql")


def test_mode_without_table_names_that_modes_table_of_the_default_set() -> None:
    assert parse_location("sqlite:///a.db?mode=team").table_specs() == [TableSpec("team", "team_sessions")]
    renamed = parse_location("sqlite:///a.db?mode=team&team_table=crews&agent_table=bots")
    assert renamed.table_specs() == [TableSpec("team", "crews")]


def test_flags_override_the_query_options() -> None:
    location = parse_location("sqlite:///a.db?table=x&mode=team", table="y", mode="agent")
    assert location.table_specs() == [TableSpec("agent", "y")]


def test_file_locations_count_slashes_as_sqlite_urls_do(tmp_path: Path) -> None:
    assert parse_location("json:///relative/dir").address == "relative/dir"
    assert parse_location(f"json:///{tmp_path}/a%20b").address == f"{tmp_path}/a b"
    yaml = parse_location("yaml:////abs/dir?mode=team")
    assert (yaml.kind, yaml.address, yaml.mode) == ("yaml", "/abs/dir", "team")


def test_a_location_without_mode_names_every_mode_and_with_one_names_one(tmp_path: Path) -> None:
    with open_storages(f"json:///{tmp_path}") as every:
        assert sorted(every.storages) == ["agent", "team", "workflow", "workflow_v2"]
        assert all(isinstance(s, JsonStorage) for s in every.storages.values())
        assert not every.explicit
    with open_storages(f"yaml:///{tmp_path}?mode=workflow") as one:
        assert list(one.storages) == ["workflow"]
        assert isinstance(one.storages["workflow"], YamlStorage)
        assert one.explicit


def test_sql_locations_open_the_dialects_storage_on_the_named_table(
    tmp_path: Path, postgres_url: str
) -> None:
    with open_storages(f"sqlite:///{tmp_path}/a.db?table=bots") as sqlite:
        (storage,) = sqlite.storages.values()
        assert isinstance(storage, SqliteStorage)
        assert (storage.table_name, storage.mode) == ("bots", "agent")
    storage = open_storage(f"{postgres_url}?schema=s2", mode="team")
    assert isinstance(storage, PostgresStorage)
    assert (storage.table_name, storage.schema, storage.mode) == ("team_sessions", "s2", "team")
    storage.db_engine.dispose()


def test_server_locations_take_their_options() -> None:
    redis = parse_location("rediss://:pw@cache:6380/2?prefix=agno&mode=team&ssl_cert_reqs=none")
    assert (redis.kind, redis.options["prefix"], redis.mode) == ("redis", "agno", "team")
    assert redis.address == "rediss://:pw@cache:6380/2?ssl_cert_reqs=none"
    mongo = parse_location("mongodb+srv://cluster.example.net/?collection=sessions&db=prod&retryWrites=true")
    assert (mongo.options["collection"], mongo.options["db"]) == ("sessions", "prod")
    assert mongo.address == "mongodb+srv://cluster.example.net/?retryWrites=true"
    dynamo = parse_location("dynamodb://agno_sessions?region=eu-west-1&endpoint_url=http://127.0.0.1:8000")
    assert (dynamo.address, dynamo.options["region"]) == ("agno_sessions", "eu-west-1")
    assert dynamo.options["endpoint_url"] == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no location given"),
        ("just-a-name", "not a storage location"),
        ("oracle://db/app", "not a storage location"),
        ("postgres://db/app", "postgresql+psycopg://"),
        ("postgresql+psycopg://me:secret@db:port/app", "not a database URL"),
        ("sqlite:///a.db?tabel=x", "unknown option(s) tabel"),
        ("sqlite:///a.db?mode=robots", "unknown mode 'robots'"),
        ("json://host/dir", "names a directory"),
        ("json:///", "names no directory"),
        ("json:///dir?prefix=x", "unknown option(s) prefix"),
        ("redis://cache:6379/0", "needs ?prefix="),
        ("mongodb://db/", "needs ?collection="),
        ("dynamodb://?region=x", "dynamodb://TABLE_NAME"),
    ],
)
def test_bad_locations_are_refused_saying_why(text: str, message: str) -> None:
    with pytest.raises(LocationError, match=re.escape(message)):
        parse_location(text)


def test_refusals_never_show_a_password() -> None:
    with pytest.raises(LocationError) as refused:
        parse_location("postgresql+psycopg://me:secret@db:port/app")
    assert "secret" not in str(refused.value)


def test_table_and_schema_flags_apply_to_sql_only() -> None:
    with pytest.raises(LocationError, match="--table applies to SQL"):
        parse_location("json:///dir", table="x")
