"""The health view and the queue-depth gauge read only unfinished jobs, through an index.

Beside 1,000,000 completed rows their plans touch a handful of shared buffers (buffers, not
timings, so the assertion is deterministic), and the check fails once the index is gone.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from reference.api.sql import query

pytestmark = pytest.mark.slow

Conn = psycopg.Connection[Any]
COMPLETED_ROWS = 1_000_000
MAX_BUFFERS = 100
STATEMENTS = {
    "ops.v_queue_health": "SELECT * FROM ops.v_queue_health",
    "the dragonfly.queue.depth gauge": bytes(query("queue_depth")).decode(),
}


def plan_violations(conn: Conn, statement: str) -> list[str]:
    """Seq scans of ops.job_queue, and shared buffers touched beyond MAX_BUFFERS."""
    row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}").fetchone()
    assert row is not None
    plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
    violations: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Relation Name") == "job_queue" and node["Node Type"] == "Seq Scan":
            violations.append("Seq Scan on job_queue")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    touched = int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])
    if touched > MAX_BUFFERS:
        violations.append(f"{touched} shared buffers touched > {MAX_BUFFERS}")
    return violations


@pytest.fixture
def long_history(db_conn: Conn) -> Conn:
    """A queue that ran for months: 1,000,000 completed jobs beside 60 unfinished ones."""
    db_conn.execute(
        "INSERT INTO ops.job_queue (job_type, status, attempts, locked_by, completed_at) "
        "SELECT 'ingest_csv', 'completed', 1, 'old-worker', now() - interval '1 day' "
        "FROM generate_series(1, %s)",
        (COMPLETED_ROWS,),
    )
    db_conn.execute(
        "INSERT INTO ops.job_queue (job_type, status, attempts, locked_at, locked_by, "
        "dead_lettered_at) SELECT t, s::ops.job_status, 1, "
        "CASE WHEN s = 'processing' THEN now() END, CASE WHEN s = 'processing' THEN 'w' END, "
        "CASE WHEN s = 'failed' THEN now() END "
        "FROM unnest(ARRAY['ingest_csv', 'enforcement_strategy']) AS t, "
        "unnest(ARRAY['pending', 'processing', 'failed']) AS s, generate_series(1, 10)"
    )
    db_conn.execute("VACUUM (ANALYZE) ops.job_queue")
    return db_conn


def test_health_view_and_gauge_plans_stay_small_beside_a_million_completed_jobs(
    long_history: Conn,
) -> None:
    health = long_history.execute(
        "SELECT job_type, pending, processing, failed FROM ops.v_queue_health "
        "WHERE job_type IN ('ingest_csv', 'enforcement_strategy') ORDER BY job_type"
    ).fetchall()
    assert health == [("enforcement_strategy", 10, 10, 10), ("ingest_csv", 10, 10, 10)]
    for name, statement in STATEMENTS.items():
        assert plan_violations(long_history, statement) == [], name

    # The check catches what it targets: without the partial index both read the history.
    long_history.execute("DROP INDEX ops.job_queue_unfinished_idx")
    long_history.execute("ANALYZE ops.job_queue")
    for name, statement in STATEMENTS.items():
        assert plan_violations(long_history, statement) != [], name
