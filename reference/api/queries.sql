-- Statements of the reference API (reference/api), loaded by reference.api.sql.

-- name: select_one
-- Readiness probe: the database answers.
SELECT 1;

-- name: lock_file_sha256
-- Serialise uploads of the same bytes until this transaction ends (second key: the digest).
SELECT pg_advisory_xact_lock(hashtext('ops.ingest_batches'), hashtext(%(sha256)s));

-- name: find_batch_by_sha256
-- The first batch stored for these bytes, if any.
SELECT id, status::text AS status
FROM ops.ingest_batches
WHERE file_sha256 = %(sha256)s
ORDER BY created_at, id
LIMIT 1;

-- name: insert_batch
-- A new batch, queued.
INSERT INTO ops.ingest_batches (filename, file_sha256, size_bytes, status)
VALUES (%(filename)s, %(sha256)s, %(size_bytes)s, 'queued')
RETURNING id;

-- name: insert_upload
-- The uploaded bytes of a batch.
INSERT INTO ops.ingest_uploads (batch_id, content) VALUES (%(batch_id)s, %(content)s);

-- name: set_batch_job
-- Link a batch to its ingest_csv job.
UPDATE ops.ingest_batches SET job_id = %(job_id)s WHERE id = %(batch_id)s;

-- name: get_batch
-- One batch with its progress, its job's status and how many row errors it recorded.
SELECT
    b.id AS batch_id,
    b.filename,
    b.file_sha256 AS sha256,
    b.size_bytes,
    b.status::text AS status,
    b.job_id,
    j.status::text AS job_status,
    b.total_rows,
    b.valid_rows,
    b.invalid_rows,
    (SELECT count(*) FROM ops.ingest_row_errors AS e WHERE e.batch_id = b.id) AS row_error_count,
    b.error,
    b.created_at,
    b.started_at,
    b.finished_at
FROM ops.ingest_batches AS b
LEFT JOIN ops.job_queue AS j ON j.id = b.job_id
WHERE b.id = %(batch_id)s;

-- name: list_batch_errors
-- One page of a batch's row errors, by row number.
SELECT row_number, error_code, message
FROM ops.ingest_row_errors
WHERE batch_id = %(batch_id)s
ORDER BY row_number, error_code
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_batch_errors
-- How many row errors a batch recorded; no row when the batch does not exist.
SELECT (SELECT count(*) FROM ops.ingest_row_errors AS e WHERE e.batch_id = b.id) AS total
FROM ops.ingest_batches AS b
WHERE b.id = %(batch_id)s;

-- name: get_judgment_state
-- A judgment, when what the strategy reads last changed, and its plan (if any).
SELECT
    j.id AS judgment_id,
    greatest(j.updated_at, d.updated_at) AS state_at,
    p.id AS plan_id,
    enforcement.drafting_idempotency_key(p.id, p.strategy, p.updated_at) AS drafting_key
FROM public.judgments AS j
LEFT JOIN public.debtor_profiles AS d ON d.judgment_id = j.id
LEFT JOIN enforcement.plans AS p ON p.judgment_id = j.id
WHERE j.id = %(judgment_id)s;

-- name: queue_health
-- ops.v_queue_health with the age in seconds.
SELECT
    job_type,
    pending,
    ready,
    processing,
    failed,
    dead_lettered,
    extract(epoch FROM oldest_pending_age)::float8 AS oldest_pending_age_seconds,
    stuck
FROM ops.v_queue_health
ORDER BY job_type;

-- name: worker_status
-- ops.v_worker_status with the time since the last heartbeat in seconds.
SELECT
    worker_id,
    worker_type,
    hostname,
    status,
    started_at,
    last_seen_at,
    extract(epoch FROM since_last_seen)::float8 AS seconds_since_last_seen,
    is_stale
FROM ops.v_worker_status
ORDER BY worker_type, worker_id;

-- name: queue_depth
-- Jobs by type and status, completed ones left out (the dragonfly.queue.depth gauge).
SELECT job_type, status::text AS status, count(*) AS depth
FROM ops.job_queue
WHERE status <> 'completed'
GROUP BY job_type, status;
