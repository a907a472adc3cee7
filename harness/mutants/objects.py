"""Mutants of the contract's other objects: functions beyond the queue calls, the operator views
and the triggers. `EQUIVALENT` names an object with no live mutant and why.

Each runs against the `schema` suite of `python -m harness.mutants`; `kill` names the tests
expected to kill it, run first.
"""

from __future__ import annotations

from harness.mutants.kinds import Mutant, TriggerMutant, ViewMutant
from reference.jobqueue import DEFAULT_LOCK_TIMEOUT

UPKEEP = "tests/integration/test_schema_upkeep.py"
KILLERS = "tests/integration/test_contract_objects.py"
LEASES = "tests/integration/test_queue_leases.py"
FAILURES = "tests/integration/test_queue_failures.py"
BATCH = "tests/integration/test_batch_follows_job.py"
S = ("schema",)
LEASE_MINUTES = int(DEFAULT_LOCK_TIMEOUT.total_seconds() // 60)  # as ops.default_lock_timeout()
TOUCHED = "EXECUTE FUNCTION ops.touch_updated_at()"


def _touch(trigger: str, table: str) -> TriggerMutant:
    """The updated_at trigger of one table fires on INSERT only: an update keeps the old time."""
    name = "touch-off-" + table.split(".")[1].replace("_", "-")
    why = f"an update of {table} leaves updated_at behind"
    edit = ("BEFORE UPDATE", "BEFORE INSERT")
    return TriggerMutant(name, trigger, table, *edit, why, kill=(UPKEEP,))


OBJECT_MUTANTS: list[Mutant | ViewMutant | TriggerMutant] = [
    Mutant("drafting-key-ignores-plan-time", "drafting_idempotency_key",
           "(extract(epoch FROM plan_updated_at) * 1000000)::bigint", "0",
           "a plan changed back to an earlier strategy is never drafted again", suites=S,
           kill=("tests/integration/test_enforcement_engine.py",), schema="enforcement"),
    Mutant("known-types-accepts-unknown", "assert_known_job_types",
           "IF unknown IS NOT NULL THEN", "IF false THEN",
           "an unknown job type is queued (and never claimed) instead of refused", suites=S,
           kill=(KILLERS,)),
    Mutant("lock-timeout-accepts-zero", "assert_lock_timeout",
           "lock_timeout <= interval '0'", "lock_timeout < interval '0'",
           "a zero lock timeout is accepted: the lease expires as it is taken", suites=S,
           kill=(KILLERS,)),
    Mutant("worker-id-accepts-blank", "assert_worker_id", " OR btrim(worker_id) = ''", "",
           "a blank worker id is accepted", suites=S, kill=(KILLERS,)),
    Mutant("clock-ignores-offset", "clock",
           "+ coalesce(nullif(current_setting('dragonfly.clock_offset', true), '')::interval,",
           "+ 0 * coalesce(nullif(current_setting('dragonfly.clock_offset', true), '')::interval,",
           "the test clock does not move: leases never expire in a test database", suites=S,
           kill=(LEASES,)),
    Mutant("statement-clock-ignores-offset", "statement_clock",
           "+ coalesce(nullif(current_setting('dragonfly.clock_offset', true), '')::interval,",
           "+ 0 * coalesce(nullif(current_setting('dragonfly.clock_offset', true), '')::interval,",
           "the claim's clock does not move: a job scheduled later is never due", suites=S,
           kill=(KILLERS,)),
    Mutant("opted-in-always", "test_clock_opted_in", "SELECT EXISTS (SELECT FROM ops.test_clock)",
           "SELECT true", "a production database honours a session's clock settings",
           suites=S, kill=(LEASES,)),
    Mutant("complete-and-claim-hides-completion", "complete_job_and_claim",
           "        RETURN QUERY SELECT * FROM ops.job_queue AS q WHERE q.id = "
           "complete_job_and_claim.job_id;\n", "",
           "the caller is not told its completion took effect", suites=S,
           kill=("tests/integration/test_claim_fast_path.py",)),
    Mutant("default-lease-too-long", "default_lock_timeout", f"interval '{LEASE_MINUTES} minutes'",
           f"interval '{2 * LEASE_MINUTES} minutes'",
           "a claim without a lock timeout leases for twice the default",
           suites=S, kill=(LEASES,)),
    Mutant("hold-lease-unfenced", "hold_lease", "      AND q.locked_by = hold_lease.worker_id\n",
           "", "a handler that lost its lease commits its effects anyway", suites=S,
           kill=(f"{KILLERS}::test_the_lease_fence_refuses_a_worker_that_does_not_hold_the_job",)),
    Mutant("batch-ignores-retry", "ingest_batch_follows_job",
           "ELSIF NEW.status = 'pending' AND OLD.status = 'processing' THEN",
           "ELSIF false THEN", "a batch whose job waits to retry still shows as running",
           suites=S, kill=(BATCH,)),
    Mutant("prune-ignores-completed-age", "prune_history",
           "q.completed_at < ops.clock() - prune_history.completed_age", "true",
           "a retention pass deletes jobs completed a moment ago", suites=S, kill=(UPKEEP,)),
    Mutant("prune-ignores-dead-letter-age", "prune_history",
           "q.dead_lettered_at < ops.clock() - prune_history.dead_lettered_age", "true",
           "a retention pass deletes dead-letters before anyone looked at them", suites=S,
           kill=(UPKEEP,)),
    Mutant("heartbeat-keeps-last-seen", "register_heartbeat", "last_seen_at = now()",
           "last_seen_at = h.last_seen_at", "a live worker shows as stale", suites=S,
           kill=(KILLERS,)),
    Mutant("backoff-cap-two-hours", "retry_backoff", "interval '1 hour')",
           "interval '2 hours')", "late retries wait up to two hours, not one", suites=S,
           kill=(FAILURES,)),
    Mutant("touch-never", "touch_updated_at", "NEW.updated_at := now();",
           "NEW.updated_at := OLD.updated_at;", "updated_at never moves", suites=S,
           kill=(UPKEEP,)),
    ViewMutant("health-ready-ignores-run-at", "ops.v_queue_health",
               "(q.run_at <= ops.clock()))) AS ready", "true)) AS ready",
               "jobs scheduled for later count as ready", kill=(KILLERS,)),
    ViewMutant("health-stuck-never", "ops.v_queue_health",
               "ops.default_lock_timeout())) < ops.clock()))) AS stuck",
               "ops.default_lock_timeout())) < '-infinity'::timestamptz))) AS stuck",
               "an expired lease is not counted stuck", kill=(LEASES,)),
    ViewMutant("worker-status-stale-late", "ops.v_worker_status", "'00:01:30'::interval",
               "'01:00:00'::interval", "a worker silent for ten minutes is not stale",
               kill=(KILLERS,)),
    TriggerMutant("batch-trigger-ignores-retry", "ops.ingest_batch_follows_job",
                  "ops.job_queue", "ARRAY['failed'::ops.job_status, 'pending'::ops.job_status]",
                  "ARRAY['failed'::ops.job_status]",
                  "a batch whose job waits to retry still shows as running", kill=(BATCH,)),
    _touch("ops.job_queue_touch_updated_at", "ops.job_queue"),
    _touch("public.judgments_touch_updated_at", "public.judgments"),
    _touch("public.debtor_profiles_touch_updated_at", "public.debtor_profiles"),
    _touch("enforcement.plans_touch_updated_at", "enforcement.plans"),
    _touch("enforcement.draft_packets_touch_updated_at", "enforcement.draft_packets"),
]  # fmt: skip

# object -> why it has no live mutant (every edit of it is equivalent to the original for users)
EQUIVALENT: dict[str, str] = {}
