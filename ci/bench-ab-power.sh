#!/usr/bin/env bash
# The error rates of sequential `rehearse ab` on this machine: how often an
# A/A (one build on both sides) is called DIFFERENT, and how often a build
# made +5% and +10% slower is caught. The lab must be up (`rehearse lab up`).
# Uses a scratch database, rehearse_ab_power, seeded with $ORGS organizations
# (partitioned), and scenarios/gate_noise.toml.
#
#   N           abs of each kind                          [20]
#   KINDS       which kinds, of aa, 5, 10                  [aa 10 5]
#   BUDGET      each ab's --budget                         [10m]
#   MIN_EFFECT  each ab's --min-effect                     [10%]
#   METRICS     each ab's --metrics                        [p50]
#   SLICE       each ab's --slice                          [20s]
#   WARMUP      each ab's --warmup                         [the scenario's, 5s]
#   MAX_ROUNDS  each ab's --max-rounds                     [200: the budget bounds it]
#   MIN_ABS     each ab's --min-abs-ms                     [0: the injected
#               delays are a few tens of microseconds, below the CLI's 0.05 ms]
#   DUET        1: each ab with --duet (A and B at once, half the rate each) [0]
#   OUT         where the abs are kept                     [a new temporary directory]
#
# The injected delay is that share of the median dashboard p50 of one
# calibration run, added to every request of B by a wrapper binary
# (`--inject-delay`). Prints, per kind, the decisions (DIFFERENT, SAME,
# UNKNOWN) with a 95% Clopper-Pearson interval, the rounds and the wall time
# each ab took; exits 0: it measures, it does not judge. Nothing else should
# run on the machine meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${R:-target/release/rehearse}
[ -x "$R" ] || cargo build --release --locked
R=$(realpath "$R")
N=${N:-20}
KINDS=${KINDS:-aa 10 5}
BUDGET=${BUDGET:-10m}
MIN_EFFECT=${MIN_EFFECT:-10%}
METRICS=${METRICS:-p50}
SLICE=${SLICE:-20s}
MIN_ABS=${MIN_ABS:-0}
DUET=${DUET:-0}
WARMUP=${WARMUP:-}
warmup=()
[ -n "$WARMUP" ] && warmup=(--warmup "$WARMUP")
MAX_ROUNDS=${MAX_ROUNDS:-200}
duet=()
[ "$DUET" = 1 ] && duet=(--duet)
ORGS=${ORGS:-2000}
PRIMARY=$($R lab env | sed -n "s/^export REHEARSE_PRIMARY_URL='\(.*\)'$/\1/p")
[ -n "$PRIMARY" ] || { echo "bench-ab-power: no lab; run \`$R lab up\` first" >&2; exit 4; }
DB=rehearse_ab_power
BASE="${PRIMARY%/*}"
URL="$BASE/$DB"
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
out=$(realpath "$out")
E=("$R" --primary-url "$URL" --lab-dir "$out/no-lab")
"${E[@]}" seed --profile smoke --orgs "$ORGS" --mode partitioned --allow-destructive "$DB" >/dev/null
# Calibrate as B will run: a duet's side runs at half the scenario's rate, and
# on this machine a lower rate has a higher p50 (a +10% of the full rate's p50
# was +7% of a duet side's on 2026-12-06).
rate=()
[ "$DUET" = 1 ] && rate=(--rate "$(python3 -c "import sys, tomllib; s = tomllib.load(open(sys.argv[1], 'rb')); print(max(p['rate'] for p in s['phase'] if 'rate' in p) / 2)" scenarios/gate_noise.toml)")
"${E[@]}" run scenarios/gate_noise.toml --duration "$SLICE" "${warmup[@]}" "${rate[@]}" --out "$out/calibration" -q >/dev/null || true
p50=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['variants'][0]['operations'][0]['response']['p50_ms'])" "$out/calibration/run.json")
echo "bench-ab-power: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores"
echo "calibration: dashboard p50 $p50 ms${rate[*]:+ at ${rate[1]}/s}; each ab: --budget $BUDGET --max-rounds $MAX_ROUNDS --min-effect $MIN_EFFECT --metrics $METRICS --slice $SLICE ${warmup[*]} --min-abs-ms $MIN_ABS ${duet[*]}"
for kind in $KINDS; do
  b="$R"
  if [ "$kind" != aa ]; then
    delay_us=$(python3 -c "print(int(round($p50 * 1000 * $kind / 100)))")
    b="$out/slow$kind.sh"
    printf '#!/bin/sh\nexec %s "$@" --inject-delay %sus\n' "$R" "$delay_us" > "$b"
    chmod +x "$b"
    echo "== +$kind%: ${delay_us}us added to every request of B, $N abs =="
  else
    echo "== A/A: the same binary on both sides, $N abs =="
  fi
  for i in $(seq 1 "$N"); do
    start=$(date +%s)
    code=0
    "${E[@]}" ab scenarios/gate_noise.toml --a "$R" --b "$b" --budget "$BUDGET" --max-rounds "$MAX_ROUNDS" \
      --min-effect "$MIN_EFFECT" --metrics "$METRICS" --slice "$SLICE" "${warmup[@]}" --min-abs-ms "$MIN_ABS" "${duet[@]}" -q \
      --out "$out/$kind/$i" >/dev/null 2>&1 || code=$?
    echo "$kind $i $code $(( $(date +%s) - start ))" >> "$out/abs.txt"
  done
done
python3 - "$out" $KINDS <<'PY'
import json, os, statistics, sys
from math import comb

def cp(k, n, a=0.05):
    """Clopper-Pearson interval by bisection on the binomial tails."""
    def cdf(x, p):  # P(X <= x)
        return sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(x + 1))
    def solve(f):
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) else (lo, mid)
        return lo
    low = 0.0 if k == 0 else solve(lambda p: 1 - cdf(k - 1, p) < a / 2)
    high = 1.0 if k == n else solve(lambda p: cdf(k, p) > a / 2)
    return low, high

out, kinds = sys.argv[1], sys.argv[2:]
walls = {}
for line in open(os.path.join(out, "abs.txt")):
    kind, i, code, wall = line.split()
    walls[(kind, i)] = int(wall)
for kind in kinds:
    rows = []
    for i in sorted(os.listdir(os.path.join(out, kind)), key=int):
        try:
            r = json.load(open(os.path.join(out, kind, i, "ab.json")))
        except (OSError, ValueError):
            rows.append(("ERROR", 0, walls.get((kind, i), 0)))
            continue
        d = r.get("decision", "")
        d = "DIFFERENT" if d.startswith("DIFFERENT") else d.split(" ")[0]
        rows.append((d, r["rounds"], walls.get((kind, i), 0)))
    n = len(rows)
    name = "A/A" if kind == "aa" else f"+{kind}%"
    print(f"{name}: {n} abs")
    for d in ["DIFFERENT", "SAME", "UNKNOWN", "INVALID", "ERROR"]:
        k = sum(1 for r in rows if r[0] == d)
        if k or d in ("DIFFERENT", "SAME", "UNKNOWN"):
            lo, hi = cp(k, n)
            print(f"  {d:9} {k:2} of {n}  (95% CI {lo:.2f}-{hi:.2f})")
    rounds = [r[1] for r in rows]
    wall = [r[2] for r in rows]
    print(f"  rounds: median {statistics.median(rounds)}, range {min(rounds)}-{max(rounds)}; "
          f"wall: median {statistics.median(wall) / 60:.1f} min, range {min(wall) / 60:.1f}-{max(wall) / 60:.1f}")
PY
"${PSQL[@]}" "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
echo "abs kept in $out"
