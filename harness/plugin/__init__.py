"""The pytest plugin (entry point `pytest11`): a real Postgres per session, a database per test."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.plugin.target_options import (  # noqa: F401 (pytest finds these by name)
    TARGET_KEY,
    add_target_options,
    configure_target,
    pytest_report_header,
    pytest_runtest_setup,
    target,
)
from harness.plugin.traces import register_trace_plugin
from harness.postgres.databases import TestDatabases
from harness.postgres.server import DatabaseUrl, PostgresServer, PostgresSourceError
from harness.postgres.sources import PostgresSource, open_server
from harness.stack.processes import ReferenceStack
from harness.telemetry.collector import OtlpCollector
from harness.telemetry.tracing import harness_span
from reference.jobqueue import QueueClient
from reference.masking import masker
from reference.pooling import PREPARED_STATEMENTS_ENV, PreparedStatements, connect_kwargs

SOURCE_ENV = "DRAGONFLY_PG_SOURCE"
URL_ENV = "DRAGONFLY_PG_URL"
DIRECT_URL_ENV = "DRAGONFLY_PG_DIRECT_URL"
IMAGE_ENV = "DRAGONFLY_PG_IMAGE"
DATA_ROOT_ENV = "DRAGONFLY_PG_DATA_ROOT"
TEMPLATE_ENV = "DRAGONFLY_PG_TEMPLATE"
SERVER_KEY = pytest.StashKey[PostgresServer]()
DATABASES_KEY = pytest.StashKey[TestDatabases]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dragonfly-harness", "real Postgres for tests")
    sources = ", ".join(source.value for source in PostgresSource)
    group.addoption(
        "--pg-source",
        default=None,
        help=f"where the test Postgres comes from: {sources} (default: ${SOURCE_ENV} or auto)",
    )
    group.addoption(
        "--pg-url", default=None, help=f"URL of an external Postgres (default: ${URL_ENV})"
    )
    group.addoption(
        "--pg-direct-url",
        default=None,
        help="when --pg-url goes through a transaction pooler (e.g. Supabase's on 6543): the "
        "server's direct URL, for creating, migrating and cloning databases "
        f"(default: ${DIRECT_URL_ENV})",
    )
    group.addoption(
        "--pg-image",
        default=None,
        help=f"Docker image for the container source (default: ${IMAGE_ENV} or postgres:18)",
    )
    group.addoption(
        "--pg-data-root",
        default=None,
        help=f"folder for the embedded server's data (default: ${DATA_ROOT_ENV} or the temp dir)",
    )
    group.addoption(
        "--pg-template",
        default=None,
        help="an existing database on the server, with your own schema and queue functions, "
        f"to clone for each test instead of migrating a new template (default: ${TEMPLATE_ENV})",
    )

    target_group = parser.getgroup(
        "dragonfly-harness target", "the deployment the contract tests check (SPEC section 5)"
    )
    add_target_options(target_group)


def _setting(config: pytest.Config, option: str, env: str) -> str | None:
    value = config.getoption(option) or os.environ.get(env) or None
    return str(value) if value else None


def chosen_source(config: pytest.Config) -> PostgresSource:
    """The --pg-source option or $DRAGONFLY_PG_SOURCE, validated."""
    raw = _setting(config, "--pg-source", SOURCE_ENV) or PostgresSource.AUTO.value
    try:
        return PostgresSource(raw.strip().lower())
    except ValueError:
        choices = ", ".join(source.value for source in PostgresSource)
        raise pytest.UsageError(
            f"--pg-source / {SOURCE_ENV}: {raw!r} is not one of {choices}"
        ) from None


def pytest_configure(config: pytest.Config) -> None:
    chosen_source(config)  # a bad value is a usage error before any test runs
    configure_target(config)
    register_trace_plugin(config)  # each test is a trace (harness/plugin/traces.py)


@pytest.fixture(scope="session")
def pg_server(pytestconfig: pytest.Config) -> Iterator[PostgresServer]:
    """A running Postgres server for the whole session (container, embedded or external)."""
    data_root = _setting(pytestconfig, "--pg-data-root", DATA_ROOT_ENV)
    try:
        server = open_server(
            chosen_source(pytestconfig),
            url=_setting(pytestconfig, "--pg-url", URL_ENV),
            direct_url=_setting(pytestconfig, "--pg-direct-url", DIRECT_URL_ENV),
            image=_setting(pytestconfig, "--pg-image", IMAGE_ENV),
            data_root=Path(data_root) if data_root else None,
        )
    except PostgresSourceError as error:
        # No traceback: its frames would show the URL argument, password included.
        pytest.fail(str(error), pytrace=False)
    pytestconfig.stash[SERVER_KEY] = server
    try:
        with _no_prepared_statements_if(server.pooled):
            yield server
    finally:
        server.stop()


@contextmanager
def _no_prepared_statements_if(pooled: bool) -> Iterator[None]:
    """Behind a transaction pooler, DATABASE_PREPARED_STATEMENTS=off for this session: the
    fixtures' connections and every process the tests start (services, Locust, smoke) inherit
    it. A value the user set wins, as everywhere (README: the environment rule)."""
    if not pooled or os.environ.get(PREPARED_STATEMENTS_ENV, "").strip():
        yield
        return
    os.environ[PREPARED_STATEMENTS_ENV] = PreparedStatements.OFF.value
    try:
        yield
    finally:
        os.environ.pop(PREPARED_STATEMENTS_ENV, None)


@pytest.fixture(scope="session")
def pg_databases(pytestconfig: pytest.Config, pg_server: PostgresServer) -> Iterator[TestDatabases]:
    """The migrated template database; clones of it are made per test."""
    databases = TestDatabases(pg_server)
    existing = _setting(pytestconfig, "--pg-template", TEMPLATE_ENV)
    if existing:
        databases.adopt_template(existing)
    else:
        with harness_span("migrate_template"):
            databases.create_template()
    pytestconfig.stash[DATABASES_KEY] = databases
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def database_url(pg_server: PostgresServer, pg_databases: TestDatabases) -> Iterator[DatabaseUrl]:
    """postgresql:// URL of this test's own database, cloned from the migrated template.

    A `str` for any client (psycopg, SQLAlchemy, pydantic's PostgresDsn); its repr hides the
    password. `pg_server.conninfo_for(name)` gives the libpq key=value form.
    """
    with harness_span("clone_database"):
        name = pg_databases.clone()
    try:
        yield pg_server.url_for(name)
    finally:
        pg_databases.drop(name)


@pytest.fixture
def worker_database_url(pg_databases: TestDatabases, database_url: DatabaseUrl) -> DatabaseUrl:
    """This test's database as the worker's least-privileged login user (a dragonfly_worker)."""
    return pg_databases.login_url(database_url, "worker")


@pytest.fixture
def api_database_url(pg_databases: TestDatabases, database_url: DatabaseUrl) -> DatabaseUrl:
    """This test's database as the API's least-privileged login user (a dragonfly_api)."""
    return pg_databases.login_url(database_url, "api")


@pytest.fixture
def db_connect(database_url: str) -> Iterator[Callable[..., psycopg.Connection[Any]]]:
    """Opens more autocommit connections to this test's database; all closed afterwards."""
    opened: list[psycopg.Connection[Any]] = []

    def connect(conninfo: str = database_url, **kwargs: Any) -> psycopg.Connection[Any]:
        kwargs.setdefault("autocommit", True)
        conn = psycopg.connect(conninfo, **{**connect_kwargs(conninfo), **kwargs})
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def db_conn(db_connect: Callable[..., psycopg.Connection[Any]]) -> psycopg.Connection[Any]:
    """An autocommit connection to this test's database."""
    return db_connect()


@pytest.fixture
def queue(
    db_connect: Callable[..., psycopg.Connection[Any]], worker_database_url: DatabaseUrl
) -> QueueClient:
    """A queue client on this test's database, connected as the worker's login user."""
    return QueueClient(db_connect(conninfo=worker_database_url))


# Fast enough for tests to see spans and points within a second or two.
STACK_TEST_ENV = {"WORKER_POLL_INTERVAL": "0.2"}
# Defaults only: the user's OTEL_* variables win (README: the environment rule).
STACK_OTEL_DEFAULTS = {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "1000"}


@pytest.fixture
def reference_stack(
    database_url: str,
    worker_database_url: str,
    api_database_url: str,
    otel_collector: OtlpCollector,
    tmp_path: Path,
) -> Iterator[ReferenceStack]:
    """The reference API and workers as real processes on this test's database.

    Nothing starts until the test calls `start_api()` / `start_worker("ingest")`; they export
    telemetry to `otel_collector` and are stopped with SIGTERM afterwards. They connect as the
    least-privileged login users (`stack.database_url` stays the admin's, for the test's checks).
    """
    stack = ReferenceStack(
        database_url,
        tmp_path / "services",
        extra_env={**STACK_TEST_ENV, **otel_collector.service_environment()},
        default_env={"ENVIRONMENT": "dev", **STACK_OTEL_DEFAULTS},
        service_urls={"api": api_database_url, "worker": worker_database_url},
    )
    try:
        yield stack
    finally:
        stack.stop()


def _session_secrets(config: pytest.Config) -> list[str]:
    server = config.stash.get(SERVER_KEY, None)
    passwords = server.passwords if server is not None else []
    chosen = config.stash.get(TARGET_KEY, None)
    databases = config.stash.get(DATABASES_KEY, None)
    logins = databases.logins.secrets() if databases is not None and databases.logins else []
    return [*passwords, *(chosen.secrets() if chosen else []), *logins]


def _scrub(text: str, secrets: list[str]) -> str:
    return masker(secrets)(text)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """No report shows the test server's password: failure text and captured output scrubbed."""
    report = yield
    secrets = _session_secrets(item.config)
    if secrets and report.longrepr is not None:
        text = str(report.longrepr)
        if any(secret in text for secret in secrets):
            report.longrepr = _scrub(text, secrets)
    if secrets:
        report.sections = [(title, _scrub(body, secrets)) for title, body in report.sections]
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    server = config.stash.get(SERVER_KEY, None)
    if server is None:
        return
    lines = [f"postgres: {server.description}"]
    databases = config.stash.get(DATABASES_KEY, None)
    if databases is not None and databases.times.clone_seconds:
        clones = databases.times.clone_seconds
        lines.append(
            f"template migrated in {databases.times.template_seconds * 1000:.0f} ms; "
            f"{len(clones)} clones, median {statistics.median(clones) * 1000:.1f} ms, "
            f"max {max(clones) * 1000:.1f} ms"
        )
    terminalreporter.write_sep("-", "dragonfly-harness")
    for line in lines:
        terminalreporter.write_line(line)
