#!/usr/bin/env bash
# The main job on a fresh machine: bootstrap, bring the embedded lab up, seed
# the estate (full profile, both modes, unless PROFILE says otherwise), run the
# scenario suite on legacy and partitioned (replica and cache on), print the
# side-by-side summary, and show the lab.
#
# Exits with the runs' exit code: 0 every budget met, 1 a budget missed,
# 3 a run was not valid (see README, "Exit codes").
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-full}"
SUITE=(
  scenarios/finance_day.toml
  scenarios/reporting_day.toml
  scenarios/mixed_peak.toml
  scenarios/month_end_close.toml
  scenarios/dashboard_storm.toml
)
bash ci/bootstrap.sh
cargo build --release --locked
R=target/release/rehearse
$R lab up
$R seed --profile "$PROFILE" --mode both
out="results/rehearsal-$(date -u +%Y%m%dT%H%M%S)"
set +e
$R run "${SUITE[@]}" ${DURATION:+--duration "$DURATION"} --out "$out"
code=$?
set -e
$R lab status
echo "rehearsal: results in $out (exit $code)"
exit $code
