#!/usr/bin/env bash
# An example CI step for teams to copy: the branch's build against its base
# build by sequential `rehearse ab` on the embedded lab (the builds
# interleaved, so the machine's drift moves both), and the branch's own run
# checked against the scenario's budgets; summaries and reports published.
#
#   SCENARIO    scenario to rehearse                 [scenarios/reporting_day.toml]
#   BASE_REF    git ref of the base build            [origin/main, else main]
#   MIN_EFFECT  the smallest change that matters     [10%]
#   AB_BUDGET   wall-clock bound of the ab           [10m]
#   AB_METRICS  the figures ab judges                [p50,p95]
#   DURATION    the budget run, per variant          [60s: enough samples to judge p95]
#   BUDGETS     budgets file, instead of the scenario's own [ci/budgets-example.toml]
#   BASELINE    a kept baseline to gate the budget run against too (long-term
#               trends, not build against build)      [none]
#
# Why ab and not a baseline: on a shared machine two runs of one build drift
# further apart than the change a team wants to catch; ab pairs slices that
# ran side by side and keeps adding rounds until it can decide (see
# docs/src/comparing-builds.md). Budgets are absolute, so one run judges them.
#
# Exit code: the worse of the two (0 pass, 1 B regressed or a budget missed,
# 3 unknown: undecided, invalid or not judged; never a pass).
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${SCENARIO:-scenarios/reporting_day.toml}
MIN_EFFECT=${MIN_EFFECT:-10%}
AB_BUDGET=${AB_BUDGET:-10m}
AB_METRICS=${AB_METRICS:-p50,p95}
DURATION=${DURATION:-60s}
BUDGETS=${BUDGETS-ci/budgets-example.toml}
if [ -z "${BASE_REF:-}" ]; then
  BASE_REF=origin/main
  git rev-parse -q --verify "$BASE_REF^{commit}" >/dev/null || BASE_REF=main
fi
git rev-parse -q --verify "$BASE_REF^{commit}" >/dev/null || {
  echo "gate-example: BASE_REF=$BASE_REF is not a commit here (fetch it: actions/checkout with fetch-depth: 0)" >&2
  exit 2
}
bash ci/bootstrap.sh
out="results/ci-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$out/bin"
# The base build, from a worktree, in the same target directory (what the
# two share is compiled once); its binary copied out before the head's.
base_tree=$(mktemp -d)
git worktree add --detach "$base_tree" "$BASE_REF" >/dev/null
trap 'git worktree remove --force "$base_tree" >/dev/null 2>&1 || true' EXIT
(cd "$base_tree" && cargo build --release --locked --target-dir "$OLDPWD/target")
cp target/release/rehearse "$out/bin/rehearse-base"
cargo build --release --locked
cp target/release/rehearse "$out/bin/rehearse-head"
R=$out/bin/rehearse-head
$R lab up
$R seed --profile ci --mode both
set +e
$R ab "$SCENARIO" --a "$out/bin/rehearse-base" --b "$R" --min-effect "$MIN_EFFECT" \
  --budget "$AB_BUDGET" --metrics "$AB_METRICS" --out "$out/ab" > "$out/ab.txt"
ab=$?
set -e
cat "$out/ab.txt"
$R report "$out/ab" || true
# The budgets: one run of the head, judged by the gate.
run="$out/run"
$R run -q "$SCENARIO" --duration "$DURATION" --out "$run" || true
$R report "$run" || true
args=(--junit "$run/junit.xml" --summary "$run/gate.md")
[ -n "${BUDGETS:-}" ] && args+=(--budgets "$BUDGETS")
[ -n "${BASELINE:-}" ] && args+=(--baseline "$BASELINE")
set +e
$R gate "$run" "${args[@]}"
gate=$?
set -e
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  {
    echo "## $BASE_REF against this branch: \`rehearse ab\`, exit $ab"
    echo '```'
    cat "$out/ab.txt"
    echo '```'
    cat "$run/gate.md" "$run/summary.md"
  } >> "$GITHUB_STEP_SUMMARY"
fi
code=$(( ab > gate ? ab : gate ))
echo "ab: exit $ab ($out/ab/report.html); budgets: exit $gate ($run/report.html, JUnit $run/junit.xml); exit $code"
exit $code
