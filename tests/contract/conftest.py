"""Shared by the contract tests: the target's API and database, and the committed OpenAPI.

With no target named (see harness.plugin.target_options) `contract_api` is the reference
in-process and `contract_db` this test's database; with one named they are the deployment's,
and the database session is read-only unless --allow-writes is given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.targets import Target
from harness.targets.contract import TargetApi, target_client, target_db_connection

OPENAPI_SNAPSHOT = Path(__file__).with_name("openapi.json")


@pytest.fixture
def anyio_backend() -> str:
    """The async tests run on asyncio (see harness.stack.asgi)."""
    return "asyncio"


@pytest.fixture(scope="session")
def openapi_snapshot() -> dict[str, Any]:
    """The committed OpenAPI document: the HTTP contract every target is checked against."""
    spec: dict[str, Any] = json.loads(OPENAPI_SNAPSHOT.read_text())
    return spec


@pytest.fixture
def contract_api(
    target: Target, request: pytest.FixtureRequest, openapi_snapshot: dict[str, Any]
) -> Iterator[TargetApi]:
    """A client for the target's API whose every response is checked against the snapshot."""
    if not target.is_local and target.api_url is None:
        pytest.skip(f"the named target {target.describe()} has no API: pass --api-url")
    # The in-process API connects as its least-privileged login user, as deployed.
    database_url = request.getfixturevalue("api_database_url") if target.is_local else None
    with target_client(target, database_url, openapi_snapshot) as api:
        yield api


@pytest.fixture
def contract_db(target: Target, request: pytest.FixtureRequest) -> Iterator[Any]:
    """An autocommit connection to the target's database (read-only unless writes are allowed)."""
    if target.is_local:
        yield request.getfixturevalue("db_conn")
        return
    url = target.db_url_value()
    if url is None:
        pytest.skip(f"the named target {target.describe()} has no database: pass --db-url")
    with target_db_connection(url, may_write=target.may_write) as conn:
        yield conn


@pytest.fixture
def own_db(target: Target, request: pytest.FixtureRequest) -> Any:
    """This test's own database, for checks that need an empty queue: local targets only."""
    if not target.is_local:
        pytest.skip(
            "needs a database of its own (exact counts on an empty queue): runs against the "
            "local reference only"
        )
    return request.getfixturevalue("db_conn")
