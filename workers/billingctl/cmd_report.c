/* cmd_report.c: `billingctl report revenue --firm-id N --from D --to D`
 * (BILLING_RULES section 10): package vs hourly, invoiced vs collected, per
 * currency. The definitions (which invoices, how a payment is split between
 * package, hourly, adjustment and tax) are in docs/REPORTS.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"

typedef struct {
    int64_t firm;
    char from[11], to[11];
    char *json;
} revenue_arg;

/* Invoiced: invoices issued in [from, to] (not draft, not cancelled), line
 * amounts by type, tax and total. Collected: payments received in [from, to]
 * (UTC days), each split over its invoice's package / hourly / adjustment /
 * tax amounts in proportion (floor each part; the remaining cents go to the
 * invoice's largest part); credit applications and refunds are reported
 * apart. */
static const char *const REVENUE_SQL =
    "WITH "
    "lo AS (SELECT ($2::date)::timestamp AT TIME ZONE 'UTC' AS t), "
    "hi AS (SELECT ($3::date + 1)::timestamp AT TIME ZONE 'UTC' AS t), "
    "inv AS (SELECT i.id, i.currency, i.status, i.issue_date, i.tax_cents, i.total_cents, "
    "  coalesce(sum(l.amount_cents) FILTER (WHERE l.line_type = 'package_fee'), 0) AS pkg, "
    "  coalesce(sum(l.amount_cents) FILTER (WHERE l.line_type = 'hourly'), 0) AS hrs, "
    "  coalesce(sum(l.amount_cents) FILTER (WHERE l.line_type = 'adjustment'), 0) AS adj "
    "  FROM billing.invoices i LEFT JOIN billing.invoice_line_items l ON l.invoice_id = i.id "
    "  WHERE i.firm_id = $1 AND ((i.issue_date BETWEEN $2::date AND $3::date) OR EXISTS ("
    "    SELECT 1 FROM billing.payments p, lo, hi WHERE p.invoice_id = i.id "
    "    AND p.received_at >= lo.t AND p.received_at < hi.t)) "
    "  GROUP BY i.id), "
    "invoiced AS (SELECT currency, count(*) AS n, sum(pkg) AS pkg, sum(hrs) AS hrs, "
    "  sum(adj) AS adj, sum(tax_cents) AS tax, sum(total_cents) AS total FROM inv "
    "  WHERE issue_date BETWEEN $2::date AND $3::date AND status NOT IN ('draft', 'cancelled', 'void') "
    "  GROUP BY currency), "
    "pay AS (SELECT p.amount_cents AS a, p.source, inv.*, "
    "  CASE WHEN inv.total_cents > 0 THEN trunc(p.amount_cents::numeric * inv.pkg / "
    "    inv.total_cents)::bigint ELSE 0 END AS fp, "
    "  CASE WHEN inv.total_cents > 0 THEN trunc(p.amount_cents::numeric * inv.hrs / "
    "    inv.total_cents)::bigint ELSE 0 END AS fh, "
    "  CASE WHEN inv.total_cents > 0 THEN trunc(p.amount_cents::numeric * inv.adj / "
    "    inv.total_cents)::bigint ELSE 0 END AS fa, "
    "  CASE WHEN inv.total_cents > 0 THEN trunc(p.amount_cents::numeric * inv.tax_cents / "
    "    inv.total_cents)::bigint ELSE 0 END AS ft, "
    "  CASE WHEN inv.pkg >= inv.hrs AND inv.pkg >= inv.adj AND inv.pkg >= inv.tax_cents THEN 'p' "
    "    WHEN inv.hrs >= inv.adj AND inv.hrs >= inv.tax_cents THEN 'h' "
    "    WHEN inv.adj >= inv.tax_cents THEN 'a' ELSE 't' END AS big "
    "  FROM billing.payments p JOIN inv ON inv.id = p.invoice_id, lo, hi "
    "  WHERE p.firm_id = $1 AND p.received_at >= lo.t AND p.received_at < hi.t), "
    "alloc AS (SELECT currency, source, a, a - (fp + fh + fa + ft) AS rem, fp, fh, fa, ft, big "
    "  FROM pay), "
    "collected AS (SELECT currency, "
    "  count(*) FILTER (WHERE source <> 'credit') AS n, "
    "  coalesce(sum(fp + CASE WHEN big = 'p' THEN rem ELSE 0 END) "
    "    FILTER (WHERE source <> 'credit'), 0) AS pkg, "
    "  coalesce(sum(fh + CASE WHEN big = 'h' THEN rem ELSE 0 END) "
    "    FILTER (WHERE source <> 'credit'), 0) AS hrs, "
    "  coalesce(sum(fa + CASE WHEN big = 'a' THEN rem ELSE 0 END) "
    "    FILTER (WHERE source <> 'credit'), 0) AS adj, "
    "  coalesce(sum(ft + CASE WHEN big = 't' THEN rem ELSE 0 END) "
    "    FILTER (WHERE source <> 'credit'), 0) AS tax, "
    "  coalesce(sum(a) FILTER (WHERE source <> 'credit'), 0) AS total, "
    "  coalesce(sum(a) FILTER (WHERE source = 'credit'), 0) AS credit "
    "  FROM alloc GROUP BY currency), "
    "refunded AS (SELECT i.currency, sum(r.amount_cents) AS total "
    "  FROM billing.refunds r JOIN billing.invoices i ON i.id = r.invoice_id, lo, hi "
    "  WHERE r.firm_id = $1 AND r.created_at >= lo.t AND r.created_at < hi.t "
    "  GROUP BY i.currency), "
    /* Credit notes issued in [from, to] (docs/INVOICES.md): their totals,
     * tax and how they were settled. */
    "cn AS (SELECT i.currency, count(*) AS n, sum(n.total_cents) AS total, "
    "  sum(n.tax_cents) AS tax, sum(n.applied_to_due_cents) AS due, "
    "  sum(n.refunded_cents) AS refund, sum(n.credited_cents) AS credit "
    "  FROM billing.credit_notes n JOIN billing.invoices i ON i.id = n.invoice_id, lo, hi "
    "  WHERE n.firm_id = $1 AND n.created_at >= lo.t AND n.created_at < hi.t "
    "  GROUP BY i.currency), "
    "cur AS (SELECT currency FROM invoiced UNION SELECT currency FROM collected "
    "  UNION SELECT currency FROM refunded UNION SELECT currency FROM cn) "
    "SELECT jsonb_build_object('firm_id', $1::bigint, 'from', $2::text, 'to', $3::text, "
    "  'currencies', coalesce(jsonb_agg(jsonb_build_object('currency', cur.currency, "
    "  'invoiced', jsonb_build_object('invoice_count', coalesce(iv.n, 0), "
    "    'package_cents', coalesce(iv.pkg, 0), 'hourly_cents', coalesce(iv.hrs, 0), "
    "    'adjustment_cents', coalesce(iv.adj, 0), 'tax_cents', coalesce(iv.tax, 0), "
    "    'total_cents', coalesce(iv.total, 0)), "
    "  'collected', jsonb_build_object('payment_count', coalesce(co.n, 0), "
    "    'package_cents', coalesce(co.pkg, 0), 'hourly_cents', coalesce(co.hrs, 0), "
    "    'adjustment_cents', coalesce(co.adj, 0), 'tax_cents', coalesce(co.tax, 0), "
    "    'total_cents', coalesce(co.total, 0)), "
    "  'credit_applied_cents', coalesce(co.credit, 0), "
    "  'refunded_cents', coalesce(rf.total, 0), "
    "  'credit_notes', jsonb_build_object('count', coalesce(cn.n, 0), "
    "    'total_cents', coalesce(cn.total, 0), 'tax_cents', coalesce(cn.tax, 0), "
    "    'applied_to_due_cents', coalesce(cn.due, 0), 'refunded_cents', coalesce(cn.refund, 0), "
    "    'credited_cents', coalesce(cn.credit, 0))) ORDER BY cur.currency), '[]'::jsonb))::text "
    "FROM cur LEFT JOIN invoiced iv USING (currency) LEFT JOIN collected co USING (currency) "
    "LEFT JOIN refunded rf USING (currency) LEFT JOIN cn USING (currency)";

static db_status revenue_work(db_conn *c, void *varg, char *err, size_t errlen)
{
    revenue_arg *a = varg;
    const char *p[] = {DB_I64(a->firm), a->from, a->to};
    db_status st = db_require_firm(c, a->firm, err, errlen);
    if (st != DB_OK)
        return st;
    PGresult *r = db_exec(c, REVENUE_SQL, 3, p, &st, err, errlen);
    if (r == NULL)
        return st;
    a->json = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return a->json ? DB_OK : DB_TRANSIENT;
}

static void print_table(const revenue_arg *a)
{
    json_t *root = json_loads(a->json, 0, NULL);
    if (root == NULL) {
        printf("%s\n", a->json);
        return;
    }
    printf("revenue of firm %lld from %s to %s\n", (long long)a->firm, a->from, a->to);
    printf("%-8s %-10s %8s %14s %14s %14s %14s %14s\n", "currency", "", "count", "package",
           "hourly", "adjustment", "tax", "total");
    size_t i;
    json_t *cur;
    json_array_foreach(json_object_get(root, "currencies"), i, cur)
    {
        const char *code = json_string_value(json_object_get(cur, "currency"));
        json_t *iv = json_object_get(cur, "invoiced"), *co = json_object_get(cur, "collected");
        printf("%-8s %-10s %8lld %14lld %14lld %14lld %14lld %14lld\n", code, "invoiced",
               args_jint(iv, "invoice_count"), args_jint(iv, "package_cents"),
               args_jint(iv, "hourly_cents"), args_jint(iv, "adjustment_cents"),
               args_jint(iv, "tax_cents"), args_jint(iv, "total_cents"));
        printf("%-8s %-10s %8lld %14lld %14lld %14lld %14lld %14lld\n", code, "collected",
               args_jint(co, "payment_count"), args_jint(co, "package_cents"),
               args_jint(co, "hourly_cents"), args_jint(co, "adjustment_cents"),
               args_jint(co, "tax_cents"), args_jint(co, "total_cents"));
        printf("%-8s credit applied %lld, refunded %lld (cents)\n", code,
               args_jint(cur, "credit_applied_cents"), args_jint(cur, "refunded_cents"));
        const json_t *cn = json_object_get(cur, "credit_notes");
        if (args_jint(cn, "count") > 0)
            printf("%-8s credit notes %lld: %lld (tax %lld): %lld off balances due, %lld "
                   "refunded, %lld to client credit (cents)\n",
                   code, args_jint(cn, "count"), args_jint(cn, "total_cents"),
                   args_jint(cn, "tax_cents"), args_jint(cn, "applied_to_due_cents"),
                   args_jint(cn, "refunded_cents"), args_jint(cn, "credited_cents"));
    }
    printf("(amounts in cents)\n");
    json_decref(root);
}

int cmd_report_revenue(int argc, char **argv, const cli_opts *o, const char *usage)
{
    bool json = o->json;
    revenue_arg a = {0};
    const char *firm = NULL, *from = NULL, *to = NULL;
    for (int i = 1; i < argc; i++) {
        int g;
        if ((g = args_opt(argc, argv, &i, "--firm-id", &firm)) ||
            (g = args_opt(argc, argv, &i, "--from", &from)) ||
            (g = args_opt(argc, argv, &i, "--to", &to))) {
            if (g < 0)
                return args_usage(usage, "%s needs a value", argv[i]);
            continue;
        }
        return args_usage(usage, "unexpected argument '%s'", argv[i]);
    }
    civil_date f, t;
    if (firm == NULL || !args_parse_id(firm, &a.firm))
        return args_usage(usage, "--firm-id N (a positive integer) is required");
    if (from == NULL || !date_parse(from, &f))
        return args_usage(usage, "--from YYYY-MM-DD is required");
    if (to == NULL || !date_parse(to, &t))
        return args_usage(usage, "--to YYYY-MM-DD is required");
    if (t.days < f.days)
        return args_usage(usage, "--to is before --from");
    date_format(f, a.from, sizeof a.from);
    date_format(t, a.to, sizeof a.to);
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st = db_run_tx(c, revenue_work, &a, err, sizeof err);
    db_close(c);
    if (st != DB_OK)
        return args_refused("report revenue", err);
    if (json)
        printf("%s\n", a.json);
    else
        print_table(&a);
    free(a.json);
    return CLI_OK;
}
