/* document.c: invoice and credit-note PDFs (see document.h): the facts from
 * billing.document_facts (sql/016), their layout with pango on cairo's PDF
 * surface, and their storage in billing.invoice_documents. Owns the page
 * layout (A4, margins, columns, pagination with a repeated table header)
 * and the document's fixed metadata; amounts are money_format's. */
#include "ledgerline/document.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo-pdf.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pango/pangocairo.h>

#include "ledgerline/date.h"
#include "ledgerline/failf.h"
#include "ledgerline/money.h"
#include "ledgerline/queries.h"

/* ---- facts ------------------------------------------------------------------ */

static char *dup_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return strdup(s ? s : "");
}

static int64_t get_i64(json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

void document_facts_free(document_facts *f)
{
    if (f == NULL)
        return;
    char **texts[] = {&f->firm_name,   &f->firm_address, &f->firm_tax_id,  &f->payment_instructions,
                      &f->client_name, &f->client_email, &f->legal_number, &f->invoice_legal_number,
                      &f->issue_date,  &f->due_date,     &f->period_start, &f->period_end,
                      &f->reason};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        free(*texts[i]);
        *texts[i] = NULL;
    }
    for (size_t i = 0; i < f->nlines; i++) {
        free(f->lines[i].description);
        free(f->lines[i].quantity);
    }
    free(f->lines);
    f->lines = NULL;
    f->nlines = 0;
}

static int lines_from_json(json_t *arr, document_facts *f, char *err, size_t errlen)
{
    if (!json_is_array(arr)) {
        return ll_failf(err, errlen, "cannot read document facts: \"lines\" is not an array");
    }
    size_t n = json_array_size(arr);
    f->lines = calloc(n ? n : 1, sizeof *f->lines);
    if (f->lines == NULL) {
        return ll_failf(err, errlen, "could not read document facts: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(arr, i);
        f->lines[i].description = dup_str(l, "description");
        f->lines[i].quantity = dup_str(l, "quantity");
        f->lines[i].rate_cents = get_i64(l, "rate_cents");
        f->lines[i].amount_cents = get_i64(l, "amount_cents");
        f->nlines = i + 1;
    }
    return 0;
}

int document_facts_from_json(const char *json, document_facts *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    json_error_t je;
    json_t *o = json_loads(json, 0, &je);
    if (!json_is_object(o)) {
        ll_failf(err, errlen, "cannot read document facts: %s", je.text);
        json_decref(o);
        return -1;
    }
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *cur = json_string_value(json_object_get(o, "currency"));
    if (kind == NULL || cur == NULL || !money_currency_valid(cur)) {
        ll_failf(err, errlen, "cannot read document facts: kind or currency missing or invalid");
        json_decref(o);
        return -1;
    }
    f->kind = strcmp(kind, "credit_note") == 0 ? DOCUMENT_CREDIT_NOTE : DOCUMENT_INVOICE;
    snprintf(f->currency, sizeof f->currency, "%s", cur);
    f->firm_id = get_i64(o, "firm_id");
    f->client_id = get_i64(o, "client_id");
    f->invoice_id = get_i64(o, "invoice_id");
    f->credit_note_id = get_i64(o, "credit_note_id");
    f->firm_name = dup_str(o, "firm_name");
    f->firm_address = dup_str(o, "firm_address");
    f->firm_tax_id = dup_str(o, "firm_tax_id");
    f->payment_instructions = dup_str(o, "payment_instructions");
    f->client_name = dup_str(o, "client_name");
    f->client_email = dup_str(o, "client_email");
    f->legal_number = dup_str(o, "legal_number");
    f->invoice_legal_number = dup_str(o, "invoice_legal_number");
    f->issue_date = dup_str(o, "issue_date");
    f->due_date = dup_str(o, "due_date");
    f->period_start = dup_str(o, "period_start");
    f->period_end = dup_str(o, "period_end");
    f->reason = dup_str(o, "reason");
    f->subtotal_cents = get_i64(o, "subtotal_cents");
    f->tax_cents = get_i64(o, "tax_cents");
    f->total_cents = get_i64(o, "total_cents");
    f->amount_paid_cents = get_i64(o, "amount_paid_cents");
    f->credited_cents = get_i64(o, "credited_cents");
    f->balance_due_cents = get_i64(o, "balance_due_cents");
    int rc = lines_from_json(json_object_get(o, "lines"), f, err, errlen);
    json_decref(o);
    if (rc != 0)
        document_facts_free(f);
    return rc;
}

db_status document_facts_load(db_conn *c, int64_t invoice_id, int64_t credit_note_id,
                              document_facts *out, char *err, size_t errlen)
{
    char inv[24], cn[24];
    const char *p[] = {db_i64(invoice_id, inv, sizeof inv),
                       credit_note_id > 0 ? db_i64(credit_note_id, cn, sizeof cn) : NULL};
    db_status st;
    PGresult *r = db_exec(c, "SELECT billing.document_facts($1::bigint, $2::bigint)::text", 2, p,
                          &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        PQclear(r);
        if (credit_note_id > 0)
            ll_failf(err, errlen,
                     "cannot render credit note %lld: no such note of issued invoice %lld",
                     (long long)credit_note_id, (long long)invoice_id);
        else
            ll_failf(err, errlen, "cannot render invoice %lld: no such issued invoice",
                     (long long)invoice_id);
        return DB_PERMANENT;
    }
    int rc = document_facts_from_json(PQgetvalue(r, 0, 0), out, err, errlen);
    PQclear(r);
    return rc == 0 ? DB_OK : DB_PERMANENT;
}

/* ---- layout ------------------------------------------------------------------ */

/* A4 in PostScript points; a pango unit is a point (resolution 72). */
#define PAGE_W 595.276
#define PAGE_H 841.890
#define MARGIN 48.0
#define CONTENT_W (PAGE_W - 2 * MARGIN)
#define FOOTER_H 28.0
#define BOTTOM (PAGE_H - MARGIN - FOOTER_H)
#define ROW_PAD 3.0

/* Table columns: x and width; the numbers are right-aligned. */
#define COL_DESC_X MARGIN
#define COL_DESC_W 262.0
#define COL_QTY_X (COL_DESC_X + COL_DESC_W + 6.0)
#define COL_QTY_W 50.0
#define COL_RATE_X (COL_QTY_X + COL_QTY_W + 6.0)
#define COL_RATE_W 80.0
#define COL_AMT_X (COL_RATE_X + COL_RATE_W + 6.0)
#define COL_AMT_W (PAGE_W - MARGIN - COL_AMT_X)

#define FONT_FAMILY "DejaVu Sans"

typedef struct {
    unsigned char *buf;
    size_t len, cap;
    bool failed;
} pdf_sink;

/* A table other than an invoice's lines (statements): its columns and
 * their titles, repeated at the top of every page it continues on. */
typedef struct {
    double x, w;
    PangoAlignment align;
} column;

typedef struct {
    const column *cols;
    const char *const *titles;
    size_t n;
} table_spec;

typedef struct {
    cairo_t *cr;
    PangoContext *pc;
    PangoFontDescription *body, *bold, *small, *title;
    const document_facts *f;  /* invoice, credit note, reminder */
    const statement_facts *s; /* statement */
    const void *letter;       /* a reminder's letter (draw_reminder's) */
    const char *doc_title;    /* "INVOICE", "STATEMENT", ... */
    const char *number;       /* named by the footer and continued pages */
    const char *firm_name;
    const table_spec *table; /* the table a new page continues; NULL: none */
    double y;
    int page;
} page_ctx;

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int length)
{
    pdf_sink *s = closure;
    if (s->len + length > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        while (cap < s->len + length)
            cap *= 2;
        unsigned char *nb = realloc(s->buf, cap);
        if (nb == NULL) {
            s->failed = true;
            return CAIRO_STATUS_WRITE_ERROR;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, length);
    s->len += length;
    return CAIRO_STATUS_SUCCESS;
}

/* Lays text out in a box of width w at (x, y); draws it unless measure_only.
 * Returns its height in points. Pango picks the direction of each paragraph
 * from its text (auto-dir) and falls back to fonts covering other scripts
 * (fontconfig), so right-to-left and CJK text stay inside the box. */
static double text_box(page_ctx *p, const PangoFontDescription *font, const char *s, double x,
                       double y, double w, PangoAlignment align, bool measure_only)
{
    PangoLayout *l = pango_layout_new(p->pc);
    pango_layout_set_font_description(l, font);
    pango_layout_set_width(l, (int)(w * PANGO_SCALE));
    pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_alignment(l, align);
    pango_layout_set_text(l, s ? s : "", -1);
    int lw, lh;
    pango_layout_get_size(l, &lw, &lh);
    if (!measure_only) {
        cairo_move_to(p->cr, x, y);
        pango_cairo_show_layout(p->cr, l);
    }
    g_object_unref(l);
    return (double)lh / PANGO_SCALE;
}

/* An amount in major units with the currency's own decimals ("1100.00",
 * "5000" for jpy, "12.500" for kwd): money_format's. */
static void number_text(int64_t cents, const char *cur, char *buf, size_t bufsz)
{
    if (money_format(cents, cur, buf, bufsz) < 0)
        snprintf(buf, bufsz, "?");
}

void document_amount_text(int64_t cents, const char *cur, char *buf, size_t bufsz)
{
    char num[40];
    number_text(cents, cur, num, sizeof num);
    snprintf(buf, bufsz, "%s %c%c%c", num, toupper((unsigned char)cur[0]),
             toupper((unsigned char)cur[1]), toupper((unsigned char)cur[2]));
}

static void amount_text(int64_t cents, const char *cur, char *buf, size_t bufsz)
{
    document_amount_text(cents, cur, buf, bufsz);
}

static void rule_line(page_ctx *p, double y)
{
    cairo_set_line_width(p->cr, 0.6);
    cairo_move_to(p->cr, MARGIN, y);
    cairo_line_to(p->cr, PAGE_W - MARGIN, y);
    cairo_stroke(p->cr);
}

static const char *doc_title(const document_facts *f)
{
    return f->kind == DOCUMENT_CREDIT_NOTE ? "CREDIT NOTE" : "INVOICE";
}

/* What the first page's letterhead shows: the firm on the left, the
 * document's title and lines (the first bold) on the right, then the
 * client under to_label. */
typedef struct {
    const char *firm_name, *firm_address, *firm_tax_id;
    const char *client_name, *client_email;
    const char *title, *to_label;
    const char *right[6];
    size_t nright;
} head_text;

static void head_block(page_ctx *p, const head_text *h)
{
    double left = MARGIN, half = CONTENT_W / 2 - 6;
    double yl = p->y;
    yl += text_box(p, p->title, h->firm_name, left, yl, half, PANGO_ALIGN_LEFT, false) + 2;
    if (h->firm_address[0])
        yl += text_box(p, p->body, h->firm_address, left, yl, half, PANGO_ALIGN_LEFT, false);
    if (h->firm_tax_id[0]) {
        char t[512];
        snprintf(t, sizeof t, "Tax ID: %s", h->firm_tax_id);
        yl += text_box(p, p->body, t, left, yl, half, PANGO_ALIGN_LEFT, false);
    }
    double rx = MARGIN + CONTENT_W / 2 + 6, yr = p->y;
    yr += text_box(p, p->title, h->title, rx, yr, half, PANGO_ALIGN_RIGHT, false) + 2;
    for (size_t i = 0; i < h->nright; i++)
        yr += text_box(p, i == 0 ? p->bold : p->body, h->right[i], rx, yr, half, PANGO_ALIGN_RIGHT,
                       false);
    p->y = (yl > yr ? yl : yr) + 16;
    p->y += text_box(p, p->small, h->to_label, MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT, false);
    p->y += text_box(p, p->bold, h->client_name, MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT, false);
    if (h->client_email[0])
        p->y +=
            text_box(p, p->body, h->client_email, MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT, false);
}

static head_text facts_head(const document_facts *f, const char *title, const char *to_label)
{
    return (head_text){.firm_name = f->firm_name,
                       .firm_address = f->firm_address,
                       .firm_tax_id = f->firm_tax_id,
                       .client_name = f->client_name,
                       .client_email = f->client_email,
                       .title = title,
                       .to_label = to_label};
}

/* The first page's letterhead of an invoice or credit note. */
static void letterhead(page_ctx *p)
{
    const document_facts *f = p->f;
    head_text h = facts_head(f, doc_title(f), "Bill to");
    char no[600], issued[64], due[64], period[80], credits[600];
    snprintf(no, sizeof no, "No. %s", f->legal_number);
    h.right[h.nright++] = no;
    snprintf(issued, sizeof issued, "Issue date: %s", f->issue_date);
    h.right[h.nright++] = issued;
    if (f->due_date[0]) {
        snprintf(due, sizeof due, "Due date: %s", f->due_date);
        h.right[h.nright++] = due;
    }
    if (f->kind == DOCUMENT_INVOICE && f->period_start[0] && f->period_end[0]) {
        snprintf(period, sizeof period, "Period: %s to %s", f->period_start, f->period_end);
        h.right[h.nright++] = period;
    }
    if (f->kind == DOCUMENT_CREDIT_NOTE) {
        snprintf(credits, sizeof credits, "Credits invoice %s", f->invoice_legal_number);
        h.right[h.nright++] = credits;
    }
    head_block(p, &h);
    if (f->kind == DOCUMENT_CREDIT_NOTE && f->reason[0]) {
        char t[600];
        snprintf(t, sizeof t, "Reason: %s", f->reason);
        p->y += 6 + text_box(p, p->body, t, MARGIN, p->y + 6, CONTENT_W, PANGO_ALIGN_LEFT, false);
    }
    p->y += 14;
}

/* Later pages: who and which document, continued. */
static void continued_head(page_ctx *p)
{
    char t[700];
    snprintf(t, sizeof t, "%s \xe2\x80\x94 %s %s (continued)", p->firm_name, p->doc_title,
             p->number);
    p->y += text_box(p, p->body, t, MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT, false) + 10;
}

static void table_header(page_ctx *p)
{
    double h =
        text_box(p, p->bold, "Description", COL_DESC_X, p->y, COL_DESC_W, PANGO_ALIGN_LEFT, false);
    text_box(p, p->bold, "Quantity", COL_QTY_X, p->y, COL_QTY_W, PANGO_ALIGN_RIGHT, false);
    text_box(p, p->bold, "Rate", COL_RATE_X, p->y, COL_RATE_W, PANGO_ALIGN_RIGHT, false);
    text_box(p, p->bold, "Amount", COL_AMT_X, p->y, COL_AMT_W, PANGO_ALIGN_RIGHT, false);
    p->y += h + ROW_PAD;
    rule_line(p, p->y);
    p->y += ROW_PAD + 1;
}

static void footer(page_ctx *p)
{
    char t[300];
    snprintf(t, sizeof t, "%s \xc2\xb7 page %d", p->number, p->page);
    text_box(p, p->small, t, MARGIN, PAGE_H - MARGIN - 10, CONTENT_W, PANGO_ALIGN_CENTER, false);
}

static void spec_header(page_ctx *p, const table_spec *t);

/* A new page: the footer of this one, the continued head, and (when asked)
 * the header of the table being continued: an invoice's lines unless
 * p->table names another. */
static void new_page(page_ctx *p, bool with_table_header)
{
    footer(p);
    cairo_show_page(p->cr);
    p->page++;
    p->y = MARGIN;
    continued_head(p);
    if (with_table_header && p->table != NULL)
        spec_header(p, p->table);
    else if (with_table_header)
        table_header(p);
}

/* Starts a new page unless h more points fit on this one. */
static void need(page_ctx *p, double h)
{
    if (p->y + h > BOTTOM)
        new_page(p, false);
}

static void spec_header(page_ctx *p, const table_spec *t)
{
    double h = 0;
    for (size_t i = 0; i < t->n; i++) {
        double hh = text_box(p, p->bold, t->titles[i], t->cols[i].x, p->y, t->cols[i].w,
                             t->cols[i].align, false);
        h = hh > h ? hh : h;
    }
    p->y += h + ROW_PAD;
    rule_line(p, p->y);
    p->y += ROW_PAD + 1;
}

/* Starts table t here (a new page first when its header and a row would
 * not fit); later page breaks repeat its header. */
static void spec_begin(page_ctx *p, const table_spec *t)
{
    p->table = NULL;
    need(p, 48);
    p->table = t;
    spec_header(p, t);
}

/* One row of t (texts[i] in column i); a row that does not fit goes to a
 * new page under t's header. */
static void spec_row(page_ctx *p, const table_spec *t, const char *const *texts,
                     const PangoFontDescription *font)
{
    double h = 0;
    for (size_t i = 0; i < t->n; i++) {
        double hh =
            text_box(p, font, texts[i], t->cols[i].x, 0, t->cols[i].w, t->cols[i].align, true);
        h = hh > h ? hh : h;
    }
    if (p->y + h + ROW_PAD > BOTTOM)
        new_page(p, true);
    for (size_t i = 0; i < t->n; i++)
        text_box(p, font, texts[i], t->cols[i].x, p->y, t->cols[i].w, t->cols[i].align, false);
    p->y += h + ROW_PAD;
}

static void line_row(page_ctx *p, const document_line *l)
{
    double h =
        text_box(p, p->body, l->description, COL_DESC_X, 0, COL_DESC_W, PANGO_ALIGN_LEFT, true);
    if (p->y + h + ROW_PAD > BOTTOM)
        new_page(p, true);
    text_box(p, p->body, l->description, COL_DESC_X, p->y, COL_DESC_W, PANGO_ALIGN_LEFT, false);
    text_box(p, p->body, l->quantity, COL_QTY_X, p->y, COL_QTY_W, PANGO_ALIGN_RIGHT, false);
    char t[64];
    if (l->rate_cents != 0) {
        amount_text(l->rate_cents, p->f->currency, t, sizeof t);
        text_box(p, p->body, t, COL_RATE_X, p->y, COL_RATE_W, PANGO_ALIGN_RIGHT, false);
    }
    amount_text(l->amount_cents, p->f->currency, t, sizeof t);
    text_box(p, p->body, t, COL_AMT_X, p->y, COL_AMT_W, PANGO_ALIGN_RIGHT, false);
    p->y += h + ROW_PAD;
}

typedef struct {
    const char *label;
    int64_t cents;
    bool strong;
} total_row;

static size_t total_rows(const document_facts *f, total_row rows[8])
{
    size_t n = 0;
    rows[n++] = (total_row){"Subtotal", f->subtotal_cents, false};
    rows[n++] = (total_row){"Tax", f->tax_cents, false};
    if (f->kind == DOCUMENT_CREDIT_NOTE) {
        rows[n++] = (total_row){"Total credited", f->total_cents, true};
        rows[n++] = (total_row){"Balance due on the invoice", f->balance_due_cents, false};
        return n;
    }
    rows[n++] = (total_row){"Total", f->total_cents, true};
    rows[n++] = (total_row){"Amount paid", f->amount_paid_cents, false};
    if (f->credited_cents != 0)
        rows[n++] = (total_row){"Credited", f->credited_cents, false};
    rows[n++] = (total_row){"Balance due", f->balance_due_cents, true};
    return n;
}

/* "Payment instructions" and the firm's text, at y; returns the height. */
static double instructions(page_ctx *p, const char *text, double y, bool measure_only)
{
    if (text[0] == '\0')
        return 0;
    double h = text_box(p, p->bold, "Payment instructions", MARGIN, y, CONTENT_W, PANGO_ALIGN_LEFT,
                        measure_only);
    return h + text_box(p, p->body, text, MARGIN, y + h, CONTENT_W, PANGO_ALIGN_LEFT, measure_only);
}

static double totals(page_ctx *p, bool measure_only)
{
    total_row rows[8];
    size_t n = total_rows(p->f, rows);
    double y = p->y + 4, lx = COL_RATE_X - 120, lw = COL_RATE_W + 120;
    if (!measure_only)
        rule_line(p, p->y);
    for (size_t i = 0; i < n; i++) {
        char t[64];
        amount_text(rows[i].cents, p->f->currency, t, sizeof t);
        const PangoFontDescription *font = rows[i].strong ? p->bold : p->body;
        double h = text_box(p, font, rows[i].label, lx, y, lw, PANGO_ALIGN_RIGHT, measure_only);
        text_box(p, font, t, COL_AMT_X, y, COL_AMT_W, PANGO_ALIGN_RIGHT, measure_only);
        y += h + 1;
    }
    if (p->f->payment_instructions[0]) {
        y += 14;
        y += instructions(p, p->f->payment_instructions, y, measure_only);
    }
    return y - p->y;
}

static void fonts_free(page_ctx *p)
{
    pango_font_description_free(p->body);
    pango_font_description_free(p->bold);
    pango_font_description_free(p->small);
    pango_font_description_free(p->title);
}

static void fonts_new(page_ctx *p)
{
    p->body = pango_font_description_from_string(FONT_FAMILY " 9");
    p->bold = pango_font_description_from_string(FONT_FAMILY " Bold 9");
    p->small = pango_font_description_from_string(FONT_FAMILY " 7.5");
    p->title = pango_font_description_from_string(FONT_FAMILY " Bold 15");
}

/* "2026-03-04" -> "2026-03-04T00:00:00Z"; false when it is not a date. */
static bool pdf_date(const char *day, char out[32])
{
    civil_date d;
    if (!date_parse(day, &d))
        return false;
    snprintf(out, 32, "%sT00:00:00Z", day);
    return true;
}

static void set_metadata(cairo_surface_t *s, const char *title, const char *author,
                         const char *date)
{
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, title);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_AUTHOR, author);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "ledgerline billing-notifier");
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATE_DATE, date);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_MOD_DATE, date);
}

static void draw_invoice(page_ctx *p)
{
    letterhead(p);
    table_header(p);
    for (size_t i = 0; i < p->f->nlines; i++)
        line_row(p, &p->f->lines[i]);
    p->y += 4;
    if (p->y + totals(p, true) > BOTTOM)
        new_page(p, false);
    totals(p, false);
}

/* The rendering core every document shares: cairo's PDF surface (PDF 1.5,
 * fixed metadata dated day, nothing read from the clock), pango's context
 * at 72 dpi without hinting, p's pages drawn by draw. */
static int render_pdf(page_ctx *p, void (*draw)(page_ctx *p), const char *meta_title,
                      const char *day, unsigned char **pdf, size_t *len, char *err, size_t errlen)
{
    *pdf = NULL;
    *len = 0;
    char date[32];
    if (!pdf_date(day, date)) {
        return ll_failf(err, errlen, "cannot render %s: document date '%s' invalid", meta_title,
                        day);
    }
    pdf_sink sink = {0};
    cairo_surface_t *s = cairo_pdf_surface_create_for_stream(sink_write, &sink, PAGE_W, PAGE_H);
    cairo_pdf_surface_restrict_to_version(s, CAIRO_PDF_VERSION_1_5);
    set_metadata(s, meta_title, p->firm_name, date);
    p->cr = cairo_create(s);
    p->pc = pango_font_map_create_context(pango_cairo_font_map_get_default());
    pango_cairo_context_set_resolution(p->pc, 72.0);
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    pango_cairo_context_set_font_options(p->pc, fo);
    cairo_font_options_destroy(fo);
    pango_cairo_update_context(p->cr, p->pc);
    fonts_new(p);
    cairo_set_source_rgb(p->cr, 0, 0, 0);
    p->y = MARGIN;
    p->page = 1;
    draw(p);
    footer(p);
    cairo_show_page(p->cr);
    fonts_free(p);
    g_object_unref(p->pc);
    cairo_destroy(p->cr);
    cairo_surface_finish(s);
    cairo_status_t cs = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (cs != CAIRO_STATUS_SUCCESS || sink.failed) {
        free(sink.buf);
        return ll_failf(err, errlen, "could not render %s: %s", meta_title,
                        sink.failed ? "out of memory" : cairo_status_to_string(cs));
    }
    *pdf = sink.buf;
    *len = sink.len;
    return 0;
}

int document_render(const document_facts *f, unsigned char **pdf, size_t *len, char *err,
                    size_t errlen)
{
    *pdf = NULL;
    *len = 0;
    char title[300];
    snprintf(title, sizeof title, "%s %s",
             f->kind == DOCUMENT_CREDIT_NOTE ? "Credit note" : "Invoice", f->legal_number);
    if (!money_currency_valid(f->currency)) {
        return ll_failf(err, errlen, "cannot render %s %s: currency '%s' invalid", doc_title(f),
                        f->legal_number, f->currency);
    }
    page_ctx p = {
        .f = f, .doc_title = doc_title(f), .number = f->legal_number, .firm_name = f->firm_name};
    return render_pdf(&p, draw_invoice, title, f->issue_date, pdf, len, err, errlen);
}

/* ---- payment reminder ----------------------------------------------------------- */

typedef struct {
    const document_facts *f;
    int step;
    char date[11]; /* due date + step */
} reminder_letter;

static void draw_reminder(page_ctx *p)
{
    const reminder_letter *r = p->letter;
    const document_facts *f = r->f;
    head_text h = facts_head(f, "PAYMENT REMINDER", "To");
    char no[600], when[64], due[64], issued[64];
    snprintf(no, sizeof no, "Invoice No. %s", f->legal_number);
    h.right[h.nright++] = no;
    snprintf(when, sizeof when, "Reminder date: %s", r->date);
    h.right[h.nright++] = when;
    snprintf(issued, sizeof issued, "Issue date: %s", f->issue_date);
    h.right[h.nright++] = issued;
    snprintf(due, sizeof due, "Due date: %s", f->due_date);
    h.right[h.nright++] = due;
    head_block(p, &h);
    p->y += 18;
    char balance[64], total[64], t[1200];
    amount_text(f->balance_due_cents, f->currency, balance, sizeof balance);
    amount_text(f->total_cents, f->currency, total, sizeof total);
    if (r->step < 0)
        snprintf(t, sizeof t, "Invoice %s of %s is due on %s, in %d day%s. The balance due is %s.",
                 f->legal_number, f->issue_date, f->due_date, -r->step, r->step == -1 ? "" : "s",
                 balance);
    else
        snprintf(t, sizeof t,
                 "Invoice %s of %s was due on %s and is %d day%s overdue. The balance due is %s.",
                 f->legal_number, f->issue_date, f->due_date, r->step, r->step == 1 ? "" : "s",
                 balance);
    p->y += text_box(p, p->body, t, MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT, false) + 14;
    static const column cols[] = {{MARGIN, 200, PANGO_ALIGN_LEFT},
                                  {MARGIN + 206, 120, PANGO_ALIGN_RIGHT}};
    static const char *const titles[] = {"Invoice", ""};
    const table_spec spec = {cols, titles, 2};
    char paid[64], credited[64], days[32];
    amount_text(f->amount_paid_cents, f->currency, paid, sizeof paid);
    amount_text(f->credited_cents, f->currency, credited, sizeof credited);
    snprintf(days, sizeof days, "%d", r->step > 0 ? r->step : 0);
    const char *rows[][2] = {{"Legal number", f->legal_number},
                             {"Invoice total", total},
                             {"Amount paid", paid},
                             {"Credited", credited},
                             {"Due date", f->due_date},
                             {"Days overdue", days}};
    spec_begin(p, &spec);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        spec_row(p, &spec, rows[i], p->body);
    const char *strong[] = {"Balance due", balance};
    spec_row(p, &spec, strong, p->bold);
    p->table = NULL;
    p->y += 14;
    if (f->payment_instructions[0]) {
        need(p, instructions(p, f->payment_instructions, p->y, true));
        p->y += instructions(p, f->payment_instructions, p->y, false) + 14;
    }
    p->y += text_box(p, p->body,
                     "If you have paid in the meantime, thank you, and please disregard this "
                     "reminder.",
                     MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT, false);
}

int document_render_reminder(const document_facts *f, int step, unsigned char **pdf, size_t *len,
                             char *err, size_t errlen)
{
    *pdf = NULL;
    *len = 0;
    reminder_letter r = {.f = f, .step = step};
    civil_date due;
    if (f->kind != DOCUMENT_INVOICE || !date_parse(f->due_date, &due) ||
        !money_currency_valid(f->currency) ||
        date_format(date_add_days(due, step), r.date, sizeof r.date) == NULL) {
        return ll_failf(err, errlen,
                        "cannot render the reminder of invoice %s: no due date or currency",
                        f->legal_number);
    }
    char title[300];
    snprintf(title, sizeof title, "Payment reminder %s", f->legal_number);
    page_ctx p = {.letter = &r,
                  .f = f,
                  .doc_title = "PAYMENT REMINDER",
                  .number = f->legal_number,
                  .firm_name = f->firm_name};
    return render_pdf(&p, draw_reminder, title, r.date, pdf, len, err, errlen);
}

/* ---- statement ------------------------------------------------------------------ */

/* Movements: date, description, amount, running balance. */
static const column STMT_COLS[] = {{MARGIN, 62, PANGO_ALIGN_LEFT},
                                   {MARGIN + 66, 263, PANGO_ALIGN_LEFT},
                                   {MARGIN + 333, 80, PANGO_ALIGN_RIGHT},
                                   {MARGIN + 417, CONTENT_W - 417, PANGO_ALIGN_RIGHT}};
/* Open invoices: number, issued, due, total, paid, credited, balance due,
 * days overdue. */
static const column OPEN_COLS[] = {
    {MARGIN, 88, PANGO_ALIGN_LEFT},        {MARGIN + 90, 54, PANGO_ALIGN_LEFT},
    {MARGIN + 146, 54, PANGO_ALIGN_LEFT},  {MARGIN + 202, 60, PANGO_ALIGN_RIGHT},
    {MARGIN + 264, 54, PANGO_ALIGN_RIGHT}, {MARGIN + 320, 54, PANGO_ALIGN_RIGHT},
    {MARGIN + 380, 64, PANGO_ALIGN_RIGHT}, {MARGIN + 448, CONTENT_W - 448, PANGO_ALIGN_RIGHT}};

static void heading(page_ctx *p, const char *text, double before)
{
    p->table = NULL;
    need(p, before + 60);
    p->y += before;
    p->y += text_box(p, p->bold, text, MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT, false) + 4;
}

/* One balance's table: opening row, its movements with the running
 * balance, closing row. */
static void balance_table(page_ctx *p, const table_spec *spec, const statement_section *sec,
                          bool credit, int64_t opening, int64_t closing)
{
    const statement_facts *s = p->s;
    char amt[48], bal[48];
    spec_begin(p, spec);
    number_text(opening, sec->currency, bal, sizeof bal);
    const char *open_row[] = {s->date_from, credit ? "Opening credit" : "Opening balance", "", bal};
    spec_row(p, spec, open_row, p->bold);
    int64_t running = opening;
    for (size_t i = 0; i < sec->nmovements; i++) {
        const statement_movement *m = &sec->movements[i];
        if (m->credit != credit)
            continue;
        running += m->amount_cents;
        number_text(m->amount_cents, sec->currency, amt, sizeof amt);
        number_text(running, sec->currency, bal, sizeof bal);
        const char *row[] = {m->date, m->description, amt, bal};
        spec_row(p, spec, row, p->body);
    }
    number_text(closing, sec->currency, bal, sizeof bal);
    const char *close_row[] = {s->date_to, credit ? "Closing credit" : "Closing balance", "", bal};
    spec_row(p, spec, close_row, p->bold);
    p->table = NULL;
}

static bool has_credit(const statement_section *sec)
{
    if (sec->credit_opening_cents != 0 || sec->credit_closing_cents != 0)
        return true;
    for (size_t i = 0; i < sec->nmovements; i++)
        if (sec->movements[i].credit)
            return true;
    return false;
}

static void open_invoices(page_ctx *p, const statement_section *sec, const char *cur_up)
{
    char t[200];
    snprintf(t, sizeof t, "Open invoices at %s (%s)", p->s->date_to, cur_up);
    heading(p, t, 14);
    if (sec->nopen == 0) {
        p->y += text_box(p, p->body, "No open invoices.", MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT,
                         false);
        return;
    }
    static const char *const titles[] = {"Invoice", "Issued",   "Due",         "Total",
                                         "Paid",    "Credited", "Balance due", "Days overdue"};
    const table_spec spec = {OPEN_COLS, titles, 8};
    spec_begin(p, &spec);
    for (size_t i = 0; i < sec->nopen; i++) {
        const statement_open_invoice *o = &sec->open[i];
        char total[48], paid[48], credited[48], due[48], days[16];
        number_text(o->total_cents, sec->currency, total, sizeof total);
        number_text(o->paid_cents, sec->currency, paid, sizeof paid);
        number_text(o->credited_cents, sec->currency, credited, sizeof credited);
        number_text(o->balance_due_cents, sec->currency, due, sizeof due);
        snprintf(days, sizeof days, "%d", o->days_overdue);
        const char *row[] = {o->legal_number, o->issue_date, o->due_date, total, paid,
                             credited,        due,           days};
        spec_row(p, &spec, row, p->body);
    }
    p->table = NULL;
}

static void statement_section_draw(page_ctx *p, const statement_section *sec)
{
    char cur_up[4], t[200], amount_title[40];
    for (int i = 0; i < 3; i++)
        cur_up[i] = (char)toupper((unsigned char)sec->currency[i]);
    cur_up[3] = '\0';
    snprintf(amount_title, sizeof amount_title, "Amount (%s)", cur_up);
    const char *titles[] = {"Date", "Description", amount_title, "Balance"};
    const table_spec spec = {STMT_COLS, titles, 4};
    snprintf(t, sizeof t, "Account in %s: owed on invoices", cur_up);
    heading(p, t, 10);
    balance_table(p, &spec, sec, false, sec->opening_cents, sec->closing_cents);
    if (has_credit(sec)) {
        snprintf(t, sizeof t, "Credit in your favour (%s)", cur_up);
        heading(p, t, 12);
        balance_table(p, &spec, sec, true, sec->credit_opening_cents, sec->credit_closing_cents);
        int64_t net;
        if (money_sub(sec->closing_cents, sec->credit_closing_cents, &net) == MONEY_OK) {
            char n[64];
            amount_text(net, sec->currency, n, sizeof n);
            snprintf(t, sizeof t, "Balance owed less credit at %s: %s", p->s->date_to, n);
            p->y += 6;
            p->y += text_box(p, p->bold, t, MARGIN, p->y, CONTENT_W, PANGO_ALIGN_RIGHT, false);
        }
    }
    open_invoices(p, sec, cur_up);
    p->y += 10;
}

static void draw_statement(page_ctx *p)
{
    const statement_facts *s = p->s;
    head_text h = {.firm_name = s->firm_name,
                   .firm_address = s->firm_address,
                   .firm_tax_id = s->firm_tax_id,
                   .client_name = s->client_name,
                   .client_email = s->client_email,
                   .title = "STATEMENT",
                   .to_label = "Statement for"};
    char date[64], period[80];
    snprintf(date, sizeof date, "Statement date: %s", s->date_to);
    h.right[h.nright++] = date;
    snprintf(period, sizeof period, "Period: %s to %s", s->date_from, s->date_to);
    h.right[h.nright++] = period;
    head_block(p, &h);
    p->y += 8;
    for (size_t i = 0; i < s->nsections; i++)
        statement_section_draw(p, &s->sections[i]);
    if (s->payment_instructions[0]) {
        p->table = NULL;
        need(p, 14 + instructions(p, s->payment_instructions, p->y, true));
        p->y += 14;
        p->y += instructions(p, s->payment_instructions, p->y, false);
    }
}

int document_render_statement(const statement_facts *s, unsigned char **pdf, size_t *len, char *err,
                              size_t errlen)
{
    *pdf = NULL;
    *len = 0;
    for (size_t i = 0; i < s->nsections; i++)
        if (!money_currency_valid(s->sections[i].currency)) {
            return ll_failf(err, errlen,
                            "cannot render the statement of client %lld: currency '%s' invalid",
                            (long long)s->client_id, s->sections[i].currency);
        }
    /* The footer and continued pages name the client and the date. */
    char number[600], title[700];
    snprintf(number, sizeof number, "%s \xc2\xb7 %s", s->client_name, s->date_to);
    snprintf(title, sizeof title, "Statement %s %s", s->client_name, s->date_to);
    page_ctx p = {.s = s, .doc_title = "STATEMENT", .number = number, .firm_name = s->firm_name};
    return render_pdf(&p, draw_statement, title, s->date_to, pdf, len, err, errlen);
}

void document_release_fonts(void)
{
    pango_cairo_font_map_set_default(NULL);
    cairo_debug_reset_static_data();
    FcFini();
}

/* ---- storage --------------------------------------------------------------------- */

void document_sha256_hex(const unsigned char *data, size_t len, char out[DOCUMENT_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

static PGresult *exec_binary(db_conn *c, const char *sql, int n, const char *const *vals,
                             const int *lens, const int *fmts, int result_format, db_status *st,
                             char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c->pg, sql, n, NULL, vals, lens, fmts, result_format);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        *st = DB_OK;
        return r;
    }
    *st = db_classify(c, r);
    const char *m = PQresultErrorMessage(r);
    ll_failf(err, errlen, "%s", m && *m ? m : PQerrorMessage(c->pg));
    size_t l = strlen(err);
    while (l > 0 && (err[l - 1] == '\n' || err[l - 1] == ' '))
        err[--l] = '\0';
    PQclear(r);
    return NULL;
}

db_status document_store(db_conn *c, const document_facts *f, const unsigned char *pdf, size_t len,
                         int64_t *document_id, char sha256[DOCUMENT_SHA256_HEX], char *err,
                         size_t errlen)
{
    char hex[DOCUMENT_SHA256_HEX], firm[24], inv[24], cn[24];
    document_sha256_hex(pdf, len, hex);
    bool note = f->kind == DOCUMENT_CREDIT_NOTE;
    const char *vals[] = {db_i64(f->firm_id, firm, sizeof firm),
                          db_i64(f->invoice_id, inv, sizeof inv),
                          note ? db_i64(f->credit_note_id, cn, sizeof cn) : NULL,
                          note ? "credit_note" : "invoice",
                          hex,
                          (const char *)pdf};
    int lens[] = {0, 0, 0, 0, 0, (int)len};
    int fmts[] = {0, 0, 0, 0, 0, 1};
    db_status st;
    PGresult *r = exec_binary(c, llq_document_insert, 6, vals, lens, fmts, 0, &st, err, errlen);
    if (r == NULL)
        return st;
    PQclear(r);
    const char *q[] = {vals[1], vals[2], vals[3]};
    r = db_exec(c, llq_document_find, 3, q, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) != 1) {
        PQclear(r);
        ll_failf(err, errlen,
                 "could not store the document of %s %s: it is not there after the insert",
                 doc_title(f), f->legal_number);
        return DB_TRANSIENT;
    }
    *document_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    if (sha256 != NULL)
        snprintf(sha256, DOCUMENT_SHA256_HEX, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    return DB_OK;
}

/* The first column of r's first row (a binary bytea) into malloc'd *pdf. */
static db_status copy_bytes(PGresult *r, unsigned char **pdf, size_t *len, char *err, size_t errlen)
{
    size_t n = (size_t)PQgetlength(r, 0, 0);
    *pdf = malloc(n ? n : 1);
    if (*pdf == NULL) {
        ll_failf(err, errlen, "could not read the stored document: out of memory");
        return DB_TRANSIENT;
    }
    memcpy(*pdf, PQgetvalue(r, 0, 0), n);
    *len = n;
    return DB_OK;
}

db_status document_fetch(db_conn *c, int64_t invoice_id, int64_t credit_note_id,
                         unsigned char **pdf, size_t *len, char *err, size_t errlen)
{
    *pdf = NULL;
    *len = 0;
    char inv[24], cn[24];
    const char *vals[] = {db_i64(invoice_id, inv, sizeof inv),
                          credit_note_id > 0 ? db_i64(credit_note_id, cn, sizeof cn) : NULL};
    db_status st;
    PGresult *r = exec_binary(c, llq_document_fetch, 2, vals, NULL, NULL, 1, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) != 1) {
        PQclear(r);
        ll_failf(err, errlen, "cannot fetch the document of invoice %lld%s: none is stored",
                 (long long)invoice_id, credit_note_id > 0 ? " and that credit note" : "");
        return DB_PERMANENT;
    }
    if (copy_bytes(r, pdf, len, err, errlen) != DB_OK) {
        PQclear(r);
        return DB_TRANSIENT;
    }
    PQclear(r);
    return DB_OK;
}

typedef struct {
    int64_t invoice_id, credit_note_id;
} obtain_arg;

static db_status obtain_tx(db_conn *c, void *varg, char *err, size_t errlen)
{
    obtain_arg *a = varg;
    document_facts f;
    db_status st = document_facts_load(c, a->invoice_id, a->credit_note_id, &f, err, errlen);
    if (st != DB_OK)
        return st;
    unsigned char *pdf;
    size_t len;
    if (document_render(&f, &pdf, &len, err, errlen) != 0) {
        document_facts_free(&f);
        return DB_PERMANENT;
    }
    int64_t id;
    st = document_store(c, &f, pdf, len, &id, NULL, err, errlen);
    free(pdf);
    document_facts_free(&f);
    return st;
}

db_status document_obtain(db_conn *c, int64_t invoice_id, int64_t credit_note_id,
                          unsigned char **pdf, size_t *len, char *err, size_t errlen)
{
    db_status st = document_fetch(c, invoice_id, credit_note_id, pdf, len, err, errlen);
    if (st != DB_PERMANENT)
        return st;
    obtain_arg a = {invoice_id, credit_note_id};
    st = db_run_tx(c, obtain_tx, &a, err, errlen);
    if (st != DB_OK)
        return st;
    return document_fetch(c, invoice_id, credit_note_id, pdf, len, err, errlen);
}

/* ---- stored statements ------------------------------------------------------------ */

db_status document_fetch_statement(db_conn *c, int64_t client_id, const char *date,
                                   unsigned char **pdf, size_t *len, int64_t *document_id,
                                   char period_start[11], char *err, size_t errlen)
{
    *pdf = NULL;
    *len = 0;
    char cl[24];
    const char *vals[] = {db_i64(client_id, cl, sizeof cl), date};
    db_status st;
    /* A binary result: the bytes raw, the text columns as their text. */
    PGresult *r =
        exec_binary(c, llq_document_fetch_statement, 2, vals, NULL, NULL, 1, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) != 1) {
        PQclear(r);
        ll_failf(err, errlen, "cannot fetch the statement of client %lld on %s: none is stored",
                 (long long)client_id, date);
        return DB_PERMANENT;
    }
    if (copy_bytes(r, pdf, len, err, errlen) != DB_OK) {
        PQclear(r);
        return DB_TRANSIENT;
    }
    if (document_id != NULL)
        *document_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    if (period_start != NULL)
        snprintf(period_start, 11, "%s", PQgetvalue(r, 0, 2));
    PQclear(r);
    return DB_OK;
}

db_status document_store_statement(db_conn *c, const statement_facts *s, const unsigned char *pdf,
                                   size_t len, int64_t *document_id, char *err, size_t errlen)
{
    char cl[24], firm[24], hex[DOCUMENT_SHA256_HEX];
    const char *pl[] = {db_i64(s->client_id, cl, sizeof cl)};
    /* One statement per client and date (rule 17.5): concurrent senders of
     * the same client wait here, and the second finds the first's. */
    db_status st = db_command(c, llq_document_lock_client, 1, pl, err, errlen);
    if (st != DB_OK)
        return st;
    unsigned char *old = NULL;
    size_t oldlen = 0;
    st = document_fetch_statement(c, s->client_id, s->date_to, &old, &oldlen, document_id, NULL,
                                  err, errlen);
    free(old);
    if (st != DB_PERMANENT)
        return st;
    document_sha256_hex(pdf, len, hex);
    const char *vals[] = {db_i64(s->firm_id, firm, sizeof firm),
                          cl,
                          s->date_to,
                          s->date_from,
                          hex,
                          (const char *)pdf};
    int lens[] = {0, 0, 0, 0, 0, (int)len};
    int fmts[] = {0, 0, 0, 0, 0, 1};
    PGresult *r =
        exec_binary(c, llq_document_insert_statement, 6, vals, lens, fmts, 0, &st, err, errlen);
    if (r == NULL)
        return st;
    *document_id = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return DB_OK;
}
