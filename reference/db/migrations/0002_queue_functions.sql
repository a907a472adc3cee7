-- The queue contract as SQL functions (SPEC §2). Parameter names are the contract's: Supabase
-- clients call these as RPCs with named arguments, so inside the bodies every parameter is
-- qualified with its function's name.
-- Errors: SQLSTATE DFQ01 = unknown job type, DFQ02 = invalid argument.

CREATE FUNCTION ops.retry_backoff(attempts integer) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- min(30 s * 2^attempts, 1 h); the exponent is capped so huge attempt counts cannot overflow.
    SELECT least(interval '30 seconds' * power(2, least(greatest(attempts, 0), 20)),
                 interval '1 hour');
$$;

CREATE FUNCTION ops.assert_known_job_types(job_types text[]) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    unknown text;
BEGIN
    IF job_types IS NULL OR cardinality(job_types) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = 'job_types must name at least one job type',
            HINT = 'pass e.g. ARRAY[''ingest_csv'']';
    END IF;
    SELECT string_agg(coalesce(quote_literal(wanted), 'NULL'), ', ') INTO unknown
    FROM unnest(assert_known_job_types.job_types) AS wanted
    WHERE wanted IS NULL OR NOT EXISTS (SELECT 1 FROM ops.job_types AS t WHERE t.job_type = wanted);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ01',
            MESSAGE = format('unknown job type %s', unknown),
            HINT = (SELECT 'known job types: ' || string_agg(job_type, ', ' ORDER BY job_type)
                    FROM ops.job_types);
    END IF;
END;
$$;

CREATE FUNCTION ops.assert_worker_id(worker_id text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF worker_id IS NULL OR btrim(worker_id) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = 'worker_id must be a non-empty string',
            HINT = 'use a stable per-process id such as <hostname>-<pid>';
    END IF;
END;
$$;

CREATE FUNCTION ops.queue_job(
    job_type text,
    payload jsonb DEFAULT '{}'::jsonb,
    priority integer DEFAULT 0,
    run_at timestamptz DEFAULT NULL,
    idempotency_key text DEFAULT NULL,
    trace_context jsonb DEFAULT NULL,
    max_attempts integer DEFAULT 5
) RETURNS uuid
LANGUAGE plpgsql AS $$
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
                coalesce(queue_job.run_at, now()), queue_job.idempotency_key,
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
$$;

CREATE FUNCTION ops.claim_pending_job(
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
            attempts = q.attempts + 1,
            updated_at = now()
        FROM candidates
        WHERE q.id = candidates.id
        RETURNING q.*
    )
    SELECT * FROM claimed ORDER BY claimed.priority DESC, claimed.run_at, claimed.id;
END;
$$;

CREATE FUNCTION ops.complete_job(job_id uuid, worker_id text) RETURNS boolean
LANGUAGE sql AS $$
    -- Fenced: only the worker that still holds the lease may complete the job.
    WITH completed AS (
        UPDATE ops.job_queue AS q
        SET status = 'completed', completed_at = now(), updated_at = now(), locked_at = NULL
        WHERE q.id = complete_job.job_id
          AND q.status = 'processing'
          AND q.locked_by = complete_job.worker_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM completed);
$$;

CREATE FUNCTION ops.fail_job(job_id uuid, worker_id text, error text) RETURNS text
LANGUAGE plpgsql AS $$
-- Returns 'retry_scheduled' (pending again, run_at moved by the backoff), 'dead_lettered'
-- (attempts used up), or 'lease_lost' (fenced: the caller no longer holds the job).
DECLARE
    outcome text;
BEGIN
    UPDATE ops.job_queue AS q
    SET status = CASE WHEN q.attempts >= q.max_attempts
                      THEN 'failed' ELSE 'pending' END::ops.job_status,
        run_at = CASE WHEN q.attempts >= q.max_attempts
                      THEN q.run_at ELSE now() + ops.retry_backoff(q.attempts) END,
        dead_lettered_at = CASE WHEN q.attempts >= q.max_attempts THEN now() END,
        locked_at = NULL,
        locked_by = NULL,
        last_error = left(coalesce(fail_job.error, '(no error message given)'), 10000),
        updated_at = now()
    WHERE q.id = fail_job.job_id
      AND q.status = 'processing'
      AND q.locked_by = fail_job.worker_id
    RETURNING CASE WHEN q.status = 'failed' THEN 'dead_lettered' ELSE 'retry_scheduled' END
    INTO outcome;
    RETURN coalesce(outcome, 'lease_lost');
END;
$$;

CREATE FUNCTION ops.extend_lock(job_id uuid, worker_id text) RETURNS boolean
LANGUAGE sql AS $$
    -- Fenced like complete_job: a worker that lost its lease cannot take it back.
    WITH extended AS (
        UPDATE ops.job_queue AS q
        SET locked_at = now(), updated_at = now()
        WHERE q.id = extend_lock.job_id
          AND q.status = 'processing'
          AND q.locked_by = extend_lock.worker_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM extended);
$$;

CREATE FUNCTION ops.reap_stuck_jobs(lock_timeout interval DEFAULT interval '30 minutes')
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
        reap_count = q.reap_count + 1,
        updated_at = now()
    FROM expired
    WHERE q.id = expired.id
    RETURNING q.*;
END;
$$;

CREATE FUNCTION ops.register_heartbeat(
    worker_id text,
    worker_type text,
    hostname text,
    status text DEFAULT 'idle'
) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM ops.assert_worker_id(register_heartbeat.worker_id);
    IF register_heartbeat.status IS NULL
       OR register_heartbeat.status NOT IN ('starting', 'idle', 'busy', 'stopping', 'stopped') THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = format('unknown worker status %L',
                             coalesce(register_heartbeat.status, 'NULL')),
            HINT = 'use one of starting, idle, busy, stopping, stopped';
    END IF;
    IF register_heartbeat.worker_type IS NULL OR btrim(register_heartbeat.worker_type) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02', MESSAGE = 'worker_type must be a non-empty string';
    END IF;
    INSERT INTO ops.worker_heartbeats AS h (worker_id, worker_type, hostname, status)
    VALUES (register_heartbeat.worker_id, register_heartbeat.worker_type,
            coalesce(register_heartbeat.hostname, ''), register_heartbeat.status)
    ON CONFLICT ON CONSTRAINT worker_heartbeats_pkey DO UPDATE
    SET worker_type = excluded.worker_type,
        hostname = excluded.hostname,
        status = excluded.status,
        last_seen_at = now();
END;
$$;
