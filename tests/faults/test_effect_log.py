"""A cut between a handler's commit and its job's completion: the handler commits twice.

Each strategy job is brought to that moment (harness/faults/gate.py: its handler committed, its
worker's completion waits), then the worker's session is terminated: the completion is lost, the
worker reconnects, resumes the job it still holds and runs the handler again, which commits
again. The effect log (migration 0016) shows both applications. The real handler's second run
finds its drafting job by its idempotency key: a re-execution, 0 duplicated. The negative
control, the same handler without a stable key (the key function replaced in this test's own
database), enqueues a second drafting job, and the same audit reports it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import psycopg
import pytest

from harness.faults import FaultTally
from harness.faults.audit import FaultFigures, audit_enforcement, fault_figures
from harness.faults.gate import StrategyStriker, applications, job_completed, job_state, terminate
from harness.stack.processes import ReferenceStack
from harness.waiting import wait_until

CUTS = 3
WITHOUT_KEY = """
CREATE OR REPLACE FUNCTION enforcement.drafting_idempotency_key(
    plan_id uuid, strategy enforcement.strategy, plan_updated_at timestamptz
) RETURNS text LANGUAGE sql VOLATILE AS $$ SELECT gen_random_uuid()::text $$
"""


def cut_after_each_commit(
    stack: ReferenceStack, database_url: str, tally: FaultTally
) -> FaultFigures:
    """CUTS gated strategy jobs, each cut after its handler committed; the audit's figures."""
    stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")
    with psycopg.connect(database_url, autocommit=True) as watcher:
        striker = StrategyStriker(database_url, watcher)
        try:
            for _ in range(CUTS):
                job_id, _fence = striker.to_fence()
                pid = striker.to_completion(job_id)
                # Landed: the handler's effects committed once, the job not yet completed.
                status = job_state(watcher, job_id)[0]
                in_flight = applications(watcher, job_id) == 2 and status == "processing"
                tally.count(terminate(database_url, pid) and in_flight)
                striker.release()
                wait_until(
                    f"job {job_id} to complete after the cut",
                    partial(job_completed, watcher, job_id),
                )
                assert applications(watcher, job_id) == 4, "the handler ran again and committed"
        finally:
            striker.close()
        wait_until(
            "every job to complete",
            lambda: (
                watcher.execute(
                    "SELECT count(*) = 0 FROM ops.job_queue WHERE status <> 'completed'"
                ).fetchone()
                == (True,)
            ),
        )
        tally.require_landed()
        return fault_figures(watcher, CUTS)


def test_a_cut_after_the_commit_reexecutes_without_duplicating(
    reference_stack: ReferenceStack, database_url: str, report_faults: Callable[[str], None]
) -> None:
    tally = FaultTally("cut_after_commit", minimum=CUTS)
    figures = cut_after_each_commit(reference_stack, database_url, tally)
    with psycopg.connect(database_url, autocommit=True) as conn:
        audited = audit_enforcement(conn, CUTS)
    assert audited == figures
    assert figures.reexecuted >= CUTS, f"every cut job ran again: {figures}"
    report_faults(tally.line(figures))


def test_without_its_idempotency_key_the_audit_reports_the_duplicates(
    reference_stack: ReferenceStack, database_url: str, report_faults: Callable[[str], None]
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(WITHOUT_KEY)
    tally = FaultTally("cut_after_commit_without_key", minimum=CUTS)
    figures = cut_after_each_commit(reference_stack, database_url, tally)
    assert figures.duplicated == CUTS, f"one extra drafting job per cut: {figures}"
    duplicates = rf"{CUTS} duplicated visible effects"
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        pytest.raises(AssertionError, match=duplicates) as caught,
    ):
        audit_enforcement(conn, CUTS)
    print(f"negative control, the audit says: {caught.value}")
    report_faults(tally.line(figures))
