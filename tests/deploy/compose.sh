#!/usr/bin/env bash
# compose.sh: docker-compose.yml is valid (Debian's docker-compose `config
# -q`, with .env.example standing in for the uncommitted .env) and has the
# production shape: three Kafka nodes in KRaft mode (replication factor 3,
# min.insync.replicas 2, SASL/SCRAM with one principal per process kind and
# the ACLs of deploy/local/kafka/acls.txt), PostgreSQL, a migration and a
# Kafka provisioning one-shot, the ingester with a published port, the scheduler
# and one scalable service per worker kind, health checks on every
# long-running service, a memory limit on every service, the ingester's
# /metrics on an unpublished admin listener; least privilege (no
# capabilities, no privilege gain, read-only root file systems, one database
# role per kind of process, the ingester without database or Stripe key and
# on a network that reaches only Kafka besides its public port);
# the topics it provisions are exactly the contract's, and .env is ignored
# by git.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
command -v docker-compose >/dev/null ||
  { echo "FAIL: docker-compose not installed (deploy/local/deps.sh installs it)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
docker-compose --env-file .env.example -f docker-compose.yml config -q
echo "docker-compose config -q: valid"
# Without the env file the secrets are refused, naming the variable.
: >"$tmp/empty.env"
if out=$(env -i PATH="$PATH" docker-compose --env-file "$tmp/empty.env" -f docker-compose.yml config -q 2>&1); then
  echo "FAIL: config accepted without the secrets of .env" >&2; exit 1
fi
grep -Eq "set [A-Z_]+ in .env" <<<"$out" || { echo "FAIL: missing secret not named: $out" >&2; exit 1; }
docker-compose --env-file .env.example -f docker-compose.yml config >"$tmp/config.yml"
deploy/kafka/create-topics.sh --list >"$tmp/provisioned"

python3 - "$tmp/config.yml" "$tmp/provisioned" <<'PY'
import re, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
svc = cfg["services"]
raw = yaml.safe_load(open("docker-compose.yml"))["services"]  # before interpolation
def nets(s):
    return sorted(s.get("networks") or [])
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

workers = ["billing-invoicing-worker", "billing-autopay-worker", "billing-retry-worker",
           "billing-dispute-worker", "billing-notifier"]
nodes = ["kafka-1", "kafka-2", "kafka-3"]
long_running = nodes + ["postgres", "billing-ingester", "billing-scheduler"] + workers
for name in long_running + ["migrate", "kafka-setup"]:
    check(name in svc, f"service {name} missing")
if errors:
    print("\n".join("FAIL: " + e for e in errors)); sys.exit(1)

# Kafka: three combined KRaft nodes, one quorum, RF 3, min.insync 2, SASL
# everywhere, StandardAuthorizer without access for the unlisted.
ids = set()
for name in nodes:
    k = svc[name]
    check(k["image"].startswith("apache/kafka:"), f"{name} must use the official apache/kafka image")
    kenv = {key: str(v) for key, v in k["environment"].items()}
    check(kenv.get("KAFKA_PROCESS_ROLES") == "broker,controller", f"{name}: combined KRaft node")
    ids.add(kenv.get("KAFKA_NODE_ID"))
    check(kenv.get("KAFKA_CONTROLLER_QUORUM_VOTERS") ==
          "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093", f"{name}: the three voters")
    check(kenv.get("KAFKA_DEFAULT_REPLICATION_FACTOR") == "3", f"{name}: replication factor 3")
    check(kenv.get("KAFKA_MIN_INSYNC_REPLICAS") == "2", f"{name}: min.insync.replicas 2")
    check(kenv.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR") == "3", f"{name}: offsets topic RF 3")
    check(kenv.get("KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE") == "false", f"{name}: no unclean election")
    check(kenv.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", f"{name}: no auto-created topics")
    protos = dict(x.split(":") for x in kenv.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "").split(","))
    check(protos and all(v == "SASL_PLAINTEXT" for v in protos.values()),
          f"{name}: every listener authenticates (SASL)")
    check(kenv.get("KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS") == "SCRAM-SHA-512",
          f"{name}: clients use SCRAM-SHA-512")
    check(kenv.get("KAFKA_AUTHORIZER_CLASS_NAME") ==
          "org.apache.kafka.metadata.authorizer.StandardAuthorizer", f"{name}: StandardAuthorizer")
    check(kenv.get("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND") == "false", f"{name}: deny without ACL")
    check(kenv.get("KAFKA_SUPER_USERS") == "User:admin", f"{name}: admin the only super user")
    check(nets(k) == ["kafka"], f"{name}: only on the kafka network")
check(ids == {"1", "2", "3"}, f"node ids {sorted(ids)}")
check(cfg["networks"]["kafka"].get("internal") is True, "the kafka network must be internal")
check(cfg["networks"]["db"].get("internal") is True, "the db network must be internal")
ks = svc["kafka-setup"]
check("provision.sh" in " ".join(ks.get("entrypoint", []) + (ks.get("command") or [])),
      "kafka-setup runs deploy/kafka/provision.sh")
check(any(str(v).endswith("deploy/kafka:/provision:ro") for v in ks.get("volumes", [])),
      "kafka-setup mounts deploy/kafka")
check(any(str(v).endswith("deploy/local/kafka/acls.txt:/provision/acls.txt:ro")
          for v in ks.get("volumes", [])), "kafka-setup mounts acls.txt")
check(str(ks["environment"].get("KAFKA_REPLICATION_FACTOR")) == "3" and
      str(ks["environment"].get("KAFKA_MIN_INSYNC_REPLICAS")) == "2",
      "kafka-setup creates topics with RF 3 and min.insync 2")
# One principal per process kind, each its own password; only the ingester
# on the ingress network, and it on nothing but kafka and ingress.
principals = {"billing-ingester": "ingester", "billing-scheduler": "scheduler",
              "billing-invoicing-worker": "invoicing", "billing-autopay-worker": "autopay",
              "billing-retry-worker": "retry", "billing-dispute-worker": "dispute",
              "billing-notifier": "notifier", "billingctl": "billingctl"}
acl_users = set(re.findall(r"^User:([a-z]+) ", open("deploy/local/kafka/acls.txt").read(), re.M))
passwords = set()
for name, user in principals.items():
    env = svc[name]["environment"]
    check(env.get("KAFKA_SECURITY_PROTOCOL") == "sasl_plaintext" and
          env.get("KAFKA_SASL_MECHANISM") == "SCRAM-SHA-512", f"{name}: SASL/SCRAM client")
    check(env.get("KAFKA_SASL_USERNAME") == user, f"{name}: principal {user}")
    check(user in acl_users, f"{name}: principal {user} has no ACL in acls.txt")
    passwords.add(raw[name]["environment"].get("KAFKA_SASL_PASSWORD"))
    check(len(env.get("KAFKA_BROKERS", "").split(",")) == 3, f"{name}: the three brokers")
check(len(passwords) == len(principals), "every principal needs its own password variable")
# kafka-setup creates every principal the services use, each from its own
# variable (a principal missing there could not log in).
prov = open("deploy/kafka/provision.sh").read()
kinds = set(re.search(r"^for kind in ([a-z ]+); do", prov, re.M).group(1).split())
check(set(principals.values()) <= kinds, f"provision.sh creates {sorted(kinds)}, not every principal")
for user in principals.values():
    check(f"LL_KAFKA_PASSWORD_{user.upper()}" in svc["kafka-setup"]["environment"],
          f"kafka-setup has no LL_KAFKA_PASSWORD_{user.upper()}")
check(nets(svc["billing-ingester"]) == ["ingress", "kafka"],
      "the ingester is on kafka and ingress only")
for name, s in svc.items():
    if name != "billing-ingester":
        check("ingress" not in nets(s), f"{name} is on the ingester's ingress network")
check(svc["postgres"]["image"].startswith("postgres:"), "postgres must use the official image")
check(svc["migrate"]["command"] == ["billingctl", "db", "migrate"], "migrate runs billingctl db migrate")
check(str(svc["migrate"].get("restart")) == "no", "migrate is one-shot")
check(any(str(p).endswith(":8080") or p.get("target") == 8080 if isinstance(p, dict) else str(p).endswith(":8080")
          for p in svc["billing-ingester"].get("ports", [])), "ingester port published")
for name in long_running:
    check("healthcheck" in svc[name], f"{name} has no health check")
for name in workers + ["billing-scheduler"]:
    s = svc[name]
    check("container_name" not in s, f"{name} has a container_name: it could not --scale")
    check(not s.get("ports"), f"{name} publishes a port: it could not --scale")
    check(s["command"] == [name], f"{name} runs its own binary")
    check("WORKER_HTTP_LISTEN" in s["environment"], f"{name} has no WORKER_HTTP_LISTEN")
    hc = s["healthcheck"]["test"]
    check(hc[:4] == ["CMD", "billingctl", "health", "check"] and
          hc[4].endswith(":" + s["environment"]["WORKER_HTTP_LISTEN"].split(":")[-1] + "/readyz"),
          f"{name} health check must call its WORKER_HTTP_LISTEN /readyz")
    deps = s.get("depends_on", {})
    check(deps.get("migrate", {}).get("condition") == "service_completed_successfully",
          f"{name} must wait for the migration")
for name in ["billing-autopay-worker", "billing-retry-worker", "billing-dispute-worker"]:
    check("STRIPE_SECRET_KEY" in svc[name]["environment"], f"{name} needs STRIPE_SECRET_KEY")
check("STRIPE_WEBHOOK_SECRET" in svc["billing-ingester"]["environment"], "ingester needs STRIPE_WEBHOOK_SECRET")
# The notifier: its SMTP settings from .env, no Stripe secret, and the only
# service on smtp-egress (which is not internal: it reaches the relay).
ntf = svc["billing-notifier"]["environment"]
for v in ("SMTP_URL", "SMTP_FROM", "SMTP_USERNAME", "SMTP_PASSWORD"):
    check(v in ntf and "${" + v in str(raw["billing-notifier"]["environment"].get(v)),
          f"billing-notifier needs {v} from .env")
check("STRIPE_SECRET_KEY" not in ntf and "STRIPE_WEBHOOK_SECRET" not in ntf,
      "billing-notifier must hold no Stripe secret")
check(nets(svc["billing-notifier"]) == ["db", "kafka", "smtp-egress"],
      "billing-notifier is on kafka, db and smtp-egress only")
check(not cfg["networks"].get("smtp-egress", {}).get("internal"), "smtp-egress must reach out")
for name, s in svc.items():
    if name != "billing-notifier":
        check("smtp-egress" not in nets(s), f"{name} is on the notifier's smtp-egress network")
# Every service has a memory limit (issue 18); the ingester's metrics and
# its health check are on its admin listener, which is not published.
for name, s in svc.items():
    lim = s.get("mem_limit") or s.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
    check(lim, f"{name} has no memory limit (mem_limit)")
ing = svc["billing-ingester"]
admin = str(ing["environment"].get("INGESTER_ADMIN_LISTEN", ""))
check(admin.count(":") == 1, "ingester needs INGESTER_ADMIN_LISTEN (its /metrics)")
admin_port = admin.split(":")[-1]
check(ing["healthcheck"]["test"][-1] == f"http://127.0.0.1:{admin_port}/readyz",
      "ingester health check must call its admin listener's /readyz")
check(not any(str(p.get("target") if isinstance(p, dict) else p).split(":")[-1] == admin_port
              for p in ing.get("ports", [])), "ingester's admin listener must not be published")

# Least privilege (docs/DESIGN.md "Trust model"): every container drops
# every capability it does not need and cannot gain privileges; ours run on
# a read-only root file system with a tmpfs for /tmp.
ours = [n for n, v in svc.items() if str(v.get("image", "")).startswith("ledgerline")]
check(set(workers + ["billing-ingester", "billing-scheduler", "migrate"]) <= set(ours),
      "the billing services must run the ledgerline image")
for name, s in svc.items():
    check("no-new-privileges:true" in s.get("security_opt", []), f"{name}: no-new-privileges")
    check(s.get("cap_drop") == ["ALL"], f"{name}: cap_drop [ALL]")
for name in ours:
    s = svc[name]
    check(s.get("read_only") is True, f"{name}: read_only")
    check(any(str(t).startswith("/tmp") for t in s.get("tmpfs", [])), f"{name}: tmpfs on /tmp")
    check(not s.get("cap_add"), f"{name}: adds capabilities")
# Database roles: the migration as billing_owner, the scheduler and the
# workers as billing_worker, billingctl as billing_operator; the ingester
# holds neither a database URL nor the Stripe API key; only db-roles holds
# the superuser's password.
def db_user(name):
    url = str(svc[name].get("environment", {}).get("DATABASE_URL", ""))
    m = re.match(r"postgresql://([^:@/]+)[:@]", url)
    return m.group(1) if m else None
check(db_user("migrate") == "billing_owner", "migrate must connect as billing_owner")
for name in workers + ["billing-scheduler"]:
    check(db_user(name) == "billing_worker", f"{name} must connect as billing_worker, not {db_user(name)}")
check("billingctl" in svc and db_user("billingctl") == "billing_operator",
      "the billingctl tool service must connect as billing_operator")
ing = svc["billing-ingester"].get("environment", {})
check("DATABASE_URL" not in ing and "STRIPE_SECRET_KEY" not in ing,
      "the ingester must get neither DATABASE_URL nor STRIPE_SECRET_KEY")
check("db-roles" in svc and svc["migrate"]["depends_on"].get("db-roles", {}).get("condition")
      == "service_completed_successfully", "migrate must wait for db-roles")
for name, s in svc.items():
    env = s.get("environment", {})
    if name not in ("postgres", "db-roles"):
        check(not any(k in env for k in ("POSTGRES_PASSWORD", "PGPASSWORD")),
              f"{name} holds the superuser's password")

# The provisioned topics are exactly the contract's (CONTRACT.md table, and
# the code's list in include/ledgerline/topics.h), each with partitions.
provisioned = {}
for line in open(sys.argv[2]):
    name, parts = line.split()
    provisioned[name] = int(parts)
contract = open("../shared/spec/CONTRACT.md").read()
section = contract.split("## Topics and messages", 1)[1].split("\n\n", 2)[1]
spec = set()
for row in section.splitlines():
    cell = row.split("|")[1] if row.startswith("|") else ""
    spec.update(re.findall(r"`([a-z.]+)`", cell))
# Tick topics the contract adds outside the table ("Documents and delivery":
# "the scheduler also publishes `ticks.reminders`").
spec.update(re.findall(r"`(ticks\.[a-z]+)`", contract))
code = set(re.findall(r'#define TOPIC_[A-Z_]+ "([a-z.]+)"', open("include/ledgerline/topics.h").read()))
code.discard("billing.")
check(spec, "no topics found in CONTRACT.md")
check(set(provisioned) == spec, f"provisioned {sorted(provisioned)} != contract {sorted(spec)}")
check(set(provisioned) == code, f"provisioned {sorted(provisioned)} != topics.h {sorted(code)}")
check(all(p >= 1 for p in provisioned.values()), "every topic needs at least one partition")
if errors:
    print("\n".join("FAIL: " + e for e in errors)); sys.exit(1)
print(f"compose shape ok; topics provisioned: {', '.join(f'{k}({v})' for k, v in provisioned.items())}")
PY

if command -v git >/dev/null && git -C "$root" rev-parse >/dev/null 2>&1; then
  git -C "$root" check-ignore -q .env || { echo "FAIL: .env is not ignored by git" >&2; exit 1; }
fi
echo "compose: 1 passed, 0 failed"
