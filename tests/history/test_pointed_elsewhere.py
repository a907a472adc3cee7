"""The property layer pointed at another database: `--pg-url` plus `--pg-template`.

A team checks its own queue SQL by giving the harness a server and a database that already
holds its schema (the queue functions, reading time through `ops.clock()`); the state machine
and the history checker then clone that database per test instead of migrating ours. Here the
"team's" database is made on this session's server, and an inner pytest run is pointed at it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from harness.postgres.server import PostgresServer
from reference.db import apply_migrations

PROPERTY_TESTS = Path(__file__).parent.parent


@pytest.fixture
def team_database(pg_server: PostgresServer) -> Iterator[str]:
    """A database with the queue schema that the harness did not create as its template."""
    name = f"team_queue_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server.conninfo, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            apply_migrations(pg_server.conninfo_for(name))
            yield name
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_state_machine_and_the_history_check_run_against_another_database(
    pytester: pytest.Pytester,
    pg_server: PostgresServer,
    team_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRAGONFLY_PG_URL", pg_server.conninfo)  # not on the command line
    result = pytester.runpytest_subprocess(
        str(PROPERTY_TESTS / "stateful" / "test_queue_model_machine.py"),
        str(PROPERTY_TESTS / "history" / "test_concurrent_history.py")
        + "::test_concurrent_calls_keep_every_rule_of_the_queue",
        "--pg-source=external",
        f"--pg-template={team_database}",
        "--hypothesis-profile=fast",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=3)
    with psycopg.connect(pg_server.conninfo_for(team_database)) as conn:
        row = conn.execute("SELECT count(*) FROM ops.job_queue").fetchone()
    assert row == (0,), "the team's database is cloned, never written to"
