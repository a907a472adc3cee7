-- Roles, grants and row-level security: no one gets in where they does not belong.
--
-- Before this migration every function in ops was executable by PUBLIC, and on Supabase the
-- platform's default privileges gave anon and authenticated (the anon key the dashboard ships)
-- every table in public, with row-level security off. Now:
--   * anon, authenticated and service_role exist on plain Postgres too (NOLOGIN), so the same
--     files run on both; service_role is the platform's and is neither granted nor revoked here;
--   * dragonfly_worker and dragonfly_api are the services' group roles (NOLOGIN): a deployment
--     grants them to its login users (GRANT dragonfly_worker TO my_worker_login);
--   * PUBLIC, anon and authenticated hold nothing on schemas ops and enforcement, on their
--     tables, views and functions, or on public.judgments and public.debtor_profiles;
--   * each group role holds exactly what its service runs (reference/api/queries.sql,
--     reference/jobqueue/queries.sql, reference/workers/*.sql); the README's access matrix and
--     tests/contract/test_access_matrix.py list every decision;
--   * every table of public, ops and enforcement has row-level security enabled and forced, with
--     policies for the group roles only: anon and authenticated see no row even if granted one.
-- No function is SECURITY DEFINER: each service acts within its own grants. The migrating role
-- must bypass row-level security (a superuser, or Supabase's postgres, which has BYPASSRLS).
-- Only catalog changes and brief ACCESS EXCLUSIVE locks for ALTER TABLE ... ROW LEVEL SECURITY
-- (no rewrite, no scan). A function added by a later migration is not executable by PUBLIC
-- (default privileges below) and needs its own GRANT, or the access matrix test fails.

-- Bounded waits: each statement here takes its lock briefly or gives up (migrate.py runs the
-- file in a transaction; these settings end with it).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- Roles are cluster-wide: another database on the server (or a concurrent migration of one)
-- may have created them already.
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['anon', 'authenticated', 'service_role', 'dragonfly_worker',
                                'dragonfly_api']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently by another database's migration
            END;
        END IF;
    END LOOP;
END;
$$;

-- Nothing for PUBLIC, anon or authenticated (revoking what was never granted is a no-op).
REVOKE ALL ON SCHEMA ops, enforcement FROM PUBLIC, anon, authenticated;
REVOKE ALL ON ALL TABLES IN SCHEMA ops, enforcement FROM PUBLIC, anon, authenticated;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ops, enforcement FROM PUBLIC, anon, authenticated;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ops, enforcement FROM PUBLIC, anon, authenticated;
REVOKE ALL ON TABLE public.judgments, public.judgment_case_keys, public.debtor_profiles
    FROM PUBLIC, anon, authenticated;

-- Later objects of the migrating role: functions are not executable by PUBLIC anywhere (only
-- the global default can take PUBLIC's EXECUTE away), and Supabase's per-schema defaults for
-- anon and authenticated no longer apply to what it creates in public, ops and enforcement.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA public, ops, enforcement
    REVOKE ALL ON TABLES FROM anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public, ops, enforcement
    REVOKE ALL ON SEQUENCES FROM anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public, ops, enforcement
    REVOKE ALL ON FUNCTIONS FROM anon, authenticated;

-- The services' schemas.
GRANT USAGE ON SCHEMA ops, enforcement TO dragonfly_worker, dragonfly_api;

-- Functions, explicitly, one decision each (the triggers' functions ops.touch_updated_at and
-- ops.ingest_batch_follows_job are granted to no one: a trigger does not need EXECUTE).
-- Helpers the queue functions call run as the caller, so their callers need them too.
GRANT EXECUTE ON FUNCTION ops.clock() TO dragonfly_worker, dragonfly_api;
GRANT EXECUTE ON FUNCTION ops.statement_clock() TO dragonfly_worker, dragonfly_api;
GRANT EXECUTE ON FUNCTION ops.default_lock_timeout() TO dragonfly_worker, dragonfly_api;
-- The clock reads the test-clock opt-in (migration 0011) only when a dragonfly.clock_* setting is
-- set; reading it is harmless, writing it is no one's (only the harness, as superuser, does).
GRANT EXECUTE ON FUNCTION ops.test_clock_opted_in() TO dragonfly_worker, dragonfly_api;
GRANT EXECUTE ON FUNCTION ops.assert_lock_timeout(interval) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.assert_known_job_types(text[]) TO dragonfly_worker, dragonfly_api;
GRANT EXECUTE ON FUNCTION ops.assert_worker_id(text) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.retry_backoff(integer) TO dragonfly_worker;
-- Enqueueing: the API (uploads, enforcement requests) and the worker (drafting after strategy).
GRANT EXECUTE ON FUNCTION ops.queue_job(text, jsonb, integer, timestamptz, text, jsonb, integer)
    TO dragonfly_worker, dragonfly_api;
GRANT EXECUTE ON FUNCTION enforcement.drafting_idempotency_key(uuid, enforcement.strategy,
    timestamptz) TO dragonfly_worker, dragonfly_api;
-- The worker's loop.
-- The lease-length forms (migration 0011) and the old forms kept beside them.
GRANT EXECUTE ON FUNCTION ops.claim_pending_job(text[], text, integer, interval) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.claim_pending_job(text[], text, integer) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.complete_job(uuid, text) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.complete_job_and_claim(uuid, text, text[], integer, interval)
    TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.complete_job_and_claim(uuid, text, text[], integer)
    TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.complete_jobs(uuid[], text) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.fail_job(uuid, text, text, boolean) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.extend_lock(uuid, text, interval) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.extend_lock(uuid, text) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.reap_stuck_jobs(interval) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.register_heartbeat(text, text, text, text) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.hold_lease(uuid, text) TO dragonfly_worker;
GRANT EXECUTE ON FUNCTION ops.prune_history(interval, interval, interval, integer)
    TO dragonfly_worker;

-- Tables and views: what each service's statements touch (the queue functions run as the
-- caller, so the worker's grants cover what claim, complete, fail, reap and prune write).
GRANT SELECT ON ops.job_types TO dragonfly_worker, dragonfly_api;
GRANT SELECT ON ops.test_clock TO dragonfly_worker, dragonfly_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.job_queue TO dragonfly_worker;
GRANT SELECT, INSERT ON ops.job_queue TO dragonfly_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.worker_heartbeats TO dragonfly_worker;
GRANT SELECT ON ops.worker_heartbeats TO dragonfly_api;
GRANT SELECT, UPDATE ON ops.ingest_batches TO dragonfly_worker;
GRANT SELECT, INSERT, UPDATE ON ops.ingest_batches TO dragonfly_api;
GRANT SELECT ON ops.ingest_uploads TO dragonfly_worker;
GRANT INSERT ON ops.ingest_uploads TO dragonfly_api;
-- SELECT: the insert names its conflict target (batch_id, row_number, error_code).
GRANT SELECT, INSERT ON ops.ingest_row_errors TO dragonfly_worker;
GRANT SELECT ON ops.ingest_row_errors TO dragonfly_api;
GRANT SELECT, INSERT, UPDATE ON public.judgments TO dragonfly_worker;
GRANT SELECT ON public.judgments TO dragonfly_api;
GRANT SELECT, INSERT, UPDATE ON public.judgment_case_keys TO dragonfly_worker;
GRANT SELECT ON public.debtor_profiles TO dragonfly_worker, dragonfly_api;
GRANT SELECT, INSERT, UPDATE ON enforcement.plans TO dragonfly_worker;
GRANT SELECT ON enforcement.plans TO dragonfly_api;
GRANT SELECT, INSERT, UPDATE ON enforcement.draft_packets TO dragonfly_worker;
GRANT SELECT ON ops.v_queue_health, ops.v_worker_status TO dragonfly_api;

-- The views read as the caller, so row-level security on the tables under them holds.
ALTER VIEW ops.v_queue_health SET (security_invoker = true);
ALTER VIEW ops.v_worker_status SET (security_invoker = true);

-- Row-level security on every table, forced (it applies to the tables' owner too; superusers
-- and BYPASSRLS roles such as the migrating one are not subject to it). A group role sees
-- every row of the tables it is granted; anyone else sees none.
ALTER TABLE ops.schema_migrations ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE ops.job_types ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE ops.test_clock ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE ops.job_queue ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE ops.worker_heartbeats ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE ops.ingest_batches ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE ops.ingest_uploads ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE ops.ingest_row_errors ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE public.judgments ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE public.judgment_case_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE public.debtor_profiles ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE enforcement.plans ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE enforcement.draft_packets ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY dragonfly_services ON ops.job_types
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
CREATE POLICY dragonfly_services ON ops.test_clock FOR SELECT
    TO dragonfly_worker, dragonfly_api USING (true);
CREATE POLICY dragonfly_services ON ops.job_queue
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
CREATE POLICY dragonfly_services ON ops.worker_heartbeats
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
CREATE POLICY dragonfly_services ON ops.ingest_batches
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
CREATE POLICY dragonfly_services ON ops.ingest_uploads
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
CREATE POLICY dragonfly_services ON ops.ingest_row_errors
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
CREATE POLICY dragonfly_services ON public.judgments
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
CREATE POLICY dragonfly_services ON public.judgment_case_keys
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
CREATE POLICY dragonfly_services ON public.debtor_profiles
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
CREATE POLICY dragonfly_services ON enforcement.plans
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
CREATE POLICY dragonfly_services ON enforcement.draft_packets
    TO dragonfly_worker, dragonfly_api USING (true) WITH CHECK (true);
