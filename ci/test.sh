#!/usr/bin/env bash
# The project's test command: install what the tests need, then run them.
# The lab tests start their own PostgreSQL, replica, PgBouncer and Redis on
# ports that do not collide with a lab you run, and stop them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
TEST_TOOLS=1 bash ci/bootstrap.sh
# The Kubernetes manifests against the schemas, strictly (an unknown field fails).
.rehearse/pyenv/bin/kubernetes-validate --strict --quiet deploy/k8s/*.yaml deploy/cron/cronjob.yaml
# The everyday build (no journeys feature) must build too; the tests run with
# the feature, so serve and journeys are tested.
cargo check --locked --bins
cargo test --locked --features journeys
