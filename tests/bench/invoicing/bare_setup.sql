-- bare_setup.sql: copies of the tables floor.sql writes, in schema `bare`,
-- with only their primary keys: no foreign keys, CHECKs, triggers or
-- secondary indexes (identity and defaults kept). run.sh runs floor.sql
-- against them (table names rewritten billing. -> bare.) as the "bare
-- floor": what this machine does for the same rows with no constraint or
-- index maintenance beyond one primary key per table. time_entries is
-- copied with its rows (the floor reads and updates them); clients and
-- engagements are only read and stay in billing. Untimed.
\set ON_ERROR_STOP on
CREATE SCHEMA bare;
CREATE TABLE bare.invoices (LIKE billing.invoices INCLUDING DEFAULTS INCLUDING IDENTITY);
CREATE TABLE bare.invoice_line_items
    (LIKE billing.invoice_line_items INCLUDING DEFAULTS INCLUDING IDENTITY);
CREATE TABLE bare.audit_events (LIKE billing.audit_events INCLUDING DEFAULTS INCLUDING IDENTITY);
CREATE TABLE bare.outbox (LIKE billing.outbox INCLUDING DEFAULTS INCLUDING IDENTITY);
CREATE TABLE bare.time_entries (LIKE billing.time_entries INCLUDING DEFAULTS INCLUDING IDENTITY);
INSERT INTO bare.time_entries SELECT * FROM billing.time_entries;
ALTER TABLE bare.invoices ADD PRIMARY KEY (id);
ALTER TABLE bare.invoice_line_items ADD PRIMARY KEY (id);
ALTER TABLE bare.audit_events ADD PRIMARY KEY (id);
ALTER TABLE bare.outbox ADD PRIMARY KEY (id);
ALTER TABLE bare.time_entries ADD PRIMARY KEY (id);
VACUUM ANALYZE bare.time_entries;
