"""SIGKILL (and, every other round, a terminated backend first) on a worker inside a handler.

Each round starts a victim worker with a short configured lease, brings a gated strategy job to
its handler's fence (harness/faults/gate.py: every effect written, nothing committed) and kills
the victim there; odd rounds first cut its session there, then kill it when its resumed run is
back at the fence. Its lease is then reaped by its own expiry, checked against the configured
lease: never while it is live, at the first reap after it expired. A steady worker then runs
everything, with a queue of ordinary jobs; the audit shows every job completed once and no
visible effect duplicated.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID

import psycopg

from harness.faults import FaultTally, kill_worker
from harness.faults.audit import drain_and_audit, seed_strategy_jobs
from harness.faults.gate import (
    StrategyStriker,
    applications,
    at_fence,
    job_state,
    terminate,
)
from harness.stack.processes import ReferenceStack
from harness.waiting import wait_until
from reference.jobqueue import QueueClient

ROUNDS = 3
JUDGMENTS = int(os.environ.get("DRAGONFLY_FAULT_JOBS", "150"))
LEASE = 4.0  # seconds: the victims' WORKER_LOCK_TIMEOUT
AUDIT_TIMEOUT = 240.0


def reaped_at_expiry(conn: psycopg.Connection[Any], job_id: UUID) -> bool:
    """One reap; AssertionError if it took the job while its lease was live (one transaction,
    one clock: ops.clock() is the transaction's time), or left it after the lease expired."""
    with conn.transaction():
        row = conn.execute(
            "SELECT lease_expires_at <= ops.clock() FROM ops.job_queue WHERE id = %s", (job_id,)
        ).fetchone()
        expired = bool(row and row[0])
        reaped = job_id in {job.id for job in QueueClient(conn).reap_stuck_jobs()}
    assert reaped == expired, f"job {job_id}: reaped={reaped} with its lease expired={expired}"
    return reaped


def test_sigkill_and_terminated_backends_mid_handler_lose_and_duplicate_nothing(
    reference_stack: ReferenceStack, database_url: str, report_faults: Callable[[str], None]
) -> None:
    tally = FaultTally("sigkill_and_terminated_backends", minimum=ROUNDS + ROUNDS // 2)
    victim_env = {"WORKER_LOCK_TIMEOUT": str(LEASE), "WORKER_LEASE_EXTEND_INTERVAL": "1"}
    with psycopg.connect(database_url, autocommit=True) as watcher:
        striker = StrategyStriker(database_url, watcher)
        try:
            for round_number in range(ROUNDS):
                victim = reference_stack.start_worker("enforcement", **victim_env)
                job_id, pid = striker.to_fence()
                if round_number % 2:  # cut its session at the fence; its resumed run returns
                    nothing = applications(watcher, job_id) == 0
                    tally.count(terminate(database_url, pid) and nothing)
                    wait_until(
                        "the resumed run back at the fence", partial(at_fence, watcher, job_id)
                    )
                kill_worker(victim)
                # Landed: killed with the job in hand, nothing of it committed.
                status, holder = job_state(watcher, job_id)
                held = status == "processing" and holder is not None
                tally.count(held and applications(watcher, job_id) == 0)
                lease = watcher.execute(
                    "SELECT lease_expires_at > ops.clock(), "
                    "lease_expires_at <= ops.clock() + make_interval(secs => %s) "
                    "FROM ops.job_queue WHERE id = %s",
                    (LEASE, job_id),
                ).fetchone()
                assert lease == (True, True), f"a live lease of at most {LEASE:g}s: {lease}"
                striker.release()
                wait_until(
                    f"job {job_id}'s lease to expire and be reaped",
                    partial(reaped_at_expiry, watcher, job_id),
                    timeout=3 * LEASE,
                    poll=0.1,
                )
                # Reaped jobs wait out a backoff; the operator retries this one now.
                watcher.execute("UPDATE ops.job_queue SET run_at = now() WHERE id = %s", (job_id,))
        finally:
            striker.close()
        steady = reference_stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")
        seed_strategy_jobs(watcher, JUDGMENTS)
        judgments = JUDGMENTS + ROUNDS
        figures = drain_and_audit(watcher, judgments, AUDIT_TIMEOUT)
    assert steady.process.poll() is None, "the steady worker must run to the end"
    assert steady.stop() == 0
    tally.require_landed()
    assert figures.reexecuted >= ROUNDS, f"every killed job ran again: {figures}"
    report_faults(tally.line(figures))
