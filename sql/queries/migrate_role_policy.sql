-- migrate_role_policy.sql (common/migrate.c): runs the role policy of
-- 010_roles.sql again after migrations were applied. plpgsql resolves the
-- call only when it runs: a database whose migrations stop before 010 has
-- no such function.
-- No parameters.
DO $$
BEGIN
    IF to_regprocedure('billing.grant_runtime_roles()') IS NOT NULL THEN
        PERFORM billing.grant_runtime_roles();
    END IF;
END
$$
