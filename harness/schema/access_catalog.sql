-- The access check's read-only catalog statements (harness/schema/access_catalog.py), after Supabase's
-- database advisors. Each returns (object, what is wrong) rows; no row: nothing to fix.

-- name: tables_without_rls
-- Tables in public, ops and enforcement whose row-level security is off or not forced.
SELECT
    format('%I.%I', n.nspname, c.relname) AS object,
    CASE WHEN NOT c.relrowsecurity THEN 'off' ELSE 'not forced' END AS state
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname IN ('public', 'ops', 'enforcement')
  AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
ORDER BY 1;

-- name: exposed_functions
-- Functions in ops and enforcement that PUBLIC, anon or authenticated may execute.
SELECT p.oid::regprocedure::text AS object, string_agg(g.grantee, ', ' ORDER BY g.grantee)
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
CROSS JOIN LATERAL (
    SELECT 'PUBLIC' AS grantee
    WHERE EXISTS (
        SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
        WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'
    )
    UNION ALL
    SELECT r.rolname::text FROM pg_roles AS r
    WHERE r.rolname IN ('anon', 'authenticated') AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
) AS g
WHERE n.nspname IN ('ops', 'enforcement')
GROUP BY p.oid
ORDER BY 1;

-- name: exposed_relations
-- Tables, views and sequences of ops and enforcement, and the reference's tables in public,
-- on which PUBLIC, anon or authenticated hold a privilege.
SELECT format('%I.%I', n.nspname, c.relname) AS object,
       string_agg(DISTINCT g.grantee || ' ' || g.privilege, ', ')
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
    SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee,
           a.privilege_type AS privilege
    FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) AS a
    LEFT JOIN pg_roles AS r ON r.oid = a.grantee
    WHERE a.grantee = 0 OR r.rolname IN ('anon', 'authenticated')
) AS g
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND (n.nspname IN ('ops', 'enforcement')
       OR (n.nspname = 'public' AND c.relname IN ('judgments', 'debtor_profiles')))
GROUP BY n.nspname, c.relname
ORDER BY 1;

-- name: exposed_schemas
-- Schemas ops and enforcement where PUBLIC, anon or authenticated have USAGE or CREATE.
SELECT s.nspname::text AS object, string_agg(g.grantee || ' ' || g.privilege, ', ')
FROM pg_namespace AS s
CROSS JOIN LATERAL (
    SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee,
           a.privilege_type AS privilege
    FROM aclexplode(coalesce(s.nspacl, acldefault('n', s.nspowner))) AS a
    LEFT JOIN pg_roles AS r ON r.oid = a.grantee
    WHERE a.grantee = 0 OR r.rolname IN ('anon', 'authenticated')
) AS g
WHERE s.nspname IN ('ops', 'enforcement')
GROUP BY s.nspname
ORDER BY 1;

-- name: definers_without_search_path
-- SECURITY DEFINER functions in public, ops and enforcement without a pinned search_path.
SELECT p.oid::regprocedure::text AS object, 'no search_path' AS state
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE p.prosecdef
  AND n.nspname IN ('public', 'ops', 'enforcement')
  AND NOT EXISTS (
      SELECT 1 FROM unnest(coalesce(p.proconfig, '{}'::text[])) AS setting
      WHERE setting LIKE 'search_path=%'
  )
ORDER BY 1;

-- name: views_bypassing_rls
-- Views in public, ops and enforcement that read as an owner RLS does not apply to (superuser
-- or BYPASSRLS) because they lack security_invoker.
SELECT format('%I.%I', n.nspname, c.relname) AS object, o.rolname::text AS owner
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_roles AS o ON o.oid = c.relowner
WHERE c.relkind = 'v'
  AND n.nspname IN ('public', 'ops', 'enforcement')
  AND (o.rolsuper OR o.rolbypassrls)
  AND NOT EXISTS (
      SELECT 1 FROM unnest(coalesce(c.reloptions, '{}'::text[])) AS option
      WHERE lower(option) IN ('security_invoker=true', 'security_invoker=on', 'security_invoker=1')
  )
ORDER BY 1;

-- name: open_policies
-- Row-level security policies in public, ops and enforcement that apply to PUBLIC, anon or
-- authenticated.
SELECT format('%I on %I.%I', pol.polname, n.nspname, c.relname) AS object,
       string_agg(CASE WHEN role.oid = 0 THEN 'PUBLIC' ELSE role.oid::regrole::text END, ', ')
FROM pg_policy AS pol
JOIN pg_class AS c ON c.oid = pol.polrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(pol.polroles) AS role (oid)
LEFT JOIN pg_roles AS r ON r.oid = role.oid
WHERE n.nspname IN ('public', 'ops', 'enforcement')
  AND (role.oid = 0 OR r.rolname IN ('anon', 'authenticated'))
GROUP BY pol.polname, n.nspname, c.relname
ORDER BY 1;
