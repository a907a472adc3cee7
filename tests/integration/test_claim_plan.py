"""The claim's real plan, captured with auto_explain from inside ops.claim_pending_job.

Pins that the claim walks job_queue_claim_idx per job type, so its cost (shared buffers touched)
stays flat as completed rows pile up and a rare type is not stuck behind a common type's backlog
(shared/notes/claim-benchmark.md). Buffers, not timings, so the assertions are deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from harness.bench.plan_capture import AUTO_EXPLAIN

pytestmark = pytest.mark.slow

Plan = dict[str, Any]
Conn = psycopg.Connection[Any]
CLAIM_INDEX = "job_queue_claim_idx"
FORBIDDEN_SCANS = {"Seq Scan", "Bitmap Heap Scan", "Tid Scan", "Tid Range Scan", "Sample Scan"}
STRATEGY, DRAFTING, INGEST = "enforcement_strategy", "enforcement_drafting", "ingest_csv"


def buffers(node: Plan) -> int:
    return int(node["Shared Hit Blocks"]) + int(node["Shared Read Blocks"])


def claim_plan_violations(plan: Plan, *, max_buffers: int) -> list[str]:
    """What is wrong with a claim statement's plan: ops.job_queue read other than through the
    claim index (in the candidates walk) or the primary key (the UPDATE's join back), no walk
    of the claim index at all, or more shared buffers touched than max_buffers."""
    violations: list[str] = []
    claim_index_scans = 0

    def walk(node: Plan, in_candidates: bool) -> None:
        nonlocal claim_index_scans
        in_candidates = in_candidates or node.get("Subplan Name") == "CTE candidates"
        kind, index = node["Node Type"], node.get("Index Name")
        if kind == "Bitmap Heap Scan" and not in_candidates:
            # The UPDATE's join back finds its rows by `id = ANY (...)`: a bitmap of the
            # primary key is as direct as an index scan of it.
            [bitmap] = node["Plans"]
            kind, index = "Index Scan", bitmap.get("Index Name")
        if node.get("Relation Name") == "job_queue" and kind != "ModifyTable":
            allowed = CLAIM_INDEX if in_candidates else "job_queue_pkey"
            if kind in FORBIDDEN_SCANS:
                violations.append(f"{kind} on job_queue (filter: {node.get('Filter')})")
            elif index != allowed:
                violations.append(f"{kind} on job_queue using {index}, expected {allowed}")
            elif index == CLAIM_INDEX:
                claim_index_scans += 1
        for child in node.get("Plans", []):
            walk(child, in_candidates)

    walk(plan["Plan"], in_candidates=False)
    if claim_index_scans == 0:
        violations.append(f"no Index Scan on {CLAIM_INDEX} in the candidates walk")
    if buffers(plan["Plan"]) > max_buffers:
        violations.append(f"{buffers(plan['Plan'])} shared buffers touched > {max_buffers}")
    return violations


def assert_claim_plan(plan: Plan, *, max_buffers: int = 50) -> None:
    violations = claim_plan_violations(plan, max_buffers=max_buffers)
    assert not violations, "claim plan: " + "; ".join(violations)


class PlanCapture:
    """Calls ops.claim_pending_job with auto_explain on and keeps the claim statement's plan."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.messages: list[str] = []
        for statement in AUTO_EXPLAIN:
            conn.execute(statement)
        # A Diagnostic is only valid inside the handler: copy the text out.
        conn.add_notice_handler(lambda diag: self.messages.append(diag.message_primary or ""))
        # A new backend's first claim also pays for filling its caches (44 buffers, later ones
        # 14-17), and its first claimed row for loading the triggers on ops.job_queue: warm both
        # with a claim of one load_probe job, a type the tests leave alone otherwise.
        conn.execute("SELECT ops.queue_job('load_probe')")
        self.claim(["load_probe"])

    def claim(self, types: list[str], batch_size: int = 1) -> tuple[list[tuple[Any, ...]], Plan]:
        self.messages.clear()
        rows = self.conn.execute(
            "SELECT job_type, priority, run_at, id FROM ops.claim_pending_job(%s, 'w1', %s)",
            (types, batch_size),
        ).fetchall()
        plans = [json.loads(m.partition("plan:\n")[2]) for m in self.messages if "plan:\n" in m]
        [plan] = [p for p in plans if "candidates AS MATERIALIZED" in p["Query Text"]]
        return rows, plan


def add_pending(
    conn: Conn, job_type: str, count: int, age: str, *, tie_pairs: bool = False
) -> None:
    """count pending jobs, run_at from now() - age upwards 1 ms apart (or in tied pairs)."""
    step = "((g + 1) / 2)" if tie_pairs else "g"
    conn.execute(
        "INSERT INTO ops.job_queue (job_type, run_at) "
        f"SELECT %s, now() - %s::interval + {step} * interval '1 ms' "
        "FROM generate_series(1, %s) AS g",
        (job_type, age, count),
    )


def add_completed(conn: Conn, count: int) -> None:
    conn.execute(
        "INSERT INTO ops.job_queue (job_type, status, run_at, completed_at, locked_by, attempts) "
        "SELECT 'ingest_csv', 'completed', now() - interval '2 days' + g * interval '1 ms', "
        "now() - interval '1 day', 'old-worker', 1 FROM generate_series(1, %s) AS g",
        (count,),
    )


def mixed_backlog(conn: Conn) -> None:
    """100,000 pending ingest_csv (run_at tied in pairs) queued ahead of 50 enforcement_strategy."""
    add_pending(conn, INGEST, 100_000, "3 hours", tie_pairs=True)
    add_pending(conn, STRATEGY, 50, "1 hour")
    conn.execute("ANALYZE ops.job_queue")


def swap_in_trap_index(conn: Conn) -> None:
    conn.execute(f"DROP INDEX ops.{CLAIM_INDEX}")
    conn.execute(
        "CREATE INDEX job_queue_trap_idx ON ops.job_queue (priority DESC, run_at, id) "
        "WHERE status = 'pending'"
    )
    conn.execute("ANALYZE ops.job_queue")


def test_claim_cost_stays_flat_as_completed_rows_pile_up(
    db_conn: Conn, db_connect: Callable[..., Conn]
) -> None:
    add_pending(db_conn, INGEST, 2_000, "2 hours")
    db_conn.execute("ANALYZE ops.job_queue")
    # Claims on their own connection: with auto_explain on, the bulk INSERT below would send
    # one LOG notice per row (its foreign-key check is a nested statement), 10 s for 200,000.
    capture = PlanCapture(db_connect())
    small = []
    for _ in range(3):
        rows, plan = capture.claim([INGEST])
        assert [row[0] for row in rows] == [INGEST]
        assert_claim_plan(plan)
        small.append(buffers(plan["Plan"]))

    add_completed(db_conn, 200_000)
    db_conn.execute("ANALYZE ops.job_queue")
    large = []
    for _ in range(5):
        rows, plan = capture.claim([INGEST])
        assert [row[0] for row in rows] == [INGEST]
        assert_claim_plan(plan)
        large.append(buffers(plan["Plan"]))
    print(f"claim buffers: small table {small}, beside 200,000 completed {large}")
    assert max(large) <= min(small) + 20

    # The statistics that once flipped the cached generic plan to a sort of every pending row
    # (one CI run in five): a sample that saw the one load_probe row, so job_type has two
    # distinct values. Sampling the whole table makes that certain. A claim of one job must
    # keep its index walk (migration 0010); each ANALYZE also empties the backend's cached
    # index metapages, about 20 buffers more.
    db_conn.execute("ALTER TABLE ops.job_queue ALTER COLUMN job_type SET STATISTICS 10000")
    for _ in range(3):
        db_conn.execute("ANALYZE ops.job_queue")
        rows, plan = capture.claim([INGEST])
        assert [row[0] for row in rows] == [INGEST]
        assert_claim_plan(plan, max_buffers=60)
    # A batch claim is planned on each call, for its batch size.
    rows, plan = capture.claim([INGEST], batch_size=10)
    assert [row[0] for row in rows] == [INGEST] * 10
    assert_claim_plan(plan, max_buffers=250)  # ten rows updated, as in the mixed backlog below


def test_a_rare_type_is_not_stuck_behind_a_common_backlog(db_conn: Conn) -> None:
    mixed_backlog(db_conn)
    capture = PlanCapture(db_conn)
    seen = []
    for types in ([STRATEGY], [STRATEGY, DRAFTING]):
        rows, plan = capture.claim(types)
        assert [row[0] for row in rows] == [STRATEGY]
        assert_claim_plan(plan)
        seen.append(buffers(plan["Plan"]))

    # Priority 1 across both types, one run_at shared across types (id breaks the tie), below
    # them the oldest ingest_csv jobs, whose run_at values are tied in pairs.
    db_conn.execute(
        "INSERT INTO ops.job_queue (job_type, priority, run_at) "
        "SELECT t, 1, now() - m * interval '1 minute' "
        "FROM (VALUES (%s, 30), (%s, 40), (%s, 20), (%s, 20)) AS v (t, m)",
        (INGEST, STRATEGY, STRATEGY, INGEST),
    )
    expected = db_conn.execute(
        "SELECT job_type, priority, run_at, id FROM ops.job_queue "
        "WHERE status = 'pending' AND job_type = ANY(%s) AND run_at <= now() "
        "ORDER BY priority DESC, run_at, id LIMIT 10",
        ([STRATEGY, INGEST],),
    ).fetchall()
    rows, plan = capture.claim([STRATEGY, INGEST], batch_size=10)
    assert rows == expected
    assert rows == sorted(rows, key=lambda row: (-row[1], row[2], row[3]))
    assert {row[0] for row in rows[:4]} == {STRATEGY, INGEST}
    assert [row[1] for row in rows] == [1] * 4 + [0] * 6
    assert rows[4][2] == rows[5][2]  # a run_at tie, ordered by id
    assert_claim_plan(plan, max_buffers=250)
    seen.append(buffers(plan["Plan"]))
    print(f"mixed backlog claim buffers (strategy, strategy+drafting, batch of 10): {seen}")


def test_the_checker_fails_with_the_trap_index_on_a_mixed_backlog(db_conn: Conn) -> None:
    mixed_backlog(db_conn)
    swap_in_trap_index(db_conn)
    capture = PlanCapture(db_conn)
    seen = []
    for types in ([STRATEGY], [STRATEGY, DRAFTING]):
        rows, plan = capture.claim(types)
        assert [row[0] for row in rows] == [STRATEGY]  # still correct, only slow
        violations = claim_plan_violations(plan, max_buffers=50)
        assert any("shared buffers touched" in v for v in violations), violations
        assert f"no Index Scan on {CLAIM_INDEX} in the candidates walk" in violations
        with pytest.raises(AssertionError, match="claim plan"):
            assert_claim_plan(plan)
        seen.append(buffers(plan["Plan"]))
    print(f"trap index claim buffers (strategy, strategy+drafting): {seen}")


def test_the_checker_fails_without_the_claim_index_on_a_large_table(db_conn: Conn) -> None:
    add_completed(db_conn, 200_000)
    add_pending(db_conn, INGEST, 2_000, "2 hours")
    db_conn.execute(f"DROP INDEX ops.{CLAIM_INDEX}")
    db_conn.execute("ANALYZE ops.job_queue")
    capture = PlanCapture(db_conn)

    rows, plan = capture.claim([INGEST])

    assert [row[0] for row in rows] == [INGEST]
    # Without it the claim reads past the claim index: a seq scan, or the unfinished-jobs
    # index (0007) with a filter on status, walking every pending job of the type.
    with pytest.raises(AssertionError, match="no Index Scan on job_queue_claim_idx"):
        assert_claim_plan(plan)
    print(f"no claim index, large table: {buffers(plan['Plan'])} buffers")
