#!/usr/bin/env bash
# The main job on a fresh machine: bootstrap, bring the embedded lab up, seed
# the estate (full profile, both modes, unless PROFILE says otherwise), and
# show the lab.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-full}"
bash ci/bootstrap.sh
cargo build --release --locked
R=target/release/rehearse
$R lab up
$R seed --profile "$PROFILE" --mode both
$R lab status
