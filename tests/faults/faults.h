/* faults.h: the fault suite's driver (tests/faults/, issue 9 "Fault suite"):
 * what its modules share. The driver is one plain program (no cmocka): it
 * starts a private PostgreSQL cluster, dev broker, Stripe stand-in and every
 * process of the system, loads them with signed Stripe events and invoiced,
 * autopaid engagements while it injects each fault once, waits for the
 * system to drain and then checks that nothing was lost or applied twice.
 *
 *   fproc.c   child processes, the PostgreSQL cluster, cleanup on any exit
 *   fevents.c Stripe events built from the fixtures, the delivery plan
 *   fpost.c   posting deliveries to the ingester (Stripe-style redelivery)
 *   fcheck.c  database helpers, drain detection, the final checks
 *   faults.c  main: sizes, seeding, ticks, the fault schedule, the report */
#ifndef LL_TESTS_FAULTS_H
#define LL_TESTS_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

/* ------------------------------------------------------------------------ */
/* fproc.c                                                                   */

typedef enum {
    FP_BROKER = 0,
    FP_STANDIN,
    FP_INGESTER,
    FP_SCHEDULER,
    FP_INVOICING,
    FP_AUTOPAY,
    FP_RETRY,
    FP_DISPUTE,
    FP_COUNT
} fproc_id;

#define FPROC_MAX_ARGS 12

typedef struct {
    const char *name;
    char bin[512];
    char log[640];
    char *argv[FPROC_MAX_ARGS];
    volatile pid_t pid;
    int spawned;   /* how many times it was started */
    int restarted; /* of which by the supervisor, after it exited non-zero */
    bool stopping; /* fproc_stop is waiting for it: not the supervisor's */
} fproc;

extern fproc fprocs[FP_COUNT];

/* Remembers the state directory and the PostgreSQL scripts (for cleanup). */
void fproc_init(const char *state_dir, const char *pg_start, const char *pg_stop);
/* Starts fprocs[id] (stdout and stderr appended to its log; it dies with
 * the driver: PR_SET_PDEATHSIG). Call from the main thread only (the parent
 * death signal follows the thread that forked). */
void fproc_spawn(fproc_id id);
/* SIGKILL and reap: a crash. */
void fproc_kill(fproc_id id);
/* SIGTERM, wait up to timeout_ms (then SIGKILL): the exit status, 128+sig
 * for a signal, -1 when it had to be killed or was not running. */
int fproc_stop(fproc_id id, int timeout_ms);
void fproc_signal(fproc_id id, int sig);
/* Runs argv to completion (output to log_path, NULL = inherit); exit status
 * or -1. */
int fproc_run(char *const argv[], const char *log_path, int timeout_ms);
/* PostgreSQL: starts the cluster in <state>/pg (port 0 = any free port;
 * billingctl non-NULL = migrate db), returns 0 and fills url and port. */
int fproc_pg_start(int port, const char *db, const char *billingctl, char *url, size_t urllen,
                   int *port_out);
int fproc_pg_stop(void);
/* KEY's value in the cluster's env file (pg-start.sh: WORKER_DATABASE_URL,
 * OPERATOR_DATABASE_URL, ...); false when absent. */
bool fproc_pg_env(const char *key, char *out, size_t outlen);
/* Kills every child and stops the cluster: async-signal-safe, used on every
 * failure path (and by the watchdog). */
void fproc_cleanup_hard(void);
/* A real Kafka cluster (FAULTS_KAFKA=real): kafka-down.sh and the cluster's
 * directory; own = started by the suite (every failure path stops it), else
 * a reused one (every failure path starts again the nodes marked down). */
#define FPROC_KAFKA_NODES 3
void fproc_kafka(const char *down_sh, const char *dir, bool own);
void fproc_kafka_mark(int node, bool down);
/* The cluster was stopped or restored the normal way: nothing left to do. */
void fproc_kafka_forget(void);
/* Prints a message, kills everything started and exits 1. */
void fproc_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Monotonic milliseconds. */
int64_t fproc_now_ms(void);
void fproc_sleep_ms(int64_t ms);
/* Prints the last lines of a log file to stderr. */
void fproc_tail(const char *path, int lines);

/* ------------------------------------------------------------------------ */
/* fevents.c                                                                 */

/* Kinds of webhook "units": one seeded invoice and the events about it. */
typedef enum {
    FU_PAY = 0, /* processing, payment_intent.succeeded, invoice.payment_succeeded */
    FU_FAIL,    /* payment_intent.payment_failed, invoice.payment_failed */
    FU_WON,     /* dispute created, funds_withdrawn, updated, closed (won), funds_reinstated */
    FU_LOST,    /* dispute created, funds_withdrawn, updated, closed (lost) */
    FU_REFUND,  /* charge.refunded (partial), charge.refunded (full) */
    FU_KINDS
} funit_kind;

#define FU_EVENTS_PER_CYCLE 16 /* 3 + 2 + 5 + 4 + 2 */

typedef struct {
    funit_kind kind;
    int64_t invoice_id;
    int64_t total_cents;
    char pi[40], charge[40], dispute[40], stripe_invoice[40];
} funit;

typedef struct {
    char id[48];
    const char *type;
    const char *group; /* consumer group suffix that must apply it */
    int unit;
    char *body; /* exact bytes posted */
    size_t len;
    int acks; /* 2xx answers received (poster thread only) */
} fevent;

typedef struct {
    funit *units;
    size_t nunits;
    fevent *events;
    size_t nevents;
    int *plan; /* delivery order: indexes into events, each event twice */
    size_t nplan;
    size_t out_of_order; /* events whose first delivery was moved after later ones */
} fload;

const char *funit_kind_name(funit_kind k);
/* Units for `cycles` cycles of the five kinds; invoice ids first_invoice...
 * and totals are assigned here (the seed inserts exactly these). */
void fevents_units(fload *l, size_t cycles, int64_t first_invoice);
/* Builds every event body from the fixtures in dir; 0 or -1 (message in err). */
int fevents_build(fload *l, const char *fixtures_dir, char *err, size_t errlen);
/* The delivery plan: every event twice (the copy a little later), a tenth
 * of first deliveries moved after events that follow them. */
void fevents_plan(fload *l, unsigned seed);
void fevents_free(fload *l);

/* ------------------------------------------------------------------------ */
/* fpost.c                                                                   */

typedef struct {
    /* settings */
    const char *url;    /* http://127.0.0.1:PORT/webhooks/stripe */
    const char *secret; /* STRIPE_WEBHOOK_SECRET */
    int concurrency;
    int64_t spread_ms; /* pace the first deliveries over about this long */
    fload *load;
    /* set by the driver while no acks=all write is possible (fewer than 2
     * of 3 Kafka nodes up): what is answered then is counted apart */
    volatile int no_acks;
    /* results (read after the thread ended) */
    int64_t posted, answered_2xx, retried, code_503, code_other, transport_errors;
    int64_t window_2xx, window_503, window_other, window_transport;
    int64_t started_ms, finished_ms;
} fpost;

/* The poster thread's body: posts every planned delivery until each got a
 * 2xx, re-posting non-2xx answers and transport failures with backoff. */
void *fpost_run(void *arg);

/* ------------------------------------------------------------------------ */
/* fcheck.c                                                                  */

/* A connection that survives PostgreSQL restarts: every helper reconnects
 * and retries (up to a minute) when the server is away. */
typedef struct {
    char url[512];
    PGconn *c;
} fdb;

void fdb_open(fdb *d, const char *url);
void fdb_close(fdb *d);
/* First column of the first row as int64 (0 for none/NULL); dies on SQL
 * errors, retries connection failures. */
int64_t fdb_i64(fdb *d, const char *sql, int n, const char *const *params);
/* Runs a statement; dies on SQL errors. */
void fdb_exec(fdb *d, const char *sql, int n, const char *const *params);
/* A query's result (caller PQclear()s); dies on SQL errors. */
PGresult *fdb_query(fdb *d, const char *sql, int n, const char *const *params);

/* Sum over every (group, topic, partition) of high watermark - committed
 * offset; -1 when it cannot be read now. */
int64_t fcheck_lag(const char *brokers, const char *prefix);
/* Messages on <prefix>dlq (high - low watermarks summed); -1 unknown. */
int64_t fcheck_dlq_count(const char *brokers, const char *prefix);

#endif
