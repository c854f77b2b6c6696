// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "linkwatch.h"

int linkwatch_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* The IFLA_IFNAME attribute of one RTM_NEWLINK message, or NULL. */
static const char *link_name(struct nlmsghdr *nh)
{
	struct ifinfomsg *ifi = NLMSG_DATA(nh);
	int len = (int)(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi)));
	struct rtattr *rta;

	for (rta = IFLA_RTA(ifi); RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type == IFLA_IFNAME && RTA_PAYLOAD(rta) <= IF_NAMESIZE)
			return RTA_DATA(rta);
	return NULL;
}

int linkwatch_read(int fd, void (*fn)(int ifindex, const char *ifname, void *arg), void *arg)
{
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *nh;
	int events = 0, rounds;

	/* Bounded: a burst of link events is drained over later polls if need be. */
	for (rounds = 0; rounds < 64; rounds++) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);

		if (len < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? events : -errno;
		for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)len);
		     nh = NLMSG_NEXT(nh, len)) {
			const char *name;

			if (nh->nlmsg_type != RTM_NEWLINK)
				continue;
			name = link_name(nh);
			if (name) {
				fn(((struct ifinfomsg *)NLMSG_DATA(nh))->ifi_index, name, arg);
				events++;
			}
		}
	}
	return events;
}
