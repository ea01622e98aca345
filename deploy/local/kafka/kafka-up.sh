#!/usr/bin/env bash
# kafka-up.sh: starts a real Apache Kafka cluster (KRaft, no ZooKeeper) on
# loopback: N nodes, each a combined broker and controller, the version
# pinned in pom.xml (fetched through Maven by kafka-fetch.sh on first use).
#
#   kafka-up.sh [--dir DIR] [--nodes N] [--port-base P] [--heap SIZE]
#               [--build BUILD_DIR] [--topic-prefix P] [--partitions N]
#               [--sasl [--user NAME]...] [--no-topics]
#
# It formats each node's storage once with one cluster id, starts the nodes
# (node i: client listener 127.0.0.1:P+i-1, controller 127.0.0.1:P+100+i-1;
# P defaults to 19092), waits until all N brokers are registered, creates the
# contract's topics (deploy/kafka/create-topics.sh --list: names and
# partition counts, with --topic-prefix, default $KAFKA_TOPIC_PREFIX or
# billing.) with replication factor min(N,3) and min.insync.replicas
# min(N,3)-1 (3 and 2 by default), and writes:
#   DIR/bootstrap       the bootstrap address (one line)
#   DIR/env             KAFKA_BROKERS=... (and, with --sasl, the administrator's
#                       KAFKA_SECURITY_PROTOCOL/KAFKA_SASL_* settings), mode 600
#   DIR/node<i>.pid     each node's PID (kafka-down.sh stops them by it)
#   DIR/node<i>/        server.properties, run.sh, data/, server.log
# A node already running (live PID) is left as it is, so a second call
# only waits and creates what is missing.
#
# --sasl: the client listener takes SASL/SCRAM (SCRAM-SHA-256 and -512), the
# controller listener SASL/PLAIN; StandardAuthorizer with super user
# "admin" and no access without an ACL. One SCRAM-SHA-512 user per
# --user NAME (default: ingester scheduler invoicing autopay retry dispute
# billingctl) with a random password, listed as "NAME PASSWORD" in
# DIR/credentials (mode 600), and the ACLs of acls.txt beside this script.
#
# Auto-created topics (tests use prefixes of their own) get --partitions
# (default 6) partitions and the same replication. Heap: --heap (default
# 512m) per node; three nodes fit the 2-core, 24 GiB machine beside the
# rest of the stack. Needs java 17+, mvn and billing-kafka-admin
# (BUILD_DIR/deploy/local); exits 3 when java or mvn is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
dir="$root/.stack/kafka"
nodes=3
port_base=19092
heap=512m
build="$root/build/release"
prefix=${KAFKA_TOPIC_PREFIX:-billing.}
partitions=6
sasl=0
topics=1
users=()
usage() {
  echo "usage: kafka-up.sh [--dir DIR] [--nodes N] [--port-base P] [--heap SIZE] [--build BUILD_DIR]" >&2
  echo "                   [--topic-prefix P] [--partitions N] [--sasl [--user NAME]...] [--no-topics]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --port-base) port_base=$2; shift 2 ;;
    --heap) heap=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --topic-prefix) prefix=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --sasl) sasl=1; shift ;;
    --user) users+=("$2"); shift 2 ;;
    --no-topics) topics=0; shift ;;
    *) usage ;;
  esac
done
number() { case "$2" in ''|*[!0-9]*) echo "kafka-up.sh: $1 must be a number" >&2; exit 2 ;; esac; }
number --nodes "$nodes"
number --port-base "$port_base"
number --partitions "$partitions"
[ "$nodes" -ge 1 ] && [ "$nodes" -le 9 ] || { echo "kafka-up.sh: --nodes must be 1..9" >&2; exit 2; }
[ "$port_base" -ge 1024 ] && [ "$port_base" -le 65000 ] ||
  { echo "kafka-up.sh: --port-base must be between 1024 and 65000" >&2; exit 2; }
case "$heap" in *[!0-9kmgKMG]*|'') echo "kafka-up.sh: --heap must look like 512m" >&2; exit 2 ;; esac
case "$prefix" in *[!A-Za-z0-9._-]*) echo "kafka-up.sh: --topic-prefix may hold only letters, digits, '.', '_' and '-'" >&2; exit 2 ;; esac
[ "${#users[@]}" -gt 0 ] || users=(ingester scheduler invoicing autopay retry dispute notifier billingctl)
for u in "${users[@]}"; do
  case "$u" in ''|*[!A-Za-z0-9_-]*|admin) echo "kafka-up.sh: bad --user '$u'" >&2; exit 2 ;; esac
done
admin="$build/deploy/local/billing-kafka-admin"
[ -x "$admin" ] || { echo "kafka-up.sh: $admin not built (cmake --build $build)" >&2; exit 1; }

rc=0
libs=$("$here/kafka-fetch.sh") || rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
umask 077

rf=$((nodes < 3 ? nodes : 3))
isr=$((rf > 1 ? rf - 1 : 1))
secret() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

# The cluster id, the administrator's password and the users' passwords are
# made once per DIR: a restart reuses the formatted storage.
[ -s "$dir/cluster-id" ] ||
  java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$dir/cluster-id"
cluster_id=$(cat "$dir/cluster-id")
if [ "$sasl" -eq 1 ]; then
  [ -s "$dir/admin-password" ] || secret >"$dir/admin-password"
  adminpw=$(cat "$dir/admin-password")
  touch "$dir/credentials"
  for u in "${users[@]}"; do
    grep -q "^$u " "$dir/credentials" || echo "$u $(secret)" >>"$dir/credentials"
  done
fi

voters=""
bootstrap=""
for i in $(seq 1 "$nodes"); do
  voters="${voters:+$voters,}$i@127.0.0.1:$((port_base + 100 + i - 1))"
  bootstrap="${bootstrap:+$bootstrap,}127.0.0.1:$((port_base + i - 1))"
done

write_config() { # node
  local i=$1 nd="$dir/node$1"
  local client=$((port_base + i - 1)) controller=$((port_base + 100 + i - 1))
  mkdir -p "$nd/data"
  {
    cat <<PROPS
# Written by deploy/local/kafka/kafka-up.sh: node $i of $nodes (combined broker and controller).
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=CLIENT://127.0.0.1:$client,CONTROLLER://127.0.0.1:$controller
advertised.listeners=CLIENT://127.0.0.1:$client
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT
log.dirs=$nd/data
# Sized for a 2-core machine shared with the rest of the stack.
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
log.cleaner.threads=1
offsets.topic.num.partitions=12
offsets.topic.replication.factor=$rf
transaction.state.log.num.partitions=4
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
# Every acks=all write needs two in-sync copies; no unclean election.
default.replication.factor=$rf
min.insync.replicas=$isr
unclean.leader.election.enable=false
# Tests create topics under prefixes of their own; production creates them
# with deploy/kafka/create-topics.sh and turns this off.
auto.create.topics.enable=true
num.partitions=$partitions
group.initial.rebalance.delay.ms=0
log.index.size.max.bytes=1048576
PROPS
    if [ "$sasl" -eq 1 ]; then
      cat <<PROPS
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$adminpw";
listener.name.client.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$adminpw" user_admin="$adminpw";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
PROPS
    else
      echo "listener.security.protocol.map=CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    fi
  } >"$nd/server.properties"
  cat >"$nd/run.sh" <<RUN
#!/bin/sh
# Starts node $i in the foreground (kafka-up.sh and kafka-down.sh --start run it).
exec java -Xms$heap -Xmx$heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \\
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \\
  -Dlog4j.configuration="file:$here/log4j.properties" \\
  -cp "$libs/*" kafka.Kafka "$nd/server.properties"
RUN
  chmod 700 "$nd/run.sh"
}

node_alive() { [ -f "$dir/node$1.pid" ] && kill -0 "$(cat "$dir/node$1.pid")" 2>/dev/null; }

started=0
for i in $(seq 1 "$nodes"); do
  node_alive "$i" && continue
  write_config "$i"
  if [ ! -f "$dir/node$i/data/meta.properties" ]; then
    scram=()
    if [ "$sasl" -eq 1 ]; then
      scram+=(--add-scram "SCRAM-SHA-512=[name=admin,password=$adminpw]")
      while read -r u pw; do
        scram+=(--add-scram "SCRAM-SHA-512=[name=$u,password=$pw]")
      done <"$dir/credentials"
    fi
    java -cp "$libs/*" -Dlog4j.configuration="file:$here/log4j.properties" \
      kafka.tools.StorageTool format --config "$dir/node$i/server.properties" \
      --cluster-id "$cluster_id" --ignore-formatted "${scram[@]}" >"$dir/node$i/format.log" 2>&1 ||
      { cat "$dir/node$i/format.log" >&2; echo "kafka-up.sh: cannot format node $i" >&2; exit 1; }
  fi
  nohup "$dir/node$i/run.sh" >>"$dir/node$i/server.log" 2>&1 </dev/null &
  echo $! >"$dir/node$i.pid"
  started=$((started + 1))
done
echo "$nodes" >"$dir/nodes"
printf '%s\n' "$bootstrap" >"$dir/bootstrap.tmp" && mv "$dir/bootstrap.tmp" "$dir/bootstrap"
{
  echo "KAFKA_BROKERS=$bootstrap"
  if [ "$sasl" -eq 1 ]; then
    echo "KAFKA_SECURITY_PROTOCOL=sasl_plaintext"
    echo "KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
    echo "KAFKA_SASL_USERNAME=admin"
    echo "KAFKA_SASL_PASSWORD=$adminpw"
  fi
} >"$dir/env"

# Every later step runs as the administrator.
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
export LOG_LEVEL=error
if ! "$admin" wait --nodes "$nodes" --timeout-s 180; then
  for i in $(seq 1 "$nodes"); do
    node_alive "$i" || { echo "kafka-up.sh: node $i exited; its log:" >&2; tail -n 30 "$dir/node$i/server.log" >&2; }
  done
  exit 1
fi
if [ "$topics" -eq 1 ]; then
  specs=()
  while read -r name count; do
    specs+=("$prefix$name:$count")
  done < <("$root/deploy/kafka/create-topics.sh" --list)
  "$admin" create-topics --replication-factor "$rf" --min-insync-replicas "$isr" "${specs[@]}" >/dev/null
fi
if [ "$sasl" -eq 1 ]; then
  sed "s/\${PREFIX}/$prefix/g" "$here/acls.txt" >"$dir/acls"
  "$admin" create-acls "$dir/acls" >/dev/null
fi
echo "kafka-up.sh: $nodes nodes ($started started) at $bootstrap, replication factor $rf, min.insync.replicas $isr${sasl:+}" >&2
