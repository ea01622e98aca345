/* invoicing.c: scheduled invoice generation (see invoicing.h).
 *
 * Owns the SQL of BILLING_RULES sections 2 and 3. The period arithmetic
 * mirrors date.c's period_for_date / period_fee (the tested C reference):
 * calendar month / quarter / year containing the business date, or the whole
 * engagement for one_time (which needs an end date); clipped to the
 * engagement's dates; not started = start after the business date; ended =
 * end before the full period began. Every amount (the package fee, prorated
 * or not, each hourly line, the tax) is rounded by
 * billing.round_to_granularity (sql/011): the exact value, in numeric (no
 * floating point), half up to a multiple of the currency's granularity, as
 * money.c's money_prorate_cur / money_hours_amount_cur / money_apply_bp_cur
 * do in C. That is to the minor unit, except in bhd, jod, kwd, omr and tnd
 * (rule 11.13: multiples of 10). Rates in line descriptions are written by
 * billing.format_amount with the currency's decimals ("150.000 kwd/h").
 */
#include "ledgerline/invoicing.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/log.h"

/* The batch: current engagements of the shard (and firm), keyset over id.
 * $1 last id, $2 shards, $3 shard, $4 firm id or 0, $5 batch size.
 * A shard is a set of firms (firm id modulo shards), not of engagement ids:
 * a batch takes the legal-number counters of every firm it invoices (rule
 * 12.1, gapless) until it commits, so with id shards every batch of every
 * shard held the same counters and two workers were no faster than one
 * (docs/INVOICES.md "Numbering and shards"). */
#define INV_BATCH_SQL                                                                              \
    "SELECT e.id FROM billing.engagements e"                                                       \
    " WHERE e.status = 'current' AND e.id > $1::bigint"                                            \
    "   AND e.firm_id % $2::bigint = $3::bigint"                                                   \
    "   AND ($4::bigint = 0 OR e.firm_id = $4::bigint)"                                            \
    " ORDER BY e.id LIMIT $5::int"

/* The would-be invoices of a batch. $1 business date, $2 engagement ids.
 * CTEs: eng (period per schedule), todo (clipped period, fee, not yet
 * invoiced for that period), hrs (hourly groups by effective rate), lines,
 * inv (numbered invoices with subtotal and tax; engagements with no line,
 * i.e. hourly with nothing to bill, drop out here).
 * The client and "already invoiced" lookups are LATERAL ... LIMIT 1 so that
 * they stay one index probe per engagement: as plain joins the planner
 * hashed the whole clients table, and the whole invoices table for the
 * NOT EXISTS, in every batch (a tick got slower the more it had invoiced). */
#define INV_CTE_SQL                                                                                \
    "WITH eng AS ("                                                                                \
    " SELECT e.id, e.firm_id, e.client_id, e.title, e.pricing_mode,"                               \
    "  e.package_fee_cents, e.hourly_rate_cents, e.prorate_partial_periods,"                       \
    "  e.payment_terms_days, e.autopay_cadence, e.start_date, e.end_date,"                         \
    "  c.currency, c.tax_rate_bp, c.autopay_enabled, c.autopay_payment_method_id,"                 \
    "  p.full_start, p.full_end"                                                                   \
    " FROM billing.engagements e"                                                                  \
    " CROSS JOIN LATERAL (SELECT c.currency, c.tax_rate_bp, c.autopay_enabled,"                    \
    "   c.autopay_payment_method_id FROM billing.clients c"                                        \
    "  WHERE c.firm_id = e.firm_id AND c.id = e.client_id LIMIT 1) c"                              \
    " CROSS JOIN LATERAL (SELECT CASE e.package_fee_schedule"                                      \
    "    WHEN 'one_time' THEN e.start_date"                                                        \
    "    ELSE date_trunc(u.unit, $1::date::timestamp)::date END AS full_start,"                    \
    "   CASE e.package_fee_schedule WHEN 'one_time' THEN e.end_date"                               \
    "    ELSE (date_trunc(u.unit, $1::date::timestamp) + u.len"                                    \
    "          - interval '1 day')::date END AS full_end"                                          \
    "   FROM (SELECT CASE e.package_fee_schedule"                                                  \
    "          WHEN 'monthly' THEN 'month' WHEN 'quarterly' THEN 'quarter'"                        \
    "          ELSE 'year' END AS unit,"                                                           \
    "         CASE e.package_fee_schedule"                                                         \
    "          WHEN 'monthly' THEN interval '1 month'"                                             \
    "          WHEN 'quarterly' THEN interval '3 months'"                                          \
    "          ELSE interval '1 year' END AS len) u) p"                                            \
    " WHERE e.id = ANY($2::bigint[]) AND e.status = 'current'"                                     \
    "   AND e.start_date <= $1::date"                                                              \
    "   AND (e.package_fee_schedule <> 'one_time' OR e.end_date IS NOT NULL)"                      \
    "   AND (e.end_date IS NULL OR e.end_date >= p.full_start)),"                                  \
    " per AS ("                                                                                    \
    " SELECT eng.*, greatest(eng.start_date, eng.full_start) AS period_start,"                     \
    "  least(coalesce(eng.end_date, eng.full_end), eng.full_end) AS period_end"                    \
    " FROM eng),"                                                                                  \
    " todo AS ("                                                                                   \
    " SELECT per.*, CASE WHEN per.pricing_mode IN ('package', 'mixed')"                            \
    "   AND per.package_fee_cents IS NOT NULL THEN"                                                \
    "   CASE WHEN per.prorate_partial_periods AND (per.period_start <> per.full_start"             \
    "     OR per.period_end <> per.full_end)"                                                      \
    "   THEN billing.round_to_granularity(per.package_fee_cents, per.currency,"                    \
    "          per.period_end - per.period_start + 1, per.full_end - per.full_start + 1)"          \
    "   ELSE billing.round_to_granularity(per.package_fee_cents, per.currency)"                    \
    "   END END AS fee_cents"                                                                      \
    " FROM per LEFT JOIN LATERAL (SELECT true AS done FROM billing.invoices x"                     \
    "   WHERE x.engagement_id = per.id AND x.period_start = per.period_start"                      \
    "     AND x.is_auto_generated LIMIT 1) x ON true WHERE x.done IS NULL),"                       \
    " hrs AS ("                                                                                    \
    " SELECT t.engagement_id, coalesce(t.hourly_rate_cents, d.hourly_rate_cents) AS rate,"         \
    "  sum(t.hours)::numeric(12,2) AS hours, array_agg(t.id ORDER BY t.id) AS ids"                 \
    " FROM todo d JOIN billing.time_entries t ON t.engagement_id = d.id"                           \
    " WHERE d.pricing_mode IN ('hourly', 'mixed') AND t.approved"                                  \
    "   AND t.invoice_id IS NULL AND t.work_date < d.period_start"                                 \
    " GROUP BY t.engagement_id, coalesce(t.hourly_rate_cents, d.hourly_rate_cents)),"              \
    " lines AS ("                                                                                  \
    " SELECT d.id AS engagement_id, 0::bigint AS ord, 'package_fee'::text AS line_type,"           \
    "  'Package Fee - ' || d.title AS description, 1::numeric(12,2) AS quantity,"                  \
    "  d.fee_cents AS rate_cents, d.fee_cents AS amount_cents,"                                    \
    "  '{}'::bigint[] AS time_entry_ids"                                                           \
    " FROM todo d WHERE d.fee_cents IS NOT NULL"                                                   \
    " UNION ALL"                                                                                   \
    " SELECT h.engagement_id, 1 + h.rate, 'hourly',"                                               \
    "  format('Consulting hours (%sh @ %s %s/h)', h.hours,"                                        \
    "         billing.format_amount(h.rate, d.currency), d.currency),"                             \
    "  h.hours, h.rate, billing.round_to_granularity(h.hours * h.rate, d.currency),"               \
    "  h.ids"                                                                                      \
    " FROM hrs h JOIN todo d ON d.id = h.engagement_id),"                                          \
    " inv AS ("                                                                                    \
    " SELECT d.*, s.subtotal,"                                                                     \
    "  billing.round_to_granularity(s.subtotal, d.currency, d.tax_rate_bp, 10000)"                 \
    "   AS tax,"                                                                                   \
    "  CASE WHEN d.pricing_mode = 'hourly' THEN 'HRS-' ELSE 'PKG-' END"                            \
    "   || d.id || '-' || to_char(d.period_start, 'YYYY-MM-DD') AS invoice_number,"                \
    "  $1::date + d.payment_terms_days AS due_date"                                                \
    " FROM todo d JOIN (SELECT l.engagement_id, sum(l.amount_cents)::bigint AS subtotal"           \
    "   FROM lines l GROUP BY l.engagement_id) s ON s.engagement_id = d.id)"

/* Dry run: one row per would-be invoice. */
static const char inv_preview_sql[] =
    INV_CTE_SQL " SELECT i.invoice_number, i.id, i.firm_id, i.client_id,"
                "  to_char(i.period_start, 'YYYY-MM-DD'), to_char(i.period_end, 'YYYY-MM-DD'),"
                "  i.currency, i.subtotal, i.tax, i.subtotal + i.tax,"
                "  (SELECT json_agg(json_build_object('line_type', l.line_type,"
                "     'description', l.description, 'quantity', l.quantity::text,"
                "     'rate_cents', l.rate_cents, 'amount_cents', l.amount_cents,"
                "     'time_entry_ids', l.time_entry_ids) ORDER BY l.ord)"
                "   FROM lines l WHERE l.engagement_id = i.id)::text"
                " FROM inv i ORDER BY i.id";

/* Real run: the same rows written. ON CONFLICT DO NOTHING skips an invoice
 * another transaction created meanwhile (rule 1.6's unique engagement/period
 * start); everything after joins `ins`, so a skipped invoice writes nothing
 * else. The conflict target names rule 1.6's index: without one, every
 * unique index of invoices (five) is an arbiter, probed before and re-checked
 * after each row's speculative insertion (~2.5 ms per 1,000 invoices more),
 * and a clash on another one (an invoice number a manual invoice already
 * took) would silently skip the invoice; now it fails the batch with its
 * constraint's name. */
static const char inv_insert_sql[] = INV_CTE_SQL
    ","
    /* Review and legal numbers (sql/012): a firm with review_before_issue
     * gets drafts (no number, no issue, no invoice.issued); every other
     * invoice takes the next number of its firm's invoice series for the
     * year of the business date. cnt counts them per firm (one settings
     * probe per firm, not per invoice); ctr advances each firm's counter by
     * that count in one upsert, locking its row until the batch commits (in
     * firm order, so two batches lock counters in the same order); each
     * invoice's number is the counter's old value + its row_number. */
    " rv AS ("
    " SELECT i.*, coalesce(s.review, false) AS review FROM inv i"
    " LEFT JOIN LATERAL (SELECT fs.review_before_issue AS review FROM billing.firm_settings fs"
    "   WHERE fs.firm_id = i.firm_id) s ON true),"
    " cnt AS ("
    " SELECT r.firm_id, count(*) AS n, billing.legal_prefix(r.firm_id) AS prefix"
    " FROM rv r WHERE NOT r.review GROUP BY r.firm_id),"
    " ctr AS ("
    " INSERT INTO billing.legal_number_counters AS c (firm_id, series, year, last_value)"
    " SELECT k.firm_id, 'invoice', extract(year FROM $1::date)::int, k.n FROM cnt k"
    " ORDER BY k.firm_id"
    " ON CONFLICT (firm_id, series, year) DO UPDATE SET last_value = c.last_value + EXCLUDED.last_value"
    " RETURNING firm_id, last_value),"
    " nm AS ("
    " SELECT r.*, CASE WHEN r.review THEN NULL ELSE billing.format_legal_number(k.prefix,"
    "   'invoice', extract(year FROM $1::date)::int, t.last_value - k.n"
    "   + row_number() OVER (PARTITION BY r.firm_id, r.review ORDER BY r.id)) END AS legal_number"
    " FROM rv r LEFT JOIN cnt k ON k.firm_id = r.firm_id AND NOT r.review"
    " LEFT JOIN ctr t ON t.firm_id = r.firm_id AND NOT r.review),"
    " ins AS ("
    " INSERT INTO billing.invoices (firm_id, client_id, engagement_id, invoice_number,"
    "  status, currency, subtotal_cents, tax_cents, total_cents, issue_date, due_date,"
    "  period_start, period_end, is_auto_generated, autopay_opt_in, autopay_status,"
    "  autopay_cadence, autopay_payment_method_id, autopay_next_charge_at, legal_number,"
    "  issued_at)"
    " SELECT i.firm_id, i.client_id, i.id, i.invoice_number,"
    "  CASE WHEN i.review THEN 'draft' ELSE 'sent' END, i.currency,"
    "  i.subtotal, i.tax, i.subtotal + i.tax, CASE WHEN NOT i.review THEN $1::date END,"
    "  CASE WHEN NOT i.review THEN i.due_date END,"
    "  i.period_start, i.period_end, true, i.autopay_enabled,"
    "  CASE WHEN i.autopay_enabled AND NOT i.review THEN 'scheduled' ELSE 'idle' END,"
    "  i.autopay_cadence, i.autopay_payment_method_id,"
    "  CASE WHEN i.autopay_enabled AND NOT i.review THEN (CASE i.autopay_cadence"
    "    WHEN 'on_issue' THEN $1::date"
    "    WHEN 'on_due' THEN i.due_date"
    "    WHEN 'monthly' THEN date_trunc('month', i.due_date::timestamp)::date"
    "    ELSE date_trunc('quarter', i.due_date::timestamp)::date END)::timestamp"
    "    AT TIME ZONE 'UTC' END, i.legal_number, CASE WHEN NOT i.review THEN now() END"
    " FROM nm i ORDER BY i.id"
    " ON CONFLICT (engagement_id, period_start) WHERE is_auto_generated DO NOTHING"
    " RETURNING id, firm_id, client_id, engagement_id, invoice_number, currency,"
    "  subtotal_cents, tax_cents, total_cents, period_start, period_end, due_date, status,"
    "  legal_number),"
    " li AS ("
    " INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type,"
    "  description, quantity, rate_cents, amount_cents, time_entry_ids)"
    " SELECT n.id, n.firm_id, l.line_type, l.description, l.quantity, l.rate_cents,"
    "  l.amount_cents, l.time_entry_ids"
    " FROM ins n JOIN lines l ON l.engagement_id = n.engagement_id"
    " ORDER BY n.id, l.ord RETURNING 1),"
    /* "t.id = ANY (the line's ids)": a primary-key probe per billed entry.
     * (A join to unnest() made the planner hash all of time_entries, a scan
     * of the whole table per batch.) */
    " te AS ("
    " UPDATE billing.time_entries t SET invoice_id = n.id"
    " FROM ins n JOIN lines l ON l.engagement_id = n.engagement_id"
    " WHERE l.line_type = 'hourly' AND t.id = ANY (l.time_entry_ids)"
    "   AND t.invoice_id IS NULL RETURNING 1),"
    /* The audit metadata and the outbox payload are to_jsonb() of a row whose
     * column names are the keys: the same jsonb values as jsonb_build_object
     * of those keys, built in 60-75% of its time (no key/value argument
     * arrays; dates are converted by the JSON encoder, always as
     * YYYY-MM-DD whatever DateStyle, instead of by to_char). occurred_at is
     * an uncorrelated sub-select, so it is computed once per statement (an
     * InitPlan), not once per row. */
    " aud AS ("
    " INSERT INTO billing.audit_events (firm_id, category, action, severity, actor, metadata)"
    " SELECT n.firm_id, 'billing',"
    "  CASE WHEN n.invoice_number LIKE 'HRS-%' THEN 'hourly_invoice_auto_generated'"
    "   ELSE 'package_invoice_auto_generated' END, 'INFO', NULL, to_jsonb(m)"
    " FROM ins n CROSS JOIN LATERAL (SELECT n.id AS invoice_id, n.invoice_number,"
    "   n.engagement_id, n.client_id, $1::date AS business_date, n.period_start,"
    "   n.period_end, n.due_date, n.subtotal_cents, n.tax_cents, n.total_cents,"
    "   n.currency) m"
    " ORDER BY n.id RETURNING 1),"
    " ob AS ("
    " INSERT INTO billing.outbox (firm_id, topic, msg_key, payload)"
    " SELECT n.firm_id, '" INVOICING_OUTBOX_TOPIC "', n.id::text,"
    "  billing.invoice_event_payload('invoice.issued', 'invoice.issued:' || n.id, n.id,"
    "   n.firm_id, n.client_id, n.status, n.total_cents, n.currency, 0, n.legal_number)"
    " FROM ins n WHERE n.status = 'sent' ORDER BY n.id RETURNING 1)"
    " SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM li),"
    "  (SELECT count(*) FROM te), (SELECT count(*) FROM aud), (SELECT count(*) FROM ob),"
    "  (SELECT count(*) FROM ins WHERE legal_number IS NOT NULL),"
    "  (SELECT coalesce(sum(n), 0) FROM cnt)";

typedef struct {
    const invoicing_params *p;
    bool lock;       /* real run: lock the batch's engagements */
    int64_t last_id; /* keyset cursor */
    int64_t count;   /* engagements in this batch */
    char *ids;       /* "{1,2,3}" for $2 */
} invoicing_batch;

static int invoicing_batch_size(const invoicing_params *p)
{
    return p->batch_size > 0 ? p->batch_size : INVOICING_DEFAULT_BATCH;
}

/* Takes the next batch of engagement ids (locking them FOR NO KEY UPDATE on a
 * real run, so two transactions never bill one engagement's time entries at
 * once; the main statement then runs with a snapshot taken after the lock). */
static db_status invoicing_next_batch(db_conn *c, invoicing_batch *b, char *err, size_t errlen)
{
    static const char plain[] = INV_BATCH_SQL;
    static const char locked[] = INV_BATCH_SQL " FOR NO KEY UPDATE";
    char last[24], shards[24], shard[24], firm[24], lim[24];
    const char *params[] = {
        db_i64(b->last_id, last, sizeof last), db_i64(b->p->shards, shards, sizeof shards),
        db_i64(b->p->shard, shard, sizeof shard), db_i64(b->p->firm_id, firm, sizeof firm),
        db_i64(invoicing_batch_size(b->p), lim, sizeof lim)};
    db_status st;
    PGresult *r = db_exec(c, b->lock ? locked : plain, 5, params, &st, err, errlen);
    if (r == NULL)
        return st;
    int n = PQntuples(r);
    free(b->ids);
    b->ids = malloc((size_t)n * 21 + 3);
    if (b->ids == NULL) {
        PQclear(r);
        snprintf(err, errlen, "out of memory");
        return DB_TRANSIENT;
    }
    size_t off = 0;
    b->ids[off++] = '{';
    for (int i = 0; i < n; i++) {
        const char *v = PQgetvalue(r, i, 0);
        size_t len = strlen(v);
        if (i > 0)
            b->ids[off++] = ',';
        memcpy(b->ids + off, v, len);
        off += len;
        b->last_id = strtoll(v, NULL, 10);
    }
    b->ids[off++] = '}';
    b->ids[off] = '\0';
    b->count = n;
    PQclear(r);
    return DB_OK;
}

typedef struct {
    invoicing_batch batch;
    invoicing_stats *stats;
    char date[11];
} invoicing_run_ctx;

/* One batch in one transaction (called by db_run_tx). */
static db_status invoicing_run_batch(db_conn *c, void *arg, char *err, size_t errlen)
{
    invoicing_run_ctx *x = arg;
    db_status st = invoicing_next_batch(c, &x->batch, err, errlen);
    if (st != DB_OK || x->batch.count == 0)
        return st;
    const char *params[] = {x->date, x->batch.ids};
    PGresult *r = db_exec(c, inv_insert_sql, 2, params, &st, err, errlen);
    if (r == NULL)
        return st;
    /* Numbers were taken for every invoice the batch meant to issue; one
     * skipped by ON CONFLICT (another writer's invoice for that period)
     * would leave a gap: then nothing of the batch is kept, and the retry
     * sees that invoice and numbers only the others. */
    if (strcmp(PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 6)) != 0) {
        snprintf(err, errlen,
                 "could not number the batch's invoices without a gap (%s issued, %s numbers "
                 "taken); retrying",
                 PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 6));
        PQclear(r);
        return DB_TRANSIENT;
    }
    x->stats->engagements += x->batch.count;
    x->stats->invoices += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    x->stats->lines += strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    x->stats->time_entries += strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    return DB_OK;
}

static bool invoicing_params_valid(const invoicing_params *p, char *err, size_t errlen)
{
    if (p == NULL || p->shards < 1 || p->shard < 0 || p->shard >= p->shards || p->firm_id < 0) {
        snprintf(err, errlen, "invalid invoicing parameters (shard/shards/firm)");
        return false;
    }
    return true;
}

db_status invoicing_run(db_conn *c, const invoicing_params *p, invoicing_stats *out, char *err,
                        size_t errlen)
{
    invoicing_stats local = {0};
    invoicing_stats *stats = out ? out : &local;
    memset(stats, 0, sizeof *stats);
    if (!invoicing_params_valid(p, err, errlen))
        return DB_PERMANENT;
    invoicing_run_ctx x = {.batch = {.p = p, .lock = true}, .stats = stats};
    if (date_format(p->business_date, x.date, sizeof x.date) == NULL) {
        snprintf(err, errlen, "invalid business date");
        return DB_PERMANENT;
    }
    /* JIT compilation costs more than it saves on statements of one batch
     * (tens of ms each), and a misestimate could trigger it. */
    db_status st = db_command(c, "SET jit = off", 0, NULL, err, errlen);
    if (st != DB_OK)
        return st;
    for (;;) {
        int64_t before = stats->invoices;
        st = db_run_tx(c, invoicing_run_batch, &x, err, errlen);
        if (st != DB_OK || x.batch.count == 0)
            break;
        stats->batches++;
        if (stats->invoices > before) {
            char n[24], last[24];
            log_msg(LL_LOG_DEBUG, "invoicing batch committed", "business_date", x.date, "invoices",
                    db_i64(stats->invoices - before, n, sizeof n), "last_engagement_id",
                    db_i64(x.batch.last_id, last, sizeof last), NULL);
        }
        if (x.batch.count < invoicing_batch_size(p))
            break;
    }
    free(x.batch.ids);
    return st;
}

static void invoicing_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src);
}

static db_status invoicing_preview_batch(db_conn *c, invoicing_batch *b, const char *date,
                                         invoicing_preview *out, char *err, size_t errlen)
{
    const char *params[] = {date, b->ids};
    db_status st;
    PGresult *r = db_exec(c, inv_preview_sql, 2, params, &st, err, errlen);
    if (r == NULL)
        return st;
    int n = PQntuples(r);
    if (n > 0) {
        invoicing_preview_row *rows = realloc(out->rows, (out->count + (size_t)n) * sizeof *rows);
        if (rows == NULL) {
            PQclear(r);
            snprintf(err, errlen, "out of memory");
            return DB_TRANSIENT;
        }
        out->rows = rows;
    }
    for (int i = 0; i < n; i++) {
        invoicing_preview_row *row = &out->rows[out->count];
        memset(row, 0, sizeof *row);
        invoicing_copy(row->invoice_number, sizeof row->invoice_number, PQgetvalue(r, i, 0));
        row->engagement_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        row->firm_id = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        row->client_id = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        invoicing_copy(row->period_start, sizeof row->period_start, PQgetvalue(r, i, 4));
        invoicing_copy(row->period_end, sizeof row->period_end, PQgetvalue(r, i, 5));
        invoicing_copy(row->currency, sizeof row->currency, PQgetvalue(r, i, 6));
        row->subtotal_cents = strtoll(PQgetvalue(r, i, 7), NULL, 10);
        row->tax_cents = strtoll(PQgetvalue(r, i, 8), NULL, 10);
        row->total_cents = strtoll(PQgetvalue(r, i, 9), NULL, 10);
        row->lines_json = strdup(PQgetisnull(r, i, 10) ? "[]" : PQgetvalue(r, i, 10));
        out->count++;
        if (row->lines_json == NULL) {
            PQclear(r);
            snprintf(err, errlen, "out of memory");
            return DB_TRANSIENT;
        }
    }
    PQclear(r);
    return DB_OK;
}

db_status invoicing_preview_run(db_conn *c, const invoicing_params *p, invoicing_preview *out,
                                char *err, size_t errlen)
{
    out->rows = NULL;
    out->count = 0;
    if (!invoicing_params_valid(p, err, errlen))
        return DB_PERMANENT;
    char date[11];
    if (date_format(p->business_date, date, sizeof date) == NULL) {
        snprintf(err, errlen, "invalid business date");
        return DB_PERMANENT;
    }
    db_status st =
        db_command(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err, errlen);
    if (st != DB_OK)
        return st;
    invoicing_batch b = {.p = p, .lock = false};
    for (;;) {
        st = invoicing_next_batch(c, &b, err, errlen);
        if (st != DB_OK || b.count == 0)
            break;
        st = invoicing_preview_batch(c, &b, date, out, err, errlen);
        if (st != DB_OK || b.count < invoicing_batch_size(p))
            break;
    }
    free(b.ids);
    char e2[256];
    db_command(c, st == DB_OK ? "COMMIT" : "ROLLBACK", 0, NULL, e2, sizeof e2);
    return st;
}

void invoicing_preview_free(invoicing_preview *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++)
        free(p->rows[i].lines_json);
    free(p->rows);
    p->rows = NULL;
    p->count = 0;
}
