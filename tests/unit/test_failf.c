/* test_failf.c: the error convention of failf.h: the primary message, a
 * detail and a hint on lines of their own, every call returning -1, cut to
 * the buffer and never past it, a NULL buffer ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ledgerline/failf.h"

static void test_primary_detail_hint(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(ll_failf(err, sizeof err, "cannot resume invoice %d: it is not parked", 7),
                     -1);
    assert_int_equal(ll_detailf(err, sizeof err, "Its autopay is %s.", "scheduled"), -1);
    assert_int_equal(
        ll_hintf(err, sizeof err, "Only an invoice in %s is resumed.", "needs_attention"), -1);
    assert_string_equal(err, "cannot resume invoice 7: it is not parked\n"
                             "DETAIL: Its autopay is scheduled.\n"
                             "HINT: Only an invoice in needs_attention is resumed.");
}

static void test_cut_to_the_buffer(void **state)
{
    (void)state;
    char buf[32];
    memset(buf, 'x', sizeof buf);
    char *err = buf + 4; /* 24 bytes, guarded on both sides */
    ll_failf(err, 24, "could not connect: %s", "connection refused by the server");
    assert_int_equal(strlen(err), 23);
    ll_hintf(err, 24, "Is PostgreSQL running?");
    assert_int_equal(strlen(err), 23);
    ll_failf(err, 24, "short");
    ll_detailf(err, 24, "%s", "a detail far longer than what is left");
    assert_int_equal(strlen(err), 23);
    assert_memory_equal(err, "short\nDETAIL: a detail ", 23);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(buf[i], 'x');
        assert_int_equal(buf[28 + i], 'x');
    }
}

static void test_null_buffer(void **state)
{
    (void)state;
    assert_int_equal(ll_failf(NULL, 0, "x %d", 1), -1);
    assert_int_equal(ll_detailf(NULL, 10, "x"), -1);
    char one[1] = {'q'};
    assert_int_equal(ll_hintf(one, 0, "x"), -1);
    assert_int_equal(one[0], 'q');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primary_detail_hint),
        cmocka_unit_test(test_cut_to_the_buffer),
        cmocka_unit_test(test_null_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
