/* document.h: invoice, credit-note, statement and payment-reminder PDFs (CONTRACT "Documents and
 * delivery"; docs/NOTIFICATIONS.md). Three steps, each its own function:
 *
 * - document_facts_load: the facts a document shows, read from the database
 *   in one query (billing.document_facts, sql/016) into a document_facts;
 * - document_render: those facts to PDF bytes with cairo's PDF surface and
 *   pango's layout (A4, Unicode text of any script and direction, lines
 *   paginated under a table header repeated on every page, amounts with the
 *   currency's own exponent: money_format). Deterministic: the PDF's
 *   creation and modification dates are the document's issue date, nothing
 *   reads the clock, so the same facts render to the same bytes;
 * - document_store: stores the bytes once with their sha256
 *   (billing.invoice_documents, which refuses to change them); storing a
 *   document that exists returns the stored one.
 *
 * Rendering happens in the notifier after the invoice committed, never in
 * invoicing.
 */
#ifndef LEDGERLINE_DOCUMENT_H
#define LEDGERLINE_DOCUMENT_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"
#include "ledgerline/statement.h"

#define DOCUMENT_SHA256_HEX 65 /* 64 hex digits and NUL */

typedef enum { DOCUMENT_INVOICE = 0, DOCUMENT_CREDIT_NOTE } document_kind;

typedef struct {
    char *description;  /* UTF-8, any script */
    char *quantity;     /* "6.50"; "" when the line has none (credit notes) */
    int64_t rate_cents; /* 0: not shown */
    int64_t amount_cents;
} document_line;

/* Every text is UTF-8 and owned by the struct (document_facts_free). */
typedef struct {
    document_kind kind;
    int64_t firm_id, client_id, invoice_id, credit_note_id; /* credit_note_id 0 for invoices */
    char *firm_name, *firm_address, *firm_tax_id, *payment_instructions;
    char *client_name, *client_email;
    char *legal_number;                         /* the document's own number */
    char *invoice_legal_number;                 /* the invoice's (a credit note names it) */
    char *issue_date;                           /* YYYY-MM-DD */
    char *due_date, *period_start, *period_end; /* "" when none */
    char *reason;                               /* a credit note's */
    char currency[4];
    int64_t subtotal_cents, tax_cents, total_cents;
    int64_t amount_paid_cents, credited_cents, balance_due_cents;
    document_line *lines;
    size_t nlines;
} document_facts;

/* Reads the facts of an issued invoice (credit_note_id 0) or of one of its
 * credit notes. DB_PERMANENT with "cannot render ..." when there is no such
 * issued invoice or note; DB_TRANSIENT when the database is unreachable.
 * On success free with document_facts_free. */
db_status document_facts_load(db_conn *c, int64_t invoice_id, int64_t credit_note_id,
                              document_facts *out, char *err, size_t errlen);

/* Parses the JSON object of billing.document_facts (exposed for tests). */
int document_facts_from_json(const char *json, document_facts *out, char *err, size_t errlen);

void document_facts_free(document_facts *f);

/* Renders f to a PDF in malloc'd *pdf (*len bytes). 0, or -1 with err. */
int document_render(const document_facts *f, unsigned char **pdf, size_t *len, char *err,
                    size_t errlen);

/* A one-page payment reminder for the invoice of f at step (its day
 * offset from the due date): legal number, totals, balance due, due date,
 * days overdue and the firm's payment instructions, dated due date + step
 * (the reminder's date), so the same facts and step render the same bytes.
 * Not stored: the contract's document kinds are invoice, credit_note and
 * statement. 0, or -1 with err (no due date). */
int document_render_reminder(const document_facts *f, int step, unsigned char **pdf, size_t *len,
                             char *err, size_t errlen);

/* A statement (statement.h): letterhead, client, period, one section per
 * currency (owed: opening balance, movements with the running balance,
 * closing balance; credit the same when there is any; the open invoices),
 * paginated with the table header repeated, dated the statement date. */
int document_render_statement(const statement_facts *s, unsigned char **pdf, size_t *len, char *err,
                              size_t errlen);

/* "1100.00 USD", "5000 JPY", "12.500 KWD": money_format and the code. */
void document_amount_text(int64_t cents, const char *cur, char *buf, size_t bufsz);

/* Lower-case hex SHA-256 of data. */
void document_sha256_hex(const unsigned char *data, size_t len, char out[DOCUMENT_SHA256_HEX]);

/* Stores the PDF of f (inside the caller's transaction) unless a document
 * of the same invoice or credit note exists. *document_id is the stored
 * row's; *sha256 (when not NULL) its hash, which differs from pdf's when an
 * earlier rendering was stored first (the stored one wins, never
 * rewritten). */
db_status document_store(db_conn *c, const document_facts *f, const unsigned char *pdf, size_t len,
                         int64_t *document_id, char sha256[DOCUMENT_SHA256_HEX], char *err,
                         size_t errlen);

/* The stored document of an invoice (credit_note_id 0) or credit note:
 * malloc'd bytes. DB_PERMANENT with "no document ..." when none is stored. */
db_status document_fetch(db_conn *c, int64_t invoice_id, int64_t credit_note_id,
                         unsigned char **pdf, size_t *len, char *err, size_t errlen);

/* The stored document of an invoice (credit_note_id 0) or credit note,
 * rendered and stored first (in its own transaction) when none is: what
 * `billingctl invoice pdf` and `credit-note pdf` print. Malloc'd bytes. */
db_status document_obtain(db_conn *c, int64_t invoice_id, int64_t credit_note_id,
                          unsigned char **pdf, size_t *len, char *err, size_t errlen);

/* Stores the statement PDF of s (inside the caller's transaction) as a
 * document of kind statement named by billing.statement_documents (client,
 * date, period start), unless the client's statement of that date is
 * stored: then *document_id is that one's (never rewritten). */
db_status document_store_statement(db_conn *c, const statement_facts *s, const unsigned char *pdf,
                                   size_t len, int64_t *document_id, char *err, size_t errlen);

/* The stored statement of client_id for date (YYYY-MM-DD): malloc'd bytes,
 * its document id and period start (each may be NULL). DB_PERMANENT when
 * none is stored. */
db_status document_fetch_statement(db_conn *c, int64_t client_id, const char *date,
                                   unsigned char **pdf, size_t *len, int64_t *document_id,
                                   char period_start[11], char *err, size_t errlen);

/* Releases the fonts and caches rendering keeps for the life of the
 * process (pango's default font map, cairo's and fontconfig's static data),
 * so that a leak checker sees only real leaks. Call once at process exit,
 * after the last document_render; rendering afterwards is undefined. */
void document_release_fonts(void);

#endif
