/* store.c: the stand-in's whole memory (one mutex, see stripe_standin.h):
 * lifecycle, reset, the movable clock, and the request-rate figure tests
 * read from stats. */
#include "stripe_standin.h"

#include <stdlib.h>
#include <string.h>

static void ss_state_new_maps(ss_state *st)
{
    st->records = json_array();
    st->idem = json_object();
    st->intents = json_object();
    st->charges = json_object();
    st->refunds = json_array();
    st->disputes = json_object();
    st->decline_counts = json_object();
    st->fail_once_seen = json_object();
    st->events = json_array();
}

static void ss_state_drop_maps(ss_state *st)
{
    json_t **all[] = {&st->records,        &st->idem,           &st->intents,
                      &st->charges,        &st->refunds,        &st->disputes,
                      &st->decline_counts, &st->fail_once_seen, &st->events};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        json_decref(*all[i]);
        *all[i] = NULL;
    }
}

int ss_state_init(ss_state *st, const char *fixtures_dir, const char *api_key, int latency_ms,
                  int64_t search_lag_s, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    if (ss_fixtures_load(&st->fx, fixtures_dir, err, errlen) != 0)
        return -1;
    pthread_mutex_init(&st->mu, NULL);
    st->api_key = api_key;
    st->latency_initial_ms = latency_ms;
    st->latency_ms = latency_ms;
    st->search_lag_initial_s = search_lag_s;
    st->search_lag_s = search_lag_s;
    st->refund_status_default = "succeeded";
    ss_state_new_maps(st);
    return 0;
}

void ss_state_free(ss_state *st)
{
    ss_state_drop_maps(st);
    free(st->arrivals);
    st->arrivals = NULL;
    ss_fixtures_free(&st->fx);
    pthread_mutex_destroy(&st->mu);
}

void ss_state_reset_locked(ss_state *st)
{
    /* Requests still in flight keep their own reference to their record and
     * find their idempotency entry gone: both are harmless. */
    ss_state_drop_maps(st);
    ss_state_new_maps(st);
    st->seq = 0;
    st->n_arrivals = 0;
    st->max_in_flight = st->in_flight;
    st->latency_ms = st->latency_initial_ms;
    st->fault_status = 0;
    st->fault_count = 0;
    st->fault_should_retry = NULL;
    st->lose_count = 0;
    st->auth_refused = false;
    st->clock_offset = 0;
    st->search_lag_s = st->search_lag_initial_s;
    st->refund_status_default = "succeeded";
    st->event_seq = 0;
    st->pi_created = st->pi_succeeded = st->refunds_created = 0;
    st->disputes_updated = st->replays = 0;
}

int64_t ss_state_max_per_second_locked(const ss_state *st)
{
    /* Arrivals are appended under the lock with a monotonic clock, so they
     * are sorted: a two-pointer sweep finds the fullest 1 s window. */
    size_t lo = 0;
    int64_t best = 0;
    for (size_t hi = 0; hi < st->n_arrivals; hi++) {
        while (st->arrivals[hi] - st->arrivals[lo] >= 1000000000u)
            lo++;
        if ((int64_t)(hi - lo + 1) > best)
            best = (int64_t)(hi - lo + 1);
    }
    return best;
}

int64_t ss_clock_locked(const ss_state *st)
{
    return ss_now_unix() + st->clock_offset;
}
