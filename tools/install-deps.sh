#!/usr/bin/env bash
# Install every Debian package that canaryd's build, tests, demo and
# benchmarks need. Idempotent: packages already present are left alone, and
# nothing is downloaded when everything is there.
set -euo pipefail

PACKAGES=(
	# build: BPF programs, skeleton, user space
	clang llvm gcc make pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
	linux-libc-dev libc6-dev
	# agent libraries
	libyaml-dev libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev
	libseccomp-dev  # the agent's seccomp filter after start-up
	# tests: unit tests under sanitizers, labs
	libcmocka-dev libclang-rt-14-dev iproute2 util-linux procps ethtool python3 curl prometheus python3-yaml
	strace  # test_abort_slow_disk.sh slows the agent's fsyncs
	openssl  # test CAs and certificates: test_prometheus_tls.sh, test_api_tls_token.sh
	zsh fish  # tests/deploy: canaryctl's zsh and fish completions
	wrk nginx haproxy iptables  # benchmarks: tools/bench/e2e.sh
	linux-perf                  # tools/bench/e2e.sh --profile
	etcd-server etcd-client  # the fleet lab: a real 3-member etcd cluster (--coordinator etcd)
	# the Kubernetes labs: tools/kube-apiserver.sh builds the API server from
	# Debian's kubernetes source package with these (the build runs in make test)
	golang-go golang-github-modern-go-reflect2-dev dpkg-dev
	# code checks
	clang-format clang-tidy cppcheck
)

# kubectl for the Kubernetes labs: Debian's kubernetes-client, unless the
# machine already has a kubectl (any 1.20 or later client works).
command -v kubectl >/dev/null || PACKAGES+=(kubernetes-client)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root (or: sudo $0) to install them" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
