/* lifecycle.h: the invoice lifecycle a finance team runs (docs/INVOICES.md;
 * CONTRACT "Additions of 2026-12-03 / Invoice lifecycle"): firm settings,
 * issuing a draft with its legal number, adjusting a draft's hourly lines,
 * voiding an unpaid invoice and credit notes. Each call runs inside the
 * caller's transaction; the rules themselves are the database's (sql/012,
 * sql/013, sql/014). These functions validate their input and decide what
 * is the operator's to decide (settings, a credit note's mode and client
 * credit); the transitions themselves go through invoice_transitions.h
 * (itr_issue, itr_adjust, itr_void, itr_credit_note), the one C caller of
 * them. A refusal returns DB_PERMANENT with the database's message (it
 * names its rule). */
#ifndef LEDGERLINE_LIFECYCLE_H
#define LEDGERLINE_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"
#include "ledgerline/invoice_transitions.h"

#define LIFECYCLE_NAME_MAX 200              /* --by */
#define LIFECYCLE_TEXT_MAX 2000             /* --reason, settings texts */
#define LIFECYCLE_NUMBER_MAX ITR_NUMBER_MAX /* a legal number */

/* `firm settings`: NULL (or -1 for the tri-states) leaves a setting as it is;
 * a firm without a row gets the defaults for what is not given. */
typedef struct {
    int64_t firm_id;
    int review_before_issue; /* -1 unchanged, 0 off, 1 on */
    const char *number_prefix;
    const char *legal_name;
    const char *address;
    const char *tax_id;
    const char *payment_instructions;
    const char *reminder_days; /* "-3,7,21" */
    int reminders_enabled;     /* -1 unchanged, 0 off, 1 on */
} lifecycle_settings;

/* Upserts the firm's settings and returns them as a JSON object text
 * (malloc'd, *json_out) with the effective prefix. */
db_status lifecycle_firm_settings(db_conn *c, const lifecycle_settings *s, char **json_out,
                                  char *err, size_t errlen);

/* Issues a draft on `on`: legal number (out), *already when it was issued
 * before (then nothing changes). */
db_status lifecycle_issue(db_conn *c, int64_t invoice_id, civil_date on, const char *by,
                          char legal_number[LIFECYCLE_NUMBER_MAX], bool *already, char *err,
                          size_t errlen);

/* Adjusts an hourly line of a draft to `quantity` hours ("7.50", NULL for
 * none) or `amount_cents` (-1 for none); *total_out is the invoice's new
 * total, *amount_out the line's new amount. */
db_status lifecycle_adjust(db_conn *c, int64_t invoice_id, int64_t line_id, const char *quantity,
                           int64_t amount_cents, const char *reason, const char *by,
                           int64_t *total_out, int64_t *amount_out, char *err, size_t errlen);

/* Voids an invoice with nothing paid: *released time entries are billable
 * again; *already when it was void before. */
db_status lifecycle_void(db_conn *c, int64_t invoice_id, const char *reason, const char *by,
                         int64_t *released, bool *already, char *err, size_t errlen);

/* `credit-note create`: by amount (total_cents > 0, tax included) or by
 * lines (lines_json {"<line id>": cents, ...}); mode "refund", "credit" or
 * NULL (refund when a Stripe payment paid the invoice, else credit). */
typedef struct {
    int64_t invoice_id;
    int64_t total_cents;    /* 0 when by lines */
    const char *lines_json; /* NULL when by amount */
    const char *mode;
    const char *reason;
    const char *by;
    civil_date on;
} lifecycle_credit_params;

/* The note as billing.create_credit_note answered it (itr_note); already:
 * the same note made by an earlier run of the command. */
typedef itr_note lifecycle_credit_note;

/* Writes the note (itr_credit_note: billing.create_credit_note, sql/014) and, for its
 * --credit part, the client's credit entry (credit_add, source credit_note,
 * the invoice as its source). The --refund part is the caller's to send to
 * Stripe after commit (refund_targets; idempotency key per note). */
db_status lifecycle_credit(db_conn *c, const lifecycle_credit_params *p, lifecycle_credit_note *out,
                           char *err, size_t errlen);

/* A quantity of hours: digits with at most two decimals, > 0 or 0. */
bool lifecycle_quantity_valid(const char *q);
/* A reminder-days list: comma-separated integers in -365..365, 1..20 of them;
 * writes the array literal "{-3,7}" into out. */
bool lifecycle_reminder_days(const char *list, char *out, size_t outsz);

#endif
