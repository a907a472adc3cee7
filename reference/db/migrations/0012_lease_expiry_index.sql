-- dragonfly: no-transaction
-- The reaper and the health view's `stuck` find expired leases by lease_expires_at (0011).
-- Built concurrently, outside a transaction, so claims and completions go on meanwhile; only
-- processing rows, and a predicate the fenced updates (which never test lease_expires_at) do
-- not imply, so they keep the primary key (see 0005). One statement and no SET in this file:
-- it runs outside a transaction, and a statement_timeout would leave an invalid index behind.
CREATE INDEX CONCURRENTLY IF NOT EXISTS job_queue_lease_expiry_idx
    ON ops.job_queue (lease_expires_at)
    WHERE status = 'processing' AND lease_expires_at IS NOT NULL;
