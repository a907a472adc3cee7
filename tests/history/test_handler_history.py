"""Handlers at once: effects fenced by ops.hold_lease while a reaper takes leases away.

Threads, each on its own connection, claim jobs and run a handler the way the workers do: in
one transaction, an effect row (in a table with no uniqueness constraint) and, last,
`ops.hold_lease`; some handlers hit a real database error (a statement timeout) and fail the
job. A reaper thread takes leases away all the time (a lock timeout of milliseconds), so many
leases go while a handler's transaction runs. `harness.model.history` then holds the history to the
queue's rules plus two: an effect commits only while its worker holds the job (a refused
commit only when it does not), and a handler's database error is followed by that worker's
fail call (no job resumed without a recorded failure). The effects table must match the
commits the history recorded.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from harness.model.history import (
    History,
    JobCall,
    check_effects,
    check_history,
    now_ns,
    run_threads,
)
from harness.plugin.hypothesis_profiles import HISTORY_OPERATIONS, current_profile
from reference.jobqueue import QueueClient

Connect = Callable[..., psycopg.Connection[Any]]
HANDLERS = 3
JOB_TYPES = ["load_probe"]
REAP_TIMEOUT = timedelta(milliseconds=5)  # leases go while handlers run
LEASE = REAP_TIMEOUT  # each handler claims for this long (a lease expires on its own length)
DRAIN_ROUNDS = 50
LEASE_LOST = "DFQ03"


class HandlerThread:
    """Claims a job and runs a fenced handler on it; sometimes the handler fails."""

    def __init__(
        self, name: str, conn: psycopg.Connection[Any], history: History, *, resumes: bool = False
    ) -> None:
        self.name, self.conn, self.history = name, conn, history
        self.resumes = resumes  # the broken loop: resume the job after any error, never fail it
        self.client = QueueClient(conn)
        self.rng = random.Random(name)  # noqa: S311 - a workload, not cryptography
        self.fence_sql = "SELECT ops.hold_lease(%s, %s)"

    def record(self, job_id: UUID, operation: str, result: object, started: int) -> None:
        call = JobCall(operation, self.name, str(result), started, now_ns())
        self.history.record([(job_id, call)])

    def step(self) -> None:
        if self.rng.random() < 0.3:
            max_attempts = self.rng.randint(1, 3)
            job_id = self.client.queue_job("load_probe", max_attempts=max_attempts)
            self.history.record_enqueue(job_id, max_attempts)
            return
        started = now_ns()
        jobs = self.client.claim_pending_job(JOB_TYPES, self.name, lock_timeout=LEASE)
        ended = now_ns()
        for job in jobs:
            call = JobCall("claim", self.name, str(job.attempts), started, ended, job.locked_at)
            self.history.record([(job.id, call)])
            self.handle(job.id, fails=self.rng.random() < 0.2)

    def handle(self, job_id: UUID, *, fails: bool) -> None:
        """The worker's way: effects and the fence in one transaction; fail on an error."""
        started = now_ns()
        try:
            with self.conn.transaction():
                self.conn.execute(
                    "INSERT INTO public.handler_effects (job_id, worker_id) VALUES (%s, %s)",
                    (job_id, self.name),
                )
                if fails:
                    self.conn.execute("SELECT set_config('statement_timeout', '1ms', true)")
                    self.conn.execute("SELECT pg_sleep(0.05)")
                self.conn.execute("SELECT pg_sleep(0.002)")  # the handler's work
                started = now_ns()  # the fence's interval: hold_lease and the commit
                self.conn.execute(self.fence_sql, (job_id, self.name))
        except psycopg.Error as error:
            if error.sqlstate == LEASE_LOST:
                self.record(job_id, "effect", False, started)
                return
            self.record(job_id, "handler_error", error.sqlstate, started)
            if self.resumes:
                self.handle(job_id, fails=False)
                return
            started = now_ns()
            outcome = self.client.fail_job(job_id, self.name, f"SQLSTATE {error.sqlstate}")
            self.record(job_id, "fail", outcome.value, started)
            return
        self.record(job_id, "effect", True, started)
        started = now_ns()
        self.record(job_id, "complete", self.client.complete_job(job_id, self.name), started)


class Reaper:
    """Takes leases away: reap_stuck_jobs with a lock timeout of milliseconds."""

    def __init__(self, conn: psycopg.Connection[Any], history: History) -> None:
        self.client, self.history = QueueClient(conn), history

    def step(self, lock_timeout: timedelta = REAP_TIMEOUT) -> None:
        started = now_ns()
        reaped = self.client.reap_stuck_jobs(lock_timeout)
        ended = now_ns()
        row = self.client.conn.execute("SELECT ops.clock()").fetchone()
        after = row[0] if row else None
        self.history.record(
            # The checker ages a reaped lease against the lease's length: the reaper reaps by
            # each job's own expiry, whatever lock_timeout it is called with.
            (job.id, JobCall("reap", "reaper", job.status.value, started, ended, after, LEASE))
            for job in reaped
        )  # fmt: skip


def drain(handler: HandlerThread, reaper: Reaper) -> bool:
    """Every job to a terminal state: make retries due, reap, claim and run without faults."""
    for _ in range(DRAIN_ROUNDS):
        handler.conn.execute("UPDATE ops.job_queue SET run_at = now() WHERE status = 'pending'")
        reaper.step(timedelta(hours=1))
        while jobs := handler.client.claim_pending_job(JOB_TYPES, handler.name, 1):
            started = now_ns()
            call = JobCall("claim", handler.name, str(jobs[0].attempts), started, now_ns(),
                           jobs[0].locked_at)  # fmt: skip
            handler.history.record([(jobs[0].id, call)])
            handler.handle(jobs[0].id, fails=False)
        row = handler.conn.execute(
            "SELECT count(*) FROM ops.job_queue WHERE status IN ('pending', 'processing')"
        ).fetchone()
        if row is not None and row[0] == 0:
            return True
    return False


def run_handler_history(
    db_connect: Connect, operations: int, *, resumes: bool = False
) -> list[str]:
    history = History()
    admin = db_connect()
    admin.execute(
        "CREATE TABLE public.handler_effects (job_id uuid NOT NULL, worker_id text NOT NULL)"
    )  # no uniqueness: a duplicate effect must show
    handlers = [
        HandlerThread(f"handler-{i}", db_connect(), history, resumes=resumes)
        for i in range(HANDLERS)
    ]
    reaper = Reaper(db_connect(), history)
    steps = operations // (HANDLERS + 1)
    run_threads([h.step for h in handlers] + [reaper.step], steps)
    drained = drain(HandlerThread("drainer", db_connect(), history), reaper)
    rows = admin.execute("SELECT id, status::text, attempts FROM ops.job_queue").fetchall()
    problems = check_history(history, {row[0]: (row[1], row[2]) for row in rows})
    effects = admin.execute(
        "SELECT job_id, worker_id, count(*) FROM public.handler_effects GROUP BY 1, 2"
    ).fetchall()
    problems += check_effects(history, {(row[0], row[1]): row[2] for row in effects})
    if not drained:
        problems.append(f"the drain left jobs unfinished after {DRAIN_ROUNDS} rounds")
    refused = sum(
        c.operation == "effect" and c.result == "False"
        for calls in history.calls.values() for c in calls
    )  # fmt: skip
    print(f"handler history: {history.operations} operations, {refused} commits refused")
    return problems


def test_handlers_commit_effects_only_while_they_hold_the_job(db_connect: Connect) -> None:
    operations = HISTORY_OPERATIONS[current_profile()] // 4
    problems = run_handler_history(db_connect, operations)
    assert not problems, f"{len(problems)} violations, first: " + "\n".join(problems[:5])


@pytest.mark.parametrize("broken", ["hold_lease is a no-op", "the job resumed after an error"])
def test_the_checker_catches_unfenced_effects_and_unrecorded_failures(
    db_connect: Connect, db_conn: psycopg.Connection[Any], broken: str
) -> None:
    if broken == "hold_lease is a no-op":
        db_conn.execute(
            "CREATE OR REPLACE FUNCTION ops.hold_lease(job_id uuid, worker_id text)"
            " RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$"
        )
    problems = run_handler_history(db_connect, 1600, resumes=broken != "hold_lease is a no-op")
    assert problems, f"the history checker missed: {broken}"
    print(f"{broken}: {len(problems)} violations, first: {problems[0]}")
