/* lifecycle.c: the invoice lifecycle's operations (see lifecycle.h): firm
 * settings, issue, adjust, void. Owns their input validation; the rules
 * (legal numbers, immutability of issued invoices, what can be voided) are
 * sql/012 and the operations sql/013's functions, so any writer gets the
 * same answers. */
#include "ledgerline/lifecycle.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/credit.h"
#include "ledgerline/failf.h"
#include "ledgerline/queries.h"
#include "ledgerline/text.h"

/* what: the operation refused, as "cannot <what>: ..." says it. */
static bool who_why_valid(const char *what, const char *reason, const char *by, char *err,
                          size_t errlen)
{
    if (ll_blank(by) || strlen(by) > LIFECYCLE_NAME_MAX) {
        ll_failf(err, errlen, "cannot %s: --by NAME (1 to %d characters) is required", what,
                 LIFECYCLE_NAME_MAX);
        return false;
    }
    if (reason != NULL && strlen(reason) > LIFECYCLE_TEXT_MAX) {
        ll_failf(err, errlen, "cannot %s: --reason is longer than %d characters", what,
                 LIFECYCLE_TEXT_MAX);
        return false;
    }
    return true;
}

bool lifecycle_quantity_valid(const char *q)
{
    if (q == NULL || *q == '\0')
        return false;
    size_t digits = 0, decimals = 0;
    bool dot = false;
    for (const char *p = q; *p; p++) {
        if (*p == '.' && !dot) {
            dot = true;
        } else if (isdigit((unsigned char)*p)) {
            if (dot)
                decimals++;
            else
                digits++;
        } else {
            return false;
        }
    }
    return digits >= 1 && digits <= 8 && decimals <= 2 && !(dot && decimals == 0);
}

bool lifecycle_reminder_days(const char *list, char *out, size_t outsz)
{
    if (list == NULL || *list == '\0' || outsz < 3)
        return false;
    size_t off = 0;
    int n = 0;
    out[off++] = '{';
    const char *p = list;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < -365 || v > 365 || ++n > 20)
            return false;
        if (!(isdigit((unsigned char)*p) ||
              ((*p == '-' || *p == '+') && isdigit((unsigned char)p[1]))))
            return false;
        int w = snprintf(out + off, outsz - off, "%s%ld", n > 1 ? "," : "", v);
        if (w < 0 || (size_t)w >= outsz - off - 1)
            return false;
        off += (size_t)w;
        if (*end == ',') {
            if (end[1] == '\0')
                return false;
            p = end + 1;
        } else if (*end == '\0') {
            p = end;
        } else {
            return false;
        }
    }
    out[off++] = '}';
    out[off] = '\0';
    return n > 0;
}

static const char *tri(int v)
{
    return v < 0 ? NULL : v ? "true" : "false";
}

db_status lifecycle_firm_settings(db_conn *c, const lifecycle_settings *s, char **json_out,
                                  char *err, size_t errlen)
{
    *json_out = NULL;
    char days[256];
    const char *texts[] = {s->number_prefix, s->legal_name, s->address, s->tax_id,
                           s->payment_instructions};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (texts[i] != NULL && strlen(texts[i]) > LIFECYCLE_TEXT_MAX) {
            ll_failf(err, errlen,
                     "cannot change the firm settings: a setting is longer than %d characters",
                     LIFECYCLE_TEXT_MAX);
            return DB_PERMANENT;
        }
    if (s->reminder_days != NULL && !lifecycle_reminder_days(s->reminder_days, days, sizeof days)) {
        ll_failf(err, errlen,
                 "cannot change the firm settings: --reminder-days must be 1 to 20 "
                 "comma-separated integers in -365..365 (got '%s')",
                 s->reminder_days);
        return DB_PERMANENT;
    }
    char firm[24];
    const char *p[] = {db_i64(s->firm_id, firm, sizeof firm),
                       tri(s->review_before_issue),
                       s->number_prefix,
                       s->legal_name,
                       s->address,
                       s->tax_id,
                       s->payment_instructions,
                       s->reminder_days ? days : NULL,
                       tri(s->reminders_enabled)};
    db_status st;
    PGresult *r =
        db_exec(c, "SELECT 1 FROM billing.firms WHERE id = $1::bigint", 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    int found = PQntuples(r);
    PQclear(r);
    if (!found) {
        ll_failf(err, errlen, "cannot change the settings of firm %s: it does not exist", firm);
        return DB_PERMANENT;
    }
    r = db_exec(c, llq_lifecycle_firm_settings, 9, p, &st, err, errlen);
    if (r == NULL)
        return st;
    *json_out = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (*json_out == NULL) {
        ll_failf(err, errlen, "could not change the firm settings: out of memory");
        return DB_TRANSIENT;
    }
    return DB_OK;
}

db_status lifecycle_issue(db_conn *c, int64_t invoice_id, civil_date on, const char *by,
                          char legal_number[LIFECYCLE_NUMBER_MAX], bool *already, char *err,
                          size_t errlen)
{
    legal_number[0] = '\0';
    *already = false;
    char what[48];
    snprintf(what, sizeof what, "issue invoice %lld", (long long)invoice_id);
    if (!who_why_valid(what, NULL, by, err, errlen))
        return DB_PERMANENT;
    char inv[24], day[16];
    if (date_format(on, day, sizeof day) == NULL) {
        ll_failf(err, errlen, "cannot %s: the issue date is invalid", what);
        return DB_PERMANENT;
    }
    const char *p[] = {db_i64(invoice_id, inv, sizeof inv), day, by};
    db_status st;
    PGresult *r = db_exec(c, llq_lifecycle_issue, 3, p, &st, err, errlen);
    if (r == NULL)
        return st;
    snprintf(legal_number, LIFECYCLE_NUMBER_MAX, "%s", PQgetvalue(r, 0, 0));
    *already = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    return DB_OK;
}

db_status lifecycle_adjust(db_conn *c, int64_t invoice_id, int64_t line_id, const char *quantity,
                           int64_t amount_cents, const char *reason, const char *by,
                           int64_t *total_out, int64_t *amount_out, char *err, size_t errlen)
{
    char what[48];
    snprintf(what, sizeof what, "adjust invoice %lld", (long long)invoice_id);
    if (!who_why_valid(what, reason, by, err, errlen))
        return DB_PERMANENT;
    if (ll_blank(reason)) {
        ll_failf(err, errlen, "cannot %s: --reason TEXT is required", what);
        return DB_PERMANENT;
    }
    if ((quantity == NULL) == (amount_cents < 0)) {
        ll_failf(err, errlen, "cannot %s: give exactly one of --quantity Q and --amount-cents N",
                 what);
        return DB_PERMANENT;
    }
    if (quantity != NULL && !lifecycle_quantity_valid(quantity)) {
        ll_failf(err, errlen,
                 "cannot %s: --quantity must be hours with at most two decimals (got '%s')", what,
                 quantity);
        return DB_PERMANENT;
    }
    char inv[24], line[24], amt[24];
    const char *p[] = {db_i64(invoice_id, inv, sizeof inv),
                       db_i64(line_id, line, sizeof line),
                       quantity,
                       amount_cents >= 0 ? db_i64(amount_cents, amt, sizeof amt) : NULL,
                       reason,
                       by};
    db_status st;
    PGresult *r = db_exec(c, llq_lifecycle_adjust, 6, p, &st, err, errlen);
    if (r == NULL)
        return st;
    *total_out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *amount_out = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return DB_OK;
}

db_status lifecycle_void(db_conn *c, int64_t invoice_id, const char *reason, const char *by,
                         int64_t *released, bool *already, char *err, size_t errlen)
{
    *released = 0;
    *already = false;
    char what[48];
    snprintf(what, sizeof what, "void invoice %lld", (long long)invoice_id);
    if (!who_why_valid(what, reason, by, err, errlen))
        return DB_PERMANENT;
    if (ll_blank(reason)) {
        ll_failf(err, errlen, "cannot %s: --reason TEXT is required", what);
        return DB_PERMANENT;
    }
    char inv[24];
    const char *p[] = {db_i64(invoice_id, inv, sizeof inv), reason, by};
    db_status st;
    PGresult *r =
        db_exec(c, "SELECT released, already FROM billing.void_invoice($1::bigint, $2, $3)", 3, p,
                &st, err, errlen);
    if (r == NULL)
        return st;
    *released = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *already = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    return DB_OK;
}

db_status lifecycle_credit(db_conn *c, const lifecycle_credit_params *p, lifecycle_credit_note *out,
                           char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char what[64];
    snprintf(what, sizeof what, "create a credit note of invoice %lld", (long long)p->invoice_id);
    if (!who_why_valid(what, p->reason, p->by, err, errlen))
        return DB_PERMANENT;
    if (ll_blank(p->reason)) {
        ll_failf(err, errlen, "cannot %s: --reason TEXT is required", what);
        return DB_PERMANENT;
    }
    if ((p->lines_json == NULL) == (p->total_cents <= 0)) {
        ll_failf(err, errlen,
                 "cannot %s: give either --amount-cents N or --line LINE_ID:AMOUNT_CENTS", what);
        return DB_PERMANENT;
    }
    char inv[24], tot[24], day[16];
    if (date_format(p->on, day, sizeof day) == NULL) {
        ll_failf(err, errlen, "cannot %s: its date is invalid", what);
        return DB_PERMANENT;
    }
    db_i64(p->invoice_id, inv, sizeof inv);
    db_status st;
    const char *mode = p->mode;
    if (mode == NULL) {
        /* The default: refund what a Stripe payment paid, else credit. */
        const char *pm[] = {inv};
        PGresult *r = db_exec(c, llq_lifecycle_credit_mode, 1, pm, &st, err, errlen);
        if (r == NULL)
            return st;
        mode = PQgetvalue(r, 0, 0)[0] == 't' ? "refund" : "credit";
        PQclear(r);
    }
    const char *pp[] = {inv,
                        p->lines_json ? NULL : db_i64(p->total_cents, tot, sizeof tot),
                        p->lines_json,
                        mode,
                        p->reason,
                        p->by,
                        day};
    PGresult *r = db_exec(c, llq_lifecycle_credit_note, 7, pp, &st, err, errlen);
    if (r == NULL)
        return st;
    out->credit_note_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    snprintf(out->legal_number, sizeof out->legal_number, "%s", PQgetvalue(r, 0, 1));
    out->applied_to_due_cents = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    out->refunded_cents = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    out->credited_cents = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    out->firm_id = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    out->client_id = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    out->already = PQgetvalue(r, 0, 7)[0] == 't';
    PQclear(r);
    if (out->credited_cents > 0 && !out->already) {
        char desc[LIFECYCLE_NUMBER_MAX + 32];
        snprintf(desc, sizeof desc, "Credit note %s", out->legal_number);
        credit_add_params cp = {.client_id = out->client_id,
                                .amount_cents = out->credited_cents,
                                .source = "credit_note",
                                .description = desc,
                                .reason = p->reason,
                                .created_by = p->by,
                                .source_invoice_id = p->invoice_id};
        int64_t entry;
        st = credit_add(c, &cp, &entry, err, errlen);
        if (st != DB_OK)
            return st;
    }
    return DB_OK;
}
