"""The catalogue of mutants: the queue SQL (here), every other function, view and trigger
(objects.py), access (grants and row-level security, SQL statements in harness/access.sql) and
the workers' Python (pysource.py). Kinds and how each applies: kinds.py.

Every function, view and trigger of the migrated schemas has a mutant here or a documented
reason in `objects.EQUIVALENT` (tests/integration/test_mutant_coverage.py checks it).
"""

from __future__ import annotations

import dataclasses

from harness.mutants.kinds import (
    QUEUE_SUITES,
    Mutant,
    MutantError,
    PyMutant,
    SqlMutant,
    TriggerMutant,
    ViewMutant,
)
from harness.mutants.objects import OBJECT_MUTANTS
from harness.mutants.pysource import PY_MUTANTS

__all__ = ["QUEUE_SUITES", "Mutant", "MutantError", "SqlMutant"]

MUTANTS = [
    Mutant("claim-no-skip-locked", "claim_pending_job", "FOR UPDATE SKIP LOCKED", "FOR UPDATE",
           "a claim waits on rows another claim holds"),
    Mutant("claim-no-row-lock", "claim_pending_job", "FOR UPDATE SKIP LOCKED", "",
           "two claims can take the same job"),
    Mutant("claim-ignores-run-at", "claim_pending_job", "AND q.run_at <= ops.statement_clock()",
           "", "jobs are claimed before their run_at"),
    Mutant("claim-run-at-strict", "claim_pending_job", "q.run_at <= ops.statement_clock()",
           "q.run_at < ops.statement_clock()", "a job due this instant is passed over"),
    Mutant("claim-priority-ascending", "claim_pending_job", "priority DESC", "priority ASC",
           "low priority first"),
    # Integration only: the wrong order shows once more jobs of one priority are due than the
    # claim's lookahead reads (batch + 3), deeper than the property layer's bounded queues.
    Mutant("claim-ignores-run-at-order", "claim_pending_job", ".priority DESC, picked.run_at,",
           ".priority DESC,", "equal priorities are not taken oldest run_at first",
           suites=("integration",)),
    Mutant("claim-ignores-job-type", "claim_pending_job", "AND q.job_type = wanted.job_type",
           "", "a worker gets job types it did not ask for"),
    Mutant("claim-batch-unbounded", "claim_pending_job",
           "LIMIT claim_pending_job.batch_size - cardinality(claimed)\n", "\n",
           "a batch claim takes every candidate it reads, more than batch_size"),
    Mutant("claim-batch-of-one", "claim_pending_job",
           "LIMIT claim_pending_job.batch_size - cardinality(claimed)\n", "LIMIT 1\n",
           "a batch claim locks and takes one job per round"),
    Mutant("claim-locks-unclaimed", "claim_pending_job", "\n                ) AS picked",
           " FOR UPDATE SKIP LOCKED\n                ) AS picked",
           "a claim keeps row locks on candidates it did not claim (issue 17, finding 4)"),
    Mutant("claim-lease-ignores-timeout", "claim_pending_job",
           "ops.clock() + claim_pending_job.lock_timeout",
           "ops.clock() + ops.default_lock_timeout()",
           "a claim leases for the default, not the worker's lock timeout"),
    # Integration only: it needs other sessions holding the head of the queue during the claim,
    # which the property layer's one-call-at-a-time machine never has.
    Mutant("claim-gives-up-when-contended", "claim_pending_job",
           "OR cardinality(seen) < lookahead", "OR true",
           "a claim comes back short while other sessions hold the head of the queue",
           suites=("integration",)),
    Mutant("claim-keeps-attempts", "claim_pending_job", "attempts = q.attempts + 1",
           "attempts = q.attempts", "a claim does not count the attempt"),
    Mutant("enqueue-ignores-run-at", "queue_job", "coalesce(queue_job.run_at, ops.clock())",
           "ops.clock()", "a scheduled job is due at once"),
    Mutant("enqueue-key-across-types", "queue_job",
           "WHERE q.job_type = queue_job.job_type AND q.idempotency_key",
           "WHERE q.idempotency_key", "a repeated key may return another job type's job"),
    Mutant("complete-unfenced", "complete_job", "AND q.locked_by = complete_job.worker_id", "",
           "a stale owner completes the new owner's job"),
    Mutant("complete-any-status", "complete_job",
           "AND q.status = 'processing'\n          AND q.locked_by",
           "AND q.locked_by", "a finished job is completed again"),
    Mutant("fail-unfenced", "fail_job", "AND q.locked_by = fail_job.worker_id", "",
           "a stale owner fails the new owner's job"),
    Mutant("fail-backoff-off-by-one", "fail_job", "ops.retry_backoff(q.attempts)",
           "ops.retry_backoff(q.attempts - 1)", "the retry comes too early"),
    Mutant("fail-dead-letters-late", "fail_job", "q.attempts >= q.max_attempts",
           "q.attempts > q.max_attempts", "a job runs once more than max_attempts"),
    Mutant("fail-keeps-lease", "fail_job", "        locked_by = NULL,\n", "",
           "a retried job keeps its old owner"),
    Mutant("extend-unfenced", "extend_lock", "AND q.locked_by = extend_lock.worker_id", "",
           "a stale owner extends the new owner's lease"),
    Mutant("extend-no-refresh", "extend_lock", "SET locked_at = ops.clock()",
           "SET locked_at = q.locked_at", "extending does not move the lease"),
    Mutant("extend-ignores-timeout", "extend_lock",
           "ops.clock() + extend_lock.lock_timeout", "ops.clock() + ops.default_lock_timeout()",
           "an extension leases for the default, not the worker's lock timeout"),
    Mutant("reap-ignores-lease-age", "reap_stuck_jobs", "(q.lease_expires_at < ops.clock()",
           "(true", "live leases are reaped"),
    Mutant("reap-by-callers-timeout", "reap_stuck_jobs", "q.lease_expires_at < ops.clock()",
           "q.locked_at < ops.clock() - reap_stuck_jobs.lock_timeout",
           "a reaper applies its own lock timeout to every lease (issue 17, finding 5)"),
    # Not here: the clock ignoring the opt-in (migration 0011). Every suite runs on opted-in test
    # databases, where that mutant cannot show; tests/integration/test_queue_leases.py checks a
    # database that is not opted in.
    Mutant("reap-never-dead-letters", "reap_stuck_jobs", "q.attempts >= q.max_attempts",
           "q.attempts > q.max_attempts", "a used-up job is retried once more"),
    Mutant("reap-no-backoff", "reap_stuck_jobs", "ops.clock() + ops.retry_backoff(q.attempts)",
           "ops.clock()", "a reaped job is due again at once"),
    Mutant("reap-no-count", "reap_stuck_jobs", "reap_count = q.reap_count + 1",
           "reap_count = q.reap_count", "reaps are not counted"),
    Mutant("complete-jobs-unfenced", "complete_jobs",
           "AND q.locked_by = complete_jobs.worker_id", "",
           "a batch complete finishes other workers' jobs"),
]  # fmt: skip


# The hand-written test expected to kill a queue mutant, run first in the integration suite
# (its file would otherwise come late in the suite's order).
_LEASES, _EDGES = "tests/integration/test_queue_leases.py", "tests/integration/test_queue_edges.py"
_CONCURRENCY = "tests/integration/test_queue_concurrency.py"
QUEUE_KILLERS = {
    "claim-no-skip-locked": f"{_CONCURRENCY}::test_a_claim_skips_a_job_another_open_claim_holds",
    "claim-no-row-lock": f"{_CONCURRENCY}::test_concurrent_claims_take_every_job_exactly_once",
    "claim-locks-unclaimed":
        f"{_CONCURRENCY}::test_a_claim_skips_a_job_another_open_claim_holds",
    "claim-lease-ignores-timeout":
        f"{_LEASES}::test_leases_expire_on_each_claimers_own_lock_timeout",
    "claim-gives-up-when-contended":
        f"{_LEASES}::test_a_claim_looks_past_every_job_other_sessions_hold",
    "reap-by-callers-timeout":
        f"{_LEASES}::test_leases_expire_on_each_claimers_own_lock_timeout",
    "complete-jobs-unfenced":
        f"{_EDGES}::test_a_batch_completion_leaves_jobs_another_worker_holds",
    "enqueue-key-across-types": f"{_EDGES}::test_a_repeated_key_returns_the_job_of_its_own_type",
}  # fmt: skip
MUTANTS = [
    dataclasses.replace(m, kill=(QUEUE_KILLERS[m.name],)) if m.name in QUEUE_KILLERS else m
    for m in MUTANTS
]


ACCESS_MUTANTS = [
    SqlMutant("access-public-execute", "the queue functions are executable by PUBLIC again"),
    SqlMutant("access-judgments-rls-off", "row-level security disabled on public.judgments"),
    SqlMutant("access-anon-read-policy", "a policy (and a grant) lets anon read judgments"),
]
AnyMutant = Mutant | ViewMutant | TriggerMutant | SqlMutant | PyMutant
ALL_MUTANTS: list[AnyMutant] = [*MUTANTS, *OBJECT_MUTANTS, *ACCESS_MUTANTS, *PY_MUTANTS]
