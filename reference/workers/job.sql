-- name: limit_transaction
-- For this transaction only (a transaction pooler hands the server connection on after it):
-- every statement is cancelled once it runs past the job's time left.
SELECT set_config('statement_timeout', %(timeout)s, true);

-- name: hold_lease
-- The handler transaction's last statement: aborts it (SQLSTATE DFQ03) unless this worker
-- still holds the job, and keeps the lease from changing hands until the commit.
SELECT ops.hold_lease(job_id => %(job_id)s, worker_id => %(worker_id)s);
