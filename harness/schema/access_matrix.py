"""The access matrix: which role may do what to each function, table and view (migration 0015).

Every function of schemas ops and enforcement, and every table and view of ops, enforcement
and the reference's tables in public, has one decision here; tests/contract/test_access_matrix.py
tries every cell as that role and fails on a function or table the matrix does not mention, so a
function added later gets a decision (and its GRANT) before it ships. The README's table is
`markdown_table()`.
"""

from __future__ import annotations

from typing import Any

import psycopg

from reference.sqlfile import NamedQueries

query = NamedQueries("harness", "access.sql")

WORKER, API = "dragonfly_worker", "dragonfly_api"
ANON, AUTHENTICATED = "anon", "authenticated"
ROLES = (ANON, AUTHENTICATED, API, WORKER)
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
BOTH = frozenset({WORKER, API})
WORKER_ONLY = frozenset({WORKER})
NO_ONE: frozenset[str] = frozenset()

# function (schema.name, every overload) -> the roles that may execute it
FUNCTIONS: dict[str, frozenset[str]] = {
    "ops.clock": BOTH,
    "ops.statement_clock": BOTH,
    "ops.default_lock_timeout": BOTH,
    "ops.test_clock_opted_in": BOTH,
    "ops.assert_lock_timeout": WORKER_ONLY,
    "ops.assert_known_job_types": BOTH,
    "ops.assert_worker_id": WORKER_ONLY,
    "ops.retry_backoff": WORKER_ONLY,
    "ops.queue_job": BOTH,
    "enforcement.drafting_idempotency_key": BOTH,
    "ops.claim_pending_job": WORKER_ONLY,
    "ops.complete_job": WORKER_ONLY,
    "ops.complete_job_and_claim": WORKER_ONLY,
    "ops.complete_jobs": WORKER_ONLY,
    "ops.fail_job": WORKER_ONLY,
    "ops.extend_lock": WORKER_ONLY,
    "ops.reap_stuck_jobs": WORKER_ONLY,
    "ops.register_heartbeat": WORKER_ONLY,
    "ops.prune_history": WORKER_ONLY,
    "ops.hold_lease": WORKER_ONLY,
    "ops.touch_updated_at": NO_ONE,  # trigger functions: a trigger needs no EXECUTE
    "ops.ingest_batch_follows_job": NO_ONE,
}

_ALL = frozenset(PRIVILEGES)
_READ = frozenset({"SELECT"})
# table or view -> role -> the privileges it holds (a role not named holds none)
RELATIONS: dict[str, dict[str, frozenset[str]]] = {
    "ops.schema_migrations": {},
    "ops.job_types": {WORKER: _READ, API: _READ},
    "ops.test_clock": {WORKER: _READ, API: _READ},
    "ops.job_queue": {WORKER: _ALL, API: frozenset({"SELECT", "INSERT"})},
    "ops.worker_heartbeats": {WORKER: _ALL, API: _READ},
    "ops.ingest_batches": {
        WORKER: frozenset({"SELECT", "UPDATE"}),
        API: frozenset({"SELECT", "INSERT", "UPDATE"}),
    },
    "ops.ingest_uploads": {WORKER: _READ, API: frozenset({"INSERT"})},
    "ops.ingest_row_errors": {WORKER: frozenset({"SELECT", "INSERT"}), API: _READ},
    "public.judgments": {WORKER: frozenset({"SELECT", "INSERT", "UPDATE"}), API: _READ},
    "public.judgment_case_keys": {WORKER: frozenset({"SELECT", "INSERT", "UPDATE"})},
    "public.debtor_profiles": {WORKER: _READ, API: _READ},
    "enforcement.plans": {WORKER: frozenset({"SELECT", "INSERT", "UPDATE"}), API: _READ},
    "enforcement.draft_packets": {WORKER: frozenset({"SELECT", "INSERT", "UPDATE"})},
    "ops.effect_log": {WORKER: frozenset({"INSERT"})},  # migration 0016: handlers append
    "ops.v_queue_health": {API: _READ},
    "ops.v_worker_status": {API: _READ},
}
VIEWS = frozenset({"ops.v_queue_health", "ops.v_worker_status"})
# Tables with row-level security enabled and forced, whose policies name only these roles.
POLICY_ROLES = frozenset({WORKER, API})


def allowed(role: str, relation: str, privilege: str) -> bool:
    return privilege in RELATIONS[relation].get(role, frozenset())


def platform_defaults(conn: psycopg.Connection[Any]) -> None:
    """Make conn's database look like a fresh Supabase project's (before any migration)."""
    conn.execute(query("supabase_platform_defaults"))


def markdown_table() -> str:
    """The matrix as the README shows it: one row per object, one column per role."""
    header = "| object | " + " | ".join(f"`{role}`" for role in ROLES) + " |"
    lines = [header, "|---" * (len(ROLES) + 1) + "|"]
    for name, roles in FUNCTIONS.items():
        cells = ["EXECUTE" if role in roles else "—" for role in ROLES]
        lines.append(f"| `{name}()` | " + " | ".join(cells) + " |")
    for name, grants in RELATIONS.items():
        cells = [
            ", ".join(p for p in PRIVILEGES if p in grants.get(role, ())) or "—" for role in ROLES
        ]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
