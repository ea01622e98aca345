-- 010_roles.sql: least-privilege database roles (CONTRACT "Additions of
-- 2026-12-03 / Hardening"; docs/DESIGN.md "Database roles" and "Trust model").
--
--   billing_owner     owns the schema and every object in it; only
--                     `billingctl db migrate` connects as it.
--   billing_worker    the workers, the scheduler (and the notifier).
--   billing_operator  billingctl.
--
-- Neither runtime role can alter, disable or drop a trigger or a table,
-- create anything in the schema, TRUNCATE, UPDATE or DELETE audit events,
-- credit-ledger rows or applied-message keys, or become a superuser (so no
-- `SET session_replication_role`, no `COPY ... TO PROGRAM`).
--
-- The roles are cluster-wide and many databases share one cluster (each test
-- database, each tenant of a shared server): they are created when absent,
-- LOGIN without a password (the operator sets the passwords, see
-- docs/OPERATIONS.md), and left alone when present. Two migrations running
-- at once in two databases can both find a role absent: the second CREATE
-- ROLE waits for the first and fails with a unique violation, which is
-- caught (billing.ensure_role).
--
-- RULE FOR EVERY LATER MIGRATION: the grants are a policy, not a list. It
-- lives in one function, billing.grant_runtime_roles(), which reads the
-- schema as it is (every table, sequence and function of schema billing) and
-- grants each runtime role what the policy says. A migration that adds or
-- changes a table ends with
--
--     SELECT billing.grant_runtime_roles();
--
-- and a table that needs another rule (DELETE, say) changes the policy in
-- this function (CREATE OR REPLACE in that migration) rather than granting
-- by hand. `billingctl db migrate` also calls it after applying anything, so
-- a migration numbered below 010 that reaches a database after 010 (009) is
-- covered too.

-- ---------------------------------------------------------------------------
-- Creating a role when absent, race-safe across the databases of a cluster.
CREATE OR REPLACE FUNCTION billing.ensure_role(p_name text) RETURNS boolean
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_name) THEN
        RETURN false;
    END IF;
    BEGIN
        EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
                       ' NOREPLICATION NOBYPASSRLS', p_name);
    EXCEPTION WHEN unique_violation OR duplicate_object THEN
        -- Created meanwhile by the migration of another database.
        RETURN false;
    END;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION billing.ensure_role(text) FROM PUBLIC;

SELECT billing.ensure_role(r)
  FROM unnest(ARRAY['billing_owner', 'billing_worker', 'billing_operator']) AS r;

-- Present roles are left alone, but a runtime role that can bypass the
-- rules is worth a warning in the migration's output.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles
              WHERE rolname IN ('billing_worker', 'billing_operator')
                AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolreplication)
    LOOP
        RAISE WARNING 'role % is a superuser or can create roles, bypass row security or'
                      ' replicate: the database cannot hold it to the rules', r.rolname;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Audit events record the database user beside the self-declared actor
-- (--by NAME): session_user, the role that logged in (SET ROLE does not
-- change it). Set by a trigger, so an INSERT cannot claim another; events
-- from before this migration have NULL (unknown).
ALTER TABLE billing.audit_events ADD COLUMN db_user text;
ALTER TABLE billing.audit_events ALTER COLUMN db_user SET DEFAULT session_user;

CREATE OR REPLACE FUNCTION billing.audit_events_db_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.db_user := session_user;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_events_db_user BEFORE INSERT ON billing.audit_events
    FOR EACH ROW EXECUTE FUNCTION billing.audit_events_db_user();

-- ---------------------------------------------------------------------------
-- The policy. Run by the migrating user (SECURITY INVOKER: it can do only
-- what the migrator can), inside the migration's transaction.
CREATE OR REPLACE FUNCTION billing.grant_runtime_roles() RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
DECLARE
    -- Only migrations write these.
    read_only constant text[] := ARRAY['schema_migrations'];
    -- Rows are only ever added: the keys of applied messages (changing or
    -- deleting one would apply its message again). Tables guarded by the
    -- append-only trigger of rule 1.7 (audit_events, credit_ledger) are
    -- found from their triggers.
    insert_only constant text[] := ARRAY['processed_messages'];
    -- Tables the code deletes from (per-transaction scratch rows).
    deletable constant text[] := ARRAY['deferred_checks'];
    schema_oid oid := 'billing'::regnamespace;
    owner_oid oid;
    can_own boolean;
    r record;
    privs text;
BEGIN
    SELECT oid INTO owner_oid FROM pg_roles WHERE rolname = 'billing_owner';
    IF owner_oid IS NULL THEN
        RAISE EXCEPTION 'role billing_owner does not exist (010_roles.sql creates it)';
    END IF;

    -- 1. billing_owner owns the schema and everything in it, whoever
    --    migrated (a superuser in tests and first installs). A migrator
    --    that can be neither leaves ownership as it is.
    can_own := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
               OR pg_has_role(current_user, owner_oid, 'MEMBER');
    IF can_own THEN
        IF (SELECT nspowner FROM pg_namespace WHERE oid = schema_oid) <> owner_oid THEN
            ALTER SCHEMA billing OWNER TO billing_owner;
        END IF;
        FOR r IN SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c
                  WHERE c.relnamespace = schema_oid AND c.relowner <> owner_oid
                    AND (c.relkind IN ('r', 'p', 'v', 'm', 'f')
                         OR (c.relkind = 'S' AND NOT EXISTS (
                                SELECT 1 FROM pg_depend d
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                   AND d.deptype IN ('a', 'i'))))
        LOOP
            EXECUTE format('ALTER %s %s OWNER TO billing_owner',
                           CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                          WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE'
                                          ELSE 'TABLE' END,
                           r.rel);
        END LOOP;
        FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
                  WHERE p.pronamespace = schema_oid AND p.proowner <> owner_oid
                    AND p.prokind IN ('f', 'p')
        LOOP
            EXECUTE format('ALTER ROUTINE %s OWNER TO billing_owner', r.fn);
        END LOOP;
    ELSE
        RAISE NOTICE 'ownership left as it is: % is neither a superuser nor a member of'
                     ' billing_owner', current_user;
    END IF;

    -- 2. The runtime roles: the schema, every table by the policy, the
    --    sequences behind identity columns, the functions. Each table starts
    --    from nothing, so a table that became append-only loses UPDATE.
    GRANT USAGE ON SCHEMA billing TO billing_worker, billing_operator;
    REVOKE CREATE ON SCHEMA billing FROM PUBLIC, billing_worker, billing_operator;
    FOR r IN SELECT c.oid, c.oid::regclass AS rel, c.relname FROM pg_class c
              WHERE c.relnamespace = schema_oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    LOOP
        IF r.relname = ANY (read_only) THEN
            privs := 'SELECT';
        ELSIF r.relname = ANY (insert_only) OR EXISTS (
                SELECT 1 FROM pg_trigger t
                 WHERE t.tgrelid = r.oid
                   AND t.tgfoid = 'billing.rule_1_7_append_only()'::regprocedure) THEN
            privs := 'SELECT, INSERT';
        ELSIF r.relname = ANY (deletable) THEN
            privs := 'SELECT, INSERT, UPDATE, DELETE';
        ELSE
            -- UPDATE also for the row locks (FOR KEY SHARE / FOR UPDATE) the
            -- tenant key triggers of 008 and the workers take on parents.
            privs := 'SELECT, INSERT, UPDATE';
        END IF;
        EXECUTE format('REVOKE ALL ON %s FROM PUBLIC, billing_worker, billing_operator', r.rel);
        EXECUTE format('GRANT %s ON %s TO billing_worker, billing_operator', privs, r.rel);
    END LOOP;
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA billing TO billing_worker, billing_operator;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA billing TO billing_worker, billing_operator;
    -- The policy and role creation are the migrator's.
    REVOKE ALL ON FUNCTION billing.grant_runtime_roles() FROM PUBLIC, billing_worker,
                                                             billing_operator;
    REVOKE ALL ON FUNCTION billing.ensure_role(text) FROM PUBLIC, billing_worker,
                                                         billing_operator;
END
$$;
REVOKE ALL ON FUNCTION billing.grant_runtime_roles() FROM PUBLIC;

SELECT billing.grant_runtime_roles();
