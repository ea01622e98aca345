/* statement.h: client statements (CONTRACT "Documents and delivery":
 * `billingctl statement --client N [--date D] [--from D0] -o FILE [--send]`;
 * docs/NOTIFICATIONS.md "Statements").
 *
 * - statement_facts_load: what a statement of a client for D0 .. D shows,
 *   from the database in one query (billing.statement_facts, sql/020): the
 *   letterhead, the client and per currency the opening and closing owed
 *   and credit balances, the period's movements and the invoices open at D;
 * - rendering is document.c's (document_render_statement: A4, paginated,
 *   the statement date as the document date, deterministic);
 * - statement_send: stores the document (invoice_documents kind statement,
 *   billing.statement_documents names its client and date: one per client
 *   and date, never rewritten) and mails it once through notify's
 *   send-once path (kind statement, step = D as YYYYMMDD).
 * Amounts are int64 minor units of the section's currency.
 */
#ifndef LEDGERLINE_STATEMENT_H
#define LEDGERLINE_STATEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"
#include "ledgerline/notify.h"

typedef struct {
    char date[11]; /* YYYY-MM-DD */
    bool credit;   /* a credit-ledger movement (else: owed on invoices) */
    char *description;
    int64_t amount_cents; /* signed: + raises the balance it belongs to */
} statement_movement;

typedef struct {
    char *legal_number;
    char issue_date[11], due_date[11]; /* due_date "" when none */
    int64_t total_cents, paid_cents, credited_cents, balance_due_cents;
    int days_overdue;
} statement_open_invoice;

typedef struct {
    char currency[4];
    int64_t opening_cents, closing_cents;               /* owed on invoices */
    int64_t credit_opening_cents, credit_closing_cents; /* credit in the client's favour */
    statement_movement *movements;
    size_t nmovements;
    statement_open_invoice *open;
    size_t nopen;
} statement_section;

/* Every text is UTF-8 and owned by the struct (statement_facts_free). */
typedef struct {
    int64_t firm_id, client_id;
    char *firm_name, *firm_address, *firm_tax_id, *payment_instructions;
    char *client_name, *client_email;
    char date_from[11], date_to[11];
    statement_section *sections;
    size_t nsections;
} statement_facts;

/* D's YYYYMMDD (a statement notification's step). */
int statement_step(civil_date d);

/* The default start of a statement's period: the first day of D's month. */
civil_date statement_default_from(civil_date d);

/* The facts of client_id's statement for from .. to (inclusive). DB_PERMANENT
 * with "cannot make a statement ..." when from > to or the client does not
 * exist; DB_TRANSIENT when the database is unreachable. Free with
 * statement_facts_free. */
db_status statement_facts_load(db_conn *c, int64_t client_id, civil_date from, civil_date to,
                               statement_facts *out, char *err, size_t errlen);

/* Parses the JSON object of billing.statement_facts (exposed for tests). */
int statement_facts_from_json(const char *json, statement_facts *out, char *err, size_t errlen);

void statement_facts_free(statement_facts *f);

typedef struct {
    notify_outcome outcome; /* sent, already (nothing new), failed, retry */
    int64_t document_id;    /* the stored statement */
    unsigned char *pdf;     /* malloc'd: the stored bytes (what was mailed) */
    size_t len;
    bool period_differs;  /* the stored statement's period starts elsewhere */
    char stored_from[11]; /* the stored statement's D0 */
} statement_sent;

/* Stores f's statement (pdf, rendered from f) unless one of the client and
 * date is stored, and mails the stored one once (notify_deliver_statement)
 * to the client's primary_contact_email. out->pdf holds the stored bytes
 * (free it). DB_OK with out->outcome; DB_TRANSIENT, DB_PERMANENT as
 * notify_deliver. */
db_status statement_send(notify_ctx *ctx, const statement_facts *f, const unsigned char *pdf,
                         size_t len, statement_sent *out, char *err, size_t errlen);

#endif
