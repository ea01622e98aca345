-- migrate_bookkeeping.sql (common/migrate.c): the table that records each
-- applied migration and its checksum (created before the first migration;
-- the schema itself by the statement before it).
-- No parameters.
CREATE TABLE IF NOT EXISTS billing.schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
