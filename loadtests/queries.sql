-- name: create_audit_tables
-- The load run's own records, beside the queue: every claim and every timed queue operation.
CREATE SCHEMA IF NOT EXISTS dragonfly_load;
CREATE TABLE IF NOT EXISTS dragonfly_load.claims (
    run_id     text NOT NULL,
    job_id     uuid NOT NULL,
    worker_id  text NOT NULL,
    attempts   integer NOT NULL,
    locked_at  timestamptz NOT NULL,
    completed  boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_run_job_idx ON dragonfly_load.claims (run_id, job_id);
CREATE TABLE IF NOT EXISTS dragonfly_load.operations (
    run_id      text NOT NULL,
    name        text NOT NULL,
    duration_us bigint NOT NULL,
    jobs        integer NOT NULL,
    ok          boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_run_idx ON dragonfly_load.operations (run_id, name);
CREATE TABLE IF NOT EXISTS dragonfly_load.processes (
    run_id     text NOT NULL,
    process    text NOT NULL,
    claims     integer NOT NULL,
    operations integer NOT NULL,
    flushed_at timestamptz NOT NULL DEFAULT now()
);

-- name: seed_jobs
-- Pre-fill the queue through the contract's own queue_job, one load_probe job per number.
SELECT count(ops.queue_job(
    job_type => 'load_probe',
    payload => jsonb_build_object('load_run', %(run_id)s::text, 'n', g)
))
FROM generate_series(1, %(count)s) AS g;

-- name: copy_claims
-- COPY target for a load process's claim records.
COPY dragonfly_load.claims (run_id, job_id, worker_id, attempts, locked_at, completed) FROM STDIN;

-- name: copy_operations
-- COPY target for a load process's timed operations.
COPY dragonfly_load.operations (run_id, name, duration_us, jobs, ok) FROM STDIN;

-- name: process_flushed
-- A load process has written all its records for the run.
INSERT INTO dragonfly_load.processes (run_id, process, claims, operations)
VALUES (%(run_id)s, %(process)s, %(claims)s, %(operations)s);

-- name: flushed_processes
-- How many load processes have written their records for the run.
SELECT count(*) FROM dragonfly_load.processes WHERE run_id = %(run_id)s;

-- name: any_unfinished
-- Whether any of this run's seeded jobs is still pending or processing; EXISTS stops at the
-- first one, through the two partial indexes, so watching a large queue stays cheap.
SELECT EXISTS (
    SELECT 1 FROM ops.job_queue AS q
    WHERE q.status = 'pending' AND q.job_type = 'load_probe'
      AND q.payload ->> 'load_run' = %(run_id)s
) OR EXISTS (
    SELECT 1 FROM ops.job_queue AS q
    WHERE q.status = 'processing' AND q.locked_at IS NOT NULL
      AND q.payload ->> 'load_run' = %(run_id)s
) AS unfinished;

-- name: double_claims
-- Jobs claimed more than once while a lease was live: the load users never fail or release a
-- job, so a second claim of a job that was never reaped means two holders at once. Workers
-- in lease order (ties, as in a double claim within one instant, by name).
SELECT c.job_id, count(*) AS claims,
       array_agg(c.worker_id ORDER BY c.locked_at, c.worker_id) AS workers
FROM dragonfly_load.claims AS c
JOIN ops.job_queue AS q ON q.id = c.job_id
WHERE c.run_id = %(run_id)s AND q.reap_count = 0
GROUP BY c.job_id
HAVING count(*) > 1
ORDER BY c.job_id
LIMIT 20;

-- name: seeded_outcome
-- Each seeded job's fate: completed once, completed more than once, or not completed (lost).
WITH seeded AS (
    SELECT q.id, q.status
    FROM ops.job_queue AS q
    WHERE q.job_type = 'load_probe' AND q.payload ->> 'load_run' = %(run_id)s
),
completions AS (
    SELECT c.job_id, count(*) FILTER (WHERE c.completed) AS completed
    FROM dragonfly_load.claims AS c
    WHERE c.run_id = %(run_id)s
    GROUP BY c.job_id
)
SELECT
    count(*) AS seeded,
    count(*) FILTER (WHERE s.status = 'completed' AND coalesce(k.completed, 0) = 1)
        AS completed_once,
    count(*) FILTER (WHERE coalesce(k.completed, 0) > 1) AS completed_twice,
    count(*) FILTER (WHERE s.status <> 'completed') AS not_completed,
    count(*) FILTER (WHERE s.status = 'completed' AND coalesce(k.completed, 0) = 0)
        AS completed_unrecorded
FROM seeded AS s
LEFT JOIN completions AS k ON k.job_id = s.id;

-- name: operation_latency
-- Exact latency percentiles (microseconds) per operation, from every load process's records.
SELECT
    o.name,
    count(*) AS calls,
    sum(o.jobs) FILTER (WHERE o.ok) AS jobs,
    count(*) FILTER (WHERE NOT o.ok) AS failures,
    percentile_disc(0.5) WITHIN GROUP (ORDER BY o.duration_us) AS p50_us,
    percentile_disc(0.95) WITHIN GROUP (ORDER BY o.duration_us) AS p95_us,
    percentile_disc(0.99) WITHIN GROUP (ORDER BY o.duration_us) AS p99_us,
    max(o.duration_us) AS max_us
FROM dragonfly_load.operations AS o
WHERE o.run_id = %(run_id)s
GROUP BY o.name
ORDER BY o.name;

-- name: judgment_ids
-- Judgments the EnqueueUser may ask a strategy for.
SELECT id FROM public.judgments ORDER BY id LIMIT %(limit)s;
