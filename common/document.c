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

#include "ledgerline/money.h"

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
    char **texts[] = {&f->firm_name, &f->firm_address, &f->firm_tax_id,
                      &f->payment_instructions, &f->client_name, &f->client_email,
                      &f->legal_number, &f->invoice_legal_number, &f->issue_date,
                      &f->due_date, &f->period_start, &f->period_end, &f->reason};
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
        snprintf(err, errlen, "cannot read document facts: \"lines\" is not an array");
        return -1;
    }
    size_t n = json_array_size(arr);
    f->lines = calloc(n ? n : 1, sizeof *f->lines);
    if (f->lines == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
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
        snprintf(err, errlen, "cannot read document facts: %s", je.text);
        json_decref(o);
        return -1;
    }
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *cur = json_string_value(json_object_get(o, "currency"));
    if (kind == NULL || cur == NULL || !money_currency_valid(cur)) {
        snprintf(err, errlen, "cannot read document facts: kind or currency missing or invalid");
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
            snprintf(err, errlen, "cannot render credit note %lld: no such note of issued invoice %lld",
                     (long long)credit_note_id, (long long)invoice_id);
        else
            snprintf(err, errlen, "cannot render invoice %lld: no such issued invoice",
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

typedef struct {
    cairo_t *cr;
    PangoContext *pc;
    PangoFontDescription *body, *bold, *small, *title;
    const document_facts *f;
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

static void amount_text(int64_t cents, const char *cur, char *buf, size_t bufsz)
{
    char num[40];
    if (money_format(cents, cur, num, sizeof num) < 0)
        snprintf(num, sizeof num, "?");
    snprintf(buf, bufsz, "%s %c%c%c", num, toupper((unsigned char)cur[0]),
             toupper((unsigned char)cur[1]), toupper((unsigned char)cur[2]));
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

/* The first page's letterhead: the firm on the left, the document's number
 * and dates on the right, then the client. */
static void letterhead(page_ctx *p)
{
    const document_facts *f = p->f;
    double left = MARGIN, half = CONTENT_W / 2 - 6;
    double yl = p->y;
    yl += text_box(p, p->title, f->firm_name, left, yl, half, PANGO_ALIGN_LEFT, false) + 2;
    if (f->firm_address[0])
        yl += text_box(p, p->body, f->firm_address, left, yl, half, PANGO_ALIGN_LEFT, false);
    if (f->firm_tax_id[0]) {
        char t[512];
        snprintf(t, sizeof t, "Tax ID: %s", f->firm_tax_id);
        yl += text_box(p, p->body, t, left, yl, half, PANGO_ALIGN_LEFT, false);
    }
    double rx = MARGIN + CONTENT_W / 2 + 6, yr = p->y;
    yr += text_box(p, p->title, doc_title(f), rx, yr, half, PANGO_ALIGN_RIGHT, false) + 2;
    char t[600];
    snprintf(t, sizeof t, "No. %s", f->legal_number);
    yr += text_box(p, p->bold, t, rx, yr, half, PANGO_ALIGN_RIGHT, false);
    snprintf(t, sizeof t, "Issue date: %s", f->issue_date);
    yr += text_box(p, p->body, t, rx, yr, half, PANGO_ALIGN_RIGHT, false);
    if (f->due_date[0]) {
        snprintf(t, sizeof t, "Due date: %s", f->due_date);
        yr += text_box(p, p->body, t, rx, yr, half, PANGO_ALIGN_RIGHT, false);
    }
    if (f->kind == DOCUMENT_INVOICE && f->period_start[0] && f->period_end[0]) {
        snprintf(t, sizeof t, "Period: %s to %s", f->period_start, f->period_end);
        yr += text_box(p, p->body, t, rx, yr, half, PANGO_ALIGN_RIGHT, false);
    }
    if (f->kind == DOCUMENT_CREDIT_NOTE) {
        snprintf(t, sizeof t, "Credits invoice %s", f->invoice_legal_number);
        yr += text_box(p, p->body, t, rx, yr, half, PANGO_ALIGN_RIGHT, false);
    }
    p->y = (yl > yr ? yl : yr) + 16;
    p->y += text_box(p, p->small, "Bill to", MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT, false);
    p->y += text_box(p, p->bold, f->client_name, MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT, false);
    if (f->client_email[0])
        p->y += text_box(p, p->body, f->client_email, MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT,
                         false);
    if (f->kind == DOCUMENT_CREDIT_NOTE && f->reason[0]) {
        snprintf(t, sizeof t, "Reason: %s", f->reason);
        p->y += 6 + text_box(p, p->body, t, MARGIN, p->y + 6, CONTENT_W, PANGO_ALIGN_LEFT, false);
    }
    p->y += 14;
}

/* Later pages: who and which document, continued. */
static void continued_head(page_ctx *p)
{
    char t[700];
    snprintf(t, sizeof t, "%s \xe2\x80\x94 %s %s (continued)", p->f->firm_name, doc_title(p->f),
             p->f->legal_number);
    p->y += text_box(p, p->body, t, MARGIN, p->y, CONTENT_W, PANGO_ALIGN_LEFT, false) + 10;
}

static void table_header(page_ctx *p)
{
    double h = text_box(p, p->bold, "Description", COL_DESC_X, p->y, COL_DESC_W, PANGO_ALIGN_LEFT,
                        false);
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
    snprintf(t, sizeof t, "%s \xc2\xb7 page %d", p->f->legal_number, p->page);
    text_box(p, p->small, t, MARGIN, PAGE_H - MARGIN - 10, CONTENT_W, PANGO_ALIGN_CENTER, false);
}

static void new_page(page_ctx *p, bool with_table_header)
{
    footer(p);
    cairo_show_page(p->cr);
    p->page++;
    p->y = MARGIN;
    continued_head(p);
    if (with_table_header)
        table_header(p);
}

static void line_row(page_ctx *p, const document_line *l)
{
    double h = text_box(p, p->body, l->description, COL_DESC_X, 0, COL_DESC_W, PANGO_ALIGN_LEFT,
                        true);
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
        y += text_box(p, p->bold, "Payment instructions", MARGIN, y, CONTENT_W, PANGO_ALIGN_LEFT,
                      measure_only);
        y += text_box(p, p->body, p->f->payment_instructions, MARGIN, y, CONTENT_W,
                      PANGO_ALIGN_LEFT, measure_only);
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
    if (strlen(day) != 10 || day[4] != '-' || day[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)day[i]))
            return false;
    snprintf(out, 32, "%sT00:00:00Z", day);
    return true;
}

static void set_metadata(cairo_surface_t *s, const document_facts *f, const char *date)
{
    char title[300];
    snprintf(title, sizeof title, "%s %s", f->kind == DOCUMENT_CREDIT_NOTE ? "Credit note" : "Invoice",
             f->legal_number);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, title);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_AUTHOR, f->firm_name);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "ledgerline billing-notifier");
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATE_DATE, date);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_MOD_DATE, date);
}

static void draw(page_ctx *p)
{
    p->y = MARGIN;
    p->page = 1;
    letterhead(p);
    table_header(p);
    for (size_t i = 0; i < p->f->nlines; i++)
        line_row(p, &p->f->lines[i]);
    p->y += 4;
    if (p->y + totals(p, true) > BOTTOM)
        new_page(p, false);
    totals(p, false);
    footer(p);
    cairo_show_page(p->cr);
}

int document_render(const document_facts *f, unsigned char **pdf, size_t *len, char *err,
                    size_t errlen)
{
    *pdf = NULL;
    *len = 0;
    char date[32];
    if (!pdf_date(f->issue_date, date) || !money_currency_valid(f->currency)) {
        snprintf(err, errlen, "cannot render %s %s: issue date '%s' or currency '%s' invalid",
                 doc_title(f), f->legal_number, f->issue_date, f->currency);
        return -1;
    }
    pdf_sink sink = {0};
    cairo_surface_t *s = cairo_pdf_surface_create_for_stream(sink_write, &sink, PAGE_W, PAGE_H);
    cairo_pdf_surface_restrict_to_version(s, CAIRO_PDF_VERSION_1_5);
    set_metadata(s, f, date);
    page_ctx p = {.f = f};
    p.cr = cairo_create(s);
    p.pc = pango_font_map_create_context(pango_cairo_font_map_get_default());
    pango_cairo_context_set_resolution(p.pc, 72.0);
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    pango_cairo_context_set_font_options(p.pc, fo);
    cairo_font_options_destroy(fo);
    pango_cairo_update_context(p.cr, p.pc);
    fonts_new(&p);
    cairo_set_source_rgb(p.cr, 0, 0, 0);
    draw(&p);
    fonts_free(&p);
    g_object_unref(p.pc);
    cairo_destroy(p.cr);
    cairo_surface_finish(s);
    cairo_status_t cs = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (cs != CAIRO_STATUS_SUCCESS || sink.failed) {
        free(sink.buf);
        snprintf(err, errlen, "could not render %s %s: %s", doc_title(f), f->legal_number,
                 sink.failed ? "out of memory" : cairo_status_to_string(cs));
        return -1;
    }
    *pdf = sink.buf;
    *len = sink.len;
    return 0;
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
    snprintf(err, errlen, "%s", m && *m ? m : PQerrorMessage(c->pg));
    size_t l = strlen(err);
    while (l > 0 && (err[l - 1] == '\n' || err[l - 1] == ' '))
        err[--l] = '\0';
    PQclear(r);
    return NULL;
}

db_status document_store(db_conn *c, const document_facts *f, const unsigned char *pdf,
                         size_t len, int64_t *document_id, char sha256[DOCUMENT_SHA256_HEX],
                         char *err, size_t errlen)
{
    char hex[DOCUMENT_SHA256_HEX], firm[24], inv[24], cn[24];
    document_sha256_hex(pdf, len, hex);
    bool note = f->kind == DOCUMENT_CREDIT_NOTE;
    const char *vals[] = {db_i64(f->firm_id, firm, sizeof firm), db_i64(f->invoice_id, inv, sizeof inv),
                          note ? db_i64(f->credit_note_id, cn, sizeof cn) : NULL,
                          note ? "credit_note" : "invoice", hex, (const char *)pdf};
    int lens[] = {0, 0, 0, 0, 0, (int)len};
    int fmts[] = {0, 0, 0, 0, 0, 1};
    db_status st;
    PGresult *r = exec_binary(
        c,
        "INSERT INTO billing.invoice_documents (firm_id, invoice_id, credit_note_id, kind, sha256, bytes)"
        " VALUES ($1::bigint, $2::bigint, $3::bigint, $4, $5, $6::bytea) ON CONFLICT DO NOTHING",
        6, vals, lens, fmts, 0, &st, err, errlen);
    if (r == NULL)
        return st;
    PQclear(r);
    const char *q[] = {vals[1], vals[2], vals[3]};
    r = db_exec(c,
                "SELECT id, sha256 FROM billing.invoice_documents WHERE invoice_id = $1::bigint"
                " AND credit_note_id IS NOT DISTINCT FROM $2::bigint AND kind = $3",
                3, q, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(err, errlen, "could not store the document of %s %s", doc_title(f), f->legal_number);
        return DB_TRANSIENT;
    }
    *document_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    if (sha256 != NULL)
        snprintf(sha256, DOCUMENT_SHA256_HEX, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
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
    PGresult *r = exec_binary(c,
                              "SELECT bytes FROM billing.invoice_documents WHERE invoice_id = $1::bigint"
                              " AND credit_note_id IS NOT DISTINCT FROM $2::bigint"
                              " AND kind IN ('invoice', 'credit_note')",
                              2, vals, NULL, NULL, 1, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(err, errlen, "no document is stored for invoice %lld%s", (long long)invoice_id,
                 credit_note_id > 0 ? " and that credit note" : "");
        return DB_PERMANENT;
    }
    size_t n = (size_t)PQgetlength(r, 0, 0);
    *pdf = malloc(n ? n : 1);
    if (*pdf == NULL) {
        PQclear(r);
        snprintf(err, errlen, "out of memory");
        return DB_TRANSIENT;
    }
    memcpy(*pdf, PQgetvalue(r, 0, 0), n);
    *len = n;
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
