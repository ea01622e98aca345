/* invoicing.h: scheduled invoice generation (BILLING_RULES sections 2, 3, 9).
 *
 * Owns the one SQL definition of "what invoices does the tick of business date
 * D create": package fees per schedule (monthly, quarterly, annual,
 * one_time), clipped to the engagement's dates, optionally prorated; hourly
 * lines in arrears (approved, uninvoiced entries dated before the period
 * start, grouped by effective rate); PKG-<id>-<period start> for package and
 * mixed engagements, HRS-<id>-<period start> for hourly ones that have
 * something to bill.
 *
 * The real run and the dry run share that SQL, so a dry run lists exactly what
 * a real run would create. Work is set-based: engagements are taken in
 * batches (keyset over id, default INVOICING_DEFAULT_BATCH), and each batch is one transaction
 * of two statements: lock the batch's engagements, then one INSERT ... SELECT
 * chain that writes invoices, lines, marks time entries invoiced, audit
 * events and outbox rows (`invoice.issued`, topic "invoices" without the
 * prefix; the outbox relay adds KAFKA_TOPIC_PREFIX). A replay creates nothing:
 * the unique (engagement, period start) index plus ON CONFLICT DO NOTHING.
 */
#ifndef LEDGERLINE_INVOICING_H
#define LEDGERLINE_INVOICING_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"

/* Engagements per transaction. Measured (docs/BENCHMARKS.md): per-batch
 * costs (planning the batch statement, the statement triggers, commit) are
 * ~15% of the work at 1,000 and ~3% at 5,000; a batch of 5,000 holds its
 * engagements' row locks for a few hundred ms. */
#define INVOICING_DEFAULT_BATCH 5000
#define INVOICING_OUTBOX_TOPIC "invoices" /* unprefixed; see outbox.h */

typedef struct {
    civil_date business_date;
    int shard;       /* engagements with id % shards == shard */
    int shards;      /* >= 1 */
    int64_t firm_id; /* 0 = every firm */
    int batch_size;  /* engagements per transaction; 0 = INVOICING_DEFAULT_BATCH */
} invoicing_params;

typedef struct {
    int64_t engagements;  /* current engagements examined */
    int64_t invoices;     /* invoices created */
    int64_t lines;        /* line items created */
    int64_t time_entries; /* time entries marked invoiced */
    int64_t batches;      /* transactions committed */
} invoicing_stats;

/* Real run. Each batch commits in its own transaction, so it must not be
 * called inside an open transaction. On a failure the batches already
 * committed stay (running again completes the rest and duplicates nothing).
 * Returns DB_OK, or DB_TRANSIENT / DB_PERMANENT with err. */
db_status invoicing_run(db_conn *c, const invoicing_params *p, invoicing_stats *out, char *err,
                        size_t errlen);

/* One would-be invoice of a dry run. */
typedef struct {
    char invoice_number[64];
    int64_t engagement_id;
    int64_t firm_id;
    int64_t client_id;
    char period_start[11]; /* YYYY-MM-DD */
    char period_end[11];
    char currency[4];
    int64_t subtotal_cents;
    int64_t tax_cents;
    int64_t total_cents;
    char *lines_json; /* JSON array of {line_type, description, quantity (text "10.00"),
                         rate_cents, amount_cents, time_entry_ids}; malloc'd */
} invoicing_preview_row;

typedef struct {
    invoicing_preview_row *rows;
    size_t count;
} invoicing_preview;

/* Dry run: the invoices invoicing_run would create now, ordered by
 * engagement id, in one read-only transaction. Writes nothing.
 * out is always initialised; free it with invoicing_preview_free. */
db_status invoicing_preview_run(db_conn *c, const invoicing_params *p, invoicing_preview *out,
                                char *err, size_t errlen);
void invoicing_preview_free(invoicing_preview *p);

#endif
