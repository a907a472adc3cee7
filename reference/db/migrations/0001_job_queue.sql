-- The job queue: ops.job_queue, its job types, and the indexes the claim and the reaper need.
CREATE SCHEMA IF NOT EXISTS ops;

-- Known job types live in a table (not a CHECK) so the error can list them and a deployment
-- can add one with an INSERT instead of a schema change.
CREATE TABLE ops.job_types (
    job_type    text PRIMARY KEY CHECK (job_type ~ '^[a-z][a-z0-9_]*$'),
    description text NOT NULL
);

INSERT INTO ops.job_types (job_type, description) VALUES
    ('ingest_csv', 'Ingest Processor: load one uploaded CSV batch into public.judgments'),
    ('enforcement_strategy', 'Enforcement Engine: decide how to collect one judgment'),
    ('enforcement_drafting', 'Enforcement Engine: draft the legal packet for one plan'),
    ('smoke_canary', 'Prod smoke suite: opt-in canary job'),
    ('load_probe', 'Load tests: a job that only measures the claim path');

CREATE TYPE ops.job_status AS ENUM ('pending', 'processing', 'completed', 'failed');

CREATE TABLE ops.job_queue (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_type         text NOT NULL REFERENCES ops.job_types (job_type),
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           ops.job_status NOT NULL DEFAULT 'pending',
    priority         integer NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    locked_at        timestamptz,
    locked_by        text,
    last_error       text,
    idempotency_key  text CHECK (idempotency_key <> ''),
    trace_context    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    dead_lettered_at timestamptz,
    reap_count       integer NOT NULL DEFAULT 0,
    CONSTRAINT job_queue_payload_is_object CHECK (jsonb_typeof(payload) = 'object'),
    -- A processing row always carries its lease; a completed row keeps locked_by as a
    -- record of which worker finished it.
    CONSTRAINT job_queue_processing_has_lease CHECK (
        status <> 'processing' OR (locked_at IS NOT NULL AND locked_by IS NOT NULL)
    )
);

-- The claim walks this index per job type in (priority DESC, run_at, id) order. One index
-- keyed on the ORDER BY alone would make a worker of a rare type walk past every pending job
-- of a common type (shared/notes/claim-benchmark.md: 100x slower with a mixed backlog).
CREATE INDEX job_queue_claim_idx
    ON ops.job_queue (job_type, priority DESC, run_at, id)
    WHERE status = 'pending';

-- Stuck-job detection and the reaper read only processing rows, oldest lease first.
CREATE INDEX job_queue_processing_lease_idx
    ON ops.job_queue (locked_at)
    WHERE status = 'processing';

-- Idempotent enqueue: one job per (job_type, idempotency_key).
CREATE UNIQUE INDEX job_queue_idempotency_key_idx
    ON ops.job_queue (job_type, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Autovacuum early: a queue table is all updates, and dead tuples slow the claim.
ALTER TABLE ops.job_queue SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.02,
    fillfactor = 80
);

CREATE TABLE ops.worker_heartbeats (
    worker_id    text PRIMARY KEY CHECK (worker_id <> ''),
    worker_type  text NOT NULL CHECK (worker_type <> ''),
    hostname     text NOT NULL,
    status       text NOT NULL CHECK (status IN ('starting', 'idle', 'busy', 'stopping', 'stopped')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
