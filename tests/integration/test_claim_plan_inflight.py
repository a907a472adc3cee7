"""Plans with thousands of jobs in flight and a large history, captured inside the functions.

The benchmark found completion slowing as more jobs were in flight: complete_job walked the
whole lease index filtered on the id (174-215 buffers with 4,000 in flight) instead of one
primary-key lookup. Migration 0005 narrowed that index's predicate so the fenced updates cannot
use it. Buffers, not timings, so the assertions are deterministic.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest

from harness.bench.plan_capture import NestedPlans, Plan, buffers, table_scans

pytestmark = pytest.mark.slow

Conn = psycopg.Connection[Any]
WORKER = "w-inflight"
IN_FLIGHT = 4_000
PKEY = ("Index Scan", "job_queue_pkey")
FENCED_CALLS = {
    "complete_job": ("SELECT ops.complete_job(%s, %s)", "UPDATE ops.job_queue"),
    "extend_lock": ("SELECT ops.extend_lock(%s, %s)", "UPDATE ops.job_queue"),
    "fail_job": ("SELECT ops.fail_job(%s, %s, 'boom')", "UPDATE ops.job_queue"),
}
OLD_LEASE_INDEX = (
    "CREATE INDEX job_queue_processing_lease_idx ON ops.job_queue (locked_at) "
    "WHERE status = 'processing'"
)


def fill(conn: Conn, pending: int, completed: int = 0) -> None:
    if completed:
        conn.execute(
            "INSERT INTO ops.job_queue (job_type, status, run_at, completed_at, locked_by, "
            "attempts) SELECT 'load_probe', 'completed', now() - interval '2 days' "
            "+ g * interval '1 ms', now() - interval '1 day', 'old-worker', 1 "
            "FROM generate_series(1, %s) AS g",
            (completed,),
        )
    conn.execute(
        "INSERT INTO ops.job_queue (job_type, run_at) SELECT 'load_probe', now() - interval "
        "'1 hour' + g * interval '1 ms' FROM generate_series(1, %s) AS g",
        (pending,),
    )
    # Statistics taken while nothing is processing: what a table looks like to the planner
    # between autovacuum runs when a burst of claims starts.
    conn.execute("VACUUM ANALYZE ops.job_queue")


def claim_in_flight(conn: Conn, count: int) -> list[UUID]:
    ids: list[UUID] = []
    while len(ids) < count:
        rows = conn.execute(
            "SELECT id FROM ops.claim_pending_job(ARRAY['load_probe'], %s, 100)", (WORKER,)
        ).fetchall()
        ids += [row[0] for row in rows]
    return ids


def fenced_plans(conn: Conn, ids: list[UUID]) -> dict[str, list[Plan]]:
    """Each fenced function's UPDATE plan, custom and generic (plpgsql switches after five)."""
    capture = NestedPlans(conn)
    plans: dict[str, list[Plan]] = {name: [] for name in FENCED_CALLS}
    remaining = iter(ids)
    for mode in ("force_custom_plan", "force_generic_plan", "auto"):
        conn.execute(f"SET plan_cache_mode = {mode}".encode())
        for name, (call, containing) in FENCED_CALLS.items():
            for _ in range(3 if mode != "auto" else 6):
                _, plan = capture.run(call, (next(remaining), WORKER), containing=containing)
                plans[name].append(plan)
    return plans


def assert_by_primary_key(plans: dict[str, list[Plan]], max_buffers: int = 30) -> None:
    for name, captured in plans.items():
        for plan in captured:
            assert table_scans(plan) == [PKEY], f"{name}: {table_scans(plan)}"
            assert buffers(plan["Plan"]) <= max_buffers, f"{name}: {buffers(plan['Plan'])}"


def test_fenced_updates_use_the_primary_key_with_thousands_in_flight(db_conn: Conn) -> None:
    fill(db_conn, pending=20_000)
    ids = claim_in_flight(db_conn, IN_FLIGHT)

    plans = fenced_plans(db_conn, ids)

    assert_by_primary_key(plans)
    seen = {name: max(buffers(p["Plan"]) for p in captured) for name, captured in plans.items()}
    print(f"{IN_FLIGHT} in flight, most buffers per fenced update: {seen}")


def test_fenced_updates_stay_on_the_primary_key_beside_a_large_history(db_conn: Conn) -> None:
    fill(db_conn, pending=20_000, completed=200_000)
    ids = claim_in_flight(db_conn, IN_FLIGHT)

    assert_by_primary_key(fenced_plans(db_conn, ids))


def test_complete_jobs_completes_a_batch_through_the_primary_key(db_conn: Conn) -> None:
    fill(db_conn, pending=20_000)
    ids = claim_in_flight(db_conn, IN_FLIGHT)
    capture = NestedPlans(db_conn)

    for mode in ("force_custom_plan", "force_generic_plan"):
        db_conn.execute(f"SET plan_cache_mode = {mode}".encode())
        batch, ids = ids[:100], ids[100:]
        rows, plan = capture.run(
            "SELECT * FROM ops.complete_jobs(%s, %s)", (batch, WORKER), containing="UPDATE"
        )
        assert {row[0] for row in rows} == set(batch)
        [(_, index)] = table_scans(plan)  # an index scan or a bitmap scan, of the key alone
        assert index == "job_queue_pkey", table_scans(plan)
        # 100 rows updated: each costs a few buffers (heap, primary key, the claim index's
        # and lease index's entries), never a walk of the 4,000 in flight.
        assert buffers(plan["Plan"]) <= 100 * 12


def test_the_check_fails_with_the_old_lease_index(db_conn: Conn) -> None:
    """The same check against the index 0005 replaced: it must catch the walk."""
    db_conn.execute("DROP INDEX ops.job_queue_processing_lease_idx")
    db_conn.execute(OLD_LEASE_INDEX)
    fill(db_conn, pending=20_000)
    ids = claim_in_flight(db_conn, IN_FLIGHT)

    plans = fenced_plans(db_conn, ids)

    with pytest.raises(AssertionError, match="job_queue_processing_lease_idx"):
        assert_by_primary_key(plans)
    walks = {
        name: max(buffers(p["Plan"]) for p in captured)
        for name, captured in plans.items()
        if any(
            index == "job_queue_processing_lease_idx"
            for p in captured
            for _, index in table_scans(p)
        )
    }
    print(f"old lease index, {IN_FLIGHT} in flight: most buffers of the walks {walks}")
    assert max(walks.values()) > 100, walks  # a walk of the in-flight jobs, not one lookup


def test_the_reaper_still_reads_the_lease_index(db_conn: Conn) -> None:
    fill(db_conn, pending=20_000, completed=50_000)
    claim_in_flight(db_conn, 1_000)
    db_conn.execute("ANALYZE ops.job_queue")
    capture = NestedPlans(db_conn)

    rows, plan = capture.run(
        "SELECT * FROM ops.reap_stuck_jobs(interval '1 hour')", containing="expired AS"
    )

    assert rows == []
    # Each lease's own expiry (migration 0011), by its index (0012); a lease without one by
    # its age, through the lease index.
    read = ",".join(index for _, index in table_scans(plan))
    assert "job_queue_lease_expiry_idx" in read, table_scans(plan)


def churn_then_claim_plan(conn: Conn, churn: int) -> Plan:
    """Claim and complete `churn` jobs one by one, then capture one more claim's plan."""
    for _ in range(churn):
        (job_id,) = conn.execute(
            "SELECT id FROM ops.claim_pending_job(ARRAY['load_probe'], %s)", (WORKER,)
        ).fetchone() or (None,)
        conn.execute("SELECT ops.complete_job(%s, %s)", (job_id, WORKER))
    capture = NestedPlans(conn)
    _, plan = capture.run(
        "SELECT id FROM ops.claim_pending_job(ARRAY['load_probe'], %s)",
        (WORKER,),
        containing="candidates AS MATERIALIZED",
    )
    return plan


def test_the_claim_stays_an_index_walk_after_churn_beside_history(db_conn: Conn) -> None:
    """1,500 claims and completions leave dead entries at the head of the claim index; beside
    a large history (which delays autovacuum) the next claim must still be a short walk."""
    fill(db_conn, pending=20_000)
    small_plan = churn_then_claim_plan(db_conn, 1_500)
    db_conn.execute("TRUNCATE ops.job_queue CASCADE")
    fill(db_conn, pending=20_000, completed=200_000)
    large_plan = churn_then_claim_plan(db_conn, 1_500)

    for plan in (small_plan, large_plan):
        walks = [index for kind, index in table_scans(plan) if kind.startswith("Index")]
        assert "job_queue_claim_idx" in walks, table_scans(plan)
        # The lock and the UPDATE find rows by `id = ANY (...)`: a bitmap of the primary key is
        # as direct. The candidates walk reads no row lock, so it may be index-only (0011).
        index_reads = {
            ("Index Scan", "job_queue_claim_idx"),
            ("Index Only Scan", "job_queue_claim_idx"),
            ("Bitmap Heap Scan", PKEY[1]),
        }
        assert set(table_scans(plan)) <= index_reads | {PKEY}, table_scans(plan)
    print(
        f"claim after 1,500 claims: {buffers(small_plan['Plan'])} buffers with 20,000 pending, "
        f"{buffers(large_plan['Plan'])} beside 200,000 completed"
    )
    assert buffers(large_plan["Plan"]) <= buffers(small_plan["Plan"]) + 20
