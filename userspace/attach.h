/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Attaching the programs to interfaces of the current network namespace:
 * tc clsact ingress + egress, or XDP ingress + tc egress. Attachments are
 * netlink objects owned by the interface, not by this process, so they
 * outlive the agent ("fail static") until detached here.
 */
#ifndef CANARY_ATTACH_H
#define CANARY_ATTACH_H

#include <stdbool.h>

#include "dataplane.h"

/* Our tc filters use this handle and priority, so they can be found and replaced. */
#define CANARY_TC_HANDLE   0xca1
#define CANARY_TC_PRIORITY 1

enum attach_mode {
	ATTACH_TC,  /* tc ingress + tc egress */
	ATTACH_XDP, /* XDP ingress + tc egress */
};

int attach_mode_parse(const char *s, enum attach_mode *mode);
const char *attach_mode_name(enum attach_mode mode);

/* Comma-separated shell globs, e.g. "veth*,eth0". Loopback never matches. */
bool ifname_matches(const char *globs, const char *ifname);

/* Attach (or atomically replace) our programs on one interface. */
int attach_interface(const struct canary_dp *dp, int ifindex, enum attach_mode mode);
/* Remove our programs from one interface; others' programs are left alone. */
int detach_interface(int ifindex, unsigned int *removed);

/* Attach to every matching interface; *count is how many were attached. */
int attach_matching(const struct canary_dp *dp, const char *globs, enum attach_mode mode,
		    unsigned int *count);
/* Detach from every interface of the namespace. */
int detach_all(unsigned int *removed);

#endif /* CANARY_ATTACH_H */
