/* control.c: the /__standin/ endpoints tests use to look inside the stand-in
 * and steer it (request log, stats, reset, latency, fault injection, seeded
 * refunds, completing processing intents). No auth, no latency, not logged. */
#include "stripe_standin.h"

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
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i}", "requests",
                     (json_int_t)json_array_size(st->records), "payment_intents_created",
                     (json_int_t)st->pi_created, "payment_intents_succeeded",
                     (json_int_t)st->pi_succeeded, "max_requests_in_any_second",
                     (json_int_t)ss_state_max_per_second_locked(st), "refunds_created",
                     (json_int_t)st->refunds_created, "disputes_updated",
                     (json_int_t)st->disputes_updated, "replays", (json_int_t)st->replays,
                     "in_flight", (json_int_t)st->in_flight, "max_in_flight",
                     (json_int_t)st->max_in_flight, "latency_ms", st->latency_ms);
}

/* Fault injection: {"status":429|500,"count":N,"should_retry":"true"|"false"|null}. */
static void ss_ctl_fail_locked(ss_state *st, const json_t *req, ss_answer *a)
{
    int64_t status = 0, count = 0;
    if (!ss_ctl_i64(req, "status", &status) || (status != 429 && status != 500)) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "status", "status must be 429 or 500");
        return;
    }
    if (!ss_ctl_i64(req, "count", &count) || count < 0) {
        ss_answer_error(a, 400, "invalid_request_error", NULL, "count",
                        "count must be a non-negative integer");
        return;
    }
    json_t *sr = json_object_get(req, "should_retry");
    const char *retry;
    if (sr == NULL || json_is_null(sr) ||
        (json_is_string(sr) && strcmp(json_string_value(sr), "null") == 0))
        retry = NULL;
    else if (json_is_true(sr) || (json_is_string(sr) && strcmp(json_string_value(sr), "true") == 0))
        retry = "true";
    else if (json_is_false(sr) || (json_is_string(sr) && strcmp(json_string_value(sr), "false") == 0))
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
    } else {
        ss_answer_error(a, 404, "invalid_request_error", NULL, NULL,
                        "unknown control endpoint %s %s (GET requests|stats; POST reset|latency|"
                        "fail|refunds|complete)",
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
