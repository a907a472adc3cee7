"""A smoke run through a transaction pooler leaves nothing behind for production to inherit.

Production reaches its database through Supabase's pooler in transaction mode: a session-level
setting stays on the server connection that ran it, and the next client, a worker or the API,
inherits it. These tests need the harness's pooler source (PgBouncer in transaction mode, a
small pool): run them with `--pg-source pooler`; under any other source they are skipped.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from smoke_runs import ProdDeployment, run_smoke

from harness.postgres.server import PostgresServer
from harness.waiting import wait_until

Conn = psycopg.Connection[Any]
# What a server connection shows when nothing changed its session.
DEFAULTS = {
    "default_transaction_read_only": "off",
    "transaction_read_only": "off",
    "statement_timeout": "0",
    "lock_timeout": "0",
    "idle_in_transaction_session_timeout": "0",
}
# Settings PgBouncer itself SETs on a server connection to match each client's startup values.
POOLER_TRACKED = {
    "application_name", "client_encoding", "DateStyle", "TimeZone", "IntervalStyle",
    "standard_conforming_strings",
}  # fmt: skip
# A write inside the smoke's read transaction, then a read on the same connection.
TRY_WRITE = """
import sys, psycopg
from smoke.database import SmokeDatabase
with SmokeDatabase.connect(sys.argv[1], statement_timeout=5) as db:
    try:
        with db.transaction() as conn:
            conn.execute("SELECT ops.queue_job('smoke_canary')")
        print("wrote")
    except psycopg.errors.ReadOnlySqlTransaction:
        print("refused")
    print("reads" if db.column("server_version") else "no read")
"""
CSV = (
    "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\n"
    "POOL-1,Pool Plaintiff,Pool Defendant,$2.00,2024-01-02,Kings\n"
)


@pytest.fixture
def pool_size(pg_server: PostgresServer) -> int:
    """Server connections per database and user behind the pooler; skips without a pooler."""
    if pg_server.source != "pooler":
        pytest.skip(
            f"needs the pooler source (run with --pg-source pooler); this run uses "
            f"{pg_server.source!r}"
        )
    size = getattr(pg_server, "pool_size", None)  # only the pooler source's server has it
    assert isinstance(size, int), f"the pooler source gave pool_size={size!r}"
    assert size > 0, f"the pooler source gave pool_size={size!r}"
    return size


def _pooled(url: str) -> Conn:
    return psycopg.connect(url, autocommit=True, prepare_threshold=None)


def every_server_connection(url: str, pool_size: int) -> Iterator[Conn]:
    """`pool_size` clients, each inside a transaction at the same time: each holds a server
    connection of its own, so together they visit every one in the pool (ended with ROLLBACK:
    a client leaving mid-transaction would make the pooler drop its server connection)."""
    with ExitStack() as stack:
        clients = [stack.enter_context(_pooled(url)) for _ in range(pool_size)]
        for client in clients:
            stack.enter_context(client.transaction(force_rollback=True))
            client.execute("SELECT 1")  # the pooler assigns a server connection now
        yield from clients


def _session_of(conn: Conn) -> dict[str, Any]:
    shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in DEFAULTS}  # type: ignore[index]
    changed = conn.execute(  # anything a client SET for the session (not SET LOCAL)
        "SELECT name, setting FROM pg_settings WHERE source = 'session' AND NOT (name = ANY(%s))",
        [sorted(POOLER_TRACKED)],
    ).fetchall()
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    return {"pid": pid, **shown, "changed": changed}


def _server_connections(url: str, pool_size: int) -> list[dict[str, Any]]:
    seen = []
    for conn in every_server_connection(url, pool_size):
        session = _session_of(conn)
        try:  # a write works there (rolled back with the visit)
            with conn.transaction():
                conn.execute("SELECT ops.queue_job('smoke_canary')")
            session["write"] = "ok"
        except psycopg.Error as error:
            session["write"] = str(error).splitlines()[0]
        seen.append(session)
    return seen


def test_a_smoke_run_through_the_pooler_leaves_every_server_connection_as_it_was(
    pool_size: int, prod_to_break: ProdDeployment, tmp_path: Path
) -> None:
    url = prod_to_break.database_url  # the stack, smoke and this test all go through the pooler
    before = _server_connections(url, pool_size)
    assert len({c["pid"] for c in before}) == pool_size  # every server connection visited
    assert {c["write"] for c in before} == {"ok"}

    run = run_smoke(prod_to_break.env(), "--allow-writes", "--canary-csv", tmp_path=tmp_path)
    assert run.code == 0, run.stdout + run.stderr

    after = _server_connections(url, pool_size)
    assert len({c["pid"] for c in after}) == pool_size
    for conn in after:
        assert {name: conn[name] for name in DEFAULTS} == DEFAULTS, conn
        assert conn["changed"] == [], conn
        assert conn["write"] == "ok", conn
    # Production traffic through the same pool: an upload, and a worker claims and completes it.
    api = prod_to_break.stack
    response = httpx.post(
        f"{api.api_url}/api/v1/intake/upload",
        headers={"X-DRAGONFLY-API-KEY": api.api_key},
        files={"file": ("pooled.csv", CSV.encode(), "text/csv")},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    batch = f"{api.api_url}/api/v1/intake/batches/{response.json()['batch_id']}"

    def finished() -> dict[str, Any] | None:
        body = httpx.get(batch, timeout=10).json()
        return body if body.get("status") in ("completed", "failed") else None

    done = wait_until("the worker to finish the upload", finished, 60)
    assert (done["status"], done["valid_rows"]) == ("completed", 1), done
    for name in ("api", "ingest", "enforcement"):
        assert "read-only transaction" not in api.services[name].stderr(), name


def test_smoke_reads_cannot_write_on_any_server_connection(
    pool_size: int, database_url: str
) -> None:
    """Each smoke read is its own BEGIN READ ONLY, whichever server connection it lands on."""
    for held in range(pool_size):  # other clients hold 0, 1, ... of the server connections
        with ExitStack() as others:
            for _ in range(held):
                other = others.enter_context(_pooled(database_url))
                others.enter_context(other.transaction(force_rollback=True))
                other.execute("SELECT 1")
            # In a process of its own: here `smoke` is this folder, without its .sql file.
            attempt = subprocess.run(
                [sys.executable, "-c", TRY_WRITE, database_url],
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert attempt.stdout.split() == ["refused", "reads"], attempt.stderr
