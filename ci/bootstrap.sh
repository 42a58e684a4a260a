#!/usr/bin/env bash
# Installs what rehearse needs on a fresh Debian or Ubuntu machine:
# PostgreSQL 15 (server, contrib, pgbench), PgBouncer and Redis, Prometheus
# (with promtool) and the PostgreSQL and Redis exporters (the lab's
# monitoring), and a Python virtualenv (.rehearse/pyenv) with HdrHistogram's
# Python reader, which the tests use to check the interval logs rehearse
# writes; with TEST_TOOLS=1 also what only the tests use: Chromium (they
# render the HTML reports) and kubernetes-validate (deploy/'s manifests).
# A no-op when everything is already there. Needs root (or sudo) to install.
set -euo pipefail

missing=()
pg_ok=false
for d in /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/pg_basebackup" ]; then
    pg_ok=true
  fi
done
$pg_ok || missing+=(postgresql postgresql-contrib)
ls /usr/lib/postgresql/*/lib/pg_stat_statements.so >/dev/null 2>&1 || missing+=(postgresql-contrib)
command -v pgbench >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/pgbench ] || missing+=(postgresql-contrib)
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
id postgres >/dev/null 2>&1 || missing+=(postgresql)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3 python3-venv)
# openssl makes the CA and certificates of `rehearse lab up --tls`.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# pg_cron, which the lab preloads on its primary for `rehearse job install`.
ls /usr/lib/postgresql/15/lib/pg_cron.so >/dev/null 2>&1 || missing+=(postgresql-15-cron)
# The lab's monitoring (`rehearse lab up` starts them unless --no-monitoring).
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-postgres-exporter >/dev/null 2>&1 || missing+=(prometheus-postgres-exporter)
command -v prometheus-redis-exporter >/dev/null 2>&1 || missing+=(prometheus-redis-exporter)
# Tools only the tests use; the main job does not need them, so only
# ci/test.sh asks for them.
if [ "${TEST_TOOLS:-0}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: PostgreSQL (with pg_cron), PgBouncer, Redis, Prometheus and its exporters, and Python are installed"
else
  # De-duplicate while keeping order.
  readarray -t pkgs < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
  echo "bootstrap: installing ${pkgs[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "bootstrap: need root or sudo to install ${pkgs[*]}" >&2; exit 4; }
    SUDO="sudo"
  fi
  # A fresh cloud machine runs its boot-time upgrades while we start: wait
  # for apt's locks (up to APT_LOCK_WAIT seconds, 600 by default) rather than
  # fail on "Could not get lock". apt waits for the dpkg lock itself; the
  # lists lock of `update` is retried here.
  wait_s="${APT_LOCK_WAIT:-600}"
  apt_opts=(-o "DPkg::Lock::Timeout=$wait_s")
  deadline=$((SECONDS + wait_s))
  until $SUDO apt-get "${apt_opts[@]}" update -qq; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "bootstrap: apt-get update kept failing for ${wait_s}s (another apt holding its lock?)" >&2
      exit 4
    fi
    echo "bootstrap: apt-get update failed; retrying in 10 s (another apt process may hold the lock)" >&2
    sleep 10
  done
  # Debian starts the packaged services on install; the lab uses its own
  # ports, so they do not collide, and we do not need them.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "bootstrap: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 4
fi

# HdrHistogram's Python reader, pinned, in a virtualenv of the project's own.
root="$(cd "$(dirname "$0")/.." && pwd)"
pyenv="$root/.rehearse/pyenv"
if "$pyenv/bin/python" -c 'import hdrh' >/dev/null 2>&1; then
  echo "bootstrap: HdrHistogram's Python reader is in $pyenv"
else
  echo "bootstrap: installing HdrHistogram's Python reader into $pyenv"
  rm -rf "$pyenv"
  python3 -m venv "$pyenv"
  "$pyenv/bin/pip" install -q --disable-pip-version-check 'hdrhistogram==0.10.8'
fi
# The Kubernetes schemas, offline, for deploy/ (no cluster needed).
if [ "${TEST_TOOLS:-0}" = 1 ]; then
  if "$pyenv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
    echo "bootstrap: kubernetes-validate is in $pyenv"
  else
    echo "bootstrap: installing kubernetes-validate into $pyenv"
    "$pyenv/bin/pip" install -q --disable-pip-version-check 'kubernetes-validate==1.37.0'
  fi
fi
