/* notify.c: the notifier's rules (see notify.h): event -> notification
 * kind (the hard-decline rule is payments_is_hard_decline's), the
 * notification's Message-ID and text, and its delivery in three steps
 * (prepare and commit, send, record). Documents are document.c's, SMTP is
 * smtp.c's. */
#include "ledgerline/notify.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ledgerline/document.h"
#include "ledgerline/envelope.h"
#include "ledgerline/failf.h"
#include "ledgerline/log.h"
#include "ledgerline/money.h"
#include "ledgerline/payments.h"
#include "ledgerline/queries.h"

static const char *const kind_names[] = {"invoice_issued", "credit_note",     "receipt",
                                         "payment_failed", "action_required", "reminder",
                                         "statement"};

const char *notify_kind_name(notify_kind k)
{
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "unknown";
}

const char *notify_outcome_name(notify_outcome o)
{
    switch (o) {
    case NOTIFY_SENT: return "sent";
    case NOTIFY_ALREADY: return "already";
    case NOTIFY_FAILED: return "failed";
    default: return "retry";
    }
}

void notify_message_id(const notify_request *rq, char out[NOTIFY_MESSAGE_ID_MAX])
{
    if (rq->kind == NOTIFY_STATEMENT) {
        /* Statements name no invoice: the client stands in its place. */
        snprintf(out, NOTIFY_MESSAGE_ID_MAX, "<statement.%lld.0.%d@ledgerline>",
                 (long long)rq->client_id, rq->step);
        return;
    }
    snprintf(out, NOTIFY_MESSAGE_ID_MAX, "<%s.%lld.%lld.%d@ledgerline>", notify_kind_name(rq->kind),
             (long long)rq->invoice_id, (long long)rq->credit_note_id, rq->step);
}

static bool kind_has_document(notify_kind k)
{
    return k == NOTIFY_INVOICE_ISSUED || k == NOTIFY_CREDIT_NOTE;
}

/* ---- events -------------------------------------------------------------------- */

static int event_extras(const char *json, size_t len, notify_request *rq, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(json, len, 0, &je);
    if (o == NULL) {
        return ll_failf(err, errlen, "cannot read invoice event: %s", je.text);
    }
    int rc = 0;
    if (rq->kind == NOTIFY_CREDIT_NOTE) {
        json_t *cn = json_object_get(o, "credit_note_id");
        if (!json_is_integer(cn) || json_integer_value(cn) <= 0) {
            snprintf(
                err, errlen,
                "cannot read invoice.credited: credit_note_id missing or not a positive integer");
            rc = -1;
        } else {
            rq->credit_note_id = (int64_t)json_integer_value(cn);
        }
    }
    if (rq->kind == NOTIFY_PAYMENT_FAILED) {
        const char *code = json_string_value(json_object_get(o, "failure_code"));
        if (code != NULL && strlen(code) < sizeof rq->failure_code) {
            snprintf(rq->failure_code, sizeof rq->failure_code, "%s", code);
            if (payments_is_hard_decline(code))
                rq->kind = NOTIFY_ACTION_REQUIRED;
        }
    }
    json_decref(o);
    return rc;
}

int notify_from_event(const char *json, size_t len, notify_request *out, bool *wanted, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    *wanted = false;
    invoice_event e;
    if (invoice_event_parse(json, len, &e, err, errlen) != 0)
        return -1;
    switch (e.type) {
    case INVOICE_EVENT_ISSUED: out->kind = NOTIFY_INVOICE_ISSUED; break;
    case INVOICE_EVENT_CREDITED: out->kind = NOTIFY_CREDIT_NOTE; break;
    case INVOICE_EVENT_PAID: out->kind = NOTIFY_RECEIPT; break;
    case INVOICE_EVENT_PAYMENT_FAILED: out->kind = NOTIFY_PAYMENT_FAILED; break;
    default: return 0;
    }
    out->invoice_id = e.invoice_id;
    if (event_extras(json, len, out, err, errlen) != 0)
        return -1;
    *wanted = true;
    return 0;
}

/* ---- the message's text ------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len, cap;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->buf != NULL && (size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 1024;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (nb == NULL)
            return;
        t->buf = nb;
        t->cap = cap;
    }
}

static void money(const document_facts *f, int64_t cents, char *buf, size_t bufsz)
{
    document_amount_text(cents, f->currency, buf, bufsz);
}

static void subject_of(const notify_request *rq, const document_facts *f, char *out, size_t n)
{
    switch (rq->kind) {
    case NOTIFY_INVOICE_ISSUED:
        snprintf(out, n, "Invoice %s from %s", f->legal_number, f->firm_name);
        break;
    case NOTIFY_CREDIT_NOTE:
        snprintf(out, n, "Credit note %s for invoice %s", f->legal_number, f->invoice_legal_number);
        break;
    case NOTIFY_RECEIPT: snprintf(out, n, "Payment received: invoice %s", f->legal_number); break;
    case NOTIFY_PAYMENT_FAILED:
        snprintf(out, n, "Payment failed: invoice %s", f->legal_number);
        break;
    case NOTIFY_ACTION_REQUIRED:
        snprintf(out, n, "Action required: payment for invoice %s", f->legal_number);
        break;
    case NOTIFY_REMINDER:
        if (rq->step < 0)
            snprintf(out, n, "Reminder: invoice %s is due on %s", f->legal_number, f->due_date);
        else
            snprintf(out, n, "Reminder: invoice %s is %d day%s overdue", f->legal_number, rq->step,
                     rq->step == 1 ? "" : "s");
        break;
    default: snprintf(out, n, "Statement from %s", f->firm_name); break;
    }
    /* A subject is one line (names may hold anything). */
    for (char *p = out; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
}

static void body_of(const notify_request *rq, const document_facts *f, text *t)
{
    char total[64], due[64], paid[64];
    money(f, f->total_cents, total, sizeof total);
    money(f, f->balance_due_cents, due, sizeof due);
    money(f, f->amount_paid_cents, paid, sizeof paid);
    add(t, "Dear %s,\n\n", f->client_name);
    switch (rq->kind) {
    case NOTIFY_INVOICE_ISSUED:
        add(t, "Please find attached invoice %s of %s, for %s.\n", f->legal_number, f->issue_date,
            total);
        if (f->due_date[0])
            add(t, "Balance due: %s by %s.\n", due, f->due_date);
        break;
    case NOTIFY_CREDIT_NOTE:
        add(t, "Please find attached credit note %s of %s, for %s, correcting invoice %s.\n",
            f->legal_number, f->issue_date, total, f->invoice_legal_number);
        add(t, "Balance due on invoice %s: %s.\n", f->invoice_legal_number, due);
        break;
    case NOTIFY_RECEIPT:
        add(t, "Thank you: we received %s for invoice %s.\nBalance due: %s.\n", paid,
            f->legal_number, due);
        break;
    case NOTIFY_PAYMENT_FAILED:
        add(t,
            "We could not collect the payment of invoice %s (%s due). We will try again; you "
            "may also pay by bank transfer.\n",
            f->legal_number, due);
        break;
    case NOTIFY_ACTION_REQUIRED:
        add(t,
            "Your bank declined the payment of invoice %s (%s due; reason: %s). We will not "
            "retry this card: please update your payment method or pay by bank transfer.\n",
            f->legal_number, due, rq->failure_code[0] ? rq->failure_code : "declined");
        break;
    case NOTIFY_REMINDER:
        if (rq->step < 0)
            add(t, "Invoice %s of %s is due on %s, in %d day%s. Balance due: %s.\n",
                f->legal_number, f->issue_date, f->due_date, -rq->step, rq->step == -1 ? "" : "s",
                due);
        else
            add(t, "Invoice %s of %s was due on %s and is %d day%s overdue. Balance due: %s.\n",
                f->legal_number, f->issue_date, f->due_date, rq->step, rq->step == 1 ? "" : "s",
                due);
        add(t, "The attached payment reminder repeats these figures.\n");
        break;
    default: break;
    }
    if (f->payment_instructions[0] && rq->kind != NOTIFY_RECEIPT)
        add(t, "\nPayment instructions:\n%s\n", f->payment_instructions);
    add(t, "\n%s\n", f->firm_name);
    if (f->firm_address[0])
        add(t, "%s\n", f->firm_address);
}

/* ---- one delivery, whatever its kind ------------------------------------------------ */

/* What the three steps need to know of one notification: its key, its
 * address, its text and how its document is stored (step 1) and attached
 * (step 2). Invoice kinds fill it from document_facts, statements from a
 * notify_statement. */
typedef struct delivery delivery;
struct delivery {
    notify_kind kind;
    int64_t firm_id, client_id, invoice_id, credit_note_id;
    int step;
    const char *email; /* the client's primary_contact_email, "" when none */
    char message_id[NOTIFY_MESSAGE_ID_MAX];
    const char *subject, *body, *pdf_name;
    /* Step 1, inside its transaction, when the row is new: store the
     * document (NULL: the kind has none). *rendered: stored now. */
    db_status (*store)(db_conn *c, const delivery *d, bool *rendered, char *err, size_t errlen);
    /* Step 2: the attachment's bytes (NULL: none). */
    db_status (*attach)(db_conn *c, const delivery *d, unsigned char **pdf, size_t *len, char *err,
                        size_t errlen);
    const notify_request *rq;          /* invoice kinds */
    const document_facts *f;           /* invoice kinds */
    const notify_statement *statement; /* statements */
};

/* ---- step 1: document and row, committed -------------------------------------------- */

typedef struct {
    const delivery *d;
    /* out */
    int64_t id;
    char status[8];
    int attempts;
    char to[SMTP_ADDRESS_MAX + 1];
    bool rendered;
    bool inserted; /* the row is this call's */
} prepare_arg;

static db_status read_row(db_conn *c, prepare_arg *a, bool *found, char *err, size_t errlen)
{
    const delivery *d = a->d;
    char inv[24], cn[24], client[24], step[16];
    snprintf(step, sizeof step, "%d", d->step);
    bool statement = d->kind == NOTIFY_STATEMENT;
    /* Rule 17.3: statements are keyed by client and step, the other kinds
     * by invoice, credit note and step. */
    const char *p[] = {notify_kind_name(d->kind),
                       statement ? db_i64(d->client_id, client, sizeof client)
                                 : db_i64(d->invoice_id, inv, sizeof inv),
                       d->credit_note_id > 0 ? db_i64(d->credit_note_id, cn, sizeof cn) : NULL,
                       step};
    db_status st;
    PGresult *r =
        db_exec(c, statement ? llq_notify_find_statement : llq_notify_find, 4, p, &st, err, errlen);
    if (r == NULL)
        return st;
    *found = PQntuples(r) == 1;
    if (*found) {
        a->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        snprintf(a->status, sizeof a->status, "%s", PQgetvalue(r, 0, 1));
        a->attempts = atoi(PQgetvalue(r, 0, 2));
        snprintf(a->to, sizeof a->to, "%s", PQgetvalue(r, 0, 3));
    }
    PQclear(r);
    return DB_OK;
}

/* The invoice kinds' store: the invoice's or credit note's document,
 * rendered and stored when none is. */
static db_status store_invoice_document(db_conn *c, const delivery *d, bool *rendered, char *err,
                                        size_t errlen)
{
    unsigned char *pdf = NULL;
    size_t len = 0;
    db_status st = document_fetch(c, d->invoice_id, d->credit_note_id, &pdf, &len, err, errlen);
    free(pdf);
    if (st != DB_PERMANENT)
        return st;
    if (document_render(d->f, &pdf, &len, err, errlen) != 0)
        return DB_PERMANENT;
    int64_t id;
    st = document_store(c, d->f, pdf, len, &id, NULL, err, errlen);
    free(pdf);
    *rendered = st == DB_OK;
    return st;
}

static db_status insert_row(db_conn *c, prepare_arg *a, char *err, size_t errlen)
{
    const delivery *d = a->d;
    bool usable = smtp_address_valid(d->email);
    char why[200] = "";
    if (!usable)
        snprintf(why, sizeof why,
                 d->email[0] ? "client %lld's primary_contact_email is not a usable address"
                             : "client %lld has no primary_contact_email",
                 (long long)d->client_id);
    char firm[24], client[24], inv[24], cn[24], step[16];
    snprintf(step, sizeof step, "%d", d->step);
    const char *p[] = {db_i64(d->firm_id, firm, sizeof firm),
                       db_i64(d->client_id, client, sizeof client),
                       d->invoice_id > 0 ? db_i64(d->invoice_id, inv, sizeof inv) : NULL,
                       d->credit_note_id > 0 ? db_i64(d->credit_note_id, cn, sizeof cn) : NULL,
                       notify_kind_name(d->kind),
                       step,
                       d->email[0] ? d->email : NULL,
                       usable ? "queued" : "failed",
                       d->message_id,
                       usable ? NULL : why};
    return db_command(c, llq_notify_insert, 10, p, err, errlen);
}

static db_status prepare_work(db_conn *c, void *arg, char *err, size_t errlen)
{
    prepare_arg *a = arg;
    bool found = false;
    db_status st = read_row(c, a, &found, err, errlen);
    if (st != DB_OK || found)
        return st;
    if (a->d->store != NULL) {
        st = a->d->store(c, a->d, &a->rendered, err, errlen);
        if (st != DB_OK)
            return st;
    }
    st = insert_row(c, a, err, errlen);
    if (st == DB_OK)
        st = read_row(c, a, &found, err, errlen);
    a->inserted = st == DB_OK && found;
    if (st == DB_OK && !found) {
        ll_failf(err, errlen,
                 "could not record the notification: its row is not there after the insert");
        return DB_TRANSIENT;
    }
    return st;
}

/* ---- steps 2 and 3 -------------------------------------------------------------------- */

static db_status count_attempt(notify_ctx *ctx, int64_t id, int *attempts, char *err, size_t errlen)
{
    char nid[24];
    const char *p[] = {db_i64(id, nid, sizeof nid)};
    db_status st;
    PGresult *r = db_exec(ctx->db, llq_notify_count_attempt, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    *attempts = PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return DB_OK;
}

static db_status record(notify_ctx *ctx, int64_t id, const char *status, const char *error,
                        char *err, size_t errlen)
{
    char nid[24];
    const char *p[] = {db_i64(id, nid, sizeof nid), status, error};
    return db_command(ctx->db, llq_notify_record, 3, p, err, errlen);
}

static void count(notify_ctx *ctx, notify_kind k, const char *outcome)
{
    if (ctx->metrics != NULL)
        metrics_counter_add(ctx->metrics, "billing_notifications_total", 1, "kind",
                            notify_kind_name(k), "outcome", outcome, NULL);
}

int notify_metrics_declare(metrics_registry *m)
{
    if (metrics_declare(m, "billing_notifications_total", METRICS_COUNTER,
                        "Notifications by kind and outcome (sent, failed, retry, already).") != 0)
        return -1;
    return metrics_declare(m, "billing_notification_documents_total", METRICS_COUNTER,
                           "Documents rendered and stored, by kind.");
}

static smtp_result send_one(notify_ctx *ctx, const delivery *d, const char *to, char *err,
                            size_t errlen)
{
    unsigned char *pdf = NULL;
    size_t len = 0;
    if (d->attach != NULL && d->attach(ctx->db, d, &pdf, &len, err, errlen) != DB_OK)
        return SMTP_TRANSIENT;
    smtp_message m = {.to = to,
                      .subject = d->subject,
                      .body = d->body ? d->body : "",
                      .message_id = d->message_id,
                      .pdf = pdf,
                      .pdf_len = len,
                      .pdf_name = d->pdf_name};
    smtp_result r = smtp_send(ctx->smtp, &m, err, errlen);
    free(pdf);
    return r;
}

/* Steps 2 and 3 for a queued row. */
static db_status send_and_record(notify_ctx *ctx, const delivery *d, prepare_arg *a,
                                 notify_outcome *outcome, char *err, size_t errlen)
{
    int attempts = -1;
    db_status st = count_attempt(ctx, a->id, &attempts, err, errlen);
    if (st != DB_OK)
        return st;
    if (attempts < 0) {
        *outcome = NOTIFY_ALREADY;
        return DB_OK;
    }
    char serr[1024] = "";
    smtp_result r = send_one(ctx, d, a->to, serr, sizeof serr);
    const char *status = r == SMTP_SENT ? "sent" : r == SMTP_PERMANENT ? "failed" : "queued";
    char why[1200];
    if (r == SMTP_TRANSIENT && attempts >= ctx->max_attempts) {
        status = "failed";
        snprintf(why, sizeof why, "gave up after %d attempts: %s", attempts, serr);
    } else {
        snprintf(why, sizeof why, "%s", serr);
    }
    st = record(ctx, a->id, status, r == SMTP_SENT ? NULL : why, err, errlen);
    if (st != DB_OK)
        return st;
    char nid[24], att[16];
    snprintf(att, sizeof att, "%d", attempts);
    log_msg(r == SMTP_SENT ? LL_LOG_INFO : LL_LOG_WARN, "notification", "notification_id",
            db_i64(a->id, nid, sizeof nid), "kind", notify_kind_name(d->kind), "status", status,
            "attempts", att, "message_id", d->message_id, "error", r == SMTP_SENT ? "" : serr,
            NULL);
    if (r == SMTP_SENT) {
        *outcome = NOTIFY_SENT;
        return DB_OK;
    }
    if (strcmp(status, "failed") == 0) {
        *outcome = NOTIFY_FAILED;
        return DB_OK;
    }
    *outcome = NOTIFY_RETRY;
    ll_failf(err, errlen, "%s", serr);
    return DB_TRANSIENT;
}

/* The three steps for d; *rendered: a document was stored now. */
static db_status deliver(notify_ctx *ctx, const delivery *d, notify_outcome *outcome,
                         bool *rendered, char *err, size_t errlen)
{
    prepare_arg a = {.d = d};
    db_status st = db_run_tx(ctx->db, prepare_work, &a, err, errlen);
    *rendered = st == DB_OK && a.rendered;
    bool counted = false;
    if (st == DB_OK) {
        if (strcmp(a.status, "queued") != 0) {
            /* Sent or failed before, or failed now for want of an address. */
            *outcome = a.inserted ? NOTIFY_FAILED : NOTIFY_ALREADY;
        } else {
            st = send_and_record(ctx, d, &a, outcome, err, errlen);
            counted = st == DB_TRANSIENT && *outcome == NOTIFY_RETRY;
        }
    }
    if (st == DB_OK || counted)
        count(ctx, d->kind, notify_outcome_name(*outcome));
    return st;
}

static db_status attach_invoice_document(db_conn *c, const delivery *d, unsigned char **pdf,
                                         size_t *len, char *err, size_t errlen)
{
    return document_fetch(c, d->invoice_id, d->credit_note_id, pdf, len, err, errlen);
}

/* A reminder's letter is rendered from (invoice, step), never stored (the
 * contract's document kinds are invoice, credit_note and statement). */
static db_status attach_reminder_letter(db_conn *c, const delivery *d, unsigned char **pdf,
                                        size_t *len, char *err, size_t errlen)
{
    (void)c;
    return document_render_reminder(d->f, d->step, pdf, len, err, errlen) == 0 ? DB_OK
                                                                               : DB_PERMANENT;
}

static void attachment_name(const char *legal_number, const char *suffix, char *out, size_t n)
{
    snprintf(out, n, "%s%s.pdf", legal_number, suffix);
    for (char *p = out; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            *p = '_';
}

db_status notify_deliver(notify_ctx *ctx, const notify_request *rq, notify_outcome *outcome,
                         char *err, size_t errlen)
{
    *outcome = NOTIFY_RETRY;
    if (ctx->max_attempts < 1) {
        ll_failf(err, errlen, "cannot deliver: max_attempts must be at least 1");
        return DB_PERMANENT;
    }
    if (rq->kind == NOTIFY_STATEMENT) {
        ll_failf(err, errlen,
                 "cannot deliver a statement as an invoice notification: a statement is the "
                 "client's, not an invoice's");
        return DB_PERMANENT;
    }
    document_facts f;
    db_status st =
        document_facts_load(ctx->db, rq->invoice_id, rq->credit_note_id, &f, err, errlen);
    if (st != DB_OK)
        return st;
    char subject[600], name[160];
    subject_of(rq, &f, subject, sizeof subject);
    bool reminder = rq->kind == NOTIFY_REMINDER;
    attachment_name(f.legal_number, reminder ? "-reminder" : "", name, sizeof name);
    text body = {0};
    body_of(rq, &f, &body);
    delivery d = {.kind = rq->kind,
                  .firm_id = f.firm_id,
                  .client_id = f.client_id,
                  .invoice_id = rq->invoice_id,
                  .credit_note_id = rq->credit_note_id,
                  .step = rq->step,
                  .email = f.client_email,
                  .subject = subject,
                  .body = body.buf ? body.buf : "",
                  .pdf_name = name,
                  .store = kind_has_document(rq->kind) ? store_invoice_document : NULL,
                  .attach = kind_has_document(rq->kind) ? attach_invoice_document
                            : reminder                  ? attach_reminder_letter
                                                        : NULL,
                  .rq = rq,
                  .f = &f};
    notify_message_id(rq, d.message_id);
    bool rendered = false;
    st = deliver(ctx, &d, outcome, &rendered, err, errlen);
    if (rendered && ctx->metrics != NULL)
        metrics_counter_add(ctx->metrics, "billing_notification_documents_total", 1, "kind",
                            rq->kind == NOTIFY_CREDIT_NOTE ? "credit_note" : "invoice", NULL);
    free(body.buf);
    document_facts_free(&f);
    return st;
}

static db_status store_statement(db_conn *c, const delivery *d, bool *rendered, char *err,
                                 size_t errlen)
{
    db_status st = d->statement->store(c, d->statement->arg, err, errlen);
    *rendered = st == DB_OK;
    return st;
}

static db_status attach_statement(db_conn *c, const delivery *d, unsigned char **pdf, size_t *len,
                                  char *err, size_t errlen)
{
    return d->statement->fetch(c, d->statement->arg, pdf, len, err, errlen);
}

db_status notify_deliver_statement(notify_ctx *ctx, const notify_statement *s,
                                   notify_outcome *outcome, char *err, size_t errlen)
{
    *outcome = NOTIFY_RETRY;
    if (ctx->max_attempts < 1 || s->store == NULL || s->fetch == NULL) {
        ll_failf(err, errlen,
                 "cannot deliver the statement: max_attempts must be at least 1 and the statement "
                 "needs a store and a fetch");
        return DB_PERMANENT;
    }
    delivery d = {.kind = NOTIFY_STATEMENT,
                  .firm_id = s->firm_id,
                  .client_id = s->client_id,
                  .step = s->step,
                  .email = s->client_email ? s->client_email : "",
                  .subject = s->subject,
                  .body = s->body,
                  .pdf_name = s->pdf_name,
                  .store = store_statement,
                  .attach = attach_statement,
                  .statement = s};
    notify_request rq = {.kind = NOTIFY_STATEMENT, .client_id = s->client_id, .step = s->step};
    notify_message_id(&rq, d.message_id);
    bool rendered = false;
    db_status st = deliver(ctx, &d, outcome, &rendered, err, errlen);
    if (rendered && ctx->metrics != NULL)
        metrics_counter_add(ctx->metrics, "billing_notification_documents_total", 1, "kind",
                            "statement", NULL);
    return st;
}
