/* model_run.h: what running the model needs beside model.h: the shared
 * processes of a run (payh's stand-in, autopay and retry workers, plus the
 * dispute worker) and one batch of histories. */
#ifndef LEDGERLINE_TESTS_MODEL_RUN_H
#define LEDGERLINE_TESTS_MODEL_RUN_H

#include "model.h"
#include "model/oracle.h"
#include "payments/payh.h"

typedef struct {
    payh H;
    pid_t autopay_more[2]; /* instances beside payh's own (one group: partitions split) */
    pid_t dispute;
    char group_dispute[160], log_dispute[256], evidence_file[256];
    uint64_t run_seed;
    bool kills; /* SIGKILL a worker now and then (LL_MODEL_KILLS, default on) */
    model_stats stats;
} model_env;

typedef struct {
    int group;
    char key[256];
} model_wait;

typedef struct {
    const char *topic;
    char key[72];
    char *value; /* owned */
    char id[64], type[48];
} model_msg;

typedef struct {
    model_env *env;
    int index;
    int nh;
    model_history **h;
    model_rng rng;  /* batch-level choices: days, kills, search lag */
    civil_date day; /* the business date of the batch's ticks now */
    int64_t event_seq;
    json_t *pis, *refunds, *disputes, *charges; /* Stripe's dumps, refreshed */
    json_t *requests;                           /* /__standin/requests, fetched before the checks */
    model_wait *waits;
    size_t nwaits, capwaits;
    model_msg *out;
    size_t nout, capout;
    int kill_round; /* -1: none */
    int rounds;
} model_batch;

/* The processes of a run. */
void model_env_start(model_env *env);
void model_env_stop(model_env *env);
/* SIGKILL one worker (0 autopay, 1 retry, 2 dispute, 3 a second autopay
 * instance) and start it again. */
void model_env_kill(model_env *env, int which);
/* Truncates the workers' logs (after a clean batch). */
void model_env_trim_logs(model_env *env);
/* Prints the last lines of the workers' logs to stderr. */
void model_env_dump_logs(model_env *env);

/* Runs one batch: the world of every history, its rounds of operations,
 * quiet, and the snapshots the checks need. only >= 0: only that history
 * of the batch runs (a replay). */
void model_batch_run(model_batch *b);
void model_batch_free(model_batch *b);

/* The checks of every history after quiet; returns the histories that
 * failed (each printed with its seed, replay line and history). */
int model_batch_check(model_batch *b);

/* Helpers shared by exec and check. */
json_t *model_snapshot(model_env *env, int64_t firm);
/* billingctl with the model's environment (Stripe stand-in, prefix). */
int model_ctl(model_env *env, char *out, size_t outsz, char *err, size_t errsz,
              const char *const *argv);
/* The history that invoice id belongs to (NULL: none of this batch). */
model_history *model_history_of_invoice(model_batch *b, int64_t invoice_id, int *inv_index);
/* Stripe's object of an id in one of the batch's dumps (NULL: none). */
json_t *model_find(json_t *dump, const char *id);

#endif
