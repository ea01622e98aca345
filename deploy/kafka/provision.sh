#!/bin/sh
# provision.sh: docker-compose's one-shot `kafka-setup` step (inside the
# apache/kafka image), as the cluster's administrator (SASL/PLAIN on the
# INTERNAL listener). Idempotent: run it again after changing a password.
#
#   1. one SCRAM-SHA-512 principal per process kind, its password from
#      LL_KAFKA_PASSWORD_<KIND> (ingester scheduler invoicing autopay retry
#      dispute notifier billingctl); an existing one gets the password it is given;
#   2. the ACLs of $KAFKA_ACLS (deploy/local/kafka/acls.txt: "PRINCIPAL
#      OPERATION RESOURCE PATTERN NAME", ${PREFIX} = KAFKA_TOPIC_PREFIX);
#   3. every contract topic (create-topics.sh beside this script).
#
# Environment: KAFKA_BOOTSTRAP (the INTERNAL listeners), LL_KAFKA_ADMIN_PASSWORD,
# LL_KAFKA_PASSWORD_<KIND>, KAFKA_ACLS, KAFKA_TOPIC_PREFIX (default billing.),
# KAFKA_REPLICATION_FACTOR, KAFKA_MIN_INSYNC_REPLICAS, KAFKA_BIN (default
# /opt/kafka/bin). Passwords: letters and digits (they are placed into
# kafka-configs' SCRAM syntax as they are), e.g. `openssl rand -hex 24`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${KAFKA_BIN:-/opt/kafka/bin}
bootstrap=${KAFKA_BOOTSTRAP:?KAFKA_BOOTSTRAP is not set}
prefix=${KAFKA_TOPIC_PREFIX:-billing.}
acls=${KAFKA_ACLS:-$here/../local/kafka/acls.txt}
: "${LL_KAFKA_ADMIN_PASSWORD:?LL_KAFKA_ADMIN_PASSWORD is not set}"
case "$prefix" in *[!A-Za-z0-9._-]*) echo "provision.sh: bad KAFKA_TOPIC_PREFIX" >&2; exit 2 ;; esac

# The administrator's client settings (mode 600, removed at exit).
umask 077
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
cat >"$cfg" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$LL_KAFKA_ADMIN_PASSWORD";
EOF

# 1. Principals.
for kind in ingester scheduler invoicing autopay retry dispute notifier billingctl; do
    var=LL_KAFKA_PASSWORD_$(echo "$kind" | tr '[:lower:]' '[:upper:]')
    eval "pw=\${$var:-}"
    case "$pw" in
        '') echo "provision.sh: $var is not set" >&2; exit 2 ;;
        *[!A-Za-z0-9]*) echo "provision.sh: $var must be letters and digits" >&2; exit 2 ;;
    esac
    [ "${#pw}" -ge 16 ] || { echo "provision.sh: $var is shorter than 16" >&2; exit 2; }
    "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --command-config "$cfg" \
        --alter --entity-type users --entity-name "$kind" \
        --add-config "SCRAM-SHA-512=[iterations=8192,password=$pw]" >/dev/null
    echo "principal $kind: SCRAM-SHA-512 set"
done

# 2. ACLs (adding one that exists is a no-op).
sed "s/\${PREFIX}/$prefix/g" "$acls" | while read -r principal op rtype ptype name; do
    case "$principal" in ''|'#'*) continue ;; esac
    case "$rtype" in
        TOPIC) res="--topic" ;;
        GROUP) res="--group" ;;
        *) echo "provision.sh: unknown resource type $rtype" >&2; exit 1 ;;
    esac
    "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" --command-config "$cfg" --add \
        --allow-principal "$principal" --operation "$op" "$res" "$name" \
        --resource-pattern-type "$(echo "$ptype" | tr '[:upper:]' '[:lower:]')" >/dev/null
    echo "acl: $principal $op $rtype $ptype $name"
done

# 3. Topics.
KAFKA_TOPICS_BIN="$bin/kafka-topics.sh" KAFKA_COMMAND_CONFIG="$cfg" \
    KAFKA_BOOTSTRAP="$bootstrap" sh "$here/create-topics.sh"
