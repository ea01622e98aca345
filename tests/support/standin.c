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
    char *answer = httptest_request(method, url, body != NULL || strcmp(method, "POST") != 0
                                                     ? body : "", &status);
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
    json_array_foreach(all, i, r) {
        const char *m = json_string_value(json_object_get(r, "method"));
        const char *p = json_string_value(json_object_get(r, "path"));
        if (method != NULL && (m == NULL || strcmp(m, method) != 0))
            continue;
        if (path_prefix != NULL &&
            (p == NULL || strncmp(p, path_prefix, strlen(path_prefix)) != 0))
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
