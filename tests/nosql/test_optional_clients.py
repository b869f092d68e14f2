"""Client libraries are optional: importing needs none, using a backend without its client names the extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCK_CLIENTS = """
import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"redis", "pymongo", "boto3", "botocore", "yaml"}:
            raise ImportError(f"{name} is blocked")
sys.meta_path.insert(0, Blocked())
"""


def run_without_clients(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_CLIENTS + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_importing_the_packages_needs_no_client_library() -> None:
    result = run_without_clients(
        """
        import agno_orm, agno_orm.nosql
        from agno_orm.nosql import DynamoDbStorage, JsonStorage, MongoDbStorage, RedisStorage, YamlStorage
        print(sorted(m for m in sys.modules if m.split(".")[0] in {"redis", "pymongo", "boto3", "yaml"}))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


@pytest.mark.parametrize(
    ("construct", "package", "extra"),
    [
        ("YamlStorage('dir')", "PyYAML", "yaml"),
        ("RedisStorage('prefix')", "redis", "redis"),
        ("MongoDbStorage('sessions')", "pymongo", "mongodb"),
        ("DynamoDbStorage('sessions', region_name='us-east-1')", "boto3", "dynamodb"),
    ],
)
def test_a_backend_without_its_client_raises_missing_dependency_error(
    construct: str, package: str, extra: str
) -> None:
    result = run_without_clients(
        f"""
        from agno_orm import MissingDependencyError
        from agno_orm.nosql import *
        try:
            {construct}
        except MissingDependencyError as exc:
            print(exc.package, exc.extra, isinstance(exc, ImportError))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{package} {extra} True\n"


def test_json_storage_needs_no_client_library(tmp_path: object) -> None:
    result = run_without_clients(
        f"""
        from agno_orm.nosql import JsonStorage
        storage = JsonStorage({str(tmp_path)!r})
        storage.upsert({{"session_id": "s1"}})
        print(storage.get_all_session_ids())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "['s1']\n"
