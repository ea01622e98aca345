/* bench_notifier.c: `bench-notifier`, the notifier benchmark's helper
 * (tests/bench/notifier/run.sh; docs/BENCHMARKS.md "Notifier"). Owns the
 * two floors measured beside the notifier and the SMTP server it mails to;
 * prints key=value figures, asserts nothing about time.
 *
 *   bench-notifier sink ADDR_FILE
 *       the test SMTP server (tests/support/smtp_sink.c) on 127.0.0.1, any
 *       free port written to ADDR_FILE as HOST:PORT, counting messages
 *       without keeping them (smtp_sink_discard); on SIGTERM or SIGINT it
 *       prints "sink messages=N bytes=B" and exits.
 *   bench-notifier render FACTS_FILE
 *       floor (a): document_render in a loop, in process, no database, no
 *       SMTP. FACTS_FILE has one "SHA256<TAB>JSON" line per document (the
 *       stored document's hash and billing.document_facts of its invoice),
 *       all parsed before the clock starts; one untimed warm-up rendering
 *       (fontconfig and pango load their caches once per process, as in the
 *       notifier). Prints documents, wall ms, CPU ms, peak RSS and how many
 *       renderings have the stored document's sha256.
 *   bench-notifier smtp COUNT PDF_FILE
 *       floor (b): COUNT messages through smtp_send (common/smtp.c, libcurl,
 *       one connection per message as the notifier does) to SMTP_URL from
 *       SMTP_FROM, each a text body and PDF_FILE attached, the notifier's
 *       message shape. Prints messages sent, wall ms, CPU ms and the size of
 *       one message.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ledgerline/document.h"
#include "ledgerline/smtp.h"
#include "smtp_sink.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* VmHWM of this process in KiB, -1 when /proc does not say. */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* ---- sink ------------------------------------------------------------------------ */

static volatile sig_atomic_t sink_stop;

static void on_signal(int sig)
{
    (void)sig;
    sink_stop = 1;
}

static int run_sink(const char *addr_file)
{
    smtp_sink *s = smtp_sink_start("127.0.0.1", 0, NULL);
    if (s == NULL) {
        fprintf(stderr, "bench-notifier: cannot listen on 127.0.0.1\n");
        return 1;
    }
    smtp_sink_discard(s, true);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", addr_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "127.0.0.1:%d\n", smtp_sink_port(s)) < 0 || fclose(f) != 0 ||
        rename(tmp, addr_file) != 0) {
        fprintf(stderr, "bench-notifier: could not write %s: %s\n", addr_file, strerror(errno));
        smtp_sink_stop(s);
        return 1;
    }
    while (!sink_stop)
        pause();
    size_t n = smtp_sink_count(s), bytes = smtp_sink_bytes(s);
    smtp_sink_stop(s);
    printf("sink messages=%zu bytes=%zu\n", n, bytes);
    return 0;
}

/* ---- floor (a): rendering ------------------------------------------------------------ */

typedef struct {
    char sha256[DOCUMENT_SHA256_HEX];
    document_facts facts;
} facts_row;

/* Reads FACTS_FILE into *rows; the count, or -1. */
static long read_facts(const char *path, facts_row **rows)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "bench-notifier: could not open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1024, n = 0, linecap = 0;
    facts_row *r = malloc(cap * sizeof *r);
    char *line = NULL, err[512];
    ssize_t len;
    long rc = 0;
    while (r != NULL && (len = getline(&line, &linecap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        char *tab = strchr(line, '\t');
        if (tab == NULL || tab - line != DOCUMENT_SHA256_HEX - 1) {
            fprintf(stderr, "bench-notifier: %s line %zu is not SHA256<TAB>JSON\n", path, n + 1);
            rc = -1;
            break;
        }
        if (n == cap) {
            facts_row *nr = realloc(r, 2 * cap * sizeof *r);
            if (nr == NULL)
                break;
            r = nr;
            cap *= 2;
        }
        memcpy(r[n].sha256, line, DOCUMENT_SHA256_HEX - 1);
        r[n].sha256[DOCUMENT_SHA256_HEX - 1] = '\0';
        if (document_facts_from_json(tab + 1, &r[n].facts, err, sizeof err) != 0) {
            fprintf(stderr, "bench-notifier: %s line %zu: %s\n", path, n + 1, err);
            rc = -1;
            break;
        }
        n++;
    }
    free(line);
    fclose(f);
    if (r == NULL) {
        fprintf(stderr, "bench-notifier: out of memory\n");
        return -1;
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            document_facts_free(&r[i].facts);
        free(r);
        return -1;
    }
    *rows = r;
    return (long)n;
}

static int render_one(const facts_row *row, size_t *bytes, int *same)
{
    unsigned char *pdf;
    size_t len;
    char err[512], hex[DOCUMENT_SHA256_HEX];
    if (document_render(&row->facts, &pdf, &len, err, sizeof err) != 0) {
        fprintf(stderr, "bench-notifier: %s\n", err);
        return -1;
    }
    document_sha256_hex(pdf, len, hex);
    *same += strcmp(hex, row->sha256) == 0;
    *bytes += len;
    free(pdf);
    return 0;
}

static int run_render(const char *path)
{
    facts_row *rows;
    long n = read_facts(path, &rows);
    if (n <= 0) {
        if (n == 0)
            fprintf(stderr, "bench-notifier: %s holds no document\n", path);
        return 1;
    }
    size_t bytes = 0;
    int same = 0, rc = 0;
    double w0 = now_ms();
    rc = render_one(&rows[0], &bytes, &same); /* warm-up: font caches */
    double warm_ms = now_ms() - w0;
    bytes = 0;
    same = 0;
    double t0 = now_ms(), c0 = cpu_ms();
    for (long i = 0; i < n && rc == 0; i++)
        rc = render_one(&rows[i], &bytes, &same);
    double wall = now_ms() - t0, cpu = cpu_ms() - c0;
    if (rc == 0)
        printf("render docs=%ld wall_ms=%.0f cpu_ms=%.0f warmup_ms=%.0f bytes=%zu same_sha256=%d "
               "hwm_kib=%ld\n",
               n, wall, cpu, warm_ms, bytes, same, peak_rss_kib());
    for (long i = 0; i < n; i++)
        document_facts_free(&rows[i].facts);
    free(rows);
    document_release_fonts();
    return rc == 0 ? 0 : 1;
}

/* ---- floor (b): SMTP ------------------------------------------------------------------- */

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, n = 0;
    unsigned char *b = malloc(cap);
    size_t r;
    while (b != NULL && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            unsigned char *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

/* A body of the notifier's shape and length (notify.c body_of for an issued
 * invoice with payment instructions). */
static const char bench_body[] =
    "Dear Client 1 Associates,\n\n"
    "Please find attached invoice NB1-2026-000001 of 2026-11-24, for 1,234.56 USD.\n"
    "Balance due: 1,234.56 USD by 2026-12-24.\n\n"
    "Payment instructions:\nBank transfer to IBAN CH93 0076 2011 6238 5295 01\n"
    "Reference: the invoice number\n\n"
    "Bench Firm 1 S\xc3\xa0rl\n1 Rue du March\xc3\xa9\n1204 Gen\xc3\xa8ve, Switzerland\n";

static int run_smtp(long count, const char *pdf_path)
{
    char err[1024];
    smtp_config cfg;
    if (smtp_config_from_env(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "bench-notifier: %s\n", err);
        return 1;
    }
    size_t pdf_len;
    unsigned char *pdf = read_file(pdf_path, &pdf_len);
    if (pdf == NULL || pdf_len == 0) {
        fprintf(stderr, "bench-notifier: could not read %s\n", pdf_path);
        free(pdf);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    smtp_message m = {.to = "billing+1@client1.example.com",
                      .subject = "Invoice NB1-2026-000001 from Bench Firm 1 S\xc3\xa0rl",
                      .body = bench_body,
                      .pdf = pdf,
                      .pdf_len = pdf_len,
                      .pdf_name = "NB1-2026-000001.pdf"};
    char mid[64];
    snprintf(mid, sizeof mid, "<bench.0@ledgerline>");
    m.message_id = mid;
    size_t msg_len = 0;
    char *built = smtp_build(&cfg, &m, &msg_len, err, sizeof err);
    free(built);
    long sent = 0, failed = 0;
    double t0 = now_ms(), c0 = cpu_ms();
    for (long i = 0; i < count; i++) {
        snprintf(mid, sizeof mid, "<bench.%ld@ledgerline>", i + 1);
        if (smtp_send(&cfg, &m, err, sizeof err) == SMTP_SENT)
            sent++;
        else if (failed++ == 0)
            fprintf(stderr, "bench-notifier: %s\n", err);
    }
    double wall = now_ms() - t0, cpu = cpu_ms() - c0;
    printf("smtp sent=%ld failed=%ld wall_ms=%.0f cpu_ms=%.0f message_bytes=%zu hwm_kib=%ld\n",
           sent, failed, wall, cpu, msg_len, peak_rss_kib());
    free(pdf);
    curl_global_cleanup();
    return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "sink") == 0)
        return run_sink(argv[2]);
    if (argc == 3 && strcmp(argv[1], "render") == 0)
        return run_render(argv[2]);
    if (argc == 4 && strcmp(argv[1], "smtp") == 0) {
        char *end;
        long count = strtol(argv[2], &end, 10);
        if (*end == '\0' && count > 0 && count <= 10000000)
            return run_smtp(count, argv[3]);
    }
    fprintf(stderr,
            "usage: bench-notifier sink ADDR_FILE | render FACTS_FILE | smtp COUNT PDF_FILE\n");
    return 2;
}
