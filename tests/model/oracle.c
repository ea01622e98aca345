/* oracle.c: the model test's oracle (see oracle.h). Each rule is written
 * once, in the words of BILLING_RULES, next to the event that uses it. */
#include "oracle.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int64_t orc_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t orc_max(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static bool orc_is(const char *s, const char *t)
{
    return strcmp(s, t) == 0;
}

/* Status fields are whole: the bytes after the text are zero, so two
 * states compare equal byte for byte when their texts do. */
static void orc_set(char *dst, const char *src)
{
    char tmp[16];
    snprintf(tmp, sizeof tmp, "%s", src);
    memset(dst, 0, 16);
    memcpy(dst, tmp, strlen(tmp));
}

int64_t orc_balance(const orc_client *c)
{
    int64_t b = -c->used;
    for (int k = 0; k < c->ncredit; k++)
        b += c->credit[k].amount - c->credit[k].taken;
    return b;
}

int64_t orc_remaining(const orc_client *c, int k)
{
    /* Rule 4: credit is used oldest first; a take-back comes off the entry
     * it names (rule 11.1). */
    int64_t cum = 0;
    for (int j = 0; j <= k; j++)
        cum += c->credit[j].amount - c->credit[j].taken;
    int64_t cap = c->credit[k].amount - c->credit[k].taken;
    return orc_max(0, orc_min(cap, cum - c->used));
}

int orc_payment_of(const orc_client *c, const char *pi)
{
    for (int p = 0; p < c->npay; p++)
        if (strcmp(c->pay[p].pi, pi) == 0)
            return p;
    return -1;
}

bool orc_closed(const char *status)
{
    /* Rule 11.8: money for these is settled the other way. */
    return orc_is(status, "draft") || orc_is(status, "cancelled") || orc_is(status, "void") ||
           orc_is(status, "refunded") || orc_is(status, "charged_back");
}

static void orc_add_credit(orc_client *c, int64_t amount, int payment)
{
    if (amount <= 0)
        return;
    if (c->ncredit == ORC_MAX_CREDIT) {
        c->overflow = true;
        return;
    }
    c->credit[c->ncredit++] = (orc_credit){.amount = amount, .taken = 0, .payment = payment};
}

/* Money lands on an invoice (rules 4, 5, 6, 11.7, 11.8): up to the balance
 * due; the rest is the caller's to credit. Returns what was applied. */
static int64_t orc_land(orc_invoice *inv, int64_t amount, bool reopen)
{
    bool closed =
        orc_closed(inv->status) &&
        !(reopen && (orc_is(inv->status, "refunded") || orc_is(inv->status, "charged_back")));
    int64_t applied = closed ? 0 : orc_min(amount, orc_max(inv->total - inv->paid, 0));
    if (applied <= 0)
        return 0;
    inv->paid += applied;
    if (orc_is(inv->status, "disputed"))
        ; /* a disputed invoice stays disputed until the dispute closes */
    else if (inv->paid == inv->total)
        orc_set(inv->status, "paid");
    else if (!orc_is(inv->status, "failed")) /* 11.7: a failed invoice keeps its retry cycle */
        orc_set(inv->status, "partial");
    return applied;
}

/* Rule 11.1: a refund or a lost dispute of a payment first takes back what
 * remains unused of the overpayment credit that payment created (never
 * below a zero balance), then at most what the payment applied to the
 * invoice. Without a payment in the books only the invoice is reduced.
 * Returns what came from the invoice; *from_credit what came from credit. */
static int64_t orc_take_back(orc_client *c, orc_invoice *inv, int p, int64_t amount,
                             int64_t *from_credit)
{
    int64_t left = amount, cap;
    *from_credit = 0;
    if (p >= 0) {
        int64_t rem[ORC_MAX_CREDIT], bal = orc_balance(c);
        for (int k = 0; k < c->ncredit; k++)
            rem[k] = orc_remaining(c, k);
        for (int k = 0; k < c->ncredit; k++) {
            if (c->credit[k].payment != p || rem[k] <= 0)
                continue;
            int64_t take = orc_min(left, orc_min(rem[k], bal));
            if (take <= 0)
                break;
            c->credit[k].taken += take;
            left -= take;
            bal -= take;
            *from_credit += take;
        }
        cap = c->pay[p].applied - c->pay[p].back_invoice;
    } else {
        cap = inv->paid;
    }
    int64_t from_invoice = orc_max(0, orc_min(left, orc_min(cap, inv->paid)));
    inv->paid -= from_invoice;
    if (p >= 0)
        c->pay[p].back_invoice += from_invoice;
    return from_invoice;
}

static void orc_open_dispute(orc_invoice *inv)
{
    /* Rule 7: the invoice becomes disputed (its status remembered). */
    if (!orc_is(inv->status, "disputed"))
        orc_set(inv->before_dispute, inv->status);
    orc_set(inv->status, "disputed");
    inv->open_disputes++;
}

static const char *orc_restored(const orc_invoice *inv)
{
    return inv->before_dispute[0] ? inv->before_dispute : "paid";
}

/* A refund moved the invoice's own money: fully refunded invoices become
 * refunded, partially refunded ones partial (rule 7), where "fully" means
 * nothing of the invoice's own money is left: a refund of the excess came
 * out of credit (11.1). A dispute decides the status of a disputed or
 * charged-back invoice: a refund met while one is open changes what the
 * dispute will restore, one met after the chargeback changes nothing, as
 * it would have had the books met the refund first (rule 7: any order ends
 * as in order). */
static void orc_refund_status(orc_invoice *inv)
{
    const char *now = inv->paid == 0 ? "refunded" : "partial";
    if (orc_is(inv->status, "charged_back"))
        return;
    if (orc_is(inv->status, "disputed"))
        orc_set(inv->before_dispute, now);
    else
        orc_set(inv->status, now);
}

orc_result orc_apply(orc_client *c, const orc_event *e)
{
    if (c->overflow)
        return ORC_NOTHING;
    bool takes = e->kind == ORC_TAKE || (e->kind == ORC_DISPUTE && e->to == ORC_D_LOST);
    if (takes && e->received > 0 && orc_payment_of(c, e->pi) < 0) {
        orc_event pay = {.kind = ORC_PAY, .inv = e->inv, .amount = e->received};
        snprintf(pay.pi, sizeof pay.pi, "%s", e->pi);
        orc_apply(c, &pay);
    }
    int p = e->kind == ORC_PAY || e->kind == ORC_CREDIT || e->kind == ORC_APPLY
                ? -1
                : orc_payment_of(c, e->pi);
    int i = p >= 0 ? c->pay[p].inv : e->inv;
    if (e->kind != ORC_CREDIT && (i < 0 || i >= c->ninv))
        return ORC_NOTHING;
    orc_invoice *inv = e->kind == ORC_CREDIT ? NULL : &c->inv[i];
    switch (e->kind) {
    case ORC_PAY: {
        /* Rule 5: money from one PaymentIntent is applied once. */
        if (orc_payment_of(c, e->pi) >= 0)
            return ORC_NOTHING;
        if (c->npay == ORC_MAX_PAY) {
            c->overflow = true;
            return ORC_NOTHING;
        }
        p = c->npay++;
        orc_payment *pay = &c->pay[p];
        memset(pay, 0, sizeof *pay);
        snprintf(pay->pi, sizeof pay->pi, "%s", e->pi);
        pay->inv = i;
        pay->received = e->amount;
        pay->applied = orc_land(inv, e->amount, false);
        /* Rule 4: a payment above the balance due becomes overpayment
         * credit (for a closed invoice all of it: 11.8). */
        orc_add_credit(c, e->amount - pay->applied, p);
        return ORC_APPLIED;
    }
    case ORC_CREDIT: orc_add_credit(c, e->amount, -1); return ORC_APPLIED;
    case ORC_APPLY: {
        /* Rule 4: applied credit never exceeds the balance or the balance
         * due; an explicit amount above either is refused, not capped. */
        if (orc_is(inv->status, "draft") || orc_is(inv->status, "cancelled") ||
            orc_is(inv->status, "refunded") || orc_is(inv->status, "charged_back") ||
            orc_is(inv->status, "disputed"))
            return ORC_REFUSED;
        int64_t due = inv->total - inv->paid, bal = orc_balance(c);
        if ((due <= 0 || bal <= 0) && e->amount == 0)
            return ORC_NOTHING;
        int64_t amount = orc_max(0, orc_min(bal, due));
        if (e->amount > 0 && e->amount > amount)
            return ORC_REFUSED;
        if (e->amount > 0)
            amount = e->amount;
        c->used += amount;
        orc_land(inv, amount, false);
        return ORC_APPLIED;
    }
    case ORC_TAKE: {
        int64_t from_credit = 0;
        inv->refunded += e->amount;
        if (orc_take_back(c, inv, p, e->amount, &from_credit) > 0)
            orc_refund_status(inv);
        return ORC_APPLIED;
    }
    case ORC_GIVE: {
        /* Rule 11.11: a failed refund gives its money back: to the invoice
         * as far as the take-back took it from there (reopening it), the
         * rest as credit naming the payment. */
        int64_t cap = p >= 0 ? orc_min(e->amount, c->pay[p].back_invoice) : e->amount;
        int64_t back = orc_land(inv, cap, true);
        if (p >= 0)
            c->pay[p].back_invoice -= back;
        inv->refunded -= e->amount;
        orc_add_credit(c, e->amount - back, p);
        return ORC_APPLIED;
    }
    case ORC_DISPUTE: {
        if (e->from == ORC_D_NONE && e->to != ORC_D_NONE)
            orc_open_dispute(inv);
        if (e->to == ORC_D_WON && e->from != ORC_D_WON && e->from != ORC_D_LOST) {
            /* Won: the invoice returns to what it was, once no other
             * dispute of it is open. */
            inv->open_disputes--;
            if (inv->open_disputes == 0 && orc_is(inv->status, "disputed")) {
                orc_set(inv->status, orc_restored(inv));
                orc_set(inv->before_dispute, "");
            }
        } else if (e->to == ORC_D_LOST && e->from != ORC_D_WON && e->from != ORC_D_LOST) {
            /* Lost (a chargeback): the disputed amount comes back through
             * 11.1; an invoice that gave nothing back (the dispute took
             * only the excess, from credit) is not charged back. */
            inv->open_disputes--;
            int64_t from_credit = 0;
            orc_take_back(c, inv, p, e->amount, &from_credit);
            bool only_credit = from_credit > 0 && from_credit >= e->amount;
            orc_set(inv->status, only_credit ? orc_restored(inv) : "charged_back");
            orc_set(inv->before_dispute, "");
        }
        return ORC_APPLIED;
    }
    }
    return ORC_NOTHING;
}

bool orc_status_allowed(const orc_invoice *expected, const char *books)
{
    const char *want = expected->status;
    bool open_want = orc_is(want, "sent") || orc_is(want, "partial") || orc_is(want, "failed") ||
                     orc_is(want, "overdue");
    if (!open_want)
        return orc_is(books, want);
    if (orc_is(books, "failed") || orc_is(books, "overdue"))
        return true;
    return expected->paid == 0 ? orc_is(books, "sent") : orc_is(books, "partial");
}

static int orc_why(char *why, int whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int orc_why(char *why, int whylen, const char *fmt, ...)
{
    if (why != NULL && whylen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, (size_t)whylen, fmt, ap);
        va_end(ap);
    }
    return 0;
}

bool orc_same(const orc_client *x, const orc_client *b, char *why, int whylen)
{
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    if (x->ninv != b->ninv)
        return orc_why(why, whylen, "%d invoices, books %d", x->ninv, b->ninv);
    for (int i = 0; i < x->ninv; i++) {
        const orc_invoice *u = &x->inv[i], *v = &b->inv[i];
        if (u->paid != v->paid)
            return orc_why(why, whylen, "invoice %lld: amount_paid %lld, books %lld",
                           (long long)v->id, (long long)u->paid, (long long)v->paid);
        if (u->refunded != v->refunded)
            return orc_why(why, whylen, "invoice %lld: refunded %lld, books %lld", (long long)v->id,
                           (long long)u->refunded, (long long)v->refunded);
        if (!orc_status_allowed(u, v->status)) {
            if (why != NULL && whylen > 0)
                snprintf(why, (size_t)whylen, "invoice %lld: status %s expected, books %s",
                         (long long)v->id, u->status, v->status);
            return false;
        }
    }
    if (x->npay != b->npay)
        return orc_why(why, whylen, "%d Stripe payments, books %d", x->npay, b->npay);
    for (int p = 0; p < x->npay; p++) {
        int q = orc_payment_of(b, x->pay[p].pi);
        if (q < 0) {
            if (why != NULL && whylen > 0)
                snprintf(why, (size_t)whylen, "payment %s missing in the books", x->pay[p].pi);
            return false;
        }
        const orc_payment *u = &x->pay[p], *v = &b->pay[q];
        if (u->received != v->received || u->applied != v->applied ||
            u->back_invoice != v->back_invoice) {
            if (why != NULL && whylen > 0)
                snprintf(why, (size_t)whylen,
                         "payment %s: received/applied/back %lld/%lld/%lld, books %lld/%lld/%lld",
                         u->pi, (long long)u->received, (long long)u->applied,
                         (long long)u->back_invoice, (long long)v->received, (long long)v->applied,
                         (long long)v->back_invoice);
            return false;
        }
    }
    if (orc_balance(x) != orc_balance(b))
        return orc_why(why, whylen, "balance %lld, books %lld", (long long)orc_balance(x),
                       (long long)orc_balance(b));
    if (x->ncredit != b->ncredit || x->used != b->used)
        return orc_why(why, whylen, "%d credit entries (used %lld), books %d (used %lld)",
                       x->ncredit, (long long)x->used, b->ncredit, (long long)b->used);
    bool matched[ORC_MAX_CREDIT] = {false};
    for (int k = 0; k < x->ncredit; k++) {
        const orc_credit *u = &x->credit[k];
        const char *upi = u->payment >= 0 ? x->pay[u->payment].pi : "";
        bool found = false;
        for (int j = 0; j < b->ncredit && !found; j++) {
            const orc_credit *v = &b->credit[j];
            const char *vpi = v->payment >= 0 ? b->pay[v->payment].pi : "";
            if (!matched[j] && u->amount == v->amount && u->taken == v->taken &&
                strcmp(upi, vpi) == 0)
                matched[j] = found = true;
        }
        if (!found) {
            if (why != NULL && whylen > 0)
                snprintf(why, (size_t)whylen,
                         "credit entry of %lld cents (taken back %lld, payment %s) missing in "
                         "the books",
                         (long long)u->amount, (long long)u->taken, upi[0] ? upi : "none");
            return false;
        }
    }
    return true;
}
