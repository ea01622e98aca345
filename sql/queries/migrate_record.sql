-- migrate_record.sql (common/migrate.c): records an applied migration, in
-- the transaction that applied it.
-- $1: its version (the file's number); $2: its name; $3: its SHA-256 (hex).
INSERT INTO billing.schema_migrations (version, name, checksum)
VALUES ($1, $2, $3)
