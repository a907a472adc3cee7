-- The database keeps its own records straight, whoever writes: updated_at is maintained by a
-- trigger on every table that has it (the functions below no longer set it by hand), an ingest
-- batch follows its ingest_csv job's terminal changes in the same transaction, fail_job can
-- dead-letter at once a job no retry can help, and the 30-minute lock timeout and the drafting
-- job's idempotency key have one home each.

-- updated_at moves on every update that changes the row; a no-op update leaves it alone, so
-- a plan's updated_at still doubles as its revision.
CREATE FUNCTION ops.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER job_queue_touch_updated_at BEFORE UPDATE ON ops.job_queue
    FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();
CREATE TRIGGER judgments_touch_updated_at BEFORE UPDATE ON public.judgments
    FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();
CREATE TRIGGER debtor_profiles_touch_updated_at BEFORE UPDATE ON public.debtor_profiles
    FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();
CREATE TRIGGER plans_touch_updated_at BEFORE UPDATE ON enforcement.plans
    FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();
CREATE TRIGGER draft_packets_touch_updated_at BEFORE UPDATE ON enforcement.draft_packets
    FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

-- The lease a worker must extend before the reaper takes its job back: the reaper's default
-- and the health view's `stuck` both read it here.
CREATE FUNCTION ops.default_lock_timeout() RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT interval '30 minutes';
$$;

-- The drafting job's idempotency key, one format for every enqueuer (the API and the strategy
-- handler): a plan's updated_at moves only when its decision changes, so it is the revision.
CREATE FUNCTION enforcement.drafting_idempotency_key(
    plan_id uuid,
    strategy enforcement.strategy,
    plan_updated_at timestamptz
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT format('drafting:%s:%s:%s', plan_id, strategy,
                  (extract(epoch FROM plan_updated_at) * 1000000)::bigint);
$$;

-- An ingest batch follows its job, whoever changes the job (a worker's fail_job, the reaper, an
-- operator): dead-lettered -> the batch failed with the job's last error; a retry scheduled ->
-- the batch queued again, saying so. Same transaction as the job's change.
CREATE FUNCTION ops.ingest_batch_follows_job() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'failed' THEN
        UPDATE ops.ingest_batches AS b
        SET status = 'failed',
            error = format('the ingest_csv job was dead-lettered after %s attempt(s): %s',
                           NEW.attempts, NEW.last_error),
            finished_at = coalesce(NEW.dead_lettered_at, now())
        WHERE b.job_id = NEW.id AND b.status <> 'completed';
    ELSIF NEW.status = 'pending' AND OLD.status = 'processing' THEN
        UPDATE ops.ingest_batches AS b
        SET status = 'queued',
            error = format('waiting to retry: attempt %s of %s failed (%s); next attempt at %s',
                           NEW.attempts, NEW.max_attempts, NEW.last_error, NEW.run_at),
            finished_at = NULL
        WHERE b.job_id = NEW.id AND b.status <> 'completed';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ingest_batch_follows_job
    AFTER UPDATE OF status ON ops.job_queue
    FOR EACH ROW
    WHEN (NEW.job_type = 'ingest_csv' AND NEW.status IS DISTINCT FROM OLD.status
          AND NEW.status IN ('failed', 'pending'))
    EXECUTE FUNCTION ops.ingest_batch_follows_job();

-- The queue functions again, without their hand-kept updated_at (the trigger keeps it).
CREATE OR REPLACE FUNCTION ops.claim_pending_job(
    job_types text[],
    worker_id text,
    batch_size integer DEFAULT 1
) RETURNS SETOF ops.job_queue
LANGUAGE plpgsql AS $$
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
              -- statement_timestamp(), not now(): inside a longer transaction now() is the
              -- transaction's start, and jobs that fell due since would be passed over.
              AND q.run_at <= statement_timestamp()
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
            locked_at = now(),
            locked_by = claim_pending_job.worker_id,
            attempts = q.attempts + 1
        FROM candidates
        WHERE q.id = candidates.id
        RETURNING q.*
    )
    SELECT * FROM claimed ORDER BY claimed.priority DESC, claimed.run_at, claimed.id;
END;
$$;

CREATE OR REPLACE FUNCTION ops.complete_job(job_id uuid, worker_id text) RETURNS boolean
LANGUAGE sql AS $$
    -- Fenced: only the worker that still holds the lease may complete the job.
    WITH completed AS (
        UPDATE ops.job_queue AS q
        SET status = 'completed', completed_at = now(), locked_at = NULL
        WHERE q.id = complete_job.job_id
          AND q.status = 'processing'
          AND q.locked_by = complete_job.worker_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM completed);
$$;

CREATE OR REPLACE FUNCTION ops.extend_lock(job_id uuid, worker_id text) RETURNS boolean
LANGUAGE sql AS $$
    -- Fenced like complete_job: a worker that lost its lease cannot take it back.
    WITH extended AS (
        UPDATE ops.job_queue AS q
        SET locked_at = now()
        WHERE q.id = extend_lock.job_id
          AND q.status = 'processing'
          AND q.locked_by = extend_lock.worker_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM extended);
$$;

CREATE OR REPLACE FUNCTION ops.reap_stuck_jobs(lock_timeout interval DEFAULT ops.default_lock_timeout())
RETURNS SETOF ops.job_queue
LANGUAGE plpgsql AS $$
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
        WHERE q.status = 'processing' AND q.locked_at < now() - reap_stuck_jobs.lock_timeout
        ORDER BY q.locked_at
        FOR UPDATE SKIP LOCKED
    )
    UPDATE ops.job_queue AS q
    SET status = CASE WHEN q.attempts >= q.max_attempts
                      THEN 'failed' ELSE 'pending' END::ops.job_status,
        run_at = CASE WHEN q.attempts >= q.max_attempts
                      THEN q.run_at ELSE now() + ops.retry_backoff(q.attempts) END,
        dead_lettered_at = CASE WHEN q.attempts >= q.max_attempts THEN now() END,
        last_error = format('lease expired: %s held the job since %s (lock_timeout %s)',
                            q.locked_by, q.locked_at, reap_stuck_jobs.lock_timeout),
        locked_at = NULL,
        locked_by = NULL,
        reap_count = q.reap_count + 1
    FROM expired
    WHERE q.id = expired.id
    RETURNING q.*;
END;
$$;

DROP FUNCTION ops.fail_job(uuid, text, text);

CREATE FUNCTION ops.fail_job(
    job_id uuid,
    worker_id text,
    error text,
    permanent boolean DEFAULT false
) RETURNS text
LANGUAGE plpgsql AS $$
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
                      THEN q.run_at ELSE now() + ops.retry_backoff(q.attempts) END,
        dead_lettered_at = CASE WHEN fail_job.permanent OR q.attempts >= q.max_attempts
                                THEN now() END,
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
$$;
