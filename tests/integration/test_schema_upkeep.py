"""The schema keeps itself: indexed foreign keys, updated_at by trigger, bounded history."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

import psycopg
import pytest

from harness.inputs.uploads import store_upload_bytes
from reference.api.schemas import BatchState
from reference.config import load_settings
from reference.jobqueue import JobStatus, JobType, QueueClient
from reference.workers import retention
from reference.workers.retention import prune_history

Conn = psycopg.Connection[Any]
# Foreign keys knowingly left without an index of their own, with the reason.
UNINDEXED_ON_PURPOSE = {
    # Job types are never deleted while jobs of them exist; a full index on the largest table
    # would cost every insert for a delete that does not happen (the claim index is partial).
    ("ops.job_queue", "job_type"),
}
# Every foreign key whose columns do not lead some valid, non-partial index of its table.
UNINDEXED_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text AS relation,
       string_agg(a.attname, ',' ORDER BY k.ord) AS columns
FROM pg_constraint AS c
CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
WHERE c.contype = 'f'
  AND c.connamespace::regnamespace::text IN ('ops', 'public', 'enforcement')
  AND NOT EXISTS (
      SELECT 1 FROM pg_index AS i
      WHERE i.indrelid = c.conrelid AND i.indisvalid AND i.indpred IS NULL
        AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
        AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey
  )
GROUP BY c.oid, c.conrelid
ORDER BY 1, 2
"""


def unindexed_foreign_keys(conn: Conn) -> set[tuple[str, str]]:
    return {(row[0], row[1]) for row in conn.execute(UNINDEXED_FOREIGN_KEYS).fetchall()}


def test_every_foreign_key_has_an_index(db_conn: Conn) -> None:
    assert unindexed_foreign_keys(db_conn) - UNINDEXED_ON_PURPOSE == set()


def test_the_foreign_key_check_finds_a_key_without_an_index(db_conn: Conn) -> None:
    db_conn.execute("DROP INDEX enforcement.draft_packets_judgment_id_idx")
    db_conn.execute(
        "CREATE TABLE public.notes (id int PRIMARY KEY, judgment_id uuid "
        "REFERENCES public.judgments (id))"
    )

    assert unindexed_foreign_keys(db_conn) - UNINDEXED_ON_PURPOSE == {
        ("enforcement.draft_packets", "judgment_id"),
        ("notes", "judgment_id"),
    }


def _judgment(conn: Conn) -> Any:
    row = conn.execute(
        "INSERT INTO public.judgments (case_number, plaintiff, defendant) "
        "VALUES ('CV-1', 'P', 'D') RETURNING id"
    ).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize(
    ("table", "change"),
    [
        ("public.judgments", "county = 'Kings'"),
        ("public.debtor_profiles", "owns_home = true"),
        ("enforcement.plans", "reason = 'changed'"),
        ("enforcement.draft_packets", "total_fees = 1"),
        ("ops.job_queue", "priority = 7"),
    ],
)
def test_updated_at_moves_on_every_changing_update_without_being_set(
    db_conn: Conn, table: str, change: str
) -> None:
    judgment_id = _judgment(db_conn)
    db_conn.execute("INSERT INTO public.debtor_profiles (judgment_id) VALUES (%s)", (judgment_id,))
    db_conn.execute(
        "INSERT INTO enforcement.plans (judgment_id, strategy, reason) "
        "VALUES (%s, 'surveillance', 'r')",
        (judgment_id,),
    )
    db_conn.execute(
        "INSERT INTO enforcement.draft_packets (plan_id, judgment_id, strategy, documents, "
        "total_fees) SELECT id, judgment_id, strategy, '[]', 0 FROM enforcement.plans"
    )
    QueueClient(db_conn).queue_job(JobType.LOAD_PROBE)
    db_conn.execute("SET session_replication_role = replica")  # no triggers: an old stamp
    db_conn.execute(f"UPDATE {table} SET updated_at = '2000-01-01'")
    db_conn.execute("RESET session_replication_role")
    before = db_conn.execute(f"SELECT updated_at FROM {table}").fetchone()

    after = db_conn.execute(f"UPDATE {table} SET {change} RETURNING updated_at, now()").fetchone()
    db_conn.execute(f"UPDATE {table} SET {change}")
    unchanged = db_conn.execute(f"SELECT updated_at FROM {table}").fetchone()

    assert before is not None
    assert after is not None
    assert unchanged is not None
    assert before[0].year == 2000
    assert after[0] == after[1]  # the changing update's transaction time
    assert unchanged[0] == after[0]


def _settings(database_url: str) -> Any:
    return load_settings(
        {
            "DATABASE_URL": database_url,
            "RETAIN_COMPLETED_JOBS": str(timedelta(hours=1).total_seconds()),
            "RETAIN_DEAD_LETTERED_JOBS": str(timedelta(days=1).total_seconds()),
            "RETAIN_STOPPED_WORKERS": str(timedelta(days=1).total_seconds()),
        }
    )


def _add_jobs(conn: Conn, status: str, count: int, age: str) -> None:
    """count jobs finished `age` ago in `status` (completed or failed)."""
    conn.execute(
        "INSERT INTO ops.job_queue (job_type, status, attempts, completed_at, dead_lettered_at) "
        "SELECT 'load_probe', %(status)s::ops.job_status, 1, "
        "CASE WHEN %(status)s = 'completed' THEN now() - %(age)s::interval END, "
        "CASE WHEN %(status)s = 'failed' THEN now() - %(age)s::interval END "
        "FROM generate_series(1, %(count)s)",
        {"status": status, "count": count, "age": age},
    )


def _jobs_by_status(conn: Conn) -> dict[str, int]:
    rows = conn.execute("SELECT status::text, count(*) FROM ops.job_queue GROUP BY 1").fetchall()
    return {row[0]: int(row[1]) for row in rows}


def test_prune_deletes_old_history_in_bounded_batches_and_keeps_the_rest(
    db_conn: Conn, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "PRUNE_BATCH_SIZE", 40)
    _add_jobs(db_conn, "completed", 100, "2 hours")  # past the 1 h retention
    _add_jobs(db_conn, "completed", 5, "10 minutes")
    _add_jobs(db_conn, "failed", 3, "2 days")  # past the 1 day dead-letter retention
    _add_jobs(db_conn, "failed", 4, "2 hours")
    QueueClient(db_conn).queue_job(JobType.LOAD_PROBE)  # pending: never pruned
    db_conn.execute(
        "INSERT INTO ops.worker_heartbeats (worker_id, worker_type, hostname, status, "
        "last_seen_at) VALUES ('gone', 'probe', 'h', 'stopped', now() - interval '3 days'), "
        "('alive', 'probe', 'h', 'idle', now())"
    )
    settings = _settings(database_url)

    first = prune_history(db_conn, settings)
    second = prune_history(db_conn, settings)
    third = prune_history(db_conn, settings)
    fourth = prune_history(db_conn, settings)

    assert [first, second, third, fourth] == [(40, 3, 1), (40, 0, 0), (20, 0, 0), (0, 0, 0)]
    assert _jobs_by_status(db_conn) == {"completed": 5, "failed": 4, "pending": 1}
    workers = db_conn.execute("SELECT worker_id FROM ops.worker_heartbeats").fetchall()
    assert workers == [("alive",)]


def test_only_one_worker_prunes_at_a_time(
    db_conn: Conn, db_connect: Any, database_url: str
) -> None:
    _add_jobs(db_conn, "completed", 10, "2 hours")
    other = db_connect()
    with other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(hashtext('ops.prune_history'))")
        assert prune_history(db_conn, _settings(database_url)) == (0, 0, 0)
    assert prune_history(db_conn, _settings(database_url)) == (10, 0, 0)


def test_a_pruned_ingest_job_leaves_its_batch_without_a_job(
    db_conn: Conn, database_url: str
) -> None:
    batch_id, job_id = store_upload_bytes(db_conn, "a.csv", b"Case Number\n")
    db_conn.execute(
        "UPDATE ops.job_queue SET status = 'completed', completed_at = now() - interval '2 hours' "
        "WHERE id = %s",
        (job_id,),
    )

    assert prune_history(db_conn, _settings(database_url))[0] == 1
    row = db_conn.execute(
        "SELECT job_id FROM ops.ingest_batches WHERE id = %s", (batch_id,)
    ).fetchone()
    assert row == (None,)


@pytest.mark.parametrize(
    ("enum_type", "model"),
    [("ops.job_status", JobStatus), ("ops.ingest_batch_status", BatchState)],
)
def test_the_python_enums_mirror_the_database_enums(
    db_conn: Conn, enum_type: str, model: type[StrEnum]
) -> None:
    row = db_conn.execute(f"SELECT enum_range(NULL::{enum_type})::text[]").fetchone()
    assert row is not None
    assert [member.value for member in model] == row[0]
