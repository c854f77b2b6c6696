#!/usr/bin/env bash
# Build kube-apiserver from Debian's `kubernetes` source package, once, and
# print the path of the cached binary. The Kubernetes lab tests
# (tests/e2e/test_kube_*.sh) run it against Debian's etcd-server.
#
# usage: tools/kube-apiserver.sh [--print-path | --check]
#   (no option)   build if not cached yet (as root), then print the path
#   --print-path  print where the binary is (or would be) cached
#   --check       exit 0 if the cached binary is there, 1 if not
#
# Debian 12 ships no API server binary, but its source package vendors every
# dependency and builds with Debian's golang-go in GOPATH mode. Two changes
# are needed: the vendored modern-go/reflect2 1.0.1 crashes ("fatal error:
# fault") under Go 1.18+ when a custom resource is created, so Debian's
# reflect2 1.0.2 replaces it; and the build goes through upstream's
# `make WHAT=cmd/kube-apiserver`, which generates the OpenAPI definitions a
# plain `go build` lacks. The binary is cached outside the tree, under
# CANARYD_CACHE (default /var/cache/canaryd), keyed by the source version, so
# a fresh clone reuses it.
set -euo pipefail

VERSION=1.20.5+really1.20.2-1.1+deb12u1
CACHE=${CANARYD_CACHE:-/var/cache/canaryd}
BIN=$CACHE/kube-apiserver-$VERSION
SRC_LIST=/etc/apt/sources.list.d/canaryd-deb-src.sources

case ${1:-} in
--print-path) echo "$BIN"; exit 0 ;;
--check) [ -x "$BIN" ]; exit ;;
"") ;;
*) echo "usage: $0 [--print-path | --check]" >&2; exit 2 ;;
esac

if [ -x "$BIN" ]; then
	echo "$BIN"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "kube-apiserver: not cached at $BIN; run as root to build it" >&2
	exit 1
fi

log() { echo "kube-apiserver: $*" >&2; }

# apt-get source needs a deb-src entry: the same archive the machine already
# uses for binaries (its first "Types: deb" stanza), nothing new.
enable_deb_src() {
	if apt-cache showsrc kubernetes 2>/dev/null | grep -q "^Version: $VERSION\$"; then
		return
	fi
	local main=/etc/apt/sources.list.d/debian.sources
	[ -f "$main" ] || {
		log "no $main to copy a deb-src entry from"
		exit 1
	}
	awk 'BEGIN { RS = ""; ORS = "\n\n" } /Types: deb/ { sub(/Types: deb/, "Types: deb-src"); print }' \
		"$main" >"$SRC_LIST"
	log "added $SRC_LIST (deb-src for the archive in $main)"
	apt-get update -qq
}

enable_deb_src
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends golang-go golang-github-modern-go-reflect2-dev \
	dpkg-dev rsync >/dev/null

work=$(mktemp -d /var/tmp/canaryd-kube-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work" # apt-get source downloads as the _apt user
cd "$work"
log "fetching the source package kubernetes=$VERSION"
apt-get source -qq "kubernetes=$VERSION" >/dev/null
src=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
[ -n "$src" ] || {
	log "apt-get source left no kubernetes-* directory"
	exit 1
}
cd "$src"

log "replacing the vendored reflect2 1.0.1 with Debian's 1.0.2"
rm -rf vendor/github.com/modern-go/reflect2
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2

log "building (about 10 CPU-minutes)"
t0=$SECONDS
# Upstream's build sets up its own GOPATH under _output; GO111MODULE=off is
# what Kubernetes 1.20 builds with.
GO111MODULE=off GOFLAGS= KUBE_VERBOSE=0 make WHAT=cmd/kube-apiserver >build.log 2>&1 || {
	tail -30 build.log >&2
	log "build failed"
	exit 1
}
out=_output/local/bin/linux/amd64/kube-apiserver
[ -x "$out" ] || out=$(find _output -type f -name kube-apiserver -perm -u+x | head -1)
[ -n "$out" ] && [ -x "$out" ] || {
	log "the build left no kube-apiserver binary"
	exit 1
}
mkdir -p "$CACHE"
install -m 0755 "$out" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
log "built in $((SECONDS - t0)) s: $("$BIN" --version 2>/dev/null || true)"
echo "$BIN"
