/* test_dispute_units.c: the pure parts of common/disputes.c: Stripe status
 * mapping, the forward-only rule, refund arithmetic, dispute and charge
 * parsing of the shared fixtures, evidence validation and the form sent to
 * Stripe. No services needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/disputes.h"

static json_t *fixture_object(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", LL_FIXTURES_DIR, name);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (root == NULL)
        fail_msg("cannot load %s: %s", path, je.text);
    json_t *o = json_incref(json_object_get(json_object_get(root, "data"), "object"));
    json_decref(root);
    return o;
}

static void test_status_mapping(void **state)
{
    (void)state;
    static const struct {
        const char *stripe;
        dispute_status st;
        dispute_resolution res;
    } cases[] = {
        {"warning_needs_response", DISPUTE_OPENED, DISPUTE_RES_NONE},
        {"needs_response", DISPUTE_OPENED, DISPUTE_RES_NONE},
        {"warning_under_review", DISPUTE_UNDER_REVIEW, DISPUTE_RES_NONE},
        {"under_review", DISPUTE_UNDER_REVIEW, DISPUTE_RES_NONE},
        {"won", DISPUTE_CLOSED, DISPUTE_WON},
        {"warning_closed", DISPUTE_CLOSED, DISPUTE_WON},
        {"prevented", DISPUTE_CLOSED, DISPUTE_WON},
        {"lost", DISPUTE_CLOSED, DISPUTE_LOST},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dispute_status st;
        dispute_resolution res;
        assert_int_equal(dispute_map_status(cases[i].stripe, &st, &res), 0);
        assert_int_equal(st, cases[i].st);
        assert_int_equal(res, cases[i].res);
    }
    dispute_status st;
    dispute_resolution res;
    assert_int_equal(dispute_map_status("charge_refunded_maybe", &st, &res), -1);
    assert_int_equal(dispute_map_status(NULL, &st, &res), -1);
    assert_string_equal(dispute_status_name(DISPUTE_UNDER_REVIEW), "under_review");
    assert_null(dispute_resolution_name(DISPUTE_RES_NONE));
    assert_string_equal(dispute_resolution_name(DISPUTE_LOST), "lost");
}

static void test_forward_only(void **state)
{
    (void)state;
    /* higher rank wins whatever the event times */
    assert_true(dispute_moves_forward(DISPUTE_OPENED, 200, DISPUTE_UNDER_REVIEW, 100));
    assert_true(dispute_moves_forward(DISPUTE_UNDER_REVIEW, 200, DISPUTE_CLOSED, 100));
    /* lower rank never */
    assert_false(dispute_moves_forward(DISPUTE_UNDER_REVIEW, 100, DISPUTE_OPENED, 200));
    /* same rank: the newer (or same) event */
    assert_true(dispute_moves_forward(DISPUTE_OPENED, 100, DISPUTE_OPENED, 100));
    assert_true(dispute_moves_forward(DISPUTE_OPENED, 100, DISPUTE_OPENED, 101));
    assert_false(dispute_moves_forward(DISPUTE_OPENED, 101, DISPUTE_OPENED, 100));
    /* closed is final */
    assert_false(dispute_moves_forward(DISPUTE_CLOSED, 100, DISPUTE_CLOSED, 200));
    assert_false(dispute_moves_forward(DISPUTE_CLOSED, 100, DISPUTE_UNDER_REVIEW, 300));
}

/* Rule 11.11: a refund counts while pending or succeeded, not once it
 * failed or was canceled (the old "never goes down" rule is gone). */
static void test_refund_counted(void **state)
{
    (void)state;
    assert_int_equal(refund_counted("succeeded", 500), 500);
    assert_int_equal(refund_counted("pending", 500), 500);
    assert_int_equal(refund_counted("requires_action", 500), 500);
    assert_int_equal(refund_counted("failed", 500), 0);
    assert_int_equal(refund_counted("canceled", 500), 0);
}

static void test_parse_fixtures(void **state)
{
    (void)state;
    char err[256];
    dispute_info d;
    json_t *o = fixture_object("charge.dispute.created.json");
    assert_int_equal(dispute_parse(o, &d, err, sizeof err), 0);
    assert_string_equal(d.id, "dp_1Pgc71B7WZ01zgkWMevJiAUx");
    assert_string_equal(d.charge, "ch_1PgafuB7WZ01zgkWXYmPNZs8");
    assert_string_equal(d.payment_intent, "pi_1PgafyB7WZ01zgkWSjxsAJo3");
    assert_int_equal(d.amount, 1099);
    assert_string_equal(d.currency, "usd");
    assert_string_equal(d.reason, "fraudulent");
    assert_int_equal(d.due_by, 1723679999);
    assert_int_equal(d.status, DISPUTE_OPENED);
    assert_false(d.has_evidence);
    json_decref(o);

    o = fixture_object("charge.dispute.updated.json");
    assert_int_equal(dispute_parse(o, &d, err, sizeof err), 0);
    assert_int_equal(d.status, DISPUTE_UNDER_REVIEW);
    assert_true(d.has_evidence);
    json_decref(o);

    o = fixture_object("charge.dispute.closed.lost.json");
    assert_int_equal(dispute_parse(o, &d, err, sizeof err), 0);
    assert_int_equal(d.status, DISPUTE_CLOSED);
    assert_int_equal(d.resolution, DISPUTE_LOST);
    /* a bad status is refused with the reason */
    json_object_set_new(o, "status", json_string("exploded"));
    assert_int_equal(dispute_parse(o, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "exploded"));
    json_decref(o);

    refund_charge ch;
    o = fixture_object("charge.refunded.partial.json");
    assert_int_equal(refund_charge_parse(o, &ch, err, sizeof err), 0);
    assert_int_equal(ch.amount, 1099);
    assert_int_equal(ch.amount_refunded, 500);
    assert_false(ch.refunded);
    /* a dispute is not a charge */
    json_decref(o);
    o = fixture_object("charge.dispute.created.json");
    assert_int_equal(refund_charge_parse(o, &ch, err, sizeof err), -1);
    json_decref(o);
}

static void test_refund_list_parse(void **state)
{
    (void)state;
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/api/refund.create.200.json", LL_FIXTURES_DIR);
    json_t *refund = json_load_file(path, 0, NULL);
    assert_non_null(refund);
    json_t *list = json_pack("{s:s,s:[O],s:b,s:s}", "object", "list", "data", refund, "has_more", 0,
                             "url", "/v1/refunds");
    refund_info *items = NULL;
    size_t n = 0;
    bool more = true;
    assert_int_equal(refund_list_parse(list, &items, &n, &more, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_false(more);
    assert_string_equal(items[0].id, "re_1Pgc72B7WZ01zgkWqPvrRrPE");
    assert_string_equal(items[0].charge, "ch_1PgafuB7WZ01zgkWXYmPNZs8");
    assert_string_equal(items[0].status, "succeeded");
    assert_int_equal(items[0].amount, 500);
    free(items);
    json_decref(list);
    json_decref(refund);
    /* not a list */
    json_t *bad = json_pack("{s:s}", "object", "refund");
    items = NULL;
    n = 0;
    assert_int_equal(refund_list_parse(bad, &items, &n, &more, err, sizeof err), -1);
    json_decref(bad);
}

static void test_evidence(void **state)
{
    (void)state;
    char err[256];
    /* every key of the fixture's evidence object is known, and no other */
    char path[512];
    snprintf(path, sizeof path, "%s/api/dispute.update.200.json", LL_FIXTURES_DIR);
    json_t *upd = json_load_file(path, 0, NULL);
    assert_non_null(upd);
    const char *k;
    json_t *v;
    size_t nfix = 0, nours = 0;
    json_object_foreach(json_object_get(upd, "evidence"), k, v)
    {
        assert_true(dispute_evidence_field_known(k));
        nfix++;
    }
    while (dispute_evidence_fields[nours] != NULL)
        nours++;
    assert_int_equal(nfix, nours);
    json_decref(upd);

    json_t *doc = json_pack("{s:s,s:s}", "service_date", "2024-07-26", "customer_name", "J R");
    assert_int_equal(dispute_evidence_validate(doc, err, sizeof err), 0);
    stripe_form *f = dispute_evidence_form(doc);
    assert_non_null(f);
    /* sorted keys, bracket notation, submit=true */
    assert_string_equal(stripe_form_body(f),
                        "evidence[customer_name]=J%20R&evidence[service_date]=2024-07-26"
                        "&submit=true");
    char fp1[17], fp2[17];
    dispute_fingerprint(stripe_form_body(f), fp1);
    dispute_fingerprint(stripe_form_body(f), fp2);
    assert_string_equal(fp1, fp2);
    stripe_form_free(f);
    json_object_set_new(doc, "favourite_colour", json_string("blue"));
    assert_int_equal(dispute_evidence_validate(doc, err, sizeof err), -1);
    assert_non_null(strstr(err, "favourite_colour"));
    json_decref(doc);
    doc = json_pack("{s:i}", "receipt", 5);
    assert_int_equal(dispute_evidence_validate(doc, err, sizeof err), -1);
    json_decref(doc);
    doc = json_array();
    assert_int_equal(dispute_evidence_validate(doc, err, sizeof err), -1);
    json_decref(doc);
    doc = json_object();
    assert_int_equal(dispute_evidence_validate(doc, err, sizeof err), -1);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_mapping),    cmocka_unit_test(test_forward_only),
        cmocka_unit_test(test_refund_counted),    cmocka_unit_test(test_parse_fixtures),
        cmocka_unit_test(test_refund_list_parse), cmocka_unit_test(test_evidence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
