/* cmd_invoice.c: manual invoices.
 *
 * `billingctl invoice create --client N [--engagement N | --override-reason
 *  TEXT --override-by NAME] --line TYPE:QUANTITY:RATE_CENTS:DESCRIPTION ...
 *  [--date D] [--by NAME]`
 *   One transaction: the invoice (status sent, issue date = --date or today
 *   UTC, due = issue + the engagement's payment terms, 30 without one; tax
 *   from the client's rate, half up; autopay opt-in and method from the
 *   client, cadence from the engagement), its lines (amount = quantity x
 *   rate, half up; quantity has at most two decimals), the audit event
 *   `invoice_created` and the outbox row for `invoice.issued` (topic
 *   "invoices" unprefixed, key = invoice id, payload = the contract's event).
 *   Without --engagement and without an override, the database trigger links
 *   the client's current engagement or refuses (rule 1.2), shown as exit 1.
 *   Line amounts and the tax are rounded half up to a multiple of the
 *   client's currency's granularity (rule 11.13: 10 minor units in bhd,
 *   jod, kwd, omr, tnd; the minor unit otherwise), once from the exact
 *   value (money.h's *_cur), as the invoicing SQL does.
 *   Numbers are INV-<firm id>-<NNNNNN>, the next free one of the firm (the
 *   firm row is locked FOR NO KEY UPDATE while numbering, so two operators
 *   never collide).
 * `billingctl invoice show INVOICE_ID`: header, lines and payments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/money.h"
#include "ledgerline/vocab.h"

#define INVOICE_MAX_LINES 200

typedef struct {
    int64_t client_id, engagement_id;
    const char *override_reason, *override_by, *by;
    civil_date issue;
    inv_line lines[INVOICE_MAX_LINES];
    int nlines;
    /* results */
    int64_t invoice_id;
    char number[64];
} create_arg;

/* Pure (no database): fuzzed by tests/fuzz/fuzz_cli.c. */
bool invoice_cli_parse_line(const char *spec, inv_line *l)
{
    const char *c1 = strchr(spec, ':');
    if (c1 == NULL)
        return false;
    const char *c2 = strchr(c1 + 1, ':');
    if (c2 == NULL)
        return false;
    const char *c3 = strchr(c2 + 1, ':');
    if (c3 == NULL)
        return false;
    size_t tl = (size_t)(c1 - spec);
    if (tl == 0 || tl >= sizeof l->type_buf)
        return false;
    memcpy(l->type_buf, spec, tl);
    l->type_buf[tl] = '\0';
    if (ll_vocab_find(&ll_line_types, l->type_buf) < 0)
        return false;
    l->type = l->type_buf;
    char q[32], r[24];
    size_t ql = (size_t)(c2 - c1 - 1), rl = (size_t)(c3 - c2 - 1);
    if (ql == 0 || ql >= sizeof q || rl == 0 || rl >= sizeof r)
        return false;
    memcpy(q, c1 + 1, ql);
    q[ql] = '\0';
    memcpy(r, c2 + 1, rl);
    r[rl] = '\0';
    if (money_parse_hours(q, &l->hundredths) != MONEY_OK || l->hundredths <= 0)
        return false;
    if (!args_parse_cents(r, &l->rate))
        return false;
    if (money_hours_amount(l->hundredths, l->rate, &l->amount) != MONEY_OK)
        return false;
    snprintf(l->quantity, sizeof l->quantity, "%lld.%02lld", (long long)(l->hundredths / 100),
             (long long)(l->hundredths % 100));
    snprintf(l->rate_s, sizeof l->rate_s, "%lld", (long long)l->rate);
    snprintf(l->amount_s, sizeof l->amount_s, "%lld", (long long)l->amount);
    l->description = c3 + 1;
    return true;
}

/* The line's amount in the invoice's currency: quantity x rate rounded half
 * up once to the currency's granularity (rule 11.13). Recomputed from the
 * parsed quantity and rate, so a retried transaction gets the same. */
static db_status invoice_line_amount(inv_line *l, const char *currency, char *err, size_t errlen)
{
    money_status ms = money_hours_amount_cur(l->hundredths, l->rate, currency, &l->amount);
    if (ms != MONEY_OK) {
        snprintf(err, errlen, "%s",
                 ms == MONEY_OVERFLOW ? "cannot compute a line amount: it overflows"
                                      : "cannot compute a line amount: the client's currency "
                                        "is not a currency code");
        return DB_PERMANENT;
    }
    snprintf(l->amount_s, sizeof l->amount_s, "%lld", (long long)l->amount);
    return DB_OK;
}

static db_status create_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    create_arg *a = varg;
    db_status st;
    const char *pc[] = {DB_I64(a->client_id)};
    PGresult *r = db_exec(c,
                          "SELECT firm_id, tax_rate_bp, autopay_enabled::text, "
                          "autopay_payment_method_id, currency FROM billing.clients WHERE id = $1",
                          1, pc, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "no such client: %lld", (long long)a->client_id);
        return DB_PERMANENT;
    }
    int64_t firm = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    int64_t bp = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    char autopay[8], method[256];
    snprintf(autopay, sizeof autopay, "%s", PQgetvalue(r, 0, 2));
    bool has_method = !PQgetisnull(r, 0, 3);
    snprintf(method, sizeof method, "%s", PQgetvalue(r, 0, 3));
    char currency[MONEY_CURRENCY_LEN + 1];
    snprintf(currency, sizeof currency, "%s", PQgetvalue(r, 0, 4));
    PQclear(r);

    if (a->engagement_id != 0) {
        const char *pe[] = {DB_I64(a->engagement_id), DB_I64(a->client_id)};
        r = db_exec(c, "SELECT 1 FROM billing.engagements WHERE id = $1 AND client_id = $2", 2, pe,
                    &st, err, errlen);
        if (r == NULL)
            return st;
        int found = PQntuples(r);
        PQclear(r);
        if (!found) {
            snprintf(err, errlen, "engagement %lld is not an engagement of client %lld",
                     (long long)a->engagement_id, (long long)a->client_id);
            return DB_PERMANENT;
        }
    }

    /* Numbering: lock the firm row (NO KEY UPDATE leaves foreign-key checks
     * of other writers alone) and take the next INV-<firm>- number. */
    const char *pf[] = {DB_I64(firm)};
    st = db_command(c, "SELECT 1 FROM billing.firms WHERE id = $1 FOR NO KEY UPDATE", 1, pf, err,
                    errlen);
    if (st != DB_OK)
        return st;
    r = db_exec(c,
                "SELECT coalesce(max(substring(invoice_number FROM '^INV-[0-9]+-([0-9]{1,18})$')"
                "::bigint), 0) + 1 FROM billing.invoices WHERE firm_id = $1 "
                "AND invoice_number LIKE 'INV-' || $1 || '-%'",
                1, pf, &st, err, errlen);
    if (r == NULL)
        return st;
    snprintf(a->number, sizeof a->number, "INV-%lld-%06lld", (long long)firm,
             strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);

    int64_t subtotal = 0, tax = 0, total = 0;
    for (int i = 0; i < a->nlines; i++) {
        if (invoice_line_amount(&a->lines[i], currency, err, errlen) != DB_OK)
            return DB_PERMANENT;
        if (money_add(subtotal, a->lines[i].amount, &subtotal) != MONEY_OK) {
            snprintf(err, errlen, "invoice total overflows");
            return DB_PERMANENT;
        }
    }
    if (money_apply_bp_cur(subtotal, bp, currency, &tax) != MONEY_OK ||
        money_add(subtotal, tax, &total) != MONEY_OK) {
        snprintf(err, errlen, "invoice total overflows");
        return DB_PERMANENT;
    }
    char issue[11];
    date_format(a->issue, issue, sizeof issue);
    bool override = a->override_reason != NULL;
    const char *pi[] = {DB_I64(firm),
                        DB_I64(a->client_id),
                        a->engagement_id ? DB_I64(a->engagement_id) : NULL,
                        override ? "true" : "false",
                        a->override_reason,
                        a->override_by,
                        a->number,
                        DB_I64(subtotal),
                        DB_I64(tax),
                        DB_I64(total),
                        issue,
                        autopay,
                        has_method ? method : NULL,
                        currency};
    r = db_exec(c,
                "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                "engagement_override, engagement_override_reason, engagement_override_by, "
                "invoice_number, status, currency, subtotal_cents, tax_cents, total_cents, "
                "issue_date, due_date, is_auto_generated, autopay_opt_in, "
                "autopay_payment_method_id, issued_at, legal_number) "
                "SELECT $1, $2, $3, $4::boolean, $5, $6, $7, 'sent', $14, $8, $9, $10, "
                "$11::date, $11::date + 30, false, $12::boolean, $13, now(), "
                /* issued now: the next legal number of the firm (sql/012) */
                "billing.format_legal_number(billing.legal_prefix($1::bigint), 'invoice', "
                " extract(year FROM $11::date)::int, billing.take_legal_numbers($1::bigint, "
                " 'invoice', extract(year FROM $11::date)::int, 1)) "
                "FROM billing.clients cl WHERE cl.id = $2 RETURNING id",
                14, pi, &st, err, errlen);
    if (r == NULL)
        return st;
    a->invoice_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    const char *pid[] = {DB_I64(a->invoice_id)};
    st = db_command(c,
                    "UPDATE billing.invoices i SET due_date = i.issue_date + e.payment_terms_days, "
                    "autopay_cadence = e.autopay_cadence FROM billing.engagements e "
                    "WHERE i.id = $1 AND e.id = i.engagement_id",
                    1, pid, err, errlen);
    if (st != DB_OK)
        return st;
    for (int i = 0; i < a->nlines; i++) {
        const inv_line *l = &a->lines[i];
        const char *pl[] = {DB_I64(a->invoice_id), DB_I64(firm), l->type,    l->description,
                            l->quantity,           l->rate_s,    l->amount_s};
        st = db_command(c,
                        "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
                        "description, quantity, rate_cents, amount_cents) "
                        "VALUES ($1, $2, $3, $4, $5::numeric, $6, $7)",
                        7, pl, err, errlen);
        if (st != DB_OK)
            return st;
    }
    const char *actor = a->by ? a->by : a->override_by;
    const char *pa[] = {DB_I64(a->invoice_id), actor};
    st = db_command(
        c,
        "WITH i AS (SELECT * FROM billing.invoices WHERE id = $1), "
        "aud AS (INSERT INTO billing.audit_events(firm_id, category, action, severity, actor, "
        "metadata) SELECT firm_id, 'billing', 'invoice_created', 'INFO', $2, "
        "jsonb_build_object('invoice_id', id, 'invoice_number', invoice_number, 'client_id', "
        "client_id, 'engagement_id', engagement_id, 'engagement_override', engagement_override, "
        "'subtotal_cents', subtotal_cents, 'tax_cents', tax_cents, 'total_cents', total_cents, "
        "'currency', currency, 'issue_date', issue_date, 'due_date', due_date, 'manual', true) "
        "FROM i RETURNING id) "
        /* the one producer of invoice events (sql/012): legal_number and
         * amount_paid_cents in the payload, as the contract names them */
        "SELECT billing.invoice_event($1, 'invoice.issued') FROM aud",
        2, pa, err, errlen);
    return st;
}

int cmd_invoice_create(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    create_arg *a = calloc(1, sizeof *a);
    if (a == NULL)
        return CLI_REFUSED;
    int rc = CLI_OK;
    const char *client = NULL, *eng = NULL, *date = NULL, *line = NULL;
    for (int i = 1; i < argc; i++) {
        int g;
        if ((g = args_opt(argc, argv, &i, "--client", &client)) ||
            (g = args_opt(argc, argv, &i, "--engagement", &eng)) ||
            (g = args_opt(argc, argv, &i, "--override-reason", &a->override_reason)) ||
            (g = args_opt(argc, argv, &i, "--override-by", &a->override_by)) ||
            (g = args_opt(argc, argv, &i, "--date", &date)) ||
            (g = args_opt(argc, argv, &i, "--by", &a->by))) {
            if (g < 0) {
                rc = args_usage(usage, "%s needs a value", argv[i]);
                goto out;
            }
            continue;
        }
        if ((g = args_opt(argc, argv, &i, "--line", &line)) != 0) {
            if (g < 0 || a->nlines == INVOICE_MAX_LINES ||
                !invoice_cli_parse_line(line, &a->lines[a->nlines])) {
                rc = args_usage(usage,
                                "bad --line '%s': want TYPE:QUANTITY:RATE_CENTS:DESCRIPTION with "
                                "TYPE package_fee|hourly|adjustment, QUANTITY > 0 with at most "
                                "two decimals, RATE_CENTS a whole number",
                                g < 0 ? "" : line);
                goto out;
            }
            a->nlines++;
            continue;
        }
        rc = args_usage(usage, "unexpected argument '%s'", argv[i]);
        goto out;
    }
    if (client == NULL || !args_parse_id(client, &a->client_id)) {
        rc = args_usage(usage, "--client N (a positive integer id) is required");
        goto out;
    }
    if (eng != NULL && !args_parse_id(eng, &a->engagement_id)) {
        rc = args_usage(usage, "--engagement '%s' is not an id", eng);
        goto out;
    }
    if ((a->override_reason != NULL) != (a->override_by != NULL)) {
        rc = args_usage(usage, "--override-reason and --override-by go together");
        goto out;
    }
    if (a->override_reason != NULL &&
        (a->override_reason[0] == '\0' || a->override_by[0] == '\0')) {
        rc = args_usage(usage, "--override-reason and --override-by must not be empty");
        goto out;
    }
    if (a->override_reason != NULL && eng != NULL) {
        rc = args_usage(usage, "give either --engagement or an override, not both");
        goto out;
    }
    if (a->nlines == 0) {
        rc = args_usage(usage, "give at least one --line");
        goto out;
    }
    if (date != NULL) {
        if (!date_parse(date, &a->issue)) {
            rc = args_usage(usage, "--date '%s' is not a date (YYYY-MM-DD)", date);
            goto out;
        }
    } else {
        a->issue = date_today_utc();
    }
    db_conn *c = args_connect();
    if (c == NULL) {
        rc = CLI_REFUSED;
        goto out;
    }
    char err[1024];
    db_status st = db_run_tx(c, create_work, a, err, sizeof err);
    db_close(c);
    if (st != DB_OK) {
        rc = args_refused("invoice create", err);
        goto out;
    }
    if (json)
        printf("{\"invoice_id\":%lld,\"invoice_number\":\"%s\"}\n", (long long)a->invoice_id,
               a->number);
    else
        printf("created invoice %lld (%s)\n", (long long)a->invoice_id, a->number);
out:
    free(a);
    return rc;
}

/* ---- invoice show ------------------------------------------------------- */

typedef struct {
    int64_t id;
    char *json;
} show_arg;

static db_status show_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    show_arg *a = varg;
    const char *p[] = {DB_I64(a->id)};
    db_status st;
    PGresult *r = db_exec(
        c,
        "SELECT jsonb_build_object("
        "'invoice', jsonb_build_object('invoice_id', i.id, 'invoice_number', i.invoice_number, "
        "'firm_id', i.firm_id, 'client_id', i.client_id, 'engagement_id', i.engagement_id, "
        "'engagement_override', i.engagement_override, 'engagement_override_reason', "
        "i.engagement_override_reason, 'engagement_override_by', i.engagement_override_by, "
        "'status', i.status, 'currency', i.currency, 'subtotal_cents', i.subtotal_cents, "
        "'tax_cents', i.tax_cents, 'total_cents', i.total_cents, 'amount_paid_cents', "
        "i.amount_paid_cents, 'refunded_cents', i.refunded_cents, 'issue_date', i.issue_date, "
        "'due_date', i.due_date, 'paid_date', i.paid_date, 'period_start', i.period_start, "
        "'period_end', i.period_end, 'is_auto_generated', i.is_auto_generated, "
        "'autopay_opt_in', i.autopay_opt_in, 'autopay_status', i.autopay_status, "
        "'legal_number', i.legal_number, 'credited_cents', i.credited_cents, "
        "'balance_due_cents', billing.balance_due(i.total_cents, i.amount_paid_cents, "
        "i.credited_cents), 'issued_by', i.issued_by, 'voided_by', i.voided_by, "
        "'void_reason', i.void_reason), "
        "'credit_notes', (SELECT coalesce(jsonb_agg(jsonb_build_object('credit_note_id', n.id, "
        "'legal_number', n.legal_number, 'total_cents', n.total_cents, 'applied_to_due_cents', "
        "n.applied_to_due_cents, 'refunded_cents', n.refunded_cents, 'credited_cents', "
        "n.credited_cents, 'reason', n.reason) ORDER BY n.id), '[]'::jsonb) "
        "FROM billing.credit_notes n WHERE n.invoice_id = i.id), "
        "'lines', (SELECT coalesce(jsonb_agg(jsonb_build_object('line_id', l.id, 'line_type', "
        "l.line_type, 'description', l.description, 'quantity', l.quantity::text, 'rate_cents', "
        "l.rate_cents, 'amount_cents', l.amount_cents, 'time_entry_ids', "
        "to_jsonb(l.time_entry_ids)) ORDER BY l.id), '[]'::jsonb) "
        "FROM billing.invoice_line_items l WHERE l.invoice_id = i.id), "
        "'payments', (SELECT coalesce(jsonb_agg(jsonb_build_object('payment_id', p.id, "
        "'amount_cents', p.amount_cents, 'source', p.source, 'stripe_payment_intent_id', "
        "p.stripe_payment_intent_id, 'received_at', to_char(p.received_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) ORDER BY p.id), '[]'::jsonb) "
        "FROM billing.payments p WHERE p.invoice_id = i.id))::text "
        "FROM billing.invoices i WHERE i.id = $1",
        1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "no such invoice: %lld", (long long)a->id);
        return DB_PERMANENT;
    }
    a->json = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return a->json ? DB_OK : DB_TRANSIENT;
}

static const char *js(json_t *o, const char *k, char *buf, size_t n)
{
    json_t *v = json_object_get(o, k);
    if (json_is_string(v))
        snprintf(buf, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, n, "%s", json_is_true(v) ? "yes" : "no");
    else
        snprintf(buf, n, "-");
    return buf;
}

static void print_table(const char *text)
{
    json_t *root = json_loads(text, 0, NULL);
    if (root == NULL) {
        printf("%s\n", text);
        return;
    }
    json_t *inv = json_object_get(root, "invoice");
    static const char *const fields[] = {"invoice_id",
                                         "invoice_number",
                                         "legal_number",
                                         "firm_id",
                                         "client_id",
                                         "engagement_id",
                                         "engagement_override",
                                         "engagement_override_reason",
                                         "engagement_override_by",
                                         "status",
                                         "currency",
                                         "subtotal_cents",
                                         "tax_cents",
                                         "total_cents",
                                         "amount_paid_cents",
                                         "credited_cents",
                                         "balance_due_cents",
                                         "issue_date",
                                         "due_date",
                                         "paid_date",
                                         "period_start",
                                         "period_end",
                                         "is_auto_generated",
                                         "autopay_status"};
    char b[512];
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        printf("%-28s %s\n", fields[i], js(inv, fields[i], b, sizeof b));
    printf("\nlines\n%-8s %-12s %10s %12s %12s  %s\n", "id", "type", "quantity", "rate_cents",
           "amount_cents", "description");
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(root, "lines"), i, l)
    {
        char b1[32], b2[32], b3[32], b4[32], b5[32], b6[512];
        printf("%-8s %-12s %10s %12s %12s  %s\n", js(l, "line_id", b1, sizeof b1),
               js(l, "line_type", b2, sizeof b2), js(l, "quantity", b3, sizeof b3),
               js(l, "rate_cents", b4, sizeof b4), js(l, "amount_cents", b5, sizeof b5),
               js(l, "description", b6, sizeof b6));
    }
    printf("\npayments\n%-8s %12s %-8s %-22s %s\n", "id", "amount_cents", "source", "received_at",
           "payment_intent");
    json_array_foreach(json_object_get(root, "payments"), i, l)
    {
        char b1[32], b2[32], b3[32], b4[40], b5[256];
        printf("%-8s %12s %-8s %-22s %s\n", js(l, "payment_id", b1, sizeof b1),
               js(l, "amount_cents", b2, sizeof b2), js(l, "source", b3, sizeof b3),
               js(l, "received_at", b4, sizeof b4),
               js(l, "stripe_payment_intent_id", b5, sizeof b5));
    }
    printf("\ncredit notes\n%-8s %-24s %12s %12s %12s %12s  %s\n", "id", "legal_number",
           "total_cents", "off_due", "refunded", "credited", "reason");
    json_array_foreach(json_object_get(root, "credit_notes"), i, l)
    {
        char b1[32], b2[80], b3[32], b4[32], b5[32], b6[32], b7[512];
        printf("%-8s %-24s %12s %12s %12s %12s  %s\n", js(l, "credit_note_id", b1, sizeof b1),
               js(l, "legal_number", b2, sizeof b2), js(l, "total_cents", b3, sizeof b3),
               js(l, "applied_to_due_cents", b4, sizeof b4), js(l, "refunded_cents", b5, sizeof b5),
               js(l, "credited_cents", b6, sizeof b6), js(l, "reason", b7, sizeof b7));
    }
    json_decref(root);
}

int cmd_invoice_show(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    show_arg a = {0};
    for (int i = 1; i < argc; i++) {
        if (a.id == 0 && args_parse_id(argv[i], &a.id))
            continue;
        else
            return args_usage(usage,
                              "unexpected argument '%s' (INVOICE_ID is a positive "
                              "integer)",
                              argv[i]);
    }
    if (a.id == 0)
        return args_usage(usage, "give the INVOICE_ID");
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st = db_run_tx(c, show_work, &a, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused("invoice show", err);
    if (json)
        printf("%s\n", a.json);
    else
        print_table(a.json);
    free(a.json);
    return CLI_OK;
}
