-- name: batch_timing
-- A batch's status, the worker's time on it in seconds, and its row count.
SELECT status::text, extract(epoch FROM finished_at - started_at), total_rows
FROM ops.ingest_batches
WHERE id = %(batch_id)s;

-- name: batch_judgments
-- The judgments a batch wrote.
SELECT id FROM public.judgments WHERE source_batch_id = %(batch_id)s;

-- name: packet_summary
-- How many of these judgments have a draft packet, and their fees in all.
SELECT count(*), coalesce(sum(total_fees), 0)::text
FROM enforcement.draft_packets
WHERE judgment_id = ANY(%(judgments)s::uuid[]);

-- name: plans_by_strategy
-- These judgments' plans, counted by strategy.
SELECT strategy::text, count(*)
FROM enforcement.plans
WHERE judgment_id = ANY(%(judgments)s::uuid[])
GROUP BY 1
ORDER BY 1;

-- name: jobs_by_status
-- Every job, counted by status.
SELECT status::text, count(*) FROM ops.job_queue GROUP BY 1 ORDER BY 1;

-- name: empty_judgments
-- Start a benchmark run from an empty judgments table.
TRUNCATE public.judgments CASCADE;

-- name: drop_bench_table
-- The benchmark's COPY target, gone.
DROP TABLE IF EXISTS bench_raw_copy;

-- name: create_bare_bench_table
-- A bare table of text columns: the fastest place COPY can put the file.
CREATE TABLE bench_raw_copy (
    case_number text, plaintiff text, defendant text,
    judgment_amount text, filing_date text, county text
);

-- name: create_keyed_bench_table
-- The least any loader into public.judgments pays: a uuid key per row and a unique
-- case_number (text columns still: the raw values are not valid numerics and dates).
CREATE TABLE bench_raw_copy (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), case_number text UNIQUE,
    plaintiff text, defendant text, judgment_amount text, filing_date text, county text
);

-- name: copy_bench_table
-- The CSV file as it is.
COPY bench_raw_copy (case_number, plaintiff, defendant, judgment_amount, filing_date, county)
FROM STDIN (FORMAT csv, HEADER true);

-- name: compress_uploads
-- Store uploads compressed again, as before migration 0007, to measure what that cost.
ALTER TABLE ops.ingest_uploads ALTER COLUMN content SET STORAGE EXTENDED;

-- name: has_test_clock
-- Whether this database's queue has the test clock opt-in table (migration 0011 or later).
SELECT to_regclass('ops.test_clock') IS NOT NULL;

-- name: opt_in_test_clock
-- Let ops.clock() honour the dragonfly.clock_* settings in this (test) database and its clones.
INSERT INTO ops.test_clock DEFAULT VALUES ON CONFLICT DO NOTHING;

-- name: expire_leases
-- End every lease taken at least %(older_than)s ago, whatever its own length (the reaper reaps
-- by each job's lease_expires_at): what a lost worker's lease comes to after it expired. Run in
-- the reaper's transaction, so no extend_lock can renew it in between.
UPDATE ops.job_queue
SET lease_expires_at = ops.clock() - interval '1 millisecond'
WHERE status = 'processing' AND locked_at <= ops.clock() - %(older_than)s::interval;
