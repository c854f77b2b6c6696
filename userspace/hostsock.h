/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Host-local clients (bpf/sock.bpf.c): the cgroup programs that split a
 * node's own connections to a VIP at connect(), attached with bpf_link and
 * pinned under the agent's bpffs directory, so they stay attached when the
 * agent stops or restarts, as the data path does.
 */
#ifndef CANARY_HOSTSOCK_H
#define CANARY_HOSTSOCK_H

#include <stdbool.h>
#include <stddef.h>

struct canary_dp;

/* --host-cgroup's value that attaches nothing (and removes what was attached). */
#define HOSTSOCK_OFF "off"

struct hostsock_opts {
	const char *cgroup; /* a cgroup v2 directory; NULL: the root; HOSTSOCK_OFF */
	bool netns_only;    /* only sockets of the agent's own network namespace */
};

/*
 * Load the programs over dp's maps and attach them to the cgroup (or update
 * the pinned links of an earlier run in place). HOSTSOCK_OFF removes any
 * pinned links instead.
 */
int hostsock_start(struct canary_dp *dp, const char *bpffs, const struct hostsock_opts *o);
/*
 * An abort's reset for host sockets: destroy the canary sockets (in the
 * agent's network namespace) chosen at or before their service's reset
 * epoch. -EOPNOTSUPP when the kernel cannot (they drain instead).
 */
int hostsock_reset(unsigned int *destroyed);
/* Close what hostsock_start opened; the pinned links stay. */
void hostsock_stop(void);
/* Remove the pinned links (which detaches the programs) and the socket map. */
int hostsock_unpin(const char *bpffs);
/* The cgroup v2 mount point, from /proc/self/mounts. */
int hostsock_cgroup_root(char *buf, size_t len);

#endif /* CANARY_HOSTSOCK_H */
