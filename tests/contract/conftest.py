"""Shared by the contract tests: the async tests run on asyncio (see harness.asgi)."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
