-- The one-job-per-claim path: no planning per call, and one round trip and one commit per job.
--
-- 1. ops.claim_pending_job was planned on every call. PL/pgSQL keeps a statement's generic plan
--    only when it costs no more than the custom plans; with `LIMIT batch_size` unknown, the
--    generic plan expects 10% of the table and joins the UPDATE to its candidates by a hash
--    join over a sequential scan of ops.job_queue (6 ms at 40,000 rows), so every call took a
--    custom plan instead: about 0.3 ms of planning per claim, half the throughput at 16 clients.
--    The UPDATE now finds its rows with `id = ANY (ARRAY(...))`, an index scan of the primary
--    key whatever the estimate, and the function uses its (now good) generic plan always.
--    tests/integration/test_claim_plan_cache.py checks both.
-- 2. ops.complete_job_and_claim: a worker that runs one job at a time completes the job it
--    holds and claims the next in one statement. A claim and a completion are two commits and
--    two round trips each; this makes them one.

CREATE OR REPLACE FUNCTION ops.claim_pending_job(job_types text[], worker_id text, batch_size integer DEFAULT 1)
 RETURNS SETOF ops.job_queue
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
BEGIN
    PERFORM ops.assert_known_job_types(claim_pending_job.job_types);
    PERFORM ops.assert_worker_id(claim_pending_job.worker_id);
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = format('batch_size must be between 1 and 1000 (got %s)',
                             coalesce(batch_size::text, 'NULL'));
    END IF;
    RETURN QUERY
    WITH
    -- One walk of job_queue_claim_idx per wanted type, each locking at most batch_size rows
    -- and skipping rows another claim holds. Walking per type keeps a rare type from scanning
    -- past a common type's backlog. MATERIALIZED: evaluate the locking subquery exactly once,
    -- so the UPDATE can never touch more rows than it locked (Oban's CTE lesson).
    candidates AS MATERIALIZED (
        SELECT picked.id, picked.priority, picked.run_at
        FROM (SELECT DISTINCT unnest(claim_pending_job.job_types) AS job_type) AS wanted
        CROSS JOIN LATERAL (
            SELECT q.id, q.priority, q.run_at
            FROM ops.job_queue AS q
            WHERE q.status = 'pending'
              AND q.job_type = wanted.job_type
              -- ops.statement_clock(), not ops.clock(): the statement's time (not the transaction's start,
              -- so jobs that fell due since are not passed over), or the tests' clock.
              AND q.run_at <= ops.statement_clock()
            ORDER BY q.priority DESC, q.run_at, q.id
            LIMIT claim_pending_job.batch_size
            FOR UPDATE SKIP LOCKED
        ) AS picked
        ORDER BY picked.priority DESC, picked.run_at, picked.id
        LIMIT claim_pending_job.batch_size
    ),
    claimed AS (
        UPDATE ops.job_queue AS q
        SET status = 'processing',
            locked_at = ops.clock(),
            locked_by = claim_pending_job.worker_id,
            attempts = q.attempts + 1
        WHERE q.id = ANY (ARRAY(SELECT candidates.id FROM candidates))
        RETURNING q.*
    )
    SELECT * FROM claimed ORDER BY claimed.priority DESC, claimed.run_at, claimed.id;
END;
$function$;


CREATE FUNCTION ops.complete_job_and_claim(
    job_id uuid,
    worker_id text,
    job_types text[],
    batch_size integer DEFAULT 1
) RETURNS SETOF ops.job_queue
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
-- ops.complete_job, then ops.claim_pending_job, in one transaction. The first row is the
-- completed job (status 'completed') when the completion took effect; none when this worker no
-- longer held it (fenced: the job is left to its new owner). The claimed jobs follow, in claim
-- order. An error (an unknown job type, say) leaves both undone: the job stays held.
BEGIN
    IF ops.complete_job(complete_job_and_claim.job_id, complete_job_and_claim.worker_id) THEN
        RETURN QUERY SELECT * FROM ops.job_queue AS q WHERE q.id = complete_job_and_claim.job_id;
    END IF;
    RETURN QUERY SELECT * FROM ops.claim_pending_job(complete_job_and_claim.job_types,
                                                     complete_job_and_claim.worker_id,
                                                     complete_job_and_claim.batch_size);
END;
$$;
