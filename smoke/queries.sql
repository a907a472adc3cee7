-- The smoke suite's statements: each runs in a transaction of its own (smoke/database.py),
-- read-only unless it is one of the canary's writes at the end.

-- name: set_local_statement_timeout
-- Bound every statement of this transaction only (is_local = true: gone at COMMIT/ROLLBACK).
SELECT set_config('statement_timeout', %(timeout)s, true);

-- name: server_version
-- The server's version string, e.g. "18.1".
SELECT current_setting('server_version');

-- name: known_job_types
-- The job types the queue accepts.
SELECT job_type FROM ops.job_types;

-- name: queue_summary
-- Stuck leases, the oldest due pending job's wait, and recent dead letters, in one pass.
SELECT
    count(*) FILTER (
        WHERE status = 'processing' AND locked_at < now() - make_interval(secs => %(lock_timeout)s)
    ) AS stuck,
    extract(epoch FROM max(now() - run_at) FILTER (WHERE status = 'pending' AND run_at <= now()))
        AS oldest_pending_seconds,
    count(*) FILTER (
        WHERE dead_lettered_at > now() - make_interval(secs => %(dead_letter_window)s)
    ) AS dead_letters
FROM ops.job_queue
WHERE status <> 'completed';

-- name: stuck_jobs
-- The seed's 30-minute query, on the lease: processing jobs whose lease is older than the timeout.
SELECT job_type, id::text, extract(epoch FROM now() - locked_at)
FROM ops.job_queue
WHERE status = 'processing' AND locked_at < now() - make_interval(secs => %(lock_timeout)s)
ORDER BY locked_at
LIMIT 10;

-- name: old_pending_jobs
-- Due pending jobs that have waited longer than the threshold, oldest first.
SELECT job_type, id::text, extract(epoch FROM now() - run_at)
FROM ops.job_queue
WHERE status = 'pending' AND run_at <= now() - make_interval(secs => %(max_pending_age)s)
ORDER BY run_at
LIMIT 10;

-- name: recent_dead_letters
-- Jobs dead-lettered within the window, newest first.
SELECT job_type, id::text, extract(epoch FROM now() - dead_lettered_at)
FROM ops.job_queue
WHERE dead_lettered_at > now() - make_interval(secs => %(dead_letter_window)s)
ORDER BY dead_lettered_at DESC
LIMIT 10;

-- name: worker_liveness
-- Per worker type: live workers (heartbeat fresh, not stopped) and the newest heartbeat's age.
SELECT
    worker_type,
    count(*) FILTER (
        WHERE status <> 'stopped' AND last_seen_at > now() - make_interval(secs => %(max_age)s)
    ) AS live,
    extract(epoch FROM now() - max(last_seen_at)) AS newest_age
FROM ops.worker_heartbeats
GROUP BY worker_type;

-- name: worker_starts
-- Per worker type: every process start (one heartbeat row each) within the crash window.
SELECT worker_type, array_agg(to_char(started_at AT TIME ZONE 'UTC', 'HH24:MI:SS') ORDER BY started_at)
FROM ops.worker_heartbeats
WHERE started_at > now() - make_interval(secs => %(window)s)
GROUP BY worker_type;

-- name: job_state
-- The canary job's status and the worker that holds or completed it.
SELECT status::text, locked_by FROM ops.job_queue WHERE id = %(job_id)s;

-- name: schema_objects
-- Every object the migrations create in schemas ops and enforcement and the project's tables in
-- public, one (kind, identity) row each; objects of extensions are left out. The schema check
-- compares them with smoke/schema_manifest.json.
WITH schemas AS (
    SELECT oid, nspname FROM pg_namespace WHERE nspname IN ('ops', 'enforcement', 'public')
),
-- Objects an extension owns (Supabase installs some in public) are not the project's.
extension_owned AS (
    SELECT objid FROM pg_depend WHERE deptype = 'e'
),
relations AS (
    SELECT c.oid, c.relkind, s.nspname || '.' || c.relname AS name
    FROM pg_class AS c
    JOIN schemas AS s ON s.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm') AND c.oid NOT IN (SELECT objid FROM extension_owned)
)
SELECT CASE WHEN relkind IN ('r', 'p') THEN 'table' ELSE 'view' END, name FROM relations
UNION ALL
SELECT 'column', r.name || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
FROM relations AS r
JOIN pg_attribute AS a ON a.attrelid = r.oid
WHERE r.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index', pg_get_indexdef(i.indexrelid)
FROM pg_index AS i
JOIN relations AS r ON r.oid = i.indrelid
WHERE i.indisvalid  -- a failed CREATE INDEX CONCURRENTLY leaves an invalid one: not there
UNION ALL
SELECT 'trigger', t.tgname || ' ON ' || r.name
FROM pg_trigger AS t
JOIN relations AS r ON r.oid = t.tgrelid
WHERE NOT t.tgisinternal
UNION ALL
SELECT 'function', s.nspname || '.' || p.proname || '(' || oidvectortypes(p.proargtypes) || ')'
FROM pg_proc AS p
JOIN schemas AS s ON s.oid = p.pronamespace
WHERE p.oid NOT IN (SELECT objid FROM extension_owned)
UNION ALL
SELECT 'enum label', s.nspname || '.' || t.typname || ' ' || e.enumlabel
FROM pg_enum AS e
JOIN pg_type AS t ON t.oid = e.enumtypid
JOIN schemas AS s ON s.oid = t.typnamespace
WHERE t.oid NOT IN (SELECT objid FROM extension_owned);

-- name: recorded_migrations
-- The migrations recorded as applied, e.g. "0010_claim_one_plan".
SELECT lpad(version::text, 4, '0') || '_' || name FROM ops.schema_migrations ORDER BY version;

-- The canary's rows, found by pattern: %(case_pattern)s matches its judgments' case numbers,
-- %(file_pattern)s its batches' file names, %(key_pattern)s its smoke_canary jobs' idempotency
-- keys; only rows older than %(min_age)s seconds (a live run's rows are younger).

-- name: count_canary_rows
-- How many canary rows match: smoke_canary jobs, judgments, batches and their ingest_csv jobs.
WITH batches AS (
    SELECT id, job_id FROM ops.ingest_batches
    WHERE filename ~ %(file_pattern)s AND created_at < now() - make_interval(secs => %(min_age)s)
)
SELECT
    (SELECT count(*) FROM ops.job_queue
     WHERE job_type = 'smoke_canary' AND coalesce(idempotency_key, '') ~ %(key_pattern)s
       AND created_at < now() - make_interval(secs => %(min_age)s)),
    (SELECT count(*) FROM public.judgments
     WHERE case_number ~ %(case_pattern)s
       AND created_at < now() - make_interval(secs => %(min_age)s)),
    (SELECT count(*) FROM batches),
    (SELECT count(*) FROM ops.job_queue
     WHERE job_type = 'ingest_csv' AND id IN (SELECT job_id FROM batches));

-- name: delete_canary_judgments
-- Remove the canary's judgments (their plans and drafts cascade).
DELETE FROM public.judgments
WHERE case_number ~ %(case_pattern)s AND created_at < now() - make_interval(secs => %(min_age)s)
RETURNING id;

-- name: delete_canary_batches
-- Remove the canary's batches (stored uploads and row errors cascade); their ingest jobs' ids.
DELETE FROM ops.ingest_batches
WHERE filename ~ %(file_pattern)s AND created_at < now() - make_interval(secs => %(min_age)s)
RETURNING job_id;

-- name: delete_canary_jobs
-- Remove the smoke_canary jobs, and the ingest_csv jobs of the batches just removed.
DELETE FROM ops.job_queue
WHERE (job_type = 'smoke_canary' AND coalesce(idempotency_key, '') ~ %(key_pattern)s
       AND created_at < now() - make_interval(secs => %(min_age)s))
   OR (job_type = 'ingest_csv' AND id = ANY(%(ingest_job_ids)s::uuid[]))
RETURNING job_type;
