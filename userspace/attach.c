// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fnmatch.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdint.h>
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

static const char *const mode_names[] = {
	[ATTACH_TC] = "tc",
	[ATTACH_XDP] = "xdp",
	[ATTACH_TCX] = "tcx",
};

int attach_mode_parse(const char *s, enum attach_mode *mode)
{
	size_t i;

	for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (!strcmp(s, mode_names[i])) {
			*mode = (enum attach_mode)i;
			return 0;
		}
	}
	return -1;
}

const char *attach_mode_name(enum attach_mode mode)
{
	return (size_t)mode < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[mode] : "?";
}

/*
 * Kernel notes that are no error here: re-attaching finds the clsact qdisc
 * already there; looking for a filter of ours finds none on a fresh
 * interface, or no clsact qdisc at all.
 */
static bool note_expected(const char *line)
{
	return strstr(line, "Exclusivity flag on") ||
	       strstr(line, "Cannot find specified filter") ||
	       strstr(line, "Parent Qdisc doesn't exists");
}

int attach_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];

	/* libbpf's warnings explain load failures; its debug chatter is not wanted. */
	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	return note_expected(line) ? 0 : fputs(line, stderr);
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
 * A program's full name: the kernel keeps 15 characters of it, its BTF the
 * whole function name, which is what bpftool shows.
 */
static void prog_full_name(int fd, const struct bpf_prog_info *info, char *name, size_t size)
{
	struct bpf_func_info func = {};
	struct bpf_prog_info fi = {};
	__u32 len = sizeof(fi);
	const struct btf_type *t;
	struct btf *btf;

	snprintf(name, size, "%s", info->name);
	if (!info->btf_id || !info->nr_func_info)
		return;
	fi.nr_func_info = 1;
	fi.func_info_rec_size = sizeof(func);
	fi.func_info = (__u64)(uintptr_t)&func;
	if (bpf_obj_get_info_by_fd(fd, &fi, &len))
		return;
	btf = btf__load_from_kernel_by_id(info->btf_id);
	if (!btf)
		return;
	t = btf__type_by_id(btf, func.type_id);
	if (t && btf_is_func(t))
		snprintf(name, size, "%s", btf__name_by_offset(btf, t->name_off));
	btf__free(btf);
}

/*
 * 1 if program id is one of ours, 0 if not, -errno if it cannot be told:
 * looking a program up by id needs CAP_SYS_ADMIN, and guessing would either
 * leave our programs behind or remove someone else's. name, when not NULL,
 * gets its full name (ATTACH_PROG_NAME_LEN bytes).
 */
static int prog_ours_named(__u32 id, char *name)
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
	if (ours > 0 && name)
		prog_full_name(fd, &info, name, ATTACH_PROG_NAME_LEN);
	close(fd);
	return ours;
}

static int prog_id_is_ours(__u32 id)
{
	return prog_ours_named(id, NULL);
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

/* The id of the program in the filter at our handle and priority, or 0. */
static __u32 tc_prog_id(int ifindex, enum bpf_tc_attach_point point)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CANARY_TC_HANDLE, .priority = CANARY_TC_PRIORITY);

	return bpf_tc_query(&hook, &opts) ? 0 : opts.prog_id;
}

/* Remove our filter at point; 1 if one was removed, 0 if none was ours. */
static int tc_detach(int ifindex, enum bpf_tc_attach_point point)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CANARY_TC_HANDLE, .priority = CANARY_TC_PRIORITY);
	__u32 id = tc_prog_id(ifindex, point);
	int err, ours;

	if (!id)
		return 0; /* no filter at our handle and priority */
	ours = prog_id_is_ours(id);
	if (ours <= 0)
		return ours;
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
 * tcx (Linux 6.6+) runs a device's BPF programs before its clsact filters,
 * without the classifier layers between the device and a tc filter
 * (tc_run, tcf_classify, cls_bpf_classify). libbpf 1.1 predates it: the
 * attach points are the kernel's numbers for them, given to the generic
 * BPF_PROG_ATTACH, BPF_PROG_DETACH and BPF_PROG_QUERY calls. Attached
 * without a link, a program belongs to the device as a tc filter does.
 * Our programs' TC_ACT_OK is tcx's TCX_PASS: the packet skips the tcx
 * programs after ours and the clsact filters, as it skips the filters after
 * ours at priority 1.
 */
enum tcx_point {
	TCX_INGRESS = 46, /* BPF_TCX_INGRESS */
	TCX_EGRESS = 47,  /* BPF_TCX_EGRESS */
};

#define TCX_F_BEFORE  (1U << 3) /* BPF_F_BEFORE: with no relative program, first */
#define TCX_QUERY_MAX 64	/* programs read per device and direction */

/* The id of the program behind fd (one of ours, loaded by this process), or 0. */
static __u32 prog_id_of(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/*
 * The id of our program at a tcx point into *id, 0 if none; self_id is
 * ours without asking (the program about to be attached), every other one
 * is asked by id. *untold is the first -errno of a program that could not
 * be told apart (no CAP_SYS_ADMIN), else 0. Returns -errno when the list
 * cannot be read. A kernel without tcx refuses the query (EINVAL): nothing
 * is attached there. The kernel also writes fields newer than libbpf 1.1's
 * query arguments (the list's revision); they fall inside libbpf's own
 * union bpf_attr.
 */
static int tcx_find_ours(int ifindex, enum tcx_point point, __u32 self_id, __u32 *id, int *untold)
{
	__u32 ids[TCX_QUERY_MAX] = { 0 }, i;
	LIBBPF_OPTS(bpf_prog_query_opts, q, .prog_ids = ids, .prog_cnt = TCX_QUERY_MAX);
	int err;

	*id = 0;
	*untold = 0;
	err = bpf_prog_query_opts(ifindex, (enum bpf_attach_type)point, &q);
	if (err == -EINVAL)
		return 0;
	if (err && err != -ENOSPC) /* ENOSPC: more than we read; the first ones are there */
		return err;
	for (i = 0; i < q.prog_cnt && i < TCX_QUERY_MAX; i++) {
		int ours = ids[i] == self_id ? 1 : prog_id_is_ours(ids[i]);

		if (ours > 0) {
			*id = ids[i];
			return 0;
		}
		if (ours < 0 && !*untold)
			*untold = ours;
	}
	return 0;
}

/*
 * Attach prog_fd first at a tcx point, or in place of ours there
 * (atomically). A program that cannot be told apart is left where it is:
 * were it an older one of ours, it would sit behind the new one, which
 * ends every packet's way through the list, and never run.
 */
static int tcx_attach(int ifindex, enum tcx_point point, int prog_fd)
{
	LIBBPF_OPTS(bpf_prog_attach_opts, opts, .flags = TCX_F_BEFORE);
	__u32 self_id = prog_id_of(prog_fd), old_id;
	int err, untold, old_fd = -1;

	err = tcx_find_ours(ifindex, point, self_id, &old_id, &untold);
	if (err)
		return err;
	if (old_id && old_id == self_id)
		return 0; /* attached already */
	if (old_id)
		old_fd = bpf_prog_get_fd_by_id(old_id);
	if (old_fd >= 0) {
		opts.flags = BPF_F_REPLACE;
		opts.replace_prog_fd = old_fd;
	}
	err = bpf_prog_attach_opts(prog_fd, ifindex, (enum bpf_attach_type)point, &opts);
	if (old_fd >= 0)
		close(old_fd);
	return err;
}

/* Remove our program at a tcx point; 1 if one was removed, 0 if none was ours. */
static int tcx_detach(int ifindex, enum tcx_point point)
{
	int err, untold, fd;
	__u32 id;

	err = tcx_find_ours(ifindex, point, 0, &id, &untold);
	if (err || !id)
		return err ? err : untold;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* ENOENT: gone meanwhile */
	err = bpf_prog_detach2(fd, ifindex, (enum bpf_attach_type)point);
	close(fd);
	if (err == -ENOENT)
		return 0;
	return err ? err : 1;
}

/*
 * After attaching in one mode, remove ours from the hooks that mode does
 * not use, so a packet is not handled twice. When the program there cannot
 * be told apart (no CAP_SYS_ADMIN), it is left alone: it may be another
 * tool's, and one of ours would only count its packets twice, never
 * translate them twice (tcx's and XDP's run first and end the packet's
 * way through the hooks after them, or translate before tc sees it).
 */
static void remove_other_hooks(int ifindex, enum attach_mode mode)
{
	struct {
		const char *hook;
		int rc;
	} r[3] = { { NULL, 0 } };
	char idx[16];
	int i;

	if (mode == ATTACH_TCX) {
		r[0].hook = "tc ingress", r[0].rc = tc_detach(ifindex, BPF_TC_INGRESS);
		r[1].hook = "tc egress", r[1].rc = tc_detach(ifindex, BPF_TC_EGRESS);
	} else {
		r[0].hook = "tcx ingress", r[0].rc = tcx_detach(ifindex, TCX_INGRESS);
		r[1].hook = "tcx egress", r[1].rc = tcx_detach(ifindex, TCX_EGRESS);
	}
	if (mode == ATTACH_XDP)
		r[2].hook = "tc ingress", r[2].rc = tc_detach(ifindex, BPF_TC_INGRESS);
	else
		r[2].hook = "xdp", r[2].rc = xdp_detach(ifindex);
	snprintf(idx, sizeof(idx), "%d", ifindex);
	for (i = 0; i < 3; i++)
		if (r[i].rc < 0)
			log_event(CLOG_WARN, "cannot tell whose a program is: left in place",
				  "ifindex", idx, "hook", r[i].hook, "mode", attach_mode_name(mode),
				  "error", strerror(-r[i].rc));
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

/*
 * tcx ingress and egress. A kernel without tcx (before 6.6) refuses the
 * attach point: -EINVAL, and nothing was attached.
 */
static int attach_tcx(const struct canary_dp *dp, int ifindex)
{
	int err;

	err = tcx_attach(ifindex, TCX_EGRESS, dp_prog_fd(dp, DP_PROG_TC_EGRESS));
	if (err)
		return err;
	return tcx_attach(ifindex, TCX_INGRESS, dp_prog_fd(dp, DP_PROG_TC_INGRESS));
}

static void log_tcx_refused(int ifindex)
{
	char name[IF_NAMESIZE] = "?", idx[16];

	if_indextoname((unsigned int)ifindex, name);
	snprintf(idx, sizeof(idx), "%d", ifindex);
	log_event(CLOG_WARN, "tcx refused: tc attached instead", "ifname", name, "ifindex", idx,
		  "why", "the kernel has no tcx (Linux 6.6 or later)");
}

int attach_interface(const struct canary_dp *dp, int ifindex, enum attach_mode *mode)
{
	int err;

	if (*mode == ATTACH_TCX) {
		err = attach_tcx(dp, ifindex);
		if (!err)
			remove_other_hooks(ifindex, *mode);
		if (err != -EINVAL)
			return err;
		log_tcx_refused(ifindex);
		*mode = ATTACH_TC;
	}
	err = tc_attach(ifindex, BPF_TC_EGRESS, dp_prog_fd(dp, DP_PROG_TC_EGRESS));
	if (err)
		return err;
	err = attach_ingress(dp, ifindex, mode);
	if (!err)
		remove_other_hooks(ifindex, *mode);
	return err;
}

int detach_interface(int ifindex, unsigned int *removed)
{
	int rc[5], i, err = 0;

	rc[0] = tc_detach(ifindex, BPF_TC_INGRESS);
	rc[1] = tc_detach(ifindex, BPF_TC_EGRESS);
	rc[2] = xdp_detach(ifindex);
	rc[3] = tcx_detach(ifindex, TCX_INGRESS);
	rc[4] = tcx_detach(ifindex, TCX_EGRESS);
	for (i = 0; i < 5; i++) {
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
	enum attach_mode attached;
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
		attached = mode;
		err = attach_interface(dp, (int)it->if_index, &attached);
		if (err) {
			log_event(CLOG_ERROR, "attach failed", "ifname", it->if_name, "ifindex",
				  idx, "mode", attach_mode_name(mode), "error", strerror(-err),
				  NULL);
			first_err = first_err ? first_err : err;
			continue;
		}
		log_event(CLOG_INFO, "attached", "ifname", it->if_name, "ifindex", idx, "mode",
			  attach_mode_name(attached));
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

/* Add program id at hook of interface it to the list if it is ours; -errno if not told. */
static int list_if_ours(struct attachment *out, size_t max, size_t *n,
			const struct if_nameindex *it, const char *hook, __u32 id)
{
	char name[ATTACH_PROG_NAME_LEN];
	int ours;

	if (!id)
		return 0;
	ours = prog_ours_named(id, name);
	if (ours <= 0)
		return ours;
	if (*n < max) {
		snprintf(out[*n].ifname, sizeof(out[*n].ifname), "%s", it->if_name);
		out[*n].ifindex = (int)it->if_index;
		out[*n].hook = hook;
		out[*n].prog_id = id;
		snprintf(out[*n].prog_name, sizeof(out[*n].prog_name), "%s", name);
	}
	(*n)++;
	return 0;
}

/* Our programs on one interface, in hook order (list_if_ours()). */
static int list_interface(struct attachment *out, size_t max, size_t *n,
			  const struct if_nameindex *it)
{
	int ifindex = (int)it->if_index, err, untold_in = 0, untold_out = 0;
	__u32 tcx_in = 0, tcx_out = 0, xdp = 0;

	err = tcx_find_ours(ifindex, TCX_INGRESS, 0, &tcx_in, &untold_in);
	if (!err)
		err = tcx_find_ours(ifindex, TCX_EGRESS, 0, &tcx_out, &untold_out);
	if (err || untold_in || untold_out)
		return err ? err : (untold_in ? untold_in : untold_out);
	bpf_xdp_query_id(ifindex, 0, &xdp);
	err = list_if_ours(out, max, n, it, "xdp", xdp);
	if (!err)
		err = list_if_ours(out, max, n, it, "tcx ingress", tcx_in);
	if (!err)
		err = list_if_ours(out, max, n, it, "tc ingress",
				   tc_prog_id(ifindex, BPF_TC_INGRESS));
	if (!err)
		err = list_if_ours(out, max, n, it, "tcx egress", tcx_out);
	if (!err)
		err = list_if_ours(out, max, n, it, "tc egress",
				   tc_prog_id(ifindex, BPF_TC_EGRESS));
	return err;
}

int attach_list(struct attachment *out, size_t max)
{
	struct if_nameindex *ifs, *it;
	size_t n = 0;
	int err = 0;

	ifs = if_nameindex();
	if (!ifs)
		return -errno;
	for (it = ifs; it->if_index && !err; it++)
		err = list_interface(out, max, &n, it);
	if_freenameindex(ifs);
	return err ? err : (int)n;
}
