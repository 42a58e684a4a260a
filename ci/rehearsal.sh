#!/usr/bin/env bash
# The main job on a fresh machine: bootstrap, bring the embedded lab up,
# create both schemas, and show the estate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/bootstrap.sh
cargo build --release --locked
R=target/release/rehearse
$R lab up
$R schema create --mode both
$R lab status
