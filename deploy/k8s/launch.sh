#!/usr/bin/env bash
# Launch one sharded rehearse run on a cluster, then merge and gate it.
#   RUN_ID=... LEAD=120 NAMESPACE=... bash deploy/k8s/launch.sh
# Needs kubectl with access to the namespace, the image (rehearse:latest, or
# IMAGE=...), the Secret rehearse-estate (see secret.example.yaml), and the
# PVC and ConfigMap in this folder. The start instant is the Job's creation
# + LEAD seconds, written into the pods' annotations; every shard starts then.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ns=(--namespace "${NAMESPACE:-default}")
run_id="${RUN_ID:-$(date -u +%Y%m%dt%H%M%S)}"
lead="${LEAD:-120}"
image="${IMAGE:-rehearse:latest}"
start_at="$(date -u -d "+${lead} seconds" +%Y-%m-%dT%H:%M:%SZ)"
render() {
  sed -e "s|name: rehearse-shards$|name: rehearse-shards-${run_id}|" \
      -e "s|name: rehearse-merge$|name: rehearse-merge-${run_id}|" \
      -e "s|rehearse.dev/run-id: \"example\"|rehearse.dev/run-id: \"${run_id}\"|" \
      -e "s|rehearse.dev/start-at: \"[^\"]*\"|rehearse.dev/start-at: \"${start_at}\"|" \
      -e "s|image: rehearse:latest|image: ${image}|" "$1"
}
kubectl "${ns[@]}" apply -f "$here/pvc.yaml" -f "$here/scenario-configmap.yaml"
echo "run ${run_id}: 3 shards start at ${start_at}"
render "$here/job.yaml" | kubectl "${ns[@]}" apply -f -
# Wait for the shards to end either way: a failed shard is the merge's to name.
kubectl "${ns[@]}" wait --for=condition=complete --timeout=2h "job/rehearse-shards-${run_id}" \
  || echo "the shards' Job did not complete; the merge will name the missing shard"
render "$here/merge-job.yaml" | kubectl "${ns[@]}" apply -f -
kubectl "${ns[@]}" wait --for=condition=complete --timeout=30m "job/rehearse-merge-${run_id}" && status=0 || status=1
kubectl "${ns[@]}" logs "job/rehearse-merge-${run_id}" --all-containers
exit "$status"
