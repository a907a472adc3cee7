-- The schema that reference/db/migrations/ builds, dumped by pg_dump --schema-only and
-- normalised (harness/schema/snapshot.py). Generated, do not edit; after a new migration:
--   DRAGONFLY_UPDATE_SCHEMA=1 .venv/bin/pytest tests/integration/test_schema_snapshot.py

--
-- Name: enforcement; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA enforcement;

--
-- Name: ops; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA ops;

--
-- Name: strategy; Type: TYPE; Schema: enforcement; Owner: -
--

CREATE TYPE enforcement.strategy AS ENUM (
    'wage_garnishment',
    'bank_levy',
    'property_lien',
    'surveillance'
);

--
-- Name: ingest_batch_status; Type: TYPE; Schema: ops; Owner: -
--

CREATE TYPE ops.ingest_batch_status AS ENUM (
    'queued',
    'processing',
    'completed',
    'failed'
);

--
-- Name: job_status; Type: TYPE; Schema: ops; Owner: -
--

CREATE TYPE ops.job_status AS ENUM (
    'pending',
    'processing',
    'completed',
    'failed'
);

--
-- Name: drafting_idempotency_key(uuid, enforcement.strategy, timestamp with time zone); Type: FUNCTION; Schema: enforcement; Owner: -
--

CREATE FUNCTION enforcement.drafting_idempotency_key(plan_id uuid, strategy enforcement.strategy, plan_updated_at timestamp with time zone) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT format('drafting:%s:%s:%s', plan_id, strategy,
                  (extract(epoch FROM plan_updated_at) * 1000000)::bigint);
$$;

--
-- Name: assert_known_job_types(text[]); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.assert_known_job_types(job_types text[]) RETURNS void
    LANGUAGE plpgsql STABLE
    AS $$
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

--
-- Name: assert_lock_timeout(interval); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.assert_lock_timeout(lock_timeout interval) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $$
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

--
-- Name: assert_worker_id(text); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.assert_worker_id(worker_id text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    IF worker_id IS NULL OR btrim(worker_id) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = 'worker_id must be a non-empty string',
            HINT = 'use a stable per-process id such as <hostname>-<pid>';
    END IF;
END;
$$;

--
-- Name: job_queue; Type: TABLE; Schema: ops; Owner: -
--

CREATE TABLE ops.job_queue (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    job_type text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    status ops.job_status DEFAULT 'pending'::ops.job_status NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    run_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 5 NOT NULL,
    locked_at timestamp with time zone,
    locked_by text,
    last_error text,
    idempotency_key text,
    trace_context jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    completed_at timestamp with time zone,
    dead_lettered_at timestamp with time zone,
    reap_count integer DEFAULT 0 NOT NULL,
    lease_expires_at timestamp with time zone,
    CONSTRAINT job_queue_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT job_queue_idempotency_key_check CHECK ((idempotency_key <> ''::text)),
    CONSTRAINT job_queue_max_attempts_check CHECK ((max_attempts >= 1)),
    CONSTRAINT job_queue_payload_is_object CHECK ((jsonb_typeof(payload) = 'object'::text)),
    CONSTRAINT job_queue_processing_has_lease CHECK (((status <> 'processing'::ops.job_status) OR ((locked_at IS NOT NULL) AND (locked_by IS NOT NULL))))
)
WITH (autovacuum_vacuum_scale_factor='0.01', autovacuum_analyze_scale_factor='0.02', fillfactor='80');

ALTER TABLE ONLY ops.job_queue FORCE ROW LEVEL SECURITY;

--
-- Name: claim_pending_job(text[], text, integer); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.claim_pending_job(job_types text[], worker_id text, batch_size integer DEFAULT 1) RETURNS SETOF ops.job_queue
    LANGUAGE sql
    AS $$
    SELECT * FROM ops.claim_pending_job(job_types, worker_id, batch_size,
                                        ops.default_lock_timeout());
$$;

--
-- Name: claim_pending_job(text[], text, integer, interval); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.claim_pending_job(job_types text[], worker_id text, batch_size integer, lock_timeout interval) RETURNS SETOF ops.job_queue
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
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
        -- A batch claim that came up short reads twice as many candidates next round: each
        -- round walks job_queue_claim_idx from its head past every id passed so far, so with
        -- many claimers racing for the same head a fixed lookahead made the walks grow with
        -- the square of the rounds (bench-claim: ~1,000 index entries read per job claimed at
        -- 32 threads, 8 at 4). The claim of one job keeps its constant LIMIT 4 (its cached
        -- plan), and with it its lookahead.
        IF batch_size > 1 THEN
            lookahead := least(lookahead * 2, 4 * (claim_pending_job.batch_size + 3));
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT q.* FROM ops.job_queue AS q
        WHERE q.id = ANY (claimed)
        ORDER BY q.priority DESC, q.run_at, q.id;
END;
$$;

--
-- Name: clock(); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.clock() RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
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

--
-- Name: complete_job(uuid, text); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.complete_job(job_id uuid, worker_id text) RETURNS boolean
    LANGUAGE sql
    AS $$
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
$$;

--
-- Name: complete_job_and_claim(uuid, text, text[], integer); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.complete_job_and_claim(job_id uuid, worker_id text, job_types text[], batch_size integer DEFAULT 1) RETURNS SETOF ops.job_queue
    LANGUAGE sql
    AS $$
    SELECT * FROM ops.complete_job_and_claim(job_id, worker_id, job_types, batch_size,
                                             ops.default_lock_timeout());
$$;

--
-- Name: complete_job_and_claim(uuid, text, text[], integer, interval); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.complete_job_and_claim(job_id uuid, worker_id text, job_types text[], batch_size integer, lock_timeout interval) RETURNS SETOF ops.job_queue
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
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

--
-- Name: complete_jobs(uuid[], text); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.complete_jobs(job_ids uuid[], worker_id text) RETURNS SETOF uuid
    LANGUAGE plpgsql
    AS $$
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
$$;

--
-- Name: default_lock_timeout(); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.default_lock_timeout() RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT interval '30 minutes';
$$;

--
-- Name: extend_lock(uuid, text); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.extend_lock(job_id uuid, worker_id text) RETURNS boolean
    LANGUAGE sql
    AS $$
    SELECT ops.extend_lock(job_id, worker_id, ops.default_lock_timeout());
$$;

--
-- Name: extend_lock(uuid, text, interval); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.extend_lock(job_id uuid, worker_id text, lock_timeout interval) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
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
$$;

--
-- Name: fail_job(uuid, text, text, boolean); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.fail_job(job_id uuid, worker_id text, error text, permanent boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql
    AS $$
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
$$;

--
-- Name: hold_lease(uuid, text); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.hold_lease(job_id uuid, worker_id text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM 1
    FROM ops.job_queue AS q
    WHERE q.id = hold_lease.job_id
      AND q.status = 'processing'
      AND q.locked_by = hold_lease.worker_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease lost: job % is not held by worker % any more', job_id, worker_id
            USING ERRCODE = 'DFQ03',
                  HINT = 'another worker holds the job now (or it was settled); '
                         'this transaction commits nothing';
    END IF;
END;
$$;

--
-- Name: FUNCTION hold_lease(job_id uuid, worker_id text); Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON FUNCTION ops.hold_lease(job_id uuid, worker_id text) IS 'Last statement of a handler''s transaction: locks the job while this worker holds it, else raises DFQ03 so the transaction commits nothing.';

--
-- Name: ingest_batch_follows_job(); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.ingest_batch_follows_job() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: prune_history(interval, interval, interval, integer); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.prune_history(completed_age interval, dead_lettered_age interval, stopped_worker_age interval, batch_size integer DEFAULT 5000) RETURNS TABLE(completed integer, dead_lettered integer, heartbeats integer)
    LANGUAGE plpgsql
    AS $$
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
$$;

--
-- Name: queue_job(text, jsonb, integer, timestamp with time zone, text, jsonb, integer); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.queue_job(job_type text, payload jsonb DEFAULT '{}'::jsonb, priority integer DEFAULT 0, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, idempotency_key text DEFAULT NULL::text, trace_context jsonb DEFAULT NULL::jsonb, max_attempts integer DEFAULT 5) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
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
$$;

--
-- Name: reap_stuck_jobs(interval); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.reap_stuck_jobs(lock_timeout interval DEFAULT ops.default_lock_timeout()) RETURNS SETOF ops.job_queue
    LANGUAGE plpgsql
    AS $$
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
$$;

--
-- Name: register_heartbeat(text, text, text, text); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.register_heartbeat(worker_id text, worker_type text, hostname text, status text DEFAULT 'idle'::text) RETURNS void
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: retry_backoff(integer); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.retry_backoff(attempts integer) RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- min(30 s * 2^attempts, 1 h); the exponent is capped so huge attempt counts cannot overflow.
    SELECT least(interval '30 seconds' * power(2, least(greatest(attempts, 0), 20)),
                 interval '1 hour');
$$;

--
-- Name: statement_clock(); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.statement_clock() RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
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

--
-- Name: test_clock_opted_in(); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.test_clock_opted_in() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT EXISTS (SELECT FROM ops.test_clock);
$$;

--
-- Name: touch_updated_at(); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

--
-- Name: draft_packets; Type: TABLE; Schema: enforcement; Owner: -
--

CREATE TABLE enforcement.draft_packets (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    plan_id uuid NOT NULL,
    judgment_id uuid NOT NULL,
    strategy enforcement.strategy NOT NULL,
    documents jsonb NOT NULL,
    total_fees numeric(10,2) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT draft_packets_documents_check CHECK ((jsonb_typeof(documents) = 'array'::text)),
    CONSTRAINT draft_packets_total_fees_check CHECK ((total_fees >= (0)::numeric))
);

ALTER TABLE ONLY enforcement.draft_packets FORCE ROW LEVEL SECURITY;

--
-- Name: plans; Type: TABLE; Schema: enforcement; Owner: -
--

CREATE TABLE enforcement.plans (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    judgment_id uuid NOT NULL,
    strategy enforcement.strategy NOT NULL,
    reason text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY enforcement.plans FORCE ROW LEVEL SECURITY;

--
-- Name: effect_log; Type: TABLE; Schema: ops; Owner: -
--

CREATE TABLE ops.effect_log (
    id bigint NOT NULL,
    job_id uuid NOT NULL,
    attempt bigint NOT NULL,
    effect_kind text NOT NULL,
    effect_key text NOT NULL,
    worker_id text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT effect_log_attempt_check CHECK ((attempt >= 1)),
    CONSTRAINT effect_log_effect_kind_check CHECK ((effect_kind ~ '^[a-z][a-z_]*$'::text))
);

ALTER TABLE ONLY ops.effect_log FORCE ROW LEVEL SECURITY;

--
-- Name: TABLE effect_log; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON TABLE ops.effect_log IS 'Every committed application of a handler''s effect (job, attempt, kind, key); no uniqueness, so a handler that committed twice shows twice.';

--
-- Name: effect_log_id_seq; Type: SEQUENCE; Schema: ops; Owner: -
--

ALTER TABLE ops.effect_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ops.effect_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: ingest_batches; Type: TABLE; Schema: ops; Owner: -
--

CREATE TABLE ops.ingest_batches (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    filename text NOT NULL,
    file_sha256 text NOT NULL,
    size_bytes bigint NOT NULL,
    status ops.ingest_batch_status DEFAULT 'queued'::ops.ingest_batch_status NOT NULL,
    job_id uuid,
    total_rows integer,
    valid_rows integer,
    invalid_rows integer,
    error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    CONSTRAINT ingest_batches_file_sha256_check CHECK ((file_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT ingest_batches_invalid_rows_check CHECK ((invalid_rows >= 0)),
    CONSTRAINT ingest_batches_size_bytes_check CHECK ((size_bytes >= 0)),
    CONSTRAINT ingest_batches_total_rows_check CHECK ((total_rows >= 0)),
    CONSTRAINT ingest_batches_valid_rows_check CHECK ((valid_rows >= 0))
);

ALTER TABLE ONLY ops.ingest_batches FORCE ROW LEVEL SECURITY;

--
-- Name: ingest_row_errors; Type: TABLE; Schema: ops; Owner: -
--

CREATE TABLE ops.ingest_row_errors (
    id bigint NOT NULL,
    batch_id uuid NOT NULL,
    row_number integer NOT NULL,
    error_code text NOT NULL,
    message text NOT NULL,
    raw_row text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT ingest_row_errors_error_code_check CHECK ((error_code ~ '^[a-z][a-z_]*$'::text)),
    CONSTRAINT ingest_row_errors_row_number_check CHECK ((row_number >= 1))
);

ALTER TABLE ONLY ops.ingest_row_errors FORCE ROW LEVEL SECURITY;

--
-- Name: ingest_row_errors_id_seq; Type: SEQUENCE; Schema: ops; Owner: -
--

ALTER TABLE ops.ingest_row_errors ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ops.ingest_row_errors_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: ingest_uploads; Type: TABLE; Schema: ops; Owner: -
--

CREATE TABLE ops.ingest_uploads (
    batch_id uuid NOT NULL,
    content bytea NOT NULL,
    stored_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE ONLY ops.ingest_uploads ALTER COLUMN content SET STORAGE EXTERNAL;

ALTER TABLE ONLY ops.ingest_uploads FORCE ROW LEVEL SECURITY;

--
-- Name: job_types; Type: TABLE; Schema: ops; Owner: -
--

CREATE TABLE ops.job_types (
    job_type text NOT NULL,
    description text NOT NULL,
    CONSTRAINT job_types_job_type_check CHECK ((job_type ~ '^[a-z][a-z0-9_]*$'::text))
);

ALTER TABLE ONLY ops.job_types FORCE ROW LEVEL SECURITY;

--
-- Name: schema_migrations; Type: TABLE; Schema: ops; Owner: -
--

CREATE TABLE ops.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY ops.schema_migrations FORCE ROW LEVEL SECURITY;

--
-- Name: test_clock; Type: TABLE; Schema: ops; Owner: -
--

CREATE TABLE ops.test_clock (
    opted_in boolean DEFAULT true NOT NULL,
    opted_in_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT test_clock_opted_in_check CHECK (opted_in)
);

ALTER TABLE ONLY ops.test_clock FORCE ROW LEVEL SECURITY;

--
-- Name: TABLE test_clock; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON TABLE ops.test_clock IS 'One row in a test database only: ops.clock() honours dragonfly.clock_* settings here.';

--
-- Name: v_queue_health; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.v_queue_health WITH (security_invoker='true') AS
 SELECT t.job_type,
    count(q.id) FILTER (WHERE (q.status = 'pending'::ops.job_status)) AS pending,
    count(q.id) FILTER (WHERE ((q.status = 'pending'::ops.job_status) AND (q.run_at <= ops.clock()))) AS ready,
    count(q.id) FILTER (WHERE (q.status = 'processing'::ops.job_status)) AS processing,
    count(q.id) FILTER (WHERE (q.status = 'failed'::ops.job_status)) AS failed,
    count(q.id) FILTER (WHERE (q.dead_lettered_at IS NOT NULL)) AS dead_lettered,
    max((ops.clock() - q.run_at)) FILTER (WHERE ((q.status = 'pending'::ops.job_status) AND (q.run_at <= ops.clock()))) AS oldest_pending_age,
    count(q.id) FILTER (WHERE ((q.status = 'processing'::ops.job_status) AND (COALESCE(q.lease_expires_at, (q.locked_at + ops.default_lock_timeout())) < ops.clock()))) AS stuck
   FROM (ops.job_types t
     LEFT JOIN ops.job_queue q ON (((q.job_type = t.job_type) AND (q.status <> 'completed'::ops.job_status))))
  GROUP BY t.job_type;

--
-- Name: worker_heartbeats; Type: TABLE; Schema: ops; Owner: -
--

CREATE TABLE ops.worker_heartbeats (
    worker_id text NOT NULL,
    worker_type text NOT NULL,
    hostname text NOT NULL,
    status text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT worker_heartbeats_status_check CHECK ((status = ANY (ARRAY['starting'::text, 'idle'::text, 'busy'::text, 'stopping'::text, 'stopped'::text]))),
    CONSTRAINT worker_heartbeats_worker_id_check CHECK ((worker_id <> ''::text)),
    CONSTRAINT worker_heartbeats_worker_type_check CHECK ((worker_type <> ''::text))
);

ALTER TABLE ONLY ops.worker_heartbeats FORCE ROW LEVEL SECURITY;

--
-- Name: v_worker_status; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.v_worker_status WITH (security_invoker='true') AS
 SELECT worker_id,
    worker_type,
    hostname,
    status,
    started_at,
    last_seen_at,
    (now() - last_seen_at) AS since_last_seen,
    ((status <> 'stopped'::text) AND (last_seen_at < (now() - '00:01:30'::interval))) AS is_stale
   FROM ops.worker_heartbeats h;

--
-- Name: debtor_profiles; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.debtor_profiles (
    judgment_id uuid NOT NULL,
    employer_name text,
    employer_address text,
    has_bank_account boolean DEFAULT false NOT NULL,
    bank_name text,
    bank_account_benefits_only boolean DEFAULT false NOT NULL,
    owns_home boolean DEFAULT false NOT NULL,
    property_address text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.debtor_profiles FORCE ROW LEVEL SECURITY;

--
-- Name: judgment_case_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.judgment_case_keys (
    case_key text NOT NULL,
    judgment_id uuid NOT NULL,
    CONSTRAINT judgment_case_keys_case_key_check CHECK (((case_key = lower(btrim(case_key))) AND (case_key <> ''::text)))
);

ALTER TABLE ONLY public.judgment_case_keys FORCE ROW LEVEL SECURITY;

--
-- Name: TABLE judgment_case_keys; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.judgment_case_keys IS 'Each judgment''s case number as its identity: trimmed and lower-cased (lower(btrim())).';

--
-- Name: judgments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.judgments (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    case_number text NOT NULL,
    plaintiff text NOT NULL,
    defendant text NOT NULL,
    judgment_amount numeric(14,2),
    filing_date date,
    county text,
    source_batch_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT judgments_case_number_check CHECK ((btrim(case_number) <> ''::text)),
    CONSTRAINT judgments_defendant_check CHECK ((btrim(defendant) <> ''::text)),
    CONSTRAINT judgments_judgment_amount_check CHECK ((judgment_amount >= (0)::numeric)),
    CONSTRAINT judgments_plaintiff_check CHECK ((btrim(plaintiff) <> ''::text))
);

ALTER TABLE ONLY public.judgments FORCE ROW LEVEL SECURITY;

--
-- Name: draft_packets draft_packets_pkey; Type: CONSTRAINT; Schema: enforcement; Owner: -
--

ALTER TABLE ONLY enforcement.draft_packets
    ADD CONSTRAINT draft_packets_pkey PRIMARY KEY (id);

--
-- Name: draft_packets draft_packets_plan_id_key; Type: CONSTRAINT; Schema: enforcement; Owner: -
--

ALTER TABLE ONLY enforcement.draft_packets
    ADD CONSTRAINT draft_packets_plan_id_key UNIQUE (plan_id);

--
-- Name: plans plans_judgment_id_key; Type: CONSTRAINT; Schema: enforcement; Owner: -
--

ALTER TABLE ONLY enforcement.plans
    ADD CONSTRAINT plans_judgment_id_key UNIQUE (judgment_id);

--
-- Name: plans plans_pkey; Type: CONSTRAINT; Schema: enforcement; Owner: -
--

ALTER TABLE ONLY enforcement.plans
    ADD CONSTRAINT plans_pkey PRIMARY KEY (id);

--
-- Name: effect_log effect_log_pkey; Type: CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.effect_log
    ADD CONSTRAINT effect_log_pkey PRIMARY KEY (id);

--
-- Name: ingest_batches ingest_batches_pkey; Type: CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.ingest_batches
    ADD CONSTRAINT ingest_batches_pkey PRIMARY KEY (id);

--
-- Name: ingest_row_errors ingest_row_errors_batch_id_row_number_error_code_key; Type: CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.ingest_row_errors
    ADD CONSTRAINT ingest_row_errors_batch_id_row_number_error_code_key UNIQUE (batch_id, row_number, error_code);

--
-- Name: ingest_row_errors ingest_row_errors_pkey; Type: CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.ingest_row_errors
    ADD CONSTRAINT ingest_row_errors_pkey PRIMARY KEY (id);

--
-- Name: ingest_uploads ingest_uploads_pkey; Type: CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.ingest_uploads
    ADD CONSTRAINT ingest_uploads_pkey PRIMARY KEY (batch_id);

--
-- Name: job_queue job_queue_pkey; Type: CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.job_queue
    ADD CONSTRAINT job_queue_pkey PRIMARY KEY (id);

--
-- Name: job_types job_types_pkey; Type: CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.job_types
    ADD CONSTRAINT job_types_pkey PRIMARY KEY (job_type);

--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

--
-- Name: test_clock test_clock_pkey; Type: CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.test_clock
    ADD CONSTRAINT test_clock_pkey PRIMARY KEY (opted_in);

--
-- Name: worker_heartbeats worker_heartbeats_pkey; Type: CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.worker_heartbeats
    ADD CONSTRAINT worker_heartbeats_pkey PRIMARY KEY (worker_id);

--
-- Name: debtor_profiles debtor_profiles_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.debtor_profiles
    ADD CONSTRAINT debtor_profiles_pkey PRIMARY KEY (judgment_id);

--
-- Name: judgment_case_keys judgment_case_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.judgment_case_keys
    ADD CONSTRAINT judgment_case_keys_pkey PRIMARY KEY (case_key);

--
-- Name: judgments judgments_case_number_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.judgments
    ADD CONSTRAINT judgments_case_number_key UNIQUE (case_number);

--
-- Name: judgments judgments_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.judgments
    ADD CONSTRAINT judgments_pkey PRIMARY KEY (id);

--
-- Name: draft_packets_judgment_id_idx; Type: INDEX; Schema: enforcement; Owner: -
--

CREATE INDEX draft_packets_judgment_id_idx ON enforcement.draft_packets USING btree (judgment_id);

--
-- Name: effect_log_job_id_idx; Type: INDEX; Schema: ops; Owner: -
--

CREATE INDEX effect_log_job_id_idx ON ops.effect_log USING btree (job_id);

--
-- Name: ingest_batches_job_id_idx; Type: INDEX; Schema: ops; Owner: -
--

CREATE INDEX ingest_batches_job_id_idx ON ops.ingest_batches USING btree (job_id);

--
-- Name: ingest_batches_sha256_idx; Type: INDEX; Schema: ops; Owner: -
--

CREATE INDEX ingest_batches_sha256_idx ON ops.ingest_batches USING btree (file_sha256);

--
-- Name: job_queue_claim_idx; Type: INDEX; Schema: ops; Owner: -
--

CREATE INDEX job_queue_claim_idx ON ops.job_queue USING btree (job_type, priority DESC, run_at, id) WHERE (status = 'pending'::ops.job_status);

--
-- Name: job_queue_completed_at_idx; Type: INDEX; Schema: ops; Owner: -
--

CREATE INDEX job_queue_completed_at_idx ON ops.job_queue USING btree (completed_at) WHERE (status = 'completed'::ops.job_status);

--
-- Name: job_queue_idempotency_key_idx; Type: INDEX; Schema: ops; Owner: -
--

CREATE UNIQUE INDEX job_queue_idempotency_key_idx ON ops.job_queue USING btree (job_type, idempotency_key) WHERE (idempotency_key IS NOT NULL);

--
-- Name: job_queue_lease_expiry_idx; Type: INDEX; Schema: ops; Owner: -
--

CREATE INDEX job_queue_lease_expiry_idx ON ops.job_queue USING btree (lease_expires_at) WHERE ((status = 'processing'::ops.job_status) AND (lease_expires_at IS NOT NULL));

--
-- Name: job_queue_processing_lease_idx; Type: INDEX; Schema: ops; Owner: -
--

CREATE INDEX job_queue_processing_lease_idx ON ops.job_queue USING btree (locked_at) WHERE ((status = 'processing'::ops.job_status) AND (locked_at IS NOT NULL));

--
-- Name: job_queue_unfinished_idx; Type: INDEX; Schema: ops; Owner: -
--

CREATE INDEX job_queue_unfinished_idx ON ops.job_queue USING btree (job_type) INCLUDE (status, run_at, locked_at, dead_lettered_at, id) WHERE (status <> 'completed'::ops.job_status);

--
-- Name: judgments_source_batch_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX judgments_source_batch_id_idx ON public.judgments USING btree (source_batch_id);

--
-- Name: draft_packets draft_packets_touch_updated_at; Type: TRIGGER; Schema: enforcement; Owner: -
--

CREATE TRIGGER draft_packets_touch_updated_at BEFORE UPDATE ON enforcement.draft_packets FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

--
-- Name: plans plans_touch_updated_at; Type: TRIGGER; Schema: enforcement; Owner: -
--

CREATE TRIGGER plans_touch_updated_at BEFORE UPDATE ON enforcement.plans FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

--
-- Name: job_queue ingest_batch_follows_job; Type: TRIGGER; Schema: ops; Owner: -
--

CREATE TRIGGER ingest_batch_follows_job AFTER UPDATE OF status ON ops.job_queue FOR EACH ROW WHEN (((new.job_type = 'ingest_csv'::text) AND (new.status IS DISTINCT FROM old.status) AND (new.status = ANY (ARRAY['failed'::ops.job_status, 'pending'::ops.job_status])))) EXECUTE FUNCTION ops.ingest_batch_follows_job();

--
-- Name: job_queue job_queue_touch_updated_at; Type: TRIGGER; Schema: ops; Owner: -
--

CREATE TRIGGER job_queue_touch_updated_at BEFORE UPDATE ON ops.job_queue FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

--
-- Name: debtor_profiles debtor_profiles_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER debtor_profiles_touch_updated_at BEFORE UPDATE ON public.debtor_profiles FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

--
-- Name: judgments judgments_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER judgments_touch_updated_at BEFORE UPDATE ON public.judgments FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

--
-- Name: draft_packets draft_packets_judgment_id_fkey; Type: FK CONSTRAINT; Schema: enforcement; Owner: -
--

ALTER TABLE ONLY enforcement.draft_packets
    ADD CONSTRAINT draft_packets_judgment_id_fkey FOREIGN KEY (judgment_id) REFERENCES public.judgments(id) ON DELETE CASCADE;

--
-- Name: draft_packets draft_packets_plan_id_fkey; Type: FK CONSTRAINT; Schema: enforcement; Owner: -
--

ALTER TABLE ONLY enforcement.draft_packets
    ADD CONSTRAINT draft_packets_plan_id_fkey FOREIGN KEY (plan_id) REFERENCES enforcement.plans(id) ON DELETE CASCADE;

--
-- Name: plans plans_judgment_id_fkey; Type: FK CONSTRAINT; Schema: enforcement; Owner: -
--

ALTER TABLE ONLY enforcement.plans
    ADD CONSTRAINT plans_judgment_id_fkey FOREIGN KEY (judgment_id) REFERENCES public.judgments(id) ON DELETE CASCADE;

--
-- Name: effect_log effect_log_job_id_fkey; Type: FK CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.effect_log
    ADD CONSTRAINT effect_log_job_id_fkey FOREIGN KEY (job_id) REFERENCES ops.job_queue(id) ON DELETE CASCADE;

--
-- Name: ingest_batches ingest_batches_job_id_fkey; Type: FK CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.ingest_batches
    ADD CONSTRAINT ingest_batches_job_id_fkey FOREIGN KEY (job_id) REFERENCES ops.job_queue(id) ON DELETE SET NULL;

--
-- Name: ingest_row_errors ingest_row_errors_batch_id_fkey; Type: FK CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.ingest_row_errors
    ADD CONSTRAINT ingest_row_errors_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES ops.ingest_batches(id) ON DELETE CASCADE;

--
-- Name: ingest_uploads ingest_uploads_batch_id_fkey; Type: FK CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.ingest_uploads
    ADD CONSTRAINT ingest_uploads_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES ops.ingest_batches(id) ON DELETE CASCADE;

--
-- Name: job_queue job_queue_job_type_fkey; Type: FK CONSTRAINT; Schema: ops; Owner: -
--

ALTER TABLE ONLY ops.job_queue
    ADD CONSTRAINT job_queue_job_type_fkey FOREIGN KEY (job_type) REFERENCES ops.job_types(job_type);

--
-- Name: debtor_profiles debtor_profiles_judgment_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.debtor_profiles
    ADD CONSTRAINT debtor_profiles_judgment_id_fkey FOREIGN KEY (judgment_id) REFERENCES public.judgments(id) ON DELETE CASCADE;

--
-- Name: judgments judgments_source_batch_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.judgments
    ADD CONSTRAINT judgments_source_batch_id_fkey FOREIGN KEY (source_batch_id) REFERENCES ops.ingest_batches(id) ON DELETE SET NULL;

--
-- Name: draft_packets; Type: ROW SECURITY; Schema: enforcement; Owner: -
--

ALTER TABLE enforcement.draft_packets ENABLE ROW LEVEL SECURITY;

--
-- Name: draft_packets dragonfly_services; Type: POLICY; Schema: enforcement; Owner: -
--

CREATE POLICY dragonfly_services ON enforcement.draft_packets TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: plans dragonfly_services; Type: POLICY; Schema: enforcement; Owner: -
--

CREATE POLICY dragonfly_services ON enforcement.plans TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: plans; Type: ROW SECURITY; Schema: enforcement; Owner: -
--

ALTER TABLE enforcement.plans ENABLE ROW LEVEL SECURITY;

--
-- Name: effect_log dragonfly_services; Type: POLICY; Schema: ops; Owner: -
--

CREATE POLICY dragonfly_services ON ops.effect_log FOR INSERT TO dragonfly_worker WITH CHECK (true);

--
-- Name: ingest_batches dragonfly_services; Type: POLICY; Schema: ops; Owner: -
--

CREATE POLICY dragonfly_services ON ops.ingest_batches TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: ingest_row_errors dragonfly_services; Type: POLICY; Schema: ops; Owner: -
--

CREATE POLICY dragonfly_services ON ops.ingest_row_errors TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: ingest_uploads dragonfly_services; Type: POLICY; Schema: ops; Owner: -
--

CREATE POLICY dragonfly_services ON ops.ingest_uploads TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: job_queue dragonfly_services; Type: POLICY; Schema: ops; Owner: -
--

CREATE POLICY dragonfly_services ON ops.job_queue TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: job_types dragonfly_services; Type: POLICY; Schema: ops; Owner: -
--

CREATE POLICY dragonfly_services ON ops.job_types TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: test_clock dragonfly_services; Type: POLICY; Schema: ops; Owner: -
--

CREATE POLICY dragonfly_services ON ops.test_clock FOR SELECT TO dragonfly_worker, dragonfly_api USING (true);

--
-- Name: worker_heartbeats dragonfly_services; Type: POLICY; Schema: ops; Owner: -
--

CREATE POLICY dragonfly_services ON ops.worker_heartbeats TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: effect_log; Type: ROW SECURITY; Schema: ops; Owner: -
--

ALTER TABLE ops.effect_log ENABLE ROW LEVEL SECURITY;

--
-- Name: ingest_batches; Type: ROW SECURITY; Schema: ops; Owner: -
--

ALTER TABLE ops.ingest_batches ENABLE ROW LEVEL SECURITY;

--
-- Name: ingest_row_errors; Type: ROW SECURITY; Schema: ops; Owner: -
--

ALTER TABLE ops.ingest_row_errors ENABLE ROW LEVEL SECURITY;

--
-- Name: ingest_uploads; Type: ROW SECURITY; Schema: ops; Owner: -
--

ALTER TABLE ops.ingest_uploads ENABLE ROW LEVEL SECURITY;

--
-- Name: job_queue; Type: ROW SECURITY; Schema: ops; Owner: -
--

ALTER TABLE ops.job_queue ENABLE ROW LEVEL SECURITY;

--
-- Name: job_types; Type: ROW SECURITY; Schema: ops; Owner: -
--

ALTER TABLE ops.job_types ENABLE ROW LEVEL SECURITY;

--
-- Name: schema_migrations; Type: ROW SECURITY; Schema: ops; Owner: -
--

ALTER TABLE ops.schema_migrations ENABLE ROW LEVEL SECURITY;

--
-- Name: test_clock; Type: ROW SECURITY; Schema: ops; Owner: -
--

ALTER TABLE ops.test_clock ENABLE ROW LEVEL SECURITY;

--
-- Name: worker_heartbeats; Type: ROW SECURITY; Schema: ops; Owner: -
--

ALTER TABLE ops.worker_heartbeats ENABLE ROW LEVEL SECURITY;

--
-- Name: debtor_profiles; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.debtor_profiles ENABLE ROW LEVEL SECURITY;

--
-- Name: debtor_profiles dragonfly_services; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY dragonfly_services ON public.debtor_profiles TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: judgment_case_keys dragonfly_services; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY dragonfly_services ON public.judgment_case_keys TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: judgments dragonfly_services; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY dragonfly_services ON public.judgments TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);

--
-- Name: judgment_case_keys; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.judgment_case_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: judgments; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.judgments ENABLE ROW LEVEL SECURITY;
