/* test_model.c: the randomized model of Stripe and the books (issue 14,
 * tests/model/README.md). Runs LL_MODEL_HISTORIES short random histories
 * (default 60; the sanitizer build's ctest sets fewer) in batches of
 * LL_MODEL_BATCH (default 20) from LL_MODEL_SEED (default 14), against the
 * real autopay, retry and dispute workers, the dev broker of the local
 * stack, the Stripe stand-in and PostgreSQL; checks every history after
 * quiet (model_check.c) and prints what ran. LL_MODEL_ONLY=<index> replays
 * one history alone (its batch's days, kills and search lag included).
 * LL_MODEL_KILLS=0 runs without killing workers. Needs DATABASE_URL and
 * KAFKA_BROKERS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "model_run.h"

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return dflt;
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end != '\0') {
        fprintf(stderr, "model: %s must be a whole number, not '%s'\n", name, v);
        exit(2);
    }
    return (uint64_t)x;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void summary(const model_env *env, uint64_t seed, double elapsed, int64_t planned)
{
    const model_stats *s = &env->stats;
    printf("model: seed %llu: %lld of %lld histories run, %lld failed, %lld batches, %.1f s"
           " (%.1f histories/min)\n",
           (unsigned long long)seed, (long long)s->histories, (long long)planned,
           (long long)s->failed_histories, (long long)s->batches, elapsed,
           elapsed > 0 ? (double)s->histories * 60.0 / elapsed : 0.0);
    printf("model: operations run (skipped because they made no sense then):\n");
    int64_t total = 0, skipped = 0;
    for (int k = 0; k < OP_NKINDS; k++) {
        printf("  %-18s %7lld (%lld skipped)\n", model_op_name((model_op_kind)k),
               (long long)s->ops[k], (long long)s->skipped[k]);
        total += s->ops[k];
        skipped += s->skipped[k];
    }
    printf("  %-18s %7lld (%lld skipped)\n", "all", (long long)total, (long long)skipped);
    printf("model: %lld events delivered (%lld duplicates, %lld withheld until the end, %lld"
           " dead letters replayed), %lld worker kills, %lld steps too busy for the oracle\n",
           (long long)s->events_delivered, (long long)s->duplicates, (long long)s->withheld,
           (long long)s->replays, (long long)s->kills, (long long)s->unchecked_steps);
    printf("model: time in rounds %.0f s (faulted phases %.0f s, reading Stripe and the books"
           " %.0f s), quiet %.0f s, checks %.0f s\n",
           s->t_local + s->t_faulted + s->t_collect, s->t_faulted, s->t_collect, s->t_quiet,
           s->t_check);
    fflush(stdout);
}

static void test_model(void **state)
{
    (void)state;
    static model_env env;
    memset(&env, 0, sizeof env);
    uint64_t seed = env_u64("LL_MODEL_SEED", 14);
    int64_t histories = (int64_t)env_u64("LL_MODEL_HISTORIES", 60);
    int64_t per_batch = (int64_t)env_u64("LL_MODEL_BATCH", 20);
    int64_t only = getenv("LL_MODEL_ONLY") && getenv("LL_MODEL_ONLY")[0]
                       ? (int64_t)env_u64("LL_MODEL_ONLY", 0)
                       : -1;
    int shard = 0, shards = 1;
    const char *sh = getenv("LL_MODEL_SHARD");
    if (sh != NULL && sh[0] != '\0' &&
        (sscanf(sh, "%d/%d", &shard, &shards) != 2 || shards < 1 || shard < 0 || shard >= shards)) {
        fprintf(stderr, "model: LL_MODEL_SHARD must be K/N with 0 <= K < N (got '%s')\n", sh);
        exit(2);
    }
    env.run_seed = seed;
    env.kills = env_u64("LL_MODEL_KILLS", 1) != 0;
    if (per_batch < 1 || per_batch > MODEL_MAX_BATCH) {
        fprintf(stderr, "model: LL_MODEL_BATCH must be 1 .. %d\n", MODEL_MAX_BATCH);
        exit(2);
    }
    printf("model: seed %llu, %lld histories in batches of %lld%s", (unsigned long long)seed,
           (long long)histories, (long long)per_batch, only >= 0 ? " (one replayed)" : "");
    if (shards > 1 && only < 0)
        printf(", this process runs batch k where k %% %d = %d", shards, shard);
    printf("\n");
    fflush(stdout);
    model_env_start(&env);
    double t0 = now_s();
    int64_t failed = 0, planned = 0;
    int64_t first_batch = only >= 0 ? only / per_batch : 0;
    int64_t last_batch = only >= 0 ? first_batch : (histories + per_batch - 1) / per_batch - 1;
    static model_history hist[MODEL_MAX_BATCH];
    static model_history *ptrs[MODEL_MAX_BATCH];
    for (int64_t bi = first_batch; bi <= last_batch; bi++) {
        if (only < 0 && bi % shards != shard)
            continue;
        planned += only >= 0                           ? 1
                   : (bi + 1) * per_batch <= histories ? per_batch
                                                       : histories - bi * per_batch;
    }
    for (int64_t bi = first_batch; bi <= last_batch; bi++) {
        if (only < 0 && bi % shards != shard)
            continue;
        model_batch b = {.env = &env, .index = (int)bi};
        b.rng.s = model_batch_seed(seed, (uint64_t)bi);
        for (int64_t k = bi * per_batch; k < (bi + 1) * per_batch && k < histories; k++) {
            if (only >= 0 && k != only)
                continue;
            model_history_init(&hist[b.nh], seed, (int)k);
            ptrs[b.nh] = &hist[b.nh];
            b.nh++;
        }
        b.h = ptrs;
        model_batch_run(&b);
        int f = model_batch_check(&b);
        env.stats.batches++;
        failed += f;
        if (f == 0)
            model_env_trim_logs(&env);
        else
            model_env_dump_logs(&env);
        for (int j = 0; j < b.nh; j++)
            model_history_free(&hist[j]);
        model_batch_free(&b);
        double el = now_s() - t0;
        printf("model: batch %lld done: %lld histories, %lld failed, %.0f s\n", (long long)bi,
               (long long)env.stats.histories, (long long)env.stats.failed_histories, el);
        fflush(stdout);
    }
    summary(&env, seed, now_s() - t0, planned);
    model_env_stop(&env);
    if (failed > 0)
        fail_msg("model: %lld of %lld histories failed (each printed above with its replay line)",
                 (long long)failed, (long long)env.stats.histories);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_model)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
