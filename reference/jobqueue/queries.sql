-- name: queue_job
-- Enqueue one job; the same (job_type, idempotency_key) returns the existing job's id.
SELECT ops.queue_job(
    job_type => %(job_type)s,
    payload => %(payload)s,
    priority => %(priority)s,
    run_at => %(run_at)s,
    idempotency_key => %(idempotency_key)s,
    trace_context => %(trace_context)s,
    max_attempts => %(max_attempts)s
) AS id;

-- name: claim_pending_job
-- Claim up to batch_size due jobs of the given types for one worker, each leased for
-- lock_timeout (NULL: the database's default).
SELECT * FROM ops.claim_pending_job(
    job_types => %(job_types)s,
    worker_id => %(worker_id)s,
    batch_size => %(batch_size)s,
    lock_timeout => coalesce(%(lock_timeout)s::interval, ops.default_lock_timeout())
);

-- name: complete_job
-- Mark a job completed; false when the worker no longer holds its lease.
SELECT ops.complete_job(job_id => %(job_id)s, worker_id => %(worker_id)s) AS completed;

-- name: complete_job_and_claim
-- Complete the job this worker holds and claim the next, in one statement and one commit; the
-- completed job's row (status 'completed') comes first when the completion took effect.
SELECT * FROM ops.complete_job_and_claim(
    job_id => %(job_id)s,
    worker_id => %(worker_id)s,
    job_types => %(job_types)s,
    batch_size => %(batch_size)s,
    lock_timeout => coalesce(%(lock_timeout)s::interval, ops.default_lock_timeout())
);

-- name: complete_jobs
-- Mark many jobs completed in one statement; returns the ids this worker still held.
SELECT id FROM ops.complete_jobs(job_ids => %(job_ids)s::uuid[], worker_id => %(worker_id)s)
    AS id;

-- name: complete_jobs_and_claim
-- A batch's complete_job_and_claim, composed of the contract's two functions: complete the jobs
-- this worker holds and claim the next batch, in one statement and one commit. The claim takes
-- the completion's result as an argument (+ 0 x its size), so it runs after the completion: a
-- held job that was reaped and is pending again is not completed, and may be claimed again
-- here. One row per claimed job (one row with a NULL id when none was), each carrying the ids
-- the completion took.
WITH completed AS MATERIALIZED (
    SELECT coalesce(array_agg(done.id), '{}') AS completed_ids
    FROM ops.complete_jobs(job_ids => %(job_ids)s::uuid[], worker_id => %(worker_id)s)
        AS done (id)
)
SELECT completed.completed_ids, claimed.*
FROM completed
LEFT JOIN LATERAL ops.claim_pending_job(
    job_types => %(job_types)s,
    worker_id => %(worker_id)s,
    batch_size => %(batch_size)s + 0 * cardinality(completed.completed_ids),
    lock_timeout => coalesce(%(lock_timeout)s::interval, ops.default_lock_timeout())
) AS claimed ON true;

-- name: fail_job
-- Record a failure: retry with backoff, dead-letter (at once when permanent), or report the
-- lease lost.
SELECT ops.fail_job(
    job_id => %(job_id)s, worker_id => %(worker_id)s, error => %(error)s,
    permanent => %(permanent)s
) AS outcome;

-- name: extend_lock
-- Refresh the lease of a long job for lock_timeout more (NULL: the database's default); false
-- when the worker no longer holds it.
SELECT ops.extend_lock(
    job_id => %(job_id)s, worker_id => %(worker_id)s,
    lock_timeout => coalesce(%(lock_timeout)s::interval, ops.default_lock_timeout())
) AS extended;

-- name: reap_stuck_jobs
-- Return expired leases (each job's lease_expires_at) to pending (with backoff) or dead-letter
-- them; lock_timeout dates only a lease without an expiry (NULL: the default timeout).
SELECT * FROM ops.reap_stuck_jobs(
    lock_timeout => coalesce(%(lock_timeout)s::interval, ops.default_lock_timeout())
);

-- name: register_heartbeat
-- Upsert this worker's row in ops.worker_heartbeats.
SELECT ops.register_heartbeat(
    worker_id => %(worker_id)s,
    worker_type => %(worker_type)s,
    hostname => %(hostname)s,
    status => %(status)s
);

-- name: get_job
-- One job by id.
SELECT * FROM ops.job_queue WHERE id = %(job_id)s;

-- name: held_jobs
-- The jobs a worker holds right now (processing under its lease), oldest lease first.
SELECT * FROM ops.job_queue
WHERE status = 'processing' AND locked_by = %(worker_id)s
ORDER BY locked_at;
