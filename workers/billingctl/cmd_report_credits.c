/* cmd_report_credits.c: `billingctl report credits --firm-id N [--date D]`,
 * the credit reconciliation of BILLING_RULES sections 4 and 10 for one firm
 * and one UTC day (default today), per currency (the client's currency):
 * credits issued, applied (invoice_payment / partial_payment debits),
 * expired and refunded that day, the net change, the opening and closing
 * (outstanding) balance, and two checks: the outstanding balance summed from
 * the firm's ledger equals the sum of the firm's clients' balances (computed
 * per client, from the client side), and opening + net change = outstanding.
 * A failed check prints the report and exits 1. Definitions: docs/CREDITS.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"

typedef struct {
    int64_t firm;
    char date[11];
    char *json;
} credits_arg;

/* Entries up to the end of the day; the day is [D 00:00Z, D+1 00:00Z). */
static const char *const CREDITS_SQL =
    "WITH "
    "lo AS (SELECT ($2::date)::timestamp AT TIME ZONE 'UTC' AS t), "
    "hi AS (SELECT ($2::date + 1)::timestamp AT TIME ZONE 'UTC' AS t), "
    "e AS (SELECT c.currency, l.client_id, l.entry_type, l.use, l.amount_cents, "
    "  CASE l.entry_type WHEN 'credit' THEN l.amount_cents ELSE -l.amount_cents END AS signed, "
    "  l.created_at >= lo.t AS today "
    "  FROM billing.credit_ledger l JOIN billing.clients c ON c.id = l.client_id, lo, hi "
    "  WHERE l.firm_id = $1 AND l.created_at < hi.t), "
    "day AS (SELECT currency, "
    "  count(*) FILTER (WHERE entry_type = 'credit') AS issued_n, "
    "  coalesce(sum(amount_cents) FILTER (WHERE entry_type = 'credit'), 0) AS issued, "
    "  count(*) FILTER (WHERE use IN ('invoice_payment', 'partial_payment')) AS applied_n, "
    "  coalesce(sum(amount_cents) FILTER (WHERE use IN ('invoice_payment', 'partial_payment')), "
    "    0) AS applied, "
    "  count(*) FILTER (WHERE use = 'expired') AS expired_n, "
    "  coalesce(sum(amount_cents) FILTER (WHERE use = 'expired'), 0) AS expired, "
    "  count(*) FILTER (WHERE use = 'refunded') AS refunded_n, "
    "  coalesce(sum(amount_cents) FILTER (WHERE use = 'refunded'), 0) AS refunded, "
    "  coalesce(sum(signed), 0) AS net "
    "  FROM e WHERE today GROUP BY currency), "
    "ledger AS (SELECT currency, coalesce(sum(signed) FILTER (WHERE NOT today), 0) AS opening, "
    "  sum(signed) AS outstanding FROM e GROUP BY currency), "
    /* From the client side: each of the firm's clients' balance at the end
     * of the day (its ledger entries by client, whichever firm they carry). */
    "cb AS (SELECT c.currency, c.id, coalesce(sum(CASE l.entry_type WHEN 'credit' "
    "  THEN l.amount_cents ELSE -l.amount_cents END), 0) AS balance "
    "  FROM billing.clients c LEFT JOIN billing.credit_ledger l ON l.client_id = c.id "
    "  AND l.created_at < (SELECT t FROM hi) WHERE c.firm_id = $1 GROUP BY c.currency, c.id), "
    "clients AS (SELECT currency, sum(balance) AS balance_sum, "
    "  count(*) FILTER (WHERE balance > 0) AS with_balance, "
    "  count(*) FILTER (WHERE balance < 0) AS negative FROM cb GROUP BY currency), "
    "cur AS (SELECT currency FROM clients UNION SELECT currency FROM ledger), "
    "res AS (SELECT cur.currency, coalesce(d.issued_n, 0) AS issued_n, "
    "  coalesce(d.issued, 0) AS issued, coalesce(d.applied_n, 0) AS applied_n, "
    "  coalesce(d.applied, 0) AS applied, coalesce(d.expired_n, 0) AS expired_n, "
    "  coalesce(d.expired, 0) AS expired, coalesce(d.refunded_n, 0) AS refunded_n, "
    "  coalesce(d.refunded, 0) AS refunded, coalesce(d.net, 0) AS net, "
    "  coalesce(lg.opening, 0) AS opening, coalesce(lg.outstanding, 0) AS outstanding, "
    "  coalesce(cl.balance_sum, 0) AS balance_sum, coalesce(cl.with_balance, 0) AS with_balance, "
    "  coalesce(cl.negative, 0) AS negative "
    "  FROM cur LEFT JOIN day d USING (currency) LEFT JOIN ledger lg USING (currency) "
    "  LEFT JOIN clients cl USING (currency)) "
    "SELECT jsonb_build_object('firm_id', $1::bigint, 'date', $2::text, "
    "  'balanced', coalesce(bool_and(outstanding = balance_sum AND opening + net = outstanding "
    "    AND negative = 0), true), "
    "  'currencies', coalesce(jsonb_agg(jsonb_build_object('currency', currency, "
    "  'credits_issued_count', issued_n, 'credits_issued_cents', issued, "
    "  'credits_applied_count', applied_n, 'credits_applied_cents', applied, "
    "  'credits_expired_count', expired_n, 'credits_expired_cents', expired, "
    "  'credits_refunded_count', refunded_n, 'credits_refunded_cents', refunded, "
    "  'net_change_cents', net, 'opening_balance_cents', opening, "
    "  'outstanding_balance_cents', outstanding, 'clients_balance_sum_cents', balance_sum, "
    "  'clients_with_balance', with_balance, "
    "  'balanced', outstanding = balance_sum AND opening + net = outstanding AND negative = 0) "
    "  ORDER BY currency), '[]'::jsonb))::text FROM res";

static db_status credits_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    credits_arg *a = varg;
    const char *p[] = {DB_I64(a->firm), a->date};
    db_status st = db_require_firm(c, a->firm, err, errlen);
    if (st != DB_OK)
        return st;
    PGresult *r = db_exec(c, CREDITS_SQL, 2, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->json = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return a->json ? DB_OK : DB_TRANSIENT;
}

static void print_table(json_t *root, const credits_arg *a)
{
    printf("credit reconciliation of firm %lld on %s (amounts in cents)\n", (long long)a->firm,
           a->date);
    printf("%-8s %14s %14s %14s %14s %14s %14s %14s\n", "currency", "issued", "applied", "expired",
           "refunded", "net change", "opening", "outstanding");
    size_t i;
    json_t *cur;
    json_t *list = json_object_get(root, "currencies");
    json_array_foreach(list, i, cur)
    {
        char issued[40], applied[40], expired[40];
        snprintf(issued, sizeof issued, "%lld (%lld)", args_jint(cur, "credits_issued_cents"),
                 args_jint(cur, "credits_issued_count"));
        snprintf(applied, sizeof applied, "%lld (%lld)", args_jint(cur, "credits_applied_cents"),
                 args_jint(cur, "credits_applied_count"));
        snprintf(expired, sizeof expired, "%lld (%lld)", args_jint(cur, "credits_expired_cents"),
                 args_jint(cur, "credits_expired_count"));
        printf("%-8s %14s %14s %14s %14lld %14lld %14lld %14lld\n",
               json_string_value(json_object_get(cur, "currency")), issued, applied, expired,
               args_jint(cur, "credits_refunded_cents"), args_jint(cur, "net_change_cents"),
               args_jint(cur, "opening_balance_cents"),
               args_jint(cur, "outstanding_balance_cents"));
    }
    json_array_foreach(list, i, cur)
    {
        bool ok = json_is_true(json_object_get(cur, "balanced"));
        printf("check %s: outstanding %lld = sum of clients' balances %lld (%lld client(s) with "
               "credit), opening + net change = outstanding: %s\n",
               json_string_value(json_object_get(cur, "currency")),
               args_jint(cur, "outstanding_balance_cents"),
               args_jint(cur, "clients_balance_sum_cents"), args_jint(cur, "clients_with_balance"),
               ok ? "ok" : "MISMATCH");
    }
    if (json_array_size(list) == 0)
        printf("(the firm has no clients)\n");
}

int cmd_report_credits(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    credits_arg a = {0};
    const char *firm = NULL, *date = NULL;
    for (int i = 1; i < argc; i++) {
        int g;
        if ((g = args_opt(argc, argv, &i, "--firm-id", &firm)) ||
            (g = args_opt(argc, argv, &i, "--date", &date))) {
            if (g < 0)
                return args_usage(usage, "%s needs a value", argv[i]);
            continue;
        }
        return args_usage(usage, "unexpected argument '%s'", argv[i]);
    }
    if (firm == NULL || !args_parse_id(firm, &a.firm))
        return args_usage(usage, "--firm-id N (a positive integer) is required");
    civil_date d = date_today_utc();
    if (date != NULL && !date_parse(date, &d))
        return args_usage(usage, "--date must be a date YYYY-MM-DD");
    date_format(d, a.date, sizeof a.date);
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st = db_run_tx(c, credits_work, &a, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused("report credits", err);
    json_t *root = json_loads(a.json, 0, NULL);
    bool balanced = root == NULL || json_is_true(json_object_get(root, "balanced"));
    if (json || root == NULL)
        printf("%s\n", a.json);
    else
        print_table(root, &a);
    json_decref(root);
    free(a.json);
    if (!balanced) {
        fprintf(stderr, "billingctl: report credits: the ledger does not reconcile (see the "
                        "check line)\n");
        return CLI_REFUSED;
    }
    return CLI_OK;
}
