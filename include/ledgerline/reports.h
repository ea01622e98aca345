/* reports.h: the operators' reports (`billingctl report ...`; BILLING_RULES
 * section 10): common/reports.c runs them, billingctl prints them. Dates are
 * YYYY-MM-DD text; amounts are in minor units. */
#ifndef LEDGERLINE_REPORTS_H
#define LEDGERLINE_REPORTS_H

#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"

/* `report revenue` of [from, to] and `report credits` of one day, each one
 * JSON document (a malloc'd string into *json; docs/REPORTS.md,
 * docs/CREDITS.md), read in a transaction of its own. DB_PERMANENT when
 * the firm does not exist. */
db_status report_revenue(db_conn *c, int64_t firm_id, const char *from, const char *to, char **json,
                         char *err, size_t errlen);
db_status report_credits(db_conn *c, int64_t firm_id, const char *date, char **json, char *err,
                         size_t errlen);

/* The reports read as rows (NULL with *st and err on failure):
 * report_failures: failure code, currency, count, amount of the firm's
 * failed payment attempts in [from, to]; report_wip / report_aging: the
 * columns of sql/queries/report_wip.sql / report_aging.sql on date. */
PGresult *report_failures(db_conn *c, int64_t firm_id, const char *from, const char *to,
                          db_status *st, char *err, size_t errlen);
PGresult *report_wip(db_conn *c, int64_t firm_id, const char *date, db_status *st, char *err,
                     size_t errlen);
PGresult *report_aging(db_conn *c, int64_t firm_id, const char *date, db_status *st, char *err,
                       size_t errlen);

#endif
