/* control.c: the /__standin/ endpoints tests use to look inside the stand-in
 * and steer it (request log, stats, reset, latency, the clock, fault
 * injection and lost answers, the auth window, search lag, seeded refunds,
 * completing processing intents, refund and dispute life, the event log, and
 * unpaged dumps of what Stripe holds). No auth, no latency, not logged. */
#include "stripe_standin.h"

#include <stdio.h>
#include <string.h>

static bool ss_ctl_i64(const json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (s == NULL || *s == '\0' || strlen(s) > 18)
        return false;
    int64_t n = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        n = n * 10 + (*s - '0');
    }
    *out = n;
    return true;
}

static json_t *ss_ctl_stats_locked(ss_state *st)
{
    return json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:I}", "requests",
        (json_int_t)json_array_size(st->records), "payment_intents_created",
        (json_int_t)st->pi_created, "payment_intents_succeeded", (json_int_t)st->pi_succeeded,
        "max_requests_in_any_second", (json_int_t)ss_state_max_per_second_locked(st),
        "refunds_created", (json_int_t)st->refunds_created, "disputes_updated",
        (json_int_t)st->disputes_updated, "replays", (json_int_t)st->replays, "in_flight",
        (json_int_t)st->in_flight, "max_in_flight", (json_int_t)st->max_in_flight, "latency_ms",
        st->latency_ms, "events", (json_int_t)json_array_size(st->events));
}

/* Fault injection: {"status":401|403|404|429|500,"count":N,"should_retry":...}
 * or {"mode":"lose_answer","count":N}. */
static void ss_ctl_fail_locked(ss_state *st, const json_t *req, ss_answer *a)
{
    int64_t status = 0, count = 0;
    const char *mode = json_string_value(json_object_get(req, "mode"));
    if (!ss_ctl_i64(req, "count", &count) || count < 0) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "count",
                        "count must be a non-negative integer");
        return;
    }
    if (mode != NULL) {
        if (strcmp(mode, "lose_answer") != 0 || json_object_get(req, "status") != NULL) {
            ss_answer_error(a, 400, "invalid_request_error", NULL, "mode",
                            "mode must be lose_answer (without status)");
            return;
        }
        st->lose_count = count;
        a->status = 200;
        a->body = json_pack("{s:s,s:I}", "mode", "lose_answer", "count", (json_int_t)count);
        return;
    }
    if (!ss_ctl_i64(req, "status", &status) ||
        (status != 401 && status != 403 && status != 404 && status != 429 && status != 500)) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "status",
                        "status must be 401, 403, 404, 429 or 500 (or mode lose_answer)");
        return;
    }
    json_t *sr = json_object_get(req, "should_retry");
    const char *retry;
    if (sr == NULL || json_is_null(sr) ||
        (json_is_string(sr) && strcmp(json_string_value(sr), "null") == 0))
        retry = NULL;
    else if (json_is_true(sr) || (json_is_string(sr) && strcmp(json_string_value(sr), "true") == 0))
        retry = "true";
    else if (json_is_false(sr) ||
             (json_is_string(sr) && strcmp(json_string_value(sr), "false") == 0))
        retry = "false";
    else {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "should_retry",
                        "should_retry must be \"true\", \"false\" or null");
        return;
    }
    st->fault_status = (int)status;
    st->fault_count = count;
    st->fault_should_retry = retry;
    a->status = 200;
    a->body = json_pack("{s:i,s:I,s:s?}", "status", (int)status, "count", (json_int_t)count,
                        "should_retry", retry);
}

/* A boolean member: JSON true/false or the strings "true"/"false". */
static bool ss_ctl_bool(const json_t *obj, const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);
    const char *s = json_string_value(v);
    if (json_is_boolean(v))
        *out = json_is_true(v);
    else if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0))
        *out = strcmp(s, "true") == 0;
    else
        return false;
    return true;
}

/* {"advance_s":N} (N >= 0) or {"now":UNIX}: the clock then runs on from there. */
static void ss_ctl_clock_locked(ss_state *st, const json_t *req, ss_answer *a)
{
    int64_t n = 0;
    bool adv = json_object_get(req, "advance_s") != NULL, set = json_object_get(req, "now") != NULL;
    if (adv == set) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, NULL,
                        "send exactly one of advance_s (seconds, >= 0) or now (unix seconds)");
        return;
    }
    if (!ss_ctl_i64(req, adv ? "advance_s" : "now", &n) || n < 0 ||
        n > (int64_t)100 * 366 * 86400 * (adv ? 1 : 50)) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, adv ? "advance_s" : "now",
                        "%s must be a non-negative integer of seconds", adv ? "advance_s" : "now");
        return;
    }
    if (adv)
        st->clock_offset += n;
    else
        st->clock_offset = n - ss_now_unix();
    a->status = 200;
    a->body = json_pack("{s:I}", "now", (json_int_t)ss_clock_locked(st));
}

/* GET /__standin/events?after=SEQ: the log after SEQ, in order. */
static void ss_ctl_events_locked(ss_state *st, const ss_request *rq, ss_answer *a)
{
    json_t *q = ss_form_decode(rq->query, strlen(rq->query));
    int64_t after = 0;
    const char *s = ss_param(q, "after");
    if (q == NULL || (s != NULL && !ss_parse_i64(s, &after))) {
        json_decref(q);
        ss_answer_error(a, 400, "invalid_request_error", NULL, "after",
                        "after must be a non-negative integer (an event seq)");
        return;
    }
    json_decref(q);
    json_t *data = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(st->events, i, e)
    {
        if (json_integer_value(json_object_get(e, "seq")) > after)
            json_array_append(data, e);
    }
    a->status = 200;
    a->body = json_pack("{s:o}", "data", data);
}

static void ss_ctl_data(ss_answer *a, json_t *data)
{
    a->status = 200;
    a->body = json_pack("{s:o}", "data", data);
}

void ss_control_handle(ss_state *st, const ss_request *rq, ss_answer *a)
{
    const char *what = rq->path + strlen("/__standin/");
    bool get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;
    json_t *req = NULL;
    if (post) {
        req = ss_body_object(rq->body != NULL ? rq->body : "", rq->body_len);
        if (req == NULL) {
            ss_answer_error(a, 400, "invalid_request_error", NULL, NULL,
                            "control bodies are a JSON object or form fields");
            return;
        }
    }
    pthread_mutex_lock(&st->mu);
    if (get && strcmp(what, "requests") == 0) {
        a->status = 200;
        a->body = json_deep_copy(st->records);
    } else if (get && strcmp(what, "stats") == 0) {
        a->status = 200;
        a->body = ss_ctl_stats_locked(st);
    } else if (post && strcmp(what, "reset") == 0) {
        ss_state_reset_locked(st);
        a->status = 200;
        a->body = json_pack("{s:b}", "reset", 1);
    } else if (post && strcmp(what, "latency") == 0) {
        int64_t ms = 0;
        if (!ss_ctl_i64(req, "ms", &ms) || ms < 0 || ms > 600000) {
            ss_answer_error(a, 400, "invalid_request_error", NULL, "ms",
                            "ms must be an integer from 0 to 600000");
        } else {
            st->latency_ms = (int)ms;
            a->status = 200;
            a->body = json_pack("{s:i}", "latency_ms", (int)ms);
        }
    } else if (post && strcmp(what, "fail") == 0) {
        ss_ctl_fail_locked(st, req, a);
    } else if (post && strcmp(what, "refunds") == 0) {
        ss_api_seed_refund_locked(st, req, a);
    } else if (post && strcmp(what, "complete") == 0) {
        ss_api_complete_locked(st, json_string_value(json_object_get(req, "payment_intent")),
                               json_string_value(json_object_get(req, "outcome")), a);
    } else if (get && strcmp(what, "clock") == 0) {
        a->status = 200;
        a->body = json_pack("{s:I}", "now", (json_int_t)ss_clock_locked(st));
    } else if (post && strcmp(what, "clock") == 0) {
        ss_ctl_clock_locked(st, req, a);
    } else if (post && strcmp(what, "search_lag") == 0) {
        int64_t lag = 0;
        if (!ss_ctl_i64(req, "s", &lag) || lag < 0 || lag > 86400 * 30) {
            ss_answer_error(a, 400, "invalid_request_error", NULL, "s",
                            "s must be an integer from 0 to 2592000 (clock seconds)");
        } else {
            st->search_lag_s = lag;
            a->status = 200;
            a->body = json_pack("{s:I}", "search_lag_s", (json_int_t)lag);
        }
    } else if (post && strcmp(what, "auth") == 0) {
        bool valid;
        if (!ss_ctl_bool(req, "valid", &valid)) {
            ss_answer_error(a, 400, "invalid_request_error", NULL, "valid",
                            "valid must be true or false");
        } else {
            st->auth_refused = !valid;
            a->status = 200;
            a->body = json_pack("{s:b}", "valid", valid);
        }
    } else if (post && strcmp(what, "refund_default") == 0) {
        const char *s = json_string_value(json_object_get(req, "status"));
        if (s == NULL || (strcmp(s, "pending") != 0 && strcmp(s, "succeeded") != 0)) {
            ss_answer_error(a, 400, "invalid_request_error", NULL, "status",
                            "status must be pending or succeeded");
        } else {
            st->refund_status_default = strcmp(s, "pending") == 0 ? "pending" : "succeeded";
            a->status = 200;
            a->body = json_pack("{s:s}", "status", st->refund_status_default);
        }
    } else if (post && strcmp(what, "refund_update") == 0) {
        ss_refund_update_locked(st, req, a);
    } else if (post && strcmp(what, "dispute") == 0) {
        ss_dispute_open_locked(st, req, a);
    } else if (post && strcmp(what, "dispute_close") == 0) {
        ss_dispute_close_locked(st, req, a);
    } else if (get && strcmp(what, "events") == 0) {
        ss_ctl_events_locked(st, rq, a);
    } else if (get && strcmp(what, "payment_intents") == 0) {
        ss_ctl_data(a, ss_pi_all_locked(st));
    } else if (get && strcmp(what, "refunds") == 0) {
        ss_ctl_data(a, json_deep_copy(st->refunds));
    } else if (get && strcmp(what, "disputes") == 0) {
        ss_ctl_data(a, ss_dispute_all_locked(st));
    } else if (get && strcmp(what, "charges") == 0) {
        ss_ctl_data(a, ss_charge_all_locked(st));
    } else {
        ss_answer_error(a, 404, "invalid_request_error", NULL, NULL,
                        "unknown control endpoint %s %s (GET requests|stats|clock|events|"
                        "payment_intents|refunds|disputes|charges; POST reset|latency|fail|"
                        "refunds|complete|clock|search_lag|auth|refund_default|refund_update|"
                        "dispute|dispute_close)",
                        rq->method, rq->path);
    }
    /* Answers may share objects with the state (a seeded refund): hand out
     * a private copy so it is serialised without the lock. */
    json_t *own = a->body != NULL ? json_deep_copy(a->body) : NULL;
    json_decref(a->body);
    a->body = own;
    pthread_mutex_unlock(&st->mu);
    json_decref(req);
}
