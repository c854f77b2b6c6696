#!/usr/bin/env bash
# --attach tcx: the programs run from the kernel's tcx lists (Linux 6.6+),
# with no clsact filter, and split as with tc. A restart under traffic
# replaces them in place with no request lost; a change of mode to tc and
# back moves them, never leaving two of ours on one interface; canaryctl
# attachments lists what is attached; canaryd --cleanup removes exactly one
# of ours per hook and direction.
set -u
source "$(dirname "$0")/lib.sh"

IFACES=(to-cl to-st1 to-st2 to-cn1 to-up)

# tcx_ids IFNAME ingress|egress: ids of the programs in that tcx list.
# BPF_PROG_QUERY with the tcx attach types (46, 47): Debian 12's bpftool and
# tc cannot list tcx.
tcx_ids() {
	in_ns node python3 - "$1" "$2" <<'EOF'
import ctypes, platform, socket, struct, sys
NR_BPF = {"x86_64": 321, "aarch64": 280}[platform.machine()]
BPF_PROG_QUERY = 16
libc = ctypes.CDLL(None, use_errno=True)
ids = (ctypes.c_uint32 * 64)()
attr = ctypes.create_string_buffer(64)
struct.pack_into("IIII", attr, 0, socket.if_nametoindex(sys.argv[1]),
                 {"ingress": 46, "egress": 47}[sys.argv[2]], 0, 0)
struct.pack_into("QI", attr, 16, ctypes.addressof(ids), 64)
if libc.syscall(ctypes.c_long(NR_BPF), BPF_PROG_QUERY, attr, 64):
    sys.exit("BPF_PROG_QUERY: errno %d" % ctypes.get_errno())
print(" ".join(str(ids[i]) for i in range(struct.unpack_from("I", attr, 24)[0])))
EOF
}

prog_name() { bpftool prog show id "$1" -j | jget 'd["name"]'; }

# tcx_names: "ifname dir name..." per interface and direction, names sorted.
tcx_names() {
	local i dir id names
	for i in "${IFACES[@]}"; do
		for dir in ingress egress; do
			names=""
			for id in $(tcx_ids "$i" "$dir"); do names="$names $(prog_name "$id")"; done
			echo "$i $dir${names}"
		done
	done
}

# tcx_expect NAME_IN NAME_OUT: every interface lists exactly these (none: "").
tcx_expect() {
	local i want=""
	for i in "${IFACES[@]}"; do
		want+="$i ingress${1:+ $1}"$'\n'"$i egress${2:+ $2}"$'\n'
	done
	[ "$(tcx_names)" = "${want%$'\n'}" ] || {
		tcx_names | sed 's/^/# tcx: /'
		return 1
	}
}

# legacy_filters: our clsact filters on the lab's interfaces, both directions.
legacy_filters() {
	local i dir n=0
	for i in "${IFACES[@]}"; do
		for dir in ingress egress; do
			n=$((n + $(tc -n "$(ns node)" filter show dev "$i" "$dir" 2>/dev/null |
				grep -c 'canary_tc_')))
		done
	done
	echo "$n"
}

# ctl_hooks: "ifname:hook:program" per attachment canaryctl lists, sorted.
ctl_hooks() {
	canaryctl -o json attachments |
		jget '" ".join(sorted("%s:%s:%s" % (a["interface"], a["hook"], a["program"]) for a in d))'
}
# want_hooks tc|tcx: the same for ingress + egress of that kind on every interface.
want_hooks() {
	python3 -c 'import sys; print(" ".join(sorted("%s:%s %s:canary_tc_%s" % (i, sys.argv[1], d, d)
		for i in sys.argv[2:] for d in ("ingress", "egress"))))' "$1" "${IFACES[@]}"
}

attached_lines() { grep -c "msg=attached .*mode=$1" "$LAB_DIR/canaryd.log"; }

lab_standard 30 --attach tcx
check "tcx: attached on the ${#IFACES[@]} interfaces ($(attached_lines tcx) log lines)" \
	expect "$(attached_lines tcx) == ${#IFACES[@]}"
check "tcx: one program of ours per interface and direction" \
	tcx_expect canary_tc_ingress canary_tc_egress
check "tcx: no clsact filter of ours" expect "$(legacy_filters) == 0"
check "canaryctl attachments lists the tcx programs, nothing else" \
	test "$(ctl_hooks)" = "$(want_hooks tcx)"
first_ids=$(tcx_ids to-cl ingress)

out=$(lab_load --mode newconn --connections 4 --requests 2000)
echo "# tcx newconn: $out"
n=$(echo "$out" | jget 'd["ok"]')
cn=$(echo "$out" | jget 'd["backends"].get("cn1", 0)')
share=$(python3 -c "print(round(100.0 * $cn / $n, 2))")
# Binomial sd at n=2000, p=0.3 is 1.02 points: +-4.5 points is over 4 sd.
check "tcx: every request answered ($n of 2000)" expect "$n == 2000"
check "tcx: canary share $share% within 30 +- 4.5" expect "abs($share - 30) <= 4.5"
check "tcx: kernel canary requests == client's ($cn)" expect "$(metric canary requests) == $cn"

# A restart loads new programs and puts them in place of the old ones.
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 300 --duration-s 4 \
	--timeout-ms 3000
load=$LAB_LOAD_PID
sleep 1
lab_agent_stop
lab_agent --attach tcx
wait "$load"
failed=$(lab_failed "$LAB_DIR/load.out")
echo "# load across the restart: $(tail -1 "$LAB_DIR/load.out")"
check "restart: still one program of ours per interface and direction" \
	tcx_expect canary_tc_ingress canary_tc_egress
check "restart: the new program replaced the old ($first_ids -> $(tcx_ids to-cl ingress))" \
	expect "'$(tcx_ids to-cl ingress)' != '$first_ids'"
check "restart: no request failed across it ($failed)" expect "$failed == 0"

# To tc and back.
lab_agent_stop
lab_agent --attach tc
check "tcx -> tc: the tcx lists are empty" tcx_expect "" ""
check "tcx -> tc: our clsact filters, 2 per interface" \
	expect "$(legacy_filters) == 2 * ${#IFACES[@]}"
check "canaryctl attachments lists the clsact filters, nothing else" \
	test "$(ctl_hooks)" = "$(want_hooks tc)"
out=$(lab_load --mode newconn --connections 4 --requests 500)
check "tcx -> tc: every request answered" expect "$(echo "$out" | jget 'd["ok"]') == 500"
lab_agent_stop
lab_agent --attach tcx
check "tc -> tcx: one program of ours per interface and direction" \
	tcx_expect canary_tc_ingress canary_tc_egress
check "tc -> tcx: no clsact filter of ours" expect "$(legacy_filters) == 0"
out=$(lab_load --mode newconn --connections 4 --requests 500)
check "tc -> tcx: every request answered" expect "$(echo "$out" | jget 'd["ok"]') == 500"

lab_agent_stop
in_ns node "$LAB_BUILD/canaryd" --cleanup --bpffs "$LAB_BPFFS" >"$LAB_DIR/cleanup.log" 2>&1
removed=$(sed -n 's/.*programs_detached=\([0-9]*\).*/\1/p' "$LAB_DIR/cleanup.log")
check "--cleanup detached 2 programs per interface (${removed:-none})" \
	expect "${removed:-0} == 2 * ${#IFACES[@]}"
check "--cleanup: the tcx lists are empty" tcx_expect "" ""
check "canaryctl attachments: none left ($(ctl_hooks))" test -z "$(ctl_hooks)"
lab_finish
