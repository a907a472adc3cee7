-- The harness's access statements (harness/schema/access_matrix.py, harness/postgres/logins.py).

-- name: supabase_platform_defaults
-- What a Supabase project has before the migrations run: its API roles, the public schema
-- open to them with default privileges on whatever is created there, and ops exposed to the
-- REST API the way Supabase's guide for exposing a custom schema says. Test databases only.
DO $$
BEGIN
    CREATE ROLE anon NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE authenticated NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
GRANT USAGE ON SCHEMA public TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated;
CREATE SCHEMA IF NOT EXISTS ops;
GRANT USAGE ON SCHEMA ops TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA ops GRANT ALL ON TABLES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA ops GRANT ALL ON FUNCTIONS TO anon, authenticated;

-- name: group_roles_present
-- How many of the services' group roles (migration 0015) exist on the server.
SELECT count(*) FROM pg_roles WHERE rolname IN ('dragonfly_worker', 'dragonfly_api');

-- name: matrix_functions
-- Every function of ops and enforcement: schema.name, its identity and argument types.
SELECT n.nspname || '.' || p.proname AS name,
       p.oid::regprocedure::text AS signature,
       array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t) AS argument_types
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('ops', 'enforcement')
ORDER BY 1, 2;

-- name: matrix_relations
-- Every table and view of ops and enforcement, and the tables of public.
SELECT n.nspname || '.' || c.relname AS name
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE (n.nspname IN ('ops', 'enforcement') AND c.relkind IN ('r', 'p', 'v', 'm'))
   OR (n.nspname = 'public' AND c.relkind IN ('r', 'p'))
ORDER BY 1;

-- name: first_column
-- A relation's first column an UPDATE may set (not an identity or generated one).
SELECT a.attname FROM pg_attribute AS a
WHERE a.attrelid = %(relation)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attidentity = '' AND a.attgenerated = ''
ORDER BY a.attnum
LIMIT 1;

-- name: function_privilege
-- Whether a role may execute a function (by its signature).
SELECT has_function_privilege(%(role)s, %(signature)s, 'EXECUTE');

-- name: table_privilege
-- Whether a role holds a privilege on a table or view.
SELECT has_table_privilege(%(role)s, %(relation)s, %(privilege)s);

-- name: row_security
-- A table's row-level security: (enabled, forced), and the roles its policies apply to.
SELECT c.relrowsecurity, c.relforcerowsecurity,
       array(
           SELECT DISTINCT CASE WHEN r.oid = 0 THEN 'PUBLIC' ELSE r.oid::regrole::text END
           FROM pg_policy AS pol CROSS JOIN LATERAL unnest(pol.polroles) AS r (oid)
           WHERE pol.polrelid = c.oid
           ORDER BY 1
       ) AS policy_roles
FROM pg_class AS c
WHERE c.oid = %(relation)s::regclass;

-- name: roles_present
-- Which of the matrix's roles exist.
SELECT rolname::text FROM pg_roles WHERE rolname = ANY(%(roles)s);

-- name: mutant_access_public_execute
-- Access mutant: the queue functions executable by PUBLIC again, as before migration 0015.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ops TO PUBLIC;

-- name: mutant_access_judgments_rls_off
-- Access mutant: "break glass", row-level security disabled on public.judgments.
ALTER TABLE public.judgments DISABLE ROW LEVEL SECURITY;

-- name: mutant_access_anon_read_policy
-- Access mutant: a policy that lets anon read every judgment (and the grant it needs).
CREATE POLICY anon_reads_judgments ON public.judgments FOR SELECT TO anon USING (true);
GRANT SELECT ON public.judgments TO anon;
