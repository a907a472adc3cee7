-- dragonfly: no-transaction
-- Test-only: an index on the busy queue table, built without blocking writes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS job_queue_note_idx
    ON ops.job_queue (note) WHERE note IS NOT NULL;
