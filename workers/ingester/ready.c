/* ready.c: the /readyz checks' helper thread (see ready.h). */
#include "ready.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledgerline/failf.h"

struct ready_checker {
    publisher *pub;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    ready_check *head; /* waiting, under mu */
    size_t pending;
};

/* Before exiting (stop) it answers what is left, so no connection stays
 * suspended. */
static void *ready_thread(void *arg)
{
    ready_checker *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && r->head == NULL)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->head == NULL)
            break; /* stopping, nothing left */
        ready_check *list = r->head;
        r->head = NULL;
        pthread_mutex_unlock(&r->mu);
        bool ok = publisher_reachable(r->pub, 2000);
        pthread_mutex_lock(&r->mu);
        while (list != NULL) {
            ready_check *chk = list;
            list = chk->next;
            /* chk is the connection's; not touched once it is resumed. */
            chk->ok = ok;
            chk->done = true;
            r->pending--;
            MHD_resume_connection(chk->conn);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

ready_checker *ready_checker_start(publisher *pub, char *err, size_t errlen)
{
    ready_checker *r = calloc(1, sizeof *r);
    if (r == NULL) {
        ll_failf(err, errlen, "could not start the readiness checks: out of memory");
        return NULL;
    }
    r->pub = pub;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    int prc = pthread_create(&r->thread, NULL, ready_thread, r);
    if (prc != 0) {
        ll_failf(err, errlen, "could not start the readiness thread: %s", strerror(prc));

        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    return r;
}

bool ready_checker_submit(ready_checker *r, ready_check *chk, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&r->mu);
    if (r->stop) {
        pthread_mutex_unlock(&r->mu);
        return false;
    }
    chk->conn = conn;
    /* Suspended before the helper can see it, so it never resumes a
     * connection that is not suspended. */
    MHD_suspend_connection(conn);
    chk->next = r->head;
    r->head = chk;
    r->pending++;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return true;
}

size_t ready_checker_pending(ready_checker *r)
{
    if (r == NULL)
        return 0;
    pthread_mutex_lock(&r->mu);
    size_t n = r->pending;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void ready_checker_stop(ready_checker *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    bool joined = r->stop;
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (!joined)
        pthread_join(r->thread, NULL);
}

void ready_checker_free(ready_checker *r)
{
    if (r == NULL)
        return;
    ready_checker_stop(r);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
