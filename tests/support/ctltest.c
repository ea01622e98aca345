/* ctltest.c: billingctl as a child process of a test (see ctltest.h). */
#include "ctltest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static void ctltest_slurp(int fd, char *buf, size_t n)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t got = read(fd, buf, n - 1);
    buf[got > 0 ? got : 0] = '\0';
    close(fd);
}

int ctltest_argv(char *out, size_t outsz, char *err, size_t errsz, const char *const *env,
                 const char *const *argv)
{
    const char *args[128];
    int n = 0;
    args[n++] = LL_BILLINGCTL_BIN;
    for (int i = 0; argv[i] != NULL && n < 127; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    char o[] = "/tmp/ctl-out-XXXXXX", e[] = "/tmp/ctl-err-XXXXXX";
    int ofd = mkstemp(o), efd = mkstemp(e);
    assert_true(ofd >= 0 && efd >= 0);
    unlink(o);
    unlink(e);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        setenv("LOG_LEVEL", "warn", 1);
        for (int i = 0; env != NULL && env[i] != NULL; i++)
            putenv((char *)env[i]);
        execv(LL_BILLINGCTL_BIN, (char *const *)args);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    ctltest_slurp(ofd, out, outsz);
    ctltest_slurp(efd, err, errsz);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

int ctltest(char *out, size_t outsz, char *err, size_t errsz, const char *database_url,
            const char *arg0, ...)
{
    const char *argv[64];
    int n = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a != NULL && n < 63; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char url[4096];
    const char *env[] = {url, NULL};
    if (database_url != NULL)
        snprintf(url, sizeof url, "DATABASE_URL=%s", database_url);
    return ctltest_argv(out, outsz, err, errsz, database_url != NULL ? env : NULL, argv);
}
