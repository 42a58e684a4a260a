#!/usr/bin/env bash
# An example CI step for teams to copy: a short rehearsal on the embedded lab,
# gated against a committed baseline, with the summary and report published.
#
#   SCENARIO  scenario to run            [scenarios/reporting_day.toml]
#   DURATION  per variant                [60s: enough samples to gate p95]
#   BUDGETS   budgets file for the gate  [ci/budgets-example.toml]
#   BASELINE  baseline run directory     [results/baselines/ci]; absent: budgets only
#
# Exit code: the gate's (0 pass, 1 fail, 3 invalid). To (re)make the baseline
# from a run you trust: target/release/rehearse baseline save <run-dir> ci --force
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${SCENARIO:-scenarios/reporting_day.toml}
DURATION=${DURATION:-60s}
BUDGETS=${BUDGETS:-ci/budgets-example.toml}
BASELINE=${BASELINE:-results/baselines/ci}
bash ci/bootstrap.sh
cargo build --release --locked
R=target/release/rehearse
$R lab up
$R seed --profile ci --mode both
out="results/ci-$(date -u +%Y%m%dT%H%M%S)"
# The run's own exit code is informational here; the gate decides.
$R run -q "$SCENARIO" --duration "$DURATION" --out "$out" || true
$R report "$out"
args=(--budgets "$BUDGETS" --junit "$out/junit.xml" --summary "$out/gate.md")
[ -d "$BASELINE" ] && args+=(--baseline "$BASELINE")
set +e
$R gate "$out" "${args[@]}"
code=$?
set -e
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$out/gate.md" "$out/summary.md" >> "$GITHUB_STEP_SUMMARY"
fi
echo "gate: exit $code; report: $out/report.html; JUnit: $out/junit.xml"
exit $code
