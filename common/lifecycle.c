/* lifecycle.c: the invoice lifecycle's operations (see lifecycle.h): firm
 * settings, issue, adjust, void, credit notes. Owns their input validation
 * and decisions (the settings, a credit note's default mode and its client
 * credit); the rules (legal numbers, immutability of issued invoices, what
 * can be voided) are sql/012 and the transitions sql/013's and sql/014's
 * functions, which common/invoice_transitions.c calls, so any writer gets
 * the same answers. */
#include "ledgerline/lifecycle.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/credit.h"
#include "ledgerline/failf.h"
#include "ledgerline/invoice_transitions.h"
#include "ledgerline/queries.h"
#include "ledgerline/query_text.h"
#include "ledgerline/text.h"

/* what: the operation refused, as "cannot <what>: ..." says it;
 * with_reason: the operation requires a reason (--reason TEXT). */
static bool who_why_valid(const char *what, bool with_reason, const char *reason, const char *by,
                          char *err, size_t errlen)
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
    if (with_reason && ll_blank(reason)) {
        ll_failf(err, errlen, "cannot %s: --reason TEXT is required", what);
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
    bool found = false;
    db_status st = db_exists(c, "SELECT 1 FROM billing.firms WHERE id = $1::bigint", 1, p, &found,
                             err, errlen);
    if (st != DB_OK)
        return st;
    if (!found) {
        ll_failf(err, errlen, "cannot change the settings of firm %s: it does not exist", firm);
        return DB_PERMANENT;
    }
    /* The upsert answers one row: the settings as they now are. */
    return query_text(c, llq_lifecycle_firm_settings, 9, p, json_out, err, errlen);
}

db_status lifecycle_issue(db_conn *c, int64_t invoice_id, civil_date on, const char *by,
                          char legal_number[LIFECYCLE_NUMBER_MAX], bool *already, char *err,
                          size_t errlen)
{
    legal_number[0] = '\0';
    *already = false;
    char what[48];
    snprintf(what, sizeof what, "issue invoice %lld", (long long)invoice_id);
    if (!who_why_valid(what, false, NULL, by, err, errlen))
        return DB_PERMANENT;
    char day[16];
    if (date_format(on, day, sizeof day) == NULL) {
        ll_failf(err, errlen, "cannot %s: the issue date is invalid", what);
        return DB_PERMANENT;
    }
    return itr_issue(c, invoice_id, day, by, legal_number, already, err, errlen);
}

db_status lifecycle_adjust(db_conn *c, int64_t invoice_id, int64_t line_id, const char *quantity,
                           int64_t amount_cents, const char *reason, const char *by,
                           int64_t *total_out, int64_t *amount_out, char *err, size_t errlen)
{
    char what[48];
    snprintf(what, sizeof what, "adjust invoice %lld", (long long)invoice_id);
    if (!who_why_valid(what, true, reason, by, err, errlen))
        return DB_PERMANENT;
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
    return itr_adjust(c, invoice_id, line_id, quantity, amount_cents, reason, by, total_out,
                      amount_out, err, errlen);
}

db_status lifecycle_void(db_conn *c, int64_t invoice_id, const char *reason, const char *by,
                         int64_t *released, bool *already, char *err, size_t errlen)
{
    *released = 0;
    *already = false;
    char what[48];
    snprintf(what, sizeof what, "void invoice %lld", (long long)invoice_id);
    if (!who_why_valid(what, true, reason, by, err, errlen))
        return DB_PERMANENT;
    return itr_void(c, invoice_id, reason, by, released, already, err, errlen);
}

db_status lifecycle_credit(db_conn *c, const lifecycle_credit_params *p, lifecycle_credit_note *out,
                           char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char what[64];
    snprintf(what, sizeof what, "create a credit note of invoice %lld", (long long)p->invoice_id);
    if (!who_why_valid(what, true, p->reason, p->by, err, errlen))
        return DB_PERMANENT;
    if ((p->lines_json == NULL) == (p->total_cents <= 0)) {
        ll_failf(err, errlen,
                 "cannot %s: give either --amount-cents N or --line LINE_ID:AMOUNT_CENTS", what);
        return DB_PERMANENT;
    }
    char day[16];
    if (date_format(p->on, day, sizeof day) == NULL) {
        ll_failf(err, errlen, "cannot %s: its date is invalid", what);
        return DB_PERMANENT;
    }
    itr_credit q = {.invoice_id = p->invoice_id,
                    .total_cents = p->total_cents,
                    .lines_json = p->lines_json,
                    .mode = p->mode,
                    .reason = p->reason,
                    .by = p->by,
                    .day = day};
    db_status st;
    if (q.mode == NULL) {
        /* The default: refund what a Stripe payment paid, else credit. */
        const char *pm[] = {DB_I64(p->invoice_id)};
        PGresult *r = db_exec(c, llq_lifecycle_credit_mode, 1, pm, &st, err, errlen);
        if (r == NULL)
            return st;
        q.mode = PQgetvalue(r, 0, 0)[0] == 't' ? "refund" : "credit";
        PQclear(r);
    }
    st = itr_credit_note(c, &q, out, err, errlen);
    if (st != DB_OK)
        return st;
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
