"""Fixtures of the smoke tests: loopback stand-ins and a healthy 'prod' deployment."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from smoke_runs import ProdDeployment, start_prod_services
from standins import LoopbackServer, Responder

from harness.plugin import STACK_TEST_ENV
from harness.postgres.databases import TestDatabases
from harness.postgres.server import PostgresServer
from harness.stack.processes import ReferenceStack


@pytest.fixture
def serve() -> Iterator[Callable[[Responder], LoopbackServer]]:
    """Start a loopback HTTP server for a responder; all are closed afterwards."""
    servers: list[LoopbackServer] = []

    def start(respond: Responder) -> LoopbackServer:
        servers.append(LoopbackServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def shared_stack(
    pg_server: PostgresServer, pg_databases: TestDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReferenceStack]:
    """One healthy stack for the module's tests that change only what smoke is told."""
    name = pg_databases.clone()
    url, logins = pg_server.url_for(name), pg_databases.logins
    stack = ReferenceStack(
        url,
        tmp_path_factory.mktemp("services"),
        extra_env=dict(STACK_TEST_ENV),
        service_urls=logins.urls(url) if logins else {},  # the services' least-privileged users
    )
    try:
        start_prod_services(stack)
        yield stack
    finally:
        stack.stop()
        pg_databases.drop(name)


@pytest.fixture
def prod(
    shared_stack: ReferenceStack, serve: Callable[[Responder], LoopbackServer]
) -> ProdDeployment:
    """The shared healthy 'prod' deployment: tests may change smoke's variables, not the stack."""
    return ProdDeployment(shared_stack, serve)


@pytest.fixture
def prod_to_break(
    reference_stack: ReferenceStack, serve: Callable[[Responder], LoopbackServer]
) -> ProdDeployment:
    """A 'prod' deployment of this test's own, on its own database, for the test to break."""
    start_prod_services(reference_stack)
    return ProdDeployment(reference_stack, serve)
