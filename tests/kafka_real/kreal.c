/* kreal.c: the kafka_real tests' cluster (kreal.h). */
#include "kreal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>

#include "ledgerline/kafka.h"

static kr_cluster *kr_active;

void kr_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kafka_real: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

unsigned long long kr_mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)t.tv_sec * 1000ull + (unsigned long long)t.tv_nsec / 1000000ull;
}

void kr_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Runs argv (no shell) with stdout and stderr to log (appended) or inherited;
 * returns its exit status, or -1. */
static int kr_run(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (log != NULL && freopen(log, "a", stdout) != NULL)
            dup2(STDOUT_FILENO, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool kr_port_free(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return false;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(s);
    return ok;
}

/* A base P with P..P+2 and P+100..P+102 free. */
static int kr_port_base(void)
{
    srand((unsigned)(getpid() ^ time(NULL)));
    for (int tries = 0; tries < 200; tries++) {
        int base = 20000 + rand() % 20000;
        bool ok = true;
        for (int i = 0; i < KR_NODES && ok; i++)
            ok = kr_port_free(base + i) && kr_port_free(base + 100 + i);
        if (ok)
            return base;
    }
    return -1;
}

/* Loads DIR/env (KAFKA_BROKERS, the administrator's credentials) into the
 * process environment. */
static void kr_load_env(kr_cluster *c)
{
    char path[600], line[1024];
    snprintf(path, sizeof path, "%s/env", c->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        kr_say("cannot read %s", path);
        exit(1);
    }
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        setenv(line, eq + 1, 1);
        if (strcmp(line, "KAFKA_BROKERS") == 0)
            snprintf(c->brokers, sizeof c->brokers, "%s", eq + 1);
    }
    fclose(f);
}

static void kr_atexit(void)
{
    if (kr_active != NULL)
        kr_down(kr_active);
}

void kr_up(kr_cluster *c, bool sasl, const char *const *users, const char *topic_prefix)
{
    memset(c, 0, sizeof *c);
    c->sasl = sasl;
    const char *reuse = getenv("KAFKA_REAL_DIR");
    if (reuse != NULL && reuse[0] != '\0' && !sasl) {
        snprintf(c->dir, sizeof c->dir, "%s", reuse);
        kr_load_env(c);
        kr_active = c;
        atexit(kr_atexit);
        kr_say("reusing the cluster in %s (%s)", c->dir, c->brokers);
        return;
    }

    /* The broker's jars first: their absence is a skip, not a failure. */
    char *fetch[] = {(char *)LL_SOURCE_DIR "/deploy/local/kafka/kafka-fetch.sh", (char *)"--quiet",
                     NULL};
    unsigned long long t0 = kr_mono_ms();
    int rc = kr_run(fetch, "/dev/null");
    if (rc == 3) {
        kr_say("SKIP: java or mvn is not installed (needed for a real Apache Kafka cluster)");
        exit(KR_SKIP);
    }
    if (rc != 0) {
        kr_say("SKIP: the Apache Kafka broker could not be fetched through Maven "
               "(deploy/local/kafka/kafka-fetch.sh exit %d)",
               rc);
        exit(KR_SKIP);
    }

    snprintf(c->dir, sizeof c->dir, "/tmp/ll-kafka-real-XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        kr_say("cannot create a temp dir: %s", strerror(errno));
        exit(1);
    }
    c->own = true;
    kr_active = c;
    atexit(kr_atexit);
    int base = kr_port_base();
    if (base < 0) {
        kr_say("no free loopback ports");
        exit(1);
    }
    char sbase[16], cdir[420], log[600];
    snprintf(sbase, sizeof sbase, "%d", base);
    snprintf(cdir, sizeof cdir, "%.400s/cluster", c->dir);
    snprintf(log, sizeof log, "%s/kafka-up.log", c->dir);
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)LL_SOURCE_DIR "/deploy/local/kafka/kafka-up.sh";
    argv[n++] = (char *)"--dir";
    argv[n++] = cdir;
    argv[n++] = (char *)"--port-base";
    argv[n++] = sbase;
    argv[n++] = (char *)"--build";
    argv[n++] = (char *)LL_BUILD_DIR;
    argv[n++] = (char *)"--topic-prefix";
    argv[n++] = (char *)topic_prefix;
    if (sasl) {
        argv[n++] = (char *)"--sasl";
        for (size_t i = 0; users != NULL && users[i] != NULL && n < 60; i++) {
            argv[n++] = (char *)"--user";
            argv[n++] = (char *)users[i];
        }
    }
    argv[n] = NULL;
    rc = kr_run(argv, log);
    if (rc == 3) {
        kr_say("SKIP: java or mvn is not installed");
        exit(KR_SKIP);
    }
    if (rc != 0) {
        kr_say("the cluster did not start (exit %d); see %s and %s/node*/server.log", rc, log,
               cdir);
        exit(1);
    }
    /* From here on c->dir is the cluster's own directory (DIR/cluster). */
    snprintf(c->dir, sizeof c->dir, "%s", cdir);
    kr_load_env(c);
    kr_say("%s cluster of %d nodes up at %s in %.1f s (incl. the jar check)",
           sasl ? "SASL/SCRAM" : "plaintext", KR_NODES, c->brokers,
           (double)(kr_mono_ms() - t0) / 1000.0);
}

int kr_node(kr_cluster *c, const char *action, int node)
{
    char flag[16], sn[16];
    snprintf(flag, sizeof flag, "--%s", action);
    snprintf(sn, sizeof sn, "%d", node);
    char *argv[] = {(char *)LL_SOURCE_DIR "/deploy/local/kafka/kafka-down.sh",
                    (char *)"--dir",
                    c->dir,
                    flag,
                    sn,
                    NULL};
    int rc = kr_run(argv, NULL);
    if (rc == 0 && node >= 1 && node <= KR_NODES)
        c->down[node] = strcmp(action, "start") != 0;
    return rc;
}

int kr_stop_all(kr_cluster *c)
{
    char *argv[] = {(char *)LL_SOURCE_DIR "/deploy/local/kafka/kafka-down.sh", (char *)"--dir",
                    c->dir, NULL};
    int rc = kr_run(argv, NULL);
    if (rc == 0)
        for (int i = 1; i <= KR_NODES; i++)
            c->down[i] = true;
    return rc;
}

int kr_start_all(kr_cluster *c)
{
    /* All at once: one node alone has no controller quorum to join. */
    pid_t pids[KR_NODES + 1] = {0};
    char sn[KR_NODES + 1][8];
    for (int i = 1; i <= KR_NODES; i++) {
        snprintf(sn[i], sizeof sn[i], "%d", i);
        char *argv[] = {(char *)LL_SOURCE_DIR "/deploy/local/kafka/kafka-down.sh",
                        (char *)"--dir",
                        c->dir,
                        (char *)"--start",
                        sn[i],
                        NULL};
        pids[i] = fork();
        if (pids[i] == 0) {
            execv(argv[0], argv);
            _exit(127);
        }
    }
    int bad = 0;
    for (int i = 1; i <= KR_NODES; i++) {
        int st = 0;
        if (pids[i] < 0) {
            bad++;
            continue;
        }
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            c->down[i] = false;
        else
            bad++;
    }
    return bad == 0 ? 0 : -1;
}

void kr_down(kr_cluster *c)
{
    if (c->dir[0] == '\0')
        return;
    if (!c->own) {
        for (int i = 1; i <= KR_NODES; i++)
            if (c->down[i])
                kr_node(c, "start", i);
        c->dir[0] = '\0';
        return;
    }
    char *argv[] = {(char *)LL_SOURCE_DIR "/deploy/local/kafka/kafka-down.sh", (char *)"--dir",
                    c->dir, NULL};
    kr_run(argv, NULL);
    /* The cluster's directory is DIR/cluster: keep DIR (logs) when asked. */
    char top[512];
    snprintf(top, sizeof top, "%s", c->dir);
    char *slash = strrchr(top, '/');
    if (slash != NULL)
        *slash = '\0';
    if (getenv("KAFKA_REAL_KEEP") == NULL) {
        char *rm[] = {(char *)"/bin/rm", (char *)"-rf", top, NULL};
        kr_run(rm, NULL);
    } else {
        kr_say("cluster state kept in %s", top);
    }
    c->dir[0] = '\0';
    kr_active = NULL;
}

int kr_leader(const char *topic, int partition)
{
    int leaders[64];
    int n = kr_leaders(topic, leaders, 64);
    return partition >= 0 && partition < n ? leaders[partition] : -1;
}

int kr_leaders(const char *topic, int *leaders, int max)
{
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new(getenv("KAFKA_BROKERS"), err, sizeof err);
    if (conf == NULL)
        return -1;
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == NULL)
        return -1;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(rk, 0, t, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1) {
            n = md->topics[0].partition_cnt < max ? md->topics[0].partition_cnt : max;
            for (int i = 0; i < n; i++)
                leaders[i] = -1;
            for (int i = 0; i < md->topics[0].partition_cnt; i++) {
                const struct rd_kafka_metadata_partition *p = &md->topics[0].partitions[i];
                if (p->id >= 0 && p->id < n)
                    leaders[p->id] = p->leader;
            }
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
    return n;
}

const char *kr_password(const kr_cluster *c, const char *user)
{
    static char pw[128];
    char path[600], line[512];
    snprintf(path, sizeof path, "%s/credentials", c->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    const char *found = NULL;
    size_t ul = strlen(user);
    while (found == NULL && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, user, ul) == 0 && line[ul] == ' ') {
            snprintf(pw, sizeof pw, "%s", line + ul + 1);
            found = pw;
        }
    }
    fclose(f);
    return found;
}

void kr_principal_env(const kr_cluster *c, const char *user, const char *password,
                      kr_principal *out)
{
    if (password == NULL)
        password = kr_password(c, user);
    snprintf(out->buf[0], sizeof out->buf[0], "KAFKA_SECURITY_PROTOCOL=sasl_plaintext");
    snprintf(out->buf[1], sizeof out->buf[1], "KAFKA_SASL_MECHANISM=SCRAM-SHA-512");
    snprintf(out->buf[2], sizeof out->buf[2], "KAFKA_SASL_USERNAME=%s", user);
    snprintf(out->buf[3], sizeof out->buf[3], "KAFKA_SASL_PASSWORD=%s",
             password != NULL ? password : "");
    for (int i = 0; i < 4; i++)
        out->env[i] = out->buf[i];
    out->env[4] = NULL;
}
