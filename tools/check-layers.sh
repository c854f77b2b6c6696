#!/usr/bin/env bash
# The module map's rule (docs/architecture.md): a library calls only the
# libraries below it, agent -> rollout -> dp. Reads the archives' symbols
# and lists every call from a library into one above it; exits 1 if any.
#
#   tools/check-layers.sh [BUILD]      (make check-layers; BUILD=build)
set -euo pipefail
build=${1:-build}
layers=(dp rollout agent) # lowest first

declare -A owner=() # symbol -> the layer that defines it
for i in "${!layers[@]}"; do
	lib=$build/libcanary-${layers[i]}.a
	[ -f "$lib" ] || { echo "check-layers: $lib missing: run make" >&2; exit 2; }
	while read -r sym; do
		owner[$sym]=$i
	done < <(nm --defined-only -g "$lib" 2>/dev/null | awk 'NF == 3 { print $3 }')
done

bad=0
for i in "${!layers[@]}"; do
	lib=$build/libcanary-${layers[i]}.a
	# "ARCHIVE:MEMBER.o: U SYMBOL" for every undefined symbol of a member.
	while read -r where _ sym; do
		j=${owner[$sym]:-}
		if [ -n "$j" ] && [ "$j" -gt "$i" ]; then
			member=${where%:}
			echo "check-layers: ${layers[i]}: ${member##*:} calls $sym of ${layers[j]}"
			bad=1
		fi
	done < <(nm -A -u "$lib" 2>/dev/null | awk '$2 == "U" { print $1, $2, $3 }')
done
[ "$bad" -eq 0 ] && echo "check-layers: no library calls one above it (${layers[*]})"
exit "$bad"
