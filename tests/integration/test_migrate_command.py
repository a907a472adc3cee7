"""`dragonfly-harness migrate`: on real databases, as a real process."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from harness.postgres.databases import TestDatabases
from harness.postgres.server import PostgresServer
from reference.db import load_migrations


@pytest.fixture
def empty_url(pg_server: PostgresServer, pg_databases: TestDatabases) -> Iterator[str]:
    """postgresql:// URL (with its password) of a fresh database no migration ran in."""
    name = f"{pg_databases.prefix}_cli_{secrets.token_hex(4)}"
    pg_databases.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield str(pg_server.url_for(name))
    finally:
        pg_databases.drop(name)


def migrate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "migrate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def password_of(url: str) -> str:
    password = conninfo_to_dict(url).get("password")
    assert password, "the test server's URL has a password, so masking can be checked"
    return str(password)


def test_dry_run_lists_every_pending_migration_and_changes_nothing(empty_url: str) -> None:
    result = migrate("--db-url", empty_url, "--dry-run")

    assert result.returncode == 0, result.stderr
    labels = [m.label for m in load_migrations()]
    assert [line.split()[2] for line in result.stdout.splitlines()[1:-1]] == labels
    assert f"dry run: {len(labels)} pending migration(s); nothing was changed" in result.stdout
    assert password_of(empty_url) not in result.stdout + result.stderr
    with psycopg.connect(empty_url) as conn:
        row = conn.execute("SELECT to_regclass('ops.schema_migrations')").fetchone()
    assert row == (None,)


def test_migrate_applies_each_with_its_time_then_nothing(empty_url: str) -> None:
    first = migrate(env={"DATABASE_URL": empty_url})
    again = migrate("--db-url", empty_url)
    dry = migrate("--db-url", empty_url, "--dry-run")

    print(first.stdout)
    assert first.returncode == 0, first.stderr
    applied = [line for line in first.stdout.splitlines() if line.startswith("applied ")]
    assert len(applied) == len(load_migrations())
    assert applied[0].startswith("applied 0001_job_queue (in its own transaction) in ")
    assert applied[0].endswith(" s")
    assert password_of(empty_url) not in first.stdout + first.stderr
    assert again.returncode == 0, again.stderr
    assert "0 migration(s) applied" in again.stdout
    assert "dry run: 0 pending migration(s)" in dry.stdout


def test_a_refused_history_exits_1_naming_the_fix(empty_url: str) -> None:
    assert migrate("--db-url", empty_url).returncode == 0
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("UPDATE ops.schema_migrations SET checksum = 'x' WHERE version = 3")

    for args in (["--dry-run"], []):
        result = migrate("--db-url", empty_url, *args)
        assert result.returncode == 1, result
        assert "0003_operator_views was changed after it was applied" in result.stderr
        assert password_of(empty_url) not in result.stdout + result.stderr


def test_no_url_or_a_zero_timeout_exits_2_and_an_unreachable_server_exits_3() -> None:
    missing = migrate()
    no_timeout = migrate("--db-url", "postgresql://app@127.0.0.1:1/db", "--lock-timeout", "0")
    unreachable = migrate("--db-url", "postgresql://app:s3cret-pw@127.0.0.1:1/db?connect_timeout=2")

    assert missing.returncode == 2
    assert "pass --db-url or set DRAGONFLY_TARGET_DB_URL" in missing.stderr
    assert no_timeout.returncode == 2
    assert "the lock timeout and the statement timeout must be positive" in no_timeout.stderr
    assert unreachable.returncode == 3, unreachable
    assert "cannot reach 127.0.0.1:1/db" in unreachable.stderr
    assert "s3cret-pw" not in unreachable.stdout + unreachable.stderr
