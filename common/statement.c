/* statement.c: client statements (see statement.h): the facts from
 * billing.statement_facts (sql/020), the statement e-mail's text, and
 * storing and mailing one once through notify_deliver_statement. The
 * layout is document.c's (document_render_statement), and so is storage
 * (document_store_statement, document_fetch_statement). */
#include "ledgerline/statement.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ledgerline/document.h"
#include "ledgerline/failf.h"
#include "ledgerline/money.h"

int statement_step(civil_date d)
{
    civil_ymd y = date_to_ymd(d);
    return y.year * 10000 + y.month * 100 + y.day;
}

civil_date statement_default_from(civil_date d)
{
    civil_ymd y = date_to_ymd(d);
    civil_date out = d;
    date_from_ymd(y.year, y.month, 1, &out);
    return out;
}

/* ---- facts ------------------------------------------------------------------- */

static char *text_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return strdup(s ? s : "");
}

static void copy_date(json_t *o, const char *key, char out[11])
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(out, 11, "%s", s ? s : "");
}

static int64_t i64_of(json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

void statement_facts_free(statement_facts *f)
{
    if (f == NULL)
        return;
    char **texts[] = {&f->firm_name,   &f->firm_address, &f->firm_tax_id, &f->payment_instructions,
                      &f->client_name, &f->client_email};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        free(*texts[i]);
        *texts[i] = NULL;
    }
    for (size_t i = 0; i < f->nsections; i++) {
        statement_section *s = &f->sections[i];
        for (size_t k = 0; k < s->nmovements; k++)
            free(s->movements[k].description);
        for (size_t k = 0; k < s->nopen; k++)
            free(s->open[k].legal_number);
        free(s->movements);
        free(s->open);
    }
    free(f->sections);
    f->sections = NULL;
    f->nsections = 0;
}

static int section_from_json(json_t *o, statement_section *s)
{
    const char *cur = json_string_value(json_object_get(o, "currency"));
    if (cur == NULL || !money_currency_valid(cur))
        return -1;
    snprintf(s->currency, sizeof s->currency, "%s", cur);
    s->opening_cents = i64_of(o, "opening_cents");
    s->closing_cents = i64_of(o, "closing_cents");
    s->credit_opening_cents = i64_of(o, "credit_opening_cents");
    s->credit_closing_cents = i64_of(o, "credit_closing_cents");
    json_t *mv = json_object_get(o, "movements"), *op = json_object_get(o, "open_invoices");
    if (!json_is_array(mv) || !json_is_array(op))
        return -1;
    s->movements = calloc(json_array_size(mv) + 1, sizeof *s->movements);
    s->open = calloc(json_array_size(op) + 1, sizeof *s->open);
    if (s->movements == NULL || s->open == NULL)
        return -1;
    size_t i;
    json_t *m;
    json_array_foreach(mv, i, m)
    {
        statement_movement *x = &s->movements[i];
        copy_date(m, "date", x->date);
        const char *bal = json_string_value(json_object_get(m, "balance"));
        x->credit = bal != NULL && strcmp(bal, "credit") == 0;
        x->description = text_of(m, "description");
        x->amount_cents = i64_of(m, "amount_cents");
        s->nmovements = i + 1;
    }
    json_array_foreach(op, i, m)
    {
        statement_open_invoice *x = &s->open[i];
        x->legal_number = text_of(m, "legal_number");
        copy_date(m, "issue_date", x->issue_date);
        copy_date(m, "due_date", x->due_date);
        x->total_cents = i64_of(m, "total_cents");
        x->paid_cents = i64_of(m, "paid_cents");
        x->credited_cents = i64_of(m, "credited_cents");
        x->balance_due_cents = i64_of(m, "balance_due_cents");
        x->days_overdue = (int)i64_of(m, "days_overdue");
        s->nopen = i + 1;
    }
    return 0;
}

int statement_facts_from_json(const char *json, statement_facts *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    json_error_t je;
    json_t *o = json_loads(json, 0, &je);
    json_t *secs = json_object_get(o, "sections");
    if (!json_is_object(o) || !json_is_array(secs)) {
        ll_failf(err, errlen, "cannot read statement facts: %s",
                 o == NULL ? je.text : "\"sections\" is not an array");
        json_decref(o);
        return -1;
    }
    f->firm_id = i64_of(o, "firm_id");
    f->client_id = i64_of(o, "client_id");
    f->firm_name = text_of(o, "firm_name");
    f->firm_address = text_of(o, "firm_address");
    f->firm_tax_id = text_of(o, "firm_tax_id");
    f->payment_instructions = text_of(o, "payment_instructions");
    f->client_name = text_of(o, "client_name");
    f->client_email = text_of(o, "client_email");
    copy_date(o, "date_from", f->date_from);
    copy_date(o, "date_to", f->date_to);
    int rc = 0;
    f->sections = calloc(json_array_size(secs) + 1, sizeof *f->sections);
    if (f->sections == NULL)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < json_array_size(secs); i++) {
        f->nsections = i + 1;
        rc = section_from_json(json_array_get(secs, i), &f->sections[i]);
    }
    json_decref(o);
    if (rc != 0) {
        ll_failf(err, errlen, "cannot read statement facts: a section is malformed");
        statement_facts_free(f);
    }
    return rc;
}

db_status statement_facts_load(db_conn *c, int64_t client_id, civil_date from, civil_date to,
                               statement_facts *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char fs[11], ts[11], cl[24];
    if (date_format(from, fs, sizeof fs) == NULL || date_format(to, ts, sizeof ts) == NULL ||
        from.days > to.days) {
        ll_failf(err, errlen,
                 "cannot make a statement: the period must start on or before its end");
        return DB_PERMANENT;
    }
    const char *p[] = {db_i64(client_id, cl, sizeof cl), fs, ts};
    db_status st;
    PGresult *r = db_exec(c, "SELECT billing.statement_facts($1::bigint, $2::date, $3::date)::text",
                          3, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        PQclear(r);
        ll_failf(err, errlen, "cannot make a statement of client %lld: no such client",
                 (long long)client_id);
        return DB_PERMANENT;
    }
    int rc = statement_facts_from_json(PQgetvalue(r, 0, 0), out, err, errlen);
    PQclear(r);
    return rc == 0 ? DB_OK : DB_PERMANENT;
}

/* ---- the e-mail ---------------------------------------------------------------- */

/* Subject and body in malloc'd text (open_memstream). */
static int mail_text(const statement_facts *f, char **subject, char **body)
{
    size_t n;
    FILE *m = open_memstream(subject, &n);
    if (m == NULL)
        return -1;
    fprintf(m, "Statement from %s at %s", f->firm_name, f->date_to);
    fclose(m);
    for (char *p = *subject; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    m = open_memstream(body, &n);
    if (m == NULL)
        return -1;
    fprintf(m, "Dear %s,\n\nPlease find attached your statement for %s to %s.\n\n", f->client_name,
            f->date_from, f->date_to);
    for (size_t i = 0; i < f->nsections; i++) {
        const statement_section *s = &f->sections[i];
        char owed[64], credit[64];
        document_amount_text(s->closing_cents, s->currency, owed, sizeof owed);
        document_amount_text(s->credit_closing_cents, s->currency, credit, sizeof credit);
        fprintf(m, "Owed on invoices at %s: %s; %zu open invoice%s.\n", f->date_to, owed, s->nopen,
                s->nopen == 1 ? "" : "s");
        if (s->credit_closing_cents != 0)
            fprintf(m, "Credit in your favour: %s.\n", credit);
    }
    if (f->payment_instructions[0])
        fprintf(m, "\nPayment instructions:\n%s\n", f->payment_instructions);
    fprintf(m, "\n%s\n", f->firm_name);
    if (f->firm_address[0])
        fprintf(m, "%s\n", f->firm_address);
    fclose(m);
    return 0;
}

/* ---- storing and sending once ------------------------------------------------------- */

typedef struct {
    const statement_facts *f;
    const unsigned char *pdf;
    size_t len;
} send_arg;

static db_status store_cb(db_conn *c, void *varg, char *err, size_t errlen)
{
    send_arg *a = varg;
    int64_t id;
    return document_store_statement(c, a->f, a->pdf, a->len, &id, err, errlen);
}

static db_status fetch_cb(db_conn *c, void *varg, unsigned char **pdf, size_t *len, char *err,
                          size_t errlen)
{
    send_arg *a = varg;
    return document_fetch_statement(c, a->f->client_id, a->f->date_to, pdf, len, NULL, NULL, err,
                                    errlen);
}

db_status statement_send(notify_ctx *ctx, const statement_facts *f, const unsigned char *pdf,
                         size_t len, statement_sent *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    civil_date d;
    if (!date_parse(f->date_to, &d)) {
        ll_failf(err, errlen, "cannot send the statement: its date '%s' is invalid", f->date_to);
        return DB_PERMANENT;
    }
    char *subject = NULL, *body = NULL, name[64];
    if (mail_text(f, &subject, &body) != 0) {
        free(subject);
        ll_failf(err, errlen, "could not write the statement e-mail: out of memory");
        return DB_TRANSIENT;
    }
    snprintf(name, sizeof name, "statement-%s.pdf", f->date_to);
    send_arg a = {f, pdf, len};
    notify_statement s = {.firm_id = f->firm_id,
                          .client_id = f->client_id,
                          .step = statement_step(d),
                          .client_email = f->client_email,
                          .subject = subject,
                          .body = body,
                          .pdf_name = name,
                          .store = store_cb,
                          .fetch = fetch_cb,
                          .arg = &a};
    db_status st = notify_deliver_statement(ctx, &s, &out->outcome, err, errlen);
    free(subject);
    free(body);
    if (st != DB_OK && st != DB_TRANSIENT)
        return st;
    char e2[512];
    db_status fs = document_fetch_statement(ctx->db, f->client_id, f->date_to, &out->pdf, &out->len,
                                            &out->document_id, out->stored_from, e2, sizeof e2);
    if (fs == DB_OK)
        out->period_differs = strcmp(out->stored_from, f->date_from) != 0;
    else if (st == DB_OK) {
        /* Sent or failed before this statement was stored (cannot happen:
         * step 1 stores it before the row); say so rather than guess. */
        ll_failf(err, errlen, "%s", e2);
        return fs;
    }
    return st;
}
