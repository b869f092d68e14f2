from __future__ import annotations

from typing import Any

import pytest

from agno_orm import Storage
from agno_orm.nosql import DynamoDbStorage

NAME = "dynamodb"

# moto accepts any credentials; real ones must never be needed (or picked up) by the tests.
TEST_CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}


def make(request: pytest.FixtureRequest, table_name: str, mode: Any, **options: Any) -> Storage:
    client = request.getfixturevalue("dynamodb_client")
    options = {"billing_mode": "PAY_PER_REQUEST", **options}
    return DynamoDbStorage(table_name, client=client, mode=mode, **options)
