/* cmd_documents.c: `billingctl invoice pdf`, `credit-note pdf`,
 * `statement` and `notifications list` (CONTRACT "Documents and delivery";
 * docs/NOTIFICATIONS.md). Parses and prints only: documents are
 * common/document.c's (the stored bytes, rendered and stored first when the
 * notifier has not yet), statements common/statement.c's, notifications
 * billing.notifications' rows. Exit 0 done, 1 refused (no such invoice,
 * note or client, a draft, a statement not sent), 2 usage or
 * configuration. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/config.h"
#include "ledgerline/date.h"
#include "ledgerline/document.h"
#include "ledgerline/failf.h"
#include "ledgerline/notifications_list.h"
#include "ledgerline/notify.h"
#include "ledgerline/smtp.h"
#include "ledgerline/statement.h"

/* ID -o FILE (in any order). */
static int parse_id_out(int argc, char **argv, const char *usage, int64_t *id, const char **out)
{
    const char *idt = NULL;
    *out = NULL;
    for (int i = 1; i < argc; i++) {
        int g = args_opt(argc, argv, &i, "-o", out);
        if (g < 0)
            return args_usage(usage, "-o needs a file name");
        if (g > 0)
            continue;
        if (argv[i][0] != '-' && idt == NULL)
            idt = argv[i];
        else
            return args_usage(usage, "unexpected argument '%s'", argv[i]);
    }
    if (idt == NULL || !args_parse_id(idt, id))
        return args_usage(usage, "an id (a positive integer) is required");
    if (*out == NULL || **out == '\0')
        return args_usage(usage, "-o FILE is required");
    return CLI_OK;
}

static int write_file(const char *path, const unsigned char *data, size_t len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "billingctl: could not open %s: %s\n", path, strerror(errno));
        return CLI_REFUSED;
    }
    size_t w = fwrite(data, 1, len, f);
    int rc = (f == stdout ? fflush(f) : fclose(f)) == 0 && w == len ? CLI_OK : CLI_REFUSED;
    if (rc != CLI_OK)
        fprintf(stderr, "billingctl: could not write %s\n", path);
    return rc;
}

/* "wrote FILE (N bytes, sha256 H)", or its JSON object with extra members. */
static void print_written(const char *out, const unsigned char *pdf, size_t len, const cli_opts *o,
                          json_t *extra)
{
    char sha[DOCUMENT_SHA256_HEX];
    document_sha256_hex(pdf, len, sha);
    if (o->json) {
        json_t *j =
            json_pack("{s:s, s:I, s:s}", "file", out, "bytes", (json_int_t)len, "sha256", sha);
        if (j != NULL && extra != NULL)
            json_object_update(j, extra);
        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
        printf("%s\n", t ? t : "{}");
        free(t);
        json_decref(j);
    } else
        printf("wrote %s (%zu bytes, sha256 %s)\n", out, len, sha);
}

static int print_pdf(const char *what, int64_t invoice_id, int64_t credit_note_id, const char *out,
                     const cli_opts *o, db_conn *c)
{
    unsigned char *pdf;
    size_t len;
    char err[1024];
    db_status st = document_obtain(c, invoice_id, credit_note_id, &pdf, &len, err, sizeof err);
    if (st != DB_OK)
        return args_refused(what, err);
    int rc = write_file(out, pdf, len);
    if (rc == CLI_OK && strcmp(out, "-") != 0)
        print_written(out, pdf, len, o, NULL);
    free(pdf);
    return rc;
}

/* The invoice a credit note belongs to; CLI_REFUSED, said, when there is
 * no such note. */
static int credit_note_of(db_conn *c, int64_t id, int64_t *inv)
{
    char err[1024];
    *inv = 0;
    if (credit_note_invoice(c, id, inv, err, sizeof err) != DB_OK)
        return args_refused("credit-note pdf", err);
    if (*inv == 0) {
        ll_failf(err, sizeof err, "cannot render credit note %lld: it does not exist",
                 (long long)id);
        return args_refused("credit-note pdf", err);
    }
    return CLI_OK;
}

/* `invoice pdf ID -o FILE` and `credit-note pdf ID -o FILE`. */
static int cmd_pdf(int argc, char **argv, const cli_opts *o, const char *usage, bool credit_note)
{
    int64_t id, inv;
    const char *out;
    int rc = parse_id_out(argc, argv, usage, &id, &out);
    if (rc != CLI_OK)
        return rc;
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    inv = id;
    if (credit_note && (rc = credit_note_of(c, id, &inv)) != CLI_OK) {
        db_close(c);
        return rc;
    }
    rc = print_pdf(credit_note ? "credit-note pdf" : "invoice pdf", inv, credit_note ? id : 0, out,
                   o, c);
    db_close(c);
    document_release_fonts();
    return rc;
}

int cmd_invoice_pdf(int argc, char **argv, const cli_opts *o, const char *usage)
{
    return cmd_pdf(argc, argv, o, usage, false);
}

int cmd_credit_note_pdf(int argc, char **argv, const cli_opts *o, const char *usage)
{
    return cmd_pdf(argc, argv, o, usage, true);
}

/* ---- statement ------------------------------------------------------------------ */

typedef struct {
    int64_t client_id;
    civil_date from, to;
    const char *out;
    bool send;
} statement_args;

static int parse_statement(int argc, char **argv, const char *usage, statement_args *a)
{
    const char *client = NULL, *date = NULL, *from = NULL;
    memset(a, 0, sizeof *a);
    const args_option opts[] = {{"--client", &client, NULL},
                                {"--date", &date, NULL},
                                {"--from", &from, NULL},
                                {"-o", &a->out, NULL},
                                {"--send", NULL, &a->send}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    if (client == NULL || !args_parse_id(client, &a->client_id))
        return args_usage(usage, "--client N (a positive integer) is required");
    if (a->out == NULL || a->out[0] == '\0')
        return args_usage(usage, "-o FILE is required");
    a->to = date_today_utc();
    if (date != NULL && !date_parse(date, &a->to))
        return args_usage(usage, "--date '%s' is not a date (YYYY-MM-DD)", date);
    a->from = statement_default_from(a->to);
    if (from != NULL && !date_parse(from, &a->from))
        return args_usage(usage, "--from '%s' is not a date (YYYY-MM-DD)", from);
    if (a->from.days > a->to.days) {
        char f[11], t[11];
        date_format(a->from, f, sizeof f);
        date_format(a->to, t, sizeof t);
        return args_usage(usage, "--from %s is after the statement date %s", f, t);
    }
    return CLI_OK;
}

/* --send: store once, mail once; out is what was stored. */
static int send_statement(db_conn *c, const smtp_config *smtp, const statement_facts *f,
                          const unsigned char *pdf, size_t len, const char *out, const cli_opts *o)
{
    notify_ctx ctx = {.db = c,
                      .smtp = smtp,
                      .max_attempts = (int)config_int("NOTIFIER_MAX_ATTEMPTS", 10, 1, 1000)};
    statement_sent sent;
    char err[1024];
    db_status st = statement_send(&ctx, f, pdf, len, &sent, err, sizeof err);
    if (st == DB_PERMANENT || sent.pdf == NULL) {
        free(sent.pdf);
        return args_refused("statement", err);
    }
    int rc = write_file(out, sent.pdf, sent.len);
    const char *outcome = notify_outcome_name(sent.outcome);
    if (rc == CLI_OK && strcmp(out, "-") != 0) {
        json_t *extra = json_pack("{s:I, s:s, s:s}", "document_id", (json_int_t)sent.document_id,
                                  "period_start", sent.stored_from, "sent", outcome);
        print_written(out, sent.pdf, sent.len, o, extra);
        json_decref(extra);
    }
    if (sent.period_differs)
        fprintf(stderr,
                "billingctl: statement: the statement of client %lld for %s was stored "
                "earlier for the period from %s; that one is written and sent\n",
                (long long)f->client_id, f->date_to, sent.stored_from);
    /* Never into the PDF on stdout (-o -) or the JSON line. */
    FILE *say = o->json || strcmp(out, "-") == 0 ? stderr : stdout;
    switch (sent.outcome) {
    case NOTIFY_SENT:
        fprintf(say, "sent the statement of client %lld for %s to %s\n", (long long)f->client_id,
                f->date_to, f->client_email);
        break;
    case NOTIFY_ALREADY:
        fprintf(say,
                "the statement of client %lld for %s was sent or recorded before: nothing "
                "sent\n",
                (long long)f->client_id, f->date_to);
        break;
    case NOTIFY_FAILED:
        fprintf(stderr,
                "billingctl: statement: not sent (recorded failed; see notifications "
                "list --client %lld)\n",
                (long long)f->client_id);
        rc = CLI_REFUSED;
        break;
    default:
        fprintf(stderr,
                "billingctl: statement: could not send now (%s); the notification stays "
                "queued: run the command again\n",
                err);
        rc = CLI_REFUSED;
        break;
    }
    free(sent.pdf);
    return rc;
}

static int run_statement(db_conn *c, const statement_args *a, const smtp_config *smtp,
                         const cli_opts *o)
{
    statement_facts f;
    char err[1024];
    db_status st = statement_facts_load(c, a->client_id, a->from, a->to, &f, err, sizeof err);
    if (st != DB_OK)
        return args_refused("statement", err);
    unsigned char *pdf;
    size_t len;
    int rc;
    if (document_render_statement(&f, &pdf, &len, err, sizeof err) != 0) {
        rc = args_refused("statement", err);
    } else if (a->send) {
        rc = send_statement(c, smtp, &f, pdf, len, a->out, o);
        free(pdf);
    } else {
        rc = write_file(a->out, pdf, len);
        if (rc == CLI_OK && strcmp(a->out, "-") != 0)
            print_written(a->out, pdf, len, o, NULL);
        free(pdf);
    }
    statement_facts_free(&f);
    return rc;
}

int cmd_statement(int argc, char **argv, const cli_opts *o, const char *usage)
{
    statement_args a;
    int rc = parse_statement(argc, argv, usage, &a);
    if (rc != CLI_OK)
        return rc;
    smtp_config smtp = {0};
    char err[512];
    if (a.send && smtp_config_from_env(&smtp, err, sizeof err) != 0) {
        fprintf(stderr, "billingctl: statement --send: configuration error: %s\n", err);
        return CLI_USAGE;
    }
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    rc = run_statement(c, &a, &smtp, o);
    db_close(c);
    document_release_fonts();
    return rc;
}

/* ---- notifications list ------------------------------------------------------- */

static void print_row(const json_t *n)
{
    const char *s;
    printf("%-6lld %-16s inv %-7lld", args_jint(n, "id"),
           json_string_value(json_object_get(n, "kind")), args_jint(n, "invoice_id"));
    if (args_jint(n, "credit_note_id") > 0)
        printf(" cn %lld", args_jint(n, "credit_note_id"));
    if (strcmp(json_string_value(json_object_get(n, "kind")), "reminder") == 0 ||
        strcmp(json_string_value(json_object_get(n, "kind")), "statement") == 0)
        printf(" step %lld", args_jint(n, "step"));
    s = json_string_value(json_object_get(n, "to_address"));
    printf(" %-30s %-6s attempts %lld", s ? s : "-",
           json_string_value(json_object_get(n, "status")), args_jint(n, "attempts"));
    s = json_string_value(json_object_get(n, "sent_at"));
    if (s)
        printf(" sent %s", s);
    s = json_string_value(json_object_get(n, "error"));
    if (s)
        printf(" error: %s", s);
    printf("\n");
}

int cmd_notifications_list(int argc, char **argv, const cli_opts *o, const char *usage)
{
    const char *inv = NULL, *client = NULL, *status = NULL;
    const args_option opts[] = {
        {"--invoice", &inv, NULL}, {"--client", &client, NULL}, {"--status", &status, NULL}};
    if (args_parse(argc, argv, usage, opts, ARGS_N(opts), NULL) != 0)
        return CLI_USAGE;
    int64_t v;
    if ((inv && !args_parse_id(inv, &v)) || (client && !args_parse_id(client, &v)))
        return args_usage(usage, "--invoice and --client take a positive integer");
    if (status && strcmp(status, "queued") != 0 && strcmp(status, "sent") != 0 &&
        strcmp(status, "failed") != 0)
        return args_usage(usage, "--status is queued, sent or failed");
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_REFUSED;
    char err[1024];
    db_status st;
    PGresult *r = notifications_list(c, inv, client, status, &st, err, sizeof err);
    if (r == NULL) {
        db_close(c);
        return args_refused("notifications list", err);
    }
    if (o->json) {
        printf("%s\n", PQgetvalue(r, 0, 0));
    } else {
        json_t *arr = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        size_t i;
        json_t *n;
        json_array_foreach(arr, i, n) print_row(n);
        if (json_array_size(arr) == 0)
            printf("no notifications\n");
        json_decref(arr);
    }
    PQclear(r);
    db_close(c);
    return CLI_OK;
}
