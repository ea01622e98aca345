/* test_currency.c: BILLING_RULES 11.13 in the database (sql/011). The C
 * currency table (MONEY_CURRENCY_MAP) and the SQL functions agree for every
 * currency code; the SQL rounding and formatting agree with money.c's; and
 * the database refuses an invoice or line amount in a three-decimal
 * currency that is not a multiple of 10 minor units, for any writer.
 *
 * Needs DATABASE_URL pointing at a migrated database. Each test makes its own
 * firm, so the suite can run any number of times on one database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/money.h"
#include "support/dbtest.h"

static PGconn *pg;

static const char *I(int64_t v)
{
    static char ring[64][24];
    static unsigned next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%lld", (long long)v);
    return b;
}

/* ---- a growing text buffer for array literals ---------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *text)
{
    size_t n = strlen(text);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
    memcpy(b->s + b->len, text, n + 1);
    b->len += n;
}

/* Appends one element to the array literal being built in b ("{a,b,...}"). */
static void sb_elem(sbuf *b, const char *text)
{
    sb_add(b, b->len == 0 ? "{" : ",");
    sb_add(b, text);
}

static void sb_close(sbuf *b)
{
    if (b->len == 0)
        sb_add(b, "{");
    sb_add(b, "}");
}

/* Runs a query returning one text column; fails the test on error. */
static PGresult *rows(const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("query failed: %s", PQresultErrorMessage(r));
    return r;
}

/* ---- C and SQL agree ------------------------------------------------------ */

/* Every three-letter code: exponent and granularity from C equal SQL's. A row
 * added to MONEY_CURRENCY_MAP and not to sql/ (or the other way round) fails
 * here. */
static void test_table_matches_c(void **state)
{
    (void)state;
    PGresult *r = rows("SELECT c, billing.currency_exponent(c), billing.currency_granularity(c)"
                       " FROM (SELECT chr(97 + a) || chr(97 + b) || chr(97 + d) AS c"
                       "  FROM generate_series(0, 25) a, generate_series(0, 25) b,"
                       "   generate_series(0, 25) d) x ORDER BY c",
                       0, NULL);
    assert_int_equal(PQntuples(r), 26 * 26 * 26);
    int three = 0, zero = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *cur = PQgetvalue(r, i, 0);
        int exp = atoi(PQgetvalue(r, i, 1)), gran = atoi(PQgetvalue(r, i, 2));
        if (exp != money_currency_exponent(cur) || gran != money_currency_granularity(cur))
            fail_msg("%s: SQL exponent %d granularity %d, C %d %d", cur, exp, gran,
                     money_currency_exponent(cur), money_currency_granularity(cur));
        three += gran == 10;
        zero += exp == 0;
    }
    PQclear(r);
    assert_int_equal(three, 5);
    assert_int_equal(zero, 16);
    /* Every row of the C table by name (the loop above covers them; this
     * says so explicitly). */
#define ROW(code, exp, gran)                                                                       \
    do {                                                                                           \
        const char *p[] = {#code};                                                                 \
        assert_string_equal(dbtest_text(pg,                                                        \
                                        "SELECT billing.currency_exponent($1) || ' ' ||"           \
                                        " billing.currency_granularity($1)",                       \
                                        1, p),                                                     \
                            #exp " " #gran);                                                       \
    } while (0);
    MONEY_CURRENCY_MAP(ROW)
#undef ROW
}

/* billing.round_to_granularity(amount, cur, num, den) equals
 * money_muldiv_cur(amount, num, den, cur), and (hours * rate, cur) equals
 * money_hours_amount_cur, over amounts around every rounding edge, day
 * counts, basis points and both signs. */
static void test_rounding_matches_c(void **state)
{
    (void)state;
    static const char *const curs[] = {"usd", "kwd", "jpy", "bhd", "tnd"};
    static const int64_t nums[] = {0, 1, 3, 7, 15, 23, 29, 30, 31, 365, 825, 1000, 10000};
    static const int64_t dens[] = {1, 2, 3, 29, 30, 31, 100, 365, 366, 10000};
    static const int64_t big[] = {999999999999LL, 1000000000005LL, 4611686018427387903LL,
                                  9223372036854775800LL, -9223372036854775800LL};
    sbuf a = {0}, c = {0}, n = {0}, d = {0};
    int64_t *want = NULL;
    size_t count = 0, cap = 0;
    for (size_t ci = 0; ci < sizeof curs / sizeof curs[0]; ci++)
        for (size_t ni = 0; ni < sizeof nums / sizeof nums[0]; ni++)
            for (size_t di = 0; di < sizeof dens / sizeof dens[0]; di++)
                for (int64_t k = -40; k < 240 + (int64_t)(sizeof big / sizeof big[0]); k++) {
                    int64_t amt = k < 240 ? k * 7 + (k % 3) : big[k - 240];
                    int64_t out;
                    if (money_muldiv_cur(amt, nums[ni], dens[di], curs[ci], &out) != MONEY_OK)
                        continue; /* overflow: nothing to compare */
                    if (count == cap) {
                        cap = cap ? cap * 2 : 4096;
                        want = realloc(want, cap * sizeof *want);
                        assert_non_null(want);
                    }
                    want[count++] = out;
                    sb_elem(&a, I(amt));
                    sb_elem(&c, curs[ci]);
                    sb_elem(&n, I(nums[ni]));
                    sb_elem(&d, I(dens[di]));
                }
    sb_close(&a);
    sb_close(&c);
    sb_close(&n);
    sb_close(&d);
    const char *p[] = {a.s, c.s, n.s, d.s};
    PGresult *r = rows("SELECT billing.round_to_granularity(u.a, u.c, u.n, u.d)"
                       " FROM unnest($1::numeric[], $2::text[], $3::numeric[], $4::numeric[])"
                       " WITH ORDINALITY u(a, c, n, d, i) ORDER BY u.i",
                       4, p);
    assert_int_equal((size_t)PQntuples(r), count);
    for (size_t i = 0; i < count; i++) {
        int64_t got = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        if (got != want[i])
            fail_msg("row %zu: SQL %lld, C %lld", i, (long long)got, (long long)want[i]);
    }
    PQclear(r);
    free(a.s);
    free(c.s);
    free(n.s);
    free(d.s);
    a = c = n = d = (sbuf){0};

    /* Hourly lines: hours numeric(12,2) times a rate, as the invoicing SQL. */
    count = 0;
    for (size_t ci = 0; ci < sizeof curs / sizeof curs[0]; ci++)
        for (int64_t h = 1; h <= 1000; h += 7)
            for (int64_t rate = 995; rate <= 1015; rate++) {
                int64_t out;
                assert_int_equal(money_hours_amount_cur(h, rate, curs[ci], &out), MONEY_OK);
                if (count == cap) {
                    cap = cap ? cap * 2 : 4096;
                    want = realloc(want, cap * sizeof *want);
                    assert_non_null(want);
                }
                want[count++] = out;
                char hours[32];
                snprintf(hours, sizeof hours, "%lld.%02lld", (long long)(h / 100),
                         (long long)(h % 100));
                sb_elem(&a, hours);
                sb_elem(&c, curs[ci]);
                sb_elem(&n, I(rate));
            }
    sb_close(&a);
    sb_close(&c);
    sb_close(&n);
    const char *ph[] = {a.s, c.s, n.s};
    r = rows("SELECT billing.round_to_granularity(u.h * u.r, u.c)"
             " FROM unnest($1::numeric(12,2)[], $2::text[], $3::bigint[])"
             " WITH ORDINALITY u(h, c, r, i) ORDER BY u.i",
             3, ph);
    assert_int_equal((size_t)PQntuples(r), count);
    for (size_t i = 0; i < count; i++) {
        int64_t got = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        if (got != want[i])
            fail_msg("hours row %zu: SQL %lld, C %lld", i, (long long)got, (long long)want[i]);
    }
    PQclear(r);
    free(a.s);
    free(c.s);
    free(n.s);
    free(want);
}

/* billing.format_amount writes what money_format writes. */
static void test_format_matches_c(void **state)
{
    (void)state;
    static const char *const curs[] = {"usd", "eur", "kwd", "bhd", "jod",
                                       "omr", "tnd", "jpy", "krw", "clp"};
    static const int64_t amts[] = {0,
                                   1,
                                   -1,
                                   5,
                                   -5,
                                   9,
                                   10,
                                   99,
                                   100,
                                   101,
                                   999,
                                   1000,
                                   1001,
                                   -1000,
                                   150000,
                                   12345,
                                   -12345,
                                   100010,
                                   INT64_MAX,
                                   INT64_MIN,
                                   INT64_MAX - 1,
                                   INT64_MIN + 1};
    sbuf a = {0}, c = {0};
    for (size_t ci = 0; ci < sizeof curs / sizeof curs[0]; ci++)
        for (size_t ai = 0; ai < sizeof amts / sizeof amts[0]; ai++) {
            sb_elem(&a, I(amts[ai]));
            sb_elem(&c, curs[ci]);
        }
    sb_close(&a);
    sb_close(&c);
    const char *p[] = {a.s, c.s};
    PGresult *r = rows("SELECT billing.format_amount(u.a, u.c)"
                       " FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY u(a, c, i)"
                       " ORDER BY u.i",
                       2, p);
    int row = 0;
    for (size_t ci = 0; ci < sizeof curs / sizeof curs[0]; ci++)
        for (size_t ai = 0; ai < sizeof amts / sizeof amts[0]; ai++, row++) {
            char buf[40];
            assert_true(money_format(amts[ai], curs[ci], buf, sizeof buf) > 0);
            if (strcmp(buf, PQgetvalue(r, row, 0)) != 0)
                fail_msg("%lld %s: SQL '%s', C '%s'", (long long)amts[ai], curs[ci],
                         PQgetvalue(r, row, 0), buf);
        }
    PQclear(r);
    free(a.s);
    free(c.s);
    const char *pk[] = {"150000", "kwd"};
    assert_string_equal(dbtest_text(pg, "SELECT billing.format_amount($1, $2)", 2, pk), "150.000");
}

/* ---- the database refuses what Stripe would ------------------------------ */

/* A client in cur and an invoice of it with an engagement override (no
 * engagement needed); subtotal = total = amount, no line yet. */
static int64_t mk_invoice(int64_t firm, const char *cur, int64_t amount, int64_t *client_out)
{
    int64_t client = dbtest_client(pg, firm);
    const char *pc[] = {cur, I(client)};
    dbtest_ok(pg, "UPDATE billing.clients SET currency = $1 WHERE id = $2", 2, pc);
    char number[96];
    snprintf(number, sizeof number, "CUR-%s", dbtest_unique());
    const char *p[] = {I(firm), I(client), number, cur, I(amount)};
    if (client_out)
        *client_out = client;
    return dbtest_ok(pg,
                     "INSERT INTO billing.invoices(firm_id, client_id, invoice_number, currency,"
                     " subtotal_cents, total_cents, engagement_override,"
                     " engagement_override_reason, engagement_override_by)"
                     " SELECT $1, $2, $3, $4, $5, $5, true, 'currency test', 'admin'"
                     " RETURNING id",
                     5, p);
}

/* One adjustment line and the invoice's subtotal/total raised by it, in one
 * statement (rule 1.4 holds at COMMIT). */
static const char *const ADD_LINE_SQL =
    "WITH l AS (INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type,"
    " description, quantity, rate_cents, amount_cents)"
    " SELECT i.id, i.firm_id, 'adjustment', 'line', 1, $2::bigint, $2::bigint"
    " FROM billing.invoices i WHERE i.id = $1 RETURNING id, invoice_id, amount_cents),"
    " u AS (UPDATE billing.invoices i SET subtotal_cents = i.subtotal_cents + l.amount_cents,"
    " total_cents = i.total_cents + l.amount_cents FROM l WHERE i.id = l.invoice_id)"
    " SELECT id FROM l";

/* The line alone (no invoice update): only the line's own check can refuse
 * it at the end of the statement (rule 1.4 would wait for COMMIT). */
static const char *const LINE_ONLY_SQL =
    "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, description,"
    " quantity, rate_cents, amount_cents)"
    " SELECT i.id, i.firm_id, 'adjustment', 'line', 1, $2::bigint, $2::bigint"
    " FROM billing.invoices i WHERE i.id = $1";

static void test_refuses_lines(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg);
    int64_t kwd = mk_invoice(firm, "kwd", 0, NULL);
    const char *bad[] = {I(kwd), "1005"};
    dbtest_refused(pg, "rule 11.13 (three-decimal currencies): line", LINE_ONLY_SQL, 2, bad);
    dbtest_refused(pg, "amount_cents 1005", LINE_ONLY_SQL, 2, bad);
    dbtest_refused(pg, "rule 11.13", ADD_LINE_SQL, 2, bad);
    const char *pk[] = {I(kwd)};
    assert_int_equal(dbtest_ok(pg,
                               "SELECT count(*) FROM billing.invoice_line_items"
                               " WHERE invoice_id = $1",
                               1, pk),
                     0);
    /* A multiple of 10 passes, in every three-decimal currency. */
    const char *good[] = {I(kwd), "1010"};
    int64_t line = dbtest_ok(pg, ADD_LINE_SQL, 2, good);
    assert_true(line > 0);
    static const char *const three[] = {"bhd", "jod", "omr", "tnd"};
    for (size_t i = 0; i < sizeof three / sizeof three[0]; i++) {
        int64_t inv = mk_invoice(firm, three[i], 0, NULL);
        const char *b[] = {I(inv), "1001"}, *g[] = {I(inv), "1000"};
        dbtest_refused(pg, "rule 11.13", LINE_ONLY_SQL, 2, b);
        assert_true(dbtest_ok(pg, ADD_LINE_SQL, 2, g) > 0);
    }
    /* usd and jpy take any minor unit. */
    int64_t usd = mk_invoice(firm, "usd", 0, NULL), jpy = mk_invoice(firm, "jpy", 0, NULL);
    const char *pu[] = {I(usd), "1005"}, *pj[] = {I(jpy), "1005"};
    assert_true(dbtest_ok(pg, ADD_LINE_SQL, 2, pu) > 0);
    assert_true(dbtest_ok(pg, ADD_LINE_SQL, 2, pj) > 0);

    /* Per statement: one bad line among good ones refuses the statement. */
    const char *pm[] = {I(kwd), I(usd)};
    dbtest_refused(pg, "rule 11.13",
                   "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type,"
                   " description, amount_cents)"
                   " SELECT i.id, i.firm_id, 'adjustment', 'x', v.a"
                   " FROM billing.invoices i, (VALUES (10), (20), (25)) v(a)"
                   " WHERE i.id IN ($1, $2)",
                   2, pm);

    /* Updates: a line's amount, or moving a line onto a kwd invoice. */
    const char *pl[] = {I(line)};
    dbtest_refused(pg, "rule 11.13",
                   "UPDATE billing.invoice_line_items SET amount_cents = 1015 WHERE id = $1", 1,
                   pl);
    int64_t usd_line = dbtest_ok(pg,
                                 "SELECT id FROM billing.invoice_line_items"
                                 " WHERE invoice_id = $1",
                                 1, (const char *[]){I(usd)});
    const char *mv[] = {I(usd_line), I(kwd)};
    dbtest_refused(pg, "rule 11.13",
                   "UPDATE billing.invoice_line_items SET invoice_id = $2 WHERE id = $1", 2, mv);
    /* Unchanged amounts are not re-checked (WHEN clause). */
    dbtest_ok(pg, "UPDATE billing.invoice_line_items SET description = 'renamed' WHERE id = $1", 1,
              pl);
}

static void test_refuses_invoice_amounts(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = 0;
    int64_t ok = mk_invoice(firm, "kwd", 0, &client);
    char number[96];
    snprintf(number, sizeof number, "CUR-%s", dbtest_unique());
    static const char *const INSERT_SQL =
        "INSERT INTO billing.invoices(firm_id, client_id, invoice_number, currency,"
        " subtotal_cents, tax_cents, total_cents, engagement_override,"
        " engagement_override_reason, engagement_override_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $5::bigint + $6::bigint, true, 'currency test',"
        " 'admin')";
    /* subtotal, tax, total: each must be a multiple of 10 in kwd. */
    const char *p1[] = {I(firm), I(client), number, "kwd", "1005", "0"};
    dbtest_refused(pg, "rule 11.13 (three-decimal currencies): invoice", INSERT_SQL, 6, p1);
    const char *p2[] = {I(firm), I(client), number, "kwd", "1000", "5"};
    dbtest_refused(pg, "tax_cents 5", INSERT_SQL, 6, p2);
    const char *p3[] = {I(firm), I(client), number, "omr", "1000", "1"};
    dbtest_refused(pg, "rule 11.13", INSERT_SQL, 6, p3);
    /* usd and jpy: accepted (no line: rule 1.4 only for a non-zero subtotal
     * at COMMIT, so keep the subtotal 0 and put the amount in the tax). */
    const char *p4[] = {I(firm), I(client), number, "usd", "0", "5"};
    dbtest_ok(pg, INSERT_SQL, 6, p4);
    snprintf(number, sizeof number, "CUR-%s", dbtest_unique());
    const char *p5[] = {I(firm), I(client), number, "jpy", "0", "5"};
    dbtest_ok(pg, INSERT_SQL, 6, p5);
    snprintf(number, sizeof number, "CUR-%s", dbtest_unique());
    const char *p6[] = {I(firm), I(client), number, "kwd", "0", "10"};
    dbtest_ok(pg, INSERT_SQL, 6, p6);

    /* Updates of the amounts. */
    const char *pu[] = {I(ok)};
    dbtest_refused(pg, "rule 11.13",
                   "UPDATE billing.invoices SET tax_cents = 5, total_cents = 5 WHERE id = $1", 1,
                   pu);
    dbtest_ok(pg, "UPDATE billing.invoices SET tax_cents = 20, total_cents = 20 WHERE id = $1", 1,
              pu);

    /* A usd invoice with a 1005 line cannot become kwd; its amounts and its
     * lines are checked. */
    int64_t usd = mk_invoice(firm, "usd", 0, NULL);
    const char *pl[] = {I(usd), "1005"};
    dbtest_ok(pg, ADD_LINE_SQL, 2, pl);
    const char *pc[] = {I(usd)};
    dbtest_refused(pg, "rule 11.13", "UPDATE billing.invoices SET currency = 'kwd' WHERE id = $1",
                   1, pc);
    dbtest_refused(pg, "rule 11.13",
                   "UPDATE billing.invoices SET currency = 'bhd',"
                   " subtotal_cents = 1010, total_cents = 1010 WHERE id = $1",
                   1, pc);
}

/* A row written before 011 (here: with the triggers off) is not re-checked
 * when columns other than its amounts change: invoices are records. */
static void test_old_rows_not_rechecked(void **state)
{
    (void)state;
    int64_t firm = dbtest_firm(pg), client = 0;
    int64_t inv = mk_invoice(firm, "kwd", 0, &client);
    const char *p[] = {I(inv)};
    dbtest_ok(pg, "BEGIN", 0, NULL);
    dbtest_ok(pg, "SET LOCAL session_replication_role = replica", 0, NULL);
    dbtest_ok(pg, "UPDATE billing.invoices SET tax_cents = 1005, total_cents = 1005 WHERE id = $1",
              1, p);
    dbtest_ok(pg, "COMMIT", 0, NULL);
    dbtest_ok(pg, "UPDATE billing.invoices SET status = 'cancelled' WHERE id = $1", 1, p);
    assert_string_equal(dbtest_text(pg,
                                    "SELECT status || ' ' || total_cents FROM billing.invoices"
                                    " WHERE id = $1",
                                    1, p),
                        "cancelled 1005");
    /* ...but a change of its amounts must make them right. */
    dbtest_refused(pg, "rule 11.13",
                   "UPDATE billing.invoices SET tax_cents = 1006, total_cents = 1006 WHERE id = $1",
                   1, p);
}

static int setup(void **state)
{
    (void)state;
    pg = dbtest_connect();
    return pg ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(pg);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_c),
        cmocka_unit_test(test_rounding_matches_c),
        cmocka_unit_test(test_format_matches_c),
        cmocka_unit_test(test_refuses_lines),
        cmocka_unit_test(test_refuses_invoice_amounts),
        cmocka_unit_test(test_old_rows_not_rechecked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
