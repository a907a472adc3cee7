-- A clock the tests can move: every queue function and the queue health view read the time
-- through ops.clock() (for now()) and ops.statement_clock() (for statement_timestamp()). Unset,
-- they are exactly those, so production behaviour is unchanged. Tests set, per session:
--   dragonfly.clock_offset     an interval added to the time (e.g. '2 hours'), and/or
--   dragonfly.clock_frozen_at  a timestamptz that replaces the statement's time (a frozen clock,
--                              so a model can predict every run_at and lease exactly).
-- Worker liveness (register_heartbeat, v_worker_status, prune_history's heartbeat cutoff) stays
-- on real time. A process can run on a moved clock too: PGOPTIONS='-c dragonfly.clock_offset=1h'.
-- Definitions below are copied from the latest migration of each function, with only the time
-- reads changed.

CREATE FUNCTION ops.clock() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- The transaction's time, as now(); the tests' frozen time and offset when set.
    SELECT coalesce(nullif(current_setting('dragonfly.clock_frozen_at', true), '')::timestamptz,
                    now())
         + coalesce(nullif(current_setting('dragonfly.clock_offset', true), '')::interval,
                    interval '0');
$$;

CREATE FUNCTION ops.statement_clock() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- The statement's time, as statement_timestamp(); the tests' frozen time and offset when set.
    SELECT coalesce(nullif(current_setting('dragonfly.clock_frozen_at', true), '')::timestamptz,
                    statement_timestamp())
         + coalesce(nullif(current_setting('dragonfly.clock_offset', true), '')::interval,
                    interval '0');
$$;

CREATE OR REPLACE FUNCTION ops.queue_job(job_type text, payload jsonb DEFAULT '{}'::jsonb, priority integer DEFAULT 0, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, idempotency_key text DEFAULT NULL::text, trace_context jsonb DEFAULT NULL::jsonb, max_attempts integer DEFAULT 5)
 RETURNS uuid
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
    job_id uuid;
BEGIN
    PERFORM ops.assert_known_job_types(ARRAY[queue_job.job_type]);
    IF queue_job.payload IS NULL OR jsonb_typeof(queue_job.payload) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = 'payload must be a JSON object', HINT = 'wrap scalars: {"value": ...}';
    END IF;
    IF queue_job.trace_context IS NOT NULL AND jsonb_typeof(queue_job.trace_context) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = 'trace_context must be a JSON object of W3C headers or NULL',
            HINT = 'e.g. {"traceparent": "00-<trace-id>-<span-id>-01"}';
    END IF;
    IF queue_job.idempotency_key = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = 'idempotency_key must be NULL or a non-empty string';
    END IF;
    IF queue_job.priority IS NULL OR queue_job.max_attempts IS NULL OR queue_job.max_attempts < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = format('priority must be an integer and max_attempts at least 1 (got %s, %s)',
                             coalesce(queue_job.priority::text, 'NULL'),
                             coalesce(queue_job.max_attempts::text, 'NULL'));
    END IF;
    -- Race-free idempotency: ON CONFLICT waits for a concurrent insert of the same key to
    -- commit; the SELECT then sees it. Loop in case that row was deleted in between.
    LOOP
        INSERT INTO ops.job_queue AS q
            (job_type, payload, priority, run_at, idempotency_key, trace_context, max_attempts)
        VALUES (queue_job.job_type, queue_job.payload, queue_job.priority,
                coalesce(queue_job.run_at, ops.clock()), queue_job.idempotency_key,
                queue_job.trace_context, queue_job.max_attempts)
        ON CONFLICT (job_type, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING q.id INTO job_id;
        IF job_id IS NOT NULL THEN
            RETURN job_id;
        END IF;
        SELECT q.id INTO job_id FROM ops.job_queue AS q
        WHERE q.job_type = queue_job.job_type AND q.idempotency_key = queue_job.idempotency_key;
        IF job_id IS NOT NULL THEN
            RETURN job_id;
        END IF;
    END LOOP;
END;
$function$;

CREATE OR REPLACE FUNCTION ops.claim_pending_job(job_types text[], worker_id text, batch_size integer DEFAULT 1)
 RETURNS SETOF ops.job_queue
 LANGUAGE plpgsql
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
        FROM candidates
        WHERE q.id = candidates.id
        RETURNING q.*
    )
    SELECT * FROM claimed ORDER BY claimed.priority DESC, claimed.run_at, claimed.id;
END;
$function$;

CREATE OR REPLACE FUNCTION ops.complete_job(job_id uuid, worker_id text)
 RETURNS boolean
 LANGUAGE sql
AS $function$
    -- Fenced: only the worker that still holds the lease may complete the job.
    WITH completed AS (
        UPDATE ops.job_queue AS q
        SET status = 'completed', completed_at = ops.clock(), locked_at = NULL
        WHERE q.id = complete_job.job_id
          AND q.status = 'processing'
          AND q.locked_by = complete_job.worker_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM completed);
$function$;

CREATE OR REPLACE FUNCTION ops.extend_lock(job_id uuid, worker_id text)
 RETURNS boolean
 LANGUAGE sql
AS $function$
    -- Fenced like complete_job: a worker that lost its lease cannot take it back.
    WITH extended AS (
        UPDATE ops.job_queue AS q
        SET locked_at = ops.clock()
        WHERE q.id = extend_lock.job_id
          AND q.status = 'processing'
          AND q.locked_by = extend_lock.worker_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM extended);
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
    -- SKIP LOCKED: many workers reap at once, and a row being completed right now is not
    -- stuck; whoever locks an expired row first reaps it, the others pass it by.
    expired AS MATERIALIZED (
        SELECT q.id
        FROM ops.job_queue AS q
        WHERE q.status = 'processing' AND q.locked_at < ops.clock() - reap_stuck_jobs.lock_timeout
        ORDER BY q.locked_at
        FOR UPDATE SKIP LOCKED
    )
    UPDATE ops.job_queue AS q
    SET status = CASE WHEN q.attempts >= q.max_attempts
                      THEN 'failed' ELSE 'pending' END::ops.job_status,
        run_at = CASE WHEN q.attempts >= q.max_attempts
                      THEN q.run_at ELSE ops.clock() + ops.retry_backoff(q.attempts) END,
        dead_lettered_at = CASE WHEN q.attempts >= q.max_attempts THEN ops.clock() END,
        last_error = format('lease expired: %s held the job since %s (lock_timeout %s)',
                            q.locked_by, q.locked_at, reap_stuck_jobs.lock_timeout),
        locked_at = NULL,
        locked_by = NULL,
        reap_count = q.reap_count + 1
    FROM expired
    WHERE q.id = expired.id
    RETURNING q.*;
END;
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
    SET status = 'completed', completed_at = ops.clock(), updated_at = ops.clock(), locked_at = NULL
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
        last_error = left(coalesce(fail_job.error, '(no error message given)'), 10000)
    WHERE q.id = fail_job.job_id
      AND q.status = 'processing'
      AND q.locked_by = fail_job.worker_id
    RETURNING CASE WHEN q.status = 'failed' THEN 'dead_lettered' ELSE 'retry_scheduled' END
    INTO outcome;
    RETURN coalesce(outcome, 'lease_lost');
END;
$function$;

CREATE OR REPLACE FUNCTION ops.prune_history(completed_age interval, dead_lettered_age interval, stopped_worker_age interval, batch_size integer DEFAULT 5000)
 RETURNS TABLE(completed integer, dead_lettered integer, heartbeats integer)
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF completed_age IS NULL OR dead_lettered_age IS NULL OR stopped_worker_age IS NULL
       OR completed_age <= interval '0' OR dead_lettered_age <= interval '0'
       OR stopped_worker_age <= interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = 'completed_age, dead_lettered_age and stopped_worker_age must be '
                      || 'positive intervals';
    END IF;
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 100000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = format('batch_size must be between 1 and 100000 (got %s)',
                             coalesce(batch_size::text, 'NULL'));
    END IF;
    completed := 0;
    dead_lettered := 0;
    heartbeats := 0;
    -- One pruner at a time across workers: the others find the lock taken and move on.
    IF NOT pg_try_advisory_xact_lock(hashtext('ops.prune_history')) THEN
        RETURN NEXT;
        RETURN;
    END IF;
    WITH doomed AS (
        SELECT q.id FROM ops.job_queue AS q
        WHERE q.status = 'completed' AND q.completed_at < ops.clock() - prune_history.completed_age
        ORDER BY q.completed_at
        LIMIT prune_history.batch_size
        FOR UPDATE SKIP LOCKED
    ), deleted AS (
        DELETE FROM ops.job_queue AS q USING doomed WHERE q.id = doomed.id RETURNING 1
    )
    SELECT count(*) INTO completed FROM deleted;
    WITH doomed AS (
        SELECT q.id FROM ops.job_queue AS q
        WHERE q.status = 'failed'
          AND q.dead_lettered_at < ops.clock() - prune_history.dead_lettered_age
        LIMIT prune_history.batch_size
        FOR UPDATE SKIP LOCKED
    ), deleted AS (
        DELETE FROM ops.job_queue AS q USING doomed WHERE q.id = doomed.id RETURNING 1
    )
    SELECT count(*) INTO dead_lettered FROM deleted;
    -- A live worker beats every few seconds: a row this old is a worker that stopped or died.
    WITH doomed AS (
        SELECT h.worker_id FROM ops.worker_heartbeats AS h
        WHERE h.last_seen_at < now() - prune_history.stopped_worker_age
        LIMIT prune_history.batch_size
        FOR UPDATE SKIP LOCKED
    ), deleted AS (
        DELETE FROM ops.worker_heartbeats AS h USING doomed
        WHERE h.worker_id = doomed.worker_id RETURNING 1
    )
    SELECT count(*) INTO heartbeats FROM deleted;
    RETURN NEXT;
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
    count(q.id) FILTER (WHERE q.status = 'processing'::ops.job_status AND q.locked_at < (ops.clock() - '00:30:00'::interval)) AS stuck
   FROM ops.job_types t
     LEFT JOIN ops.job_queue q ON q.job_type = t.job_type AND q.status <> 'completed'::ops.job_status
  GROUP BY t.job_type;