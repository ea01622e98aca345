/* engagement_renew.h: renewing an engagement (BILLING_RULES section 8;
 * `billingctl engagement renew`): common/engagement_renew.c. */
#ifndef LEDGERLINE_ENGAGEMENT_RENEW_H
#define LEDGERLINE_ENGAGEMENT_RENEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"

typedef struct {
    int64_t id; /* the current engagement */
    bool has_start, has_end;
    civil_date start, end;
    const char *fee;  /* new package fee in minor units, digits; NULL = keep */
    const char *rate; /* new hourly rate in minor units, digits; NULL = keep */
    const char *by;
    /* results */
    int64_t new_id;
    char start_s[11], end_s[11];
} engagement_renewal;

/* In one transaction of its own: the current engagement becomes completed
 * and a new current one is created with parent = old id, version + 1, the
 * old terms unless new fees are given; start defaults to the day after the
 * old end date (refused when the old engagement has no end date and no
 * start is given), end to the day before the same date a year later (a
 * 02-29 start ends on 02-28 of the next year). Audit engagement_renewed
 * with old and new fees. Old invoices are not touched. DB_PERMANENT with
 * the reason in err on a refusal. */
db_status engagement_renew(db_conn *c, engagement_renewal *a, char *err, size_t errlen);

#endif
