#!/usr/bin/env bash
# Run-to-run drift of the driver against pgbench's (issue 35), on the lab's
# seeded estate (`rehearse lab up`, `rehearse seed --profile smoke --mode
# both`): the dashboard statement on the partitioned summaries, one
# organization of 1..$ORGS as the parameter, $RATE requests/s Poisson for
# $DURATION, $ROUNDS rounds. Each round runs `pgbench -R $RATE -c 8 -j 2
# -M extended` and `rehearse run` of the same statement (8 in flight, the
# same rate), in alternating order. Both p50s count from the intended start
# (pgbench's per-transaction latency includes its schedule lag); the first
# $SKIP seconds of each are left out. Prints every round's p50 of both and
# each side's spread, (max - min) / min, and says which is wider. It
# measures; it exits 0 unless something failed to run.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${R:-target/release/rehearse}
ROUNDS=${ROUNDS:-5}
RATE=${RATE:-200}
DURATION=${DURATION:-30}
SKIP=${SKIP:-2}
ORGS=${ORGS:-5000}
[ -x "$R" ] || cargo build --release --locked
PRIMARY=$($R lab env | sed -n "s/^export REHEARSE_PRIMARY_URL='\(.*\)'$/\1/p")
[ -n "$PRIMARY" ] || { echo "bench-drift: no lab; run \`$R lab up\` first" >&2; exit 4; }
END=$(psql -X -At "$PRIMARY" -c "SELECT max(business_date) FROM daily_financial_summaries_partitioned") || {
  echo "bench-drift: no partitioned estate; run \`$R seed --profile smoke --mode both\` first" >&2; exit 4; }
[ -n "$END" ] || { echo "bench-drift: the partitioned summaries are empty; seed first" >&2; exit 4; }
START=$(date -d "$END - 29 days" +%F)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
STATEMENT="SELECT business_date, sum(revenue_cents)::int8, sum(expense_cents)::int8 FROM daily_financial_summaries_partitioned WHERE organization_id = \$1 AND business_date BETWEEN DATE '$START' AND DATE '$END' GROUP BY business_date ORDER BY business_date"
cat > "$out/drift.toml" <<EOF
name = "drift"
description = "the dashboard statement on the partitioned parent, $RATE/s Poisson"
seed = 7
warmup = "${SKIP}s"

[[phase]]
name = "steady"
duration = "$((DURATION + SKIP))s"
rate = $RATE
arrival = "poisson"
max_in_flight = 8

[[mix]]
operation = "sql"
name = "dashboard"
weight = 1
sql = "$STATEMENT"
params = ["int:1..$ORGS"]
via = "primary"

[[variant]]
name = "partitioned"
mode = "partitioned"
reads = "primary"
cache = false

[budgets.dashboard]
error_rate = 0.01
EOF
printf '\\set org random(1, %s)\n%s;\n' "$ORGS" "${STATEMENT//\$1/:org}" > "$out/drift.sql"
HOSTPORT=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p.hostname, p.port or 5432, p.username or 'postgres', p.path.lstrip('/'))" "$PRIMARY")
read -r HOST PORT USER DB <<<"$HOSTPORT"
for i in $(seq 1 "$ROUNDS"); do
  for turn in 0 1; do
    if [ $(( (i + turn) % 2 )) -eq 1 ]; then
      (cd "$out" && pgbench -n -h "$HOST" -p "$PORT" -U "$USER" -f drift.sql -M extended \
        -R "$RATE" -c 8 -j 2 -T $((DURATION + SKIP)) -l --log-prefix "pgb-$i" "$DB" > "pgb-$i.out" 2>&1) \
        || { cat "$out/pgb-$i.out" >&2; exit 1; }
      echo "round $i: pgbench done" >&2
    else
      "$R" run "$out/drift.toml" --metrics-addr off --out "$out/run-$i" > "$out/run-$i.out" 2>&1 \
        || [ $? -eq 3 ] || { cat "$out/run-$i.out" >&2; exit 1; }
      echo "round $i: rehearse done" >&2
    fi
  done
done
python3 - "$out" "$ROUNDS" "$SKIP" <<'EOF'
import glob, json, os, statistics, sys
out, rounds, skip = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

def pgbench_p50(i):
    rows = []
    for f in glob.glob(os.path.join(out, f"pgb-{i}.*")):
        if f.endswith(".out"):
            continue
        for line in open(f):
            c = line.split()
            rows.append((int(c[4]) + int(c[5]) / 1e6, int(c[2])))
    t0 = min(t for t, _ in rows)
    lat = sorted(us for t, us in rows if t - t0 >= skip)
    return statistics.median(lat) / 1000, len(lat)

def rehearse_p50(i):
    r = json.load(open(os.path.join(out, f"run-{i}", "run.json")))
    op = r["variants"][0]["operations"][0]
    return op["response"]["p50_ms"], op["count"]

pg, rh = [], []
print(f"{'round':>5}  {'pgbench p50 ms':>14}  {'n':>6}  {'rehearse p50 ms':>15}  {'n':>6}")
for i in range(1, rounds + 1):
    (a, na), (b, nb) = pgbench_p50(i), rehearse_p50(i)
    pg.append(a); rh.append(b)
    print(f"{i:>5}  {a:>14.3f}  {na:>6}  {b:>15.3f}  {nb:>6}")
spread = lambda xs: (max(xs) - min(xs)) / min(xs)
sp, sr = spread(pg), spread(rh)
print(f"pgbench  p50 {min(pg):.3f}-{max(pg):.3f} ms, spread {sp:.1%}")
print(f"rehearse p50 {min(rh):.3f}-{max(rh):.3f} ms, spread {sr:.1%}")
print("rehearse's spread is " + ("no wider than pgbench's" if sr <= sp else "WIDER than pgbench's") + f" ({rounds} rounds)")
EOF
