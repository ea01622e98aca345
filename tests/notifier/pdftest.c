/* pdftest.c: poppler-utils as processes for the notifier's tests (see
 * pdftest.h). Arguments go to execvp, never through a shell. */
#include "pdftest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *pdftest_write(const unsigned char *pdf, size_t len)
{
    char tmpl[] = "/tmp/ll-pdftest-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return NULL;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, pdf + off, len - off);
        if (w <= 0) {
            close(fd);
            unlink(tmpl);
            return NULL;
        }
        off += (size_t)w;
    }
    close(fd);
    return strdup(tmpl);
}

/* Runs argv with stdout captured; malloc'd output, NULL unless it exits 0. */
static char *run_capture(char *const argv[])
{
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0)
        return NULL;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = read(fds[0], buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fds[0]);
    buf[len] = '\0';
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *pdftest_text(const char *path, int first, int last)
{
    char f[16], l[16];
    snprintf(f, sizeof f, "%d", first);
    snprintf(l, sizeof l, "%d", last);
    if (first > 0) {
        char *const argv[] = {"pdftotext", "-layout", "-f", f, "-l", l, (char *)path, "-", NULL};
        return run_capture(argv);
    }
    char *const argv[] = {"pdftotext", "-layout", (char *)path, "-", NULL};
    return run_capture(argv);
}

int pdftest_pages(const char *path)
{
    char *const argv[] = {"pdfinfo", (char *)path, NULL};
    char *out = run_capture(argv);
    if (out == NULL)
        return -1;
    int pages = -1;
    const char *p = strstr(out, "\nPages:");
    if (p != NULL)
        pages = atoi(p + 7);
    free(out);
    return pages;
}

void pdftest_remove(char *path)
{
    if (path != NULL)
        unlink(path);
    free(path);
}
