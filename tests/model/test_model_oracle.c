/* test_model_oracle.c: the model test's oracle (oracle.h) against the
 * rules it encodes, one test per rule, with the worked examples of
 * BILLING_RULES section 11 and issue 14's findings. Pure: no database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "model/oracle.h"

/* One client with invoices of the given totals, all `sent`. */
static orc_client client_with(int n, const int64_t *totals)
{
    orc_client c;
    memset(&c, 0, sizeof c);
    c.ninv = n;
    for (int i = 0; i < n; i++) {
        c.inv[i].id = 100 + i;
        c.inv[i].total = totals[i];
        snprintf(c.inv[i].status, sizeof c.inv[i].status, "sent");
    }
    return c;
}

static orc_result ev(orc_client *c, orc_kind kind, int inv, const char *pi, int64_t amount)
{
    orc_event e = {.kind = kind, .inv = inv, .amount = amount};
    snprintf(e.pi, sizeof e.pi, "%s", pi ? pi : "");
    return orc_apply(c, &e);
}

static void dispute(orc_client *c, const char *pi, orc_dstate from, orc_dstate to, int64_t amount)
{
    orc_event e = {.kind = ORC_DISPUTE, .inv = -1, .amount = amount, .from = from, .to = to};
    snprintf(e.pi, sizeof e.pi, "%s", pi);
    assert_int_equal(orc_apply(c, &e), ORC_APPLIED);
}

/* Rule 5: one PaymentIntent's money counts once, however often reported. */
static void test_payment_applies_once(void **state)
{
    (void)state;
    orc_client c = client_with(1, (int64_t[]){1000});
    assert_int_equal(ev(&c, ORC_PAY, 0, "pi_a", 1000), ORC_APPLIED);
    assert_int_equal(ev(&c, ORC_PAY, 0, "pi_a", 1000), ORC_NOTHING);
    assert_int_equal(c.inv[0].paid, 1000);
    assert_string_equal(c.inv[0].status, "paid");
    assert_int_equal(orc_balance(&c), 0);
    assert_int_equal(c.npay, 1);
}

/* Rule 4: a payment above the balance due becomes overpayment credit
 * naming the payment; a partial one leaves the invoice partial. */
static void test_overpayment_becomes_credit(void **state)
{
    (void)state;
    orc_client c = client_with(2, (int64_t[]){1000, 800});
    ev(&c, ORC_PAY, 0, "pi_a", 1500);
    assert_int_equal(c.inv[0].paid, 1000);
    assert_int_equal(c.pay[0].applied, 1000);
    assert_int_equal(orc_balance(&c), 500);
    assert_int_equal(c.credit[0].payment, 0);
    ev(&c, ORC_PAY, 1, "pi_b", 300);
    assert_string_equal(c.inv[1].status, "partial");
    assert_int_equal(c.inv[1].paid, 300);
}

/* Finding 1 / rule 11.1: refunding the excess takes back the overpayment
 * credit and leaves the invoice paid; the rest reduces the invoice by at
 * most what the payment applied (test_finding_1_refund_takes_back_...). */
static void test_refund_takes_back_overpayment_credit_first(void **state)
{
    (void)state;
    orc_client c = client_with(1, (int64_t[]){1000});
    ev(&c, ORC_PAY, 0, "pi_a", 1500);
    ev(&c, ORC_TAKE, -1, "pi_a", 500);
    assert_string_equal(c.inv[0].status, "paid");
    assert_int_equal(c.inv[0].paid, 1000);
    assert_int_equal(orc_balance(&c), 0);
    assert_int_equal(c.credit[0].taken, 500);
    ev(&c, ORC_TAKE, -1, "pi_a", 1000);
    assert_string_equal(c.inv[0].status, "refunded");
    assert_int_equal(c.inv[0].paid, 0);
    assert_int_equal(c.inv[0].refunded, 1500);
    assert_int_equal(orc_balance(&c), 0);
}

/* Finding 1: a duplicate charge refunded in full leaves no credit. */
static void test_duplicate_refunded_leaves_no_credit(void **state)
{
    (void)state;
    orc_client c = client_with(1, (int64_t[]){1000});
    ev(&c, ORC_PAY, 0, "pi_a", 1000);
    ev(&c, ORC_PAY, 0, "pi_b", 1000);
    assert_int_equal(orc_balance(&c), 1000);
    ev(&c, ORC_TAKE, -1, "pi_b", 1000);
    assert_string_equal(c.inv[0].status, "paid");
    assert_int_equal(orc_balance(&c), 0);
}

/* Rule 7: partially refunded invoices are partial, fully refunded ones
 * refunded; "fully" counts the invoice's own money, not the excess. */
static void test_refund_status_counts_the_invoices_own_money(void **state)
{
    (void)state;
    orc_client c = client_with(1, (int64_t[]){1000});
    ev(&c, ORC_PAY, 0, "pi_a", 1000);
    ev(&c, ORC_TAKE, -1, "pi_a", 400);
    assert_string_equal(c.inv[0].status, "partial");
    assert_int_equal(c.inv[0].paid, 600);
    /* a duplicate and its refund (the excess) do not make it refunded */
    orc_client d = client_with(1, (int64_t[]){1000});
    ev(&d, ORC_PAY, 0, "pi_a", 1000);
    ev(&d, ORC_PAY, 0, "pi_b", 1000);
    ev(&d, ORC_TAKE, -1, "pi_b", 1000);
    ev(&d, ORC_TAKE, -1, "pi_a", 200);
    assert_int_equal(d.inv[0].refunded, 1200);
    assert_int_equal(d.inv[0].paid, 800);
    assert_string_equal(d.inv[0].status, "partial");
}

/* Rule 11.1: credit spent elsewhere is not taken back twice; the invoice
 * gives back at most what the payment applied to it. */
static void test_take_back_after_the_credit_was_spent(void **state)
{
    (void)state;
    orc_client c = client_with(2, (int64_t[]){1000, 500});
    ev(&c, ORC_PAY, 0, "pi_a", 1500);
    assert_int_equal(ev(&c, ORC_APPLY, 1, NULL, 0), ORC_APPLIED);
    assert_string_equal(c.inv[1].status, "paid");
    assert_int_equal(orc_balance(&c), 0);
    ev(&c, ORC_TAKE, -1, "pi_a", 1500);
    assert_int_equal(c.inv[0].paid, 0);
    assert_string_equal(c.inv[0].status, "refunded");
    assert_int_equal(c.inv[1].paid, 500);
    assert_int_equal(orc_balance(&c), 0);
    assert_int_equal(c.pay[0].back_invoice, 1000);
}

/* Finding 6 / rule 11.7: credit applied to a failed invoice keeps it
 * failed; paid in full it is paid. */
static void test_credit_keeps_failed_invoices_failed(void **state)
{
    (void)state;
    orc_client c = client_with(1, (int64_t[]){2000});
    snprintf(c.inv[0].status, sizeof c.inv[0].status, "failed");
    ev(&c, ORC_CREDIT, -1, NULL, 300);
    assert_int_equal(ev(&c, ORC_APPLY, 0, NULL, 0), ORC_APPLIED);
    assert_string_equal(c.inv[0].status, "failed");
    assert_int_equal(c.inv[0].paid, 300);
    ev(&c, ORC_PAY, 0, "pi_r", 1700);
    assert_string_equal(c.inv[0].status, "paid");
}

/* Finding 10 / rule 4: an explicit amount above the balance or the balance
 * due is refused; without one, what is available applies; nothing to apply
 * is nothing; closed and disputed invoices take no credit. */
static void test_credit_apply_refusals(void **state)
{
    (void)state;
    orc_client c = client_with(1, (int64_t[]){1000});
    assert_int_equal(ev(&c, ORC_APPLY, 0, NULL, 0), ORC_NOTHING);
    ev(&c, ORC_CREDIT, -1, NULL, 500);
    assert_int_equal(ev(&c, ORC_APPLY, 0, NULL, 800), ORC_REFUSED);
    assert_int_equal(c.inv[0].paid, 0);
    assert_int_equal(ev(&c, ORC_APPLY, 0, NULL, 200), ORC_APPLIED);
    assert_int_equal(ev(&c, ORC_APPLY, 0, NULL, 0), ORC_APPLIED);
    assert_int_equal(c.inv[0].paid, 500);
    assert_int_equal(orc_balance(&c), 0);
    snprintf(c.inv[0].status, sizeof c.inv[0].status, "disputed");
    ev(&c, ORC_CREDIT, -1, NULL, 100);
    assert_int_equal(ev(&c, ORC_APPLY, 0, NULL, 0), ORC_REFUSED);
}

/* Rule 11.8: money for a refunded or charged-back invoice is credit; the
 * invoice does not change. */
static void test_money_for_a_closed_invoice_is_credit(void **state)
{
    (void)state;
    orc_client c = client_with(1, (int64_t[]){1000});
    ev(&c, ORC_PAY, 0, "pi_a", 1000);
    ev(&c, ORC_TAKE, -1, "pi_a", 1000);
    assert_string_equal(c.inv[0].status, "refunded");
    ev(&c, ORC_PAY, 0, "pi_late", 1000);
    assert_string_equal(c.inv[0].status, "refunded");
    assert_int_equal(c.inv[0].paid, 0);
    assert_int_equal(orc_balance(&c), 1000);
    assert_int_equal(c.pay[1].applied, 0);
}

/* Rule 7: a lost dispute charges the invoice back by the disputed amount;
 * 11.1: a lost dispute of the excess comes out of credit and leaves the
 * invoice as it was. */
static void test_lost_dispute(void **state)
{
    (void)state;
    orc_client c = client_with(1, (int64_t[]){1000});
    ev(&c, ORC_PAY, 0, "pi_a", 1000);
    dispute(&c, "pi_a", ORC_D_NONE, ORC_D_OPEN, 1000);
    assert_string_equal(c.inv[0].status, "disputed");
    assert_string_equal(c.inv[0].before_dispute, "paid");
    dispute(&c, "pi_a", ORC_D_OPEN, ORC_D_LOST, 600);
    assert_string_equal(c.inv[0].status, "charged_back");
    assert_int_equal(c.inv[0].paid, 400);

    orc_client d = client_with(1, (int64_t[]){1000});
    ev(&d, ORC_PAY, 0, "pi_a", 1000);
    ev(&d, ORC_PAY, 0, "pi_b", 1000);
    dispute(&d, "pi_b", ORC_D_NONE, ORC_D_LOST, 1000); /* created and closed, first seen closed */
    assert_string_equal(d.inv[0].status, "paid");
    assert_int_equal(d.inv[0].paid, 1000);
    assert_int_equal(orc_balance(&d), 0);
}

/* Rule 7: a won dispute returns the invoice to what it was once no other
 * dispute of it is open. */
static void test_won_dispute_restores(void **state)
{
    (void)state;
    orc_client c = client_with(1, (int64_t[]){1000});
    ev(&c, ORC_PAY, 0, "pi_a", 600);
    ev(&c, ORC_PAY, 0, "pi_b", 400);
    dispute(&c, "pi_a", ORC_D_NONE, ORC_D_OPEN, 600);
    dispute(&c, "pi_b", ORC_D_NONE, ORC_D_OPEN, 400);
    dispute(&c, "pi_a", ORC_D_OPEN, ORC_D_WON, 600);
    assert_string_equal(c.inv[0].status, "disputed");
    dispute(&c, "pi_b", ORC_D_OPEN, ORC_D_WON, 400);
    assert_string_equal(c.inv[0].status, "paid");
    assert_int_equal(c.inv[0].paid, 1000);
}

/* Rule 7 (any order ends as in order): a refund met after a dispute opened
 * keeps the invoice disputed, one met after the chargeback keeps it
 * charged back, with the amounts of the in-order history. */
static void test_refund_after_dispute_keeps_the_dispute_status(void **state)
{
    (void)state;
    orc_client in_order = client_with(1, (int64_t[]){1000});
    ev(&in_order, ORC_PAY, 0, "pi_a", 1000);
    ev(&in_order, ORC_TAKE, -1, "pi_a", 400);
    dispute(&in_order, "pi_a", ORC_D_NONE, ORC_D_LOST, 600);
    orc_client reordered = client_with(1, (int64_t[]){1000});
    ev(&reordered, ORC_PAY, 0, "pi_a", 1000);
    dispute(&reordered, "pi_a", ORC_D_NONE, ORC_D_OPEN, 600);
    ev(&reordered, ORC_TAKE, -1, "pi_a", 400);
    assert_string_equal(reordered.inv[0].status, "disputed");
    dispute(&reordered, "pi_a", ORC_D_OPEN, ORC_D_LOST, 600);
    assert_string_equal(in_order.inv[0].status, "charged_back");
    assert_string_equal(reordered.inv[0].status, "charged_back");
    assert_int_equal(in_order.inv[0].paid, 0);
    assert_int_equal(reordered.inv[0].paid, 0);
    assert_true(orc_same(&in_order, &reordered, NULL, 0));
    /* won: what the refund made of it comes back (partial), as in order */
    orc_client won = client_with(1, (int64_t[]){1000});
    ev(&won, ORC_PAY, 0, "pi_a", 1000);
    dispute(&won, "pi_a", ORC_D_NONE, ORC_D_OPEN, 600);
    ev(&won, ORC_TAKE, -1, "pi_a", 400);
    assert_string_equal(won.inv[0].before_dispute, "partial");
    dispute(&won, "pi_a", ORC_D_OPEN, ORC_D_WON, 600);
    assert_string_equal(won.inv[0].status, "partial");
    assert_int_equal(won.inv[0].paid, 600);
}

/* Rule 11.1 and rule 7: a lost dispute met before its payment (a webhook
 * withheld) takes back as if the payment had landed first: the invoice
 * ends charged back with nothing paid and no credit, as in order. */
static void test_take_back_before_its_payment_ends_as_in_order(void **state)
{
    (void)state;
    orc_client in_order = client_with(1, (int64_t[]){1000});
    ev(&in_order, ORC_PAY, 0, "pi_a", 1000);
    dispute(&in_order, "pi_a", ORC_D_NONE, ORC_D_LOST, 1000);
    orc_client reordered = client_with(1, (int64_t[]){1000});
    orc_event e = {.kind = ORC_DISPUTE,
                   .inv = 0,
                   .amount = 1000,
                   .from = ORC_D_NONE,
                   .to = ORC_D_LOST,
                   .received = 1000};
    snprintf(e.pi, sizeof e.pi, "pi_a");
    orc_apply(&reordered, &e);
    assert_int_equal(ev(&reordered, ORC_PAY, 0, "pi_a", 1000), ORC_NOTHING);
    assert_string_equal(reordered.inv[0].status, "charged_back");
    assert_int_equal(reordered.inv[0].paid, 0);
    assert_int_equal(orc_balance(&reordered), 0);
    assert_true(orc_same(&in_order, &reordered, NULL, 0));
}

/* Rule 11.11: a failed refund gives its money back to the invoice (a
 * refunded one reopens) as far as it came from there, the rest as credit. */
static void test_failed_refund_is_undone(void **state)
{
    (void)state;
    orc_client c = client_with(1, (int64_t[]){1000});
    ev(&c, ORC_PAY, 0, "pi_a", 1000);
    ev(&c, ORC_TAKE, -1, "pi_a", 1000);
    assert_string_equal(c.inv[0].status, "refunded");
    ev(&c, ORC_GIVE, -1, "pi_a", 1000);
    assert_string_equal(c.inv[0].status, "paid");
    assert_int_equal(c.inv[0].paid, 1000);
    assert_int_equal(c.inv[0].refunded, 0);
    assert_int_equal(orc_balance(&c), 0);
    /* the excess's refund failing comes back as credit naming the payment */
    orc_client d = client_with(1, (int64_t[]){1000});
    ev(&d, ORC_PAY, 0, "pi_a", 1500);
    ev(&d, ORC_TAKE, -1, "pi_a", 500);
    ev(&d, ORC_GIVE, -1, "pi_a", 500);
    assert_int_equal(orc_balance(&d), 500);
    assert_int_equal(d.ncredit, 2);
    assert_int_equal(d.credit[1].payment, 0);
}

/* The status check: money decides paid/disputed/refunded/charged_back
 * exactly; an open invoice may be failed or overdue, sent only while
 * nothing is paid, partial only while something is. */
static void test_status_allowed(void **state)
{
    (void)state;
    orc_invoice inv = {.total = 1000, .paid = 0};
    snprintf(inv.status, sizeof inv.status, "sent");
    assert_true(orc_status_allowed(&inv, "sent"));
    assert_true(orc_status_allowed(&inv, "overdue"));
    assert_true(orc_status_allowed(&inv, "failed"));
    assert_false(orc_status_allowed(&inv, "partial"));
    assert_false(orc_status_allowed(&inv, "paid"));
    inv.paid = 300;
    snprintf(inv.status, sizeof inv.status, "partial");
    assert_true(orc_status_allowed(&inv, "partial"));
    assert_false(orc_status_allowed(&inv, "sent"));
    assert_false(orc_status_allowed(&inv, "refunded"));
    snprintf(inv.status, sizeof inv.status, "refunded");
    assert_true(orc_status_allowed(&inv, "refunded"));
    assert_false(orc_status_allowed(&inv, "partial"));
}

/* orc_same compares credit entries as a multiset and says what differs. */
static void test_same_says_what_differs(void **state)
{
    (void)state;
    orc_client a = client_with(1, (int64_t[]){1000});
    ev(&a, ORC_CREDIT, -1, NULL, 100);
    ev(&a, ORC_CREDIT, -1, NULL, 200);
    orc_client b = client_with(1, (int64_t[]){1000});
    ev(&b, ORC_CREDIT, -1, NULL, 200);
    ev(&b, ORC_CREDIT, -1, NULL, 100);
    char why[256];
    assert_true(orc_same(&a, &b, why, sizeof why));
    ev(&b, ORC_PAY, 0, "pi_x", 700);
    assert_false(orc_same(&a, &b, why, sizeof why));
    assert_non_null(strstr(why, "amount_paid"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payment_applies_once),
        cmocka_unit_test(test_overpayment_becomes_credit),
        cmocka_unit_test(test_refund_takes_back_overpayment_credit_first),
        cmocka_unit_test(test_duplicate_refunded_leaves_no_credit),
        cmocka_unit_test(test_refund_status_counts_the_invoices_own_money),
        cmocka_unit_test(test_take_back_after_the_credit_was_spent),
        cmocka_unit_test(test_credit_keeps_failed_invoices_failed),
        cmocka_unit_test(test_credit_apply_refusals),
        cmocka_unit_test(test_money_for_a_closed_invoice_is_credit),
        cmocka_unit_test(test_lost_dispute),
        cmocka_unit_test(test_won_dispute_restores),
        cmocka_unit_test(test_refund_after_dispute_keeps_the_dispute_status),
        cmocka_unit_test(test_take_back_before_its_payment_ends_as_in_order),
        cmocka_unit_test(test_failed_refund_is_undone),
        cmocka_unit_test(test_status_allowed),
        cmocka_unit_test(test_same_says_what_differs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
