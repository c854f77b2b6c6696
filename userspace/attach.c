// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fnmatch.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attach.h"
#include "log.h"

/* Every canaryd program's name starts so (see bpf/canary.bpf.c). */
#define OUR_PROG_PREFIX "canary_"

int attach_mode_parse(const char *s, enum attach_mode *mode)
{
	if (!strcmp(s, "tc"))
		*mode = ATTACH_TC;
	else if (!strcmp(s, "xdp"))
		*mode = ATTACH_XDP;
	else
		return -1;
	return 0;
}

const char *attach_mode_name(enum attach_mode mode)
{
	return mode == ATTACH_XDP ? "xdp" : "tc";
}

bool ifname_matches(const char *globs, const char *ifname)
{
	char buf[256];
	char *tok, *save = NULL;

	if (!strcmp(ifname, "lo") || snprintf(buf, sizeof(buf), "%s", globs) >= (int)sizeof(buf))
		return false;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!fnmatch(tok, ifname, 0))
			return true;
	return false;
}

/*
 * 1 if program id is one of ours, 0 if not, -errno if it cannot be told:
 * looking a program up by id needs CAP_SYS_ADMIN, and guessing would either
 * leave our programs behind or remove someone else's.
 */
static int prog_id_is_ours(__u32 id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd, ours;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* ENOENT: gone meanwhile */
	ours = bpf_obj_get_info_by_fd(fd, &info, &len) ?
		       -errno :
		       !strncmp(info.name, OUR_PROG_PREFIX, strlen(OUR_PROG_PREFIX));
	close(fd);
	return ours;
}

static int tc_attach(int ifindex, enum bpf_tc_attach_point point, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CANARY_TC_HANDLE, .priority = CANARY_TC_PRIORITY,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int err;

	/* The clsact qdisc may be there already (ours or someone else's): keep it. */
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&hook, &opts);
}

/* Remove our filter at point; 1 if one was removed, 0 if none was ours. */
static int tc_detach(int ifindex, enum bpf_tc_attach_point point)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CANARY_TC_HANDLE, .priority = CANARY_TC_PRIORITY);
	int err, ours;

	if (bpf_tc_query(&hook, &opts))
		return 0; /* no filter at our handle and priority */
	ours = prog_id_is_ours(opts.prog_id);
	if (ours <= 0)
		return ours;
	opts.prog_id = 0;
	opts.prog_fd = 0;
	opts.flags = 0;
	err = bpf_tc_detach(&hook, &opts);
	return err ? err : 1;
}

static int xdp_detach(int ifindex)
{
	__u32 id = 0;
	int err, ours;

	if (bpf_xdp_query_id(ifindex, 0, &id) || !id)
		return 0;
	ours = prog_id_is_ours(id);
	if (ours <= 0)
		return ours;
	err = bpf_xdp_detach(ifindex, 0, NULL);
	return err ? err : 1;
}

/*
 * After attaching one kind of ingress, remove ours of the other kind, so a
 * packet is not handled twice. When the program there cannot be told apart
 * (no CAP_SYS_ADMIN), it is left alone: it may be another tool's, and one of
 * ours would only count its packets twice, never translate them twice.
 */
static void remove_other_ingress(int ifindex, enum attach_mode mode)
{
	int rc = mode == ATTACH_XDP ? tc_detach(ifindex, BPF_TC_INGRESS) : xdp_detach(ifindex);
	char idx[16];

	if (rc >= 0)
		return;
	snprintf(idx, sizeof(idx), "%d", ifindex);
	log_event(CLOG_WARN, "cannot tell whose the other ingress program is: left in place",
		  "ifindex", idx, "error", strerror(-rc));
}

/* The interface's driver name (ethtool's), or "" when it cannot be read. */
static void driver_name(int ifindex, char *drv, size_t size)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr;
	int fd;

	drv[0] = '\0';
	memset(&ifr, 0, sizeof(ifr));
	if (!if_indextoname((unsigned int)ifindex, ifr.ifr_name))
		return;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	ifr.ifr_data = (void *)&info;
	if (!ioctl(fd, SIOCETHTOOL, &ifr))
		snprintf(drv, size, "%.*s", (int)sizeof(info.driver), info.driver);
	close(fd);
}

/*
 * Devices whose XDP programs run on skbs the stack built: a packet a local
 * socket sent may still carry CHECKSUM_PARTIAL (its L4 checksum field holds
 * only the pseudo-header sum, to be completed later). XDP cannot tell, and
 * its checksum update would be wrong as soon as something completes the
 * checksum (a NIC, or a device without checksum offload). tc's helpers do
 * know the skb's checksum state. Cilium, too, runs XDP only on physical
 * devices.
 */
static bool driver_xdp_sees_partial_csum(const char *drv)
{
	return !strcmp(drv, "veth") || !strcmp(drv, "tun") || !strcmp(drv, "netkit");
}

static void log_xdp_refused(int ifindex, const char *drv, const char *why)
{
	char name[IF_NAMESIZE] = "?", idx[16];

	if_indextoname((unsigned int)ifindex, name);
	snprintf(idx, sizeof(idx), "%d", ifindex);
	log_event(CLOG_WARN, "xdp refused: tc ingress attached instead", "ifname", name, "ifindex",
		  idx, "driver", drv[0] ? drv : "?", "why", why);
}

/*
 * Native XDP only: generic (skb-mode) XDP sees the stack's skbs, with the
 * same checksum problem. Returns 0, -EOPNOTSUPP when the device has no
 * native XDP, or another -errno.
 */
static int xdp_attach_native(const struct canary_dp *dp, int ifindex)
{
	return bpf_xdp_attach(ifindex, dp_prog_fd(dp, DP_PROG_XDP_INGRESS), XDP_FLAGS_DRV_MODE,
			      NULL);
}

/* Is an XDP program attached (ours, after attach_interface)? */
static bool xdp_attached(int ifindex)
{
	__u32 id = 0;

	return !bpf_xdp_query_id(ifindex, 0, &id) && id;
}

/* XDP ingress where it is safe; otherwise tc ingress, with a log line. */
static int attach_ingress(const struct canary_dp *dp, int ifindex, enum attach_mode *mode)
{
	char drv[sizeof(((struct ethtool_drvinfo *)0)->driver) + 1];
	int err;

	if (*mode == ATTACH_XDP) {
		driver_name(ifindex, drv, sizeof(drv));
		if (driver_xdp_sees_partial_csum(drv)) {
			log_xdp_refused(ifindex, drv,
					"its XDP sees packets whose checksum is "
					"not complete yet (CHECKSUM_PARTIAL)");
			*mode = ATTACH_TC;
		} else {
			err = xdp_attach_native(dp, ifindex);
			if (err != -EOPNOTSUPP)
				return err;
			log_xdp_refused(ifindex, drv,
					"no native XDP; generic XDP sees packets whose "
					"checksum is not complete yet");
			*mode = ATTACH_TC;
		}
	}
	return tc_attach(ifindex, BPF_TC_INGRESS, dp_prog_fd(dp, DP_PROG_TC_INGRESS));
}

int attach_interface(const struct canary_dp *dp, int ifindex, enum attach_mode mode)
{
	int err;

	err = tc_attach(ifindex, BPF_TC_EGRESS, dp_prog_fd(dp, DP_PROG_TC_EGRESS));
	if (err)
		return err;
	err = attach_ingress(dp, ifindex, &mode);
	if (!err)
		remove_other_ingress(ifindex, mode);
	return err;
}

int detach_interface(int ifindex, unsigned int *removed)
{
	int rc[3], i, err = 0;

	rc[0] = tc_detach(ifindex, BPF_TC_INGRESS);
	rc[1] = tc_detach(ifindex, BPF_TC_EGRESS);
	rc[2] = xdp_detach(ifindex);
	for (i = 0; i < 3; i++) {
		if (rc[i] < 0)
			err = rc[i];
		else if (removed)
			*removed += rc[i];
	}
	return err;
}

int attach_matching(const struct canary_dp *dp, const char *globs, enum attach_mode mode,
		    unsigned int *count)
{
	struct if_nameindex *ifs, *it;
	char idx[16];
	int err, first_err = 0;

	*count = 0;
	ifs = if_nameindex();
	if (!ifs)
		return -errno;
	for (it = ifs; it->if_index; it++) {
		if (!ifname_matches(globs, it->if_name))
			continue;
		snprintf(idx, sizeof(idx), "%u", it->if_index);
		err = attach_interface(dp, (int)it->if_index, mode);
		if (err) {
			log_event(CLOG_ERROR, "attach failed", "ifname", it->if_name, "ifindex",
				  idx, "mode", attach_mode_name(mode), "error", strerror(-err),
				  NULL);
			first_err = first_err ? first_err : err;
			continue;
		}
		log_event(
			CLOG_INFO, "attached", "ifname", it->if_name, "ifindex", idx, "mode",
			attach_mode_name(xdp_attached((int)it->if_index) ? ATTACH_XDP : ATTACH_TC));
		(*count)++;
	}
	if_freenameindex(ifs);
	return first_err;
}

int detach_all(unsigned int *removed)
{
	struct if_nameindex *ifs, *it;
	int err, first_err = 0;

	ifs = if_nameindex();
	if (!ifs)
		return -errno;
	for (it = ifs; it->if_index; it++) {
		err = detach_interface((int)it->if_index, removed);
		if (err)
			first_err = first_err ? first_err : err;
	}
	if_freenameindex(ifs);
	return first_err;
}
