-- Fenced effects: a handler's writes commit only while its worker still holds the job.
--
-- ops.hold_lease(job_id, worker_id) is the last statement of a handler's transaction. It
-- row-locks the job where it is still `processing` under this worker's lease, so the lease
-- cannot change hands until the transaction ends; when the lease is gone (reaped, claimed by
-- another worker, completed or failed) it raises SQLSTATE DFQ03 and the transaction aborts:
-- the database, not an in-memory flag, decides whether the effects commit.
--
-- Taken last, the lock is held only for the commit: a lock taken first would block the lease
-- keeper's extend_lock and heartbeat for the whole handler. Under READ COMMITTED a lease that
-- changed hands while this statement waited for the row is re-read and refused.
-- Each migration runs in its own transaction: these bound this one's waits, no further.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30s';

CREATE FUNCTION ops.hold_lease(job_id uuid, worker_id text) RETURNS void
LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM 1
    FROM ops.job_queue AS q
    WHERE q.id = hold_lease.job_id
      AND q.status = 'processing'
      AND q.locked_by = hold_lease.worker_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease lost: job % is not held by worker % any more', job_id, worker_id
            USING ERRCODE = 'DFQ03',
                  HINT = 'another worker holds the job now (or it was settled); '
                         'this transaction commits nothing';
    END IF;
END;
$function$;

COMMENT ON FUNCTION ops.hold_lease(uuid, text) IS
    'Last statement of a handler''s transaction: locks the job while this worker holds it, '
    'else raises DFQ03 so the transaction commits nothing.';
