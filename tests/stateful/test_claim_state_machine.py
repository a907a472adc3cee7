"""Hypothesis state machine: several workers interleave claims, commits, completions and reaps.

Each worker is its own connection driven step by step from one thread, so Hypothesis chooses
(and shrinks) the interleaving: worker A may hold a claim in an open transaction while worker
B claims. After every step the committed database must equal a simple model of the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from reference.jobqueue import JobType, QueueBusyError, QueueClient

WORKERS = 3
MAX_ATTEMPTS = 3
Connect = Callable[..., psycopg.Connection[Any]]
MACHINE_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass
class ModelJob:
    status: str = "pending"
    owner: str | None = None
    attempts: int = 0


@dataclass
class WorkerState:
    client: QueueClient
    open_claim: list[UUID] = field(default_factory=list)  # claimed, not yet committed
    in_transaction: bool = False


class QueueMachine(RuleBasedStateMachine):
    """The model: each job's committed status, owner and attempts."""

    connect: Connect  # set per test, before the machine runs

    def __init__(self) -> None:
        super().__init__()
        self.admin = QueueClient(self.connect())
        # A step that would wait on another session's lock fails instead of hanging the run.
        self.admin.conn.execute("SET lock_timeout = '2s'")
        self.admin.conn.execute("DELETE FROM ops.job_queue")
        self.jobs: dict[UUID, ModelJob] = {}
        self.workers = {}
        for index in range(WORKERS):
            conn = self.connect()
            conn.execute("SET lock_timeout = '200ms'")
            self.workers[f"w{index}"] = WorkerState(QueueClient(conn))

    def teardown(self) -> None:
        for worker in self.workers.values():
            worker.client.conn.close()
        self.admin.conn.close()

    def held_elsewhere(self, name: str) -> set[UUID]:
        return {job for other, w in self.workers.items() if other != name for job in w.open_claim}

    @rule(priority=st.integers(0, 2))
    def enqueue(self, priority: int) -> None:
        job_id = self.admin.queue_job(
            JobType.INGEST_CSV, priority=priority, max_attempts=MAX_ATTEMPTS
        )
        self.jobs[job_id] = ModelJob()

    @rule(name=st.sampled_from([f"w{i}" for i in range(WORKERS)]), batch=st.integers(1, 3))
    def claim_in_open_transaction(self, name: str, batch: int) -> None:
        worker = self.workers[name]
        if not worker.in_transaction:
            worker.client.conn.execute("BEGIN")
            worker.in_transaction = True
        claimed = worker.client.claim_pending_job([JobType.INGEST_CSV], name, batch)
        ids = [job.id for job in claimed]
        assert not set(ids) & self.held_elsewhere(name), "claimed a job another open claim holds"
        assert not set(ids) & set(worker.open_claim), "claimed its own job twice"
        for job_id in ids:
            assert self.jobs[job_id].status == "pending", (
                f"claimed a {self.jobs[job_id].status} job"
            )
        worker.open_claim.extend(ids)
        free = [j for j, m in self.jobs.items() if m.status == "pending"]
        free = [
            j for j in free if j not in self.held_elsewhere(name) and j not in worker.open_claim
        ]
        if len(ids) < batch:
            # SKIP LOCKED never leaves claimable work behind: a short batch means none was free.
            assert not free, f"{len(free)} free jobs were not claimed"

    @precondition(lambda self: any(w.in_transaction for w in self.workers.values()))
    @rule(name=st.sampled_from([f"w{i}" for i in range(WORKERS)]), commit=st.booleans())
    def end_transaction(self, name: str, commit: bool) -> None:
        worker = self.workers[name]
        if not worker.in_transaction:
            return
        worker.client.conn.execute("COMMIT" if commit else "ROLLBACK")
        if commit:
            for job_id in worker.open_claim:
                job = self.jobs[job_id]
                job.status, job.owner, job.attempts = "processing", name, job.attempts + 1
        worker.open_claim.clear()
        worker.in_transaction = False

    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        processing = [j for j, m in self.jobs.items() if m.status == "processing"]
        if not processing:
            return
        job_id = data.draw(st.sampled_from(processing))
        name = data.draw(st.sampled_from(sorted(self.workers)))
        worker = self.workers[name]
        if worker.in_transaction:
            return  # a worker completes between claims, not inside one
        done = worker.client.complete_job(job_id, name)
        owner = self.jobs[job_id].owner
        assert done == (owner == name), f"{name} completing {owner}'s job returned {done}"
        if done:
            self.jobs[job_id].status = "completed"

    @rule()
    def expire_and_reap(self) -> None:
        self.admin.conn.execute(
            "UPDATE ops.job_queue SET locked_at = now() - interval '1 hour' "
            "WHERE status = 'processing'"
        )
        reaped = {job.id for job in self.admin.reap_stuck_jobs()}
        expected = {j for j, m in self.jobs.items() if m.status == "processing"}
        assert reaped == expected
        for job_id in reaped:
            job = self.jobs[job_id]
            job.status = "failed" if job.attempts >= MAX_ATTEMPTS else "pending"
            job.owner = None
        # Make the reaped jobs due again at once (only they: rows an open claim holds are
        # locked, and the admin must never wait on a worker).
        self.admin.conn.execute(
            "UPDATE ops.job_queue SET run_at = now() - interval '1 second' WHERE id = ANY(%s)",
            (list(reaped),),
        )

    @invariant()
    def committed_state_matches_the_model(self) -> None:
        rows = self.admin.conn.execute(
            "SELECT id, status::text, locked_by, attempts FROM ops.job_queue"
        ).fetchall()
        actual = {
            row[0]: (row[1], row[2] if row[1] == "processing" else None, row[3]) for row in rows
        }
        expected = {
            j: (m.status, m.owner if m.status == "processing" else None, m.attempts)
            for j, m in self.jobs.items()
        }
        assert actual == expected


# To show a broken claim is caught, finding one failure is enough: no shrinking, one report.
CATCH_SETTINGS = settings(MACHINE_SETTINGS, phases=[Phase.generate], report_multiple_bugs=False)


def run_machine(connect: Connect, machine_settings: settings = MACHINE_SETTINGS) -> None:
    QueueMachine.connect = staticmethod(connect)  # type: ignore[assignment]
    QueueMachine.TestCase.settings = machine_settings
    QueueMachine.TestCase().runTest()


@pytest.mark.slow
def test_interleaved_workers_keep_the_queue_consistent(db_connect: Connect) -> None:
    run_machine(db_connect)


def _without(conn: psycopg.Connection[Any], clause: str) -> None:
    signature = "ops.claim_pending_job(text[], text, integer)"
    row = conn.execute("SELECT pg_get_functiondef(%s::regprocedure)", (signature,)).fetchone()
    assert row is not None
    conn.execute(row[0].replace(clause, "").encode())


@pytest.mark.slow
@pytest.mark.parametrize("clause", ["SKIP LOCKED", "FOR UPDATE SKIP LOCKED"])
def test_the_machine_catches_a_claim_without_its_lock_clause(
    db_conn: psycopg.Connection[Any], db_connect: Connect, clause: str
) -> None:
    _without(db_conn, clause)
    with pytest.raises((AssertionError, QueueBusyError)):
        run_machine(db_connect, CATCH_SETTINGS)
