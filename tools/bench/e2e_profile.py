#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Where the CPU of each profiled e2e run went, per request (e2e.sh --profile).

usage: e2e_profile.py DIR VARIANT...

DIR holds, per variant, VARIANT.data ("perf record -e cpu-clock -F HZ -a":
a software clock, so no PMU is needed; HZ is in DIR/hz) and VARIANT-wrk.txt
(the wrk output of the same seconds). Kernel symbols are put in groups by
name; the table gives CPU microseconds per request for each group, from
samples x (1/HZ) / requests, and DIR/profile.json the same figures with the
twenty heaviest symbols of each run.
"""
import json
import os
import re
import subprocess
import sys

# Groups, first match wins. Everything else is "the rest" (TCP, IP, the
# scheduler, nginx, wrk, ...), shared by every variant.
GROUPS = [
    ("canaryd programs", r"^bpf_prog_[0-9a-f]+_canary_"),
    ("tc hook", r"^(tc_run|tcx_run|cls_bpf_classify|__?tcf_classify|sch_handle_(ingress|egress))"),
    # bpf_lsm_* and bpf_skops_* are the kernel's own hook points, run with or without canaryd.
    ("BPF helpers, maps", r"^(bpf_(?!lsm_|skops_)|__bpf_|htab_|__htab_|lookup_nulls_elem_raw|"
                          r"lookup_elem_raw|pcpu_freelist|jhash)"),
    # What the BPF helpers and netfilter's NAT both call to change a packet.
    ("packet rewrite", r"^(inet_proto_csum_replace|skb_ensure_writable)"),
    ("netfilter", r"^(nf_|__nf_|nft_|__nft_|ipt_|ipv4_conntrack|ip_vs_|hash_conntrack)"),
    ("skb copies", r"^(pskb_expand_head|skb_copy|__pskb_pull_tail|skb_clone)"),
    ("idle", r"^(pv_native_safe_halt|default_idle|cpuidle_|intel_idle|acpi_idle|poll_idle)"),
]


def samples_by_symbol(data):
    """{symbol: samples} of one perf.data, from perf report's sample counts."""
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-n",
                          "--sort", "sym", "-g", "none"],
                         capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+\[.\]\s+(.*\S)", line)
        if m:
            syms[m.group(2)] = syms.get(m.group(2), 0) + int(m.group(1))
    return syms


def requests_of(wrk_txt):
    """Requests of a wrk output (direct3's three parts summed)."""
    with open(wrk_txt) as f:
        return sum(int(n) for n in re.findall(r"(\d+) requests in", f.read()))


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    pdir, variants = sys.argv[1], sys.argv[2:]
    with open(os.path.join(pdir, "hz")) as f:
        hz = int(f.read())
    names = [g[0] for g in GROUPS] + ["the rest"]
    rows = []
    for v in variants:
        syms = samples_by_symbol(os.path.join(pdir, v + ".data"))
        reqs = requests_of(os.path.join(pdir, v + "-wrk.txt"))
        if not reqs or not syms:
            print("e2e_profile: %s: no requests or no samples" % v, file=sys.stderr)
            return 1
        per = dict.fromkeys(names, 0)
        for sym, n in syms.items():
            per[next((g for g, rx in GROUPS if re.match(rx, sym)), "the rest")] += n
        us = 1e6 / hz / reqs
        busy = sum(n for g, n in per.items() if g != "idle")
        top = sorted(syms.items(), key=lambda kv: -kv[1])[:20]
        rows.append({"variant": v, "requests": reqs, "samples": sum(syms.values()),
                     "busy_us_per_req": busy * us,
                     "us_per_req": {g: per[g] * us for g in names},
                     "top": [{"symbol": s, "us_per_req": n * us} for s, n in top]})
    print("| variant | requests | busy CPU µs/req | " + " | ".join(names) + " |")
    print("|---|---:|---:|" + "---:|" * len(names))
    for r in rows:
        print("| %s | %d | %.1f | %s |" % (r["variant"], r["requests"], r["busy_us_per_req"],
              " | ".join("%.2f" % r["us_per_req"][g] for g in names)))
    with open(os.path.join(pdir, "profile.json"), "w") as f:
        json.dump({"hz": hz, "runs": rows}, f, indent=1)
    print("\nCPU µs per request by symbol group (perf cpu-clock at %d Hz, all CPUs); "
          "JSON: %s" % (hz, os.path.join(pdir, "profile.json")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
