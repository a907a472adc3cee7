-- A claim of one job is planned once, for LIMIT 1; a batch claim is planned for its batch size.
--
-- Migration 0009 made ops.claim_pending_job keep its generic plan always. That plan cannot know
-- `LIMIT batch_size` and costs it at a tenth of the rows, where an index walk in claim order
-- and a sort of every pending row of the type (read through job_queue_unfinished_idx) are
-- close in cost. Beside 200,000 completed rows, whenever ANALYZE's sample held the table's
-- one row of a second job type, the generic plan took the sort (70 buffers instead of 15, and
-- growing with the backlog): one CI run in five, caught by tests/integration/test_claim_plan.py,
-- which now sets up those statistics on purpose.
--
-- The claim of one job, what a worker does between jobs, now says `LIMIT 1`: its generic plan
-- knows it needs one row per type, and the ordered walk of job_queue_claim_idx, which stops at
-- its first row, costs a small fraction of any sort. A batch claim is planned on each call with its
-- batch size known (the planning is shared by the batch's jobs).

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
    IF batch_size = 1 THEN
        -- The same claim as the batch one below, with its limits known to be 1.
        RETURN QUERY
        WITH
        candidates AS MATERIALIZED (
            SELECT picked.id, picked.priority, picked.run_at
            FROM (SELECT DISTINCT unnest(claim_pending_job.job_types) AS job_type) AS wanted
            CROSS JOIN LATERAL (
                SELECT q.id, q.priority, q.run_at
                FROM ops.job_queue AS q
                WHERE q.status = 'pending'
                  AND q.job_type = wanted.job_type
                  AND q.run_at <= ops.statement_clock()
                ORDER BY q.priority DESC, q.run_at, q.id
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            ) AS picked
            ORDER BY picked.priority DESC, picked.run_at, picked.id
            LIMIT 1
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
        SELECT * FROM claimed;
        RETURN;
    END IF;
    -- Overrides the function's SET for the rest of this call only.
    SET LOCAL plan_cache_mode = force_custom_plan;
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
