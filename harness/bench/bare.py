"""pgbench scripts for the function-overhead and paced-tail ratios of `bench-claim`.

FUNCTIONS claims one job through ops.claim_pending_job and completes it through
ops.complete_job, two transactions. BARE runs the statements those functions execute for the
claim of one job (migration 0011's batch-of-one round: the per-type candidate walk, the locking
read by the primary key, the UPDATE) and the completion, inlined, also two transactions: the
difference is what the functions cost beyond their statements (argument checks, PL/pgSQL, the
loop, the final read of the claimed row). A bare claim that finds no job yields the nil id,
whose completion changes nothing: the rate is the jobs completed, counted in the table.
"""

from __future__ import annotations

from reference.jobqueue import DEFAULT_LOCK_TIMEOUT

LEASE = f"interval '{int(DEFAULT_LOCK_TIMEOUT.total_seconds())} seconds'"

FUNCTIONS = (
    "SELECT id AS job FROM ops.claim_pending_job('{load_probe}', 'pgbench-' || :client_id, 1, "
    "__LEASE__) \\gset\n"
    "SELECT ops.complete_job(:job, 'pgbench-' || :client_id);\n"
).replace("__LEASE__", LEASE)

_CLAIM = """\
WITH candidates AS MATERIALIZED ( \
SELECT picked.id, picked.priority, picked.run_at \
FROM (SELECT DISTINCT unnest('{load_probe}'::text[]) AS job_type) AS wanted \
CROSS JOIN LATERAL ( \
SELECT q.id, q.priority, q.run_at FROM ops.job_queue AS q \
WHERE q.status = 'pending' AND q.job_type = wanted.job_type \
AND q.run_at <= ops.statement_clock() AND q.id <> ALL ('{}'::uuid[]) \
ORDER BY q.priority DESC, q.run_at, q.id LIMIT 4) AS picked \
ORDER BY picked.priority DESC, picked.run_at, picked.id LIMIT 4), \
locked AS MATERIALIZED ( \
SELECT q.id FROM ops.job_queue AS q \
WHERE q.id = ANY (ARRAY(SELECT candidates.id FROM candidates)) \
AND q.status::text = 'pending' AND q.run_at <= ops.statement_clock() \
ORDER BY q.priority DESC, q.run_at, q.id LIMIT 1 FOR UPDATE SKIP LOCKED), \
taken AS ( \
UPDATE ops.job_queue AS q SET status = 'processing', locked_at = ops.clock(), \
locked_by = 'pgbench-' || :client_id, \
lease_expires_at = ops.clock() + __LEASE__, attempts = q.attempts + 1 \
WHERE q.id = ANY (ARRAY(SELECT locked.id FROM locked)) RETURNING q.*) \
SELECT coalesce((SELECT id FROM taken), '00000000-0000-0000-0000-000000000000') AS job \\gset
""".replace("__LEASE__", LEASE)

_COMPLETE = (
    "UPDATE ops.job_queue AS q SET status = 'completed', completed_at = ops.clock(), "
    "locked_at = NULL, lease_expires_at = NULL WHERE q.id = :job "
    "AND q.status = 'processing' AND q.locked_by = 'pgbench-' || :client_id;\n"
)

BARE = _CLAIM + _COMPLETE

# One transaction per call: the paced claim's p99 is one call's own time.
PACED_CLAIM = (
    "SELECT id AS job FROM ops.complete_job_and_claim(:job, 'pgbench-' || :client_id, "
    "'{load_probe}') WHERE status = 'processing' \\gset\n"
)
