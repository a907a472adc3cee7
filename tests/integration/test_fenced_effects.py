"""Fenced effects: a handler whose lease is taken while its transaction waits commits nothing.

The old owner's handler transaction waits on a lock another session holds; meanwhile the job
is given to a new owner (as the reaper and a claim would after a long stall) and the lock goes
away. The old owner must commit nothing; the new owner's run then commits the job's effects,
once. For both workers: the ingest upsert and the enforcement strategy's plan and follow-up job.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import psycopg

from harness.inputs.uploads import store_upload_bytes
from harness.waiting import wait_until
from reference.config import load_settings
from reference.jobqueue import Job, JobType, QueueClient
from reference.workers import enforcement_engine, ingest_processor
from reference.workers.loop import Worker, WorkerSpec

HEADER = "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\n"
ROWS = 20


def waiting_on_a_lock(conn: psycopg.Connection[Any], pid: int) -> bool:
    row = conn.execute(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
    ).fetchone()
    return bool(row and row[0])


def steal(conn: psycopg.Connection[Any], job_id: UUID, new_owner: str) -> Job:
    """What the reaper and another worker's claim do to a stalled job, in one update."""
    conn.execute(
        "UPDATE ops.job_queue SET locked_by = %s, locked_at = now(), attempts = attempts + 1 "
        "WHERE id = %s AND status = 'processing'",
        (new_owner, job_id),
    )
    job = QueueClient(conn).get_job(job_id)
    assert job is not None
    return job


def stall_and_steal(
    database_url: str,
    spec: WorkerSpec,
    job: Job,
    holder: psycopg.Connection[Any],
    admin: psycopg.Connection[Any],
) -> tuple[Worker, Worker, Job]:
    """Run `job` on an old owner until it waits on `holder`'s lock, give the job to a new owner,
    release the lock, and let the old owner finish; (old, new, the job as the new owner holds)."""
    settings = load_settings({"DATABASE_URL": database_url})
    old = Worker(settings, spec, threading.Event())
    new = Worker(settings, spec, threading.Event())
    admin.execute(
        "UPDATE ops.job_queue SET status = 'processing', locked_by = %s, locked_at = now(), "
        "attempts = 1 WHERE id = %s",
        (old.worker_id, job.id),
    )
    old_conn = psycopg.connect(database_url, autocommit=True)
    thread = threading.Thread(target=old.handle, args=(QueueClient(old_conn), job))
    thread.start()
    try:
        wait_until(
            "the old owner's transaction to wait on the lock",
            lambda: waiting_on_a_lock(admin, old_conn.info.backend_pid),
            timeout=30,
        )
        stolen = steal(admin, job.id, new.worker_id)
    finally:
        holder.rollback()  # the lock goes away; the old owner's transaction goes on
        thread.join(timeout=60)
        old_conn.close()
    assert not thread.is_alive()
    return old, new, stolen


def count(conn: psycopg.Connection[Any], sql: str, *params: Any) -> int:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def test_an_ingest_that_lost_its_lease_while_waiting_commits_nothing(
    database_url: str, queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    rows = "".join(
        f"FENCE-{i:02d},Acme Funding LLC,John Doe,{i + 1}.00,2024-01-15,Kings\n"
        for i in range(ROWS)
    )
    db_conn.execute(
        "INSERT INTO public.judgments (case_number, plaintiff, defendant, judgment_amount)"
        " VALUES ('FENCE-00', 'Earlier Plaintiff', 'John Doe', 1)"
    )
    batch_id, job_id = store_upload_bytes(db_conn, "fence.csv", (HEADER + rows).encode())
    job = queue.get_job(job_id)
    assert job is not None
    holder = psycopg.connect(database_url)
    holder.execute("SELECT 1 FROM public.judgments WHERE case_number = 'FENCE-00' FOR UPDATE")
    judgments = "SELECT count(*) FROM public.judgments WHERE plaintiff = 'Acme Funding LLC'"

    _, new, stolen = stall_and_steal(database_url, ingest_processor.SPEC, job, holder, db_conn)

    assert count(db_conn, judgments) == 0, "the old owner committed rows after losing the lease"
    new.handle(QueueClient(db_conn), stolen)
    assert count(db_conn, judgments) == ROWS
    batch = db_conn.execute(
        "SELECT status::text, total_rows, valid_rows FROM ops.ingest_batches WHERE id = %s",
        (batch_id,),
    ).fetchone()
    assert batch == ("completed", ROWS, ROWS)
    settled = QueueClient(db_conn).get_job(job_id)
    assert settled is not None
    assert (settled.status.value, settled.locked_by) == ("completed", new.worker_id)
    holder.close()


def test_a_strategy_that_lost_its_lease_while_waiting_commits_no_plan_and_no_job(
    database_url: str, queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    judgment = db_conn.execute(
        "INSERT INTO public.judgments (case_number, plaintiff, defendant, judgment_amount)"
        " VALUES ('FENCE-S', 'Acme Funding LLC', 'Jane Roe', 10) RETURNING id"
    ).fetchone()
    assert judgment is not None
    judgment_id = judgment[0]
    job_id = queue.queue_job(JobType.ENFORCEMENT_STRATEGY, {"judgment_id": str(judgment_id)})
    job = queue.get_job(job_id)
    assert job is not None
    holder = psycopg.connect(database_url)  # an uncommitted plan: the handler's insert waits
    holder.execute(
        "INSERT INTO enforcement.plans (judgment_id, strategy, reason)"
        " VALUES (%s, 'surveillance', 'held by the test')",
        (judgment_id,),
    )

    def plans() -> int:
        return count(db_conn, "SELECT count(*) FROM enforcement.plans WHERE judgment_id = %s",
                     judgment_id)  # fmt: skip

    def drafting() -> int:
        return count(
            db_conn,
            "SELECT count(*) FROM ops.job_queue WHERE job_type = 'enforcement_drafting'"
            " AND payload->>'judgment_id' = %s",
            str(judgment_id),
        )

    _, new, stolen = stall_and_steal(database_url, enforcement_engine.SPEC, job, holder, db_conn)

    assert (plans(), drafting()) == (0, 0), "the old owner committed after losing the lease"
    new.handle(QueueClient(db_conn), stolen)
    assert (plans(), drafting()) == (1, 1)
    holder.close()
