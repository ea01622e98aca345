#!/usr/bin/env bash
# dashboard.sh: deploy/grafana/billing.json is a valid Grafana dashboard that
# shows every metric the issue asks for, and docs/OPERATIONS.md documents
# those and every metric family the code declares (metrics_declare calls in
# common/ and workers/), so a new metric cannot go undocumented.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
required="billing_messages_total billing_message_processing_seconds billing_dlq_messages_total
billing_consumer_lag billing_invoices_generated_total billing_stripe_requests_total
billing_stripe_request_seconds billing_charges_total billing_payment_failures_total
billing_disputes_total billing_refunds_total ingester_http_requests_total
ingester_events_published_total ingester_signature_failures_total
ingester_publish_failures_total ingester_publish_duration_seconds"
declared=$(grep -rhoE 'metrics_declare\([^,]+, *"[a-zA-Z_:][a-zA-Z0-9_:]*"' common workers |
  sed -E 's/.*"([^"]+)"$/\1/' | sort -u)
python3 - deploy/grafana/billing.json docs/OPERATIONS.md "$required" "$declared" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
doc = open(sys.argv[2]).read()
required, declared = sys.argv[3].split(), sys.argv[4].split()
exprs = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
errors = []
if not dash.get("title") or not dash.get("uid") or not dash["panels"]:
    errors.append("dashboard needs a title, a uid and panels")
ids = [p["id"] for p in dash["panels"]]
if len(ids) != len(set(ids)):
    errors.append("panel ids repeat")
for m in required:
    if m not in exprs:
        errors.append(f"dashboard does not show {m}")
for m in sorted(set(required) | set(declared)):
    if f"`{m}`" not in doc:
        errors.append(f"docs/OPERATIONS.md does not document {m}")
if errors:
    print("\n".join("FAIL: " + e for e in errors)); sys.exit(1)
print(f"dashboard: {len(dash['panels'])} panels; {len(set(required) | set(declared))} metrics documented")
PY
echo "dashboard: 1 passed, 0 failed"
