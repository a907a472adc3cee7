-- Issue 17, findings 4 and 5: a claim locks only the jobs it claims; each lease stores when it
-- expires, from its worker's own lock timeout, and the reaper reaps by it; the test clock moves
-- only a database the test harness opted in.
--
-- 1. The claim walked job_queue_claim_idx once per wanted type with `LIMIT batch_size FOR UPDATE
--    SKIP LOCKED` and kept the best batch_size of the rows: a claim of 3 across two types held 6
--    rows locked until its transaction ended, and a concurrent claim skipped the 3 it passed
--    over. The per-type walks now read their candidates without locking (the same walk of
--    job_queue_claim_idx, a few rows of lookahead), and one locking read by the primary key
--    then locks, in claim order, only as many of them as the claim keeps (`ORDER BY ... LIMIT n
--    FOR UPDATE SKIP LOCKED`: LockRows sits below the Limit, so it stops at the n-th lock). When
--    other sessions hold so many candidates that the claim comes up short while more may be
--    due, it looks again past the ones it saw. The claim of one job keeps its constant limits
--    (migration 0010's cached plan); a batch claim is planned per call.
-- 2. ops.job_queue.lease_expires_at: set at claim and at extend_lock to the clock plus the
--    caller's `lock_timeout` (default ops.default_lock_timeout(), the 30 minutes the reaper used
--    for everyone), cleared with locked_at when the lease ends (complete, fail, reap).
--    ops.reap_stuck_jobs reaps a job when its own lease expired, whoever calls it; its
--    `lock_timeout` argument now dates only a lease without an expiry (a claim that committed
--    on the pre-0011 functions while this migration ran, or a row set to processing by hand).
--    Its index (migration 0012) is built concurrently. complete_job, complete_jobs and
--    fail_job are copied from 0008 with only `lease_expires_at = NULL` added.
-- 3. ops.clock() and ops.statement_clock() honour dragonfly.clock_offset / clock_frozen_at only
--    in a database with a row in ops.test_clock, which the test harness writes into its
--    template (harness/postgres/databases.py). A setting cannot opt a database in: PGOPTIONS,
--    SET and ALTER ROLE/DATABASE SET all set settings, and a row needs a write to a table no
--    application role is granted. With the settings unset the clock is now() as before, without
--    reading the table; it is read only when a clock setting is present.

-- Only catalog changes and a new column without a default: no rewrite, no long lock.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

ALTER TABLE ops.job_queue ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz;

CREATE TABLE IF NOT EXISTS ops.test_clock (
    opted_in    boolean PRIMARY KEY DEFAULT true CHECK (opted_in),
    opted_in_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.test_clock IS
    'One row in a test database only: ops.clock() honours dragonfly.clock_* settings here.';
REVOKE ALL ON ops.test_clock FROM PUBLIC;

CREATE FUNCTION ops.test_clock_opted_in() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT FROM ops.test_clock);
$$;

CREATE OR REPLACE FUNCTION ops.clock() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- The transaction's time, as now(); in a test database, the tests' frozen time and offset.
    SELECT CASE
        WHEN coalesce(current_setting('dragonfly.clock_frozen_at', true), '') = ''
             AND coalesce(current_setting('dragonfly.clock_offset', true), '') = ''
        THEN now()
        WHEN ops.test_clock_opted_in()
        THEN coalesce(nullif(current_setting('dragonfly.clock_frozen_at', true), '')::timestamptz,
                      now())
             + coalesce(nullif(current_setting('dragonfly.clock_offset', true), '')::interval,
                        interval '0')
        ELSE now()
    END;
$$;

CREATE OR REPLACE FUNCTION ops.statement_clock() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- The statement's time, as statement_timestamp(); in a test database, the tests' clock.
    SELECT CASE
        WHEN coalesce(current_setting('dragonfly.clock_frozen_at', true), '') = ''
             AND coalesce(current_setting('dragonfly.clock_offset', true), '') = ''
        THEN statement_timestamp()
        WHEN ops.test_clock_opted_in()
        THEN coalesce(nullif(current_setting('dragonfly.clock_frozen_at', true), '')::timestamptz,
                      statement_timestamp())
             + coalesce(nullif(current_setting('dragonfly.clock_offset', true), '')::interval,
                        interval '0')
        ELSE statement_timestamp()
    END;
$$;

CREATE FUNCTION ops.assert_lock_timeout(lock_timeout interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF lock_timeout IS NULL OR lock_timeout <= interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = format('lock_timeout must be a positive interval (got %s)',
                             coalesce(lock_timeout::text, 'NULL')),
            HINT = 'pass the worker''s WORKER_LOCK_TIMEOUT, or leave it out for '
                   || 'ops.default_lock_timeout()';
    END IF;
END;
$$;

-- Expand, never drop: the new signatures take the lease length as a fourth (third) argument
-- without a default, and the old signatures stay, as thin wrappers at the end of this file that
-- pass ops.default_lock_timeout(). A deployed worker, or a Supabase RPC client, that calls the
-- old form keeps working while new workers call the new one; no call is ambiguous, since only
-- the old forms have defaults. (A later migration may drop the old forms once nothing calls
-- them.)
CREATE FUNCTION ops.claim_pending_job(
    job_types text[],
    worker_id text,
    batch_size integer,
    lock_timeout interval
) RETURNS SETOF ops.job_queue
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $function$
DECLARE
    -- Candidates read per round, per type and in all: a few more than the claim keeps, so
    -- claims racing for the same head of the queue mostly find their jobs in one round.
    lookahead integer := claim_pending_job.batch_size + 3;
    seen uuid[];
    passed uuid[] := '{}';
    -- Ids, not rows of ops.job_queue: a PL/pgSQL variable of the table's row type keeps the
    -- row's shape from the session's first call, so after a migration adds a column every
    -- later claim of that session would fail (42804); the rows are read once, at the end.
    got uuid[];
    claimed uuid[] := '{}';
BEGIN
    PERFORM ops.assert_known_job_types(claim_pending_job.job_types);
    PERFORM ops.assert_worker_id(claim_pending_job.worker_id);
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = format('batch_size must be between 1 and 1000 (got %s)',
                             coalesce(batch_size::text, 'NULL'));
    END IF;
    PERFORM ops.assert_lock_timeout(claim_pending_job.lock_timeout);
    IF batch_size > 1 THEN
        -- Overrides the function's SET for the rest of this call only.
        SET LOCAL plan_cache_mode = force_custom_plan;
    END IF;
    LOOP
        IF batch_size = 1 THEN
            -- The same round as the batch one below, with its limits known: a lookahead of
            -- 1 + 3 and one lock.
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
                      AND q.id <> ALL (passed)
                    ORDER BY q.priority DESC, q.run_at, q.id
                    LIMIT 4
                ) AS picked
                ORDER BY picked.priority DESC, picked.run_at, picked.id
                LIMIT 4
            ),
            locked AS MATERIALIZED (
                SELECT q.id
                FROM ops.job_queue AS q
                WHERE q.id = ANY (ARRAY(SELECT candidates.id FROM candidates))
                  AND q.status::text = 'pending'
                  AND q.run_at <= ops.statement_clock()
                ORDER BY q.priority DESC, q.run_at, q.id
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            ),
            taken AS (
                UPDATE ops.job_queue AS q
                SET status = 'processing',
                    locked_at = ops.clock(),
                    locked_by = claim_pending_job.worker_id,
                    lease_expires_at = ops.clock() + claim_pending_job.lock_timeout,
                    attempts = q.attempts + 1
                WHERE q.id = ANY (ARRAY(SELECT locked.id FROM locked))
                RETURNING q.id
            )
            SELECT ARRAY(SELECT candidates.id FROM candidates), ARRAY(SELECT taken.id FROM taken)
            INTO seen, got;
        ELSE
            WITH
            -- One walk of job_queue_claim_idx per wanted type, reading without locks; a rare
            -- type is not stuck behind a common type's backlog.
            candidates AS MATERIALIZED (
                SELECT picked.id, picked.priority, picked.run_at
                FROM (SELECT DISTINCT unnest(claim_pending_job.job_types) AS job_type) AS wanted
                CROSS JOIN LATERAL (
                    SELECT q.id, q.priority, q.run_at
                    FROM ops.job_queue AS q
                    WHERE q.status = 'pending'
                      AND q.job_type = wanted.job_type
                      -- ops.statement_clock(), not ops.clock(): jobs that fell due since the
                      -- transaction began are not passed over.
                      AND q.run_at <= ops.statement_clock()
                      AND q.id <> ALL (passed)
                    ORDER BY q.priority DESC, q.run_at, q.id
                    LIMIT lookahead
                ) AS picked
                ORDER BY picked.priority DESC, picked.run_at, picked.id
                LIMIT lookahead
            ),
            -- Locks in claim order only the rows the claim keeps, skipping rows another
            -- session holds (and, rechecked on their newest version, rows claimed meanwhile).
            -- By the primary key: the status compared as text implies no partial index's
            -- predicate, so the planner cannot walk job_queue_claim_idx for the ORDER BY.
            locked AS MATERIALIZED (
                SELECT q.id
                FROM ops.job_queue AS q
                WHERE q.id = ANY (ARRAY(SELECT candidates.id FROM candidates))
                  AND q.status::text = 'pending'
                  AND q.run_at <= ops.statement_clock()
                ORDER BY q.priority DESC, q.run_at, q.id
                LIMIT claim_pending_job.batch_size - cardinality(claimed)
                FOR UPDATE SKIP LOCKED
            ),
            taken AS (
                UPDATE ops.job_queue AS q
                SET status = 'processing',
                    locked_at = ops.clock(),
                    locked_by = claim_pending_job.worker_id,
                    lease_expires_at = ops.clock() + claim_pending_job.lock_timeout,
                    attempts = q.attempts + 1
                WHERE q.id = ANY (ARRAY(SELECT locked.id FROM locked))
                RETURNING q.id
            )
            SELECT ARRAY(SELECT candidates.id FROM candidates), ARRAY(SELECT taken.id FROM taken)
            INTO seen, got;
        END IF;
        claimed := claimed || got;
        -- Done with a full claim, or when the round saw every due job it could (fewer than
        -- its lookahead); otherwise other sessions held candidates: look past them.
        EXIT WHEN cardinality(claimed) >= batch_size OR cardinality(seen) < lookahead;
        passed := passed || seen;
    END LOOP;
    RETURN QUERY
        SELECT q.* FROM ops.job_queue AS q
        WHERE q.id = ANY (claimed)
        ORDER BY q.priority DESC, q.run_at, q.id;
END;
$function$;

CREATE FUNCTION ops.complete_job_and_claim(
    job_id uuid,
    worker_id text,
    job_types text[],
    batch_size integer,
    lock_timeout interval
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
                                                     complete_job_and_claim.batch_size,
                                                     complete_job_and_claim.lock_timeout);
END;
$$;

CREATE FUNCTION ops.extend_lock(
    job_id uuid,
    worker_id text,
    lock_timeout interval
) RETURNS boolean
LANGUAGE plpgsql
AS $function$
DECLARE
    extended boolean;
BEGIN
    PERFORM ops.assert_lock_timeout(extend_lock.lock_timeout);
    -- Fenced like complete_job: a worker that lost its lease cannot take it back.
    UPDATE ops.job_queue AS q
    SET locked_at = ops.clock(),
        lease_expires_at = ops.clock() + extend_lock.lock_timeout
    WHERE q.id = extend_lock.job_id
      AND q.status = 'processing'
      AND q.locked_by = extend_lock.worker_id
    RETURNING true INTO extended;
    RETURN coalesce(extended, false);
END;
$function$;

CREATE OR REPLACE FUNCTION ops.reap_stuck_jobs(lock_timeout interval DEFAULT ops.default_lock_timeout())
 RETURNS SETOF ops.job_queue
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF lock_timeout IS NULL OR lock_timeout <= interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = format('lock_timeout must be a positive interval (got %s)',
                             coalesce(lock_timeout::text, 'NULL'));
    END IF;
    RETURN QUERY
    WITH
    -- A job is stuck when its own lease expired (lease_expires_at, from its claimer's lock
    -- timeout), whoever reaps. lock_timeout only dates a lease taken without an expiry.
    -- SKIP LOCKED: many workers reap at once, and a row being completed right now is not
    -- stuck; whoever locks an expired row first reaps it, the others pass it by.
    expired AS MATERIALIZED (
        SELECT q.id
        FROM ops.job_queue AS q
        WHERE q.status = 'processing'
          AND (q.lease_expires_at < ops.clock()
               OR (q.lease_expires_at IS NULL
                   AND q.locked_at < ops.clock() - reap_stuck_jobs.lock_timeout))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE ops.job_queue AS q
    SET status = CASE WHEN q.attempts >= q.max_attempts
                      THEN 'failed' ELSE 'pending' END::ops.job_status,
        run_at = CASE WHEN q.attempts >= q.max_attempts
                      THEN q.run_at ELSE ops.clock() + ops.retry_backoff(q.attempts) END,
        dead_lettered_at = CASE WHEN q.attempts >= q.max_attempts THEN ops.clock() END,
        last_error = format('lease expired: %s held the job since %s (lease expired at %s)',
                            q.locked_by, q.locked_at,
                            coalesce(q.lease_expires_at,
                                     q.locked_at + reap_stuck_jobs.lock_timeout)),
        locked_at = NULL,
        locked_by = NULL,
        lease_expires_at = NULL,
        reap_count = q.reap_count + 1
    FROM expired
    WHERE q.id = expired.id
    RETURNING q.*;
END;
$function$;

CREATE OR REPLACE FUNCTION ops.complete_job(job_id uuid, worker_id text)
 RETURNS boolean
 LANGUAGE sql
AS $function$
    -- Fenced: only the worker that still holds the lease may complete the job.
    WITH completed AS (
        UPDATE ops.job_queue AS q
        SET status = 'completed', completed_at = ops.clock(), locked_at = NULL, lease_expires_at = NULL
        WHERE q.id = complete_job.job_id
          AND q.status = 'processing'
          AND q.locked_by = complete_job.worker_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM completed);
$function$;

CREATE OR REPLACE FUNCTION ops.complete_jobs(job_ids uuid[], worker_id text)
 RETURNS SETOF uuid
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM ops.assert_worker_id(complete_jobs.worker_id);
    IF job_ids IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = 'job_ids must be an array of job ids (empty completes nothing), not NULL',
            HINT = 'pass e.g. ARRAY[''<uuid>'']::uuid[]';
    END IF;
    IF cardinality(job_ids) > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = format('job_ids may hold at most 1000 ids (got %s)', cardinality(job_ids)),
            HINT = 'complete in batches of at most 1000, the claim''s own batch limit';
    END IF;
    RETURN QUERY
    -- Found by the primary key only: the statistics of a queue table are usually taken when
    -- few jobs were processing, so any partial index whose predicate `status = 'processing'`
    -- implies (a lease index, an index of unfinished jobs) looks like one row to the planner
    -- and would be walked whole with thousands in flight. Comparing the status as text keeps
    -- the test exact while implying no index predicate. The primary key's scan of `id = ANY`
    -- visits rows in id order, so callers completing overlapping sets cannot deadlock.
    UPDATE ops.job_queue AS q
    SET status = 'completed', completed_at = ops.clock(), updated_at = ops.clock(), locked_at = NULL,
        lease_expires_at = NULL
    WHERE q.id = ANY (complete_jobs.job_ids)
      AND q.status::text = 'processing'
      AND q.locked_by = complete_jobs.worker_id
    RETURNING q.id;
END;
$function$;

CREATE OR REPLACE FUNCTION ops.fail_job(job_id uuid, worker_id text, error text, permanent boolean DEFAULT false)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
-- Returns 'retry_scheduled' (pending again, run_at moved by the backoff), 'dead_lettered'
-- (attempts used up, or `permanent`: no retry can help, e.g. the job's batch is gone), or
-- 'lease_lost' (fenced: the caller no longer holds the job).
DECLARE
    outcome text;
BEGIN
    UPDATE ops.job_queue AS q
    SET status = CASE WHEN fail_job.permanent OR q.attempts >= q.max_attempts
                      THEN 'failed' ELSE 'pending' END::ops.job_status,
        run_at = CASE WHEN fail_job.permanent OR q.attempts >= q.max_attempts
                      THEN q.run_at ELSE ops.clock() + ops.retry_backoff(q.attempts) END,
        dead_lettered_at = CASE WHEN fail_job.permanent OR q.attempts >= q.max_attempts
                                THEN ops.clock() END,
        locked_at = NULL,
        locked_by = NULL,
        lease_expires_at = NULL,
        last_error = left(coalesce(fail_job.error, '(no error message given)'), 10000)
    WHERE q.id = fail_job.job_id
      AND q.status = 'processing'
      AND q.locked_by = fail_job.worker_id
    RETURNING CASE WHEN q.status = 'failed' THEN 'dead_lettered' ELSE 'retry_scheduled' END
    INTO outcome;
    RETURN coalesce(outcome, 'lease_lost');
END;
$function$;

CREATE OR REPLACE VIEW ops.v_queue_health AS
 SELECT t.job_type,
    count(q.id) FILTER (WHERE q.status = 'pending'::ops.job_status) AS pending,
    count(q.id) FILTER (WHERE q.status = 'pending'::ops.job_status AND q.run_at <= ops.clock()) AS ready,
    count(q.id) FILTER (WHERE q.status = 'processing'::ops.job_status) AS processing,
    count(q.id) FILTER (WHERE q.status = 'failed'::ops.job_status) AS failed,
    count(q.id) FILTER (WHERE q.dead_lettered_at IS NOT NULL) AS dead_lettered,
    max(ops.clock() - q.run_at) FILTER (WHERE q.status = 'pending'::ops.job_status AND q.run_at <= ops.clock()) AS oldest_pending_age,
    -- Stuck: the job's own lease expired (a lease without an expiry: the default timeout).
    count(q.id) FILTER (WHERE q.status = 'processing'::ops.job_status
                          AND coalesce(q.lease_expires_at, q.locked_at + ops.default_lock_timeout())
                              < ops.clock()) AS stuck
   FROM ops.job_types t
     LEFT JOIN ops.job_queue q ON q.job_type = t.job_type AND q.status <> 'completed'::ops.job_status
  GROUP BY t.job_type;

-- The old signatures, kept for callers that do not pass a lease length (see above).
CREATE OR REPLACE FUNCTION ops.claim_pending_job(
    job_types text[], worker_id text, batch_size integer DEFAULT 1
) RETURNS SETOF ops.job_queue
LANGUAGE sql
AS $$
    SELECT * FROM ops.claim_pending_job(job_types, worker_id, batch_size,
                                        ops.default_lock_timeout());
$$;

CREATE OR REPLACE FUNCTION ops.complete_job_and_claim(
    job_id uuid, worker_id text, job_types text[], batch_size integer DEFAULT 1
) RETURNS SETOF ops.job_queue
LANGUAGE sql
AS $$
    SELECT * FROM ops.complete_job_and_claim(job_id, worker_id, job_types, batch_size,
                                             ops.default_lock_timeout());
$$;

CREATE OR REPLACE FUNCTION ops.extend_lock(job_id uuid, worker_id text) RETURNS boolean
LANGUAGE sql
AS $$
    SELECT ops.extend_lock(job_id, worker_id, ops.default_lock_timeout());
$$;
