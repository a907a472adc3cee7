"""The database contract of SPEC §2, checked through the catalog and plain SQL only.

Nothing here imports the reference implementation's code (only its job-type list), so the same
tests can be pointed at any database that claims to implement the queue contract: `contract_db`
is the target's database (--db-url; read-only unless --allow-writes), `own_db` a database of the
test's own, for the checks that need an empty queue (they run against the local reference only).
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from reference.jobqueue import JobType

Conn = psycopg.Connection[Any]
TZ = "timestamp with time zone"


def _pairs(spec: str) -> list[tuple[str, str]]:
    """'name type, name type' -> [(name, type), ...]; types as format_type() spells them."""
    return [(item.split(" ", 1)[0], item.split(" ", 1)[1]) for item in spec.split(", ")]


JOB_QUEUE_COLUMNS = dict(
    _pairs(
        f"id uuid, job_type text, payload jsonb, status ops.job_status, priority integer, "
        f"run_at {TZ}, attempts integer, max_attempts integer, locked_at {TZ}, locked_by text, "
        f"last_error text, idempotency_key text, trace_context jsonb, created_at {TZ}, "
        f"updated_at {TZ}, completed_at {TZ}, dead_lettered_at {TZ}, reap_count integer, "
        # Issue 17: when the lease expires (claim or extend_lock: the clock + lock_timeout).
        f"lease_expires_at {TZ}"
    )
)
QUEUE_JOB_ARGS = _pairs(
    f"job_type text, payload jsonb, priority integer, run_at {TZ}, idempotency_key text, "
    "trace_context jsonb"
)
# function -> (arguments in order, result)
FUNCTIONS = {
    "claim_pending_job": (
        # SPEC's three arguments, plus `lock_timeout` (the old three-argument form, kept,
        # passes ops.default_lock_timeout()).
        "job_types text[], worker_id text, batch_size integer, lock_timeout interval",
        "SETOF ops.job_queue",
    ),
    "complete_job": ("job_id uuid, worker_id text", "boolean"),
    # SPEC's three arguments, plus `permanent` (default false: dead-letter without retries).
    "fail_job": ("job_id uuid, worker_id text, error text, permanent boolean", "text"),
    "extend_lock": ("job_id uuid, worker_id text, lock_timeout interval", "boolean"),
    # The fence a handler's transaction ends with (raises DFQ03 when the lease is gone).
    "hold_lease": ("job_id uuid, worker_id text", "void"),
    "reap_stuck_jobs": ("lock_timeout interval", "SETOF ops.job_queue"),
    "register_heartbeat": ("worker_id text, worker_type text, hostname text, status text", "void"),
}
# Old signatures kept beside the new ones as wrappers (migration 0011 expands, never drops, so a
# deployed caller of the old form keeps working): function -> its older argument lists.
COMPATIBILITY_FORMS = {
    "claim_pending_job": ["job_types text[], worker_id text, batch_size integer"],
    "complete_job_and_claim": ["job_id uuid, worker_id text, job_types text[], batch_size integer"],
    "extend_lock": ["job_id uuid, worker_id text"],
}


def _function(conn: Conn, name: str) -> tuple[list[tuple[str, str]], str, str]:
    """(named arguments in order, result type, argument list with defaults) of ops.<name>."""
    rows = conn.execute(
        """
        SELECT p.oid::regprocedure::text,
               array(SELECT format_type(t, NULL)
                     FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, n) ORDER BY n),
               p.proargnames[1:p.pronargs],
               pg_get_function_result(p.oid),
               pg_get_function_arguments(p.oid)
        FROM pg_proc AS p
        WHERE p.pronamespace = 'ops'::regnamespace AND p.proname = %s
        ORDER BY p.pronargs DESC
        """,
        (name,),
    ).fetchall()
    older = [_pairs(form) for form in COMPATIBILITY_FORMS.get(name, [])]
    assert len(rows) == 1 + len(older), f"expected one ops.{name}, found {[r[0] for r in rows]}"
    for row, form in zip(rows[1:], older, strict=True):
        assert list(zip(row[2], row[1], strict=True)) == form, f"ops.{name}: {row[0]}"
    _, types, names, result, arguments = rows[0]
    assert names is not None, f"ops.{name} has unnamed arguments"
    return list(zip(names, types, strict=True)), result, arguments


def _index_keys(conn: Conn, relation: str) -> list[tuple[str, str, bool, str | None]]:
    """(name, key list as written in the index definition, unique?, predicate) per index."""
    rows = conn.execute(
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisunique,
               pg_get_expr(i.indpred, i.indrelid)
        FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
        WHERE i.indrelid = %s::regclass
        """,
        (relation,),
    ).fetchall()
    found = []
    for name, indexdef, unique, predicate in rows:
        match = re.search(r"USING \w+ \((.*?)\)(?: INCLUDE| WITH| WHERE|$)", indexdef)
        assert match, indexdef
        found.append((name, match[1], unique, predicate))
    return found


def _unique_keys(conn: Conn, relation: str) -> set[str]:
    return {keys for _, keys, unique, _ in _index_keys(conn, relation) if unique}


def test_job_queue_has_exactly_the_spec_columns(contract_db: Conn) -> None:
    rows = contract_db.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod)
        FROM pg_attribute AS a
        WHERE a.attrelid = 'ops.job_queue'::regclass AND a.attnum > 0 AND NOT a.attisdropped
        """
    ).fetchall()
    assert dict(rows) == JOB_QUEUE_COLUMNS

    [(pk_columns,)] = contract_db.execute(
        """
        SELECT array(SELECT a.attname FROM unnest(c.conkey) AS k
                     JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k)
        FROM pg_constraint AS c WHERE c.conrelid = 'ops.job_queue'::regclass AND c.contype = 'p'
        """
    ).fetchall()
    assert pk_columns == ["id"]

    [(default,)] = contract_db.execute(
        "SELECT column_default FROM information_schema.columns"
        " WHERE table_schema = 'ops' AND table_name = 'job_queue' AND column_name = 'max_attempts'"
    ).fetchall()
    assert default == "5"


def test_job_status_enum_labels_in_order(contract_db: Conn) -> None:
    rows = contract_db.execute(
        "SELECT enumlabel FROM pg_enum WHERE enumtypid = 'ops.job_status'::regtype"
        " ORDER BY enumsortorder"
    ).fetchall()
    assert [label for (label,) in rows] == ["pending", "processing", "completed", "failed"]


def test_known_job_types_are_exactly_the_spec_ones(contract_db: Conn) -> None:
    rows = contract_db.execute("SELECT job_type FROM ops.job_types").fetchall()
    expected = {
        "ingest_csv",
        "enforcement_strategy",
        "enforcement_drafting",
        "smoke_canary",
        "load_probe",
    }
    assert {job_type for (job_type,) in rows} == expected
    assert {job_type.value for job_type in JobType} == expected


@pytest.mark.writes  # refused, if the target keeps the contract; else it would write
def test_a_job_of_an_unknown_type_is_refused(contract_db: Conn) -> None:
    with pytest.raises(psycopg.IntegrityError):
        contract_db.execute("INSERT INTO ops.job_queue (job_type) VALUES ('bogus_type')")
    with pytest.raises(psycopg.DatabaseError, match="bogus_type"):
        contract_db.execute("SELECT ops.queue_job(job_type => 'bogus_type', payload => '{}')")
    assert contract_db.execute(
        "SELECT count(*) FROM ops.job_queue WHERE job_type = 'bogus_type'"
    ).fetchone() == (0,)


def test_job_queue_indexes_serve_claim_reaper_and_idempotency(contract_db: Conn) -> None:
    indexes = _index_keys(contract_db, "ops.job_queue")
    pending = [
        keys for _, keys, _, pred in indexes if pred == "(status = 'pending'::ops.job_status)"
    ]
    assert any(keys.startswith("job_type, priority DESC, run_at, id") for keys in pending), indexes
    # The lease index: processing rows only (0005 adds `locked_at IS NOT NULL`, so the fenced
    # updates, which never test locked_at, find their row by the primary key instead).
    processing = [i for i in indexes if "(status = 'processing'::ops.job_status)" in (i[3] or "")]
    assert len(processing) >= 1, indexes
    assert "job_type, idempotency_key" in _unique_keys(contract_db, "ops.job_queue")


def test_queue_job_signature(contract_db: Conn) -> None:
    arguments, result, _ = _function(contract_db, "queue_job")
    assert arguments[:6] == QUEUE_JOB_ARGS
    assert arguments[6:] in ([], [("max_attempts", "integer")])
    assert result == "uuid"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_queue_function_signature(contract_db: Conn, name: str) -> None:
    expected_arguments, expected_result = FUNCTIONS[name]
    arguments, result, _ = _function(contract_db, name)
    assert arguments == _pairs(expected_arguments)
    assert result == expected_result


def test_function_defaults(contract_db: Conn) -> None:
    defaults = contract_db.execute(
        "SELECT pg_get_function_arguments(p.oid) FROM pg_proc AS p"
        " WHERE p.pronamespace = 'ops'::regnamespace AND p.proname = 'claim_pending_job'"
        " ORDER BY p.pronargs"
    ).fetchall()
    # SPEC: batch_size defaults to 1 (the three-argument form); the lease length is explicit.
    assert defaults[0][0].endswith("batch_size integer DEFAULT 1"), defaults
    assert "DEFAULT" not in defaults[-1][0], defaults
    _, _, reap_arguments = _function(contract_db, "reap_stuck_jobs")
    match = re.fullmatch(r"lock_timeout interval DEFAULT (.+)", reap_arguments)
    assert match, reap_arguments
    assert contract_db.execute(f"SELECT ({match[1]}) = interval '30 minutes'").fetchone() == (True,)


def test_functions_accept_named_arguments(own_db: Conn) -> None:
    first = own_db.execute(
        "SELECT ops.queue_job(job_type => 'ingest_csv', payload => '{}')"
    ).fetchone()
    second = own_db.execute(
        "SELECT ops.queue_job(job_type => 'ingest_csv', payload => '{\"n\": 2}', priority => -1,"
        " run_at => now() - interval '1 minute', idempotency_key => 'k2',"
        ' trace_context => \'{"traceparent": "00-ab-cd-01"}\')'
    ).fetchone()
    assert first is not None
    assert second is not None
    assert first[0] != second[0]

    claimed = own_db.execute(
        "SELECT id, status::text, locked_by, attempts"
        " FROM ops.claim_pending_job(job_types => ARRAY['ingest_csv'], worker_id => 'w1')"
    ).fetchall()
    assert claimed == [(first[0], "processing", "w1", 1)]  # batch_size defaults to 1
    assert own_db.execute(
        "SELECT ops.extend_lock(job_id => %s, worker_id => 'w1')", (first[0],)
    ).fetchone() == (True,)
    assert own_db.execute(
        "SELECT ops.complete_job(job_id => %s, worker_id => 'w1')", (first[0],)
    ).fetchone() == (True,)

    own_db.execute(
        "SELECT * FROM ops.claim_pending_job(job_types => ARRAY['ingest_csv'], worker_id => 'w2',"
        " batch_size => 5)"
    )
    outcome = own_db.execute(
        "SELECT ops.fail_job(job_id => %s, worker_id => 'w2', error => 'boom')", (second[0],)
    ).fetchone()
    assert outcome is not None
    assert isinstance(outcome[0], str)  # its values are not part of SPEC §2
    assert own_db.execute(
        "SELECT status::text, last_error, run_at > now() FROM ops.job_queue WHERE id = %s",
        (second[0],),
    ).fetchone() == ("pending", "boom", True)

    own_db.execute(
        "UPDATE ops.job_queue SET status = 'processing', locked_by = 'w3',"
        " locked_at = now() - interval '10 minutes' WHERE id = %s",
        (second[0],),
    )
    reaped = own_db.execute(
        "SELECT id, status::text, reap_count"
        " FROM ops.reap_stuck_jobs(lock_timeout => interval '5 minutes')"
    ).fetchall()
    assert reaped == [(second[0], "pending", 1)]

    own_db.execute(
        "SELECT ops.register_heartbeat(worker_id => 'w1', worker_type => 'ingest',"
        " hostname => 'host-a', status => 'busy')"
    )
    assert own_db.execute(
        "SELECT worker_type, hostname, status FROM ops.worker_heartbeats WHERE worker_id = 'w1'"
    ).fetchall() == [("ingest", "host-a", "busy")]


def _view_columns(conn: Conn, view: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'ops' AND table_name = %s",
        (view,),
    ).fetchall()
    return {name for (name,) in rows}


def test_queue_health_view_counts_stuck_jobs(own_db: Conn) -> None:
    wanted = {"job_type", "pending", "processing", "failed", "dead_lettered"}
    wanted |= {"oldest_pending_age", "stuck"}
    assert wanted <= _view_columns(own_db, "v_queue_health")
    for minutes in (31, 29):
        own_db.execute(
            "INSERT INTO ops.job_queue (job_type, status, attempts, locked_by, locked_at)"
            " VALUES ('enforcement_strategy', 'processing', 1, 'w', now() - %s * interval '1 min')",
            (minutes,),
        )
    own_db.execute("INSERT INTO ops.job_queue (job_type) VALUES ('enforcement_strategy')")
    rows = own_db.execute(
        "SELECT job_type, pending, processing, stuck FROM ops.v_queue_health"
    ).fetchall()
    by_type = {
        job_type: (pending, processing, stuck) for job_type, pending, processing, stuck in rows
    }
    assert by_type["enforcement_strategy"] == (1, 2, 1)
    assert by_type.get("ingest_csv", (0, 0, 0)) == (0, 0, 0)


def test_worker_status_view_marks_workers_stale_after_90_seconds(own_db: Conn) -> None:
    wanted = {"worker_id", "worker_type", "last_seen_at", "status", "is_stale"}
    assert wanted <= _view_columns(own_db, "v_worker_status")
    for worker_id, seconds in (("late", 91), ("on-time", 89)):
        own_db.execute("SELECT ops.register_heartbeat(%s, 'ingest', 'host', 'idle')", (worker_id,))
        own_db.execute(
            "UPDATE ops.worker_heartbeats SET last_seen_at = now() - %s * interval '1 second'"
            " WHERE worker_id = %s",
            (seconds, worker_id),
        )
    rows = own_db.execute(
        "SELECT worker_id, worker_type, status, is_stale FROM ops.v_worker_status ORDER BY 1"
    ).fetchall()
    assert rows == [("late", "ingest", "idle", True), ("on-time", "ingest", "idle", False)]


@pytest.mark.parametrize(
    "relation",
    [
        "public.judgments",
        "ops.ingest_batches",
        "ops.ingest_uploads",
        "ops.ingest_row_errors",
        "ops.worker_heartbeats",
        "public.debtor_profiles",
        "enforcement.plans",
        "enforcement.draft_packets",
    ],
)
def test_service_table_exists(contract_db: Conn, relation: str) -> None:
    schema, name = relation.split(".")
    assert contract_db.execute(
        "SELECT table_type FROM information_schema.tables"
        " WHERE table_schema = %s AND table_name = %s",
        (schema, name),
    ).fetchall() == [("BASE TABLE",)]


@pytest.mark.parametrize(
    ("relation", "column"),
    [("public.judgments", "case_number"), ("enforcement.plans", "judgment_id")],
)
def test_service_table_unique_key(contract_db: Conn, relation: str, column: str) -> None:
    assert column in _unique_keys(contract_db, relation)
