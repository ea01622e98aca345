/* faults.c: the fault suite's driver (issue 9, "Fault suite"; see faults.h
 * and docs/RELIABILITY.md). Owns the run: sizes, the private stack, seeding,
 * the ticks, the fault schedule, draining, the checks and the report.
 *
 * Environment (all optional):
 *   FAULTS_EVENTS        distinct Stripe events (rounded to whole cycles of 16)
 *   FAULTS_ENGAGEMENTS   engagements invoiced and autopaid
 *                        defaults 10,000 / 20,000; a sanitizer build 3,200 / 4,000;
 *                        on a real Kafka cluster 4,800 / 5,000
 *   FAULTS_SEED          random seed (moments of the faults, delivery plan)
 *   FAULTS_DIR           state directory (logs, cluster); default: the build's
 *   FAULTS_KEEP=1        keep the state directory after a successful run
 *   FAULTS_TIME_LIMIT    seconds before the watchdog fails the run (540)
 *   FAULTS_POST_SPREAD_MS  pace first deliveries over this long (60000; real
 *                        Kafka 90000)
 *   FAULTS_LOG_LEVEL     LOG_LEVEL of the system's processes (warn)
 *   FAULTS_SKIP_VERIFY=1 do not run `billingctl verify` at the end
 *   FAULTS_KAFKA         real: a real 3-node Apache Kafka cluster (the one
 *                        KAFKA_REAL_DIR names, else one started and stopped
 *                        here through kreal.c); dev: billing-dev-broker.
 *                        Default: real when KAFKA_REAL_DIR is set, else dev
 * Exit 0 when every check passed, 1 otherwise (77: FAULTS_KAFKA=real
 * without java or mvn). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "faults.h"
#include "kafka_real/kreal.h"
#include "ledgerline/date.h"
#include "ledgerline/kafka.h"
#include "ledgerline/log.h"
#include "ledgerline/ticks.h"
#include "support/httptest.h"

#ifndef LL_FAULTS_SANITIZED
#define LL_FAULTS_SANITIZED 0
#endif

#define FAULTS_DB "faults"
#define FAULTS_SECRET "whsec_FaultsSuite0123456789ab"
#define FAULTS_API_KEY "sk_test_FaultsSuite0123456789"
#define FAULTS_INVOICING_DATE "2027-01-01"
#define FAULTS_AUTOPAY_DATE "2027-01-31"
#define FAULTS_RETRY_DATE "2027-02-03"
/* The scheduler runs on a test clock whose ticks find nothing to do: its
 * crash and restart must not disturb anything. */
#define FAULTS_SCHEDULER_NOW "2026-12-15T12:00:00Z"

typedef struct {
    long events, engagements;
    unsigned seed;
    char dir[512];
    char prefix[64];
    char brokers[512];
    char db_url[512];       /* the superuser's: the checks */
    char worker_url[512];   /* billing_worker's: every process of the system */
    char operator_url[512]; /* billing_operator's: billingctl verify */
    int pg_port;
    char standin_url[256];
    char ingester_url[256];
    int64_t t0;
    volatile int ticks_done;
    int64_t deadline_ms; /* give up waiting here; the checks then say what is missing */
    volatile int gave_up;
    int64_t ticks_ms[3];
    fload load;
    fpost post;
    /* FAULTS_KAFKA=real (or KAFKA_REAL_DIR set): a real 3-node Apache
     * Kafka cluster (tests/kafka_real/kreal.c) instead of the dev broker. */
    bool real;
    kr_cluster kafka;
    int leader_killed; /* the node the leader fault took down */
    int64_t window_ms; /* how long the no-acks window was open */
    int64_t leader_down_ms, minority_down_ms, all_down_ms, all_stopped_at;
} faults_run;

static faults_run R;

static void faults_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void faults_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("faults: +%6.1fs ", (double)(fproc_now_ms() - R.t0) / 1000.0);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    va_end(ap);
}

static long faults_env_long(const char *name, long dflt, long lo, long hi)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "faults: %s must be an integer in %ld..%ld\n", name, lo, hi);
        exit(2);
    }
    return x;
}

static unsigned faults_rand(void)
{
    R.seed = R.seed * 1103515245u + 12345u;
    return (R.seed >> 8) & 0xffffffu;
}

static int64_t faults_between(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(faults_rand() % (unsigned)(hi - lo + 1));
}

static void faults_on_signal(int sig)
{
    static const char msg_alarm[] = "faults: FAILED: time limit exceeded; stopping everything\n";
    static const char msg_sig[] = "faults: interrupted; stopping everything\n";
    if (sig == SIGALRM)
        (void)!write(2, msg_alarm, sizeof msg_alarm - 1);
    else
        (void)!write(2, msg_sig, sizeof msg_sig - 1);
    fproc_cleanup_hard();
    _exit(1);
}

static int faults_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        fproc_die("cannot find a free port: %s", strerror(errno));
    close(s);
    return ntohs(a.sin_port);
}

static bool faults_read_line(const char *path, char *out, size_t outlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool ok = fgets(out, (int)outlen, f) != NULL;
    fclose(f);
    if (ok)
        out[strcspn(out, "\r\n")] = '\0';
    return ok && out[0] != '\0';
}

static void faults_wait_file(const char *path, fproc_id who, char *out, size_t outlen)
{
    for (int i = 0; i < 300; i++) {
        if (faults_read_line(path, out, outlen))
            return;
        fproc_sleep_ms(100);
    }
    fproc_tail(fprocs[who].log, 20);
    fproc_die("%s did not write %s", fprocs[who].name, path);
}

static void faults_rm_rf(const char *path)
{
    char *argv[] = {"/bin/rm", "-rf", (char *)path, NULL};
    fproc_run(argv, NULL, 120000);
}

/* ------------------------------------------------------------------------ */
/* The stack                                                                 */

static void faults_proc(fproc_id id, const char *name, const char *bin)
{
    fproc *p = &fprocs[id];
    p->name = name;
    snprintf(p->bin, sizeof p->bin, "%s", bin);
    snprintf(p->log, sizeof p->log, "%s/%s.log", R.dir, name);
    p->argv[0] = p->bin;
    p->argv[1] = NULL;
}

static void faults_fresh_state(void)
{
    /* A previous run killed hard may have left its cluster running here. */
    char pgdir[600], serverdir[700], line[600];
    snprintf(pgdir, sizeof pgdir, "%s/pg", R.dir);
    struct stat st;
    if (stat(pgdir, &st) == 0) {
        fproc_pg_stop();
        snprintf(serverdir, sizeof serverdir, "%s/serverdir", pgdir);
        if (faults_read_line(serverdir, line, sizeof line) &&
            strncmp(line, "/var/tmp/ledgerline-pg-", 23) == 0)
            faults_rm_rf(line);
    }
    faults_rm_rf(R.dir);
    if (mkdir(R.dir, 0755) != 0)
        fproc_die("cannot create %s: %s", R.dir, strerror(errno));
}

static void faults_start_kafka(void);

static void faults_start_stack(void)
{
    static char a_part[8] = "12", a_prefix[64], a_boot[600], a_listen[] = "127.0.0.1:0",
                a_addr[600], a_key[] = FAULTS_API_KEY;
    faults_proc(FP_BROKER, "billing-dev-broker", LL_DEV_BROKER_BIN);
    faults_proc(FP_STANDIN, "stripe-standin", LL_STRIPE_STANDIN_BIN);
    faults_proc(FP_INGESTER, "billing-ingester", LL_INGESTER_BIN);
    faults_proc(FP_SCHEDULER, "billing-scheduler", LL_SCHEDULER_BIN);
    faults_proc(FP_INVOICING, "billing-invoicing-worker", LL_INVOICING_WORKER_BIN);
    faults_proc(FP_AUTOPAY, "billing-autopay-worker", LL_AUTOPAY_WORKER_BIN);
    faults_proc(FP_RETRY, "billing-retry-worker", LL_RETRY_WORKER_BIN);
    faults_proc(FP_DISPUTE, "billing-dispute-worker", LL_DISPUTE_WORKER_BIN);

    if (fproc_pg_start(0, FAULTS_DB, LL_BILLINGCTL_BIN, R.db_url, sizeof R.db_url, &R.pg_port) !=
        0) {
        char log[700];
        snprintf(log, sizeof log, "%s/pg-start.log", R.dir);
        fproc_tail(log, 30);
        fproc_die("PostgreSQL did not start");
    }
    /* The processes get the runtime roles, as deployed; the checks read
     * with the superuser. */
    if (!fproc_pg_env("WORKER_DATABASE_URL", R.worker_url, sizeof R.worker_url))
        snprintf(R.worker_url, sizeof R.worker_url, "%s", R.db_url);
    if (!fproc_pg_env("OPERATOR_DATABASE_URL", R.operator_url, sizeof R.operator_url))
        snprintf(R.operator_url, sizeof R.operator_url, "%s", R.db_url);
    faults_say("postgresql up on port %d, database %s migrated", R.pg_port, FAULTS_DB);

    if (R.real) {
        faults_start_kafka();
    } else {
        snprintf(a_prefix, sizeof a_prefix, "%s", R.prefix);
        snprintf(a_boot, sizeof a_boot, "%s/bootstrap", R.dir);
        char **b = fprocs[FP_BROKER].argv;
        b[1] = "--partitions", b[2] = a_part, b[3] = "--topic-prefix", b[4] = a_prefix;
        b[5] = "--bootstrap-file", b[6] = a_boot, b[7] = NULL;
        fproc_spawn(FP_BROKER);
        faults_wait_file(a_boot, FP_BROKER, R.brokers, sizeof R.brokers);
    }

    snprintf(a_addr, sizeof a_addr, "%s/standin.addr", R.dir);
    char **s = fprocs[FP_STANDIN].argv;
    s[1] = "--listen", s[2] = a_listen, s[3] = "--addr-file", s[4] = a_addr;
    s[5] = "--api-key", s[6] = a_key, s[7] = NULL;
    fproc_spawn(FP_STANDIN);
    faults_wait_file(a_addr, FP_STANDIN, R.standin_url, sizeof R.standin_url);
    faults_say("%s %s (topics %s*), stand-in %s",
               R.real ? "real Kafka cluster (3 nodes)" : "dev broker", R.brokers, R.prefix,
               R.standin_url);
}

/* The contract's topics under the suite's prefix, with their partition
 * counts (deploy/kafka/create-topics.sh --list), replication factor 3 and
 * min.insync.replicas 2, on a reused cluster (kafka-up.sh makes them on its
 * own). */
static void faults_create_topics(void)
{
    static char specs[16][192];
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)LL_KAFKA_ADMIN_BIN;
    argv[n++] = "create-topics";
    argv[n++] = "--replication-factor";
    argv[n++] = "3";
    argv[n++] = "--min-insync-replicas";
    argv[n++] = "2";
    FILE *f = popen(LL_SOURCE_DIR "/deploy/kafka/create-topics.sh --list", "r");
    if (f == NULL)
        fproc_die("cannot run create-topics.sh --list: %s", strerror(errno));
    char name[96];
    int parts, k = 0;
    while (k < 16 && fscanf(f, "%95s %d", name, &parts) == 2) {
        snprintf(specs[k], sizeof specs[k], "%s%s:%d", R.prefix, name, parts);
        argv[n++] = specs[k++];
    }
    pclose(f);
    argv[n] = NULL;
    if (k == 0)
        fproc_die("create-topics.sh --list printed no topic");
    char log[700];
    snprintf(log, sizeof log, "%s/create-topics.log", R.dir);
    if (fproc_run(argv, log, 120000) != 0) {
        fproc_tail(log, 20);
        fproc_die("cannot create the topics on %s", R.brokers);
    }
}

static void faults_start_kafka(void)
{
    int64_t t = fproc_now_ms();
    kr_up(&R.kafka, false, NULL, R.prefix);
    fproc_kafka(LL_SOURCE_DIR "/deploy/local/kafka/kafka-down.sh", R.kafka.dir, R.kafka.own);
    snprintf(R.brokers, sizeof R.brokers, "%s", R.kafka.brokers);
    if (!R.kafka.own)
        faults_create_topics();
    faults_say("real Kafka cluster %s in %s (%s), topics ready in %.1f s",
               R.kafka.own ? "started" : "reused", R.kafka.dir, R.brokers,
               (double)(fproc_now_ms() - t) / 1000.0);
}

/* Every process of the system reads the same environment; it is set once,
 * before any thread exists. */
static void faults_environment(int ingester_port)
{
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", ingester_port);
    snprintf(R.ingester_url, sizeof R.ingester_url, "http://%s", listen);
    const char *level = getenv("FAULTS_LOG_LEVEL");
    const struct {
        const char *k, *v;
    } env[] = {{"DATABASE_URL", R.worker_url},
               {"KAFKA_BROKERS", R.brokers},
               {"KAFKA_TOPIC_PREFIX", R.prefix},
               {"STRIPE_WEBHOOK_SECRET", FAULTS_SECRET},
               {"STRIPE_SECRET_KEY", FAULTS_API_KEY},
               {"STRIPE_API_BASE", R.standin_url},
               {"STRIPE_MAX_RPS", "2000"},
               {"INGESTER_LISTEN", listen},
               {"INGESTER_PUBLISH_TIMEOUT_MS", "3000"},
               {"SCHEDULER_NOW", FAULTS_SCHEDULER_NOW},
               {"TICK_SHARDS", "12"},
               {"LOG_LEVEL", level && *level ? level : "warn"}};
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
        setenv(env[i].k, env[i].v, 1);
    unsetenv("WORKER_HTTP_LISTEN");
    unsetenv("RETRY_SCHEDULE_DAYS");
    unsetenv("SCHEDULE_INVOICING");
    unsetenv("SCHEDULE_AUTOPAY");
    unsetenv("SCHEDULE_RETRY");
}

static void faults_start_services(void)
{
    for (int id = FP_INGESTER; id < FP_COUNT; id++)
        fproc_spawn((fproc_id)id);
    char url[300];
    snprintf(url, sizeof url, "%s/healthz", R.ingester_url);
    for (int i = 0; i < 200; i++) {
        long code = 0;
        free(httptest_request("GET", url, NULL, &code));
        if (code == 200)
            return;
        fproc_sleep_ms(100);
    }
    fproc_tail(fprocs[FP_INGESTER].log, 20);
    fproc_die("the ingester did not answer /healthz");
}

/* ------------------------------------------------------------------------ */
/* Seeding                                                                   */

/* "{a,b,c}" of n items printed by fmt_item. */
typedef void (*faults_item_fn)(size_t i, char *buf, size_t len);

static char *faults_array(size_t n, faults_item_fn f)
{
    size_t cap = 64 + n * 48, len = 1;
    char *s = malloc(cap);
    if (s == NULL)
        fproc_die("out of memory");
    s[0] = '{';
    for (size_t i = 0; i < n; i++) {
        char item[64];
        f(i, item, sizeof item);
        size_t il = strlen(item);
        if (len + il + 3 > cap) {
            cap = cap * 2 + il;
            char *ns = realloc(s, cap);
            if (ns == NULL)
                fproc_die("out of memory");
            s = ns;
        }
        if (i > 0)
            s[len++] = ',';
        memcpy(s + len, item, il);
        len += il;
    }
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

static void fa_unit(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%zu", i);
}
static void fa_kind(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%s", funit_kind_name(R.load.units[i].kind));
}
static void fa_inv(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%" PRId64, R.load.units[i].invoice_id);
}
static void fa_pi(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%s", R.load.units[i].pi);
}
static void fa_ch(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%s", R.load.units[i].charge);
}
static void fa_dp(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%s", R.load.units[i].dispute);
}
static void fa_total(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%" PRId64, R.load.units[i].total_cents);
}
static void fa_ev_id(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%s", R.load.events[i].id);
}
static void fa_ev_grp(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%s", R.load.events[i].group);
}
static void fa_ev_unit(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%d", R.load.events[i].unit);
}
static void fa_ev_type(size_t i, char *b, size_t n)
{
    snprintf(b, n, "%s", R.load.events[i].type);
}

static void faults_seed(fdb *d)
{
    char m[24], u[24];
    snprintf(m, sizeof m, "%ld", R.engagements);
    snprintf(u, sizeof u, "%zu", R.load.nunits);
    const char *pm[] = {m};
    const char *pmu[] = {m, u};
    fdb_exec(d, "CREATE SCHEMA faults", 0, NULL);
    fdb_exec(d,
             "CREATE TABLE faults.units (unit int PRIMARY KEY, kind text NOT NULL,"
             " invoice_id bigint NOT NULL, pi text NOT NULL, charge text NOT NULL,"
             " dispute text NOT NULL, total bigint NOT NULL)",
             0, NULL);
    fdb_exec(d,
             "CREATE TABLE faults.events (event_id text PRIMARY KEY, grp text NOT NULL,"
             " unit int NOT NULL, type text NOT NULL)",
             0, NULL);
    fdb_exec(d, "CREATE TABLE faults.standin (invoice_id bigint, pi text)", 0, NULL);
    size_t nu = R.load.nunits, ne = R.load.nevents;
    char *ua[7] = {faults_array(nu, fa_unit), faults_array(nu, fa_kind), faults_array(nu, fa_inv),
                   faults_array(nu, fa_pi),   faults_array(nu, fa_ch),   faults_array(nu, fa_dp),
                   faults_array(nu, fa_total)};
    fdb_exec(d,
             "INSERT INTO faults.units SELECT * FROM unnest($1::int[], $2::text[], $3::bigint[],"
             " $4::text[], $5::text[], $6::text[], $7::bigint[])",
             7, (const char *const *)ua);
    char *ea[4] = {faults_array(ne, fa_ev_id), faults_array(ne, fa_ev_grp),
                   faults_array(ne, fa_ev_unit), faults_array(ne, fa_ev_type)};
    fdb_exec(d,
             "INSERT INTO faults.events SELECT * FROM unnest($1::text[], $2::text[], $3::int[],"
             " $4::text[])",
             4, (const char *const *)ea);
    for (int i = 0; i < 7; i++)
        free(ua[i]);
    for (int i = 0; i < 4; i++)
        free(ea[i]);

    fdb_exec(d, "BEGIN", 0, NULL);
    fdb_exec(d,
             "INSERT INTO billing.firms (id, name, slug)"
             " SELECT f, 'Faults firm ' || f, 'faults-' || f FROM generate_series(1, 10) f",
             0, NULL);
    /* Autopay: one client and one monthly package engagement per
     * engagement id 1..M; cards: 5% insufficient funds (soft decline), 2%
     * expired (hard), 3% declined once then paid, the rest pay; a tenth is
     * charged on issue, the rest on the due date. */
    fdb_exec(d,
             "INSERT INTO billing.clients (id, firm_id, company_name, primary_contact_email,"
             " tax_rate_bp, autopay_enabled, autopay_payment_method_id, stripe_customer_id,"
             " autopay_activated_at, autopay_activated_by)"
             " SELECT c, (c - 1) % 10 + 1, 'Autopay client ' || c, 'c' || c || '@example.com',"
             "  (c % 3) * 500, true,"
             "  CASE WHEN c % 100 < 5 THEN 'pm_card_chargeDeclinedInsufficientFunds'"
             "   WHEN c % 100 < 7 THEN 'pm_card_chargeDeclinedExpiredCard'"
             "   WHEN c % 100 < 10 THEN 'pm_standin_declines_1_then_visa'"
             "   ELSE 'pm_card_visa' END,"
             "  'cus_FLT' || c, now(), 'faults-suite'"
             " FROM generate_series(1, $1::int) c",
             1, pm);
    fdb_exec(
        d,
        "INSERT INTO billing.engagements (id, firm_id, client_id, title, pricing_mode,"
        " package_fee_cents, package_fee_schedule, payment_terms_days, autopay_cadence,"
        " start_date)"
        " SELECT c, (c - 1) % 10 + 1, c, 'Retainer ' || c, 'package',"
        "  10000 + (c % 50) * 100, 'monthly', 30,"
        "  CASE WHEN c % 10 = 3 THEN 'on_issue' ELSE 'on_due' END, date '" FAULTS_INVOICING_DATE
        "' FROM generate_series(1, $1::int) c",
        1, pm);
    /* Webhook units: a client, a completed engagement (never invoiced by a
     * tick) and the unit's invoice, sent or already paid by Stripe. */
    fdb_exec(d,
             "INSERT INTO billing.clients (id, firm_id, company_name, stripe_customer_id)"
             " SELECT $1::int + u.unit + 1, u.unit % 10 + 1, 'Webhook client ' || u.unit,"
             "  'cus_FLTW' || u.unit FROM faults.units u",
             1, pm);
    fdb_exec(d,
             "INSERT INTO billing.engagements (id, firm_id, client_id, title, pricing_mode,"
             " package_fee_cents, start_date, end_date, status)"
             " SELECT $1::int + u.unit + 1, u.unit % 10 + 1, $1::int + u.unit + 1,"
             "  'Project ' || u.unit, 'package', u.total, date '2026-01-01', date '2026-12-31',"
             "  'completed' FROM faults.units u",
             1, pm);
    fdb_exec(d,
             "INSERT INTO billing.invoices (id, firm_id, client_id, engagement_id, invoice_number,"
             " status, currency, subtotal_cents, tax_cents, total_cents, amount_paid_cents,"
             " issue_date, due_date, paid_date, stripe_payment_intent_id, stripe_charge_id)"
             " SELECT u.invoice_id, u.unit % 10 + 1, $1::int + u.unit + 1, $1::int + u.unit + 1,"
             "  'FLT-' || u.invoice_id, CASE WHEN p THEN 'paid' ELSE 'sent' END, 'usd', u.total, 0,"
             "  u.total, CASE WHEN p THEN u.total ELSE 0 END, date '2026-12-01',"
             "  date '2027-12-31', CASE WHEN p THEN date '2026-12-02' END,"
             "  CASE WHEN p THEN u.pi END, CASE WHEN p THEN u.charge END"
             " FROM faults.units u, LATERAL (SELECT u.kind NOT IN ('pay', 'fail') AS p) x",
             1, pm);
    fdb_exec(d,
             "INSERT INTO billing.invoice_line_items (invoice_id, firm_id, line_type, description,"
             " quantity, rate_cents, amount_cents)"
             " SELECT u.invoice_id, u.unit % 10 + 1, 'package_fee', 'Package Fee - Project', 1,"
             "  u.total, u.total FROM faults.units u",
             0, NULL);
    fdb_exec(d,
             "INSERT INTO billing.payments (firm_id, invoice_id, amount_cents, source,"
             " stripe_payment_intent_id, received_at, currency, stripe_charge_id,"
             " received_cents)"
             " SELECT u.unit % 10 + 1, u.invoice_id, u.total, 'stripe', u.pi,"
             "  timestamptz '2026-12-02 10:00:00Z', 'usd', u.charge, u.total"
             " FROM faults.units u WHERE u.kind NOT IN ('pay', 'fail')",
             0, NULL);
    /* The attempts of ours that the pay and fail units' events answer
     * (rule 11.5: events meet our attempt; a PaymentIntent no attempt of
     * ours created would be read back from Stripe first, rule 11.9). */
    fdb_exec(d,
             "INSERT INTO billing.payment_attempts (firm_id, invoice_id, attempt_no, kind,"
             " idempotency_key, amount_cents, stripe_payment_intent_id, status, currency)"
             " SELECT u.unit % 10 + 1, u.invoice_id, 1, 'autopay', 'autopay:' || u.invoice_id"
             "  || ':1', u.total, u.pi, 'processing', 'usd'"
             " FROM faults.units u WHERE u.kind IN ('pay', 'fail')",
             0, NULL);
    fdb_exec(d,
             "SELECT billing.audit(i.firm_id, 'invoice_created', 'INFO', 'faults-suite',"
             " jsonb_build_object('invoice_id', i.id, 'invoice_number', i.invoice_number,"
             "  'client_id', i.client_id, 'engagement_id', i.engagement_id,"
             "  'total_cents', i.total_cents, 'currency', i.currency, 'manual', true))"
             " FROM billing.invoices i ORDER BY i.id",
             0, NULL);
    fdb_exec(d,
             "SELECT billing.audit(p.firm_id, 'payment_received', 'INFO', NULL,"
             " jsonb_build_object('invoice_id', p.invoice_id, 'payment_id', p.id,"
             "  'amount_cents', p.amount_cents, 'received_cents', p.amount_cents,"
             "  'overpayment_cents', 0, 'payment_intent', p.stripe_payment_intent_id))"
             " FROM billing.payments p ORDER BY p.id",
             0, NULL);
    fdb_exec(d,
             "SELECT setval(pg_get_serial_sequence('billing.firms', 'id'), 10),"
             " setval(pg_get_serial_sequence('billing.clients', 'id'), $1::int + $2::int),"
             " setval(pg_get_serial_sequence('billing.engagements', 'id'), $1::int + $2::int),"
             " setval(pg_get_serial_sequence('billing.invoices', 'id'), greatest($2::int, 1))",
             2, pmu);
    fdb_exec(d, "COMMIT", 0, NULL);
    fdb_exec(d, "ANALYZE", 0, NULL);

    /* The refunds Stripe made for the refund units (two each: 500 cents,
     * then the rest), which the dispute worker lists when charge.refunded
     * arrives. */
    char url[300];
    snprintf(url, sizeof url, "%s/__standin/refunds", R.standin_url);
    for (size_t i = 0; i < nu; i++) {
        const funit *x = &R.load.units[i];
        if (x->kind != FU_REFUND)
            continue;
        for (int k = 0; k < 2; k++) {
            char body[512];
            snprintf(body, sizeof body,
                     "{\"charge\":\"%s\",\"payment_intent\":\"%s\",\"amount\":%" PRId64
                     ",\"charge_amount\":%" PRId64 ",\"id\":\"re_FLT%08zu%c\"}",
                     x->charge, x->pi, k == 0 ? (int64_t)500 : x->total_cents - 500, x->total_cents,
                     i, k == 0 ? 'a' : 'b');
            long code = 0;
            char *ans = httptest_request("POST", url, body, &code);
            if (code != 200)
                fproc_die("stand-in refused a seeded refund (%ld): %s", code, ans ? ans : "");
            free(ans);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Ticks: what the scheduler does at 02:00 / 03:00 / 03:30, in that order,
 * each once the previous one's work is done.                                */

static int64_t faults_count_keys(fdb *d, const char *group, const char *like)
{
    char g[128];
    snprintf(g, sizeof g, "%s%s", R.prefix, group);
    const char *p[] = {g, like};
    return fdb_i64(d,
                   "SELECT count(*) FROM billing.processed_messages"
                   " WHERE consumer = $1 AND idempotency_key LIKE $2",
                   2, p);
}

static void faults_tick(kafka_producer *kp, tick_kind kind, const char *date)
{
    civil_date d;
    if (!date_parse(date, &d))
        fproc_die("bad date %s", date);
    char err[512];
    for (int attempt = 1;; attempt++) {
        if (ticks_publish(kp, R.prefix, kind, d, NULL, 12, 0, err, sizeof err) == 0) {
            faults_say("tick.%s %s published (12 shards)%s", tick_kind_name(kind), date,
                       attempt > 1 ? " after the broker came back" : "");
            return;
        }
        fproc_sleep_ms(1000);
    }
}

static void faults_wait_keys(fdb *d, const char *group, const char *like, int64_t want)
{
    int64_t next_note = fproc_now_ms() + 20000, have;
    while ((have = faults_count_keys(d, group, like)) < want) {
        if (fproc_now_ms() >= R.deadline_ms) {
            faults_say("GAVE UP waiting: %s has %" PRId64 " of %" PRId64 " keys like %s", group,
                       have, want, like);
            R.gave_up = 1;
            return;
        }
        if (fproc_now_ms() >= next_note) {
            faults_say("still waiting: %s has %" PRId64 " of %" PRId64 " keys like %s", group, have,
                       want, like);
            next_note += 20000;
        }
        fproc_sleep_ms(250);
    }
}

static void faults_wait_zero(fdb *d, const char *sql, const char *what)
{
    int64_t next_note = fproc_now_ms() + 20000, have;
    while ((have = fdb_i64(d, sql, 0, NULL)) > 0) {
        if (fproc_now_ms() >= R.deadline_ms) {
            faults_say("GAVE UP waiting for %s: %" PRId64 " left", what, have);
            R.gave_up = 1;
            return;
        }
        if (fproc_now_ms() >= next_note) {
            faults_say("still waiting for %s: %" PRId64 " left", what, have);
            next_note += 20000;
        }
        fproc_sleep_ms(250);
    }
}

static void *faults_ticks_run(void *arg)
{
    (void)arg;
    fdb d;
    fdb_open(&d, R.db_url);
    char err[512];
    kafka_producer *kp = kafka_producer_new(R.brokers, 10000, err, sizeof err);
    if (kp == NULL)
        fproc_die("ticks: no producer: %s", err);
    int64_t t = fproc_now_ms();
    faults_tick(kp, TICK_INVOICING, FAULTS_INVOICING_DATE);
    faults_wait_keys(&d, "billing-invoicing-worker", "tick:invoicing:" FAULTS_INVOICING_DATE ":%",
                     12);
    R.ticks_ms[0] = fproc_now_ms() - t;
    faults_say(
        "invoicing tick applied: %" PRId64 " invoices",
        fdb_i64(&d, "SELECT count(*) FROM billing.invoices WHERE is_auto_generated", 0, NULL));
    t = fproc_now_ms();
    faults_tick(kp, TICK_AUTOPAY, FAULTS_AUTOPAY_DATE);
    faults_wait_keys(&d, "billing-autopay-worker", "tick:autopay:" FAULTS_AUTOPAY_DATE ":%", 12);
    /* Every charge settled too (on_issue invoices are charged from their
     * invoice.issued event, maybe after the tick), so that the retry tick
     * finds every first failure. */
    faults_wait_zero(&d,
                     "SELECT count(*) FROM billing.invoices WHERE is_auto_generated"
                     " AND autopay_status IN ('scheduled', 'processing')",
                     "autopay charges settled");
    R.ticks_ms[1] = fproc_now_ms() - t;
    faults_say("autopay tick applied: %" PRId64 " payments from Stripe",
               fdb_i64(&d,
                       "SELECT count(*) FROM billing.payments p JOIN billing.invoices i"
                       " ON i.id = p.invoice_id WHERE i.is_auto_generated",
                       0, NULL));
    t = fproc_now_ms();
    faults_tick(kp, TICK_RETRY, FAULTS_RETRY_DATE);
    faults_wait_keys(&d, "billing-retry-worker", "tick:retry:" FAULTS_RETRY_DATE ":%", 12);
    R.ticks_ms[2] = fproc_now_ms() - t;
    faults_say("retry tick applied");
    kafka_producer_destroy(kp, 5000);
    fdb_close(&d);
    R.ticks_done = 1;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Faults                                                                    */

typedef enum {
    FK_KILL_INGESTER = 0,
    FK_KILL_SCHEDULER,
    FK_KILL_INVOICING,
    FK_KILL_AUTOPAY,
    FK_KILL_RETRY,
    FK_KILL_DISPUTE,
    FK_PG_RESTART,
    FK_BROKER_OUTAGE, /* dev broker: every broker down for 10 s */
    FK_LEADER_KILL,   /* real cluster: SIGKILL the node leading most of stripe.payments */
    FK_MINORITY_KILL, /* real cluster: SIGKILL one other node of three */
    FK_ALL_STOP,      /* real cluster: every node stopped for 20 s */
    FK_COUNT
} faults_kind;

#define FAULTS_LEADER_DOWN_MS 10000
#define FAULTS_MINORITY_DOWN_MS 10000
#define FAULTS_ALL_DOWN_MS 20000
/* Answers the poster had in hand when the last node died may reach it a
 * little later: the no-acks window opens this long after. */
#define FAULTS_WINDOW_GRACE_MS 1000

static bool faults_is_broker_fault(faults_kind k)
{
    return k >= FK_BROKER_OUTAGE;
}

/* The node leading most partitions of <prefix>stripe.payments, or -1. */
static int faults_payments_leader(void)
{
    char topic[128];
    snprintf(topic, sizeof topic, "%sstripe.payments", R.prefix);
    int leaders[64], count[KR_NODES + 1] = {0};
    int n = kr_leaders(topic, leaders, 64);
    for (int i = 0; i < n; i++)
        if (leaders[i] >= 1 && leaders[i] <= KR_NODES)
            count[leaders[i]]++;
    int best = -1;
    for (int i = 1; i <= KR_NODES; i++)
        if (count[i] > 0 && (best < 0 || count[i] > count[best]))
            best = i;
    if (best > 0)
        faults_say("stripe.payments: %d partitions, leaders per node %d/%d/%d", n, count[1],
                   count[2], count[3]);
    return best;
}

static void faults_node(const char *action, int node)
{
    if (kr_node(&R.kafka, action, node) != 0)
        fproc_die("kafka-down.sh --%s %d failed", action, node);
    fproc_kafka_mark(node, strcmp(action, "start") != 0);
}

/* Starts a broker fault; returns when it is to be undone (monotonic ms). */
static int64_t faults_broker_fault(faults_kind k)
{
    if (k == FK_BROKER_OUTAGE) {
        /* The outage runs in the background: other faults may happen while
         * the broker is down; faults_schedule() brings it back after 10 s. */
        fproc_signal(FP_BROKER, SIGUSR1);
        faults_say("fault: dev broker down (SIGUSR1) for 10 s");
        return fproc_now_ms() + 10000;
    }
    if (k == FK_LEADER_KILL) {
        int node = faults_payments_leader();
        if (node < 0)
            node = 1 + (int)(faults_rand() % KR_NODES);
        faults_node("kill", node);
        R.leader_killed = node;
        faults_say("fault: SIGKILL kafka node %d (leads most of stripe.payments) for %d s", node,
                   FAULTS_LEADER_DOWN_MS / 1000);
        return fproc_now_ms() + FAULTS_LEADER_DOWN_MS;
    }
    if (k == FK_MINORITY_KILL) {
        int node = 1 + (int)(faults_rand() % KR_NODES);
        if (node == R.leader_killed)
            node = node % KR_NODES + 1;
        faults_node("kill", node);
        R.leader_killed = node; /* what faults_broker_undo() starts again */
        faults_say("fault: SIGKILL kafka node %d (a minority: 1 of %d) for %d s", node, KR_NODES,
                   FAULTS_MINORITY_DOWN_MS / 1000);
        return fproc_now_ms() + FAULTS_MINORITY_DOWN_MS;
    }
    int64_t t = fproc_now_ms();
    if (kr_stop_all(&R.kafka) != 0)
        fproc_die("kafka-down.sh (every node) failed");
    for (int i = 1; i <= KR_NODES; i++)
        fproc_kafka_mark(i, true);
    faults_say("fault: every kafka node stopped (SIGTERM, %.1f s to stop) for %d s",
               (double)(fproc_now_ms() - t) / 1000.0, FAULTS_ALL_DOWN_MS / 1000);
    R.all_stopped_at = fproc_now_ms();
    /* No node, so no acks=all write: every answer from now on must be 503. */
    fproc_sleep_ms(FAULTS_WINDOW_GRACE_MS);
    __atomic_store_n(&R.post.no_acks, 1, __ATOMIC_RELEASE);
    R.window_ms = fproc_now_ms();
    return R.all_stopped_at + FAULTS_ALL_DOWN_MS;
}

static void faults_broker_undo(faults_kind k, int64_t since)
{
    int64_t t = fproc_now_ms();
    if (k == FK_BROKER_OUTAGE) {
        fproc_signal(FP_BROKER, SIGUSR2);
        faults_say("fault: dev broker back (SIGUSR2)");
        return;
    }
    if (k == FK_LEADER_KILL || k == FK_MINORITY_KILL) {
        faults_node("start", R.leader_killed);
        int64_t down = fproc_now_ms() - since;
        if (k == FK_LEADER_KILL)
            R.leader_down_ms = down;
        else
            R.minority_down_ms = down;
        faults_say("fault: kafka node %d started again (listening after %.1f s; %.1f s down)",
                   R.leader_killed, (double)(fproc_now_ms() - t) / 1000.0, (double)down / 1000.0);
        return;
    }
    /* Close the window before any node can take a write again. */
    __atomic_store_n(&R.post.no_acks, 0, __ATOMIC_RELEASE);
    R.window_ms = fproc_now_ms() - R.window_ms;
    if (kr_start_all(&R.kafka) != 0)
        fproc_die("the kafka nodes did not start again");
    for (int i = 1; i <= KR_NODES; i++)
        fproc_kafka_mark(i, false);
    (void)since;
    R.all_down_ms = fproc_now_ms() - R.all_stopped_at;
    faults_say("fault: every kafka node started again (listening after %.1f s; no-acks window"
               " %.1f s)",
               (double)(fproc_now_ms() - t) / 1000.0, (double)R.window_ms / 1000.0);
}

static void faults_inject(faults_kind k)
{
    if (k <= FK_KILL_DISPUTE) {
        fproc_id id = (fproc_id)(FP_INGESTER + (int)k);
        pid_t old = fprocs[id].pid;
        fproc_kill(id);
        fproc_sleep_ms(faults_between(0, 500));
        fproc_spawn(id);
        faults_say("fault: SIGKILL %s (pid %d), restarted as pid %d", fprocs[id].name, (int)old,
                   (int)fprocs[id].pid);
    } else if (k == FK_PG_RESTART) {
        int64_t t = fproc_now_ms();
        if (fproc_pg_stop() != 0)
            fproc_die("pg-stop.sh failed");
        faults_say("fault: PostgreSQL stopped (fast shutdown)");
        int rc = -1;
        for (int i = 0; i < 20 && rc != 0; i++) {
            char url[512];
            int port = 0;
            rc = fproc_pg_start(R.pg_port, FAULTS_DB, NULL, url, sizeof url, &port);
            if (rc != 0)
                fproc_sleep_ms(500);
        }
        if (rc != 0)
            fproc_die("PostgreSQL did not come back on port %d", R.pg_port);
        faults_say("fault: PostgreSQL restarted (%.1f s down)",
                   (double)(fproc_now_ms() - t) / 1000.0);
    }
}

/* A broker fault is undone on a thread of its own: a node's JVM may take
 * half a minute to listen again on a loaded machine, and the other faults
 * stay due meanwhile. */
typedef struct {
    faults_kind kind;
    int64_t since;
    pthread_t thread;
    volatile int running, done;
} faults_undo;

static void *faults_undo_run(void *arg)
{
    faults_undo *u = arg;
    faults_broker_undo(u->kind, u->since);
    __atomic_store_n(&u->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* How far the load is, as fractions of its parts. */
typedef struct {
    double posted;   /* deliveries answered 2xx / planned */
    double applied;  /* distinct events applied / events */
    double invoiced; /* invoices created / engagements */
    double settled;  /* autopay outcomes (paid or failed) / engagements */
    double overall;  /* mean of the four */
} faults_progress;

static faults_progress faults_measure(fdb *d)
{
    char pfx[80];
    snprintf(pfx, sizeof pfx, "%s%%", R.prefix);
    const char *pp[] = {pfx};
    PGresult *r =
        fdb_query(d,
                  "SELECT (SELECT count(*) FROM billing.processed_messages WHERE consumer LIKE $1"
                  "  AND idempotency_key LIKE 'evt\\_FLT%'),"
                  " (SELECT count(*) FROM billing.invoices WHERE is_auto_generated),"
                  " (SELECT count(*) FROM billing.invoices WHERE is_auto_generated"
                  "  AND autopay_status IN ('succeeded', 'failed', 'cancelled'))",
                  1, pp);
    faults_progress p;
    p.posted = (double)__atomic_load_n(&R.post.answered_2xx, __ATOMIC_RELAXED) /
               (double)(R.load.nplan ? R.load.nplan : 1);
    p.applied = (double)strtoll(PQgetvalue(r, 0, 0), NULL, 10) / (double)R.load.nevents;
    p.invoiced = (double)strtoll(PQgetvalue(r, 0, 1), NULL, 10) / (double)R.engagements;
    p.settled = (double)strtoll(PQgetvalue(r, 0, 2), NULL, 10) / (double)R.engagements;
    PQclear(r);
    p.overall = (p.posted + p.applied + p.invoiced + p.settled) / 4.0;
    return p;
}

static double faults_uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)(faults_rand() % 10001u) / 10000.0;
}

/* Each fault is due when the part of the load it can disturb has reached a
 * random point: a crash of the ingester or a broker fault that stops writes
 * (the dev broker's outage; on a real cluster the leader's SIGKILL and every
 * node stopped) while events are being posted, a crash of the dispute or
 * retry worker while events are being applied, of the invoicing worker while
 * invoices are being created, of the autopay worker while invoices are being
 * charged; the scheduler's crash, the PostgreSQL restart and (real cluster)
 * the SIGKILL of a minority anywhere. At least a second apart; one broker
 * fault at a time (each undone before the next), other faults may happen
 * meanwhile. */
static void faults_schedule(fdb *d)
{
    static const char *const names[FK_COUNT] = {
        "ingester crash",         "scheduler crash",         "invoicing worker crash",
        "autopay worker crash",   "retry worker crash",      "dispute worker crash",
        "PostgreSQL restart",     "broker outage",           "kafka leader SIGKILL",
        "kafka minority SIGKILL", "every kafka node stopped"};
    double at[FK_COUNT];
    at[FK_KILL_INGESTER] = faults_uniform(0.10, 0.90);
    at[FK_BROKER_OUTAGE] = faults_uniform(0.10, 0.80);
    at[FK_KILL_DISPUTE] = faults_uniform(0.10, 0.90);
    at[FK_KILL_RETRY] = faults_uniform(0.10, 0.90);
    at[FK_KILL_INVOICING] = faults_uniform(0.05, 0.80);
    at[FK_KILL_AUTOPAY] = faults_uniform(0.05, 0.80);
    at[FK_PG_RESTART] = faults_uniform(0.05, 0.85);
    at[FK_KILL_SCHEDULER] = faults_uniform(0.05, 0.90);
    at[FK_LEADER_KILL] = faults_uniform(0.05, 0.25);
    at[FK_ALL_STOP] = faults_uniform(0.50, 0.80);
    at[FK_MINORITY_KILL] = faults_uniform(0.05, 0.90);
    bool done[FK_COUNT] = {false};
    int left = FK_COUNT;
    /* The dev broker has the outage, a real cluster the node faults. */
    for (int k = FK_BROKER_OUTAGE; k < FK_COUNT; k++)
        if ((k == FK_BROKER_OUTAGE) == R.real) {
            done[k] = true;
            left--;
        }
    int64_t quiet_until = fproc_now_ms() + 1000, broker_back_at = 0;
    static faults_undo undo;
    while (left > 0 || broker_back_at != 0 || undo.running) {
        fproc_sleep_ms(200);
        if (broker_back_at != 0 && fproc_now_ms() >= broker_back_at) {
            undo.done = 0;
            if (pthread_create(&undo.thread, NULL, faults_undo_run, &undo) != 0)
                fproc_die("cannot start a thread");
            undo.running = 1;
            broker_back_at = 0;
        }
        if (undo.running && __atomic_load_n(&undo.done, __ATOMIC_ACQUIRE)) {
            pthread_join(undo.thread, NULL);
            undo.running = 0;
        }
        if (left > 0 && fproc_now_ms() >= R.deadline_ms) {
            faults_say("GAVE UP: %d faults never became due (the load stalled)", left);
            R.gave_up = 1;
            left = 0;
        }
        if (left == 0 || fproc_now_ms() < quiet_until)
            continue;
        faults_progress p = faults_measure(d);
        for (int k = 0; k < FK_COUNT; k++) {
            double part = k == FK_KILL_INGESTER || k == FK_BROKER_OUTAGE || k == FK_LEADER_KILL ||
                                  k == FK_ALL_STOP
                              ? p.posted
                          : k == FK_KILL_DISPUTE || k == FK_KILL_RETRY ? p.applied
                          : k == FK_KILL_INVOICING                     ? p.invoiced
                          : k == FK_KILL_AUTOPAY                       ? p.settled
                                                                       : p.overall;
            if (done[k] || part < at[k] ||
                (faults_is_broker_fault((faults_kind)k) && (broker_back_at != 0 || undo.running)))
                continue;
            faults_say("%s due (its part of the load at %.0f%%, due at %.0f%%)", names[k],
                       part * 100.0, at[k] * 100.0);
            if (faults_is_broker_fault((faults_kind)k)) {
                undo.kind = (faults_kind)k;
                undo.since = fproc_now_ms();
                broker_back_at = faults_broker_fault((faults_kind)k);
            } else {
                faults_inject((faults_kind)k);
            }
            done[k] = true;
            left--;
            quiet_until = fproc_now_ms() + 1000;
            break;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */

static int faults_failures;

static void faults_check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void faults_check(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("faults: %s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    va_end(ap);
    if (!ok)
        faults_failures++;
}

/* Prints up to 10 rows of a query (all columns), for a failed check. */
static void faults_show(fdb *d, const char *sql, int n, const char *const *p)
{
    PGresult *r = fdb_query(d, sql, n, p);
    for (int i = 0; i < PQntuples(r) && i < 10; i++) {
        printf("faults:        ");
        for (int c = 0; c < PQnfields(r); c++)
            printf("%s%s=%s", c ? " " : "", PQfname(r, c),
                   PQgetisnull(r, i, c) ? "NULL" : PQgetvalue(r, i, c));
        putchar('\n');
    }
    PQclear(r);
}

/* Loads the stand-in's successful, non-replayed PaymentIntent creations. */
static int64_t faults_load_standin(fdb *d)
{
    char url[300];
    snprintf(url, sizeof url, "%s/__standin/requests", R.standin_url);
    long code = 0;
    char *body = httptest_request("GET", url, NULL, &code);
    json_error_t je;
    json_t *all = body ? json_loads(body, 0, &je) : NULL;
    free(body);
    if (code != 200 || all == NULL)
        fproc_die("cannot read the stand-in's requests (%ld)", code);
    json_t *reqs = json_is_array(all) ? all : json_object_get(all, "requests");
    size_t i;
    json_t *q;
    int64_t n = 0;
    json_t *inv = json_array(), *pis = json_array();
    json_array_foreach(reqs, i, q)
    {
        const char *method = json_string_value(json_object_get(q, "method"));
        const char *path = json_string_value(json_object_get(q, "path"));
        if (!method || !path || strcmp(method, "POST") != 0 ||
            strcmp(path, "/v1/payment_intents") != 0 ||
            json_integer_value(json_object_get(q, "status")) != 200 ||
            json_is_true(json_object_get(q, "replayed")))
            continue;
        const char *id = json_string_value(
            json_object_get(json_object_get(q, "params"), "metadata[invoice_id]"));
        const char *pi = json_string_value(json_object_get(q, "object_id"));
        json_array_append_new(inv, json_string(id ? id : "0"));
        json_array_append_new(pis, json_string(pi ? pi : ""));
        n++;
    }
    char *a = json_dumps(inv, JSON_COMPACT), *b = json_dumps(pis, JSON_COMPACT);
    const char *p[] = {a, b};
    fdb_exec(d,
             "INSERT INTO faults.standin SELECT x::bigint, y FROM"
             " unnest(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)),"
             "        ARRAY(SELECT jsonb_array_elements_text($2::jsonb))) AS t(x, y)",
             2, p);
    free(a);
    free(b);
    json_decref(inv);
    json_decref(pis);
    json_decref(all);
    return n;
}

static int64_t faults_standin_stat(const char *name)
{
    char url[300];
    snprintf(url, sizeof url, "%s/__standin/stats", R.standin_url);
    long code = 0;
    char *body = httptest_request("GET", url, NULL, &code);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    int64_t v = j ? (int64_t)json_integer_value(json_object_get(j, name)) : -1;
    json_decref(j);
    return v;
}

static const char faults_unit_bad_sql[] =
    "SELECT u.unit, u.kind, u.invoice_id, i.status, i.amount_paid_cents, i.refunded_cents,"
    " i.total_cents, i.payment_retry_count"
    " FROM faults.units u JOIN billing.invoices i ON i.id = u.invoice_id"
    " WHERE NOT CASE u.kind"
    " WHEN 'pay' THEN i.status = 'paid' AND i.amount_paid_cents = u.total"
    "  AND (SELECT count(*) FROM billing.payments p WHERE p.invoice_id = i.id) = 1"
    "  AND EXISTS (SELECT 1 FROM billing.payments p WHERE p.invoice_id = i.id"
    "   AND p.stripe_payment_intent_id = u.pi AND p.amount_cents = u.total AND p.source = 'stripe')"
    "  AND (SELECT count(*) FROM billing.audit_events a WHERE a.firm_id = i.firm_id"
    "   AND a.action IN ('payment_received', 'invoice_autopaid')"
    "   AND a.metadata->>'invoice_id' = i.id::text) = 1"
    " WHEN 'fail' THEN i.status = 'failed' AND i.payment_retry_count = 1"
    "  AND i.amount_paid_cents = 0"
    "  AND NOT EXISTS (SELECT 1 FROM billing.payments p WHERE p.invoice_id = i.id)"
    "  AND (SELECT count(*) FROM billing.payment_attempts a WHERE a.invoice_id = i.id) = 1"
    "  AND EXISTS (SELECT 1 FROM billing.payment_attempts a WHERE a.invoice_id = i.id"
    "   AND a.status = 'failed' AND a.stripe_payment_intent_id = u.pi)"
    "  AND (SELECT count(*) FROM billing.audit_events a WHERE a.firm_id = i.firm_id"
    "   AND a.action = 'payment_failed' AND a.metadata->>'invoice_id' = i.id::text) = 1"
    " WHEN 'dispute_won' THEN i.status = 'paid' AND i.amount_paid_cents = u.total"
    "  AND (SELECT count(*) FROM billing.payment_disputes x WHERE x.invoice_id = i.id) = 1"
    "  AND EXISTS (SELECT 1 FROM billing.payment_disputes x WHERE x.invoice_id = i.id"
    "   AND x.stripe_dispute_id = u.dispute AND x.status = 'closed' AND x.resolution = 'won'"
    "   AND x.amount_cents = u.total)"
    "  AND (SELECT count(*) FROM billing.audit_events a WHERE a.firm_id = i.firm_id"
    "   AND a.action IN ('payment_disputed', 'dispute_won')"
    "   AND a.metadata->>'invoice_id' = i.id::text) = 2"
    " WHEN 'dispute_lost' THEN i.status = 'charged_back' AND i.amount_paid_cents = 0"
    "  AND (SELECT count(*) FROM billing.payment_disputes x WHERE x.invoice_id = i.id) = 1"
    "  AND EXISTS (SELECT 1 FROM billing.payment_disputes x WHERE x.invoice_id = i.id"
    "   AND x.stripe_dispute_id = u.dispute AND x.status = 'closed' AND x.resolution = 'lost'"
    "   AND x.amount_cents = u.total)"
    "  AND (SELECT count(*) FROM billing.audit_events a WHERE a.firm_id = i.firm_id"
    "   AND a.action IN ('payment_disputed', 'dispute_lost')"
    "   AND a.metadata->>'invoice_id' = i.id::text) = 2"
    " WHEN 'refund' THEN i.status = 'refunded' AND i.amount_paid_cents = 0"
    "  AND i.refunded_cents = u.total"
    "  AND (SELECT count(*) FROM billing.refunds r WHERE r.invoice_id = i.id) = 2"
    "  AND (SELECT sum(r.amount_cents) FROM billing.refunds r WHERE r.invoice_id = i.id) = u.total"
    " END ORDER BY u.unit";

static const char faults_autopay_bad_sql[] =
    "WITH a AS (SELECT i.*, c.autopay_payment_method_id AS pm,"
    "  c.autopay_payment_method_id IN ('pm_card_visa', 'pm_standin_declines_1_then_visa')"
    "   AS pays,"
    "  (SELECT count(*) FROM billing.payments p WHERE p.invoice_id = i.id) AS npay,"
    "  (SELECT count(*) FROM billing.payments p WHERE p.invoice_id = i.id AND p.source = 'stripe'"
    "   AND p.amount_cents = i.total_cents) AS nstripe,"
    "  (SELECT count(*) FROM faults.standin s WHERE s.invoice_id = i.id) AS ncharged,"
    "  (SELECT count(*) FROM faults.standin s JOIN billing.payments p"
    "   ON p.stripe_payment_intent_id = s.pi WHERE s.invoice_id = i.id AND p.invoice_id = i.id)"
    "   AS nmatched"
    " FROM billing.invoices i JOIN billing.clients c ON c.id = i.client_id"
    " WHERE i.is_auto_generated)"
    " SELECT id, engagement_id, pm, status, autopay_status, amount_paid_cents, total_cents, npay,"
    "  ncharged, nmatched FROM a"
    " WHERE NOT CASE WHEN pays THEN status = 'paid' AND amount_paid_cents = total_cents"
    "   AND npay = 1 AND nstripe = 1 AND ncharged = 1 AND nmatched = 1"
    "  ELSE status IN ('failed', 'overdue') AND amount_paid_cents = 0 AND npay = 0"
    "   AND ncharged = 0 END"
    " ORDER BY id";

static void faults_checks(fdb *d, int64_t lag, int64_t dlq)
{
    char pfx[64];
    snprintf(pfx, sizeof pfx, "%s", R.prefix);
    const char *pp[] = {pfx};
    int64_t n = (int64_t)R.load.nevents;

    int64_t acked = 0;
    for (size_t i = 0; i < R.load.nevents; i++)
        acked += R.load.events[i].acks > 0;
    faults_check(acked == n && R.post.answered_2xx == (int64_t)R.load.nplan,
                 "every delivery was eventually answered 2xx (%" PRId64 " of %zu deliveries,"
                 " %" PRId64 " of %" PRId64 " events)",
                 R.post.answered_2xx, R.load.nplan, acked, n);

    static const char once_sql[] =
        "SELECT e.event_id, e.type, e.grp,"
        " (SELECT count(*) FROM billing.processed_messages p"
        "  WHERE p.consumer = $1 || e.grp AND p.idempotency_key = e.event_id) AS n"
        " FROM faults.events e WHERE (SELECT count(*) FROM billing.processed_messages p"
        "  WHERE p.consumer = $1 || e.grp AND p.idempotency_key = e.event_id) <> 1"
        " ORDER BY e.event_id";
    int64_t bad = fdb_i64(d,
                          "SELECT count(*) FROM (SELECT 1 FROM faults.events e WHERE"
                          " (SELECT count(*) FROM billing.processed_messages p"
                          "  WHERE p.consumer = $1 || e.grp AND p.idempotency_key ="
                          "  e.event_id) <> 1) x",
                          1, pp);
    faults_check(bad == 0,
                 "every event applied exactly once by the group that handles its type"
                 " (%" PRId64 " not)",
                 bad);
    if (bad)
        faults_show(d, once_sql, 1, pp);
    bad = fdb_i64(d,
                  "SELECT count(*) FROM billing.processed_messages p JOIN faults.events e"
                  " ON e.event_id = p.idempotency_key WHERE p.consumer <> $1 || e.grp",
                  1, pp);
    faults_check(bad == 0, "no event recorded by a group that does not handle it (%" PRId64 ")",
                 bad);

    char sql[sizeof faults_unit_bad_sql + 64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s) x", faults_unit_bad_sql);
    bad = fdb_i64(d, sql, 0, NULL);
    faults_check(bad == 0,
                 "every webhook unit has exactly its effects: payments, failures, disputes,"
                 " refunds, audit events (%" PRId64 " of %zu units wrong)",
                 bad, R.load.nunits);
    if (bad)
        faults_show(d, faults_unit_bad_sql, 0, NULL);

    int64_t invoices =
        fdb_i64(d, "SELECT count(*) FROM billing.invoices WHERE is_auto_generated", 0, NULL);
    int64_t engs =
        fdb_i64(d,
                "SELECT count(DISTINCT engagement_id) FROM billing.invoices"
                " WHERE is_auto_generated AND period_start = date '" FAULTS_INVOICING_DATE "'",
                0, NULL);
    faults_check(invoices == R.engagements && engs == R.engagements,
                 "one invoice per engagement (%" PRId64 " invoices, %" PRId64
                 " engagements, %ld expected)",
                 invoices, engs, R.engagements);

    int64_t charges = faults_load_standin(d);
    char sql2[sizeof faults_autopay_bad_sql + 64];
    snprintf(sql2, sizeof sql2, "SELECT count(*) FROM (%s) x", faults_autopay_bad_sql);
    bad = fdb_i64(d, sql2, 0, NULL);
    faults_check(bad == 0,
                 "every autopaid invoice paid once by exactly one successful PaymentIntent at"
                 " the stand-in, every declined one unpaid and uncharged (%" PRId64 " wrong)",
                 bad);
    if (bad)
        faults_show(d, faults_autopay_bad_sql, 0, NULL);
    int64_t twice = fdb_i64(d,
                            "SELECT count(*) FROM (SELECT invoice_id FROM faults.standin"
                            " GROUP BY invoice_id HAVING count(*) > 1) x",
                            0, NULL);
    int64_t stray = fdb_i64(d,
                            "SELECT count(*) FROM faults.standin s WHERE NOT EXISTS (SELECT 1"
                            " FROM billing.payments p WHERE p.stripe_payment_intent_id = s.pi)",
                            0, NULL);
    int64_t succeeded = faults_standin_stat("payment_intents_succeeded");
    int64_t paid_by_stripe = fdb_i64(d,
                                     "SELECT count(*) FROM billing.invoices i WHERE"
                                     " i.is_auto_generated AND EXISTS (SELECT 1 FROM"
                                     " billing.payments p WHERE p.invoice_id = i.id"
                                     " AND p.source = 'stripe')",
                                     0, NULL);
    faults_check(twice == 0 && stray == 0 && succeeded == charges && succeeded == paid_by_stripe,
                 "stand-in: %" PRId64 " successful PaymentIntents for %" PRId64
                 " invoices paid by Stripe (%" PRId64 " invoices charged twice, %" PRId64
                 " charges without a payment)",
                 succeeded, paid_by_stripe, twice, stray);

    faults_check(lag == 0, "every consumer group committed every message (lag %" PRId64 ")", lag);
    faults_check(dlq == 0, "nothing dead-lettered (%" PRId64 " on %sdlq)", dlq, R.prefix);
    int64_t unpublished = fdb_i64(d,
                                  "SELECT count(*) FROM billing.outbox WHERE published_at"
                                  " IS NULL",
                                  0, NULL);
    faults_check(unpublished == 0, "outbox fully relayed (%" PRId64 " rows left)", unpublished);
}

static void faults_verify(void)
{
    if (getenv("FAULTS_SKIP_VERIFY") && strcmp(getenv("FAULTS_SKIP_VERIFY"), "1") == 0) {
        faults_check(true, "billingctl verify skipped (FAULTS_SKIP_VERIFY=1)");
        return;
    }
    char log[700];
    snprintf(log, sizeof log, "%s/verify.log", R.dir);
    char env_db[600];
    snprintf(env_db, sizeof env_db, "DATABASE_URL=%s", R.operator_url);
    char *argv[] = {"/usr/bin/env", env_db, LL_BILLINGCTL_BIN, "verify", NULL};
    int rc = fproc_run(argv, log, 300000);
    faults_check(rc == 0, "billingctl verify exit %d (0 = clean; output in %s)", rc, log);
    if (rc != 0)
        fproc_tail(log, 40);
}

/* ------------------------------------------------------------------------ */

int main(void)
{
    R.t0 = fproc_now_ms();
    bool sanitized = LL_FAULTS_SANITIZED != 0;
    const char *fk = getenv("FAULTS_KAFKA");
    const char *reuse = getenv("KAFKA_REAL_DIR");
    if (fk != NULL && *fk != '\0') {
        if (strcmp(fk, "real") != 0 && strcmp(fk, "dev") != 0) {
            fprintf(stderr, "faults: FAULTS_KAFKA must be real or dev\n");
            return 2;
        }
        R.real = strcmp(fk, "real") == 0;
    } else {
        R.real = reuse != NULL && *reuse != '\0';
    }
    /* On a real cluster three JVMs share the cores and each node fault
     * stalls part of the load for half a minute: a smaller load keeps the
     * run in its budget (about 420 s on a loaded 2-core machine). */
    R.events = faults_env_long("FAULTS_EVENTS",
                               sanitized ? 3200
                               : R.real  ? 4800
                                         : 10000,
                               16, 1000000);
    R.engagements = faults_env_long("FAULTS_ENGAGEMENTS",
                                    sanitized ? 4000
                                    : R.real  ? 5000
                                              : 20000,
                                    10, 1000000);
    R.seed = (unsigned)faults_env_long("FAULTS_SEED", (long)(time(NULL) % 1000000), 0, 1000000000);
    unsigned seed = R.seed;
    /* A liveness backstop, not a speed goal: since BILLING_RULES section 11
     * a charge does more statements (attempt lookups, land_money), and the
     * 20,000-charge autopay tick took 286-345 s on a loaded 2-core machine. */
    long limit = faults_env_long("FAULTS_TIME_LIMIT", 540, 10, 86400);
    /* Longer on a real cluster: both node faults that stop writes (the
     * leader's SIGKILL, every node stopped) must come while events are
     * still being posted, one after the other. */
    long spread = faults_env_long("FAULTS_POST_SPREAD_MS", R.real ? 90000 : 60000, 0, 3600000);
    const char *dir = getenv("FAULTS_DIR");
    snprintf(R.dir, sizeof R.dir, "%s", dir && *dir ? dir : LL_FAULTS_STATE_DIR);
    snprintf(R.prefix, sizeof R.prefix, "flt%ld.", (long)getpid());
    size_t cycles = (size_t)(R.events + FU_EVENTS_PER_CYCLE / 2) / FU_EVENTS_PER_CYCLE;
    if (cycles == 0)
        cycles = 1;

    struct sigaction sa = {.sa_handler = faults_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)limit);
    /* Leave time for the checks, verify and clean stops after giving up. */
    R.deadline_ms = R.t0 + (limit > 120 ? limit - 45 : limit / 2) * 1000;
    curl_global_init(CURL_GLOBAL_DEFAULT);

    char pg_start[600], pg_stop[600];
    snprintf(pg_start, sizeof pg_start, "%s/deploy/local/pg-start.sh", LL_SOURCE_DIR);
    snprintf(pg_stop, sizeof pg_stop, "%s/deploy/local/pg-stop.sh", LL_SOURCE_DIR);
    fproc_init(R.dir, pg_start, pg_stop);
    printf("faults: %s build on %s; seed %u (FAULTS_SEED to repeat); state in %s\n",
           sanitized ? "sanitizer (ASan+UBSan)" : "release",
           R.real ? "a real 3-node Kafka cluster" : "the dev broker", seed, R.dir);
    fflush(stdout);
    faults_fresh_state();
    /* The driver's own library logs (librdkafka complaining while the
     * broker is down) go to a file, not to the test output. */
    char dlog[700];
    snprintf(dlog, sizeof dlog, "%s/driver.log", R.dir);
    int dfd = open(dlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
    log_init("faults-driver");
    log_set_level(LL_LOG_WARN);
    if (dfd >= 0)
        log_set_fd(dfd);
    faults_start_stack();
    faults_environment(faults_free_port());

    fevents_units(&R.load, cycles, 1);
    char err[512];
    if (fevents_build(&R.load, LL_FIXTURES_DIR, err, sizeof err) != 0)
        fproc_die("%s", err);
    fevents_plan(&R.load, seed ^ 0x5eedu);
    fdb d;
    fdb_open(&d, R.db_url);
    faults_seed(&d);
    faults_say("seeded %ld autopay engagements and %zu webhook units (%zu events; %zu"
               " deliveries, %zu first deliveries out of order)",
               R.engagements, R.load.nunits, R.load.nevents, R.load.nplan, R.load.out_of_order);

    faults_start_services();
    faults_say("services up: ingester %s, scheduler (clock %s), invoicing, autopay, retry,"
               " dispute workers",
               R.ingester_url, FAULTS_SCHEDULER_NOW);

    char post_url[300];
    snprintf(post_url, sizeof post_url, "%s/webhooks/stripe", R.ingester_url);
    R.post = (fpost){.url = post_url,
                     .secret = FAULTS_SECRET,
                     .concurrency = 24,
                     .spread_ms = spread,
                     .load = &R.load};
    pthread_t poster, ticker;
    int64_t load_start = fproc_now_ms();
    if (pthread_create(&poster, NULL, fpost_run, &R.post) != 0 ||
        pthread_create(&ticker, NULL, faults_ticks_run, NULL) != 0)
        fproc_die("cannot start threads");

    /* Each fault once, at a random moment of the work it can disturb. */
    faults_schedule(&d);
    int64_t last_fault = fproc_now_ms();
    faults_say("last fault over");

    pthread_join(poster, NULL);
    faults_say("posting done: %" PRId64 " posts, %" PRId64 " answered 2xx, %" PRId64
               " re-posted (503: %" PRId64 ", transport: %" PRId64 ", other: %" PRId64 ")",
               R.post.posted, R.post.answered_2xx, R.post.retried, R.post.code_503,
               R.post.transport_errors, R.post.code_other);
    pthread_join(ticker, NULL);

    /* Drain: every event applied, nothing in flight, every group caught up
     * (twice in a row: offsets are committed every second). */
    char pfx[80];
    snprintf(pfx, sizeof pfx, "%s%%", R.prefix);
    const char *pp[] = {pfx};
    int64_t lag = -1, applied = 0, unpublished = 0, inflight = 0;
    int stable = 0;
    int64_t next_note = fproc_now_ms() + 10000;
    while (stable < 2) {
        applied = fdb_i64(&d,
                          "SELECT count(*) FROM billing.processed_messages"
                          " WHERE consumer LIKE $1 AND idempotency_key LIKE 'evt\\_FLT%'",
                          1, pp);
        unpublished =
            fdb_i64(&d, "SELECT count(*) FROM billing.outbox WHERE published_at IS NULL", 0, NULL);
        inflight = fdb_i64(&d,
                           "SELECT count(*) FROM billing.payment_attempts WHERE status ="
                           " 'processing' AND stripe_payment_intent_id IS NULL",
                           0, NULL);
        lag = (applied >= (int64_t)R.load.nevents && unpublished == 0 && inflight == 0)
                  ? fcheck_lag(R.brokers, R.prefix)
                  : -1;
        stable = lag == 0 ? stable + 1 : 0;
        if (stable < 2 && fproc_now_ms() >= R.deadline_ms) {
            faults_say("GAVE UP draining: %" PRId64 "/%zu events applied, %" PRId64
                       " outbox rows unpublished, %" PRId64 " charges in flight, lag %" PRId64,
                       applied, R.load.nevents, unpublished, inflight, lag);
            R.gave_up = 1;
            if (lag < 0)
                lag = fcheck_lag(R.brokers, R.prefix);
            break;
        }
        if (fproc_now_ms() >= next_note) {
            faults_say("draining: %" PRId64 "/%zu events applied, %" PRId64
                       " outbox rows unpublished, %" PRId64 " charges in flight, lag %" PRId64,
                       applied, R.load.nevents, unpublished, inflight, lag);
            next_note += 10000;
        }
        if (stable < 2)
            fproc_sleep_ms(stable ? 1000 : 500);
    }
    int64_t drained = fproc_now_ms();
    double drain_s = (double)(drained - last_fault) / 1000.0;
    faults_say("drained %.1f s after the last fault", drain_s);
    int64_t dlq = fcheck_dlq_count(R.brokers, R.prefix);

    faults_check(!R.gave_up, "the load drained within the time limit");
    if (R.real) {
        int64_t w = R.post.window_503 + R.post.window_other + R.post.window_transport;
        faults_check(R.post.window_2xx == 0 && R.post.window_503 > 0,
                     "while no kafka node was up (%.1f s), no webhook answered 2xx (%" PRId64
                     " 2xx, %" PRId64 " 503 of %" PRId64 " other answers)",
                     (double)R.window_ms / 1000.0, R.post.window_2xx, R.post.window_503, w);
    }
    faults_checks(&d, lag, dlq);
    int64_t created = faults_standin_stat("payment_intents_created");
    int64_t succeeded = faults_standin_stat("payment_intents_succeeded");
    faults_verify();
    fdb_close(&d);

    /* Clean stops: every process of the system exits 0 on SIGTERM. */
    for (int id = FP_INGESTER; id < FP_COUNT; id++) {
        int rc = fproc_stop((fproc_id)id, 30000);
        faults_check(rc == 0, "%s stopped cleanly on SIGTERM (exit %d)", fprocs[id].name, rc);
        if (rc != 0)
            fproc_tail(fprocs[id].log, 30);
    }
    fproc_stop(FP_STANDIN, 10000);
    if (R.real) {
        if (faults_failures)
            setenv("KAFKA_REAL_KEEP", "1", 1); /* the nodes' logs */
        kr_down(&R.kafka);
        fproc_kafka_forget();
    } else {
        fproc_stop(FP_BROKER, 10000);
    }
    fproc_pg_stop();

    int64_t total_ms = fproc_now_ms() - R.t0;
    /* The figures, on stdout and in <state dir>-figures.txt (kept after a
     * successful run, when the state directory is removed). */
    char fig[700];
    snprintf(fig, sizeof fig, "%s-figures.txt", R.dir);
    FILE *figf = fopen(fig, "w");
    for (int out = 0; out < 2; out++) {
        FILE *f = out == 0 ? stdout : figf;
        if (f == NULL)
            continue;
        fprintf(f, "faults: ==== figures (%s build, %s, seed %u)\n",
                sanitized ? "sanitizer" : "release", R.real ? "real 3-node Kafka" : "dev broker",
                seed);
        fprintf(f,
                "faults: events: %zu distinct (%zu webhook units), %zu deliveries planned"
                " (every event twice, %zu first deliveries out of order)\n",
                R.load.nevents, R.load.nunits, R.load.nplan, R.load.out_of_order);
        fprintf(f,
                "faults: posted %" PRId64 ", answered 2xx %" PRId64 ", retried %" PRId64
                " (503 %" PRId64 ", transport errors %" PRId64 ", other %" PRId64 ")\n",
                R.post.posted, R.post.answered_2xx, R.post.retried, R.post.code_503,
                R.post.transport_errors, R.post.code_other);
        fprintf(f, "faults: applied %" PRId64 ", duplicates absorbed %" PRId64 "\n", applied,
                R.post.answered_2xx - applied);
        fprintf(f,
                "faults: engagements %ld invoiced and autopaid; stand-in PaymentIntents created "
                "%" PRId64 ", succeeded %" PRId64 "\n",
                R.engagements, created, succeeded);
        fprintf(
            f,
            "faults: ticks: invoicing %.1f s, autopay %.1f s, retry %.1f s (publish to applied)\n",
            (double)R.ticks_ms[0] / 1000.0, (double)R.ticks_ms[1] / 1000.0,
            (double)R.ticks_ms[2] / 1000.0);
        if (R.real)
            fprintf(f,
                    "faults: kafka: leader node down %.1f s, minority node down %.1f s, every"
                    " node down %.1f s; answers while no acks=all was possible (%.1f s):"
                    " 2xx %" PRId64 ", 503 %" PRId64 ", other %" PRId64 ", transport %" PRId64 "\n",
                    (double)R.leader_down_ms / 1000.0, (double)R.minority_down_ms / 1000.0,
                    (double)R.all_down_ms / 1000.0, (double)R.window_ms / 1000.0, R.post.window_2xx,
                    R.post.window_503, R.post.window_other, R.post.window_transport);
        fprintf(f,
                "faults: load phase %.1f s; drain after the last fault %.1f s; whole run %.1f s\n",
                (double)(drained - load_start) / 1000.0, drain_s, (double)total_ms / 1000.0);
        fprintf(f, "faults: %s\n", faults_failures ? "FAILED" : "all checks passed");
    }
    if (figf)
        fclose(figf);
    fflush(stdout);
    fevents_free(&R.load);
    curl_global_cleanup();
    if (faults_failures == 0 && !(getenv("FAULTS_KEEP") && strcmp(getenv("FAULTS_KEEP"), "1") == 0))
        faults_rm_rf(R.dir);
    else
        printf("faults: logs kept in %s\n", R.dir);
    return faults_failures ? 1 : 0;
}
