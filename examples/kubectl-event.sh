#!/usr/bin/env bash
# Creates (or bumps the count of) a Warning Event with kubectl, the way the
# kubelet reports a crash-looping container:
#
#   examples/kubectl-event.sh web-1            # create, count 1
#   examples/kubectl-event.sh web-1 2          # count 2 (a new occurrence)
#   NAMESPACE=shop REASON=Unhealthy MESSAGE="Readiness probe failed" examples/kubectl-event.sh api-0
set -euo pipefail
pod=${1:?usage: $0 POD [COUNT]}
count=${2:-1}
namespace=${NAMESPACE:-default}
reason=${REASON:-BackOff}
message=${MESSAGE:-Back-off restarting failed container app in pod $pod}
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
name="$pod.$(printf '%s' "$reason" | tr '[:upper:]' '[:lower:]')"

if ((count == 1)); then
    kubectl create -f - <<YAML
apiVersion: v1
kind: Event
metadata:
  name: $name
  namespace: $namespace
involvedObject:
  apiVersion: v1
  kind: Pod
  name: $pod
  namespace: $namespace
reason: $reason
message: "$message"
type: Warning
count: 1
firstTimestamp: "$now"
lastTimestamp: "$now"
source:
  component: kubelet
  host: node-1
YAML
else
    kubectl -n "$namespace" patch event "$name" --type merge \
        -p "{\"count\": $count, \"lastTimestamp\": \"$now\"}"
fi
