/* stripe_match.c: finding the invoice a Stripe event is about in our own
 * records (stripe_match.h): by our attempt's key, the PaymentIntent, the
 * charge, then the metadata hint. Reads only. */
#include "ledgerline/stripe_match.h"

#include <stdlib.h>
#include <string.h>

#include "ledgerline/queries.h"

/* One lookup: the first row's (invoice id, firm id, attempt id), all 0
 * when none. */
static db_status stripe_event_lookup(db_conn *c, const char *sql, const char *value,
                                     stripe_event_match *out, char *err, size_t errlen)
{
    const char *p[] = {value};
    db_status st;
    PGresult *r = db_exec(c, sql, 1, p, &st, err, errlen);
    if (r == NULL)
        return st;
    if (PQntuples(r) > 0) {
        out->invoice_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        out->firm_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        out->attempt_id = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        out->ours = PQgetvalue(r, 0, 3)[0] == 't';
    }
    PQclear(r);
    return DB_OK;
}

db_status stripe_event_find_invoice(db_conn *c, const stripe_event_refs *refs,
                                    stripe_event_match *out, char *err, size_t errlen)
{
    /* Our own records first: a key or an id we sent or received is proof;
     * metadata.invoice_id is only a hint (anyone can write metadata).
     * The lookups: sql/queries/stripe_match_by_{key,pi,charge}.sql. */
    static const char by_id[] =
        "SELECT id, firm_id, NULL, false FROM billing.invoices WHERE id = $1::bigint";
    memset(out, 0, sizeof *out);
    db_status st = DB_OK;
    if (refs->metadata_attempt_key[0] != '\0')
        st = stripe_event_lookup(c, llq_stripe_match_by_key, refs->metadata_attempt_key, out, err,
                                 errlen);
    if (st == DB_OK && out->invoice_id == 0 && refs->payment_intent[0] != '\0')
        st = stripe_event_lookup(c, llq_stripe_match_by_pi, refs->payment_intent, out, err, errlen);
    if (st == DB_OK && out->invoice_id == 0 && refs->charge[0] != '\0')
        st = stripe_event_lookup(c, llq_stripe_match_by_charge, refs->charge, out, err, errlen);
    if (st == DB_OK && out->invoice_id == 0 && stripe_event_decimal_id(refs->metadata_invoice_id))
        st = stripe_event_lookup(c, by_id, refs->metadata_invoice_id, out, err, errlen);
    return st;
}
