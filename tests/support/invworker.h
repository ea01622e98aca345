/* invworker.h: billing-invoicing-worker as a real process in tests.
 *
 * Low level: spawn a worker with a topic prefix and a log file, stop it with
 * SIGTERM (bounded wait), print its log when a test fails.
 *
 * High level: one worker for a whole test program (invworker_start), on a
 * topic prefix of its own ("<tag><pid>."), and invworker_tick(), which
 * publishes a firm-scoped invoicing tick through the ticks API and returns
 * once the worker has handled every shard of it. "Handled" is observed in
 * the database, never by timing: after the tick, a sentinel tick (scoped to a
 * firm id that cannot exist) goes out with the same shard keys, so each of
 * its messages lands behind the tick's message on the same partition; the
 * worker records the sentinel's idempotency keys in
 * billing.processed_messages only after it has handled everything before
 * them. This also covers a tick sent again (whose keys were recorded long
 * ago), so "the same tick twice creates nothing" is observed, not assumed.
 *
 * Needs DATABASE_URL and KAFKA_BROKERS (the worker inherits them). Every wait
 * is bounded; on a timeout the worker's log is printed and the test fails. */
#ifndef LEDGERLINE_TESTS_INVWORKER_H
#define LEDGERLINE_TESTS_INVWORKER_H

#include <stdint.h>
#include <sys/types.h>
#include <libpq-fe.h>

/* Starts bin with KAFKA_TOPIC_PREFIX=prefix, LOG_LEVEL=info, stdout and
 * stderr appended to logpath. Fails the test when fork fails. */
pid_t invworker_spawn(const char *bin, const char *prefix, const char *logpath);
/* SIGTERM, then waits up to 60 s: the exit status (128 + signal when killed
 * by one), or -1 when it had to be SIGKILLed. */
int invworker_stop_pid(pid_t pid);
/* Copies the log file to stderr. */
void invworker_dump_log(const char *path);

typedef struct invworker invworker;

/* One worker on prefix "<tag><pid>.", consuming; returns once it has joined
 * its group and handled a first (empty) tick. shards: the shard count of the
 * ticks invworker_tick publishes. pg: a connection for the waits. */
invworker *invworker_start(const char *bin, const char *tag, PGconn *pg, int shards);
const char *invworker_prefix(const invworker *w); /* "<tag><pid>." */
const char *invworker_group(const invworker *w);  /* its consumer group */

/* Publishes the invoicing tick of date (YYYY-MM-DD) for firm (> 0; a test
 * never runs an unscoped tick) and waits until the worker has handled it. */
void invworker_tick(invworker *w, int64_t firm, const char *date);
/* The same for one shard message (shard of shards) only. */
void invworker_tick_shard(invworker *w, int64_t firm, const char *date, int shard, int shards);

/* Stops the worker (SIGTERM), frees w, returns the exit status (see
 * invworker_stop_pid); prints the log unless it exited 0. */
int invworker_stop(invworker *w);

#endif
