#!/usr/bin/env bash
# Measurement fidelity, shown on the lab (it must be up: `rehearse lab up`):
#  1. scenarios/fidelity_sleep.toml, three times: response p50 against 5 ms.
#  2. A 2-second ACCESS EXCLUSIVE lock on the table a probe reads, once under
#     an open-loop run (200 requests/s) and once under a closed-loop run
#     (4 users): the open loop shows the stall in p99 and max, the closed loop
#     only in max.
# Uses a scratch database, rehearse_fidelity, on the lab primary.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${R:-target/release/rehearse}
[ -x "$R" ] || cargo build --release --locked
PRIMARY=$($R lab env | sed -n "s/^export REHEARSE_PRIMARY_URL='\(.*\)'$/\1/p")
[ -n "$PRIMARY" ] || { echo "bench-fidelity: no lab; run \`$R lab up\` first" >&2; exit 4; }
DB=rehearse_fidelity
BASE="${PRIMARY%/*}"
URL="$BASE/$DB"
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
"${PSQL[@]}" "$URL" -c "CREATE TABLE probe (id int PRIMARY KEY, v int); INSERT INTO probe VALUES (1, 1)"
out=$(mktemp -d)
# The scratch database only: no replica, cache or lab endpoints.
RUN=($R --primary-url "$URL" --lab-dir "$out/no-lab" run -q)
field() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); o=r['variants'][0]['operations'][0]; print($2)" "$1/run.json"; }

echo "== 5 ms sleep, open loop, 100/s (each run's p50 must lie within 10% of 5 ms) =="
off=0
for i in 1 2 3; do
  "${RUN[@]}" scenarios/fidelity_sleep.toml --out "$out/sleep$i" >/dev/null || true
  field "$out/sleep$i" "f\"run $i: response p50 {o['response']['p50_ms']:.3f} ms ({(o['response']['p50_ms']/5-1)*100:+.1f}% of 5 ms), p99 {o['response']['p99_ms']:.3f} ms, service p50 {o['service']['p50_ms']:.3f} ms, send lag p50 {o['lag']['p50_ms']*1000:.0f} us\""
  # A run that wrote nothing, or a p50 more than 10% off, fails the claim.
  if ! python3 -c "import json,sys; o=json.load(open(sys.argv[1]))['variants'][0]['operations'][0]; sys.exit(0 if abs(o['response']['p50_ms']/5-1) <= 0.10 else 1)" "$out/sleep$i/run.json" 2>/dev/null; then
    echo "bench-fidelity: run $i: p50 more than 10% off 5 ms (or no result)" >&2
    off=$((off + 1))
  fi
done

probe() {
  cat <<EOT
[[mix]]
operation = "sql"
name = "probe"
weight = 1
sql = "SELECT v FROM probe WHERE id = \$1"
params = ["int:1..1"]
via = "primary"
[[variant]]
name = "direct"
mode = "legacy"
reads = "primary"
cache = false
EOT
}
printf '[[phase]]\nduration = "10s"\nrate = 200\narrival = "constant"\nmax_in_flight = 16\n%s\n' "$(probe)" > "$out/open.toml"
printf '[[phase]]\nduration = "10s"\nusers = 4\n%s\n' "$(probe)" > "$out/closed.toml"
echo "== 2 s lock, 3 s into a 10 s run =="
for model in open closed; do
  ( sleep 3; "${PSQL[@]}" "$URL" -c "BEGIN; LOCK TABLE probe IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2); COMMIT;" >/dev/null ) &
  "${RUN[@]}" "$out/$model.toml" --out "$out/$model" >/dev/null || true
  wait
  field "$out/$model" "f\"$model loop: {o['count']} requests, p50 {o['response']['p50_ms']:.2f} ms, p99 {o['response']['p99_ms']:.1f} ms, p99.9 {o['response']['p99.9_ms']:.1f} ms, max {o['response']['max_ms']:.1f} ms, late {o['late']}\""
done
"${PSQL[@]}" "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
rm -rf "$out"
if [ "$off" -gt 0 ]; then
  echo "bench-fidelity: FAIL: $off of 3 runs had a p50 more than 10% off 5 ms" >&2
  exit 1
fi
echo "bench-fidelity: PASS: every run's p50 within 10% of 5 ms"
