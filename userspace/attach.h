/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Attaching the programs to interfaces of the current network namespace:
 * tc clsact ingress + egress, tcx ingress + egress, or XDP ingress + tc
 * egress. Attachments belong to the interface, not to this process (tc
 * filters and XDP programs through netlink, tcx programs through
 * BPF_PROG_ATTACH without a link), so they outlive the agent ("fail
 * static") until detached here.
 */
#ifndef CANARY_ATTACH_H
#define CANARY_ATTACH_H

#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "dataplane.h"

/* Our tc filters use this handle and priority, so they can be found and replaced. */
#define CANARY_TC_HANDLE   0xca1
#define CANARY_TC_PRIORITY 1

enum attach_mode {
	ATTACH_TC,  /* tc ingress + tc egress */
	ATTACH_XDP, /* XDP ingress + tc egress */
	ATTACH_TCX, /* tcx ingress + tcx egress (Linux 6.6+) */
};

int attach_mode_parse(const char *s, enum attach_mode *mode);
const char *attach_mode_name(enum attach_mode mode);

/*
 * libbpf's print callback for canaryd and canaryctl: warnings to stderr,
 * without debug lines and without the kernel notes attaching expects.
 */
int attach_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap);

/* Comma-separated shell globs, e.g. "veth*,eth0". Loopback never matches. */
bool ifname_matches(const char *globs, const char *ifname);

/*
 * Attach (or atomically replace) our programs on one interface in *mode;
 * *mode becomes the mode attached (tc where XDP or tcx was refused).
 */
int attach_interface(const struct canary_dp *dp, int ifindex, enum attach_mode *mode);
/* Remove our programs from one interface; others' programs are left alone. */
int detach_interface(int ifindex, unsigned int *removed);

/* Attach to every matching interface; *count is how many were attached. */
int attach_matching(const struct canary_dp *dp, const char *globs, enum attach_mode mode,
		    unsigned int *count);
/* Detach from every interface of the namespace. */
int detach_all(unsigned int *removed);

#define ATTACH_PROG_NAME_LEN 64

/* One of our programs where it is attached (attach_list()). */
struct attachment {
	char ifname[IF_NAMESIZE];
	int ifindex;
	const char *hook; /* "xdp", "tcx ingress", "tc ingress", "tcx egress", "tc egress" */
	__u32 prog_id;
	char prog_name[ATTACH_PROG_NAME_LEN]; /* the full name, from its BTF */
};

/*
 * Our programs on the interfaces of this namespace, in the order a packet
 * meets them on each interface: up to max into out. Returns how many there
 * are (more than max: the first max were written), or -errno (telling ours
 * from others' needs CAP_SYS_ADMIN). tcx lists are read with the kernel's
 * BPF_PROG_QUERY, which Debian 12's tc and bpftool do not do.
 */
int attach_list(struct attachment *out, size_t max);

#endif /* CANARY_ATTACH_H */
