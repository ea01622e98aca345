/* test_invoicing_keys.c: the foreign keys of the invoicing write path that
 * sql/008_invoicing_keys.sql checks per statement instead of per row
 * (invoices -> clients, invoices -> engagements, line items -> invoices,
 * audit events -> firms, outbox -> firms). For each: an orphan row is refused
 * with the constraint's name, alone, among good rows of one statement, and by
 * an UPDATE of the key; a NULL key is not checked (MATCH SIMPLE); the parents
 * are locked FOR KEY SHARE by the writing statement, as PostgreSQL's RI does;
 * and a referenced parent cannot be deleted or change its key (named after
 * the constraint), nor can an unreferenced one or the table be truncated (the
 * parents of these keys are never deleted: see the migration). Real
 * PostgreSQL (DATABASE_URL); each test makes its own firms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/db.h"
#include "support/dbtest.h"

#define I(v) db_i64((v), (char[24]){0}, 24)

typedef struct {
    int64_t firm, client, engagement, invoice;
} keys_world;

static int64_t keys_engagement(PGconn *c, int64_t firm, int64_t client)
{
    const char *p[] = {I(firm), I(client)};
    return dbtest_ok(c,
                     "INSERT INTO billing.engagements(firm_id, client_id, title, pricing_mode, "
                     "package_fee_cents) VALUES ($1, $2, 'keys', 'package', 1000) RETURNING id",
                     2, p);
}

static int64_t keys_invoice(PGconn *c, int64_t firm, int64_t client, int64_t engagement)
{
    const char *p[] = {I(firm), I(client), I(engagement), dbtest_unique()};
    return dbtest_ok(c,
                     "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                     "invoice_number) VALUES ($1, $2, $3, 'K-' || $4) RETURNING id",
                     4, p);
}

/* A firm with a client, an engagement and an invoice of that engagement. */
static keys_world keys_make(PGconn *c)
{
    keys_world w;
    w.firm = dbtest_firm(c);
    w.client = dbtest_client(c, w.firm);
    w.engagement = keys_engagement(c, w.firm, w.client);
    w.invoice = keys_invoice(c, w.firm, w.client, w.engagement);
    return w;
}

static int64_t keys_count(PGconn *c, const char *sql, int64_t id)
{
    const char *p[] = {I(id)};
    return dbtest_ok(c, sql, 1, p);
}

/* SQLSTATE of a statement expected to fail ("" when it succeeded). */
static const char *keys_sqlstate(PGconn *c, const char *sql, int n, const char *const *params)
{
    static char state[6];
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof state, "%s", s ? s : "");
    const char *con = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    if (s != NULL && strcmp(s, "23503") == 0)
        assert_non_null(con); /* the constraint name travels as a field too */
    PQclear(r);
    return state;
}

/* ---- child side: orphans refused ---------------------------------------- */

static void test_orphan_invoices_refused(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    keys_world a = keys_make(c), b = keys_make(c);

    /* Another firm's client (override: only the client key is at stake). */
    const char *pc[] = {I(a.firm), I(b.client), dbtest_unique()};
    const char *ins_override =
        "INSERT INTO billing.invoices(firm_id, client_id, invoice_number, engagement_override, "
        "engagement_override_reason, engagement_override_by) "
        "VALUES ($1, $2, 'K-' || $3, true, 'r', 'admin')";
    dbtest_refused(c, "violates foreign key constraint \"invoices_rule_1_3_client_same_firm\"",
                   ins_override, 3, pc);
    assert_string_equal(keys_sqlstate(c, ins_override, 3, pc), "23503");
    /* A client that does not exist at all. */
    const char *pn[] = {I(a.firm), "-7", dbtest_unique()};
    dbtest_refused(c, "Key (firm_id, client_id)=(", ins_override, 3, pn);

    /* Another client's engagement, and one that does not exist. */
    const char *pe[] = {I(a.firm), I(a.client), I(b.engagement), dbtest_unique()};
    const char *ins_eng = "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, "
                          "invoice_number) VALUES ($1, $2, $3, 'K-' || $4)";
    dbtest_refused(c, "invoices_rule_1_2_engagement_same_client_and_firm", ins_eng, 4, pe);
    const char *pe2[] = {I(a.firm), I(a.client), "-7", dbtest_unique()};
    dbtest_refused(c, "invoices_rule_1_2_engagement_same_client_and_firm", ins_eng, 4, pe2);

    /* One orphan among good rows of one statement: the statement is refused
     * and writes nothing. */
    const char *pm[] = {I(a.firm), I(a.client), I(a.engagement), I(b.engagement), dbtest_unique()};
    dbtest_refused(c, "invoices_rule_1_2_engagement_same_client_and_firm",
                   "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, invoice_number)"
                   " SELECT $1, $2, e, 'K-' || $5 || '-' || k"
                   " FROM unnest(ARRAY[$3, $3, $4, $3]::bigint[]) WITH ORDINALITY AS u(e, k)",
                   5, pm);
    assert_int_equal(
        keys_count(c, "SELECT count(*) FROM billing.invoices WHERE firm_id = $1", a.firm), 1);

    /* Moving an invoice to another client by UPDATE: refused; its own
     * firm's client but not the engagement's client: the engagement key. */
    const char *pu[] = {I(b.client), I(a.invoice)};
    dbtest_refused(c, "invoices_rule_1_3_client_same_firm",
                   "UPDATE billing.invoices SET client_id = $1 WHERE id = $2", 2, pu);
    int64_t a2 = dbtest_client(c, a.firm);
    const char *pu2[] = {I(a2), I(a.invoice)};
    dbtest_refused(c, "invoices_rule_1_2_engagement_same_client_and_firm",
                   "UPDATE billing.invoices SET client_id = $1 WHERE id = $2", 2, pu2);

    /* Good rows pass, and a NULL engagement (override) is not checked. */
    const char *pok[] = {I(a.firm), I(a.client), dbtest_unique()};
    assert_true(dbtest_ok(c,
                          "INSERT INTO billing.invoices(firm_id, client_id, invoice_number, "
                          "engagement_override, engagement_override_reason, "
                          "engagement_override_by) VALUES ($1, $2, 'K-' || $3, true, 'r', "
                          "'admin') RETURNING id",
                          3, pok) > 0);
    PQfinish(c);
}

static void test_orphan_lines_audit_outbox_refused(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    keys_world a = keys_make(c), b = keys_make(c);

    /* Line of firm B on firm A's invoice; of a missing invoice; one bad line
     * among good ones. */
    const char *ins_line = "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
                           "description, amount_cents) VALUES ($1, $2, 'adjustment', 'x', 0)";
    const char *pl[] = {I(a.invoice), I(b.firm)};
    dbtest_refused(c, "invoice_line_items_rule_1_3_invoice_same_firm", ins_line, 2, pl);
    assert_string_equal(keys_sqlstate(c, ins_line, 2, pl), "23503");
    const char *pl2[] = {"-7", I(a.firm)};
    dbtest_refused(c, "invoice_line_items_rule_1_3_invoice_same_firm", ins_line, 2, pl2);
    const char *pm[] = {I(a.invoice), I(a.firm), I(b.invoice)};
    dbtest_refused(c, "invoice_line_items_rule_1_3_invoice_same_firm",
                   "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
                   "description, amount_cents) SELECT i, $2, 'adjustment', 'x', 0"
                   " FROM unnest(ARRAY[$1, $3, $1]::bigint[]) AS u(i)",
                   3, pm);
    assert_int_equal(keys_count(c,
                                "SELECT count(*) FROM billing.invoice_line_items "
                                "WHERE invoice_id = $1",
                                a.invoice),
                     0);
    /* A good line, then moved to the other firm's invoice by UPDATE. */
    const char *pg[] = {I(a.invoice), I(a.firm)};
    int64_t line = dbtest_ok(c,
                             "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, "
                             "line_type, description, amount_cents) "
                             "VALUES ($1, $2, 'adjustment', 'x', 0) RETURNING id",
                             2, pg);
    const char *pu[] = {I(b.invoice), I(line)};
    dbtest_refused(c, "invoice_line_items_rule_1_3_invoice_same_firm",
                   "UPDATE billing.invoice_line_items SET invoice_id = $1 WHERE id = $2", 2, pu);

    /* Audit events and outbox rows of a firm that does not exist; NULL firm
     * (an event of no known firm) passes. */
    const char *pf[] = {"-7"};
    dbtest_refused(c, "audit_events_rule_1_3_firm",
                   "INSERT INTO billing.audit_events(firm_id, action) VALUES ($1, 'keys')", 1, pf);
    dbtest_refused(c, "outbox_rule_1_3_firm",
                   "INSERT INTO billing.outbox(firm_id, topic, msg_key, payload) "
                   "VALUES ($1, 'keys', 'k', '{}')",
                   1, pf);
    const char *pf2[] = {I(a.firm)};
    dbtest_refused(c, "audit_events_rule_1_3_firm",
                   "INSERT INTO billing.audit_events(firm_id, action)"
                   " SELECT f, 'keys' FROM unnest(ARRAY[$1, -7, $1]::bigint[]) AS u(f)",
                   1, pf2);
    dbtest_refused(c, "outbox_rule_1_3_firm",
                   "INSERT INTO billing.outbox(firm_id, topic, msg_key, payload)"
                   " SELECT f, 'keys', 'k', '{}' FROM unnest(ARRAY[$1, -7]::bigint[]) AS u(f)",
                   1, pf2);
    assert_int_equal(
        keys_count(c, "SELECT count(*) FROM billing.outbox WHERE firm_id = $1", a.firm), 0);
    int64_t ob = dbtest_ok(c,
                           "INSERT INTO billing.outbox(firm_id, topic, msg_key, payload) "
                           "VALUES ($1, 'keys', 'k', '{}') RETURNING id",
                           1, pf2);
    const char *po[] = {I(ob)};
    dbtest_refused(c, "outbox_rule_1_3_firm",
                   "UPDATE billing.outbox SET firm_id = -7 WHERE id = $1", 1, po);
    assert_true(dbtest_ok(c,
                          "INSERT INTO billing.audit_events(firm_id, action) "
                          "VALUES (NULL, 'keys') RETURNING id",
                          0, NULL) > 0);
    assert_true(dbtest_ok(c,
                          "INSERT INTO billing.outbox(firm_id, topic, msg_key, payload) "
                          "VALUES (NULL, 'keys', 'k', '{}') RETURNING id",
                          0, NULL) > 0);
    PQfinish(c);
}

/* ---- the parents are locked FOR KEY SHARE by the writing statement ------- */

static void test_parents_locked_for_key_share(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect(), *other = dbtest_connect();
    keys_world a = keys_make(c);
    int64_t firm2 = dbtest_firm(c);

    dbtest_ok(c, "BEGIN", 0, NULL);
    const char *pl[] = {I(a.invoice), I(a.firm)};
    dbtest_ok(c,
              "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
              "description, amount_cents) VALUES ($1, $2, 'adjustment', 'x', 0)",
              2, pl);
    const char *pa[] = {I(firm2)};
    dbtest_ok(c, "INSERT INTO billing.audit_events(firm_id, action) VALUES ($1, 'keys')", 1, pa);
    dbtest_ok(c,
              "INSERT INTO billing.invoices(firm_id, client_id, engagement_id, invoice_number)"
              " SELECT firm_id, client_id, engagement_id, invoice_number || '-2'"
              " FROM billing.invoices WHERE id = $1",
              1, (const char *[]){I(a.invoice)});

    /* Until c commits, nobody can take a lock that a delete or key update
     * needs on those parents (FOR UPDATE conflicts with FOR KEY SHARE)... */
    const char *pi[] = {I(a.invoice)}, *pc[] = {I(a.client)}, *pe[] = {I(a.engagement)};
    dbtest_refused(other, "could not obtain lock",
                   "SELECT 1 FROM billing.invoices WHERE id = $1 FOR UPDATE NOWAIT", 1, pi);
    dbtest_refused(other, "could not obtain lock",
                   "SELECT 1 FROM billing.firms WHERE id = $1 FOR UPDATE NOWAIT", 1, pa);
    dbtest_refused(other, "could not obtain lock",
                   "SELECT 1 FROM billing.clients WHERE id = $1 FOR UPDATE NOWAIT", 1, pc);
    dbtest_refused(other, "could not obtain lock",
                   "SELECT 1 FROM billing.engagements WHERE id = $1 FOR UPDATE NOWAIT", 1, pe);
    /* ...while non-key updates (payments on the invoice) go on. */
    assert_int_equal(dbtest_ok(other,
                               "SELECT count(*) FROM (SELECT 1 FROM billing.invoices WHERE id = $1"
                               " FOR NO KEY UPDATE NOWAIT) x",
                               1, pi),
                     1);
    dbtest_ok(c, "COMMIT", 0, NULL);
    assert_int_equal(dbtest_ok(other,
                               "SELECT count(*) FROM (SELECT 1 FROM billing.invoices WHERE id = $1"
                               " FOR UPDATE NOWAIT) x",
                               1, pi),
                     1);
    PQfinish(other);
    PQfinish(c);
}

/* ---- parent side: never deleted, keys never change ----------------------- */

static void test_referenced_parents_kept(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    keys_world a = keys_make(c);
    const char *pl[] = {I(a.invoice), I(a.firm)};
    dbtest_ok(c,
              "INSERT INTO billing.invoice_line_items(invoice_id, firm_id, line_type, "
              "description, amount_cents) VALUES ($1, $2, 'adjustment', 'x', 0)",
              2, pl);

    /* An invoice with a line. */
    const char *pi[] = {I(a.invoice)};
    dbtest_refused(c,
                   "violates foreign key constraint "
                   "\"invoice_line_items_rule_1_3_invoice_same_firm\" on table "
                   "\"invoice_line_items\"",
                   "DELETE FROM billing.invoices WHERE id = $1", 1, pi);
    assert_string_equal(keys_sqlstate(c, "DELETE FROM billing.invoices WHERE id = $1", 1, pi),
                        "23503");
    dbtest_refused(c, "invoice_line_items_rule_1_3_invoice_same_firm",
                   "UPDATE billing.invoices SET id = -id WHERE id = $1", 1, pi);
    /* An engagement with an invoice. */
    const char *pe[] = {I(a.engagement)};
    dbtest_refused(c, "invoices_rule_1_2_engagement_same_client_and_firm",
                   "DELETE FROM billing.engagements WHERE id = $1", 1, pe);
    dbtest_refused(c, "invoices_rule_1_2_engagement_same_client_and_firm",
                   "UPDATE billing.engagements SET id = -id WHERE id = $1", 1, pe);
    /* A client whose only reference is an invoice (no engagement: override),
     * so that the client key is the one at stake. */
    int64_t lone = dbtest_client(c, a.firm);
    const char *po[] = {I(a.firm), I(lone), dbtest_unique()};
    dbtest_ok(c,
              "INSERT INTO billing.invoices(firm_id, client_id, invoice_number, "
              "engagement_override, engagement_override_reason, engagement_override_by) "
              "VALUES ($1, $2, 'K-' || $3, true, 'r', 'admin')",
              3, po);
    const char *pc[] = {I(lone)};
    dbtest_refused(c, "invoices_rule_1_3_client_same_firm",
                   "DELETE FROM billing.clients WHERE id = $1", 1, pc);
    dbtest_refused(c, "invoices_rule_1_3_client_same_firm",
                   "UPDATE billing.clients SET id = -id WHERE id = $1", 1, pc);
    /* Firms whose only references are audit events, or outbox rows. */
    int64_t fa = dbtest_firm(c), fo = dbtest_firm(c);
    const char *pfa[] = {I(fa)}, *pfo[] = {I(fo)};
    dbtest_ok(c, "INSERT INTO billing.audit_events(firm_id, action) VALUES ($1, 'keys')", 1, pfa);
    dbtest_ok(c,
              "INSERT INTO billing.outbox(firm_id, topic, msg_key, payload) "
              "VALUES ($1, 'keys', 'k', '{}')",
              1, pfo);
    dbtest_refused(c, "audit_events_rule_1_3_firm", "DELETE FROM billing.firms WHERE id = $1", 1,
                   pfa);
    dbtest_refused(c, "outbox_rule_1_3_firm", "DELETE FROM billing.firms WHERE id = $1", 1, pfo);
    dbtest_refused(c, "outbox_rule_1_3_firm", "UPDATE billing.firms SET id = -id WHERE id = $1", 1,
                   pfo);

    /* Everything is still there. */
    assert_int_equal(
        keys_count(c, "SELECT count(*) FROM billing.invoices WHERE id = $1", a.invoice), 1);
    assert_int_equal(
        keys_count(c, "SELECT count(*) FROM billing.engagements WHERE id = $1", a.engagement), 1);
    assert_int_equal(keys_count(c, "SELECT count(*) FROM billing.clients WHERE id = $1", lone), 1);
    assert_int_equal(keys_count(c, "SELECT count(*) FROM billing.firms WHERE id = $1", fa), 1);
    assert_int_equal(keys_count(c, "SELECT count(*) FROM billing.firms WHERE id = $1", fo), 1);
    PQfinish(c);
}

static void test_unreferenced_parents_kept(void **state)
{
    (void)state;
    PGconn *c = dbtest_connect();
    /* Not referenced by anything: refused all the same (these rows are never
     * deleted; see sql/008). Non-key updates still work. */
    int64_t firm = dbtest_firm(c);
    int64_t client = dbtest_client(c, firm);
    int64_t eng = keys_engagement(c, firm, client);
    const char *pe[] = {I(eng)};
    dbtest_refused(c, "rule 1.3 (tenant keys)", "DELETE FROM billing.engagements WHERE id = $1", 1,
                   pe);
    dbtest_ok(c, "UPDATE billing.engagements SET status = 'completed' WHERE id = $1", 1, pe);
    dbtest_refused(c, "rule 1.3 (tenant keys)", "DELETE FROM billing.engagements WHERE id = $1", 1,
                   pe);
    int64_t inv2 = keys_invoice(c, firm, client, eng);
    const char *pi[] = {I(inv2)};
    dbtest_refused(c, "rule 1.3 (tenant keys)", "DELETE FROM billing.invoices WHERE id = $1", 1,
                   pi);
    dbtest_ok(c, "UPDATE billing.invoices SET status = 'cancelled' WHERE id = $1", 1, pi);
    int64_t client2 = dbtest_client(c, firm);
    const char *pc2[] = {I(client2)};
    dbtest_refused(c, "rule 1.3 (tenant keys)", "DELETE FROM billing.clients WHERE id = $1", 1,
                   pc2);
    int64_t firm2 = dbtest_firm(c);
    const char *pf2[] = {I(firm2)};
    dbtest_refused(c, "rule 1.3 (tenant keys)", "DELETE FROM billing.firms WHERE id = $1", 1, pf2);
    /* TRUNCATE, inside a transaction so that nothing could be lost. */
    dbtest_ok(c, "BEGIN", 0, NULL);
    dbtest_refused(c, "rule 1.3 (tenant keys)", "TRUNCATE billing.invoices CASCADE", 0, NULL);
    dbtest_ok(c, "BEGIN", 0, NULL);
    dbtest_refused(c, "rule 1.3 (tenant keys)", "TRUNCATE billing.engagements CASCADE", 0, NULL);
    assert_int_equal(keys_count(c, "SELECT count(*) FROM billing.engagements WHERE id = $1", eng),
                     1);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orphan_invoices_refused),
        cmocka_unit_test(test_orphan_lines_audit_outbox_refused),
        cmocka_unit_test(test_parents_locked_for_key_share),
        cmocka_unit_test(test_referenced_parents_kept),
        cmocka_unit_test(test_unreferenced_parents_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
