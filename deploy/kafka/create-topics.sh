#!/bin/sh
# create-topics.sh: creates every topic of the contract with its partition
# count (idempotent: --if-not-exists). Run by docker-compose's `topics`
# service inside the apache/kafka image; works anywhere kafka-topics.sh is.
#
#   create-topics.sh            create them on $KAFKA_BOOTSTRAP (default kafka:9092)
#   create-topics.sh --list     print "name partitions" for each topic, create nothing
#
# Environment: KAFKA_BOOTSTRAP, KAFKA_TOPIC_PREFIX (default billing.),
# KAFKA_REPLICATION_FACTOR (default 1; 3 once the cluster has 3 brokers),
# KAFKA_MIN_INSYNC_REPLICAS (default 1; 2 with 3 brokers), KAFKA_TOPICS_BIN,
# KAFKA_COMMAND_CONFIG (a client properties file: credentials, as
# deploy/kafka/provision.sh passes them).
#
# Partitions bound how many instances of a worker can share a topic (one
# consumer per partition at most): ticks are split into TICK_SHARDS=12
# messages, so 12 is the useful ceiling for the tick topics; see
# docs/OPERATIONS.md "Scaling a topic". The dlq has one partition so that
# `billingctl dlq replay OFFSET` names one message and letters stay in order.
set -eu

TOPICS='
stripe.payments 12
stripe.disputes 6
ticks.invoicing 12
ticks.autopay 12
ticks.retry 12
ticks.reminders 12
invoices 12
dlq 1
'

if [ "${1:-}" = "--list" ]; then
    printf '%s\n' "$TOPICS" | sed '/^$/d'
    exit 0
fi
[ $# -eq 0 ] || { echo "usage: create-topics.sh [--list]" >&2; exit 2; }

bootstrap=${KAFKA_BOOTSTRAP:-kafka:9092}
prefix=${KAFKA_TOPIC_PREFIX:-billing.}
rf=${KAFKA_REPLICATION_FACTOR:-1}
isr=${KAFKA_MIN_INSYNC_REPLICAS:-1}
bin=${KAFKA_TOPICS_BIN:-/opt/kafka/bin/kafka-topics.sh}
topics() {
    if [ -n "${KAFKA_COMMAND_CONFIG:-}" ]; then
        "$bin" --command-config "$KAFKA_COMMAND_CONFIG" "$@"
    else
        "$bin" "$@"
    fi
}

# The broker may still be starting: wait for it (bounded).
i=0
until topics --bootstrap-server "$bootstrap" --list >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || { echo "create-topics.sh: broker $bootstrap not reachable" >&2; exit 1; }
    sleep 2
done

printf '%s\n' "$TOPICS" | sed '/^$/d' | while read -r name partitions; do
    topics --bootstrap-server "$bootstrap" --create --if-not-exists \
        --topic "$prefix$name" --partitions "$partitions" --replication-factor "$rf" \
        --config min.insync.replicas="$isr"
    # An existing topic is left as it is: adding partitions moves keys to
    # other partitions, an operator's decision (docs/OPERATIONS.md).
    current=$(topics --bootstrap-server "$bootstrap" --describe --topic "$prefix$name" |
        sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -n 1)
    if [ -n "$current" ] && [ "$current" -ne "$partitions" ]; then
        echo "create-topics.sh: warning: $prefix$name has $current partitions (expected $partitions)" >&2
    fi
    echo "topic $prefix$name: ${current:-$partitions} partitions, replication factor $rf"
done
