-- The smoke suite's read-only statements (the canary's writes are at the end).

-- name: server_version
-- The server's version string, e.g. "18.1".
SELECT current_setting('server_version');

-- name: job_queue_columns
-- The columns of ops.job_queue.
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'ops' AND table_name = 'job_queue';

-- name: job_status_labels
-- The labels of the ops.job_status enum.
SELECT e.enumlabel
FROM pg_enum AS e
JOIN pg_type AS t ON t.oid = e.enumtypid
JOIN pg_namespace AS n ON n.oid = t.typnamespace
WHERE n.nspname = 'ops' AND t.typname = 'job_status';

-- name: job_queue_indexes
-- The indexes of ops.job_queue and their definitions.
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'ops' AND tablename = 'job_queue';

-- name: ops_functions
-- The functions of schema ops.
SELECT DISTINCT p.proname
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname = 'ops';

-- name: ops_relations
-- The tables and views of schema ops.
SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'ops' AND c.relkind IN ('r', 'v', 'p');

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

-- name: delete_canary_job
-- Remove the canary job this run created (never another job type).
DELETE FROM ops.job_queue WHERE id = %(job_id)s AND job_type = 'smoke_canary';

-- name: delete_smoke_judgment
-- Remove the judgment the CSV canary created, identified by its smoke case number and batch.
DELETE FROM public.judgments WHERE case_number = %(case_number)s AND source_batch_id = %(batch_id)s;

-- name: delete_smoke_batch
-- Remove the CSV canary's batch (its stored upload and row errors cascade) by id and file name.
DELETE FROM ops.ingest_batches WHERE id = %(batch_id)s AND filename = %(filename)s;

-- name: delete_smoke_ingest_job
-- Remove the ingest_csv job that loaded the CSV canary.
DELETE FROM ops.job_queue WHERE id = %(job_id)s AND job_type = 'ingest_csv';
