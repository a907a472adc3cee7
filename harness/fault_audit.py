"""The exactly-once audit of a fault scenario run on the enforcement pipeline.

`seed_strategy_jobs(conn, n)` enqueues one enforcement_strategy job per new judgment; its
handler stores one plan and enqueues one drafting job, whose handler stores one packet, each in
the handler's own transaction. `audit_enforcement(conn, n)` then checks that every job reached
exactly one terminal state (completed) and every effect happened exactly once.
"""

from __future__ import annotations

from typing import Any

import psycopg

from reference.jobqueue import JobType, QueueClient


def seed_strategy_jobs(conn: psycopg.Connection[Any], count: int, first: int = 0) -> None:
    """Judgments FAULT-<first+1>..FAULT-<first+count>, one strategy job each."""
    rows = conn.execute(
        "INSERT INTO public.judgments (case_number, plaintiff, defendant, judgment_amount) "
        "SELECT 'FAULT-' || n, 'Plaintiff ' || n, 'Defendant ' || n, 1000 + n "
        "FROM generate_series(%s + 1, %s + %s) AS n RETURNING id",
        (first, first, count),
    ).fetchall()
    queue = QueueClient(conn)
    for (judgment_id,) in rows:
        queue.queue_job(JobType.ENFORCEMENT_STRATEGY, {"judgment_id": str(judgment_id)})


def completed_jobs(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM ops.job_queue WHERE status = 'completed'").fetchone()
    return int(row[0]) if row else 0


def audit_enforcement(conn: psycopg.Connection[Any], judgments: int) -> dict[str, int]:
    """AssertionError naming what is off; else the figures (jobs, lost, duplicated effects)."""
    statuses = dict(
        conn.execute("SELECT status::text, count(*) FROM ops.job_queue GROUP BY 1").fetchall()
    )
    plans = conn.execute(
        "SELECT count(*), count(DISTINCT judgment_id) FROM enforcement.plans"
    ).fetchone()
    packets = conn.execute("SELECT count(*) FROM enforcement.draft_packets").fetchone()
    jobs = 2 * judgments
    lost = jobs - statuses.get("completed", 0)
    duplicated = (plans[0] - judgments if plans else 0) + (packets[0] - judgments if packets else 0)
    if statuses != {"completed": jobs}:
        raise AssertionError(f"not every job completed exactly once: {statuses} (want {jobs})")
    if plans != (judgments, judgments) or packets != (judgments,):
        raise AssertionError(f"effects not exactly once: plans {plans}, packets {packets}")
    return {"jobs": jobs, "lost": lost, "duplicated effects": duplicated}
