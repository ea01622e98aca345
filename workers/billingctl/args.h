/* args.h: argument parsing and database helpers shared by billingctl's
 * commands: the one option-table parser (args_parse), strict parsing of ids,
 * cents and dates (anything malformed is a usage error, exit 2), a database
 * connection from DATABASE_URL, and mapping a refused transaction to exit 1. */
#ifndef BILLINGCTL_ARGS_H
#define BILLINGCTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ledgerline/credit.h"
#include "ledgerline/date.h"
#include "ledgerline/db.h"
#include "ledgerline/stripe.h"
#include "ledgerline/invoice_manual.h"

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

/* One entry of a command's option table: "--name VALUE" stores the value
 * into *value (the last one given wins); a flag ("--send", value NULL)
 * sets *flag to true. */
typedef struct {
    const char *name;
    const char **value;
    bool *flag;
} args_option;

/* Called by args_parse_each with every argument that is not an option of
 * the table, in order; returns 0 or the exit status that stops parsing
 * (after printing, e.g. with args_usage). */
typedef int (*args_each_fn)(const char *arg, const char *usage, void *ctx);

/* Parses argv[1..argc-1] against opts[0..n-1]. At most one positional
 * argument, not starting with '-', goes to *positional (which must be NULL
 * on entry; positional NULL: none allowed). Prints "<option> needs a value"
 * or "unexpected argument '<arg>'" with the usage and returns CLI_USAGE;
 * returns 0 when all is well. */
int args_parse(int argc, char **argv, const char *usage, const args_option *opts, size_t n,
               const char **positional);

/* As args_parse, but every argument that is not an option goes to
 * each(arg, usage, ctx) (a list of positionals, checked as they come);
 * its non-zero result is returned at once. */
int args_parse_each(int argc, char **argv, const char *usage, const args_option *opts, size_t n,
                    args_each_fn each, void *ctx);

/* The number of entries of an option table. */
#define ARGS_N(opts) (sizeof(opts) / sizeof((opts)[0]))

/* Connects to DATABASE_URL (exit 2 when unset). NULL after printing the
 * reason when it could not connect; the command then exits CLI_REFUSED (1):
 * a database that is down is an operation that did not happen, not a usage
 * error, and a retry may pass. */
db_conn *args_connect(void);

/* A Stripe client for cfg (the command reads stripe_config_from_env
 * before anything else, so that a missing key is a usage error first).
 * NULL after printing the configuration error; the command then exits
 * CLI_USAGE. */
stripe_client *args_stripe_client(const stripe_config *cfg);

/* Connects (args_connect), runs fn in one transaction (db_run_tx) and
 * closes; a failure is printed as args_refused(what, ...). Returns CLI_OK
 * or CLI_REFUSED. */
int args_run_tx(const char *what, db_work_fn fn, void *arg);

/* Prints the refusal message of a failed transaction ("billingctl: <what>
 * refused: <err>", its first line and its ll_detailf / ll_hintf lines) and
 * returns the exit status (1). */
int args_refused(const char *what, const char *err);

/* An integer member of a JSON object (0 when absent): report printing. */
long long args_jint(const json_t *o, const char *key);

/* ---- pure parsers of the commands (no database; tests/fuzz/fuzz_cli.c) -- */

/* Parses one --line spec (cmd_invoice.c): TYPE package_fee|hourly|adjustment,
 * QUANTITY > 0 with at most two decimals, RATE_CENTS digits, amount =
 * quantity x rate (half up to the minor unit) without overflow; the
 * description is everything after the third colon (it may hold colons) and
 * points into spec. `invoice create` then recomputes the amount in the
 * client's currency (rule 11.13: to a multiple of its granularity). */
bool invoice_cli_parse_line(const char *spec, inv_line *l);

/* `credit add` options (cmd_credit.c) into *p (strings point into argv);
 * (--json is global: main.c takes it out first). Returns CLI_OK, CLI_USAGE after printing the
 * usage, or CLI_REFUSED (rule 4: goodwill/correction without reason and approver). */
int credit_cli_parse_add(int argc, char **argv, const char *usage, credit_add_params *p);

/* `credit apply` options (cmd_credit.c): --invoice (required id),
 * --amount-cents (0 = no cap), --created-by, --date (default today UTC). */
int credit_cli_parse_apply(int argc, char **argv, const char *usage, int64_t *invoice_id,
                           int64_t *max_cents, civil_date *on, const char **by);

#endif
