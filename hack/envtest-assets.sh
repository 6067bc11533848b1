#!/usr/bin/env bash
# Builds the binaries controller-runtime's envtest needs (kube-apiserver and
# etcd) into an ignored cache folder, because setup-envtest cannot download
# here. Prints the folder to point KUBEBUILDER_ASSETS at.
#
# kube-apiserver comes from the Go module proxy: k8s.io/kubernetes cannot be
# required as is (its go.mod replaces every k8s.io/* staging module with a
# ./staging/... path that only exists in its own tree), so a throwaway
# wrapper module requires it and replaces each staging module with its
# published v0.X.Y release. etcd is Debian's (apt-get install etcd-server),
# linked in. A stamp file records what was built; a second run with the same
# version reuses it.
#
# Environment: K8S_VERSION (default v1.37.2), ENVTEST_ASSETS_DIR (default
# <repo>/.cache/envtest), ETCD (default /usr/bin/etcd), GO (default go).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
GO="${GO:-go}"
ETCD="${ETCD:-/usr/bin/etcd}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${ENVTEST_ASSETS_DIR:-$root/.cache/envtest}"
stamp="$dest/.stamp"
want="kube-apiserver $K8S_VERSION"

# v1.37.2 -> v0.37.2: the staging modules' release tags.
staging_version="v0.${K8S_VERSION#v1.}"

log() { echo "envtest-assets: $*" >&2; }

build_apiserver() {
  local work
  work="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: work is local
  trap "rm -rf '$work'" RETURN
  log "building kube-apiserver $K8S_VERSION (a few minutes cold)"
  (
    cd "$work"
    export GOFLAGS="-mod=mod" GOWORK=off
    "$GO" mod init headroom.local/envtest-assets >/dev/null 2>&1
    "$GO" mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    local gomod
    gomod="$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
      sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
    [[ -f "$gomod" ]] || { log "no go.mod for k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
    local mods
    mods="$(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod")"
    [[ -n "$mods" ]] || { log "no ./staging replaces found in $gomod"; exit 1; }
    local m
    for m in $mods; do
      "$GO" mod edit -replace="$m=$m@$staging_version"
    done
    "$GO" get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" >/dev/null
    local minor="${K8S_VERSION#v1.}"
    minor="${minor%%.*}"
    local v=k8s.io/component-base/version
    CGO_ENABLED=0 "$GO" build -trimpath -o "$dest/kube-apiserver.tmp" \
      -ldflags "-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor" \
      k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv -f "$dest/kube-apiserver.tmp" "$dest/kube-apiserver"
}

mkdir -p "$dest"
if [[ -x "$dest/kube-apiserver" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  log "kube-apiserver $K8S_VERSION already built in $dest"
else
  rm -f "$stamp"
  start=$SECONDS
  build_apiserver
  echo "$want" >"$stamp"
  log "built in $((SECONDS - start))s"
fi

if [[ ! -x "$ETCD" && "$ETCD" == /usr/bin/etcd && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  log "installing Debian's etcd-server"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server; } >&2
fi
if [[ ! -x "$ETCD" ]]; then
  log "$ETCD is missing: apt-get install etcd-server (or set ETCD)"
  exit 1
fi
ln -sfn "$ETCD" "$dest/etcd"
echo "$dest"
