"""Claims as the table grows, beside history, under a mixed backlog and a held transaction;
and the claim's plan in each case, captured from inside ops.claim_pending_job."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg

from harness.bench.ours import LOAD_TYPE, Drain, drain, fill_completed, fill_pending
from harness.bench.plan_capture import NestedPlans, buffers, nodes, table_scans

GROWTH_THREADS = 16
GROWTH_MAX_JOBS = 1_000  # claimed per case and repetition: a small bite of every backlog
GROWTH_SECONDS = 3.0


@dataclass(frozen=True)
class GrowthCase:
    name: str
    pending: int
    completed: int = 0
    other_type_pending: int = 0  # the mixed backlog: another type's jobs queued ahead


CASES = (
    GrowthCase("2,000 pending", 2_000),
    GrowthCase("20,000 pending", 20_000),
    GrowthCase("200,000 pending", 200_000),
    GrowthCase("20,000 pending beside the completed history", 20_000, completed=1_000_000),
    GrowthCase(
        "mixed: 200,000 ingest_csv queued ahead, claiming load_probe",
        20_000,
        other_type_pending=200_000,
    ),
)


def prepare(conn: psycopg.Connection[Any], case: GrowthCase) -> None:
    """Build the case's table once: its history and the other type's backlog."""
    if case.completed:
        fill_completed(conn, case.completed)
    if case.other_type_pending:
        conn.execute(
            "INSERT INTO ops.job_queue (job_type, run_at) SELECT 'ingest_csv', now() - "
            "interval '2 hours' + g * interval '1 ms' FROM generate_series(1, %s) AS g",
            (case.other_type_pending,),
        )


def top_up(conn: psycopg.Connection[Any], case: GrowthCase) -> None:
    """Bring the pending load_probe jobs back to the case's size before a repetition."""
    row = conn.execute(
        "SELECT count(*) FROM ops.job_queue WHERE status = 'pending' AND job_type = %s",
        (LOAD_TYPE,),
    ).fetchone()
    missing = case.pending - (int(row[0]) if row else 0)
    if missing > 0:
        fill_pending(conn, missing)
    else:
        conn.execute("VACUUM ANALYZE ops.job_queue")


def claim_plan(conn: psycopg.Connection[Any]) -> str:
    """One claim's plan as PostgreSQL ran it: how job_queue was read and the buffers."""
    capture = NestedPlans(conn)
    # A new backend's first claim also fills its caches and compiles the trigger functions
    # (about 80 buffers): capture the second claim, as a worker's steady state.
    for _ in range(2):
        rows, plan = capture.run(
            "SELECT id FROM ops.claim_pending_job(%s, 'bench-plan')",
            ([LOAD_TYPE],),
            containing="candidates AS MATERIALIZED",
        )
        if rows:
            conn.execute("SELECT ops.complete_job(%s, 'bench-plan')", (rows[0][0],))
    scans = ", ".join(f"{kind} {index or ''}".strip() for kind, index in table_scans(plan))
    walk = [n for n in nodes(plan) if n.get("Index Name") == "job_queue_claim_idx"]
    walked = sum(buffers(node) for node in walk)
    return f"{scans}; claim index walk {walked} buffers, statement {buffers(plan['Plan'])}"


def run_case(db_url: str, case: GrowthCase) -> tuple[Drain, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        top_up(conn, case)
    result = drain(
        db_url,
        threads=GROWTH_THREADS,
        max_jobs=GROWTH_MAX_JOBS,
        max_seconds=GROWTH_SECONDS,
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        plan = claim_plan(conn)
    return result, plan


def dead_tuples(conn: psycopg.Connection[Any]) -> int:
    """Dead rows VACUUM could not remove (VACUUM refreshes the count first)."""
    conn.execute("VACUUM ops.job_queue")
    row = conn.execute(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'ops.job_queue'::regclass"
    ).fetchone()
    return int(row[0]) if row else 0


def held_transaction_case(db_url: str, pending: int) -> tuple[Drain, dict[str, int]]:
    """Claims while another session holds a transaction open (vacuum cannot clean up)."""
    case = GrowthCase("held", pending)
    with psycopg.connect(db_url, autocommit=True) as conn:
        top_up(conn, case)
        before = dead_tuples(conn)
        with psycopg.connect(db_url) as holder:  # not autocommit: its transaction stays open
            holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            holder.execute("SELECT txid_current()")
            result = drain(
                db_url,
                threads=GROWTH_THREADS,
                max_jobs=GROWTH_MAX_JOBS * 3,
                max_seconds=GROWTH_SECONDS * 2,
            )
            time.sleep(0.5)  # let the claimers' statistics reach the collector
            during = dead_tuples(conn)
            holder.rollback()
        after = dead_tuples(conn)
    return result, {"before": before, "held": during, "released": after}
