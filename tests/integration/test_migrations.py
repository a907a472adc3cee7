"""The migration runner on empty databases: order, bookkeeping, idempotence, races, history."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from harness.postgres.databases import TestDatabases
from harness.postgres.server import PostgresServer
from harness.waiting import wait_until
from reference.db import MigrationError, apply_migrations, load_migrations

Snapshot = dict[str, list[tuple[Any, ...]]]

USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
)
SNAPSHOT_QUERIES = {
    "schemas": f"SELECT n.nspname FROM pg_namespace AS n WHERE {USER_SCHEMAS}",
    "relations": f"""
        SELECT n.nspname, c.relname, c.relkind::text, c.reloptions::text
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE {USER_SCHEMAS}""",
    "columns": f"""
        SELECT n.nspname, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, a.attidentity::text, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute AS a
        JOIN pg_class AS c ON c.oid = a.attrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND {USER_SCHEMAS}""",
    "indexes": f"""
        SELECT n.schemaname, n.indexname, n.indexdef FROM pg_indexes AS n
        WHERE {USER_SCHEMAS.replace("n.nspname", "n.schemaname")}""",
    "constraints": f"""
        SELECT n.nspname, c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace
        WHERE {USER_SCHEMAS}""",
    "functions": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
               pg_get_functiondef(p.oid)
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE {USER_SCHEMAS}""",
    "views": f"""
        SELECT n.schemaname, n.viewname, n.definition FROM pg_views AS n
        WHERE {USER_SCHEMAS.replace("n.nspname", "n.schemaname")}""",
    "types": f"""
        SELECT n.nspname, t.typname, t.typtype::text,
               array(SELECT e.enumlabel FROM pg_enum AS e
                     WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)::text
        FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
        WHERE {USER_SCHEMAS}""",
    "triggers": f"""
        SELECT n.nspname, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {USER_SCHEMAS}""",
    "job_types": "SELECT job_type, description FROM ops.job_types",
    "migrations": "SELECT version, name, checksum FROM ops.schema_migrations",
}

# Waits for a "go" file, so both processes hit the database at the same moment.
BARRIER = """
from pathlib import Path
from harness.waiting import wait_until
Path(sys.argv[2] + ".ready").write_text("")
wait_until("the go file", Path(sys.argv[3]).exists, timeout=60, poll=0.001)
"""
RUNNER = """
import sys
from reference.db import apply_migrations
{barrier}
print(len(apply_migrations(sys.argv[1])))
"""
# apply_migrations minus pg_advisory_xact_lock: what the lock protects against.
NO_LOCK_RUNNER = """
import sys
import psycopg
from reference.db import load_migrations
from reference.db.migrate import BOOKKEEPING_SQL
# One transaction for all, as before migrate.py had its lock: the no-transaction files
# (CREATE INDEX CONCURRENTLY) cannot run in it and take no part in this race.
migrations = [m for m in load_migrations() if m.transactional]
conn = psycopg.connect(sys.argv[1], autocommit=True)
{barrier}
with conn, conn.transaction():
    conn.execute(BOOKKEEPING_SQL)
    applied = {{v for (v,) in conn.execute("SELECT version FROM ops.schema_migrations")}}
    pending = [m for m in migrations if m.version not in applied]
    for m in pending:
        conn.execute(m.sql.encode())
        conn.execute(
            "INSERT INTO ops.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            (m.version, m.name, m.checksum),
        )
print(len(pending))
"""


def snapshot(conninfo: str) -> Snapshot:
    """Everything the migrations create, free of OIDs and timestamps, sorted."""
    with psycopg.connect(conninfo) as conn:
        return {
            key: sorted(conn.execute(query).fetchall(), key=repr)
            for key, query in SNAPSHOT_QUERIES.items()
        }


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sha256) of each migration file, read straight from the package."""
    folder = resources.files("reference.db") / "migrations"
    files = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return [
        (
            int(name[:4]),
            name[5:-4],
            hashlib.sha256((folder / name).read_text("utf-8").encode()).hexdigest(),
        )
        for name in files
    ]


@pytest.fixture
def new_empty_database(pg_server: PostgresServer, pg_databases: TestDatabases) -> Iterator[Any]:
    """A factory of empty databases (no migrations applied); all dropped afterwards."""
    created: list[str] = []

    def create() -> str:
        name = f"{pg_databases.prefix}_m_{secrets.token_hex(4)}"
        pg_databases.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return pg_server.conninfo_for(name)

    yield create
    for name in created:
        pg_databases.drop(name)


@pytest.fixture
def empty_database_url(new_empty_database: Any) -> str:
    """Connection string of a fresh, empty database."""
    url: str = new_empty_database()
    return url


def race(script: str, url: str, workdir: Path) -> list[tuple[int, str, str]]:
    """Run script in two processes released at once; (exit code, stdout, stderr) of each."""
    go = workdir / f"go-{secrets.token_hex(4)}"
    code = script.format(barrier=BARRIER)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, str(workdir / f"{go.name}-{i}"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        wait_until(
            "the racing processes to get ready",
            # One died before the barrier: communicate() below reports why.
            lambda: (
                all((workdir / f"{go.name}-{i}.ready").exists() for i in range(2))
                or any(proc.poll() is not None for proc in procs)
            ),
            timeout=30,
            poll=0.005,
        )
        go.write_text("")
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            results.append((proc.returncode, out.strip(), err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    return results


def test_empty_database_gets_every_migration_in_order_and_recorded(
    empty_database_url: str,
) -> None:
    files = migration_files()
    assert len(files) >= 4

    applied = apply_migrations(empty_database_url)

    assert [(m.version, m.name) for m in applied] == [(v, name) for v, name, _ in files]
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute(
            "SELECT version, name, checksum FROM ops.schema_migrations ORDER BY version"
        ).fetchall()
    assert rows == files


def test_applying_again_applies_nothing_and_changes_nothing(empty_database_url: str) -> None:
    apply_migrations(empty_database_url)
    before = snapshot(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        applied_at = conn.execute(
            "SELECT version, applied_at FROM ops.schema_migrations"
        ).fetchall()

    assert apply_migrations(empty_database_url) == []

    assert snapshot(empty_database_url) == before
    assert len(before["functions"]) > 0
    assert len(before["views"]) == 2
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT version, applied_at FROM ops.schema_migrations").fetchall() == (
            applied_at
        )


@pytest.mark.parametrize("attempt", range(3))
def test_two_processes_migrating_at_once_apply_each_migration_once(
    new_empty_database: Any, database_url: str, tmp_path: Path, attempt: int
) -> None:
    url = new_empty_database()
    results = race(RUNNER, url, tmp_path)

    assert [code for code, _, _ in results] == [0, 0], results
    # Each migration is its own transaction, so the two may share the work; together they apply
    # each exactly once (a second application would fail: CREATE TABLE of an existing table).
    assert sum(int(out) for _, out, _ in results) == len(load_migrations()), results
    assert snapshot(url) == snapshot(database_url)


def test_without_the_advisory_lock_the_race_breaks(new_empty_database: Any, tmp_path: Path) -> None:
    """Proves the race above is real: the same race minus the lock goes wrong (30/30 locally)."""
    total = str(len([m for m in load_migrations() if m.transactional]))
    outcomes = []
    for _ in range(5):
        results = race(NO_LOCK_RUNNER, new_empty_database(), tmp_path)
        errors = [err for code, _, err in results if code != 0]
        for err in errors:  # the failure is the duplicate object, not something unrelated
            assert "already exists" in err or "duplicate key" in err, err
        both_applied = [out for _, out, _ in results] == [total, total]
        outcomes.append(bool(errors) or both_applied)
        if outcomes[-1]:
            break
    assert any(outcomes), outcomes


def test_a_migration_edited_after_it_was_applied_is_refused(empty_database_url: str) -> None:
    apply_migrations(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("UPDATE ops.schema_migrations SET checksum = 'x' WHERE version = 1")

    with pytest.raises(MigrationError, match="changed after it was applied") as raised:
        apply_migrations(empty_database_url)

    assert "0001_job_queue" in str(raised.value)
    assert "add a new migration instead" in str(raised.value)


def test_a_database_migrated_by_a_newer_version_is_refused(empty_database_url: str) -> None:
    apply_migrations(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ops.schema_migrations (version, name, checksum)"
            " VALUES (9999, 'from_the_future', 'abc')"
        )

    with pytest.raises(MigrationError, match="migrated by a newer version") as raised:
        apply_migrations(empty_database_url)

    assert "9999_from_the_future" in str(raised.value)


def test_a_migration_missing_below_the_newest_applied_one_is_an_error(
    empty_database_url: str,
) -> None:
    apply_migrations(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM ops.schema_migrations WHERE version = 2")

    with pytest.raises(MigrationError, match="0002_queue_functions is older than the newest"):
        apply_migrations(empty_database_url)
