"""A durable Postgres container of a fault test's own, for faults the session container can't take.

The session container keeps its data on tmpfs (fast clones) behind a random published port:
a restart would lose the data and a network cut may not come back. This one keeps its data on
the container's disk behind a fixed host port.

`report_faults(line)` prints a test's fault figures and collects them for the terminal summary's
"fault figures" section, so a green run shows what it proved.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.plugin import IMAGE_ENV, STACK_TEST_ENV
from harness.postgres.container import DEFAULT_IMAGE, start_container
from harness.postgres.server import PostgresServer, PostgresSourceError
from harness.stack.processes import ReferenceStack
from reference.db import apply_migrations

FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def report_faults(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print a fault test's figures line and keep it for the terminal summary."""
    lines = request.config.stash.setdefault(FIGURES, [])

    def report(line: str) -> None:
        print(line)
        lines.append(line)

    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("fault figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def durable_container(
    pytestconfig: pytest.Config, pg_server: PostgresServer
) -> Iterator[PostgresServer]:
    """A migrated durable container (container source only), stopped after the test."""
    if pg_server.source != "container":
        pytest.skip(
            "a durable container of its own needs the container source (--pg-source=container)"
        )
    image = pytestconfig.getoption("--pg-image") or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE
    try:
        server = start_container(str(image), durable=True)
    except PostgresSourceError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        apply_migrations(server.conninfo)
        yield server
    finally:
        server.stop()


@pytest.fixture
def durable_stack(durable_container: PostgresServer, tmp_path: Path) -> Iterator[ReferenceStack]:
    """The reference services as real processes on the durable container's database."""
    stack = ReferenceStack(durable_container.url, tmp_path / "services", extra_env=STACK_TEST_ENV)
    try:
        yield stack
    finally:
        stack.stop()
