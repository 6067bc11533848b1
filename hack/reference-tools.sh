#!/usr/bin/env bash
# Builds the parts of the routing benchmark that this repository did not
# write, from the Go module proxy, into an ignored cache folder:
#
#   epp                  the Gateway API Inference Extension's endpoint
#                        picker (cmd/epp of sigs.k8s.io/gateway-api-inference-
#                        extension). v1.5.0 is the last release that ships it:
#                        v1.6 moved the EPP to llm-d and keeps only a
#                        "lightweight" conformance picker.
#   llm-d-inference-sim  llm-d's vLLM-compatible simulator (pure Go).
#
# Each is built through a throwaway wrapper module that requires the exact
# version and `go build`s the command (the proxy serves no version lists
# for either, so `go install pkg@latest` cannot work). A stamp per binary
# records what was built; a second run with the same versions reuses it.
# Prints the folder.
#
# Environment: GIE_VERSION (default v1.5.0), LLMD_SIM_VERSION (default
# v0.10.2), REFERENCE_TOOLS_DIR (default <repo>/.cache/reference), GO.
set -euo pipefail

GIE_VERSION="${GIE_VERSION:-v1.5.0}"
LLMD_SIM_VERSION="${LLMD_SIM_VERSION:-v0.10.2}"
GO="${GO:-go}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${REFERENCE_TOOLS_DIR:-$root/.cache/reference}"

log() { echo "reference-tools: $*" >&2; }

# build NAME MODULE VERSION PACKAGE: builds PACKAGE of MODULE@VERSION into
# $dest/NAME unless its stamp says it is there.
build() {
  local name="$1" module="$2" version="$3" pkg="$4"
  local stamp="$dest/.$name.stamp" want="$module $version"
  if [[ -x "$dest/$name" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "$name ($want) already built in $dest"
    return
  fi
  rm -f "$stamp"
  local work start=$SECONDS
  work="$(mktemp -d)"
  log "building $name from $want"
  (
    cd "$work"
    export GOFLAGS="-mod=mod" GOWORK=off
    "$GO" mod init "headroom.local/reference-$name" >/dev/null 2>&1
    "$GO" mod edit -require="$module@$version"
    "$GO" get "$pkg@$version" >/dev/null 2>&1 || "$GO" get "$pkg@$version"
    CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" -o "$dest/$name.tmp" "$pkg"
  ) || { rm -rf "$work"; log "building $name failed"; exit 1; }
  rm -rf "$work"
  mv -f "$dest/$name.tmp" "$dest/$name"
  echo "$want" >"$stamp"
  log "built $name in $((SECONDS - start))s"
}

mkdir -p "$dest"
# One build at a time: several worktrees share the cache.
exec 9>"$dest/.lock"
flock 9
build epp sigs.k8s.io/gateway-api-inference-extension "$GIE_VERSION" \
  sigs.k8s.io/gateway-api-inference-extension/cmd/epp
build llm-d-inference-sim github.com/llm-d/llm-d-inference-sim "$LLMD_SIM_VERSION" \
  github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim
echo "$dest"
