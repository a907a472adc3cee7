"""A state machine of the real worker (`Worker.handle`) meeting faults in its handler.

Operations: a job runs to completion; a handler hits a non-connection database error (a
statement timeout, `lock_not_available`, a unique violation); the lease is taken away while the
handler's transaction waits on a lock (given to another worker, or reaped); the connection is
cut while the handler waits (the only case that resumes the job); the new owner runs a job it
holds; a retry's backoff elapses. Each handler run records its effect in a table with no
uniqueness constraint, so a duplicate would show. Invariants, after every step:

- no job resumed without a recorded failure: a job runs twice at the same attempt only after
  its connection was lost, and every failed run left its SQLSTATE in last_error;
- no effect of a job committed by a worker that did not hold it at commit: the effects table
  equals the model's (one per run whose worker held the job when it committed);
- every job's status, attempts and owner equal the model's.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

import psycopg
import pytest
from hypothesis import Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from harness.waiting import wait_until
from reference.config import load_settings
from reference.jobqueue import Job, JobType, QueueClient
from reference.workers import processing
from reference.workers.context import JobContext
from reference.workers.loop import Worker, WorkerSpec

Connect = Callable[..., psycopg.Connection[Any]]
ERRORS = {  # the handler's fault -> the SQLSTATE its failure must record
    "statement_timeout": "57014",
    "lock_not_available": "55P03",
    "unique_violation": "23505",
}
WORKERS = 3


class FaultyHandler:
    """A load_probe handler: records its effect, then meets the fault the machine planned."""

    def __init__(self) -> None:
        self.plan = "ok"

    def __call__(self, job: Job, context: JobContext) -> None:
        with context.transaction(job) as conn:
            conn.execute(
                "INSERT INTO public.handler_effects (job_id, worker_id, attempt)"
                " VALUES (%s, %s, %s)",
                (job.id, context.worker_id, job.attempts),
            )
            if self.plan == "statement_timeout":
                conn.execute("SELECT set_config('statement_timeout', '20ms', true)")
                conn.execute("SELECT pg_sleep(1)")
            elif self.plan == "lock_not_available":  # the admin session holds the row
                conn.execute("SELECT 1 FROM public.handler_locks WHERE id = 1 FOR UPDATE NOWAIT")
            elif self.plan == "unique_violation":
                conn.execute("INSERT INTO public.handler_locks (id) VALUES (1)")
            elif self.plan == "wait_on_lock":  # until the admin session lets go
                conn.execute("SELECT 1 FROM public.handler_locks WHERE id = 1 FOR UPDATE")


@dataclass
class ModelJob:
    max_attempts: int
    status: str = "pending"
    attempts: int = 0
    owner: str | None = None
    due: bool = True


@dataclass
class Rig:
    """The sessions and workers every example reuses."""

    database_url: str
    admin: psycopg.Connection[Any]
    handler: FaultyHandler
    workers: dict[str, Worker] = field(default_factory=dict)
    clients: dict[str, QueueClient] = field(default_factory=dict)

    def reconnect(self, name: str) -> QueueClient:
        if name in self.clients:
            self.clients[name].conn.close()
        conn = psycopg.connect(self.database_url, autocommit=True)
        self.clients[name] = QueueClient(conn)
        return self.clients[name]


class HandlerFaultsMachine(RuleBasedStateMachine):
    rig: ClassVar[Rig]
    totals: ClassVar[Counter[str]]
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        admin = self.rig.admin
        admin.execute("DELETE FROM ops.job_queue")
        admin.execute("DELETE FROM public.handler_effects")
        admin.execute("DELETE FROM public.handler_locks WHERE id <> 1")
        self.model: dict[UUID, ModelJob] = {}
        self.effects: Counter[tuple[UUID, str, int]] = Counter()
        self.runs: list[tuple[UUID, int, str]] = []  # (job, attempt, how the run ended)

    def _count(self, what: str) -> None:
        event(what)
        self.totals[what] += 1

    # -- steps -------------------------------------------------------------------------------
    @rule(target=jobs, max_attempts=st.integers(1, 3))
    def enqueue(self, max_attempts: int) -> UUID:
        job_id = self.rig.admin.execute(
            "SELECT ops.queue_job('load_probe', max_attempts => %s)", (max_attempts,)
        ).fetchone()
        assert job_id is not None
        self.model[job_id[0]] = ModelJob(max_attempts)
        return UUID(str(job_id[0]))

    def _due(self) -> list[UUID]:
        return [j for j, m in self.model.items() if m.status == "pending" and m.due]

    def _claim(self, name: str) -> Job:
        [job] = self.rig.clients[name].claim_pending_job([JobType.LOAD_PROBE], name, 1)
        # FIFO: a due job's run_at is its created_at (see _make_due), so the queue hands out the
        # earliest enqueued due job. Never a tie broken by the random id: the machine's next
        # steps depend on which job this is, and Hypothesis needs them to follow its choices.
        assert job.id == self._due()[0], "the claim did not take the earliest enqueued due job"
        model = self.model[job.id]
        model.status, model.owner, model.attempts = "processing", name, model.attempts + 1
        assert job.attempts == model.attempts
        return job

    def _failed(self, job_id: UUID) -> None:
        model = self.model[job_id]
        used_up = model.attempts >= model.max_attempts
        model.status, model.owner, model.due = ("failed" if used_up else "pending"), None, False

    @precondition(lambda self: self._due())
    @rule(worker=st.integers(0, WORKERS - 1), plan=st.sampled_from(["ok", *ERRORS]))
    def a_job_runs(self, worker: int, plan: str) -> None:
        """A worker claims a job and runs it: it completes, or its handler hits `plan`."""
        name = f"worker-{worker}"
        job = self._claim(name)
        self.rig.handler.plan = plan
        holding = plan == "lock_not_available"
        if holding:
            self.rig.admin.execute("BEGIN")
            self.rig.admin.execute("SELECT 1 FROM public.handler_locks WHERE id = 1 FOR UPDATE")
        try:
            self.rig.workers[name].handle(self.rig.clients[name], job)
        except Exception as error:  # the loop takes it for a lost connection: it resumes
            self._resume(name, job, error)
            return
        finally:
            if holding:
                self.rig.admin.execute("ROLLBACK")
        if plan == "ok":
            self.model[job.id].status = "completed"
            self.effects[(job.id, name, job.attempts)] += 1
            self.runs.append((job.id, job.attempts, "completed"))
            self._count("completed runs")
            return
        self._failed(job.id)
        self.runs.append((job.id, job.attempts, "failed"))
        row = self.rig.admin.execute(
            "SELECT last_error FROM ops.job_queue WHERE id = %s", (job.id,)
        ).fetchone()
        assert row is not None
        assert row[0] is not None
        assert f"SQLSTATE {ERRORS[plan]}" in row[0], row[0]
        self._count(f"handler errors: {plan}")

    def _stall(self, name: str, job: Job, interrupt: Callable[[int], None]) -> BaseException | None:
        """Run the job on `name` until its transaction waits on the admin's lock, then
        `interrupt(backend pid)`, release the lock, and wait for the run to end."""
        client = self.rig.clients[name]
        self.rig.handler.plan = "wait_on_lock"
        errors: list[BaseException] = []

        def run() -> None:
            try:
                self.rig.workers[name].handle(client, job)
            except Exception as error:  # handed to the machine
                errors.append(error)

        admin = self.rig.admin
        admin.execute("BEGIN")
        admin.execute("SELECT 1 FROM public.handler_locks WHERE id = 1 FOR UPDATE")
        thread = threading.Thread(target=run)
        thread.start()
        pid = client.conn.info.backend_pid
        try:
            wait_until(
                "the handler to wait on the lock",
                lambda: self._side_query(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", pid
                ),
                timeout=30,
            )
            interrupt(pid)
        finally:
            admin.execute("ROLLBACK")
            thread.join(timeout=60)
        assert not thread.is_alive()
        return errors[0] if errors else None

    def _side_query(self, sql: str, *params: Any) -> Any:
        with psycopg.connect(self.rig.database_url, autocommit=True) as side:
            row = side.execute(sql, params).fetchone()
            return row[0] if row else None

    @precondition(lambda self: self._due())
    @rule(
        worker=st.integers(0, WORKERS - 1),
        thief=st.integers(0, WORKERS - 1),
        how=st.sampled_from(["given away", "reaped"]),
    )
    def the_lease_is_taken_during_the_handler(self, worker: int, thief: int, how: str) -> None:
        name, thief_name = f"worker-{worker}", f"worker-{thief}"
        job = self._claim(name)
        model = self.model[job.id]

        def take(_pid: int) -> None:
            if how == "given away":  # the reaper, then another worker's claim, in one step
                self._side_query(
                    "UPDATE ops.job_queue SET locked_by = %s, locked_at = now(),"
                    " lease_expires_at = now() + interval '30 minutes',"
                    " attempts = attempts + 1 WHERE id = %s RETURNING 1",
                    thief_name if thief_name != name else "outsider",
                    job.id,
                )
            else:
                self._side_query(
                    "UPDATE ops.job_queue SET locked_at = now() - interval '2 hours',"
                    " lease_expires_at = now() - interval '1 hour' WHERE id = %s RETURNING 1",
                    job.id,
                )
                self._side_query("SELECT count(*) FROM ops.reap_stuck_jobs('1 hour')")

        error = self._stall(name, job, take)
        assert error is None, f"the lease loss ended the worker's handle(): {error!r}"
        if how == "given away":
            model.owner = thief_name if thief_name != name else "outsider"
            model.attempts += 1
        else:
            self._failed(job.id)
            model.due = model.status == "pending"  # reaped with backoff: make it due for tests
            if model.due:
                self._make_due("id = %s", job.id)
        self.runs.append((job.id, job.attempts, "lease lost"))
        self._count(f"leases {how} during a handler")

    @precondition(lambda self: self._due())
    @rule(worker=st.integers(0, WORKERS - 1))
    def the_connection_is_cut_during_the_handler(self, worker: int) -> None:
        """The one case that resumes: after a reconnect the worker runs the job it still holds."""
        name = f"worker-{worker}"
        job = self._claim(name)
        error = self._stall(
            name, job, lambda pid: self._side_query("SELECT pg_terminate_backend(%s)", pid)
        )
        assert error is not None, "a cut connection must reach the worker loop"
        self._resume(name, job, error)
        self._count("resumed after a lost connection")

    def _resume(self, name: str, job: Job, error: BaseException) -> None:
        """What the loop does when handle() raises: reconnect if need be, then run every job
        the worker still holds (the only right reason: its connection was lost)."""
        conn = self.rig.clients[name].conn
        lost = conn.closed or conn.broken
        ended = "connection lost" if lost else f"raised {type(error).__name__}, not failed"
        self.runs.append((job.id, job.attempts, ended))
        client = self.rig.reconnect(name) if lost else self.rig.clients[name]
        held = client.held_jobs(name)
        expected = {
            j for j, m in self.model.items() if m.status == "processing" and m.owner == name
        }
        assert {j.id for j in held} == expected
        self.rig.handler.plan = "ok"
        for resumed in held:
            self.rig.workers[name].handle(client, resumed)
            self.model[resumed.id].status = "completed"
            self.effects[(resumed.id, name, resumed.attempts)] += 1
            self.runs.append((resumed.id, resumed.attempts, "completed"))

    def _held(self) -> list[UUID]:
        return [
            j for j, m in self.model.items()
            if m.status == "processing" and m.owner in self.rig.workers
        ]  # fmt: skip

    @precondition(lambda self: self._held())
    @rule(data=st.data())
    def the_new_owner_runs_its_job(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self._held()), label="job")
        model = self.model[job_id]
        assert model.owner is not None
        job = self.rig.clients[model.owner].get_job(job_id)
        assert job is not None
        self.rig.handler.plan = "ok"
        self.rig.workers[model.owner].handle(self.rig.clients[model.owner], job)
        model.status = "completed"
        self.effects[(job_id, model.owner, job.attempts)] += 1
        self.runs.append((job_id, job.attempts, "completed"))
        self._count("new owners' runs")

    @precondition(
        lambda self: any(m.status == "pending" and not m.due for m in self.model.values())
    )
    @rule()
    def the_backoff_elapses(self) -> None:
        self._make_due("status = 'pending'")
        for model in self.model.values():
            model.due = True

    def _make_due(self, where: str, *params: Any) -> None:
        """Due again, in enqueue order: run_at = created_at (not now(), which ties every job it
        sets and leaves the claim order to the random ids)."""
        sql = f"UPDATE ops.job_queue SET run_at = created_at WHERE {where}"
        self.rig.admin.execute(sql, params)

    # -- invariants ---------------------------------------------------------------------------
    @invariant()
    def no_job_resumed_without_a_recorded_failure(self) -> None:
        by_attempt: dict[tuple[UUID, int], list[str]] = {}
        for job_id, attempt, ended in self.runs:
            by_attempt.setdefault((job_id, attempt), []).append(ended)
        for (job_id, attempt), ends in by_attempt.items():
            assert all(end == "connection lost" for end in ends[:-1]), (
                f"job {job_id} ran again at attempt {attempt} after {ends[:-1]}"
            )

    @invariant()
    def no_effect_from_a_worker_that_did_not_hold_the_job(self) -> None:
        rows = self.rig.admin.execute(
            "SELECT job_id, worker_id, attempt FROM public.handler_effects"
        ).fetchall()
        actual = Counter((UUID(str(r[0])), r[1], r[2]) for r in rows)
        assert actual == self.effects, f"effects (actual, expected): {actual} != {self.effects}"

    @invariant()
    def the_queue_equals_the_model(self) -> None:
        rows = self.rig.admin.execute(
            "SELECT id, status::text, attempts, locked_by FROM ops.job_queue"
        ).fetchall()
        for job_id, status, attempts, locked_by in rows:
            model = self.model[job_id]
            owner = model.owner if model.status in ("processing", "completed") else locked_by
            assert (status, attempts) == (model.status, model.attempts), job_id
            if model.status == "processing":
                assert locked_by == owner, job_id


@pytest.fixture(autouse=True)
def machine_rig(
    database_url: str, db_connect: Connect, machine_totals: Counter[str]
) -> Iterator[None]:
    admin = db_connect()
    admin.execute(
        "CREATE TABLE public.handler_effects (job_id uuid NOT NULL, worker_id text NOT NULL,"
        " attempt integer NOT NULL)"  # no uniqueness: a duplicate effect must show
    )
    admin.execute("CREATE TABLE public.handler_locks (id integer PRIMARY KEY)")
    admin.execute("INSERT INTO public.handler_locks VALUES (1)")
    handler = FaultyHandler()
    spec = WorkerSpec("Probe", "probe_worker", 1.0, {JobType.LOAD_PROBE: handler})
    rig = Rig(database_url, admin, handler)
    settings_ = load_settings({"DATABASE_URL": database_url})
    for index in range(WORKERS):
        name = f"worker-{index}"
        worker = Worker(settings_, spec, threading.Event())
        worker.worker_id = name
        rig.workers[name] = worker
        rig.reconnect(name)
    HandlerFaultsMachine.rig = rig
    HandlerFaultsMachine.totals = machine_totals
    yield
    for client in rig.clients.values():
        client.conn.close()


# Each step may wait on a lock and a side connection: fewer, shorter examples than the queue's.
HandlerFaultsMachine.TestCase.settings = settings(
    max_examples=min(settings().max_examples, 25), stateful_step_count=20
)
TestHandlerFaultsMachine = HandlerFaultsMachine.TestCase


def _machine_settings() -> settings:
    # No shrinking, no replay database: each check only needs the machine's first failure.
    return settings(max_examples=60, stateful_step_count=20, phases=[Phase.generate], database=None)


def test_the_machine_catches_an_unfenced_handler(db_conn: psycopg.Connection[Any]) -> None:
    """With ops.hold_lease a no-op, a worker whose lease was given away commits its effect."""
    db_conn.execute(
        "CREATE OR REPLACE FUNCTION ops.hold_lease(job_id uuid, worker_id text) RETURNS void"
        " LANGUAGE plpgsql AS $$ BEGIN END $$"
    )
    with pytest.raises(AssertionError, match="effects"):
        run_state_machine_as_test(HandlerFaultsMachine, settings=_machine_settings())


def test_the_machine_catches_a_loop_that_resumes_after_any_database_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop before issue 17: every OperationalError was taken for a lost connection."""
    monkeypatch.setattr(
        processing,  # where a job's errors are judged (the loop before issue 21 did it)
        "connection_lost",
        lambda conn, error: conn.broken or isinstance(error, psycopg.OperationalError),
    )
    with pytest.raises(AssertionError, match="ran again at attempt"):
        run_state_machine_as_test(HandlerFaultsMachine, settings=_machine_settings())
