/* kafka_admin.c: billing-kafka-admin, the few administrative steps the local
 * real Apache Kafka cluster needs (deploy/local/kafka/kafka-up.sh), through
 * librdkafka's Admin API, so no JVM starts for each of them:
 *
 *   billing-kafka-admin wait --nodes N [--timeout-s S]
 *       waits until N brokers are registered (and unfenced) in the metadata
 *   billing-kafka-admin create-topics --replication-factor R --min-insync-replicas M
 *                                     NAME:PARTITIONS...
 *       creates each topic (an existing one is left as it is) and waits until
 *       every partition of every one has a leader
 *   billing-kafka-admin create-acls FILE
 *       creates the ALLOW bindings of FILE, one a line:
 *       PRINCIPAL OPERATION RESOURCE-TYPE PATTERN-TYPE NAME
 *       (e.g. "User:ingester WRITE TOPIC PREFIXED billing.stripe."); '#' starts
 *       a comment
 *   billing-kafka-admin leader TOPIC PARTITION
 *       prints the node id leading that partition
 *
 * The brokers are KAFKA_BROKERS and the credentials the contract's
 * KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* / KAFKA_SSL_* (common/kafka.c), so
 * on a SASL cluster it runs as the cluster's administrator. Exit 0 on
 * success, 1 on failure, 2 on bad usage or configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>

#include "ledgerline/config.h"
#include "ledgerline/kafka.h"
#include "ledgerline/log.h"

#define ADMIN_MAX_ITEMS 256
#define ADMIN_NODES_CHECKED 3 /* answers in a row per node of the local cluster */

static void usage(void)
{
    fprintf(stderr, "usage: billing-kafka-admin wait --nodes N [--timeout-s S]\n"
                    "       billing-kafka-admin create-topics --replication-factor R "
                    "--min-insync-replicas M NAME:PARTITIONS...\n"
                    "       billing-kafka-admin create-acls FILE\n"
                    "       billing-kafka-admin leader TOPIC PARTITION\n");
    exit(CONFIG_EXIT_STATUS);
}

static int parse_int(const char *text, int min, int max)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < min || v > max)
        usage();
    return (int)v;
}

static rd_kafka_t *admin_client(void)
{
    char err[512];
    const char *brokers = kafka_brokers_or_exit();
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, err, sizeof err);
    if (conf == NULL)
        config_die(err);
    /* Connection failures while the cluster starts are expected; this tool
     * reports what it could not do itself. */
    if (rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err) != RD_KAFKA_CONF_OK)
        config_die(err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "billing-kafka-admin: cannot create the client: %s\n", err);
        exit(1);
    }
    return rk;
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Brokers in a fresh metadata answer, or -1. */
static int broker_count(rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    int n = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

static int cmd_wait(int argc, char **argv)
{
    int nodes = 0, timeout_s = 120;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
            nodes = parse_int(argv[++i], 1, 64);
        else if (strcmp(argv[i], "--timeout-s") == 0 && i + 1 < argc)
            timeout_s = parse_int(argv[++i], 1, 3600);
        else
            usage();
    }
    if (nodes == 0)
        usage();
    rd_kafka_t *rk = admin_client();
    double deadline = mono_s() + timeout_s;
    int seen = -1;
    while (mono_s() < deadline) {
        seen = broker_count(rk);
        if (seen >= nodes)
            break;
        usleep(200 * 1000);
    }
    rd_kafka_destroy(rk);
    if (seen < nodes) {
        fprintf(stderr, "billing-kafka-admin: %d of %d brokers registered after %d s\n",
                seen < 0 ? 0 : seen, nodes, timeout_s);
        return 1;
    }
    return 0;
}

/* Waits for the admin result event of one request. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, int timeout_ms)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms);
    if (ev == NULL)
        fprintf(stderr, "billing-kafka-admin: no answer from the cluster in %d ms\n", timeout_ms);
    return ev;
}

/* true when every partition of each named topic has a leader. */
static bool topics_led(rd_kafka_t *rk, char **names, int n)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    int ok = 0;
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < md->topic_cnt; t++) {
            const rd_kafka_metadata_topic_t *mt = &md->topics[t];
            if (strcmp(mt->topic, names[i]) != 0 || mt->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
                mt->partition_cnt == 0)
                continue;
            bool all = true;
            for (int p = 0; p < mt->partition_cnt; p++)
                if (mt->partitions[p].leader < 0)
                    all = false;
            ok += all;
        }
    }
    rd_kafka_metadata_destroy(md);
    return ok == n;
}

static int cmd_create_topics(int argc, char **argv)
{
    int rf = 0, isr = 0, n = 0;
    char *names[ADMIN_MAX_ITEMS];
    int parts[ADMIN_MAX_ITEMS];
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--replication-factor") == 0 && i + 1 < argc) {
            rf = parse_int(argv[++i], 1, 64);
        } else if (strcmp(argv[i], "--min-insync-replicas") == 0 && i + 1 < argc) {
            isr = parse_int(argv[++i], 1, 64);
        } else {
            char *colon = strrchr(argv[i], ':');
            if (colon == NULL || colon == argv[i] || n == ADMIN_MAX_ITEMS)
                usage();
            *colon = '\0';
            names[n] = argv[i];
            parts[n++] = parse_int(colon + 1, 1, 10000);
        }
    }
    if (rf == 0 || isr == 0 || n == 0 || isr > rf)
        usage();
    char isr_text[16], err[512];
    snprintf(isr_text, sizeof isr_text, "%d", isr);

    rd_kafka_t *rk = admin_client();
    rd_kafka_NewTopic_t *nt[ADMIN_MAX_ITEMS];
    for (int i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(names[i], parts[i], rf, err, sizeof err);
        if (nt[i] == NULL || rd_kafka_NewTopic_set_config(nt[i], "min.insync.replicas", isr_text) !=
                                 RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "billing-kafka-admin: topic %s: %s\n", names[i], err);
            exit(CONFIG_EXIT_STATUS);
        }
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opt, 30000, err, sizeof err);
    rd_kafka_CreateTopics(rk, nt, (size_t)n, opt, q);
    rd_kafka_event_t *ev = admin_wait(q, 60000);
    int rc = ev == NULL ? 1 : 0;
    if (ev != NULL && rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "billing-kafka-admin: cannot create topics: %s\n",
                rd_kafka_event_error_string(ev));
        rc = 1;
    } else if (ev != NULL) {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            const char *name = rd_kafka_topic_result_name(res[i]);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
                printf("topic %s created\n", name);
            } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                /* Left as it is: changing partitions moves keys (OPERATIONS.md). */
                printf("topic %s exists\n", name);
            } else {
                fprintf(stderr, "billing-kafka-admin: cannot create topic %s: %s\n", name,
                        rd_kafka_topic_result_error_string(res[i]));
                rc = 1;
            }
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    for (int i = 0; i < n; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    /* Created is not yet led, nor known to every broker (each learns it
     * from its copy of the metadata log): wait (bounded) until several
     * answers in a row, from whichever brokers answer, show every
     * partition led. */
    double deadline = mono_s() + 60;
    int in_a_row = 0;
    while (rc == 0 && in_a_row < 2 * ADMIN_NODES_CHECKED) {
        in_a_row = topics_led(rk, names, n) ? in_a_row + 1 : 0;
        if (in_a_row == 0 && mono_s() > deadline) {
            fprintf(stderr, "billing-kafka-admin: topics have no leader after 60 s\n");
            rc = 1;
        }
        usleep(100 * 1000);
    }
    rd_kafka_destroy(rk);
    return rc;
}

static int lookup(const char *word, const char *const *names, const int *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(word, names[i]) == 0)
            return values[i];
    return -1;
}

/* Bindings broker `id`'s authorizer reports (DescribeAcls is answered
 * from the answering broker's own copy of the metadata), or -1. */
static int acls_described(rd_kafka_t *rk, int32_t id)
{
    char err[512];
    rd_kafka_AclBindingFilter_t *f = rd_kafka_AclBindingFilter_new(
        RD_KAFKA_RESOURCE_ANY, NULL, RD_KAFKA_RESOURCE_PATTERN_ANY, NULL, NULL,
        RD_KAFKA_ACL_OPERATION_ANY, RD_KAFKA_ACL_PERMISSION_TYPE_ANY, err, sizeof err);
    if (f == NULL)
        return -1;
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBEACLS);
    rd_kafka_AdminOptions_set_broker(opt, id, err, sizeof err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeAcls(rk, f, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    int n = -1;
    if (ev != NULL && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        size_t cnt = 0;
        rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(ev), &cnt);
        n = (int)cnt;
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_AclBinding_destroy(f); /* a filter is a binding */
    return n;
}

/* Created is not yet in force: each broker applies the new bindings when
 * its copy of the metadata log catches up (seconds after a fresh start on
 * a loaded machine; a broker behind refused the ingester's first producer
 * id with CLUSTER_AUTHORIZATION_FAILED, a fatal error, in CI). Waits
 * (bounded) until every broker itself reports at least n bindings, twice
 * in a row. */
static int acls_effective(rd_kafka_t *rk, size_t n)
{
    double deadline = mono_s() + 60;
    const rd_kafka_metadata_t *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "billing-kafka-admin: could not read the cluster's brokers\n");
        return 1;
    }
    int rc = 0;
    for (int b = 0; b < md->broker_cnt && rc == 0; b++) {
        int in_a_row = 0;
        while (in_a_row < 2) {
            if (mono_s() > deadline) {
                fprintf(stderr, "billing-kafka-admin: ACLs not in force on broker %d after 60 s\n",
                        (int)md->brokers[b].id);
                rc = 1;
                break;
            }
            in_a_row = acls_described(rk, md->brokers[b].id) >= (int)n ? in_a_row + 1 : 0;
            if (in_a_row < 2)
                usleep(100 * 1000);
        }
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

static int cmd_create_acls(int argc, char **argv)
{
    if (argc != 1)
        usage();
    FILE *f = fopen(argv[0], "r");
    if (f == NULL) {
        fprintf(stderr, "billing-kafka-admin: cannot open %s\n", argv[0]);
        return CONFIG_EXIT_STATUS;
    }
    static const char *const op_names[] = {"ALL",           "READ",
                                           "WRITE",         "CREATE",
                                           "DELETE",        "ALTER",
                                           "DESCRIBE",      "DESCRIBE_CONFIGS",
                                           "ALTER_CONFIGS", "IDEMPOTENT_WRITE"};
    static const int op_values[] = {
        RD_KAFKA_ACL_OPERATION_ALL,           RD_KAFKA_ACL_OPERATION_READ,
        RD_KAFKA_ACL_OPERATION_WRITE,         RD_KAFKA_ACL_OPERATION_CREATE,
        RD_KAFKA_ACL_OPERATION_DELETE,        RD_KAFKA_ACL_OPERATION_ALTER,
        RD_KAFKA_ACL_OPERATION_DESCRIBE,      RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
        RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS, RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE};
    static const char *const res_names[] = {"TOPIC", "GROUP", "CLUSTER"};
    static const int res_values[] = {RD_KAFKA_RESOURCE_TOPIC, RD_KAFKA_RESOURCE_GROUP,
                                     RD_KAFKA_RESOURCE_BROKER /* Kafka's CLUSTER (4) */};
    static const char *const pat_names[] = {"LITERAL", "PREFIXED"};
    static const int pat_values[] = {RD_KAFKA_RESOURCE_PATTERN_LITERAL,
                                     RD_KAFKA_RESOURCE_PATTERN_PREFIXED};

    rd_kafka_AclBinding_t *acls[ADMIN_MAX_ITEMS];
    size_t n = 0;
    char line[1024], err[512];
    int lineno = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        char *save = NULL, *w[6];
        int nw = 0;
        for (char *t = strtok_r(line, " \t\r\n", &save); t != NULL && nw < 6;
             t = strtok_r(NULL, " \t\r\n", &save))
            w[nw++] = t;
        if (nw == 0)
            continue;
        int op = nw == 5 ? lookup(w[1], op_names, op_values, 10) : -1;
        int res = nw == 5 ? lookup(w[2], res_names, res_values, 3) : -1;
        int pat = nw == 5 ? lookup(w[3], pat_names, pat_values, 2) : -1;
        if (op < 0 || res < 0 || pat < 0 || n == ADMIN_MAX_ITEMS) {
            fprintf(stderr,
                    "billing-kafka-admin: %s:%d: expected PRINCIPAL OPERATION "
                    "TOPIC|GROUP|CLUSTER LITERAL|PREFIXED NAME\n",
                    argv[0], lineno);
            fclose(f);
            return CONFIG_EXIT_STATUS;
        }
        acls[n] = rd_kafka_AclBinding_new(
            (rd_kafka_ResourceType_t)res, w[4], (rd_kafka_ResourcePatternType_t)pat, w[0], "*",
            (rd_kafka_AclOperation_t)op, RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, err, sizeof err);
        if (acls[n] == NULL) {
            fprintf(stderr, "billing-kafka-admin: %s:%d: %s\n", argv[0], lineno, err);
            fclose(f);
            return CONFIG_EXIT_STATUS;
        }
        n++;
    }
    fclose(f);
    if (n == 0)
        return 0;
    rd_kafka_t *rk = admin_client();
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATEACLS);
    rd_kafka_AdminOptions_set_request_timeout(opt, 30000, err, sizeof err);
    rd_kafka_CreateAcls(rk, acls, n, opt, q);
    rd_kafka_event_t *ev = admin_wait(q, 60000);
    int rc = ev == NULL ? 1 : 0;
    if (ev != NULL && rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "billing-kafka-admin: cannot create ACLs: %s\n",
                rd_kafka_event_error_string(ev));
        rc = 1;
    } else if (ev != NULL) {
        size_t cnt = 0;
        const rd_kafka_acl_result_t **res =
            rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &cnt);
        for (size_t i = 0; i < cnt; i++) {
            const rd_kafka_error_t *e = rd_kafka_acl_result_error(res[i]);
            if (e != NULL) {
                fprintf(stderr, "billing-kafka-admin: ACL %zu refused: %s\n", i + 1,
                        rd_kafka_error_string(e));
                rc = 1;
            }
        }
        if (rc == 0)
            printf("%zu ACL bindings created\n", n);
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_AclBinding_destroy_array(acls, n);
    if (rc == 0)
        rc = acls_effective(rk, n);
    rd_kafka_destroy(rk);
    return rc;
}

static int cmd_leader(int argc, char **argv)
{
    if (argc != 2)
        usage();
    int partition = parse_int(argv[1], 0, 100000);
    rd_kafka_t *rk = admin_client();
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, argv[0], NULL);
    const struct rd_kafka_metadata *md = NULL;
    int leader = -1;
    if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && partition < md->topics[0].partition_cnt)
            leader = md->topics[0].partitions[partition].leader;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
    if (leader < 0) {
        fprintf(stderr, "billing-kafka-admin: %s [%d] has no leader\n", argv[0], partition);
        return 1;
    }
    printf("%d\n", leader);
    return 0;
}

int main(int argc, char **argv)
{
    if (log_init("billing-kafka-admin") != 0)
        config_die("LOG_LEVEL must be one of debug, info, warn, error");
    if (argc < 2)
        usage();
    if (strcmp(argv[1], "wait") == 0)
        return cmd_wait(argc - 2, argv + 2);
    if (strcmp(argv[1], "create-topics") == 0)
        return cmd_create_topics(argc - 2, argv + 2);
    if (strcmp(argv[1], "create-acls") == 0)
        return cmd_create_acls(argc - 2, argv + 2);
    if (strcmp(argv[1], "leader") == 0)
        return cmd_leader(argc - 2, argv + 2);
    usage();
}
