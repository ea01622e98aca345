/* fixtures.c: loads the Stripe fixture files the stand-in's answers are built
 * from (so every shape is a real one), and makes random ids and reads the
 * real clocks (answers use the movable clock of store.c). */
#include "stripe_standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

static json_t *ss_fixture_file(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (j == NULL) {
        snprintf(err, errlen, "cannot load fixture %s: %s (line %d)", path, je.text, je.line);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(err, errlen, "fixture %s is not a JSON object", path);
        json_decref(j);
        return NULL;
    }
    return j;
}

int ss_fixtures_load(ss_fixtures *fx, const char *dir, char *err, size_t errlen)
{
    memset(fx, 0, sizeof *fx);
    struct {
        json_t **slot;
        const char *name;
    } files[] = {
        {&fx->pi_200, "api/payment_intent.create.200.json"},
        {&fx->pi_402_declined, "api/payment_intent.create.402.card_declined.json"},
        {&fx->pi_402_auth, "api/payment_intent.create.402.authentication_required.json"},
        {&fx->err_429, "api/error.429.json"},
        {&fx->err_500, "api/error.500.json"},
        {&fx->err_400_idem, "api/error.400.idempotency.json"},
        {&fx->dispute_200, "api/dispute.update.200.json"},
        {&fx->refund_200, "api/refund.create.200.json"},
        {&fx->evt_succeeded, "payment_intent.succeeded.json"},
        {&fx->evt_failed, "payment_intent.payment_failed.json"},
        {&fx->evt_refunded, "charge.refunded.json"},
        {&fx->evt_dp_created, "charge.dispute.created.json"},
        {&fx->evt_dp_updated, "charge.dispute.updated.json"},
        {&fx->evt_dp_withdrawn, "charge.dispute.funds_withdrawn.json"},
        {&fx->evt_dp_won, "charge.dispute.closed.won.json"},
        {&fx->evt_dp_lost, "charge.dispute.closed.lost.json"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        *files[i].slot = ss_fixture_file(dir, files[i].name, err, errlen);
        if (*files[i].slot == NULL) {
            ss_fixtures_free(fx);
            return -1;
        }
    }
    /* The builders patch these members; refuse a fixture set without them
     * rather than answer half-built bodies. */
    if (!json_is_object(json_object_get(fx->pi_402_declined, "error")) ||
        !json_is_object(
            json_object_get(json_object_get(fx->pi_402_declined, "error"), "payment_intent")) ||
        !json_is_object(json_object_get(fx->pi_402_auth, "error")) ||
        !json_is_object(json_object_get(fx->dispute_200, "evidence")) ||
        !json_is_object(json_object_get(fx->evt_succeeded, "data")) ||
        !json_is_object(json_object_get(fx->evt_failed, "data")) ||
        !json_is_object(json_object_get(json_object_get(fx->evt_refunded, "data"), "object")) ||
        !json_is_object(json_object_get(json_object_get(fx->evt_dp_created, "data"), "object")) ||
        !json_is_array(
            json_object_get(json_object_get(json_object_get(fx->evt_dp_created, "data"), "object"),
                            "balance_transactions")) ||
        json_array_size(
            json_object_get(json_object_get(json_object_get(fx->evt_dp_won, "data"), "object"),
                            "balance_transactions")) < 2 ||
        !json_is_object(json_object_get(fx->evt_dp_updated, "data")) ||
        !json_is_object(json_object_get(fx->evt_dp_withdrawn, "data")) ||
        !json_is_object(json_object_get(fx->evt_dp_lost, "data"))) {
        snprintf(err, errlen, "fixtures in %s lack the expected members", dir);
        ss_fixtures_free(fx);
        return -1;
    }
    return 0;
}

void ss_fixtures_free(ss_fixtures *fx)
{
    json_t **all[] = {
        &fx->pi_200,         &fx->pi_402_declined,  &fx->pi_402_auth,  &fx->err_429,
        &fx->err_500,        &fx->err_400_idem,     &fx->dispute_200,  &fx->refund_200,
        &fx->evt_succeeded,  &fx->evt_failed,       &fx->evt_refunded, &fx->evt_dp_created,
        &fx->evt_dp_updated, &fx->evt_dp_withdrawn, &fx->evt_dp_won,   &fx->evt_dp_lost};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        json_decref(*all[i]);
        *all[i] = NULL;
    }
}

void ss_random_id(char *out, size_t outlen, const char *prefix, size_t n)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t p = strlen(prefix);
    if (outlen == 0)
        return;
    if (p + n + 1 > outlen)
        n = outlen > p + 1 ? outlen - p - 1 : 0;
    if (p >= outlen)
        p = outlen - 1;
    memcpy(out, prefix, p);
    unsigned char rnd[128];
    if (n > sizeof rnd)
        n = sizeof rnd;
    if (RAND_bytes(rnd, (int)n) != 1) {
        /* Only without an entropy source: ids could then collide, and a
         * stand-in handing out duplicate ids would make tests lie. */
        fprintf(stderr, "stripe-standin: RAND_bytes failed\n");
        abort();
    }
    for (size_t i = 0; i < n; i++)
        out[p + i] = alnum[rnd[i] % 62];
    out[p + n] = '\0';
}

int64_t ss_now_unix(void)
{
    return (int64_t)time(NULL);
}

uint64_t ss_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
