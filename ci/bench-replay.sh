#!/usr/bin/env bash
# The replay's speed open loop: a synthetic csvlog of SESSIONS sessions
# sending `SELECT 1` at RATE statements/s in all for DURATION seconds, replayed
# verbatim against the lab (or the estate REHEARSE_PRIMARY_URL names), RUNS
# times. Prints each run's achieved rate and the driver's wake-up delay p99
# (the issue's goal: 20,000/s with the p99 under 1 ms), and the medians.
#   RATE=20000 SESSIONS=32 DURATION=10 RUNS=3 bash ci/bench-replay.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-20000}
SESSIONS=${SESSIONS:-32}
SECONDS_=${DURATION:-10}  # not SECONDS: bash counts its own time in it
RUNS=${RUNS:-3}
BIN=${BIN:-target/release/rehearse}
OUT=${OUT:-results/bench-replay}
mkdir -p "$OUT"
python3 - "$OUT/trace.csv" "$RATE" "$SESSIONS" "$SECONDS_" <<'PY'
import sys
path, rate, sessions, secs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
n = int(rate * secs)
with open(path, "w") as f:
    for i in range(n):
        t = i / rate
        s = int(t)
        us = int((t - s) * 1e6)
        stamp = "2026-12-06 07:%02d:%02d.%03d UTC" % ((s // 60) % 60, s % 60, us // 1000)
        sess = i % sessions
        f.write('%s,postgres,rehearse,%d,127.0.0.1:5000,bench.%x,%d,SELECT,2026-12-06 07:00:00 UTC,3/1,0,LOG,00000,"statement: SELECT 1",,,,,,,,,bench,client backend\n'
                % (stamp, 1000 + sess, sess, i))
PY
if [ -x "$BIN" ] && [ -z "${REHEARSE_PRIMARY_URL:-}" ]; then eval "$("$BIN" lab env)"; fi
for r in $(seq 1 "$RUNS"); do
  set +e
  "$BIN" replay "$OUT/trace.csv" --mode legacy -q --out "$OUT/run-$r" >/dev/null 2>"$OUT/run-$r.err"
  code=$?
  set -e
  [ "$code" = 3 ] || [ "$code" = 0 ] || { cat "$OUT/run-$r.err"; exit "$code"; }
  python3 - "$OUT/run-$r/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
v = r["variants"][0]
p = v["phases"][0]
print("run: achieved %.0f/s of %.0f/s, completed %d, driver wake-up p99 %.3f ms, %.1f us CPU per op, valid %s"
      % (p["achieved_rate"], p["target_rate"], p["completed"], v["driver_lag"]["p99_ms"], v["driver_cpu_us_per_op"], v["validity"]["valid"]))
PY
done | tee "$OUT/runs.txt"
python3 - "$OUT/runs.txt" <<'PY'
import re, sys, statistics
rows = [l for l in open(sys.argv[1]) if l.startswith("run:")]
rate = [float(re.search(r"achieved (\d+)", l).group(1)) for l in rows]
lag = [float(re.search(r"p99 ([\d.]+) ms", l).group(1)) for l in rows]
print("median of %d runs: achieved %.0f/s, driver wake-up p99 %.3f ms" % (len(rows), statistics.median(rate), statistics.median(lag)))
PY
