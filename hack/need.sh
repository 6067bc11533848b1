#!/usr/bin/env bash
# need.sh COMMAND DEBIAN-PACKAGE [COMMAND DEBIAN-PACKAGE …]: makes sure each
# command is on the PATH (or, for an absolute path such as a header, that
# the file exists). A missing one is installed from Debian with
# apt-get when running as root on a machine that has it (as
# hack/envtest-assets.sh does for etcd); otherwise it stops with the
# command to run. The Makefile calls it before the targets that need
# Prometheus (make test) or a cross C compiler (make images).
set -euo pipefail

log() { echo "need: $*" >&2; }
(($# > 0 && $# % 2 == 0)) || { log "usage: need.sh COMMAND PACKAGE [COMMAND PACKAGE …]"; exit 2; }

# present THING: an absolute path exists, or a command is on the PATH.
present() {
  if [[ "$1" == /* ]]; then [[ -e "$1" ]]; else command -v "$1" >/dev/null; fi
}

missing=()
while (($#)); do
  if ! present "$1"; then
    missing+=("$2")
    log "$1 is missing (Debian package $2)"
  fi
  shift 2
done
((${#missing[@]})) || exit 0
# One package may provide several commands (prometheus and promtool).
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  log "installing ${pkgs[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >&2
  exit 0
fi
log "install them first: sudo apt-get install ${pkgs[*]}"
exit 1
