/* model_gen.c: the model's PRNG and each history's world and operations,
 * drawn from the history's own seed only, so that one history can be
 * replayed alone (LL_MODEL_ONLY). Pure: nothing here touches the system. */
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t model_mix(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

uint64_t model_next(model_rng *r)
{
    r->s += UINT64_C(0x9E3779B97F4A7C15);
    uint64_t x = r->s;
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

uint64_t model_below(model_rng *r, uint64_t n)
{
    return n ? model_next(r) % n : 0;
}

bool model_chance(model_rng *r, unsigned pct)
{
    return model_below(r, 100) < pct;
}

uint64_t model_history_seed(uint64_t run_seed, uint64_t index)
{
    return model_mix(run_seed ^ model_mix(index + 1));
}

uint64_t model_batch_seed(uint64_t run_seed, uint64_t batch)
{
    return model_mix(run_seed ^ model_mix(UINT64_C(0xB47C0000) + batch));
}

static const char *const op_names[OP_NKINDS] = {
    "autopay_tick",  "retry_tick",       "lost_answer", "burst_500",   "burst_429",
    "auth_401",      "webhooks",         "card_change", "autopay_off", "autopay_on",
    "credit_add",    "credit_apply",     "refund",      "refund_move", "dispute_open",
    "dispute_close", "dispute_evidence", "pay_twice",   "complete"};

const char *model_op_name(model_op_kind k)
{
    return (unsigned)k < OP_NKINDS ? op_names[k] : "?";
}

bool model_op_faulted(model_op_kind k)
{
    return k == OP_LOST_ANSWER || k == OP_BURST_500 || k == OP_BURST_429 || k == OP_AUTH_401;
}

/* How often each operation is drawn (out of their sum): in the first
 * part of a history mostly what charges, later more of what follows money
 * (refunds, disputes), so that fewer operations find nothing to act on. */
static const unsigned op_weights[2][OP_NKINDS] = {{[OP_AUTOPAY_TICK] = 20,
                                                   [OP_RETRY_TICK] = 6,
                                                   [OP_LOST_ANSWER] = 7,
                                                   [OP_BURST_500] = 4,
                                                   [OP_BURST_429] = 1,
                                                   [OP_AUTH_401] = 3,
                                                   [OP_WEBHOOKS] = 12,
                                                   [OP_CARD_CHANGE] = 5,
                                                   [OP_AUTOPAY_OFF] = 3,
                                                   [OP_AUTOPAY_ON] = 2,
                                                   [OP_CREDIT_ADD] = 5,
                                                   [OP_CREDIT_APPLY] = 4,
                                                   [OP_REFUND] = 3,
                                                   [OP_REFUND_MOVE] = 1,
                                                   [OP_DISPUTE_OPEN] = 2,
                                                   [OP_DISPUTE_CLOSE] = 1,
                                                   [OP_DISPUTE_EVIDENCE] = 0,
                                                   [OP_PAY_TWICE] = 3,
                                                   [OP_COMPLETE] = 3},
                                                  {[OP_AUTOPAY_TICK] = 10,
                                                   [OP_RETRY_TICK] = 8,
                                                   [OP_LOST_ANSWER] = 4,
                                                   [OP_BURST_500] = 3,
                                                   [OP_BURST_429] = 1,
                                                   [OP_AUTH_401] = 2,
                                                   [OP_WEBHOOKS] = 16,
                                                   [OP_CARD_CHANGE] = 3,
                                                   [OP_AUTOPAY_OFF] = 3,
                                                   [OP_AUTOPAY_ON] = 2,
                                                   [OP_CREDIT_ADD] = 4,
                                                   [OP_CREDIT_APPLY] = 5,
                                                   [OP_REFUND] = 10,
                                                   [OP_REFUND_MOVE] = 5,
                                                   [OP_DISPUTE_OPEN] = 6,
                                                   [OP_DISPUTE_CLOSE] = 6,
                                                   [OP_DISPUTE_EVIDENCE] = 1,
                                                   [OP_PAY_TWICE] = 2,
                                                   [OP_COMPLETE] = 3}};

/* The stand-in's payment methods (its README's table), by weight. */
static const struct {
    const char *pm;
    unsigned weight;
} pm_table[] = {
    {"pm_card_visa", 26},
    {"pm_card_mastercard", 8},
    {"pm_card_chargeDeclinedInsufficientFunds", 9},
    {"pm_card_chargeDeclined", 4},
    {"pm_card_chargeDeclinedExpiredCard", 4},
    {"pm_card_chargeDeclinedLostCard", 2},
    {"pm_card_authenticationRequired", 2},
    {"pm_standin_declines_1_then_visa", 9},
    {"pm_standin_declines_2_then_visa", 6},
    {"pm_standin_declines_3_then_visa", 3},
    {"pm_standin_processing", 5},
    {"pm_standin_500_then_visa", 4},
    {"pm_standin_429_then_visa", 1},
    {"", 3}, /* autopay on with no payment method stored */
};

const char *model_pick_pm(model_rng *r)
{
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof pm_table / sizeof pm_table[0]; i++)
        sum += pm_table[i].weight;
    unsigned x = (unsigned)model_below(r, sum);
    for (size_t i = 0; i < sizeof pm_table / sizeof pm_table[0]; i++) {
        if (x < pm_table[i].weight)
            return pm_table[i].pm;
        x -= pm_table[i].weight;
    }
    return "pm_card_visa";
}

static model_op_kind pick_op(model_rng *r, bool late)
{
    const unsigned *w = op_weights[late];
    unsigned sum = 0;
    for (int k = 0; k < OP_NKINDS; k++)
        sum += w[k];
    unsigned x = (unsigned)model_below(r, sum);
    for (int k = 0; k < OP_NKINDS; k++) {
        if (x < w[k])
            return (model_op_kind)k;
        x -= w[k];
    }
    return OP_AUTOPAY_TICK;
}

void model_log(model_history *h, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = strlen(line);
    if (h->loglen + len + 2 > h->logcap) {
        size_t cap = h->logcap ? h->logcap * 2 : 4096;
        while (cap < h->loglen + len + 2)
            cap *= 2;
        char *grown = realloc(h->log, cap);
        if (grown == NULL)
            return;
        h->log = grown;
        h->logcap = cap;
    }
    memcpy(h->log + h->loglen, line, len);
    h->loglen += len;
    h->log[h->loglen++] = '\n';
    h->log[h->loglen] = '\0';
}

void model_history_init(model_history *h, uint64_t run_seed, int index)
{
    memset(h, 0, sizeof *h);
    h->index = index;
    h->seed = model_history_seed(run_seed, (uint64_t)index);
    model_rng r = {h->seed};
    h->nclients = 1 + (int)model_below(&r, MODEL_MAX_CLIENTS);
    for (int c = 0; c < h->nclients; c++) {
        snprintf(h->cl[c].pm, sizeof h->cl[c].pm, "%s", model_pick_pm(&r));
        h->cl[c].autopay = h->cl[c].autopay0 = model_chance(&r, 80);
    }
    h->ninv = 1 + (int)model_below(&r, MODEL_MAX_INVOICES);
    for (int i = 0; i < h->ninv; i++) {
        model_invoice *v = &h->inv[i];
        v->client = (int)model_below(&r, (uint64_t)h->nclients);
        /* 5.00 .. 200.00 in steps of 0.50, so halves and excesses are whole */
        v->total = 500 + 50 * (int64_t)model_below(&r, 391);
        v->due_days = (int)model_below(&r, 12);
        static const char *const cadences[] = {"on_issue", "on_issue", "on_issue", "on_due",
                                               "monthly"};
        snprintf(v->cadence, sizeof v->cadence, "%s", cadences[model_below(&r, 5)]);
    }
    h->nops = 8 + (int)model_below(&r, MODEL_MAX_OPS - 8 + 1);
    for (int k = 0; k < h->nops; k++) {
        model_op *o = &h->ops[k];
        /* the first operation charges (its answers lost now and then) */
        o->kind = k == 0 ? (model_chance(&r, 75) ? OP_AUTOPAY_TICK : OP_LOST_ANSWER)
                         : pick_op(&r, 5 * k >= 2 * h->nops);
        o->a = model_next(&r);
        o->b = model_next(&r);
        o->c = model_next(&r);
    }
    /* choices made while running (which events, which order) */
    h->rng.s = model_next(&r);
}

void model_history_free(model_history *h)
{
    for (int e = 0; e < h->nevents; e++)
        free(h->ev[e].body);
    for (int s = 0; s < h->nsteps; s++)
        json_decref(h->steps[s].snap);
    free(h->log);
    memset(h, 0, sizeof *h);
}
