#!/usr/bin/env bash
# Regenerates the charts the book (docs/src) shows, from real runs, so they stay true:
#   docs/src/spectrum-dashboard.png  the dashboard's percentile spectrum with its
#                                p99 budget (dashboard_storm, cache on and off)
#   docs/src/drill-timeline.png      record_revenue's latency through a cutover
#                                drill, its steps marked
#   docs/src/drill-steps.png         the workload's p99 during each drill step
# It starts a lab of its own (.rehearse/docs-lab, ports from 55420), seeds the
# smoke profile, runs, reports, copies the PNGs and removes the lab.
# Takes about five minutes. Run it after changing how charts are drawn.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/bootstrap.sh
cargo build --release --locked
R="$PWD/target/release/rehearse"
LAB="$PWD/.rehearse/docs-lab"
work="$(mktemp -d)"
cleanup() { "$R" --lab-dir "$LAB" lab down --purge >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
"$R" --lab-dir "$LAB" lab up --port-base "${PORT_BASE:-55420}"
eval "$("$R" --lab-dir "$LAB" lab env)"
"$R" seed --profile smoke --mode both
"$R" run -q scenarios/dashboard_storm.toml --out "$work/suite" || true
"$R" report "$work/suite"

CDB=rehearse_cutover
psql -X -q "$REHEARSE_PRIMARY_URL" -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS $CDB WITH (FORCE)" -c "CREATE DATABASE $CDB"
C=(--primary-url "${REHEARSE_PRIMARY_URL%/*}/$CDB" --replica-url "${REHEARSE_REPLICA_URL%/*}/$CDB"
   --redis-url "${REHEARSE_REDIS_URL%/}/1")
"$R" "${C[@]}" seed --profile smoke --mode legacy --allow-destructive "$CDB"
"$R" "${C[@]}" cutover drill --under scenarios/cutover_mixed.toml --soak 20s --out "$work/cutover"
"$R" report "$work/cutover"

mkdir -p docs
cp "$work/suite/charts/spectrum-dashboard.png" docs/src/spectrum-dashboard.png
cp "$work/cutover/charts/timeline-record_revenue.png" docs/src/drill-timeline.png
cp "$work/cutover/charts/drill-steps.png" docs/src/drill-steps.png
echo "docs-charts: wrote docs/src/spectrum-dashboard.png, docs/src/drill-timeline.png, docs/src/drill-steps.png"
