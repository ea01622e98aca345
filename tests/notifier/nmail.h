/* nmail.h: the in-process mail fixture of the notifier tests that deliver
 * through common/notify.c: the owner's connection for fixtures, the worker's
 * for delivery, and the test SMTP server with an smtp_config pointing at it. */
#ifndef LEDGERLINE_TESTS_NMAIL_H
#define LEDGERLINE_TESTS_NMAIL_H

#include <libpq-fe.h>

#include "ledgerline/db.h"
#include "ledgerline/smtp.h"
#include "support/smtp_sink.h"

typedef struct {
    PGconn *pg;  /* fixtures (dbtest_connect) */
    db_conn *db; /* billing_worker, as the notifier */
    smtp_sink *sink;
    smtp_config smtp; /* smtp://127.0.0.1:PORT of the sink, no TLS */
} nmail;

/* 0, or -1 after printing why. */
int nmail_setup(nmail *m, const char *component);
/* Stops the sink, closes both connections, releases rendering's fonts. */
void nmail_teardown(nmail *m);

#endif
