/* cmd_documents.c: `billingctl invoice pdf`, `credit-note pdf` and
 * `notifications list` (CONTRACT "Documents and delivery";
 * docs/NOTIFICATIONS.md). Parses and prints only: documents are
 * common/document.c's (the stored bytes, rendered and stored first when the
 * notifier has not yet), notifications billing.notifications' rows. Exit 0
 * done, 1 refused (no such invoice or note, a draft), 2 usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "cli.h"
#include "ledgerline/document.h"

static const char *const INVOICE_PDF_USAGE = "invoice pdf INVOICE_ID -o FILE";
static const char *const CREDIT_NOTE_PDF_USAGE = "credit-note pdf CREDIT_NOTE_ID -o FILE";
static const char *const LIST_USAGE =
    "notifications list [--invoice N] [--client N] [--status queued|sent|failed]";

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

static int print_pdf(const char *what, int64_t invoice_id, int64_t credit_note_id,
                     const char *out, const cli_opts *o, db_conn *c)
{
    unsigned char *pdf;
    size_t len;
    char err[1024];
    db_status st = document_obtain(c, invoice_id, credit_note_id, &pdf, &len, err, sizeof err);
    if (st != DB_OK)
        return args_refused(what, err);
    int rc = write_file(out, pdf, len);
    if (rc == CLI_OK && strcmp(out, "-") != 0) {
        char sha[DOCUMENT_SHA256_HEX];
        document_sha256_hex(pdf, len, sha);
        if (o->json) {
            json_t *j = json_pack("{s:s, s:I, s:s}", "file", out, "bytes", (json_int_t)len,
                                  "sha256", sha);
            char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
            printf("%s\n", t ? t : "{}");
            free(t);
            json_decref(j);
        } else
            printf("wrote %s (%zu bytes, sha256 %s)\n", out, len, sha);
    }
    free(pdf);
    return rc;
}

int cmd_invoice_pdf(int argc, char **argv, const cli_opts *o)
{
    int64_t id;
    const char *out;
    int rc = parse_id_out(argc, argv, INVOICE_PDF_USAGE, &id, &out);
    if (rc != CLI_OK)
        return rc;
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_USAGE;
    rc = print_pdf("invoice pdf", id, 0, out, o, c);
    db_close(c);
    document_release_fonts();
    return rc;
}

int cmd_credit_note_pdf(int argc, char **argv, const cli_opts *o)
{
    int64_t id;
    const char *out;
    int rc = parse_id_out(argc, argv, CREDIT_NOTE_PDF_USAGE, &id, &out);
    if (rc != CLI_OK)
        return rc;
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_USAGE;
    char idb[24], err[1024];
    const char *p[] = {db_i64(id, idb, sizeof idb)};
    db_status st;
    PGresult *r = db_exec(c, "SELECT invoice_id FROM billing.credit_notes WHERE id = $1::bigint",
                          1, p, &st, err, sizeof err);
    if (r == NULL) {
        db_close(c);
        return args_refused("credit-note pdf", err);
    }
    int64_t inv = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    if (inv == 0) {
        snprintf(err, sizeof err, "cannot render credit note %lld: it does not exist", (long long)id);
        db_close(c);
        return args_refused("credit-note pdf", err);
    }
    rc = print_pdf("credit-note pdf", inv, id, out, o, c);
    db_close(c);
    document_release_fonts();
    return rc;
}

/* ---- notifications list ------------------------------------------------------- */

static const char *const LIST_SQL =
    "SELECT coalesce(json_agg(json_build_object('id', n.id, 'kind', n.kind,"
    "  'firm_id', n.firm_id, 'client_id', n.client_id, 'invoice_id', n.invoice_id,"
    "  'credit_note_id', n.credit_note_id, 'step', n.step, 'to_address', n.to_address,"
    "  'status', n.status, 'attempts', n.attempts, 'message_id', n.message_id,"
    "  'sent_at', to_char(n.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    "  'error', n.error) ORDER BY n.id), '[]')::text"
    " FROM (SELECT * FROM billing.notifications"
    "        WHERE ($1::bigint IS NULL OR invoice_id = $1::bigint)"
    "          AND ($2::bigint IS NULL OR client_id = $2::bigint)"
    "          AND ($3::text IS NULL OR status = $3::text)"
    "        ORDER BY id LIMIT 10000) n";

static void print_row(const json_t *n)
{
    const char *s;
    printf("%-6lld %-16s inv %-7lld", args_jint(n, "id"),
           json_string_value(json_object_get(n, "kind")), args_jint(n, "invoice_id"));
    if (args_jint(n, "credit_note_id") > 0)
        printf(" cn %lld", args_jint(n, "credit_note_id"));
    if (strcmp(json_string_value(json_object_get(n, "kind")), "reminder") == 0)
        printf(" step %lld", args_jint(n, "step"));
    s = json_string_value(json_object_get(n, "to_address"));
    printf(" %-30s %-6s attempts %lld", s ? s : "-", json_string_value(json_object_get(n, "status")),
           args_jint(n, "attempts"));
    s = json_string_value(json_object_get(n, "sent_at"));
    if (s)
        printf(" sent %s", s);
    s = json_string_value(json_object_get(n, "error"));
    if (s)
        printf(" error: %s", s);
    printf("\n");
}

int cmd_notifications_list(int argc, char **argv, const cli_opts *o)
{
    const char *inv = NULL, *client = NULL, *status = NULL;
    for (int i = 1; i < argc; i++) {
        int g = args_opt(argc, argv, &i, "--invoice", &inv);
        if (g == 0)
            g = args_opt(argc, argv, &i, "--client", &client);
        if (g == 0)
            g = args_opt(argc, argv, &i, "--status", &status);
        if (g < 0)
            return args_usage(LIST_USAGE, "%s needs a value", argv[i]);
        if (g == 0)
            return args_usage(LIST_USAGE, "unexpected argument '%s'", argv[i]);
    }
    int64_t v;
    if ((inv && !args_parse_id(inv, &v)) || (client && !args_parse_id(client, &v)))
        return args_usage(LIST_USAGE, "--invoice and --client take a positive integer");
    if (status && strcmp(status, "queued") != 0 && strcmp(status, "sent") != 0 &&
        strcmp(status, "failed") != 0)
        return args_usage(LIST_USAGE, "--status is queued, sent or failed");
    db_conn *c = args_connect();
    if (c == NULL)
        return CLI_USAGE;
    const char *p[] = {inv, client, status};
    char err[1024];
    db_status st;
    PGresult *r = db_exec(c, LIST_SQL, 3, p, &st, err, sizeof err);
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
