/* args.h: argument parsing and database helpers shared by billingctl's
 * time, engagement, invoice and report commands: strict parsing of ids,
 * cents and dates (anything malformed is a usage error, exit 2), a database
 * connection from DATABASE_URL, and mapping a refused transaction to exit 1. */
#ifndef BILLINGCTL_ARGS_H
#define BILLINGCTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledgerline/date.h"
#include "ledgerline/db.h"

/* A positive integer id ("1" .. INT64_MAX, digits only). */
bool args_parse_id(const char *text, int64_t *out);
/* A non-negative integer amount of cents (digits only). */
bool args_parse_cents(const char *text, int64_t *out);
/* Prints "billingctl: <what>: <message>" and the usage line to stderr;
 * returns CLI_USAGE. */
int args_usage(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For "--name VALUE" options: when argv[*i] is name, stores argv[*i + 1]
 * into *value, advances *i and returns 1; returns -1 when the value is
 * missing; 0 when argv[*i] is not name. */
int args_opt(int argc, char **argv, int *i, const char *name, const char **value);

/* Connects to DATABASE_URL (exit 2 when unset). NULL after printing the
 * reason when it cannot connect. */
db_conn *args_connect(void);

/* Prints the refusal message of a failed transaction ("billingctl: <what>:
 * <err>") and returns the exit status (1). */
int args_refused(const char *what, const char *err);

/* Formats an id as text into a ring of buffers (several per call ok). */
const char *args_i64(int64_t v);

#endif
