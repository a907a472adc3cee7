"""pg_terminate_backend on a running worker's sessions, again and again, at random moments.

The cuts land wherever the worker is: mid-claim, inside a handler's transaction, mid-complete
(a claim or complete can commit while its answer is lost). The worker reconnects and resumes
what it holds; the audit then shows every job completed once and every effect once.
"""

from __future__ import annotations

import os
import random
import time
from datetime import timedelta

import psycopg

from harness.fault_audit import audit_enforcement, completed_jobs, seed_strategy_jobs
from harness.faults import expire_leases, terminate_backends
from harness.processes import ReferenceStack
from harness.waiting import wait_until

JUDGMENTS = int(os.environ.get("DRAGONFLY_FAULT_JOBS", "150"))
CUTS = 12
AUDIT_TIMEOUT = 240.0


def test_cut_sessions_mid_claim_and_mid_complete_lose_and_duplicate_nothing(
    reference_stack: ReferenceStack, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        seed_strategy_jobs(conn, JUDGMENTS)
    worker = reference_stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")
    rng = random.Random(10)  # noqa: S311 - fault timing, not cryptography
    cuts = terminated = 0
    for _ in range(CUTS):
        with psycopg.connect(database_url, autocommit=True) as conn:
            done = completed_jobs(conn)
        if done == 2 * JUDGMENTS:
            break
        time.sleep(rng.uniform(0.01, 0.15))  # somewhere in a claim, a handler or a complete
        terminated += terminate_backends(database_url)
        cuts += 1
    with psycopg.connect(database_url, autocommit=True) as conn:

        def all_completed() -> bool:
            # A claim whose answer was cut may hold a job no one works on: the operator reaps.
            expire_leases(database_url, older_than=timedelta(seconds=10))
            return completed_jobs(conn) == 2 * JUDGMENTS

        wait_until("every job to complete", all_completed, timeout=AUDIT_TIMEOUT, poll=0.5)
        figures = audit_enforcement(conn, JUDGMENTS)
    assert worker.process.poll() is None, "the worker must ride out the cuts"
    print(f"terminated backends: {figures} after {cuts} cuts ending {terminated} sessions")
