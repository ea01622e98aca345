/* kreal.h: a real Apache Kafka cluster for the kafka_real tests, through
 * deploy/local/kafka/kafka-up.sh and kafka-down.sh.
 *
 * kr_up() starts a private cluster (3 nodes, a temp dir, free loopback ports)
 * and stops it at exit, or reuses the plaintext one whose kafka-up.sh
 * directory KAFKA_REAL_DIR names (left running; a node the test killed is
 * started again). When java or mvn is missing, or the broker cannot be
 * fetched, the program exits KR_SKIP (ctest SKIP_RETURN_CODE) saying why.
 * Once up, the process environment holds KAFKA_BROKERS and, on a SASL
 * cluster, the administrator's KAFKA_SECURITY_PROTOCOL/KAFKA_SASL_*, so
 * kafka_conf_new() clients of the test itself run as the administrator. */
#ifndef LEDGERLINE_TESTS_KREAL_H
#define LEDGERLINE_TESTS_KREAL_H

#include <stdbool.h>
#include <stddef.h>

#define KR_SKIP 77
#define KR_NODES 3

typedef struct {
    char dir[512];
    char brokers[512];
    bool own; /* started by this process: stopped and removed at exit */
    bool sasl;
    bool down[KR_NODES + 1]; /* nodes this process took down */
} kr_cluster;

/* users: NULL-terminated SCRAM principals for a SASL cluster (sasl true);
 * ignored otherwise. Fails the program (exit 1) when the cluster does not
 * come up. */
void kr_up(kr_cluster *c, bool sasl, const char *const *users, const char *topic_prefix);
/* Stops (own) or restores (reused) the cluster; also run at exit. */
void kr_down(kr_cluster *c);
/* kafka-down.sh --kill|--stop|--start N; 0 on success. */
int kr_node(kr_cluster *c, const char *action, int node);
/* Every node stopped cleanly at once (kafka-down.sh), and started again at
 * once (each waits until its client port listens); 0 on success. */
int kr_stop_all(kr_cluster *c);
int kr_start_all(kr_cluster *c);
/* The node leading topic[partition], or -1. */
int kr_leader(const char *topic, int partition);
/* Every partition's leader (leaders[p], -1 for none) of topic, up to max;
 * the partition count, or -1. */
int kr_leaders(const char *topic, int *leaders, int max);
/* The SCRAM password of user on a SASL cluster (static buffer), or NULL. */
const char *kr_password(const kr_cluster *c, const char *user);
/* The settings a process needs to run as user: out[0..3] =
 * "KAFKA_SECURITY_PROTOCOL=...", "KAFKA_SASL_MECHANISM=...",
 * "KAFKA_SASL_USERNAME=user", "KAFKA_SASL_PASSWORD=...", out[4] = NULL,
 * pointing into buf. password NULL: the user's own (kr_password). */
typedef struct {
    char buf[4][256];
    const char *env[5];
} kr_principal;
void kr_principal_env(const kr_cluster *c, const char *user, const char *password,
                      kr_principal *out);

void kr_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned long long kr_mono_ms(void);
void kr_sleep_ms(int ms);

#endif
