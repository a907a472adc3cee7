"""A model-based state machine: an in-memory model predicts what every queue call returns.

Steps: enqueue (priorities, run_at past and future, idempotency keys), single and batch claims
over any mix of job types, two claims overlapping in open transactions, complete, fail (retry
with backoff, dead-letter), extend, time passing, a worker crash (its leases age), reap, and
stale owners calling complete / fail / extend. Time is `ops.clock()`, frozen by the test and
moved by the model, never slept. After every step the whole table must equal the model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID, uuid5

import psycopg
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from harness.model.queue import MODEL_ROWS_QUERY, QueueModel
from harness.plugin.hypothesis_profiles import MINIMUM_COUNTS, current_profile
from reference.jobqueue import QueueClient

Connect = Callable[..., psycopg.Connection[Any]]
START = datetime(2030, 1, 1, tzinfo=UTC)
JOB_TYPES = ["ingest_csv", "enforcement_strategy", "load_probe"]
KEYS = [f"key-{index}" for index in range(6)]
# Steps of time around the backoffs (30 s, 60 s, 120 s) and the lock timeouts below.
TIME_STEPS = [1, 29, 30, 31, 59, 60, 61, 119, 120, 121, 299, 300, 301, 1800, 3600]
LOCK_TIMEOUTS = [timedelta(seconds=s) for s in (30, 60, 300, 1800)]
EXTEND_LEASE = timedelta(seconds=300)
ID_NAMESPACE = UUID("6f1c3a52-7a43-4c4e-9d55-0e6a3b1f9c10")
MAX_CRASHES = 3  # per example: enough stale owners without crowding out the other steps


def _job_types() -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(JOB_TYPES), min_size=1, max_size=3, unique=True)


@dataclass
class Sessions:
    """The connections every example reuses: the admin and two workers' sessions."""

    admin: QueueClient
    first: QueueClient
    second: QueueClient

    def all(self) -> list[QueueClient]:
        return [self.admin, self.first, self.second]


class QueueModelMachine(RuleBasedStateMachine):
    sessions: ClassVar[Sessions]
    totals: ClassVar[Counter[str]]
    jobs = Bundle("jobs")
    workers = Bundle("workers")

    def __init__(self) -> None:
        super().__init__()
        for client in self.sessions.all():
            if client.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                client.conn.rollback()
        self.sessions.admin.conn.execute("DELETE FROM ops.job_queue")
        self.model = QueueModel(now=START)
        self.live: set[str] = set()
        self.crashed: list[str] = []
        self.started = 0
        self._set_clock()

    def _set_clock(self) -> None:
        for client in self.sessions.all():
            client.conn.execute(
                "SELECT set_config('dragonfly.clock_frozen_at', %s, false)",
                (self.model.now.isoformat(),),
            )

    def _count(self, what: str, how_many: int = 1) -> None:
        if how_many:
            event(what)
            self.totals[what] += how_many

    def _new_worker(self) -> str:
        self.started += 1
        self.live.add(f"worker-{self.started}")
        return f"worker-{self.started}"

    @initialize(target=workers)
    def start_workers(self) -> Any:
        return multiple(self._new_worker(), self._new_worker(), self._new_worker())

    @precondition(lambda self: len(self.crashed) < MAX_CRASHES)
    @rule(worker=consumes(workers), target=workers)
    def crash_and_replace(self, worker: str) -> str:
        """The worker dies without a word: its leases just age. A new one takes its place."""
        self.live.discard(worker)
        self.crashed.append(worker)
        self._count("crashed workers")
        return self._new_worker()

    @rule(
        target=jobs,
        job_type=st.sampled_from(JOB_TYPES),
        priority=st.integers(0, 2),
        run_in=st.sampled_from([None, -120, -1, 0, 1, 30, 90]),
        max_attempts=st.integers(1, 3),
        key=st.none() | st.sampled_from(KEYS),
    )
    def enqueue(
        self, job_type: str, priority: int, run_in: int | None, max_attempts: int, key: str | None
    ) -> UUID:
        run_at = None if run_in is None else self.model.now + timedelta(seconds=run_in)
        existing = self.model.existing_for_key(job_type, key)
        job_id = self.sessions.admin.queue_job(
            job_type, priority=priority, run_at=run_at, idempotency_key=key,
            max_attempts=max_attempts,
        )  # fmt: skip
        if existing is not None:
            assert job_id == existing, "a repeated idempotency key must return the first job"
            self._count("repeated idempotency keys")
        else:
            assert job_id not in self.model.jobs, "a new job got an existing id"
            job_id = self._deterministic_id(job_id)
            self.model.add(
                job_id, job_type, priority=priority, run_at=run_at,
                max_attempts=max_attempts, idempotency_key=key,
            )  # fmt: skip
        return job_id

    def _deterministic_id(self, job_id: UUID) -> UUID:
        """Give the job an id derived from its enqueue order, so replays tie-break alike."""
        stable = uuid5(ID_NAMESPACE, str(len(self.model.jobs)))
        self.sessions.admin.conn.execute(
            "UPDATE ops.job_queue SET id = %s WHERE id = %s", (stable, job_id)
        )
        return stable

    def _claim(
        self,
        client: QueueClient,
        worker: str,
        types: list[str],
        batch: int,
        lease: timedelta | None = None,
    ) -> list[UUID]:
        return [
            job.id for job in client.claim_pending_job(types, worker, batch, lock_timeout=lease)
        ]

    @precondition(lambda self: self.model.claimable(JOB_TYPES))
    @rule(
        worker=workers,
        types=_job_types(),
        batch=st.integers(1, 4),
        lease=st.sampled_from([None, *LOCK_TIMEOUTS]),
    )
    def claim(self, worker: str, types: list[str], batch: int, lease: timedelta | None) -> None:
        """A claim leased for the worker's lock timeout (None: the database's default)."""
        expected = self.model.predict_claim(types, batch)
        assert self._claim(self.sessions.first, worker, types, batch, lease) == expected
        self.model.apply_claim(expected, worker, lease)
        self._count("committed claims", len(expected))
        self._count("batch claims" if batch > 1 else "single claims")

    @precondition(lambda self: self.model.claimable(JOB_TYPES))
    @rule(
        first=workers, second=workers, first_types=_job_types(), second_types=_job_types(),
        first_batch=st.integers(1, 6), second_batch=st.integers(1, 3), commit=st.booleans(),
    )  # fmt: skip
    def overlapping_claims(  # noqa: PLR0917 - Hypothesis passes rule arguments by name
        self, first: str, second: str, first_types: list[str], second_types: list[str],
        first_batch: int, second_batch: int, commit: bool,
    ) -> None:  # fmt: skip
        """The first claim's transaction stays open while the second claims: it must skip.
        The first holds up to 6, more than a single claim's lookahead (4): the second must
        look again past them (migration 0011)."""
        held = self.model.predict_claim(first_types, first_batch)
        # The open claim locks exactly the jobs it claimed: the second skips those alone.
        expected_second = self.model.predict_claim(second_types, second_batch, skip=held)
        conn = self.sessions.first.conn
        with conn.transaction(force_rollback=not commit):
            assert self._claim(self.sessions.first, first, first_types, first_batch) == held
            claimed = self._claim(self.sessions.second, second, second_types, second_batch)
            assert claimed == expected_second, "the second claim must skip the held rows"
        self.model.apply_claim(expected_second, second)
        self._count("committed claims", len(expected_second))
        if commit:
            self.model.apply_claim(held, first)
            self._count("committed claims", len(held))
        else:
            self._count("rolled-back claims")

    def _held_by_live(self) -> list[UUID]:
        return [
            job_id
            for job_id, job in self.model.jobs.items()
            if job.status == "processing" and job.locked_by in self.live
        ]

    def _owner_calls(self, data: st.DataObject, operation: str) -> None:
        job_id = data.draw(st.sampled_from(self._held_by_live()), label="job")
        owner = self.model.jobs[job_id].locked_by
        assert owner is not None
        self._call(operation, job_id, owner)

    @precondition(lambda self: self._held_by_live())
    @rule(data=st.data())
    def owner_completes(self, data: st.DataObject) -> None:
        self._owner_calls(data, "complete")

    @precondition(lambda self: self._held_by_live())
    @rule(data=st.data(), others=st.lists(st.sampled_from(range(8)), max_size=3))
    def batch_complete(self, data: st.DataObject, others: list[int]) -> None:
        """A worker completes its jobs in one call, some ids it does not hold among them."""
        held = self._held_by_live()
        owner = self.model.jobs[data.draw(st.sampled_from(held), label="job")].locked_by
        assert owner is not None
        everyone = list(self.model.jobs)
        ids = [job for job in held if self.model.jobs[job].locked_by == owner]
        ids += [everyone[index % len(everyone)] for index in others]
        # A job another worker holds right now: the fence must leave it alone.
        foreign = [job for job in held if self.model.jobs[job].locked_by != owner]
        if foreign and data.draw(st.booleans(), label="with a job another worker holds"):
            ids.append(data.draw(st.sampled_from(foreign), label="foreign job"))
        expected = self.model.complete_many(ids, owner)
        assert self.sessions.second.complete_jobs(ids, owner) == expected
        self._count("completions", len(expected))
        self._count("refused stale-owner calls", len(set(ids) - expected))

    @precondition(lambda self: self._held_by_live())
    @rule(data=st.data(), operation=st.sampled_from(["fail", "fail", "fail-permanent", "extend"]))
    def owner_fails_or_extends(self, data: st.DataObject, operation: str) -> None:
        self._owner_calls(data, operation)

    def _call(self, operation: str, job_id: UUID, caller: str) -> None:
        client = self.sessions.second
        if operation == "complete":
            expected_done = self.model.complete(job_id, caller)
            assert client.complete_job(job_id, caller) == expected_done
            outcome = "completions" if expected_done else "refused"
        elif operation == "extend":
            # Leased for the extender's own timeout, not the database's default.
            expected_done = self.model.extend(job_id, caller, EXTEND_LEASE)
            assert client.extend_lock(job_id, caller, lock_timeout=EXTEND_LEASE) == expected_done
            outcome = "extensions" if expected_done else "refused"
        else:
            permanent = operation == "fail-permanent"
            expected_outcome = self.model.fail(job_id, caller, permanent)
            outcome_value = client.fail_job(job_id, caller, "boom", permanent=permanent).value
            assert outcome_value == expected_outcome
            outcome = {"retry_scheduled": "retries", "dead_lettered": "dead-letters"}.get(
                expected_outcome, "refused"
            )
        self._count(outcome if outcome != "refused" else "refused stale-owner calls")

    def _stale_callers(self, job_id: UUID) -> list[str]:
        job = self.model.jobs[job_id]
        callers = set(job.former_owners) | ({job.locked_by} if job.locked_by else set())
        return sorted(callers | set(self.crashed[-3:]))

    @precondition(lambda self: self.model.jobs)
    @rule(job=jobs, data=st.data(), operation=st.sampled_from(["complete", "fail", "extend"]))
    def stale_owner_calls(self, job: UUID, data: st.DataObject, operation: str) -> None:
        """A worker that held the job once (or crashed) wakes up and reports on it."""
        callers = self._stale_callers(job)
        if not callers:
            callers = sorted(self.crashed) or ["never-held"]
        caller = data.draw(st.sampled_from(callers), label="caller")
        self._call(operation, job, caller)

    def _processing(self) -> list[UUID]:
        return [job_id for job_id, job in self.model.jobs.items() if job.status == "processing"]

    @precondition(lambda self: self._processing())
    @rule(data=st.data(), operation=st.sampled_from(["complete", "fail", "extend"]))
    def another_worker_calls(self, data: st.DataObject, operation: str) -> None:
        """A worker that does not hold the lease (a former owner, a zombie, a peer) calls."""
        job_id = data.draw(st.sampled_from(self._processing()), label="job")
        job = self.model.jobs[job_id]
        others = sorted((job.former_owners | set(self.crashed) | self.live) - {job.locked_by})
        self._call(operation, job_id, data.draw(st.sampled_from(others), label="caller"))

    @rule(seconds=st.sampled_from(TIME_STEPS))
    def time_passes(self, seconds: int) -> None:
        self.model.now += timedelta(seconds=seconds)
        self._set_clock()

    @precondition(lambda self: any(j.status == "processing" for j in self.model.jobs.values()))
    @rule(lock_timeout=st.sampled_from(LOCK_TIMEOUTS))
    def reap(self, lock_timeout: timedelta) -> None:
        expected = self.model.reap(lock_timeout)
        reaped = {
            job.id: job.status.value for job in self.sessions.admin.reap_stuck_jobs(lock_timeout)
        }
        assert reaped == expected
        self._count("reaped jobs", len(reaped))
        self._count("dead-letters", sum(status == "failed" for status in reaped.values()))

    @precondition(lambda self: any(j.status == "processing" for j in self.model.jobs.values()))
    @rule(lock_timeout=st.sampled_from(LOCK_TIMEOUTS), over=st.sampled_from([0, 1]))
    def leases_age_then_reap(self, lock_timeout: timedelta, over: int) -> None:
        """Time runs to just at (not reaped) or just past (reaped) the first lease's expiry,
        which the reaper's own lock_timeout does not move."""
        first = min(
            j.lease_expires_at
            for j in self.model.jobs.values()
            if j.status == "processing" and j.lease_expires_at is not None
        )
        target = first + timedelta(seconds=over)
        self.time_passes(max(0, int((target - self.model.now).total_seconds())))
        self.reap(lock_timeout)

    @invariant()
    def the_table_equals_the_model(self) -> None:
        rows = self.sessions.admin.conn.execute(MODEL_ROWS_QUERY).fetchall()
        actual = {row[0]: tuple(row[1:]) for row in rows}
        expected = self.model.rows()
        assert actual.keys() == expected.keys(), "jobs appeared or vanished"
        wrong = {job_id: (actual[job_id], expected[job_id]) for job_id in actual
                 if actual[job_id] != expected[job_id]}  # fmt: skip
        assert not wrong, f"rows differ from the model (actual, expected): {wrong}"


@pytest.fixture(autouse=True)
def machine_sessions(db_connect: Connect, machine_totals: Counter[str]) -> None:
    """The connections the machine's examples reuse, on this test's own database."""
    clients = []
    for _ in range(3):
        conn = db_connect()
        conn.execute("SET lock_timeout = '100ms'")  # a claim that waits on a row lock fails fast
        clients.append(QueueClient(conn))
    QueueModelMachine.sessions = Sessions(*clients)
    QueueModelMachine.totals = machine_totals


# Collected by pytest as a Hypothesis test, so --hypothesis-show-statistics prints its events.
# Its settings are the profile loaded when the module is imported (--hypothesis-profile).
QueueModelMachine.TestCase.settings = settings()
TestQueueModelMachine = QueueModelMachine.TestCase


def test_the_machine_reached_the_counts(machine_totals: Counter[str]) -> None:
    """Runs right after the machine (tests/stateful/conftest.py keeps it there under random
    order): its totals must reach the profile's minimums."""
    if not machine_totals:
        pytest.skip("the state machine did not run in this session (deselected?)")
    minimums = MINIMUM_COUNTS.get(current_profile(), {})
    short = {what: (machine_totals[what], least) for what, least in minimums.items()
             if machine_totals[what] < least}  # fmt: skip
    assert not short, f"the run did not reach the counts (reached, needed): {short}"
