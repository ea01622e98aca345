/* nmail.c: the notifier tests' mail fixture (see nmail.h). */
#include "nmail.h"

#include <stdio.h>

#include "ledgerline/document.h"
#include "ledgerline/log.h"
#include "support/dbtest.h"

int nmail_setup(nmail *m, const char *component)
{
    log_init(component);
    m->pg = dbtest_connect();
    char err[512];
    m->db = db_connect(dbtest_worker_url(), 0, err, sizeof err);
    m->sink = smtp_sink_start("127.0.0.1", 0, NULL);
    if (m->db == NULL || m->sink == NULL) {
        fprintf(stderr, "setup: %s\n", m->db == NULL ? err : "no smtp sink");
        return -1;
    }
    snprintf(m->smtp.url, sizeof m->smtp.url, "smtp://127.0.0.1:%d", smtp_sink_port(m->sink));
    snprintf(m->smtp.from, sizeof m->smtp.from, "billing@ledgerline.test");
    m->smtp.connect_timeout_ms = 2000;
    m->smtp.timeout_ms = 10000;
    return 0;
}

void nmail_teardown(nmail *m)
{
    smtp_sink_stop(m->sink);
    db_close(m->db);
    PQfinish(m->pg);
    document_release_fonts();
}
