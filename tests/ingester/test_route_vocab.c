/* test_route_vocab.c: vocab.h's tables, in C alone (no broker, no
 * database). Every Stripe event type of LL_STRIPE_EVENT_MAP routes through
 * the ingester's route_event_parse to the topic and key its row says, and
 * the workers classify it into its row's family; an unknown type is still
 * ignored (accepted, not published, no key). The word lists hold no
 * duplicates, and the C enums that predate them (notify_kind,
 * dispute_status) name their values with the tables' words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/disputes.h"
#include "ledgerline/notify.h"
#include "ledgerline/payment_events.h"
#include "ledgerline/payments.h"
#include "ledgerline/topics.h"
#include "ledgerline/vocab.h"
#include "route.h"

/* An event of type t whose object carries every field a key may come from. */
static int route_type(const char *type, route_event *ev)
{
    char body[1024], err[256];
    int n = snprintf(body, sizeof body,
                     "{\"id\":\"evt_v1\",\"type\":\"%s\",\"data\":{\"object\":{\"id\":\"obj_1\","
                     "\"payment_intent\":\"pi_1\",\"charge\":\"ch_1\"}}}",
                     type);
    assert_true(n > 0 && (size_t)n < sizeof body);
    return route_event_parse(body, (size_t)n, ev, err, sizeof err);
}

static const char *expected_key(stripe_object o)
{
    switch (o) {
    case STRIPE_OBJECT_INVOICE: return "pi_1";
    case STRIPE_OBJECT_DISPUTE: return "ch_1";
    default: return "obj_1";
    }
}

static void test_every_type_routes_as_its_row(void **state)
{
    (void)state;
    size_t n = 0;
    for (int t = 0; t < STRIPE_EVENT_COUNT; t++, n++) {
        const char *type = stripe_event_type_name((stripe_event_type)t);
        assert_non_null(type);
        assert_int_equal(stripe_event_type_of(type), t);
        assert_string_equal(route_known_types[t], type);
        route_event ev;
        assert_int_equal(route_type(type, &ev), 0);
        assert_int_equal(ev.known, t);
        const char *want = stripe_event_stream((stripe_event_type)t) == STRIPE_STREAM_PAYMENTS
                               ? TOPIC_STRIPE_PAYMENTS
                               : TOPIC_STRIPE_DISPUTES;
        assert_non_null(route_topic(ev.dest));
        assert_string_equal(route_topic(ev.dest), want);
        assert_string_equal(ev.key, expected_key(stripe_event_object((stripe_event_type)t)));
    }
    assert_null(route_known_types[n]);
    assert_int_equal(n, 12);
}

static void test_unknown_type_is_ignored(void **state)
{
    (void)state;
    const char *unknown[] = {"customer.created", "charge.succeeded", "payment_intent",
                             "charge.dispute.created.x", "PAYMENT_INTENT.SUCCEEDED"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        route_event ev;
        assert_int_equal(route_type(unknown[i], &ev), 0);
        assert_int_equal(ev.dest, ROUTE_IGNORED);
        assert_int_equal(ev.known, -1);
        assert_null(route_topic(ev.dest));
        assert_string_equal(ev.key, "");
        assert_string_equal(ev.type, unknown[i]);
        assert_int_equal(stripe_event_type_of(unknown[i]), STRIPE_EVENT_UNKNOWN);
        assert_int_equal(payment_event_kind_of(unknown[i]), PAYMENT_EVENT_OTHER);
    }
    assert_int_equal(stripe_event_type_of(NULL), STRIPE_EVENT_UNKNOWN);
    assert_null(stripe_event_type_name(STRIPE_EVENT_UNKNOWN));
}

/* The payment workers' classification follows the family column. */
static void test_families(void **state)
{
    (void)state;
    for (int t = 0; t < STRIPE_EVENT_COUNT; t++) {
        const char *type = stripe_event_type_name((stripe_event_type)t);
        payment_event_kind want = PAYMENT_EVENT_OTHER;
        switch (stripe_event_family((stripe_event_type)t)) {
        case STRIPE_FAMILY_PAYMENT_SUCCESS: want = PAYMENT_EVENT_SUCCESS; break;
        case STRIPE_FAMILY_PAYMENT_PROCESSING: want = PAYMENT_EVENT_PROCESSING; break;
        case STRIPE_FAMILY_PAYMENT_FAILURE: want = PAYMENT_EVENT_FAILURE; break;
        default: break;
        }
        assert_int_equal(payment_event_kind_of(type), want);
        /* the payments stream carries exactly the payment families */
        assert_int_equal(stripe_event_stream((stripe_event_type)t) == STRIPE_STREAM_PAYMENTS,
                         want != PAYMENT_EVENT_OTHER);
    }
    /* as before the table: the literal types */
    assert_int_equal(payment_event_kind_of("invoice.payment_succeeded"), PAYMENT_EVENT_SUCCESS);
    assert_int_equal(payment_event_kind_of("payment_intent.processing"), PAYMENT_EVENT_PROCESSING);
    assert_int_equal(payment_event_kind_of("invoice.payment_failed"), PAYMENT_EVENT_FAILURE);
    assert_int_equal(payment_event_kind_of("charge.refunded"), PAYMENT_EVENT_OTHER);
}

static void assert_no_duplicates(const ll_vocab *v)
{
    assert_true(v->count > 0);
    for (size_t i = 0; i < v->count; i++) {
        assert_int_equal(ll_vocab_find(v, v->names[i]), (int)i);
        assert_true(ll_vocab_is(v, v->names[i], (int)i));
    }
    assert_int_equal(ll_vocab_find(v, "no such word"), -1);
    assert_int_equal(ll_vocab_find(v, NULL), -1);
    assert_null(ll_vocab_name(v, -1));
    assert_null(ll_vocab_name(v, (int)v->count));
    assert_false(ll_vocab_is(v, NULL, 0));
}

static void test_word_lists(void **state)
{
    (void)state;
    const ll_vocab *all[] = {
        &ll_hard_declines,      &ll_soft_failures,         &ll_invoice_statuses,
        &ll_autopay_statuses,   &ll_attempt_statuses,      &ll_attempt_kinds,
        &ll_notification_kinds, &ll_notification_statuses, &ll_document_kinds,
        &ll_dispute_statuses,   &ll_refund_statuses,       &ll_line_types};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        assert_no_duplicates(all[i]);
    assert_int_equal(ll_invoice_statuses.count, INVOICE_STATUS_COUNT);
    assert_string_equal(ll_invoice_statuses.names[INVOICE_STATUS_VOID], "void");
    assert_string_equal(ll_autopay_statuses.names[AUTOPAY_STATUS_NEEDS_ATTENTION],
                        "needs_attention");
    /* a code is a hard decline or a labelled soft failure, never both */
    for (size_t i = 0; i < ll_hard_declines.count; i++) {
        const char *code = ll_hard_declines.names[i];
        assert_true(payments_is_hard_decline(code));
        assert_int_equal(ll_vocab_find(&ll_soft_failures, code), -1);
        assert_string_equal(payments_failure_code_label(code), code);
    }
    for (size_t i = 0; i < ll_soft_failures.count; i++) {
        assert_false(payments_is_hard_decline(ll_soft_failures.names[i]));
        assert_string_equal(payments_failure_code_label(ll_soft_failures.names[i]),
                            ll_soft_failures.names[i]);
    }
    assert_false(payments_is_hard_decline(NULL));
    assert_false(payments_is_hard_decline("EXPIRED_CARD"));
    assert_string_equal(payments_failure_code_label("something_new"), "other");
    assert_string_equal(payments_failure_code_label(NULL), "other");
}

/* Enums older than the tables name their values with the tables' words. */
static void test_older_enums_agree(void **state)
{
    (void)state;
    for (int k = 0; k < NOTIFICATION_KIND_COUNT; k++)
        assert_string_equal(notify_kind_name((notify_kind)k), ll_notification_kinds.names[k]);
    assert_string_equal(notify_kind_name((notify_kind)NOTIFICATION_KIND_COUNT), "unknown");
    for (int s = 0; s < DISPUTE_STATUS_COUNT; s++)
        assert_string_equal(dispute_status_name((dispute_status)s), ll_dispute_statuses.names[s]);
    assert_string_equal(dispute_status_name((dispute_status)7), "opened");
    assert_int_equal(refund_counted("failed", 500), 0);
    assert_int_equal(refund_counted("canceled", 500), 0);
    assert_int_equal(refund_counted("pending", 500), 500);
    assert_int_equal(refund_counted("succeeded", 500), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_routes_as_its_row),
        cmocka_unit_test(test_unknown_type_is_ignored),
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_word_lists),
        cmocka_unit_test(test_older_enums_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
