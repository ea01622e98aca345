/* fproc.c: the fault suite's child processes and its PostgreSQL cluster
 * (see faults.h). Owns starting, crashing (SIGKILL), stopping and reaping
 * every process the suite starts, and making sure none outlives the suite:
 * children get PR_SET_PDEATHSIG, and every failure path (including the
 * watchdog's SIGALRM and SIGINT/SIGTERM) goes through fproc_cleanup_hard(),
 * which only uses async-signal-safe calls. Nothing is ever killed by name.
 * While the suite sleeps it supervises the services (ingester, scheduler,
 * workers) as systemd's Restart=on-failure does in production
 * (deploy/systemd): one that exited non-zero by itself, e.g. after a fatal
 * Kafka error (an idempotent producer whose message timed out while every
 * broker was down), is started again. */
#include "faults.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

fproc fprocs[FP_COUNT];

static char fproc_state[512];
static char fproc_pg_dir[600];
static char fproc_pg_start_sh[512];
static char fproc_pg_stop_sh[512];
static volatile sig_atomic_t fproc_pg_running;
/* The real Kafka cluster (kreal.c), when the suite runs on one: not a child
 * of the driver (kafka-up.sh starts its nodes detached), so every failure
 * path stops it (own) or starts again the nodes the suite took down. */
static char fproc_kafka_sh[512];
static char fproc_kafka_dir[512];
static volatile sig_atomic_t fproc_kafka_own;
static volatile sig_atomic_t fproc_kafka_down[FPROC_KAFKA_NODES + 1];

int64_t fproc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pthread_t fproc_main_thread;
static int fproc_status(int status);

/* The services that exited by themselves with a non-zero status are
 * started again (main thread only: the posting threads sleep too). */
static void fproc_supervise(void)
{
    if (!pthread_equal(pthread_self(), fproc_main_thread))
        return;
    for (int id = FP_INGESTER; id < FP_COUNT; id++) {
        fproc *p = &fprocs[id];
        int status = 0;
        pid_t pid = p->pid;
        if (pid <= 0 || p->stopping || waitpid(pid, &status, WNOHANG) != pid)
            continue;
        int rc = fproc_status(status);
        p->pid = 0;
        if (rc == 0)
            continue;
        fproc_spawn((fproc_id)id);
        p->restarted++;
        printf("faults: supervisor: %s (pid %d) exited with status %d by itself; restarted as "
               "pid %d (Restart=on-failure)\n",
               p->name, (int)pid, rc, (int)p->pid);
        fflush(stdout);
    }
}

void fproc_sleep_ms(int64_t ms)
{
    fproc_supervise();
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void fproc_init(const char *state_dir, const char *pg_start, const char *pg_stop)
{
    fproc_main_thread = pthread_self();
    snprintf(fproc_state, sizeof fproc_state, "%s", state_dir);
    snprintf(fproc_pg_dir, sizeof fproc_pg_dir, "%s/pg", state_dir);
    snprintf(fproc_pg_start_sh, sizeof fproc_pg_start_sh, "%s", pg_start);
    snprintf(fproc_pg_stop_sh, sizeof fproc_pg_stop_sh, "%s", pg_stop);
}

/* The child side of a fork: only async-signal-safe calls until execv. */
static void fproc_child(const char *log, char *const argv[], pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(125);
    int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) {
        dup2(nul, 0);
        close(nul);
    }
    /* Signals the driver blocks or ignores must not leak into children. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, &dfl, NULL);
    execv(argv[0], argv);
    _exit(127);
}

void fproc_spawn(fproc_id id)
{
    fproc *p = &fprocs[id];
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        fproc_die("fork failed for %s: %s", p->name, strerror(errno));
    if (pid == 0)
        fproc_child(p->log, p->argv, parent);
    p->pid = pid;
    p->spawned++;
}

static int fproc_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

void fproc_kill(fproc_id id)
{
    fproc *p = &fprocs[id];
    pid_t pid = p->pid;
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    p->pid = 0;
}

void fproc_signal(fproc_id id, int sig)
{
    if (fprocs[id].pid > 0)
        kill(fprocs[id].pid, sig);
}

static int fproc_wait(pid_t pid, int timeout_ms, bool *exited)
{
    int status = 0;
    int64_t until = fproc_now_ms() + timeout_ms;
    *exited = false;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            *exited = true;
            return fproc_status(status);
        }
        if (r < 0)
            return -1;
        if (fproc_now_ms() >= until)
            return -1;
        fproc_sleep_ms(20);
    }
}

int fproc_stop(fproc_id id, int timeout_ms)
{
    fproc *p = &fprocs[id];
    pid_t pid = p->pid;
    if (pid <= 0)
        return -1;
    p->stopping = true;
    kill(pid, SIGTERM);
    bool exited;
    int rc = fproc_wait(pid, timeout_ms, &exited);
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        rc = -1;
    }
    p->pid = 0;
    p->stopping = false;
    return rc;
}

int fproc_run(char *const argv[], const char *log_path, int timeout_ms)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        fproc_child(log_path, argv, parent);
    bool exited;
    int rc = fproc_wait(pid, timeout_ms, &exited);
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return rc;
}

/* KEY=value from a small env file. */
static bool fproc_env_value(const char *path, const char *key, char *out, size_t outlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[1024];
    size_t kl = strlen(key);
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
            line[strcspn(line, "\r\n")] = '\0';
            snprintf(out, outlen, "%s", line + kl + 1);
            found = true;
        }
    }
    fclose(f);
    return found;
}

int fproc_pg_start(int port, const char *db, const char *billingctl, char *url, size_t urllen,
                   int *port_out)
{
    char log[700], portbuf[16], envfile[700], env_bctl[600];
    snprintf(log, sizeof log, "%s/pg-start.log", fproc_state);
    snprintf(portbuf, sizeof portbuf, "%d", port);
    snprintf(env_bctl, sizeof env_bctl, "BILLINGCTL=%s", billingctl ? billingctl : "");
    char *argv[12];
    int n = 0;
    argv[n++] = "/usr/bin/env";
    argv[n++] = billingctl ? env_bctl : "BILLINGCTL=";
    argv[n++] = fproc_pg_start_sh;
    argv[n++] = "--dir";
    argv[n++] = fproc_pg_dir;
    argv[n++] = "--db";
    argv[n++] = (char *)db;
    if (port > 0) {
        argv[n++] = "--port";
        argv[n++] = portbuf;
    }
    argv[n] = NULL;
    fproc_pg_running = 1; /* from here on, cleanup must stop it */
    int rc = fproc_run(argv, log, 120000);
    if (rc != 0)
        return -1;
    snprintf(envfile, sizeof envfile, "%s/env", fproc_pg_dir);
    char p[32];
    if (!fproc_env_value(envfile, "DATABASE_URL", url, urllen) ||
        !fproc_env_value(envfile, "PGPORT", p, sizeof p))
        return -1;
    *port_out = atoi(p);
    return 0;
}

bool fproc_pg_env(const char *key, char *out, size_t outlen)
{
    char envfile[700];
    snprintf(envfile, sizeof envfile, "%s/env", fproc_pg_dir);
    return fproc_env_value(envfile, key, out, outlen);
}

int fproc_pg_stop(void)
{
    char log[700];
    snprintf(log, sizeof log, "%s/pg-stop.log", fproc_state);
    char *argv[] = {fproc_pg_stop_sh, "--dir", fproc_pg_dir, NULL};
    int rc = fproc_run(argv, log, 120000);
    if (rc == 0)
        fproc_pg_running = 0;
    return rc;
}

void fproc_kafka(const char *down_sh, const char *dir, bool own)
{
    snprintf(fproc_kafka_sh, sizeof fproc_kafka_sh, "%s", down_sh);
    snprintf(fproc_kafka_dir, sizeof fproc_kafka_dir, "%s", dir);
    fproc_kafka_own = own;
}

void fproc_kafka_mark(int node, bool down)
{
    if (node >= 1 && node <= FPROC_KAFKA_NODES)
        fproc_kafka_down[node] = down;
}

void fproc_kafka_forget(void)
{
    fproc_kafka_sh[0] = '\0';
}

/* Async-signal-safe: fork, exec, waitpid. */
static void fproc_kafka_run(char *const argv[])
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        fproc_child(NULL, argv, parent);
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

static void fproc_kafka_cleanup(void)
{
    if (fproc_kafka_sh[0] == '\0')
        return;
    if (fproc_kafka_own) {
        char *argv[] = {fproc_kafka_sh, "--dir", fproc_kafka_dir, NULL};
        fproc_kafka_run(argv);
    } else {
        static char node[FPROC_KAFKA_NODES + 1][4];
        for (int i = 1; i <= FPROC_KAFKA_NODES; i++) {
            if (!fproc_kafka_down[i])
                continue;
            node[i][0] = (char)('0' + i);
            node[i][1] = '\0';
            char *argv[] = {fproc_kafka_sh, "--dir", fproc_kafka_dir, "--start", node[i], NULL};
            fproc_kafka_run(argv);
            fproc_kafka_down[i] = 0;
        }
    }
    fproc_kafka_sh[0] = '\0';
}

void fproc_cleanup_hard(void)
{
    for (int i = 0; i < FP_COUNT; i++) {
        pid_t pid = fprocs[i].pid;
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fprocs[i].pid = 0;
        }
    }
    if (fproc_pg_running && fproc_pg_stop_sh[0] != '\0') {
        char *argv[] = {fproc_pg_stop_sh, "--dir", fproc_pg_dir, NULL};
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid == 0)
            fproc_child(NULL, argv, parent);
        if (pid > 0)
            waitpid(pid, NULL, 0);
        fproc_pg_running = 0;
    }
    fproc_kafka_cleanup();
}

void fproc_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("faults: FAILED: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fprintf(stderr, "faults: logs are in %s\n", fproc_state);
    fflush(stdout);
    fflush(stderr);
    fproc_cleanup_hard();
    _exit(1);
}

void fproc_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    /* Keep the last `lines` lines in a ring. */
    enum { W = 512 };
    static char ring[64][W];
    if (lines > 64)
        lines = 64;
    int n = 0;
    char buf[W];
    while (fgets(buf, sizeof buf, f)) {
        snprintf(ring[n % lines], W, "%s", buf);
        n++;
    }
    fclose(f);
    fprintf(stderr, "---- last lines of %s\n", path);
    int start = n > lines ? n - lines : 0;
    for (int i = start; i < n; i++)
        fputs(ring[i % lines], stderr);
}
