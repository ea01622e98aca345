/* dispute_evidence.h: evidence an operator submits for a dispute
 * (`billingctl dispute evidence`; BILLING_RULES section 7): finding the
 * dispute and recording the submission (common/dispute_evidence.c). The
 * evidence document itself is disputes.h's. */
#ifndef LEDGERLINE_DISPUTE_EVIDENCE_H
#define LEDGERLINE_DISPUTE_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"
#include "ledgerline/stripe.h"

typedef struct {
    /* in */
    int64_t row_id; /* 0: look up by stripe id */
    const char *stripe_id;
    /* found */
    int64_t id, firm_id, invoice_id;
    char dp[STRIPE_ID_MAX];
    char status[16];
    /* record */
    const char *by;
    const char *fields; /* JSON array of the keys sent */
    const char *idem_key;
    const char *stripe_status;
    bool recorded_now;
    char submitted_at[40];
} dispute_evidence;

/* Finds the dispute by row_id (or, when 0, by stripe_id) into id, firm_id,
 * invoice_id, dp and status, in a transaction of its own. DB_PERMANENT when
 * there is no such dispute. */
db_status dispute_evidence_find(db_conn *c, dispute_evidence *a, char *err, size_t errlen);

/* After Stripe accepted the evidence: the dispute under_review (a closed one
 * stays closed), evidence_submitted and the first submission time, and, the
 * first time only, the audit event dispute_evidence_submitted (by, fields,
 * idem_key, stripe_status); sets status, submitted_at and recorded_now. */
db_status dispute_evidence_record(db_conn *c, dispute_evidence *a, char *err, size_t errlen);

#endif
