-- Test-only (tests/integration/test_migrations_live.py): a new nullable column on the busy
-- queue table. Catalog-only, but it needs ACCESS EXCLUSIVE for a moment, so it queues
-- behind any long query on ops.job_queue, and every claim queues behind it.
ALTER TABLE ops.job_queue ADD COLUMN note text;
