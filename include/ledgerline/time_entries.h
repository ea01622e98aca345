/* time_entries.h: approving and revoking time entries (BILLING_RULES 1.8;
 * `billingctl time approve|revoke`): common/time_entries.c. */
#ifndef LEDGERLINE_TIME_ENTRIES_H
#define LEDGERLINE_TIME_ENTRIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/db.h"

/* In one transaction of its own: every entry of ids (a bigint[] literal,
 * "{1,2,3}") must exist, or nothing changes (DB_PERMANENT, "no such time
 * entry: ..."); then approve (by required) or revoke (by may be NULL) those
 * not already so, one audit event per firm touched. *changed: how many
 * changed. Revoking an invoiced entry is refused by the database trigger. */
db_status time_entries_set_approval(db_conn *c, bool approve, const char *ids, const char *by,
                                    int64_t *changed, char *err, size_t errlen);

#endif
