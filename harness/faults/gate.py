"""Strike a worker at an observed moment of a job, not after a sleep.

A `JobGate` holds the row of the job a worker is on FOR SHARE from a session of its own. The
handler's fence (ops.hold_lease: FOR UPDATE, the last statement of its transaction) then waits
for the gate, so `at_fence` observes the handler inside its transaction with every effect
written and not committed: a kill or a terminated backend there lands mid-transaction.
`pass_one_commit` lets that commit through and holds the job queue before the worker's completion
can write to it, so the completion waits instead: a cut there (`at_completion`) lands after the
handler committed and before the job was completed, and the job runs again on its effects.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from harness.waiting import wait_until
from reference.jobqueue import JobType, QueueClient
from reference.pooling import connect_kwargs

_SESSIONS = """
SELECT a.pid, a.wait_event_type, a.query
FROM ops.job_queue AS q
JOIN pg_stat_activity AS a ON a.application_name = q.locked_by
WHERE q.id = %s AND q.status = 'processing' AND a.datname = current_database()
"""


def waiting_sessions(conn: psycopg.Connection[Any], job_id: UUID) -> list[tuple[int, str]]:
    """(pid, query) of the main session of the worker holding the job, while it waits on a lock
    (its application_name is its worker id, the job's locked_by)."""
    rows = conn.execute(_SESSIONS, (job_id,)).fetchall()
    return [(pid, text) for pid, wait, text in rows if wait == "Lock"]


def at_fence(conn: psycopg.Connection[Any], job_id: UUID) -> int | None:
    """The pid of the holder's session waiting in the job's handler fence (hold_lease)."""
    return next((pid for pid, text in waiting_sessions(conn, job_id) if "hold_lease" in text), None)


def at_completion(conn: psycopg.Connection[Any], job_id: UUID) -> int | None:
    """The pid of the holder's session waiting on the gate outside the handler (completing)."""
    waiting = waiting_sessions(conn, job_id)
    return next((pid for pid, text in waiting if "hold_lease" not in text), None)


def applications(conn: psycopg.Connection[Any], job_id: UUID) -> int:
    """Committed effect applications of the job (ops.effect_log rows)."""
    row = conn.execute(
        "SELECT count(*) FROM ops.effect_log WHERE job_id = %s", (job_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def job_completed(conn: psycopg.Connection[Any], job_id: UUID) -> bool:
    return job_state(conn, job_id)[0] == "completed"


def job_state(conn: psycopg.Connection[Any], job_id: UUID) -> tuple[str, str | None]:
    """(status, locked_by) of the job."""
    row = conn.execute(
        "SELECT status::text, locked_by FROM ops.job_queue WHERE id = %s", (job_id,)
    ).fetchone()
    if row is None:
        raise LookupError(f"job {job_id} does not exist")
    return row[0], row[1]


def terminate(database_url: str, pid: int) -> bool:
    """pg_terminate_backend on one session; whether it was ended."""
    with psycopg.connect(database_url, autocommit=True, **connect_kwargs(database_url)) as conn:
        row = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    return bool(row and row[0])


class JobGate:
    """Two sessions of its own that hold a job back while the gate is closed.

    `front` holds the job's row FOR SHARE: the handler's fence (FOR UPDATE) waits for it.
    `pass_one_commit` has `back` ask for ops.job_queue IN SHARE MODE, which waits for the
    handler's transaction when that one wrote to the queue (a strategy handler enqueues its
    drafting job), then lets `front` go: the fence goes through, the handler commits, `back`
    gets the table, and the worker's completion (an UPDATE: ROW EXCLUSIVE, which SHARE blocks)
    waits on `back`. A lock-table queue, not a race: `back` is queued or granted before the
    handler can commit.
    """

    def __init__(self, database_url: str) -> None:
        self.front = psycopg.connect(database_url, autocommit=True, **connect_kwargs(database_url))
        self.back = psycopg.connect(database_url, autocommit=True, **connect_kwargs(database_url))
        self.job_id: UUID | None = None

    def close(self, job_id: UUID) -> None:
        """Hold the job's row: the handler's fence and the job's completion wait."""
        self.job_id = job_id
        self.front.execute(
            sql.SQL("BEGIN; SELECT 1 FROM ops.job_queue WHERE id = {} FOR SHARE").format(
                sql.Literal(str(job_id))
            )
        )

    def pass_one_commit(self, watcher: psycopg.Connection[Any], timeout: float = 30.0) -> None:
        """Let the fence waiting now through (its handler commits) and hold the job queue
        against the worker's completion. Returns once the handler's transaction ended."""
        if self.job_id is None:
            raise RuntimeError("the gate is open: close(job_id) first")
        queued = threading.Thread(
            target=self.back.execute, args=("BEGIN; LOCK TABLE ops.job_queue IN SHARE MODE",)
        )
        queued.start()
        pid = self.back.info.backend_pid
        wait_until(
            "the gate's second session to hold or queue for the job queue",
            lambda: (
                not queued.is_alive()
                or watcher.execute(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                == (True,)
            ),
            timeout=timeout,
            poll=0.01,
        )
        self.front.execute("ROLLBACK")
        queued.join(timeout)
        if queued.is_alive():
            raise AssertionError(f"the handler's transaction did not end within {timeout:g}s")

    def open(self) -> None:
        """Release the row (the worker's completion, or its next run, goes on)."""
        for conn in (self.front, self.back):
            try:
                conn.execute("ROLLBACK")
            except psycopg.OperationalError:
                conn.close()  # the fault took this session too (a crashed server)
        self.job_id = None

    def __enter__(self) -> JobGate:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.open()
        self.front.close()
        self.back.close()


class StrategyStriker:
    """Gated enforcement_strategy jobs, one at a time, each brought to an observed moment.

    `to_fence()` adds a judgment, locks its row (the plan's foreign key check then waits, inside
    the handler's transaction, whichever worker claims it), queues its strategy job, closes the
    gate on the job once a worker waits on the judgment, and lets the handler run on to its
    fence: the job, and the pid of its worker's session waiting there.
    """

    def __init__(self, database_url: str, watcher: psycopg.Connection[Any]) -> None:
        self.watcher = watcher
        self.gate = JobGate(database_url)
        self.pre = psycopg.connect(database_url, autocommit=True, **connect_kwargs(database_url))
        self.number = 0

    def to_fence(self, timeout: float = 60.0) -> tuple[UUID, int]:
        self.number += 1
        row = self.watcher.execute(
            "INSERT INTO public.judgments (case_number, plaintiff, defendant, judgment_amount) "
            "VALUES (%s, 'Plaintiff', 'Defendant', 1000) RETURNING id",
            (f"GATED-{self.number}",),
        ).fetchone()
        if row is None:
            raise RuntimeError("INSERT ... RETURNING gave no row")
        judgment = row[0]
        self.pre.execute(
            sql.SQL("BEGIN; SELECT 1 FROM public.judgments WHERE id = {} FOR UPDATE").format(
                sql.Literal(str(judgment))
            )
        )
        job_id = QueueClient(self.watcher).queue_job(
            JobType.ENFORCEMENT_STRATEGY, {"judgment_id": str(judgment)}
        )
        wait_until(
            f"a worker to wait inside job {job_id}'s handler",
            lambda: waiting_sessions(self.watcher, job_id),
            timeout=timeout,
            poll=0.01,
        )
        self.gate.close(job_id)
        self.pre.execute("ROLLBACK")
        pid = wait_until(
            f"job {job_id}'s handler to wait at its fence",
            lambda: at_fence(self.watcher, job_id),
            timeout=timeout,
            poll=0.01,
        )
        return job_id, pid

    def to_completion(self, job_id: UUID, timeout: float = 60.0) -> int:
        """From the fence: the handler commits, its worker's completion waits; that pid."""
        self.gate.pass_one_commit(self.watcher, timeout)
        return wait_until(
            f"job {job_id}'s completion to wait on the gate",
            lambda: at_completion(self.watcher, job_id),
            timeout=timeout,
            poll=0.01,
        )

    def release(self) -> None:
        self.gate.open()

    def session_pids(self) -> list[int]:
        """The server pids of the striker's own sessions (a network cut strands them server-side,
        still holding their locks, until they are terminated from a new connection)."""
        return [c.info.backend_pid for c in (self.gate.front, self.gate.back, self.pre)]

    def close(self) -> None:
        self.gate.__exit__()
        self.pre.close()
