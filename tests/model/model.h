/* model.h: the randomized model test of Stripe and the books (issue 14,
 * tests/model/README.md). A run is batches of independent short histories,
 * each on a firm of its own, all served by one set of worker processes,
 * the broker, the Stripe stand-in and PostgreSQL.
 *
 *   model_gen.c    the PRNG, each history's world and operations (pure)
 *   model_exec.c   running a batch: rounds of operations, quiet, snapshots
 *   model_check.c  the checks after quiet (reconcile, verify, opt-outs,
 *                  one success per key, unfinished attempts, the oracle)
 *   test_model.c   the run: environment, batches, the summary
 */
#ifndef LEDGERLINE_TESTS_MODEL_H
#define LEDGERLINE_TESTS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ledgerline/date.h"

/* ---- the PRNG (splitmix64: seeded, reproducible, one per history) ------ */

typedef struct {
    uint64_t s;
} model_rng;

uint64_t model_mix(uint64_t x);
uint64_t model_next(model_rng *r);
/* 0 .. n-1 (n > 0). */
uint64_t model_below(model_rng *r, uint64_t n);
/* true with probability pct / 100. */
bool model_chance(model_rng *r, unsigned pct);
/* The seed of history `index` / batch `batch` of a run. */
uint64_t model_history_seed(uint64_t run_seed, uint64_t index);
uint64_t model_batch_seed(uint64_t run_seed, uint64_t batch);

/* ---- operations -------------------------------------------------------- */

typedef enum {
    OP_AUTOPAY_TICK = 0, /* an autopay tick of the history's firm on the batch's date */
    OP_RETRY_TICK,       /* a retry tick (retries and overdue) */
    OP_LOST_ANSWER,      /* a tick whose answers are lost after Stripe acted */
    OP_BURST_500,        /* a tick inside a burst of 500s */
    OP_BURST_429,        /* a tick inside a burst of 429s */
    OP_AUTH_401,         /* a tick inside a window where Stripe refuses our key */
    OP_WEBHOOKS,         /* the stand-in's logged events delivered (a mode: see exec) */
    OP_CARD_CHANGE,      /* a client's payment method replaced */
    OP_AUTOPAY_OFF,      /* a client turns autopay off */
    OP_AUTOPAY_ON,       /* ... and on */
    OP_CREDIT_ADD,       /* billingctl credit add */
    OP_CREDIT_APPLY,     /* billingctl credit apply (all, an amount, too much) */
    OP_REFUND,           /* billingctl refund: full, partial or the excess */
    OP_REFUND_MOVE,      /* a refund at Stripe fails (or a pending one settles) */
    OP_DISPUTE_OPEN,     /* the customer disputes a succeeded charge */
    OP_DISPUTE_CLOSE,    /* Stripe closes a dispute, won or lost */
    OP_DISPUTE_EVIDENCE, /* billingctl dispute evidence (charge.dispute.updated) */
    OP_PAY_TWICE,        /* a PaymentIntent made outside our workers (dashboard) */
    OP_COMPLETE,         /* a processing PaymentIntent settles, succeeded or failed */
    OP_NKINDS
} model_op_kind;

const char *model_op_name(model_op_kind k);
/* A tick whose Stripe faults belong to it alone: run in a phase of its own. */
bool model_op_faulted(model_op_kind k);

typedef struct {
    model_op_kind kind;
    uint64_t a, b, c; /* random parameters, read by the operation */
} model_op;

/* A payment method from the stand-in's table ("" = none stored). */
const char *model_pick_pm(model_rng *r);

/* ---- a history ----------------------------------------------------------- */

#define MODEL_MAX_CLIENTS 2
#define MODEL_MAX_INVOICES 3
#define MODEL_MAX_OPS 20
#define MODEL_MAX_EVENTS 96
#define MODEL_MAX_SNAPS (MODEL_MAX_OPS + 16)
/* Histories in one batch at most (LL_MODEL_BATCH). Larger batches share
 * each round's fixed waits (the fault phases run one at a time) among more
 * histories: 100 ran at ~50 histories a minute, see README.md. */
#define MODEL_MAX_BATCH 1000

typedef struct {
    char pm[64]; /* "" = none stored */
    bool autopay;
    bool autopay0; /* at the start */
    int64_t id;
    char customer[40];
} model_client;

typedef struct {
    int client;
    int64_t total;
    int due_days;
    char cadence[12];
    int64_t id;
} model_invoice;

/* A Stripe event logged for this history, waiting to be delivered. */
typedef struct {
    char *body;
    char id[64], type[48], key[72];
    const char *topic; /* TOPIC_STRIPE_PAYMENTS or TOPIC_STRIPE_DISPUTES */
    int group;         /* MODEL_G_* */
    bool withheld;     /* delivered only at the end (Stripe retries for 3 days) */
    int delivered;     /* times published */
} model_event;

enum { MODEL_G_AUTOPAY = 0, MODEL_G_RETRY, MODEL_G_DISPUTE, MODEL_NGROUPS };

/* A client's autopay toggle, at the stand-in's request count then. */
typedef struct {
    int client;
    bool on;
    int64_t seq;
} model_toggle;

/* What one step did, for the oracle: the books after it (snap), and the
 * credit the history itself moved in it. */
typedef struct {
    char what[160];
    json_t *snap;         /* the firm's books after the step */
    int64_t credit_added; /* billingctl credit add (0 none) */
    int credit_client;
    int apply_inv;     /* billingctl credit apply on this invoice (-1 none) */
    int64_t apply_max; /* --amount-cents (0 = none) */
    int apply_rc;
} model_step;

typedef struct {
    int index;
    uint64_t seed;
    int64_t firm;
    int nclients, ninv, nops;
    model_client cl[MODEL_MAX_CLIENTS];
    model_invoice inv[MODEL_MAX_INVOICES];
    model_op ops[MODEL_MAX_OPS];
    model_rng rng; /* for choices made while running (subsets, orders) */

    /* running */
    int nevents;
    model_event ev[MODEL_MAX_EVENTS];
    int ntoggles;
    model_toggle toggles[16];
    bool paid_twice; /* made a PaymentIntent outside our workers */
    int nsteps;
    model_step steps[MODEL_MAX_SNAPS];
    int split[2]; /* the next shard split for the date below (autopay, retry) */
    char split_date[2][16];
    char *log; /* what happened, one line per step */
    size_t loglen, logcap;
    bool failed;
} model_history;

/* Builds the world and the operations of history `index` from its seed. */
void model_history_init(model_history *h, uint64_t run_seed, int index);
void model_history_free(model_history *h);
void model_log(model_history *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- counting ------------------------------------------------------------ */

typedef struct {
    int64_t histories, failed_histories;
    int64_t ops[OP_NKINDS], skipped[OP_NKINDS];
    int64_t events_delivered, duplicates, withheld, replays;
    int64_t kills, batches, unchecked_steps;
    double t_local, t_faulted, t_collect, t_quiet, t_check; /* seconds spent */
} model_stats;

#endif
