"""pg_terminate_backend on a running worker's session at observed moments of its jobs.

Amid a queue of ordinary jobs, gated strategy jobs (harness/faults/gate.py) are cut in turn
inside the handler's transaction (waiting at its fence, every effect written, none committed)
and after the handler committed, before the job was completed (a completion whose answer is
lost). The worker reconnects and resumes the job it still holds: no operator reaps anything.
The audit then shows every job completed and no visible effect duplicated; each cut counts as
landed only when the job was observed in flight at that moment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial

import psycopg

from harness.faults import FaultTally
from harness.faults.audit import audit_enforcement, completed_jobs, seed_strategy_jobs
from harness.faults.gate import StrategyStriker, applications, job_completed, job_state, terminate
from harness.stack.processes import ReferenceStack
from harness.waiting import wait_until

JUDGMENTS = int(os.environ.get("DRAGONFLY_FAULT_JOBS", "150"))
CUTS = 6  # alternately inside the handler's transaction and after its commit
AUDIT_TIMEOUT = 240.0


def test_cut_sessions_mid_handler_and_mid_complete_lose_and_duplicate_nothing(
    reference_stack: ReferenceStack, database_url: str, report_faults: Callable[[str], None]
) -> None:
    tally = FaultTally("terminated_backends", minimum=CUTS)
    worker = reference_stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")
    with psycopg.connect(database_url, autocommit=True) as watcher:
        seed_strategy_jobs(watcher, JUDGMENTS)
        striker = StrategyStriker(database_url, watcher)
        try:
            for cut in range(CUTS):
                job_id, pid = striker.to_fence(timeout=AUDIT_TIMEOUT)
                after_commit = cut % 2 == 1
                if after_commit:
                    pid = striker.to_completion(job_id)
                # Landed: mid-transaction nothing committed yet; after the commit, one
                # application (plan and drafting job) and the job not completed.
                status = job_state(watcher, job_id)[0]
                effects = applications(watcher, job_id)
                in_flight = status == "processing" and effects == (2 if after_commit else 0)
                tally.count(terminate(database_url, pid) and in_flight)
                striker.release()
                wait_until(
                    f"job {job_id} to complete after the cut",
                    partial(job_completed, watcher, job_id),
                )
                want = 4 if after_commit else 2  # a cut commit runs the handler again
                assert applications(watcher, job_id) == want, f"job {job_id}'s applications"
        finally:
            striker.close()
        judgments = JUDGMENTS + CUTS
        wait_until(
            "every job to complete",
            lambda: completed_jobs(watcher) == 2 * judgments,
            timeout=AUDIT_TIMEOUT,
            poll=0.2,
        )
        reaped = watcher.execute("SELECT count(*) FROM ops.job_queue WHERE reap_count > 0")
        assert reaped.fetchone() == (0,), "the worker resumed what it held: nothing was reaped"
        figures = audit_enforcement(watcher, judgments)
    assert worker.process.poll() is None, "the worker must ride out the cuts"
    tally.require_landed()
    # A run cut mid-transaction left nothing to count; a cut commit is a second application.
    assert figures.reexecuted >= CUTS // 2, f"every commit cut ran again: {figures}"
    report_faults(tally.line(figures))
