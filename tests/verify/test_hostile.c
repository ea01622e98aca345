/* test_hostile.c: hostile text in every text field billingctl accepts
 * (issue 9). SQL injection strings, a format string, backslashes, quotes,
 * newlines, NUL-free UTF-8, colons in a line description and very long
 * strings go into invoice descriptions and override reasons, credit
 * descriptions / reasons / names, approvers, actors, refund reasons and
 * dispute evidence values. Each is stored (or sent to Stripe) byte for byte
 * or refused with exit 1 or 2; never executed: the tables are all there
 * afterwards and read back the exact bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "support/dbtest.h"
#include "support/standin.h"
#include "vtest.h"

#define NHOSTILE 10
static char *hostile[NHOSTILE];
static vt_firm F;
static standin *stripe;
static char env_key[64], env_base[160];
static const char *stripe_env[3];
static int64_t paid_invoice;
static int stored, refused;

static char *long_text(size_t n)
{
    static const char unit[] = "'; DROP TABLE billing.invoices; -- \\ \xc3\xa9\xe6\x97\xa5 ";
    char *s = malloc(n + 1);
    size_t k = strlen(unit);
    for (size_t i = 0; i < n; i++)
        s[i] = unit[i % k];
    /* Never cut a UTF-8 sequence: end on ASCII. */
    s[n] = '\0';
    while (n > 0 && (unsigned char)s[n - 1] >= 0x80)
        s[--n] = '\0';
    return s;
}

static int setup(void **state)
{
    (void)state;
    const char *fixed[] = {"'; DROP TABLE billing.invoices; --",
                           "\" OR 1=1 --",
                           "$1",
                           "back\\slash \\' \\\\ \\x00 \\n end\\",
                           "Ünïcödé — 日本語 🙂 ñ ∑ \xf0\x9f\x92\xb8",
                           "%s%s%n%x %d {} ${HOME} `id` $(id)",
                           "a:b::c: d:",
                           "line1\nline2\r\n\ttabbed 'quoted' \"double\""};
    for (int i = 0; i < 8; i++)
        hostile[i] = strdup(fixed[i]);
    hostile[8] = long_text(480);   /* fits Stripe's 500-character metadata */
    hostile[9] = long_text(19000); /* very long */
    vt_seed(&F, true);
    stripe = standin_start(NULL);
    snprintf(env_key, sizeof env_key, "STRIPE_SECRET_KEY=sk_test_Hostile0123456789abc");
    snprintf(env_base, sizeof env_base, "STRIPE_API_BASE=%s", standin_url(stripe));
    stripe_env[0] = env_key;
    stripe_env[1] = env_base;
    stripe_env[2] = NULL;
    /* An invoice paid through Stripe, whose charge the stand-in knows, for
     * the refunds. */
    char pi[80], ch[80];
    snprintf(pi, sizeof pi, "pi_hostile%ld", (long)getpid());
    snprintf(ch, sizeof ch, "ch_hostile%ld", (long)getpid());
    char body[256];
    snprintf(body, sizeof body,
             "{\"charge\":\"%s\",\"payment_intent\":\"%s\",\"amount\":1,\"charge_amount\":100000,"
             "\"currency\":\"usd\"}",
             ch, pi);
    json_decref(standin_post(stripe, "/__standin/refunds", body));
    paid_invoice =
        vt_q("WITH i AS (INSERT INTO billing.invoices (firm_id, client_id, engagement_id,"
             "  invoice_number, status, subtotal_cents, total_cents, amount_paid_cents, issue_date,"
             "  stripe_payment_intent_id, stripe_charge_id) VALUES ($1::bigint, $2::bigint,"
             "  $3::bigint, 'HOSTILE-PAID', 'paid', 100000, 100000, 100000, '2026-02-01', $4, $5)"
             "  RETURNING id, firm_id),"
             " l AS (INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type,"
             "  amount_cents) SELECT id, firm_id, 'package_fee', 100000 FROM i)"
             " SELECT id FROM i",
             5, (const char *[]){vt_i(F.firm), vt_i(F.client), vt_i(F.engagement), pi, ch});
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    standin_stop(stripe);
    for (int i = 0; i < NHOSTILE; i++)
        free(hostile[i]);
    fprintf(stderr, "hostile text: %d value(s) stored byte for byte, %d refused\n", stored,
            refused);
    return 0;
}

/* The schema is intact: every table is there and readable. */
static void assert_tables_intact(void)
{
    static const char *const tables[] = {"firms",
                                         "clients",
                                         "engagements",
                                         "invoices",
                                         "invoice_line_items",
                                         "time_entries",
                                         "payments",
                                         "payment_attempts",
                                         "refunds",
                                         "payment_disputes",
                                         "credit_ledger",
                                         "audit_events",
                                         "outbox",
                                         "processed_messages"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char q[128];
        snprintf(q, sizeof q, "SELECT count(*) FROM billing.%s", tables[i]);
        (void)vt_q(q, 0, NULL);
    }
    assert_true(vt_q("SELECT count(*) FROM billing.invoices WHERE firm_id = $1", 1,
                     (const char *[]){vt_i(F.firm)}) >= 1);
}

/* The text column `sql` (one row, $1 = id) equals h byte for byte. */
static void assert_same(const char *sql, int64_t id, const char *h)
{
    const char *p[] = {vt_i(id), h};
    char q[1024];
    snprintf(q, sizeof q, "SELECT v = $2 AND octet_length(v) = octet_length($2) FROM (%s) s(v)",
             sql);
    const char *eq = vt_qt(q, 2, p);
    if (eq == NULL || strcmp(eq, "t") != 0)
        fail_msg("not stored verbatim: %s for id %lld (value of %zu bytes)", sql, (long long)id,
                 strlen(h));
}

static void expect_refused(int rc)
{
    if (rc != 1 && rc != 2)
        fail_msg("exit %d: neither stored nor refused (%s)", rc, vt_err);
    refused++;
}

static int64_t json_int(const char *key)
{
    json_t *j = json_loads(vt_out, 0, NULL);
    if (j == NULL)
        fail_msg("not JSON: %s", vt_out);
    int64_t v = json_integer_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

static void test_invoice_create(void **state)
{
    (void)state;
    for (int i = 0; i < NHOSTILE; i++) {
        const char *h = hostile[i];
        size_t n = strlen(h) + 64;
        char *line = malloc(n);
        snprintf(line, n, "adjustment:1:100:%s", h);
        int rc =
            vt_ctl("--json", "invoice", "create", "--client", vt_i(F.client), "--override-reason",
                   h, "--override-by", h, "--by", h, "--line", line, NULL);
        free(line);
        if (rc != 0) {
            expect_refused(rc);
            continue;
        }
        int64_t inv = json_int("invoice_id");
        assert_same("SELECT engagement_override_reason FROM billing.invoices WHERE id = $1::bigint",
                    inv, h);
        assert_same("SELECT engagement_override_by FROM billing.invoices WHERE id = $1::bigint",
                    inv, h);
        assert_same("SELECT description FROM billing.invoice_line_items"
                    " WHERE invoice_id = $1::bigint",
                    inv, h);
        assert_same("SELECT actor FROM billing.audit_events WHERE action = 'invoice_created'"
                    " AND metadata->>'invoice_id' = $1::text",
                    inv, h);
        /* invoice show prints it back unchanged. */
        assert_int_equal(vt_ctl("--json", "invoice", "show", vt_i(inv), NULL), 0);
        json_t *j = json_loads(vt_out, 0, NULL);
        assert_non_null(j);
        json_t *l0 = json_array_get(json_object_get(j, "lines"), 0);
        assert_string_equal(json_string_value(json_object_get(l0, "description")), h);
        json_decref(j);
        stored++;
        assert_tables_intact();
    }
}

static void test_credit_and_time(void **state)
{
    (void)state;
    for (int i = 0; i < NHOSTILE; i++) {
        const char *h = hostile[i];
        int rc = vt_ctl("--json", "credit", "add", "--client", vt_i(F.client), "--amount-cents",
                        "7", "--source", "goodwill", "--description", h, "--reason", h,
                        "--approved-by", h, "--created-by", h, NULL);
        if (rc != 0) {
            expect_refused(rc);
        } else {
            int64_t e = json_int("entry_id");
            assert_same("SELECT description FROM billing.credit_ledger WHERE id = $1::bigint", e,
                        h);
            assert_same("SELECT reason FROM billing.credit_ledger WHERE id = $1::bigint", e, h);
            assert_same("SELECT approved_by FROM billing.credit_ledger WHERE id = $1::bigint", e,
                        h);
            assert_same("SELECT created_by FROM billing.credit_ledger WHERE id = $1::bigint", e, h);
            assert_same("SELECT a.actor FROM billing.credit_ledger l JOIN billing.audit_events a"
                        " ON a.id = l.audit_event_id WHERE l.id = $1::bigint",
                        e, h);
            assert_same("SELECT a.metadata->>'reason' FROM billing.credit_ledger l"
                        " JOIN billing.audit_events a ON a.id = l.audit_event_id"
                        " WHERE l.id = $1::bigint",
                        e, h);
            stored++;
        }
        /* Apply it to the seeded invoice, named by the hostile actor. */
        rc = vt_ctl("--json", "credit", "apply", "--invoice", vt_i(F.invoice), "--amount-cents",
                    "7", "--created-by", h, NULL);
        if (rc != 0) {
            expect_refused(rc);
        } else {
            int64_t d = vt_q("SELECT max(id) FROM billing.credit_ledger WHERE client_id = $1"
                             " AND entry_type = 'debit'",
                             1, (const char *[]){vt_i(F.client)});
            assert_same("SELECT created_by FROM billing.credit_ledger WHERE id = $1::bigint", d, h);
            stored++;
        }
        /* A new time entry approved and revoked by the hostile name. */
        int64_t te = vt_q("INSERT INTO billing.time_entries (firm_id, engagement_id, staff,"
                          " work_date, hours) VALUES ($1, $2, 'eve', '2026-01-15', 1)"
                          " RETURNING id",
                          2, (const char *[]){vt_i(F.firm), vt_i(F.engagement)});
        rc = vt_ctl("time", "approve", vt_i(te), "--by", h, NULL);
        if (rc != 0) {
            expect_refused(rc);
        } else {
            assert_same("SELECT approved_by FROM billing.time_entries WHERE id = $1::bigint", te,
                        h);
            assert_int_equal(vt_ctl("time", "revoke", vt_i(te), "--by", h, NULL), 0);
            int64_t a = vt_q("SELECT max(id) FROM billing.audit_events WHERE firm_id = $1"
                             " AND action = 'time_entries_revoked'",
                             1, (const char *[]){vt_i(F.firm)});
            assert_same("SELECT actor FROM billing.audit_events WHERE id = $1::bigint", a, h);
            stored++;
        }
        /* An engagement renewed by the hostile name. */
        int64_t eng = vt_q("INSERT INTO billing.engagements (firm_id, client_id, title,"
                           " pricing_mode, package_fee_cents, start_date, end_date)"
                           " VALUES ($1, $2, $3, 'package', 100, '2026-01-01', '2026-12-31')"
                           " RETURNING id",
                           3, (const char *[]){vt_i(F.firm), vt_i(F.client), h});
        rc = vt_ctl("--json", "engagement", "renew", vt_i(eng), "--by", h, NULL);
        if (rc != 0) {
            expect_refused(rc);
        } else {
            int64_t ne = json_int("engagement_id");
            assert_same("SELECT title FROM billing.engagements WHERE id = $1::bigint", ne, h);
            assert_same("SELECT actor FROM billing.audit_events WHERE action = 'engagement_renewed'"
                        " AND metadata->>'new_engagement_id' = $1::text",
                        ne, h);
            stored++;
        }
        assert_tables_intact();
    }
}

/* The params of the last recorded stand-in request whose path starts with
 * prefix (caller decrefs the returned root; *params borrowed from it). */
static json_t *last_request(const char *prefix, json_t **params)
{
    json_t *all = standin_get(stripe, "/__standin/requests");
    json_t *found = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(all, "requests") ? json_object_get(all, "requests") : all, i,
                       r)
    {
        const char *path = json_string_value(json_object_get(r, "path"));
        if (path != NULL && strncmp(path, prefix, strlen(prefix)) == 0)
            found = r;
    }
    assert_non_null(found);
    *params = json_object_get(found, "params");
    return all;
}

static void test_refund_and_evidence(void **state)
{
    (void)state;
    for (int i = 0; i < NHOSTILE; i++) {
        const char *h = hostile[i];
        /* A different amount each time: a new refund, a new idempotency key. */
        int rc = vt_ctl_env(stripe_env, (const char *[]){"--json", "refund", vt_i(paid_invoice),
                                                         "--amount-cents", vt_i(i + 1), "--reason",
                                                         h, "--by", h, NULL});
        if (rc != 0) {
            expect_refused(rc);
        } else {
            json_t *params;
            json_t *all = last_request("/v1/refunds", &params);
            assert_string_equal(
                json_string_value(json_object_get(params, "metadata[refund_reason]")), h);
            assert_string_equal(
                json_string_value(json_object_get(params, "metadata[requested_by]")), h);
            json_decref(all);
            int64_t a = vt_q("SELECT max(id) FROM billing.audit_events WHERE firm_id = $1"
                             " AND action = 'refund_requested'",
                             1, (const char *[]){vt_i(F.firm)});
            assert_same("SELECT metadata->>'reason' FROM billing.audit_events"
                        " WHERE id = $1::bigint",
                        a, h);
            assert_same("SELECT actor FROM billing.audit_events WHERE id = $1::bigint", a, h);
            stored++;
        }
        /* Evidence values go to Stripe exactly as written in the file. */
        char dp[80];
        snprintf(dp, sizeof dp, "dp_hostile%ldx%d", (long)getpid(), i);
        int64_t d = vt_q("INSERT INTO billing.payment_disputes (firm_id, invoice_id, status,"
                         " amount_cents, stripe_dispute_id, opened_at) VALUES ($1, $2, 'opened',"
                         " 100, $3, now()) RETURNING id",
                         3, (const char *[]){vt_i(F.firm), vt_i(paid_invoice), dp});
        json_t *doc = json_pack("{ss ss}", "uncategorized_text", h, "customer_name", h);
        char path[] = "/tmp/vt-hostile-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(json_dump_file(doc, path, JSON_COMPACT), 0);
        json_decref(doc);
        rc = vt_ctl_env(stripe_env, (const char *[]){"dispute", "evidence", vt_i(d), "--file", path,
                                                     "--by", h, NULL});
        unlink(path);
        if (rc != 0) {
            expect_refused(rc);
        } else {
            json_t *params;
            char prefix[96];
            snprintf(prefix, sizeof prefix, "/v1/disputes/%s", dp);
            json_t *all = last_request(prefix, &params);
            assert_string_equal(
                json_string_value(json_object_get(params, "evidence[uncategorized_text]")), h);
            assert_string_equal(
                json_string_value(json_object_get(params, "evidence[customer_name]")), h);
            json_decref(all);
            assert_same("SELECT actor FROM billing.audit_events WHERE action ="
                        " 'dispute_evidence_submitted' AND metadata->>'dispute_id' = $1::text",
                        d, h);
            stored++;
        }
        assert_tables_intact();
    }
    /* The over-long reason is refused as a usage error, not truncated. */
    assert_int_equal(
        vt_ctl_env(stripe_env, (const char *[]){"refund", vt_i(paid_invoice), "--reason",
                                                hostile[9], "--by", "op", NULL}),
        2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoice_create),
        cmocka_unit_test(test_credit_and_time),
        cmocka_unit_test(test_refund_and_evidence),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
