/* standin.c: see standin.h. Spawns the stand-in as a child process (it dies
 * with the test process through PR_SET_PDEATHSIG, so an aborted test leaves
 * nothing running) and talks to its /__standin/ endpoints with libcurl. */
#include "standin.h"
#include "httptest.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#ifndef LL_STRIPE_STANDIN_BIN
#define LL_STRIPE_STANDIN_BIN "stripe-standin"
#endif

struct standin {
    pid_t pid;
    char dir[64];
    char addr_file[96];
    char url[128];
};

static void standin_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The URL once the stand-in has written its --addr-file (rename: whole). */
static int standin_read_url(standin *s)
{
    FILE *f = fopen(s->addr_file, "r");
    if (f == NULL)
        return -1;
    char line[128] = {0};
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    if (got == NULL || strncmp(line, "http://", 7) != 0)
        return -1;
    line[strcspn(line, "\r\n")] = '\0';
    snprintf(s->url, sizeof s->url, "%s", line);
    return 0;
}

standin *standin_start(const char *const *extra_args)
{
    standin *s = calloc(1, sizeof *s);
    assert_non_null(s);
    snprintf(s->dir, sizeof s->dir, "/tmp/standin.XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        fail_msg("standin: mkdtemp: %s", strerror(errno));
    snprintf(s->addr_file, sizeof s->addr_file, "%s/addr", s->dir);

    const char *argv[64];
    size_t n = 0;
    argv[n++] = LL_STRIPE_STANDIN_BIN;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--addr-file";
    argv[n++] = s->addr_file;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        if (n + 1 >= sizeof argv / sizeof argv[0])
            fail_msg("standin: too many extra arguments");
        argv[n++] = extra_args[i];
    }
    argv[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("standin: fork: %s", strerror(errno));
    if (pid == 0) {
        /* Die with the test process, whatever way it ends. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO); /* the URL line: we read the addr file */
        execv(LL_STRIPE_STANDIN_BIN, (char *const *)argv);
        fprintf(stderr, "standin: exec %s: %s\n", LL_STRIPE_STANDIN_BIN, strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    for (int waited = 0; waited < 30000; waited += 20) {
        if (standin_read_url(s) == 0)
            return s;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            fail_msg("standin: %s exited before listening (status %d)", LL_STRIPE_STANDIN_BIN,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        standin_sleep_ms(20);
    }
    standin_stop(s);
    fail_msg("standin: no URL from %s within 30 s", LL_STRIPE_STANDIN_BIN);
    return NULL;
}

const char *standin_url(const standin *s)
{
    return s->url;
}

static json_t *standin_request(const standin *s, const char *method, const char *path,
                               const char *body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    long status = 0;
    char *answer = httptest_request(
        method, url, body != NULL || strcmp(method, "POST") != 0 ? body : "", &status);
    if (answer == NULL)
        fail_msg("standin: %s %s: no answer", method, url);
    json_error_t je;
    json_t *j = json_loads(answer, 0, &je);
    if (j == NULL) {
        fprintf(stderr, "standin: %s %s answered %ld, not JSON: %s\n", method, url, status,
                answer[0] != '\0' ? answer : "(empty)");
        free(answer);
        fail();
    }
    free(answer);
    return j;
}

json_t *standin_get(const standin *s, const char *path)
{
    return standin_request(s, "GET", path, NULL);
}

json_t *standin_post(const standin *s, const char *path, const char *json_body)
{
    return standin_request(s, "POST", path, json_body);
}

int64_t standin_stat(const standin *s, const char *name)
{
    json_t *st = standin_get(s, "/__standin/stats");
    json_t *v = json_object_get(st, name);
    if (!json_is_integer(v)) {
        json_decref(st);
        fail_msg("standin: /__standin/stats has no integer '%s'", name);
    }
    int64_t n = json_integer_value(v);
    json_decref(st);
    return n;
}

int64_t standin_count(const standin *s, const char *method, const char *path_prefix)
{
    json_t *all = standin_get(s, "/__standin/requests");
    int64_t n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *m = json_string_value(json_object_get(r, "method"));
        const char *p = json_string_value(json_object_get(r, "path"));
        if (method != NULL && (m == NULL || strcmp(m, method) != 0))
            continue;
        if (path_prefix != NULL && (p == NULL || strncmp(p, path_prefix, strlen(path_prefix)) != 0))
            continue;
        n++;
    }
    json_decref(all);
    return n;
}

void standin_stop(standin *s)
{
    if (s == NULL)
        return;
    int status = 0;
    bool gone = false, clean = true;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        for (int waited = 0; waited < 10000 && !gone; waited += 20) {
            if (waitpid(s->pid, &status, WNOHANG) == s->pid)
                gone = true;
            else
                standin_sleep_ms(20);
        }
        if (!gone) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
        }
        /* It exits 0 on SIGTERM; anything else (a crash, a sanitizer report,
         * a hang) is a bug the test run must not hide. */
        clean = gone && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    unlink(s->addr_file);
    rmdir(s->dir);
    free(s);
    if (!clean)
        fail_msg("standin: %s did not exit cleanly on SIGTERM (%s %d)", LL_STRIPE_STANDIN_BIN,
                 !gone ? "killed after 10 s, status" : "wait status", status);
}

/* ---- controls ------------------------------------------------------------ */

/* A control call whose answer must not be an error; body is stolen. */
static json_t *standin_control(const standin *s, const char *method, const char *path, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (body != NULL && text == NULL)
        fail_msg("standin: cannot encode the body for %s", path);
    json_t *j = standin_request(s, method, path, text != NULL ? text : NULL);
    free(text);
    if (json_object_get(j, "error") != NULL) {
        char *dump = json_dumps(j, JSON_COMPACT);
        fprintf(stderr, "standin: %s %s refused: %s\n", method, path, dump ? dump : "?");
        free(dump);
        json_decref(j);
        fail();
    }
    return j;
}

static json_t *standin_data(const standin *s, const char *path)
{
    json_t *j = standin_control(s, "GET", path, NULL);
    json_t *data = json_incref(json_object_get(j, "data"));
    json_decref(j);
    if (!json_is_array(data))
        fail_msg("standin: %s has no data array", path);
    return data;
}

static int64_t standin_now_of(json_t *j)
{
    json_t *v = json_object_get(j, "now");
    if (!json_is_integer(v))
        fail_msg("standin: clock answer has no integer now");
    int64_t n = json_integer_value(v);
    json_decref(j);
    return n;
}

void standin_reset(const standin *s)
{
    json_decref(standin_control(s, "POST", "/__standin/reset", NULL));
}

int64_t standin_clock_now(const standin *s)
{
    return standin_now_of(standin_control(s, "GET", "/__standin/clock", NULL));
}

int64_t standin_clock_advance(const standin *s, int64_t seconds)
{
    return standin_now_of(standin_control(s, "POST", "/__standin/clock",
                                          json_pack("{s:I}", "advance_s", (json_int_t)seconds)));
}

int64_t standin_clock_set(const standin *s, int64_t unix_now)
{
    return standin_now_of(standin_control(s, "POST", "/__standin/clock",
                                          json_pack("{s:I}", "now", (json_int_t)unix_now)));
}

void standin_fail_status(const standin *s, int status, int64_t count)
{
    json_decref(
        standin_control(s, "POST", "/__standin/fail",
                        json_pack("{s:i,s:I}", "status", status, "count", (json_int_t)count)));
}

void standin_fail_mode(const standin *s, const char *mode, int64_t count)
{
    json_decref(standin_control(s, "POST", "/__standin/fail",
                                json_pack("{s:s,s:I}", "mode", mode, "count", (json_int_t)count)));
}

void standin_auth_valid(const standin *s, bool valid)
{
    json_decref(standin_control(s, "POST", "/__standin/auth", json_pack("{s:b}", "valid", valid)));
}

void standin_search_lag(const standin *s, int64_t seconds)
{
    json_decref(standin_control(s, "POST", "/__standin/search_lag",
                                json_pack("{s:I}", "s", (json_int_t)seconds)));
}

json_t *standin_events_after(const standin *s, int64_t seq)
{
    char path[96];
    snprintf(path, sizeof path, "/__standin/events?after=%lld", (long long)seq);
    return standin_data(s, path);
}

json_t *standin_payment_intents(const standin *s)
{
    return standin_data(s, "/__standin/payment_intents");
}

json_t *standin_refunds(const standin *s)
{
    return standin_data(s, "/__standin/refunds");
}

json_t *standin_disputes(const standin *s)
{
    return standin_data(s, "/__standin/disputes");
}

json_t *standin_charges(const standin *s)
{
    return standin_data(s, "/__standin/charges");
}

void standin_refund_default(const standin *s, const char *status)
{
    json_decref(standin_control(s, "POST", "/__standin/refund_default",
                                json_pack("{s:s}", "status", status)));
}

json_t *standin_refund_update(const standin *s, const char *refund, const char *status)
{
    return standin_control(s, "POST", "/__standin/refund_update",
                           json_pack("{s:s,s:s}", "refund", refund, "status", status));
}

json_t *standin_dispute_open(const standin *s, const char *pi_or_ch, int64_t amount,
                             const char *reason)
{
    json_t *body = json_object();
    json_object_set_new(body, strncmp(pi_or_ch, "ch_", 3) == 0 ? "charge" : "payment_intent",
                        json_string(pi_or_ch));
    if (amount > 0)
        json_object_set_new(body, "amount", json_integer(amount));
    if (reason != NULL)
        json_object_set_new(body, "reason", json_string(reason));
    return standin_control(s, "POST", "/__standin/dispute", body);
}

json_t *standin_dispute_close(const standin *s, const char *dispute, const char *status)
{
    return standin_control(s, "POST", "/__standin/dispute_close",
                           json_pack("{s:s,s:s}", "dispute", dispute, "status", status));
}
