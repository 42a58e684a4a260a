#!/usr/bin/env bash
# What attribution costs (issue 34), on the lab's seeded estate (it must be
# up: `rehearse lab up`, `rehearse seed`): the same scenario with sampling
# off and on, in alternating order (off on on off ...), ROUNDS times each.
# Per run: the driver's CPU per request (run.json), the servers' CPU per
# request (the lab's postmasters with every child, live or reaped, read
# from /proc around the run), and each operation's p50; then the medians
# of each side and on/off ratios. Sampling is switched by a settings file's
# [attribution] table, as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${R:-target/release/rehearse}
SCENARIO=${1:-scenarios/reporting_day.toml}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-40s}
[ -x "$R" ] || cargo build --release --locked
LAB=${REHEARSE_LAB_DIR:-.rehearse/lab}
[ -f "$LAB/primary/postmaster.pid" ] || { echo "bench-attribution: no lab running in $LAB; run \`$R lab up\` first" >&2; exit 4; }
out=$(mktemp -d)
printf '[attribution]\ninterval_ms = 0\n' > "$out/off.toml"
printf '[attribution]\ninterval_ms = 10\nlock_every = 20\n' > "$out/on.toml"
python3 - "$R" "$SCENARIO" "$ROUNDS" "$DURATION" "$LAB" "$out" <<'EOF'
import json, os, statistics, subprocess, sys, time
R, scenario, rounds, duration, lab, out = sys.argv[1:]
rounds = int(rounds)
tick = os.sysconf("SC_CLK_TCK")

def pid_of(data):
    with open(os.path.join(lab, data, "postmaster.pid")) as f:
        return int(f.readline())

def cpu(pid):
    """The process's CPU, its reaped children's and its live children's, s."""
    def stat(p):
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    s = stat(pid)
    total = sum(int(x) for x in s[11:15])  # utime stime cutime cstime
    for c in os.listdir("/proc"):
        if not c.isdigit() or int(c) == pid:
            continue
        try:
            cs = stat(c)
        except OSError:
            continue
        if int(cs[1]) == pid:  # ppid
            total += int(cs[11]) + int(cs[12])
    return total / tick

servers = [d for d in ("primary", "replica") if os.path.exists(os.path.join(lab, d, "postmaster.pid"))]
runs = {"off": [], "on": []}
order = []
for i in range(rounds):
    order += ["off", "on"] if i % 2 == 0 else ["on", "off"]
for k, side in enumerate(order):
    d = os.path.join(out, f"{k:02d}-{side}")
    before = sum(cpu(pid_of(s)) for s in servers)
    subprocess.run([R, "--config", os.path.join(out, f"{side}.toml"), "run", scenario,
                    "--duration", duration, "--out", d, "-q"], check=False,
                   stdout=subprocess.DEVNULL)
    time.sleep(1.0)  # the run's backends exit with it: let the postmaster reap them
    after = sum(cpu(pid_of(s)) for s in servers)
    r = json.load(open(os.path.join(d, "run.json")))
    reqs = sum(o["count"] for v in r["variants"] for o in v["operations"])
    drv = sum(v["driver_cpu_seconds"] for v in r["variants"])
    p50 = {}
    for v in r["variants"]:
        for o in v["operations"]:
            p50[f'{v["variant"]["name"]}/{o["name"]}'] = o["response"]["p50_ms"]
    has = all(v["database"].get("attribution") for v in r["variants"])
    runs[side].append({"driver_us": drv * 1e6 / reqs, "server_us": (after - before) * 1e6 / reqs,
                       "requests": reqs, "p50": p50, "attributed": has})
    print(f"run {k + 1} ({side}): {reqs} requests, driver {drv * 1e6 / reqs:.1f} us/request, "
          f"servers {(after - before) * 1e6 / reqs:.1f} us/request, attribution {'yes' if has else 'no'}")
assert all(r["attributed"] for r in runs["on"]) and not any(r["attributed"] for r in runs["off"])
med = lambda side, key: statistics.median(r[key] for r in runs[side])
print(f"\n{rounds} runs a side, {duration} each, {scenario}; medians:")
for key, what in (("driver_us", "driver CPU per request"), ("server_us", "servers' CPU per request")):
    off, on = med("off", key), med("on", key)
    print(f"  {what}: off {off:.1f} us, on {on:.1f} us, on/off {on / off:.3f}")
ratios = []
for name in runs["off"][0]["p50"]:
    off = statistics.median(r["p50"][name] for r in runs["off"])
    on = statistics.median(r["p50"][name] for r in runs["on"])
    ratios.append(on / off)
print(f"  p50 on/off over {len(ratios)} operations: median {statistics.median(ratios):.3f}, "
      f"range {min(ratios):.3f} to {max(ratios):.3f}")
EOF
