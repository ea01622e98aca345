/* fevents.c: the fault suite's Stripe events (see faults.h). Owns the
 * webhook "units" (one seeded invoice each and the events about it), the
 * event bodies, and the delivery plan. Every body is a fixture of
 * ../shared/fixtures/stripe with ids, amounts and metadata replaced so that
 * it applies to the unit's invoice; no shape is invented. Two types have no
 * fixture of their own and are derived from their nearest one:
 * payment_intent.processing from payment_intent.succeeded (status
 * processing, nothing received, no charge yet) and charge.dispute.
 * funds_reinstated from charge.dispute.closed.won (whose object already
 * carries the reinstatement balance transaction). */
#include "faults.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char *const funit_names[FU_KINDS] = {"pay", "fail", "dispute_won", "dispute_lost",
                                                  "refund"};

const char *funit_kind_name(funit_kind k)
{
    return k < FU_KINDS ? funit_names[k] : "?";
}

void fevents_units(fload *l, size_t cycles, int64_t first_invoice)
{
    l->nunits = cycles * FU_KINDS;
    l->units = calloc(l->nunits ? l->nunits : 1, sizeof *l->units);
    if (l->units == NULL)
        fproc_die("out of memory");
    for (size_t u = 0; u < l->nunits; u++) {
        funit *x = &l->units[u];
        x->kind = (funit_kind)(u % FU_KINDS);
        x->invoice_id = first_invoice + (int64_t)u;
        /* More than the 500-cent first refund; varied. */
        x->total_cents = 5000 + (int64_t)(u % 37) * 125;
        snprintf(x->pi, sizeof x->pi, "pi_FLT%08zuPaYmEnTiNtEnT", u);
        snprintf(x->charge, sizeof x->charge, "ch_FLT%08zuChArGe", u);
        snprintf(x->dispute, sizeof x->dispute, "dp_FLT%08zuDiSpUtE", u);
        snprintf(x->stripe_invoice, sizeof x->stripe_invoice, "in_FLT%08zuInVoIcE", u);
    }
}

/* ------------------------------------------------------------------------ */

typedef struct {
    json_t *pi_succeeded, *pi_failed, *inv_succeeded, *inv_failed, *dp_created, *dp_withdrawn,
        *dp_updated, *dp_won, *dp_lost, *ch_refunded_partial, *ch_refunded;
} fev_fixtures;

static json_t *fev_load(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        snprintf(err, errlen, "fixture %s: %s", path, je.text);
    return j;
}

static void fev_set_str(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, v ? json_string(v) : json_null());
}

static void fev_set_int(json_t *o, const char *key, int64_t v)
{
    json_object_set_new(o, key, json_integer((json_int_t)v));
}

static json_t *fev_object(json_t *ev)
{
    return json_object_get(json_object_get(ev, "data"), "object");
}

static void fev_metadata(json_t *o, int64_t invoice_id)
{
    char inv[24];
    snprintf(inv, sizeof inv, "%lld", (long long)invoice_id);
    json_t *m = json_object_get(o, "metadata");
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(o, "metadata", m);
    }
    json_object_set_new(m, "invoice_id", json_string(inv));
}

/* Balance transactions of a dispute scaled to its amount: withdrawal
 * -amount, reinstatement +amount, fee unchanged. */
static void fev_dispute_money(json_t *o, int64_t amount)
{
    json_t *bts = json_object_get(o, "balance_transactions");
    size_t i;
    json_t *bt;
    json_array_foreach(bts, i, bt)
    {
        int64_t a = json_integer_value(json_object_get(bt, "amount"));
        int64_t fee = json_integer_value(json_object_get(bt, "fee"));
        int64_t na = a < 0 ? -amount : amount;
        fev_set_int(bt, "amount", na);
        fev_set_int(bt, "net", na - fee);
    }
}

static int fev_add(fload *l, size_t unit, char step, json_t *ev, const char *type,
                   const char *group, char *err, size_t errlen)
{
    fevent *e = &l->events[l->nevents];
    snprintf(e->id, sizeof e->id, "evt_FLT%08zu%c", unit, step);
    json_object_set_new(ev, "id", json_string(e->id));
    json_object_set_new(ev, "type", json_string(type));
    e->type = type;
    e->group = group;
    e->unit = (int)unit;
    e->body = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (e->body == NULL) {
        snprintf(err, errlen, "cannot serialise event %s", e->id);
        return -1;
    }
    e->len = strlen(e->body);
    l->nevents++;
    return 0;
}

#define G_AUTOPAY "billing-autopay-worker"
#define G_RETRY "billing-retry-worker"
#define G_DISPUTE "billing-dispute-worker"

static int fev_unit(fload *l, const fev_fixtures *fx, size_t u, char *err, size_t errlen)
{
    const funit *x = &l->units[u];
    json_t *ev, *o;
    int rc = 0;
    switch (x->kind) {
    case FU_PAY:
        /* processing first (as Stripe sends it for async methods) */
        ev = json_deep_copy(fx->pi_succeeded);
        o = fev_object(ev);
        fev_set_str(o, "id", x->pi);
        fev_set_str(o, "status", "processing");
        fev_set_int(o, "amount", x->total_cents);
        fev_set_int(o, "amount_received", 0);
        fev_set_str(o, "latest_charge", NULL);
        fev_set_str(o, "client_secret", NULL);
        fev_metadata(o, x->invoice_id);
        json_object_set_new(ev, "created",
                            json_integer(json_integer_value(json_object_get(ev, "created")) - 2));
        rc |= fev_add(l, u, 'a', ev, "payment_intent.processing", G_AUTOPAY, err, errlen);

        ev = json_deep_copy(fx->pi_succeeded);
        o = fev_object(ev);
        fev_set_str(o, "id", x->pi);
        fev_set_int(o, "amount", x->total_cents);
        fev_set_int(o, "amount_received", x->total_cents);
        fev_set_str(o, "latest_charge", x->charge);
        fev_set_str(o, "client_secret", NULL);
        fev_metadata(o, x->invoice_id);
        rc |= fev_add(l, u, 'b', ev, "payment_intent.succeeded", G_AUTOPAY, err, errlen);

        ev = json_deep_copy(fx->inv_succeeded);
        o = fev_object(ev);
        fev_set_str(o, "id", x->stripe_invoice);
        fev_set_str(o, "payment_intent", x->pi);
        fev_set_str(o, "charge", x->charge);
        fev_set_int(o, "amount_due", x->total_cents);
        fev_set_int(o, "amount_paid", x->total_cents);
        fev_set_int(o, "total", x->total_cents);
        fev_set_int(o, "subtotal", x->total_cents);
        fev_metadata(o, x->invoice_id);
        rc |= fev_add(l, u, 'c', ev, "invoice.payment_succeeded", G_AUTOPAY, err, errlen);
        break;
    case FU_FAIL:
        ev = json_deep_copy(fx->pi_failed);
        o = fev_object(ev);
        fev_set_str(o, "id", x->pi);
        fev_set_int(o, "amount", x->total_cents);
        fev_set_str(o, "latest_charge", x->charge);
        fev_set_str(o, "client_secret", NULL);
        fev_set_str(json_object_get(o, "last_payment_error"), "charge", x->charge);
        fev_metadata(o, x->invoice_id);
        rc |= fev_add(l, u, 'a', ev, "payment_intent.payment_failed", G_RETRY, err, errlen);

        ev = json_deep_copy(fx->inv_failed);
        o = fev_object(ev);
        fev_set_str(o, "id", x->stripe_invoice);
        fev_set_str(o, "payment_intent", x->pi);
        fev_set_str(o, "charge", x->charge);
        fev_set_int(o, "amount_due", x->total_cents);
        fev_set_int(o, "amount_remaining", x->total_cents);
        fev_set_int(o, "total", x->total_cents);
        fev_set_int(o, "subtotal", x->total_cents);
        fev_metadata(o, x->invoice_id);
        rc |= fev_add(l, u, 'b', ev, "invoice.payment_failed", G_RETRY, err, errlen);
        break;
    case FU_WON:
    case FU_LOST: {
        const json_t *src[5] = {fx->dp_created, fx->dp_withdrawn, fx->dp_updated,
                                x->kind == FU_WON ? fx->dp_won : fx->dp_lost, fx->dp_won};
        const char *types[5] = {"charge.dispute.created", "charge.dispute.funds_withdrawn",
                                "charge.dispute.updated", "charge.dispute.closed",
                                "charge.dispute.funds_reinstated"};
        int n = x->kind == FU_WON ? 5 : 4;
        for (int i = 0; i < n; i++) {
            ev = json_deep_copy(src[i]);
            o = fev_object(ev);
            fev_set_str(o, "id", x->dispute);
            fev_set_str(o, "charge", x->charge);
            fev_set_str(o, "payment_intent", x->pi);
            fev_set_int(o, "amount", x->total_cents);
            fev_dispute_money(o, x->total_cents);
            if (i == 4) /* reinstated right after the close */
                json_object_set_new(
                    ev, "created",
                    json_integer(json_integer_value(json_object_get(ev, "created")) + 1));
            rc |= fev_add(l, u, (char)('a' + i), ev, types[i], G_DISPUTE, err, errlen);
        }
        break;
    }
    case FU_REFUND:
        for (int i = 0; i < 2; i++) {
            ev = json_deep_copy(i == 0 ? fx->ch_refunded_partial : fx->ch_refunded);
            o = fev_object(ev);
            fev_set_str(o, "id", x->charge);
            fev_set_str(o, "payment_intent", x->pi);
            fev_set_int(o, "amount", x->total_cents);
            fev_set_int(o, "amount_captured", x->total_cents);
            fev_set_int(o, "amount_refunded", i == 0 ? 500 : x->total_cents);
            fev_metadata(o, x->invoice_id);
            rc |= fev_add(l, u, (char)('a' + i), ev, "charge.refunded", G_DISPUTE, err, errlen);
        }
        break;
    default: break;
    }
    return rc;
}

int fevents_build(fload *l, const char *dir, char *err, size_t errlen)
{
    fev_fixtures fx = {0};
    int rc = -1;
    if ((fx.pi_succeeded = fev_load(dir, "payment_intent.succeeded.json", err, errlen)) &&
        (fx.pi_failed = fev_load(dir, "payment_intent.payment_failed.json", err, errlen)) &&
        (fx.inv_succeeded = fev_load(dir, "invoice.payment_succeeded.json", err, errlen)) &&
        (fx.inv_failed = fev_load(dir, "invoice.payment_failed.json", err, errlen)) &&
        (fx.dp_created = fev_load(dir, "charge.dispute.created.json", err, errlen)) &&
        (fx.dp_withdrawn = fev_load(dir, "charge.dispute.funds_withdrawn.json", err, errlen)) &&
        (fx.dp_updated = fev_load(dir, "charge.dispute.updated.json", err, errlen)) &&
        (fx.dp_won = fev_load(dir, "charge.dispute.closed.won.json", err, errlen)) &&
        (fx.dp_lost = fev_load(dir, "charge.dispute.closed.lost.json", err, errlen)) &&
        (fx.ch_refunded_partial = fev_load(dir, "charge.refunded.partial.json", err, errlen)) &&
        (fx.ch_refunded = fev_load(dir, "charge.refunded.json", err, errlen))) {
        size_t cap = (l->nunits / FU_KINDS + 1) * FU_EVENTS_PER_CYCLE;
        l->events = calloc(cap, sizeof *l->events);
        if (l->events == NULL) {
            snprintf(err, errlen, "out of memory");
        } else {
            rc = 0;
            for (size_t u = 0; u < l->nunits && rc == 0; u++)
                rc = fev_unit(l, &fx, u, err, errlen);
        }
    }
    json_t *all[] = {fx.pi_succeeded, fx.pi_failed,           fx.inv_succeeded, fx.inv_failed,
                     fx.dp_created,   fx.dp_withdrawn,        fx.dp_updated,    fx.dp_won,
                     fx.dp_lost,      fx.ch_refunded_partial, fx.ch_refunded};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        json_decref(all[i]);
    return rc;
}

/* ------------------------------------------------------------------------ */

typedef struct {
    int64_t key;
    int event;
} fev_slot;

static int fev_slot_cmp(const void *a, const void *b)
{
    const fev_slot *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->event - y->event;
}

static unsigned fev_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) & 0xffffffu;
}

void fevents_plan(fload *l, unsigned seed)
{
    /* Positions are event index * 16; a copy goes 1..200 events later; a
     * tenth of first deliveries go 2..200 events later, i.e. after events
     * of the same unit that follow them. */
    size_t n = l->nevents;
    fev_slot *s = calloc(2 * n + 1, sizeof *s);
    l->plan = calloc(2 * n + 1, sizeof *l->plan);
    if (s == NULL || l->plan == NULL)
        fproc_die("out of memory");
    unsigned r = seed ? seed : 1;
    l->out_of_order = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t base = (int64_t)i * 16;
        int64_t first = base;
        if (fev_rand(&r) % 10 == 0) {
            first = base + 16 * (2 + (int64_t)(fev_rand(&r) % 199)) + 1;
            l->out_of_order++;
        }
        s[2 * i] = (fev_slot){first, (int)i};
        s[2 * i + 1] = (fev_slot){first + 16 * (1 + (int64_t)(fev_rand(&r) % 200)) + 2, (int)i};
    }
    qsort(s, 2 * n, sizeof *s, fev_slot_cmp);
    for (size_t i = 0; i < 2 * n; i++)
        l->plan[i] = s[i].event;
    l->nplan = 2 * n;
    free(s);
}

void fevents_free(fload *l)
{
    for (size_t i = 0; i < l->nevents; i++)
        free(l->events[i].body);
    free(l->events);
    free(l->units);
    free(l->plan);
    memset(l, 0, sizeof *l);
}
