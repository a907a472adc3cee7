-- Operator views over the queue and the workers (SPEC §2).

CREATE VIEW ops.v_queue_health AS
SELECT
    t.job_type,
    count(q.id) FILTER (WHERE q.status = 'pending') AS pending,
    count(q.id) FILTER (WHERE q.status = 'pending' AND q.run_at <= now()) AS ready,
    count(q.id) FILTER (WHERE q.status = 'processing') AS processing,
    count(q.id) FILTER (WHERE q.status = 'failed') AS failed,
    count(q.id) FILTER (WHERE q.dead_lettered_at IS NOT NULL) AS dead_lettered,
    -- How long the longest-waiting claimable job has been ready (NULL when none is).
    max(now() - q.run_at) FILTER (WHERE q.status = 'pending' AND q.run_at <= now())
        AS oldest_pending_age,
    count(q.id) FILTER (
        WHERE q.status = 'processing' AND q.locked_at < now() - interval '30 minutes'
    ) AS stuck
FROM ops.job_types AS t
-- Completed rows are the bulk of the table and count for nothing here: leave them out early.
LEFT JOIN ops.job_queue AS q ON q.job_type = t.job_type AND q.status <> 'completed'
GROUP BY t.job_type;

CREATE VIEW ops.v_worker_status AS
SELECT
    h.worker_id,
    h.worker_type,
    h.hostname,
    h.status,
    h.started_at,
    h.last_seen_at,
    now() - h.last_seen_at AS since_last_seen,
    (h.status <> 'stopped' AND h.last_seen_at < now() - interval '90 seconds') AS is_stale
FROM ops.worker_heartbeats AS h;
