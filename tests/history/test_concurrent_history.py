"""Real concurrency: threads, each on its own connection, call every queue function at once.

Every call and its result go into a `harness.model.history.History`; the queue's time moves by a
shared offset (`dragonfly.clock_offset`) so leases expire and retries fall due without sleeping.
A drain then drives every job to a terminal state and the checker holds the whole history to
the queue's rules (no two live leases, no lost job, attempts within max_attempts, terminal
states final, every enqueued job accounted for).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from harness.model.history import History, JobCall, check_history, now_ns
from harness.mutants.catalogue import MUTANTS
from harness.plugin.hypothesis_profiles import HISTORY_OPERATIONS, current_profile
from reference.jobqueue import QueueBusyError, QueueClient

Connect = Callable[..., psycopg.Connection[Any]]
THREADS = 4
JOB_TYPES = ["ingest_csv", "load_probe"]
REAP_TIMEOUT = timedelta(seconds=60)
RUN_SECONDS_LIMIT = 240  # the workload stops by itself even if the database crawls
DRAIN_ROUNDS = 50
CATCH_OPERATIONS = 2000  # per broken-queue run: enough for each bug to show


@dataclass
class SharedClock:
    """The offset every session adds to the queue's time; advanced by the threads."""

    seconds: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def advance(self, seconds: int) -> None:
        with self.lock:
            self.seconds += seconds


class Worker:
    """One thread's session: it enqueues, claims, finishes, fails, extends and reaps."""

    def __init__(self, name: str, client: QueueClient, history: History, clock: SharedClock):
        self.name, self.client, self.history, self.clock = name, client, history, clock
        self.held: list[UUID] = []
        self.offset_sent = -1
        self.rng = random.Random(name)  # noqa: S311 - a workload, not cryptography

    def _sync_clock(self) -> None:
        if self.offset_sent != self.clock.seconds:
            self.offset_sent = self.clock.seconds
            self.client.conn.execute(
                "SELECT set_config('dragonfly.clock_offset', %s, false)",
                (f"{self.offset_sent} seconds",),
            )

    def step(self) -> None:
        self._sync_clock()
        roll = self.rng.random()
        if roll < 0.22:
            self.enqueue()
        elif roll < 0.45:
            self.claim()
        elif roll < 0.8 and self.held:
            self.finish(self.held.pop(self.rng.randrange(len(self.held))))
        elif roll < 0.88:
            self.reap()
        elif roll < 0.93:
            self.clock.advance(self.rng.choice([31, 61, 125]))
        elif self.held:
            job_id = self.rng.choice(self.held)
            self._fenced("extend", job_id, lambda: self.client.extend_lock(job_id, self.name))

    def enqueue(self) -> None:
        key = f"key-{self.rng.randrange(50)}" if self.rng.random() < 0.3 else None
        max_attempts = self.rng.randint(1, 3)
        job_id = self.client.queue_job(
            self.rng.choice(JOB_TYPES), idempotency_key=key, max_attempts=max_attempts
        )
        self.history.record_enqueue(job_id, max_attempts)

    def claim(self) -> None:
        started = now_ns()
        # Leased for the reapers' timeout, so leases expire (and are reaped) within a run.
        jobs = self.client.claim_pending_job(
            JOB_TYPES, self.name, self.rng.randint(1, 3), lock_timeout=REAP_TIMEOUT
        )
        ended = now_ns()
        self.history.record(
            (job.id, JobCall("claim", self.name, str(job.attempts), started, ended, job.locked_at))
            for job in jobs
        )
        self.held.extend(job.id for job in jobs)

    def complete(self, job_id: UUID) -> None:
        self._fenced("complete", job_id, lambda: self.client.complete_job(job_id, self.name))

    def finish(self, job_id: UUID) -> None:
        if self.rng.random() < 0.7:
            self.complete(job_id)
        else:
            self._fenced(
                "fail", job_id, lambda: self.client.fail_job(job_id, self.name, "boom").value
            )

    def _fenced(self, operation: str, job_id: UUID, call: Callable[[], object]) -> None:
        started = now_ns()
        result = call()
        self.history.record(
            [(job_id, JobCall(operation, self.name, str(result), started, now_ns()))]
        )

    def reap(self, lock_timeout: timedelta = REAP_TIMEOUT) -> list[UUID]:
        started = now_ns()
        reaped = self.client.reap_stuck_jobs(lock_timeout)
        ended = now_ns()
        # The queue's time just after the reap: no earlier than the time the reap compared.
        row = self.client.conn.execute("SELECT ops.clock()").fetchone()
        after = row[0] if row else None
        self.history.record(
            (job.id, JobCall("reap", self.name, job.status.value, started, ended, after,
                             lock_timeout))
            for job in reaped
        )  # fmt: skip
        return [job.id for job in reaped]

    def claim_everything(self) -> None:
        """Claim and complete until nothing is due."""
        while True:
            before = len(self.held)
            started = now_ns()
            jobs = self.client.claim_pending_job(JOB_TYPES, self.name, 100)
            ended = now_ns()
            self.history.record(
                (
                    job.id,
                    JobCall("claim", self.name, str(job.attempts), started, ended, job.locked_at),
                )
                for job in jobs
            )
            self.held.extend(job.id for job in jobs)
            while self.held:
                self.complete(self.held.pop())
            if len(self.held) == before and not jobs:
                return


def run_workers(workers: list[Worker], operations: int) -> None:
    """Each worker's share of the operations, all threads at once; errors are re-raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(workers))
    deadline = now_ns() + RUN_SECONDS_LIMIT * 10**9

    def run(worker: Worker) -> None:
        barrier.wait()
        try:
            for _ in range(operations // len(workers)):
                if now_ns() > deadline:
                    return
                worker.step()
        except BaseException as error:  # handed to the main thread, which fails the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RUN_SECONDS_LIMIT + 30)
    if errors:
        raise errors[0]


def drain(drainer: Worker, clock: SharedClock) -> bool:
    """Drive every job to a terminal state: far-future time, reap, claim and complete all."""
    for _ in range(DRAIN_ROUNDS):
        clock.advance(7200)
        drainer.offset_sent = -1
        drainer._sync_clock()
        drainer.reap(timedelta(seconds=1))
        drainer.claim_everything()
        left = drainer.client.conn.execute(
            "SELECT count(*) FROM ops.job_queue WHERE status IN ('pending', 'processing')"
        ).fetchone()
        if left is not None and left[0] == 0:
            return True
    return False


def run_history(db_connect: Connect, operations: int) -> tuple[History, list[str]]:
    """The concurrent workload, the drain, then every violation the checker finds."""
    history, clock = History(), SharedClock()
    workers = []
    for index in range(THREADS):
        conn = db_connect()
        conn.execute("SET lock_timeout = '5s'")  # a stuck lock fails the run, never hangs it
        workers.append(Worker(f"thread-{index}", QueueClient(conn), history, clock))
    try:
        run_workers(workers, operations)
    except QueueBusyError as error:
        return history, [f"a queue call waited on a lock for 5 s: {error}"]
    drained = drain(Worker("drainer", QueueClient(db_connect()), history, clock), clock)
    rows = (
        workers[0]
        .client.conn.execute("SELECT id, status::text, attempts, max_attempts FROM ops.job_queue")
        .fetchall()
    )
    problems = history.settle_limits({row[0]: row[3] for row in rows})
    problems += check_history(history, {row[0]: (row[1], row[2]) for row in rows})
    if not drained:
        problems.append(f"the drain left jobs unfinished after {DRAIN_ROUNDS} rounds")
    return history, problems


def test_concurrent_calls_keep_every_rule_of_the_queue(db_connect: Connect) -> None:
    operations = HISTORY_OPERATIONS[current_profile()]
    history, problems = run_history(db_connect, operations)
    print(f"history: {history.operations} operations on {len(history.enqueued)} jobs")
    assert not problems, f"{len(problems)} violations, first: " + "\n".join(problems[:5])
    assert history.operations >= operations * 0.8


@pytest.mark.parametrize(
    "mutant",
    ["claim-no-row-lock", "complete-unfenced", "fail-unfenced", "reap-ignores-lease-age",
     "fail-dead-letters-late"],
)  # fmt: skip
def test_the_checker_catches_a_broken_queue(
    db_connect: Connect, db_conn: psycopg.Connection[Any], mutant: str
) -> None:
    """The history check alone (no model of time, no state machine) sees each of these bugs."""
    next(m for m in MUTANTS if m.name == mutant).apply(db_conn)
    _, problems = run_history(db_connect, CATCH_OPERATIONS)
    assert problems, f"the history checker missed {mutant}"
