#!/usr/bin/env bash
# How often the gate cries wolf, and how often it catches a real slowdown,
# measured on the lab with runs of one build (the lab must be up: `rehearse
# lab up`). Uses a scratch database, rehearse_gate_noise, seeded with
# $ORGS organizations (partitioned).
#  1. $RUNS runs of scenarios/gate_noise.toml (default 6 x 40 s); every pair
#     gated against each other at the CLI's defaults: false alarms per
#     percentile (each pair counted once, the later run as the candidate).
#  2. $SLOW runs each with 10% and 20% added to every request (the delay is
#     that share of the A/A runs' median p50 of the dashboard), each gated
#     against three different 3-run baselines made of the A/A runs: the
#     share of pairs caught at p50, per operation.
# Prints the counts and exits 0; it measures, it does not judge.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${R:-target/release/rehearse}
[ -x "$R" ] || cargo build --release --locked
RUNS=${RUNS:-6}
SLOW=${SLOW:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-40s}
ORGS=${ORGS:-2000}
PRIMARY=$($R lab env | sed -n "s/^export REHEARSE_PRIMARY_URL='\(.*\)'$/\1/p")
[ -n "$PRIMARY" ] || { echo "bench-gate-noise: no lab; run \`$R lab up\` first" >&2; exit 4; }
DB=rehearse_gate_noise
BASE="${PRIMARY%/*}"
URL="$BASE/$DB"
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
E=($R --primary-url "$URL" --lab-dir "$out/no-lab")
"${E[@]}" seed --profile smoke --orgs "$ORGS" --mode partitioned --allow-destructive "$DB" >/dev/null
echo "== $RUNS runs of the same build, $SECONDS_PER_RUN each =="
for i in $(seq 1 "$RUNS"); do
  "${E[@]}" run scenarios/gate_noise.toml --duration "$SECONDS_PER_RUN" --out "$out/aa/$i" -q >/dev/null || true
done
p50=$(python3 - "$out/aa" <<'PY'
import json, os, statistics, sys
d = sys.argv[1]
v = [json.load(open(os.path.join(d, r, "run.json")))["variants"][0]["operations"][0]["response"]["p50_ms"] for r in sorted(os.listdir(d))]
print(statistics.median(v))
PY
)
echo "median dashboard p50 of the A/A runs: $p50 ms"
gate() { # gate RUN BASELINE... -> prints the gate's Markdown; exit code ignored
  local run=$1; shift
  local args=()
  for b in "$@"; do args+=(--baseline "$b"); done
  "${E[@]}" gate "$run" "${args[@]}" || true
}
count() { # count PATTERN FILE...
  python3 - "$@" <<'PY'
import re, sys
pat, files = sys.argv[1], sys.argv[2:]
n = sum(1 for f in files if re.search(pat, open(f).read(), re.M))
print(n)
PY
}
mkdir -p "$out/gates"
pairs=0
for i in $(seq 1 "$RUNS"); do
  for j in $(seq $((i + 1)) "$RUNS"); do
    gate "$out/aa/$j" "$out/aa/$i" > "$out/gates/aa-$i-$j.md"
    pairs=$((pairs + 1))
  done
done
echo "A/A: $pairs pairs of single runs"
for m in p50 p95 p99; do
  echo "  false alarms at $m (any operation): $(count "^\| \*\*FAIL\*\* \| compare\.[^|]*\| $m \|" "$out"/gates/aa-*.md) of $pairs"
done
# Three 3-run baselines from the A/A runs.
mkdir -p "$out/baselines"
for set in "1 2 3" "4 5 6" "1 3 5"; do
  name=b$(echo "$set" | tr -d ' ')
  for k in $set; do
    "${E[@]}" baseline save "$out/aa/$k" "$name" --add --root "$out/baselines" >/dev/null
  done
done
for pct in 10 20; do
  delay_us=$(python3 -c "print(int(round($p50 * 1000 * $pct / 100)))")
  echo "== +$pct%: ${delay_us}us added to every request, $SLOW runs, each against 3 baselines of 3 runs =="
  for i in $(seq 1 "$SLOW"); do
    "${E[@]}" run scenarios/gate_noise.toml --duration "$SECONDS_PER_RUN" --inject-delay "${delay_us}us" --out "$out/slow$pct/$i" -q >/dev/null || true
    for b in "$out"/baselines/b*; do
      gate "$out/slow$pct/$i" "$b" > "$out/gates/slow$pct-$i-$(basename "$b").md"
    done
  done
  n=$(ls "$out"/gates/slow$pct-*.md | wc -l)
  for op in dashboard pnl ledger; do
    echo "  caught at p50, $op: $(count "^\| \*\*FAIL\*\* \| compare\.partitioned\.$op \| p50 \|" "$out"/gates/slow$pct-*.md) of $n"
  done
  echo "  improvements claimed: $(count "improvement:" "$out"/gates/slow$pct-*.md) of $n gates"
done
"${PSQL[@]}" "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
echo "runs and gate summaries kept in $out"
