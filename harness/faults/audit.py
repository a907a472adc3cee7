"""The exactly-once audit of a fault scenario run on the enforcement pipeline.

`seed_strategy_jobs(conn, n)` enqueues one enforcement_strategy job per new judgment; its
handler stores one plan and enqueues one drafting job, whose handler stores one packet, each in
the handler's own transaction, and each run appends what it applied to ops.effect_log
(migration 0016) in that transaction.

The audit counts effect *applications*, not surviving rows (plans and packets are unique per
judgment, so a handler that committed twice still leaves one): per job and effect kind, a second
committed application with the same key is a re-execution (expected under at-least-once), one
with another key is a duplicated visible effect (two drafting jobs for one strategy run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from harness.waiting import wait_until
from reference.jobqueue import JobType, QueueClient

# What each job type's handler applies once per run (reference/workers/enforcement_engine.py).
EFFECTS = {
    JobType.ENFORCEMENT_STRATEGY.value: ("plan", "drafting_job"),
    JobType.ENFORCEMENT_DRAFTING.value: ("draft_packet",),
}

_FIGURES = """
WITH per_effect AS (
    SELECT job_id, effect_kind, count(*) AS applied, count(DISTINCT effect_key) AS keys
    FROM ops.effect_log
    GROUP BY job_id, effect_kind
), per_job AS (
    SELECT q.id, q.job_type, q.status::text AS status, q.attempts,
           coalesce(array_agg(e.effect_kind) FILTER (WHERE e.job_id IS NOT NULL), '{}') AS kinds,
           coalesce(max(e.applied), 0) AS most_applied,
           coalesce(sum(e.keys - 1), 0) AS extra_keys
    FROM ops.job_queue AS q
    LEFT JOIN per_effect AS e ON e.job_id = q.id
    GROUP BY q.id
)
SELECT id, job_type, status, attempts, kinds, most_applied, extra_keys FROM per_job
"""


@dataclass(frozen=True)
class FaultFigures:
    """What a fault run did to the jobs: the audit's counts."""

    jobs: int  # jobs expected
    completed: int
    lost: int  # expected jobs not completed, or completed without their effects
    reexecuted: int  # jobs run again (a later attempt, or a second committed application)
    duplicated: int  # extra visible effects: a second key for one job and effect kind
    applications: int  # committed effect applications in ops.effect_log

    def problems(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{self.lost} of {self.jobs} jobs lost (not completed with its effects)")
        if self.duplicated:
            found.append(f"{self.duplicated} duplicated visible effects (must be 0)")
        return found


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


def fault_figures(conn: psycopg.Connection[Any], judgments: int) -> FaultFigures:
    """The counts over every job of the database (`judgments` strategy jobs were seeded)."""
    rows = conn.execute(_FIGURES).fetchall()
    completed = lost = reexecuted = duplicated = 0
    for _id, job_type, status, attempts, kinds, most_applied, extra_keys in rows:
        completed += status == "completed"
        lost += status != "completed" or not set(EFFECTS.get(job_type, ())) <= set(kinds)
        reexecuted += attempts > 1 or most_applied > 1
        duplicated += int(extra_keys)
    row = conn.execute("SELECT count(*) FROM ops.effect_log").fetchone()
    jobs = 2 * judgments
    return FaultFigures(
        jobs=jobs,
        completed=completed,
        lost=lost + max(0, jobs - len(rows)),  # a job never enqueued is lost too
        reexecuted=reexecuted,
        duplicated=duplicated,
        applications=int(row[0]) if row else 0,
    )


def audit_enforcement(conn: psycopg.Connection[Any], judgments: int) -> FaultFigures:
    """AssertionError naming what is off (lost jobs, duplicated effects); else the figures."""
    figures = fault_figures(conn, judgments)
    if problems := figures.problems():
        raise AssertionError(f"exactly-once audit: {'; '.join(problems)} ({figures})")
    plans = conn.execute(
        "SELECT count(*), count(DISTINCT judgment_id) FROM enforcement.plans"
    ).fetchone()
    packets = conn.execute("SELECT count(*) FROM enforcement.draft_packets").fetchone()
    if figures.completed != figures.jobs:
        raise AssertionError(f"{figures.completed} jobs completed, want {figures.jobs}")
    if plans != (judgments, judgments) or packets != (judgments,):
        raise AssertionError(f"effects not exactly once: plans {plans}, packets {packets}")
    return figures


def drain_and_audit(
    conn: psycopg.Connection[Any], judgments: int, timeout: float = 240.0
) -> FaultFigures:
    """Wait until both jobs of every judgment completed (strategy, drafting), then audit."""
    wait_until(
        "every job to complete",
        lambda: completed_jobs(conn) == 2 * judgments,
        timeout=timeout,
        poll=0.2,
    )
    return audit_enforcement(conn, judgments)
