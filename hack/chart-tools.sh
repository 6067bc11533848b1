#!/usr/bin/env bash
# Builds the tools the chart tests (test/chart) run, once, into an ignored
# cache folder, and writes the offline schemas kubeconform validates
# against. Nothing here reaches the internet except the Go module proxy.
#
#   bin/helm            helm.sh/helm/v3 (go install works as is)
#   bin/helm-unittest   github.com/helm-unittest/helm-unittest, from a
#                       wrapper module with the replace its go.mod needs
#   bin/kubeconform     github.com/yannh/kubeconform
#   schemas/            strict JSON schemas: every kind of the Kubernetes
#                       OpenAPI (api/openapi-spec/swagger.json of the
#                       k8s.io/kubernetes module) and the CRDs below
#   crds/               the CRD YAMLs the chart renders objects of
#                       (InferencePool; ServiceMonitor, PodMonitor,
#                       PrometheusRule; HTTPRoute), for kubeconform's
#                       schemas and for installing into envtest
#   crds-gateways/      the same for what gateway.provider renders: Istio's
#   schemas-gateways/   DestinationRule (istio.io/api) and GKE's
#                       HealthCheckPolicy and GCPBackendPolicy (hack/crds:
#                       the module proxy does not serve Google's); folders
#                       of their own, so an older copy of this script
#                       sharing the cache leaves them alone
#
# Each part has a stamp recording its versions; a second run with the same
# versions reuses it. Prints the folder.
#
# Environment: CHART_TOOLS_DIR (default <repo>/.cache/chart-tools), GO
# (default go), and the versions below.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
HELM_UNITTEST_VERSION="${HELM_UNITTEST_VERSION:-v1.1.2}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.8.0}"
K8S_VERSION="${K8S_VERSION:-v1.37.2}"
GIE_VERSION="${GIE_VERSION:-v1.6.0}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.4.0}"
ISTIO_API_VERSION="${ISTIO_API_VERSION:-v1.32.0}"
GO="${GO:-go}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${CHART_TOOLS_DIR:-$root/.cache/chart-tools}"

log() { echo "chart-tools: $*" >&2; }

# fresh NAME WANT: true when the stamp of NAME says WANT and its outputs exist.
fresh() { [[ -f "$dest/.$1.stamp" && "$(cat "$dest/.$1.stamp")" == "$2" ]]; }
stamp() { echo "$2" >"$dest/.$1.stamp"; }

# build NAME MODULE VERSION PACKAGE [LDFLAGS [REPLACE…]]: builds PACKAGE of
# MODULE@VERSION into bin/NAME from a throwaway wrapper module.
build() {
  local name="$1" module="$2" version="$3" pkg="$4" ldflags="${5:-}"
  shift 5 || shift $#
  local want="$module@$version $ldflags $*"
  if fresh "$name" "$want" && [[ -x "$dest/bin/$name" ]]; then
    log "$name $version already built"
    return
  fi
  local work start=$SECONDS
  work="$(mktemp -d)"
  log "building $name $version"
  (
    cd "$work"
    export GOFLAGS="-mod=mod" GOWORK=off CGO_ENABLED=0
    "$GO" mod init headroom.local/chart-tools >/dev/null 2>&1
    "$GO" mod edit -require="$module@$version"
    local r
    for r in "$@"; do "$GO" mod edit -replace="$r"; done
    "$GO" get "$pkg@$version" >/dev/null 2>&1 || "$GO" get "$pkg" >/dev/null
    if [[ "$ldflags" == *@K8S_MINOR@* ]]; then
      # As helm's Makefile does: the Kubernetes version helm assumes
      # without a cluster is its client-go's (v0.37.0 -> 1.37), not 1.20.
      local minor
      minor="$("$GO" list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)"
      ldflags="${ldflags//@K8S_MINOR@/$minor}"
    fi
    "$GO" build -trimpath -ldflags "-s -w $ldflags" -o "$dest/bin/$name.tmp" "$pkg"
  )
  rm -rf "$work"
  mv -f "$dest/bin/$name.tmp" "$dest/bin/$name"
  stamp "$name" "$want"
  log "built $name in $((SECONDS - start))s"
}

# moddir MODULE VERSION: the module's directory in the module cache.
moddir() {
  local work
  work="$(mktemp -d)"
  (cd "$work" && GOFLAGS=-mod=mod GOWORK=off "$GO" mod download -json "$1@$2" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  rmdir "$work"
}

crds() {
  local want="$GIE_VERSION $PROMETHEUS_OPERATOR_VERSION $GATEWAY_API_VERSION"
  if fresh crds "$want" && [[ -d "$dest/crds" ]]; then
    log "CRDs already copied"
    return
  fi
  local gie prom gw
  gie="$(moddir sigs.k8s.io/gateway-api-inference-extension "$GIE_VERSION")"
  prom="$(moddir github.com/prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION")"
  gw="$(moddir sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION")"
  rm -rf "$dest/crds" && mkdir -p "$dest/crds"
  local f
  for f in \
    "$gie/config/crd/bases/inference.networking.k8s.io_inferencepools.yaml" \
    "$prom/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
    "$prom/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml" \
    "$prom/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" \
    "$gw/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"; do
    [[ -f "$f" ]] || { log "missing $f"; exit 1; }
    install -m 0644 "$f" "$dest/crds/"
  done
  stamp crds "$want"
}

schemas() {
  local gen
  gen="$(cat "$root"/hack/kubeschema/*.go | sha256sum | cut -c1-16)"
  local want="$K8S_VERSION $(cat "$dest/.crds.stamp") $gen"
  if fresh schemas "$want" && [[ -d "$dest/schemas" ]]; then
    log "schemas already generated"
    return
  fi
  local k8s
  k8s="$(moddir k8s.io/kubernetes "$K8S_VERSION")"
  rm -rf "$dest/schemas"
  (cd "$root" && "$GO" run ./hack/kubeschema -swagger "$k8s/api/openapi-spec/swagger.json" \
    -out "$dest/schemas" "$dest"/crds/*.yaml)
  stamp schemas "$want"
}

gateway_crds() {
  local gen
  gen="$(cat "$root"/hack/kubeschema/*.go "$root"/hack/crds/*.yaml | sha256sum | cut -c1-16)"
  local want="$ISTIO_API_VERSION $gen"
  if fresh gateways "$want" && [[ -d "$dest/crds-gateways" && -d "$dest/schemas-gateways" ]]; then
    log "gateway CRDs and schemas already made"
    return
  fi
  local istio
  istio="$(moddir istio.io/api "$ISTIO_API_VERSION")"
  rm -rf "$dest/crds-gateways" "$dest/schemas-gateways" && mkdir -p "$dest/crds-gateways"
  awk 'BEGIN { RS = "\n---\n" } /name: destinationrules\.networking\.istio\.io/ { print; exit }' \
    "$istio/kubernetes/customresourcedefinitions.gen.yaml" >"$dest/crds-gateways/networking.istio.io_destinationrules.yaml"
  [[ -s "$dest/crds-gateways/networking.istio.io_destinationrules.yaml" ]] || { log "no DestinationRule CRD in istio.io/api $ISTIO_API_VERSION"; exit 1; }
  install -m 0644 "$root"/hack/crds/*.yaml "$dest/crds-gateways/"
  (cd "$root" && "$GO" run ./hack/kubeschema -out "$dest/schemas-gateways" "$dest"/crds-gateways/*.yaml)
  stamp gateways "$want"
}

mkdir -p "$dest/bin"
build helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION $(
    for p in lint/rules chartutil; do
      printf -- '-X helm.sh/helm/v3/pkg/%s.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/%s.k8sVersionMinor=@K8S_MINOR@ ' "$p" "$p"
    done)"
build helm-unittest github.com/helm-unittest/helm-unittest "$HELM_UNITTEST_VERSION" \
  github.com/helm-unittest/helm-unittest/cmd/helm-unittest "" \
  "github.com/vmware-labs/yaml-jsonpath@v0.3.2=github.com/helm-unittest/yaml-jsonpath@v0.4.0"
build kubeconform github.com/yannh/kubeconform "$KUBECONFORM_VERSION" \
  github.com/yannh/kubeconform/cmd/kubeconform ""
crds
schemas
gateway_crds
echo "$dest"
