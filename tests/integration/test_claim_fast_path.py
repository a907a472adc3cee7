"""The one-job-per-claim path (migrations 0009, 0010): one cached plan; complete + claim at once.

bench-claim found claim_pending_job planned on every call: PL/pgSQL keeps a generic plan only
when it looks no dearer than the custom ones, and with `LIMIT batch_size` unknown the generic
plan joined the UPDATE to its candidates through a sequential scan of the whole table. Buffers,
not timings, so the assertions are deterministic.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from harness.bench.ours import DrainPlan, drain
from harness.bench.plan_capture import NestedPlans, buffers, table_scans
from harness.mutants.catalogue import MUTANTS
from reference.jobqueue import JobStatus, JobType, QueueClient

Conn = psycopg.Connection[Any]
PROBE = JobType.LOAD_PROBE
PENDING = 5_000


def fill(conn: Conn, count: int) -> None:
    conn.execute(
        "INSERT INTO ops.job_queue (job_type, run_at) SELECT 'load_probe', now() - interval "
        "'1 hour' + g * interval '1 ms' FROM generate_series(1, %s) AS g",
        (count,),
    )
    conn.execute("VACUUM ANALYZE ops.job_queue")


@pytest.mark.parametrize("function", ["claim_pending_job", "complete_job_and_claim"])
def test_the_claim_functions_always_use_their_cached_generic_plan(
    db_conn: Conn, function: str
) -> None:
    # The form that takes the lease length (the old form beside it is a SQL wrapper of it).
    row = db_conn.execute(
        "SELECT proconfig FROM pg_proc WHERE pronamespace = 'ops'::regnamespace"
        " AND proname = %s ORDER BY pronargs DESC LIMIT 1",
        (function,),
    ).fetchone()

    assert row is not None
    assert "plan_cache_mode=force_generic_plan" in (row[0] or [])


def test_a_batch_claim_leaves_the_transaction_plan_cache_mode_alone(db_conn: Conn) -> None:
    fill(db_conn, 20)

    with db_conn.transaction():
        db_conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        claim = "SELECT id FROM ops.claim_pending_job(ARRAY['load_probe'], 'w', 5)"
        claimed = db_conn.execute(claim).fetchall()
        # The batch path's own SET LOCAL force_custom_plan ends with the call, since the
        # function carries a SET of the same setting.
        setting = db_conn.execute("SHOW plan_cache_mode").fetchone()

    assert len(claimed) == 5
    assert setting == ("force_generic_plan",)


def test_the_generic_plan_of_a_claim_reads_only_the_rows_it_claims(db_conn: Conn) -> None:
    fill(db_conn, PENDING)
    capture = NestedPlans(db_conn)

    # Past the fifth call, where PL/pgSQL first weighs the generic plan against custom ones;
    # the first call also reads the catalogue, so it is left out.
    plans = [
        capture.run(
            "SELECT id FROM ops.claim_pending_job(ARRAY['load_probe'], 'w', 1)",
            containing="UPDATE ops.job_queue",
        )[1]
        for _ in range(8)
    ][1:]

    for plan in plans:
        scans = table_scans(plan)
        assert all(node != "Seq Scan" for node, _ in scans), scans
        # A hash join over a sequential scan reads every page of 5,000 rows.
        assert buffers(plan["Plan"]) < 40, buffers(plan["Plan"])


def test_complete_and_claim_completes_the_held_job_and_claims_the_next(
    queue: QueueClient,
) -> None:
    first, second = queue.queue_job(PROBE), queue.queue_job(PROBE)
    [held] = queue.claim_pending_job([PROBE], "w")

    completed, claimed = queue.complete_job_and_claim(held.id, "w", [PROBE])

    assert (held.id, completed, [job.id for job in claimed]) == (first, True, [second])
    done = queue.get_job(first)
    assert done is not None
    assert done.status == JobStatus.COMPLETED
    assert claimed[0].status == JobStatus.PROCESSING
    assert claimed[0].locked_by == "w"


def test_complete_and_claim_leaves_a_lost_job_to_its_new_owner_and_still_claims(
    queue: QueueClient, db_conn: Conn
) -> None:
    lost, other = queue.queue_job(PROBE), queue.queue_job(PROBE)
    queue.claim_pending_job([PROBE], "old-owner")
    db_conn.execute("UPDATE ops.job_queue SET locked_by = 'new-owner' WHERE id = %s", (lost,))

    completed, claimed = queue.complete_job_and_claim(lost, "old-owner", [PROBE])

    assert (completed, [job.id for job in claimed]) == (False, [other])
    still = queue.get_job(lost)
    assert still is not None
    assert (still.status, still.locked_by) == (
        JobStatus.PROCESSING,
        "new-owner",
    )


def test_complete_and_claim_with_nothing_due_only_completes(queue: QueueClient) -> None:
    job_id = queue.queue_job(PROBE)
    queue.claim_pending_job([PROBE], "w")

    assert queue.complete_job_and_claim(job_id, "w", [PROBE], batch_size=10) == (True, [])


def test_a_bad_claim_leaves_the_held_job_uncompleted(queue: QueueClient, db_conn: Conn) -> None:
    job_id = queue.queue_job(PROBE)
    queue.claim_pending_job([PROBE], "w")

    with pytest.raises(psycopg.Error) as raised:
        db_conn.execute(
            "SELECT * FROM ops.complete_job_and_claim(%s, 'w', ARRAY['no_such_type'])", (job_id,)
        )

    assert raised.value.sqlstate == "DFQ01"  # unknown job type

    held = queue.get_job(job_id)
    assert held is not None
    assert held.status == JobStatus.PROCESSING


DRAINED = 600


@pytest.mark.parametrize("row_lock", [True, False], ids=["as-built", "without-the-row-lock"])
def test_concurrent_complete_and_claim_hands_each_job_to_one_worker_once(
    database_url: str, db_conn: Conn, row_lock: bool
) -> None:
    fill(db_conn, DRAINED)
    if not row_lock:  # the check must bite: a claim that locks nothing hands out jobs twice
        [no_lock] = [m for m in MUTANTS if m.name == "claim-no-row-lock"]
        no_lock.apply(db_conn)

    result = drain(
        database_url,
        threads=8,
        max_jobs=DRAINED,
        max_seconds=60,
        plan=DrainPlan(combined=True),
    )

    if row_lock:
        assert (result.double_claims, result.errors, result.jobs) == (0, [], DRAINED)
        row = db_conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FROM ops.job_queue"
        ).fetchone()
        assert row == (DRAINED, DRAINED)
    else:
        assert result.double_claims > 0
