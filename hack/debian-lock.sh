#!/usr/bin/env bash
# Writes images/debian.lock: the exact Debian packages the image bases are
# assembled from (hack/imagebuild), for each architecture, with the URL and
# SHA-256 apt itself resolves. The image build downloads only what the lock
# names and refuses a file whose hash differs, so the bases change only
# when this script is run again and its output committed (to take a
# security update, or when the mirror has dropped a superseded version).
#
# It runs apt's ordinary client against a private state folder (its own
# sources list, package lists and an empty dpkg status), so it neither
# reads nor changes the machine's apt configuration, and works for a
# foreign architecture without dpkg --add-architecture. It needs apt-get
# and Debian's archive keyring (/usr/share/keyrings/debian-archive-keyring.gpg).
#
# Environment: SUITE (default bookworm), MIRROR (default
# http://deb.debian.org/debian), SECURITY_MIRROR (default
# http://deb.debian.org/debian-security), ARCHES (default "amd64 arm64"),
# LOCK (default <repo>/images/debian.lock).
set -euo pipefail

SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
ARCHES="${ARCHES:-amd64 arm64}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
root="$(cd "$(dirname "$0")/.." && pwd)"
lock="${LOCK:-$root/images/debian.lock}"

# The packages of the bases: the C library (the agent is built with cgo)
# and the CA certificates (both images). Architecture-independent ones
# ("all") are locked once.
PACKAGES=(libc6 ca-certificates)

log() { echo "debian-lock: $*" >&2; }
command -v apt-get >/dev/null || { log "apt-get is needed (run it on Debian or Ubuntu)"; exit 1; }
[[ -f "$KEYRING" ]] || { log "$KEYRING is missing: apt-get install debian-archive-keyring"; exit 1; }

state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT

# resolve ARCH: prints one lock line per package apt resolves for ARCH.
resolve() {
  local arch="$1" dir="$state/$1"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/parts"
  : >"$dir/status"
  cat >"$dir/sources.list" <<SOURCES
deb [signed-by=$KEYRING] $MIRROR $SUITE main
deb [signed-by=$KEYRING] $MIRROR $SUITE-updates main
deb [signed-by=$KEYRING] $SECURITY_MIRROR $SUITE-security main
SOURCES
  local opts=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
    -o "Dir::State::Lists=$dir/lists" -o "Dir::State::status=$dir/status"
    -o "Dir::Cache=$dir/cache" -o "Dir::Etc::SourceList=$dir/sources.list"
    -o "Dir::Etc::SourceParts=$dir/parts" -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$dir/parts" -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root")
  log "resolving for $arch"
  apt-get "${opts[@]}" -qq update >&2
  local line url file size sum name version pkgarch
  for p in "${PACKAGES[@]}"; do
    line="$(cd "$dir" && apt-get "${opts[@]}" download --print-uris "$p")"
    # 'URL' name_version_arch.deb size SHA256:hex
    read -r url file size sum <<<"$line"
    url="${url//\'/}"
    [[ "$sum" == SHA256:* ]] || { log "no SHA-256 for $p ($line)"; exit 1; }
    file="${file%.deb}"
    name="${file%%_*}"
    version="${file#*_}"
    version="${version%_*}"
    version="${version//%3a/:}"
    pkgarch="${file##*_}"
    printf '%s %s %s %s %s %s\n' "$name" "$pkgarch" "$version" "$size" "${sum#SHA256:}" "$url"
  done
}

tmp="$(mktemp)"
{
  echo "# Debian $SUITE packages of the image bases, written by hack/debian-lock.sh"
  echo "# (make images-lock); hack/imagebuild downloads and verifies exactly these."
  echo "# package architecture version size sha256 url"
  for arch in $ARCHES; do resolve "$arch"; done | sort -u
} >"$tmp"
mv "$tmp" "$lock"
log "wrote $lock"
