-- db_role_check.sql (common/db.c): the role a process connects as, whether
-- it is a superuser, and whether it owns the billing schema (or is a member
-- of billing_owner): either can disable the rules' triggers.
-- No parameters.
SELECT session_user, r.rolsuper,
       coalesce(pg_has_role(session_user, n.nspowner, 'MEMBER'), false)
       OR EXISTS (SELECT 1
                    FROM pg_roles o
                   WHERE o.rolname = 'billing_owner'
                     AND pg_has_role(session_user, o.oid, 'MEMBER'))
  FROM pg_roles r
  LEFT JOIN pg_namespace n ON n.nspname = 'billing'
 WHERE r.rolname = session_user
