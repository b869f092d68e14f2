"""The contract suite runs on every backend, the async storages' too (driven by tests/async_facade.py)."""

from __future__ import annotations

import pytest

from tests.conftest import backend_params


@pytest.fixture(params=backend_params(with_async=True))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
