/* smtp_sink_main.c: `smtp-sink`, the test SMTP server as a process (the
 * local stack's mail server; deploy/local/run-stack.sh): stores every
 * accepted message as DIR/NNNNNN.eml until SIGTERM or SIGINT.
 *
 *   smtp-sink --listen HOST:PORT --dir DIR [--addr-file FILE]
 *             [--user U --password P]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp_sink.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:2525", *dir = NULL, *addr_file = NULL, *user = NULL,
               *pass = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0)
            listen_at = argv[i + 1];
        else if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--addr-file") == 0)
            addr_file = argv[i + 1];
        else if (strcmp(argv[i], "--user") == 0)
            user = argv[i + 1];
        else if (strcmp(argv[i], "--password") == 0)
            pass = argv[i + 1];
        else {
            fprintf(
                stderr,
                "usage: smtp-sink --listen HOST:PORT --dir DIR [--addr-file FILE] [--user U --password P]\n");
            return 2;
        }
    }
    char host[64];
    const char *colon = strrchr(listen_at, ':');
    if (dir == NULL || colon == NULL || (size_t)(colon - listen_at) >= sizeof host) {
        fprintf(stderr, "smtp-sink: --listen HOST:PORT and --dir DIR are required\n");
        return 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen_at), listen_at);
    smtp_sink *s = smtp_sink_start(host, atoi(colon + 1), dir);
    if (s == NULL) {
        fprintf(stderr, "smtp-sink: cannot listen on %s\n", listen_at);
        return 1;
    }
    if (user != NULL && pass != NULL)
        smtp_sink_require_auth(s, user, pass, "PLAIN LOGIN");
    if (addr_file != NULL) {
        FILE *f = fopen(addr_file, "w");
        if (f != NULL) {
            fprintf(f, "%s:%d\n", host, smtp_sink_port(s));
            fclose(f);
        }
    }
    fprintf(stderr, "smtp-sink: listening on %s:%d, messages in %s\n", host, smtp_sink_port(s),
            dir);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop)
        pause();
    smtp_sink_stop(s);
    return 0;
}
