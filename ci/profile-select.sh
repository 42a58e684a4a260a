#!/usr/bin/env bash
# Where the client's CPU goes, rehearse against pgbench (issue 35): one
# `rehearse bench select` round under `perf record`, which follows pgbench as
# a child, so both clients are sampled in the same minute on the same server.
# Prints, per request of each client, the CPU in the kernel and in user
# space (sample counts at $FREQ Hz over the requests each made), and
# rehearse's user space grouped by crate: the tokio scheduler, the
# tokio-postgres client and its connection task, the pool and its statement
# cache, the repository, the driver, the histograms. perf's own overhead
# slows both clients alike; read the ratios, not the absolute figures.
# Needs perf (Debian: linux-perf) and a lab (`rehearse lab up`). Measures
# and exits 0 unless something failed to run.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${R:-target/release/rehearse}
CLIENTS=${CLIENTS:-8}
DURATION=${DURATION:-10}
SCALE=${SCALE:-1}
FREQ=${FREQ:-1999}
command -v perf >/dev/null || { echo "profile-select: perf is not installed (Debian: apt-get install linux-perf)" >&2; exit 4; }
[ -x "$R" ] || cargo build --release --locked
$R lab env >/dev/null 2>&1 || { echo "profile-select: no lab; run \`$R lab up\` first" >&2; exit 4; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
perf record -q -F "$FREQ" -o "$out/perf.data" -- \
  "$R" bench select --scale "$SCALE" --clients "$CLIENTS" --duration "${DURATION}s" --rounds 1 \
  >"$out/bench.txt" 2>&1 || { cat "$out/bench.txt" >&2; exit 1; }
grep '^round 1:' "$out/bench.txt"
perf report -i "$out/perf.data" --stdio -n --sort comm,dso,sym 2>/dev/null >"$out/report.txt"
python3 - "$out/bench.txt" "$out/report.txt" "$FREQ" "$DURATION" <<'PY'
import re, sys
bench, report, freq, secs = open(sys.argv[1]).read(), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
m = re.search(r"pgbench -S\s+(\d+) tps.*\| rehearse\s+(\d+) tps", bench)
if not m:
    sys.exit(f"profile-select: no round line in bench select's output:\n{bench}")
requests = {"pgbench": float(m[1]) * secs, "rehearse": float(m[2]) * secs}
groups = [
    ("tokio scheduler and I/O driver", ("tokio::", "mio::")),
    ("tokio-postgres client, connection task, protocol", ("tokio_postgres", "postgres_protocol", "postgres_types", "tokio_util", "bytes::", "futures")),
    ("pool (deadpool) and its statement cache", ("deadpool", "core::hash", "hashbrown")),
    ("the repository (rehearse::repo)", ("rehearse::repo",)),
    ("the driver and its histograms", ("rehearse::driver", "hdrhistogram")),
    ("allocator and memcpy", ("malloc", "cfree", "_int_", "__libc_calloc", "__memmove", "__memcmp", "__rust_dealloc", "__rdl_alloc", "alloc::")),
    ("clock reads", ("__vdso_clock_gettime", "clock_gettime", "std::time::Instant", "std::sys::pal::unix::time")),
    ("system call wrappers", ("__send", "__libc_recv", "epoll_wait", "syscall", "__GI___pthread")),
]
us = {}  # (client, where) -> samples
for line in open(report):
    f = re.match(r"\s*[\d.]+%\s+(\d+)\s+(\S+)\s+(\S+)\s+\[(.)\]\s+(.*)", line)
    if not f:
        continue
    n, comm, dso, kind, sym = int(f[1]), f[2], f[3], f[4], f[5].lstrip("<&")
    client = "pgbench" if comm == "pgbench" else "rehearse" if comm in ("rehearse", "tokio-rt-worker", "rehearse-dispat") else None
    if client is None:
        continue
    where = "kernel" if kind == "k" else "user"
    us[(client, where)] = us.get((client, where), 0) + n
    if client == "rehearse" and where == "user":
        g = "other (std, core, libm)"
        for name, prefixes in groups:
            if sym.startswith(prefixes):
                g = name
                break
        us[("rehearse-user", g)] = us.get(("rehearse-user", g), 0) + n
per = lambda client, n: n / freq * 1e6 / requests[client]
print(f"\nclient CPU per request under perf ({freq:.0f} Hz; {requests['pgbench']:.0f} pgbench and {requests['rehearse']:.0f} rehearse requests):")
print(f"{'':32}{'pgbench':>10}{'rehearse':>10}{'ratio':>8}")
for where in ("kernel", "user"):
    p, r = per("pgbench", us.get(("pgbench", where), 0)), per("rehearse", us.get(("rehearse", where), 0))
    print(f"{where + ' (us)':32}{p:>10.1f}{r:>10.1f}{r / p if p else float('nan'):>7.2f}x")
print("\nrehearse's user space per request:")
rows = sorted(((n, g) for (c, g), n in us.items() if c == "rehearse-user"), reverse=True)
for n, g in rows:
    print(f"  {per('rehearse', n):6.1f} us  {g}")
PY
