/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Notices interfaces that appear (pods starting) through rtnetlink. */
#ifndef CANARY_LINKWATCH_H
#define CANARY_LINKWATCH_H

/* A non-blocking NETLINK_ROUTE socket subscribed to link events, or -errno. */
int linkwatch_open(void);
/*
 * Read the pending events and call fn(ifindex, ifname, arg) for each new or
 * changed link. Returns the number of events, or -errno.
 */
int linkwatch_read(int fd, void (*fn)(int ifindex, const char *ifname, void *arg), void *arg);

#endif /* CANARY_LINKWATCH_H */
