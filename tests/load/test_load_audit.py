"""The load run's audit on a real database, without Locust: each kind of loss it must catch."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest

from loadtests.audit import audit_run, create_audit_tables, operation_latency, seed_jobs
from loadtests.records import ClaimRecord, Recorder
from reference.jobqueue import InvalidArgumentError, Job, QueueClient

Conn = psycopg.Connection[Any]
RUN = "audit-test-run"


def claim(queue: QueueClient, worker: str, batch: int = 1) -> list[Job]:
    return queue.claim_pending_job(["load_probe"], worker, batch)


def record(recorder: Recorder, job: Job, worker: str, completed: bool) -> None:
    assert job.locked_at is not None
    recorder.claim(ClaimRecord(job.id, worker, job.attempts, job.locked_at, completed))


@pytest.fixture
def seeded(db_conn: Conn) -> int:
    create_audit_tables(db_conn)
    return seed_jobs(db_conn, RUN, 6)


def test_a_clean_run_passes(db_conn: Conn, queue: QueueClient, seeded: int) -> None:
    recorder = Recorder(RUN)
    jobs = claim(queue, "w1", batch=seeded)
    done = queue.complete_jobs([job.id for job in jobs], "w1")
    for job in jobs:
        record(recorder, job, "w1", job.id in done)
    recorder.operation("claim_pending_job", 0.0004, len(jobs), ok=True)
    assert recorder.flush(db_conn) == (6, 1)

    result = audit_run(db_conn, RUN)

    assert result.passed, result.problems
    assert (result.seeded, result.completed_once, result.not_completed) == (6, 6, 0)
    latency = operation_latency(db_conn, RUN)["claim_pending_job"]
    assert latency["p99_ms"] == 0.4  # exact: Locust would have bucketed this to 0 ms
    assert latency["jobs"] == 6


def test_a_job_claimed_twice_fails_the_audit(
    db_conn: Conn, queue: QueueClient, seeded: int
) -> None:
    recorder = Recorder(RUN)
    jobs = claim(queue, "w1", batch=seeded)
    done = queue.complete_jobs([job.id for job in jobs], "w1")
    for job in jobs:
        record(recorder, job, "w1", job.id in done)
    record(recorder, jobs[0], "w2", completed=False)  # a second holder of the same lease
    recorder.flush(db_conn)

    result = audit_run(db_conn, RUN)

    assert not result.passed
    assert [row["job_id"] for row in result.double_claims] == [jobs[0].id]
    assert result.double_claims[0]["workers"] == ["w1", "w2"]
    assert "claimed twice while leased" in result.problems[0]


def test_a_claimed_but_never_completed_job_is_lost(
    db_conn: Conn, queue: QueueClient, seeded: int
) -> None:
    recorder = Recorder(RUN)
    jobs = claim(queue, "w1", batch=seeded)
    kept = jobs[-1]
    done = queue.complete_jobs([job.id for job in jobs[:-1]], "w1")
    for job in jobs:
        record(recorder, job, "w1", job.id in done)
    recorder.flush(db_conn)

    result = audit_run(db_conn, RUN)

    assert not result.passed
    assert result.not_completed == 1
    assert kept.id not in done
    assert "1 of 6 seeded job(s) not completed" in " ".join(result.problems)


def test_a_completion_the_claims_do_not_explain_fails(
    db_conn: Conn, queue: QueueClient, seeded: int
) -> None:
    recorder = Recorder(RUN)
    jobs = claim(queue, "w1", batch=seeded)
    queue.complete_jobs([job.id for job in jobs], "w1")
    for job in jobs[1:]:
        record(recorder, job, "w1", completed=True)
    recorder.flush(db_conn)

    result = audit_run(db_conn, RUN)

    assert result.completed_unrecorded == 1
    assert not result.passed


def test_complete_jobs_is_fenced(db_conn: Conn, queue: QueueClient, seeded: int) -> None:
    mine = claim(queue, "w1", batch=2)
    theirs = claim(queue, "w2", batch=2)
    unknown = UUID(int=7)

    done = queue.complete_jobs([*[j.id for j in mine], theirs[0].id, unknown], "w1")

    assert done == {job.id for job in mine}
    assert queue.complete_jobs([job.id for job in mine], "w1") == set()  # already completed
    statuses = dict(
        db_conn.execute(
            "SELECT id, status::text FROM ops.job_queue WHERE id = ANY(%s)",
            ([j.id for j in mine + theirs],),
        ).fetchall()
    )
    assert {statuses[j.id] for j in mine} == {"completed"}
    assert {statuses[j.id] for j in theirs} == {"processing"}


def test_complete_jobs_rejects_bad_arguments(db_conn: Conn, queue: QueueClient) -> None:
    with pytest.raises(InvalidArgumentError, match="at most 1000 ids"):
        queue.complete_jobs([UUID(int=n) for n in range(1001)], "w1")
    with pytest.raises(InvalidArgumentError, match="worker_id must be a non-empty string"):
        queue.complete_jobs([UUID(int=1)], " ")
    assert queue.complete_jobs([], "w1") == set()
    with pytest.raises(psycopg.Error, match="job_ids must be an array") as null:
        db_conn.execute("SELECT * FROM ops.complete_jobs(NULL, 'w1')")
    assert null.value.sqlstate == "DFQ02"
    with pytest.raises(psycopg.Error, match="at most 1000 ids"):
        db_conn.execute(
            "SELECT * FROM ops.complete_jobs(array_fill(gen_random_uuid(), ARRAY[1001]), 'w1')"
        )
