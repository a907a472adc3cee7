-- Issue 21: a batch claim racing many others no longer re-walks the claim index quadratically.
--
-- ops.claim_pending_job(text[], text, integer, interval) is migration 0011's body with one
-- change: when a batch claim's round comes up short because other sessions hold its candidates,
-- the next round reads twice as many (up to four times the first round's). Which jobs a claim
-- takes, in which order, and the rows it locks are unchanged: the candidates are still read
-- without locks in claim order and the locking read still stops at the rows the claim keeps;
-- only the number of rounds falls. The claim of one job (batch_size = 1) is untouched.
-- CREATE OR REPLACE keeps the function's grants; its SET plan_cache_mode stays as declared.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

CREATE OR REPLACE FUNCTION ops.claim_pending_job(
    job_types text[],
    worker_id text,
    batch_size integer,
    lock_timeout interval
) RETURNS SETOF ops.job_queue
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $function$
DECLARE
    -- Candidates read per round, per type and in all: a few more than the claim keeps, so
    -- claims racing for the same head of the queue mostly find their jobs in one round.
    lookahead integer := claim_pending_job.batch_size + 3;
    seen uuid[];
    passed uuid[] := '{}';
    -- Ids, not rows of ops.job_queue: a PL/pgSQL variable of the table's row type keeps the
    -- row's shape from the session's first call, so after a migration adds a column every
    -- later claim of that session would fail (42804); the rows are read once, at the end.
    got uuid[];
    claimed uuid[] := '{}';
BEGIN
    PERFORM ops.assert_known_job_types(claim_pending_job.job_types);
    PERFORM ops.assert_worker_id(claim_pending_job.worker_id);
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DFQ02',
            MESSAGE = format('batch_size must be between 1 and 1000 (got %s)',
                             coalesce(batch_size::text, 'NULL'));
    END IF;
    PERFORM ops.assert_lock_timeout(claim_pending_job.lock_timeout);
    IF batch_size > 1 THEN
        -- Overrides the function's SET for the rest of this call only.
        SET LOCAL plan_cache_mode = force_custom_plan;
    END IF;
    LOOP
        IF batch_size = 1 THEN
            -- The same round as the batch one below, with its limits known: a lookahead of
            -- 1 + 3 and one lock.
            WITH
            candidates AS MATERIALIZED (
                SELECT picked.id, picked.priority, picked.run_at
                FROM (SELECT DISTINCT unnest(claim_pending_job.job_types) AS job_type) AS wanted
                CROSS JOIN LATERAL (
                    SELECT q.id, q.priority, q.run_at
                    FROM ops.job_queue AS q
                    WHERE q.status = 'pending'
                      AND q.job_type = wanted.job_type
                      AND q.run_at <= ops.statement_clock()
                      AND q.id <> ALL (passed)
                    ORDER BY q.priority DESC, q.run_at, q.id
                    LIMIT 4
                ) AS picked
                ORDER BY picked.priority DESC, picked.run_at, picked.id
                LIMIT 4
            ),
            locked AS MATERIALIZED (
                SELECT q.id
                FROM ops.job_queue AS q
                WHERE q.id = ANY (ARRAY(SELECT candidates.id FROM candidates))
                  AND q.status::text = 'pending'
                  AND q.run_at <= ops.statement_clock()
                ORDER BY q.priority DESC, q.run_at, q.id
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            ),
            taken AS (
                UPDATE ops.job_queue AS q
                SET status = 'processing',
                    locked_at = ops.clock(),
                    locked_by = claim_pending_job.worker_id,
                    lease_expires_at = ops.clock() + claim_pending_job.lock_timeout,
                    attempts = q.attempts + 1
                WHERE q.id = ANY (ARRAY(SELECT locked.id FROM locked))
                RETURNING q.id
            )
            SELECT ARRAY(SELECT candidates.id FROM candidates), ARRAY(SELECT taken.id FROM taken)
            INTO seen, got;
        ELSE
            WITH
            -- One walk of job_queue_claim_idx per wanted type, reading without locks; a rare
            -- type is not stuck behind a common type's backlog.
            candidates AS MATERIALIZED (
                SELECT picked.id, picked.priority, picked.run_at
                FROM (SELECT DISTINCT unnest(claim_pending_job.job_types) AS job_type) AS wanted
                CROSS JOIN LATERAL (
                    SELECT q.id, q.priority, q.run_at
                    FROM ops.job_queue AS q
                    WHERE q.status = 'pending'
                      AND q.job_type = wanted.job_type
                      -- ops.statement_clock(), not ops.clock(): jobs that fell due since the
                      -- transaction began are not passed over.
                      AND q.run_at <= ops.statement_clock()
                      AND q.id <> ALL (passed)
                    ORDER BY q.priority DESC, q.run_at, q.id
                    LIMIT lookahead
                ) AS picked
                ORDER BY picked.priority DESC, picked.run_at, picked.id
                LIMIT lookahead
            ),
            -- Locks in claim order only the rows the claim keeps, skipping rows another
            -- session holds (and, rechecked on their newest version, rows claimed meanwhile).
            -- By the primary key: the status compared as text implies no partial index's
            -- predicate, so the planner cannot walk job_queue_claim_idx for the ORDER BY.
            locked AS MATERIALIZED (
                SELECT q.id
                FROM ops.job_queue AS q
                WHERE q.id = ANY (ARRAY(SELECT candidates.id FROM candidates))
                  AND q.status::text = 'pending'
                  AND q.run_at <= ops.statement_clock()
                ORDER BY q.priority DESC, q.run_at, q.id
                LIMIT claim_pending_job.batch_size - cardinality(claimed)
                FOR UPDATE SKIP LOCKED
            ),
            taken AS (
                UPDATE ops.job_queue AS q
                SET status = 'processing',
                    locked_at = ops.clock(),
                    locked_by = claim_pending_job.worker_id,
                    lease_expires_at = ops.clock() + claim_pending_job.lock_timeout,
                    attempts = q.attempts + 1
                WHERE q.id = ANY (ARRAY(SELECT locked.id FROM locked))
                RETURNING q.id
            )
            SELECT ARRAY(SELECT candidates.id FROM candidates), ARRAY(SELECT taken.id FROM taken)
            INTO seen, got;
        END IF;
        claimed := claimed || got;
        -- Done with a full claim, or when the round saw every due job it could (fewer than
        -- its lookahead); otherwise other sessions held candidates: look past them.
        EXIT WHEN cardinality(claimed) >= batch_size OR cardinality(seen) < lookahead;
        passed := passed || seen;
        -- A batch claim that came up short reads twice as many candidates next round: each
        -- round walks job_queue_claim_idx from its head past every id passed so far, so with
        -- many claimers racing for the same head a fixed lookahead made the walks grow with
        -- the square of the rounds (bench-claim: ~1,000 index entries read per job claimed at
        -- 32 threads, 8 at 4). The claim of one job keeps its constant LIMIT 4 (its cached
        -- plan), and with it its lookahead.
        IF batch_size > 1 THEN
            lookahead := least(lookahead * 2, 4 * (claim_pending_job.batch_size + 3));
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT q.* FROM ops.job_queue AS q
        WHERE q.id = ANY (claimed)
        ORDER BY q.priority DESC, q.run_at, q.id;
END;
$function$;
