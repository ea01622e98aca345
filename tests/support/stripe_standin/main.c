/* main.c: `stripe-standin`, a loopback HTTP stand-in for the part of Stripe's
 * API ledgerline uses, so tests and benchmarks never talk to Stripe.
 *
 *   stripe-standin [--listen 127.0.0.1:0] [--addr-file PATH] [--latency-ms N]
 *                  [--fixtures DIR] [--api-key KEY] [--search-lag-s N]
 *
 * Prints its base URL as the first line of stdout (and into --addr-file,
 * written whole via rename so a reader never sees half a line), serves until
 * SIGTERM/SIGINT, exits 0. Exit 2 on bad arguments or fixtures, 1 when it
 * cannot listen. See README.md for the endpoints. */
#include "stripe_standin.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <microhttpd.h>

#ifndef LL_STANDIN_FIXTURES_DIR
#define LL_STANDIN_FIXTURES_DIR "../shared/fixtures/stripe"
#endif

/* One JSON line on stderr (this program links no ledgerline code). */
static void ss_log(const char *level, const char *msg, const char *key, const char *val)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:s?}", "level", level, "program", "stripe-standin", "msg",
                          msg, key != NULL ? key : "detail", val);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s != NULL)
        fprintf(stderr, "%s\n", s);
    free(s);
    json_decref(j);
}

static void ss_usage_die(const char *why)
{
    fprintf(stderr,
            "stripe-standin: %s\n"
            "usage: stripe-standin [--listen 127.0.0.1:0] [--addr-file PATH] "
            "[--latency-ms N] [--fixtures DIR] [--api-key KEY] [--search-lag-s N]\n",
            why);
    exit(2);
}

static int ss_parse_listen(const char *s, struct sockaddr_in *out)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof host || colon[1] == '\0')
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
        return -1;
    return 0;
}

static int ss_write_addr_file(const char *path, const char *url)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    int ok = fprintf(f, "%s\n", url) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:0", *addr_file = NULL, *api_key = NULL;
    const char *fixtures = getenv("LL_STRIPE_FIXTURES");
    if (fixtures == NULL || *fixtures == '\0')
        fixtures = LL_STANDIN_FIXTURES_DIR;
    long latency = 0, search_lag = 0;
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"addr-file", required_argument, NULL, 'a'},
                                         {"latency-ms", required_argument, NULL, 'm'},
                                         {"fixtures", required_argument, NULL, 'f'},
                                         {"api-key", required_argument, NULL, 'k'},
                                         {"search-lag-s", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (o) {
        case 'l': listen_at = optarg; break;
        case 'a': addr_file = optarg; break;
        case 'f': fixtures = optarg; break;
        case 'k': api_key = optarg; break;
        case 'm':
            latency = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || latency < 0 || latency > 600000)
                ss_usage_die("--latency-ms must be an integer from 0 to 600000");
            break;
        case 's':
            search_lag = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || search_lag < 0 || search_lag > 86400 * 30)
                ss_usage_die("--search-lag-s must be an integer from 0 to 2592000");
            break;
        case 'h': ss_usage_die("help"); break;
        default: ss_usage_die("unknown option");
        }
    }
    if (optind != argc)
        ss_usage_die("unexpected argument");
    if (api_key != NULL && *api_key == '\0')
        ss_usage_die("--api-key must not be empty");
    struct sockaddr_in addr;
    if (ss_parse_listen(listen_at, &addr) != 0)
        ss_usage_die("--listen must be IPv4-ADDRESS:PORT, e.g. 127.0.0.1:0");

    /* Many connections each hold a descriptor: take the hard limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Block the stop signals before any thread exists so every MHD thread
     * inherits the mask and main alone receives them in sigwait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    static ss_state st;
    char err[512];
    if (ss_state_init(&st, fixtures, api_key, (int)latency, search_lag, err, sizeof err) != 0) {
        ss_log("error", "cannot load fixtures (set --fixtures or LL_STRIPE_FIXTURES)", "error",
               err);
        return 2;
    }
    struct MHD_Daemon *d = ss_http_start(&st, &addr, err, sizeof err);
    if (d == NULL) {
        ss_log("error", err, "listen", listen_at);
        ss_state_free(&st);
        return 1;
    }
    char host[INET_ADDRSTRLEN], url[96];
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
    snprintf(url, sizeof url, "http://%s:%d", host, ss_http_port(d));
    printf("%s\n", url);
    fflush(stdout);
    if (addr_file != NULL && ss_write_addr_file(addr_file, url) != 0) {
        ss_log("error", "cannot write --addr-file", "path", addr_file);
        MHD_stop_daemon(d);
        ss_state_free(&st);
        return 1;
    }
    ss_log("info", "listening", "url", url);

    int sig = 0;
    sigwait(&stop, &sig);
    ss_log("info", "stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
    MHD_stop_daemon(d);
    ss_state_free(&st);
    return 0;
}
