/* fuzz_stripe.c: libFuzzer target for what the system reads from Stripe:
 * stripe_classify (common/stripe.c) over any API answer, and
 * stripe_event_parse + stripe_event_refs_of (common/stripe_event.c) over any
 * event body.
 *
 * Input: byte 0 picks the HTTP status (a table of the statuses Stripe
 * answers, plus 0 = no answer and odd ones), byte 1 the Stripe-Should-Retry
 * header (absent, true, false, TRUE, garbage); the rest is the body. The
 * seed corpus is the fixtures' api/ answers and webhook events with two
 * leading bytes (tests/fuzz/CMakeLists.txt). Checks the promises of both
 * headers: classify never fails and always leaves NUL-terminated, bounded
 * fields; a parsed event has a non-empty id and type and an object. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ledgerline/stripe.h"
#include "ledgerline/stripe_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_str(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        __builtin_trap();
}

static void fuzz_classify(long status, const char *should_retry, const uint8_t *body, size_t len)
{
    stripe_result r;
    stripe_classify(status, should_retry, "req_fuzz", (const char *)body, len,
                    "fuzzed network error", &r);
    fuzz_check_str(r.error_type, sizeof r.error_type);
    fuzz_check_str(r.code, sizeof r.code);
    fuzz_check_str(r.decline_code, sizeof r.decline_code);
    fuzz_check_str(r.message, sizeof r.message);
    fuzz_check_str(r.request_id, sizeof r.request_id);
    fuzz_check_str(r.object_id, sizeof r.object_id);
    fuzz_check_str(r.object_status, sizeof r.object_status);
    fuzz_check_str(r.latest_charge, sizeof r.latest_charge);
    if ((unsigned)r.outcome > STRIPE_NETWORK_ERROR || r.http_status != status)
        __builtin_trap();
    /* Every answer that is not a success says something. */
    if (r.outcome != STRIPE_OK && r.message[0] == '\0')
        __builtin_trap();
    /* Only a 2xx JSON object is a success; no answer is a network error. */
    if (r.outcome == STRIPE_OK && (status < 200 || status > 299 || !json_is_object(r.body)))
        __builtin_trap();
    if ((status <= 0) != (r.outcome == STRIPE_NETWORK_ERROR))
        __builtin_trap();
    /* Without Stripe's word, 5xx and 429 may be replayed with the same key,
     * and a decline never is. */
    if (should_retry == NULL && (status == 429 || (status >= 500 && status < 600)) &&
        !stripe_result_transient(&r))
        __builtin_trap();
    if (r.outcome == STRIPE_CARD_ERROR && stripe_result_transient(&r))
        __builtin_trap();
    (void)stripe_outcome_name(r.outcome);
    stripe_result_free(&r);
    if (r.body != NULL)
        __builtin_trap();
}

static void fuzz_event(const uint8_t *body, size_t len)
{
    stripe_event e;
    char err[256];
    if (stripe_event_parse(body, len, &e, err, sizeof err) != 0) {
        fuzz_check_str(err, sizeof err);
        if (e.root != NULL)
            __builtin_trap();
        return;
    }
    fuzz_check_str(e.id, sizeof e.id);
    fuzz_check_str(e.type, sizeof e.type);
    if (e.id[0] == '\0' || e.type[0] == '\0' || !json_is_object(e.object))
        __builtin_trap();
    stripe_event_refs refs;
    stripe_event_refs_of(e.object, &refs);
    fuzz_check_str(refs.payment_intent, sizeof refs.payment_intent);
    fuzz_check_str(refs.charge, sizeof refs.charge);
    fuzz_check_str(refs.metadata_invoice_id, sizeof refs.metadata_invoice_id);
    /* The dotted readers on whatever the object holds. */
    (void)stripe_json_str(e.object, "last_payment_error.decline_code");
    (void)stripe_json_i64(e.object, "amount", -1);
    (void)stripe_json_get(e.root, "data.previous_attributes.status");
    stripe_event_free(&e);
    stripe_event_free(&e); /* twice is harmless */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 402, 400, 429, 500, 0,   401, 403, 404, 409,
                                    502, 503, 201, 204, 301, 418, 599, -1,  600, 100};
    static const char *const retry[] = {NULL, "true", "false", "TRUE", "", "maybe"};
    if (size < 2) {
        fuzz_classify(size ? statuses[data[0] % 20] : 200, NULL, data, size);
        return 0;
    }
    long status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    const char *should_retry = retry[data[1] % (sizeof retry / sizeof retry[0])];
    fuzz_classify(status, should_retry, data + 2, size - 2);
    fuzz_event(data + 2, size - 2);
    return 0;
}
