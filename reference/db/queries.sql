-- The migration runner's statements (reference/db/migrate.py, reference/db/lockwatch.py).

-- name: create_bookkeeping
-- The table that records each applied migration (created by the first run).
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: bookkeeping_exists
-- Whether any migration ran here yet (the dry run creates nothing).
SELECT to_regclass('ops.schema_migrations') IS NOT NULL AS present;

-- name: try_migration_lock
-- One migrator at a time, for this transaction only (a pooler cannot keep a session lock).
SELECT pg_try_advisory_xact_lock(%(key)s) AS locked;

-- name: applied_migrations
-- The history: what ran here, with the checksum of the file as it was then.
SELECT version, name, checksum FROM ops.schema_migrations;

-- name: record_migration
-- A migration is recorded in the transaction that applied it, or right after a
-- no-transaction one succeeded.
INSERT INTO ops.schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s);

-- name: read_only_transaction
-- The dry run reads the history without being able to change anything.
SET TRANSACTION READ ONLY;

-- name: set_timeouts
-- How long one migration may wait for a lock and run a statement; both end with the
-- transaction (set_config(..., true) is SET LOCAL), so nothing leaks onto a pooled connection.
SELECT set_config('lock_timeout', %(lock_timeout)s, true),
       set_config('statement_timeout', %(statement_timeout)s, true);

-- name: backend_pid
-- The server process running this transaction (whose blockers the lock watch reports).
SELECT pg_backend_pid() AS pid;

-- name: blockers
-- The sessions that hold the lock a backend waits for, with what they run (truncated).
SELECT a.pid,
       coalesce(a.state, '') AS state,
       coalesce(a.usename::text, '') AS username,
       coalesce(extract(epoch FROM clock_timestamp() - a.xact_start), 0)::float8 AS xact_seconds,
       left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 200) AS query
FROM pg_stat_activity AS a
WHERE a.pid = ANY (pg_blocking_pids(%(pid)s))
ORDER BY a.xact_start;

-- name: invalid_indexes
-- (Run without parameters: its % signs are SQL's.) Indexes a failed CREATE INDEX CONCURRENTLY (or REINDEX CONCURRENTLY) left unusable.
SELECT format('%I.%I', n.nspname, c.relname) AS index_name
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY 1;
