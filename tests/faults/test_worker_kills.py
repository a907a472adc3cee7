"""Fault scenarios through real worker processes, each ending with an exactly-once audit.

Jobs: one enforcement_strategy job per judgment (its handler stores one plan and enqueues the
drafting job, whose handler stores one packet, each in the handler's own transaction). The
audit: every job reached exactly one terminal state and every effect happened exactly once.
Set DRAGONFLY_FAULT_JOBS (thorough: 1000) for longer runs.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from functools import partial

import psycopg

from harness.fault_audit import audit_enforcement, completed_jobs, seed_strategy_jobs
from harness.faults import expire_leases, holds_a_job, kill_worker, terminate_backends
from harness.processes import ReferenceStack
from harness.waiting import wait_until

ROUNDS = 3
JUDGMENTS = int(os.environ.get("DRAGONFLY_FAULT_JOBS", "150")) // ROUNDS * ROUNDS  # whole rounds
AUDIT_TIMEOUT = 240.0


def test_sigkill_and_terminated_backends_mid_run_lose_and_duplicate_nothing(
    reference_stack: ReferenceStack, database_url: str
) -> None:
    steady = reference_stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")
    faults = {"SIGKILL": 0, "terminated backends": 0, "reaped leases": 0}
    victims = []  # kept until the stack stops them all
    watcher = psycopg.connect(database_url, autocommit=True)
    try:
        for round_number in range(ROUNDS):
            victim = reference_stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")
            victims.append(victim)
            seed_strategy_jobs(watcher, JUDGMENTS // ROUNDS, first=round_number * JUDGMENTS)
            wait_until(
                "the victim to hold a job",
                partial(holds_a_job, watcher, victim),
                timeout=60,
                poll=0.001,
            )
            if round_number % 2:  # every other round its sessions are cut first (ours too)
                faults["terminated backends"] += terminate_backends(database_url)
                watcher.close()
                watcher = psycopg.connect(database_url, autocommit=True)
            kill_worker(victim)  # mid-job: its lease stays behind and just ages
            faults["SIGKILL"] += 1
            time.sleep(1.1)  # the victim's leases age past the operator's one-second reap
            faults["reaped leases"] += expire_leases(database_url)
    finally:
        watcher.close()
    with psycopg.connect(database_url, autocommit=True) as conn:

        def all_completed() -> bool:
            expire_leases(database_url, timedelta(seconds=5))  # a lease lost to a fault
            return completed_jobs(conn) == 2 * JUDGMENTS

        wait_until("every job to complete", all_completed, timeout=AUDIT_TIMEOUT, poll=0.5)
        figures = audit_enforcement(conn, JUDGMENTS)
    assert steady.process.poll() is None, "the steady worker must ride out the faults"
    assert steady.stop() == 0  # a clean exit after the faults (the stack would stop it anyway)
    print(f"fault scenario: {figures} after {faults}")
