// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sock.skel.h"
#include "dataplane.h"
#include "hostsock.h"
#include "log.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/*
 * One set of host programs per agent. The reset runs from the rollout's
 * effects, which reach the data plane through dp_ops and know no more
 * than the dp: hence one instance here rather than a handle to pass.
 */
static struct {
	struct sock *skel;
	struct bpf_link *iter_tcp; /* NULL: the kernel cannot destroy sockets */
	struct bpf_link *iter_udp;
} hs;

enum hs_prog { HS_CONNECT4, HS_SENDMSG4, HS_RECVMSG4, HS_GETPEERNAME4, HS_PROG_COUNT };

/* Pinned file names of the links under the bpffs directory. */
static const char *const link_names[HS_PROG_COUNT] = {
	[HS_CONNECT4] = "host_connect4_link",
	[HS_SENDMSG4] = "host_sendmsg4_link",
	[HS_RECVMSG4] = "host_recvmsg4_link",
	[HS_GETPEERNAME4] = "host_getpeername4_link",
};

static struct bpf_program *hs_prog(struct sock *skel, enum hs_prog p)
{
	switch (p) {
	case HS_CONNECT4:
		return skel->progs.canary_sock_connect4;
	case HS_SENDMSG4:
		return skel->progs.canary_sock_sendmsg4;
	case HS_RECVMSG4:
		return skel->progs.canary_sock_recvmsg4;
	case HS_GETPEERNAME4:
		return skel->progs.canary_sock_getpeername4;
	default:
		return NULL;
	}
}

int hostsock_cgroup_root(char *buf, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	int err = -ENOENT;

	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2") != 0)
			continue;
		err = snprintf(buf, len, "%s", m->mnt_dir) >= (int)len ? -ENAMETOOLONG : 0;
		break;
	}
	endmntent(f);
	return err;
}

static int pin_path(char *buf, size_t len, const char *bpffs, const char *name)
{
	return snprintf(buf, len, "%s/%s", bpffs, name) >= (int)len ? -ENAMETOOLONG : 0;
}

int hostsock_unpin(const char *bpffs)
{
	const char *map = CANARY_MAP_NAME("sock_lb");
	char path[PATH_MAX];
	int i, err = 0;

	for (i = 0; i <= HS_PROG_COUNT; i++) {
		if (pin_path(path, sizeof(path), bpffs, i < HS_PROG_COUNT ? link_names[i] : map))
			return -ENAMETOOLONG;
		if (unlink(path) && errno != ENOENT)
			err = -errno;
	}
	return err;
}

/* The cookie of the caller's network namespace (Linux 5.14+). */
static int own_netns_cookie(__u64 *cookie)
{
	socklen_t len = sizeof(*cookie);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		err = -errno;
	close(fd);
	return err;
}

static bool kernel_destroys_sockets(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool found;

	if (libbpf_get_error(vmlinux))
		return false;
	found = btf__find_by_name_kind(vmlinux, "bpf_sock_destroy", BTF_KIND_FUNC) > 0;
	btf__free(vmlinux);
	return found;
}

/* dp's descriptor for a data path map this object uses, or -1. */
static int dp_fd_of(struct sock *skel, struct canary_dp *dp, const struct bpf_map *map)
{
	if (map == skel->maps.CANARY_MAP(services))
		return dp_map_fd(dp, DP_MAP_SERVICES);
	if (map == skel->maps.CANARY_MAP(killswitch))
		return dp_map_fd(dp, DP_MAP_KILLSWITCH);
	if (map == skel->maps.CANARY_MAP(overrides))
		return dp_map_fd(dp, DP_MAP_OVERRIDES);
	if (map == skel->maps.CANARY_MAP(metrics))
		return dp_map_fd(dp, DP_MAP_METRICS);
	return -1;
}

/*
 * The data path's maps are dp's; the socket map is this object's own,
 * pinned so that sockets opened before a restart keep their VIP. The
 * other maps maps.h declares are not used here: not created.
 */
static int hs_prepare_maps(struct sock *skel, struct canary_dp *dp, const char *bpffs)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int err = pin_path(path, sizeof(path), bpffs, CANARY_MAP_NAME("sock_lb"));

	bpf_object__for_each_map(map, skel->obj) {
		int fd = dp_fd_of(skel, dp, map);

		if (err)
			break;
		if (map == skel->maps.CANARY_MAP(sock_lb))
			err = bpf_map__set_pin_path(map, path);
		else if (map == skel->maps.bss || map == skel->maps.rodata)
			continue;
		else if (fd >= 0)
			err = bpf_map__set_pin_path(map, NULL) ?: bpf_map__reuse_fd(map, fd);
		else
			err = bpf_map__set_pin_path(map, NULL) ?:
								 bpf_map__set_autocreate(map, false);
	}
	return err;
}

/*
 * Open and load; with_iters false leaves out the reset iterators (a kernel
 * without bpf_sock_destroy, or an agent without CAP_PERFMON to load them).
 */
static int hs_load(struct canary_dp *dp, const char *bpffs, __u64 netns, bool with_iters,
		   struct sock **out)
{
	struct sock *skel = sock__open();
	int err;

	if (!skel) {
		err = -errno;
		return err < 0 ? err : -ENOMEM;
	}
	skel->rodata->host_netns_cookie = netns;
	bpf_program__set_autoload(skel->progs.canary_sock_reset_tcp, with_iters);
	bpf_program__set_autoload(skel->progs.canary_sock_reset_udp, with_iters);
	err = hs_prepare_maps(skel, dp, bpffs);
	if (!err)
		err = sock__load(skel);
	if (err) {
		sock__destroy(skel);
		return err;
	}
	*out = skel;
	return 0;
}

/* The cgroup a pinned link is attached to, or 0. */
static __u64 link_cgroup_id(const struct bpf_link *link)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len))
		return 0;
	return info.type == BPF_LINK_TYPE_CGROUP ? info.cgroup.cgroup_id : 0;
}

/*
 * One program: swap it into the link pinned at path when that link is on
 * this cgroup (no moment without the program), else attach and pin anew.
 */
static int hs_attach_one(struct bpf_program *prog, int cg_fd, __u64 cg_id, const char *path)
{
	/* No pin yet: not worth libbpf's warning about a file that is not there. */
	struct bpf_link *link = access(path, F_OK) ? NULL : bpf_link__open(path);
	int err;

	if (link && !libbpf_get_error(link) && link_cgroup_id(link) == cg_id) {
		err = bpf_link__update_program(link, prog);
		bpf_link__destroy(link); /* the pin holds it */
		return err;
	}
	if (link && !libbpf_get_error(link)) {
		bpf_link__destroy(link);
		if (unlink(path))
			return -errno;
	}
	link = bpf_program__attach_cgroup(prog, cg_fd);
	err = (int)libbpf_get_error(link);
	if (err)
		return err;
	err = bpf_link__pin(link, path);
	bpf_link__destroy(link); /* pinned: stays attached; unpinned: detached again */
	return err;
}

static int hs_attach(struct sock *skel, const char *bpffs, const char *cgroup)
{
	char path[PATH_MAX];
	struct stat st;
	int cg_fd, err = 0, i;

	cg_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return -errno;
	/* On cgroup2, a directory's inode number is the cgroup's id. */
	if (fstat(cg_fd, &st))
		err = -errno;
	for (i = 0; !err && i < HS_PROG_COUNT; i++) {
		err = pin_path(path, sizeof(path), bpffs, link_names[i]);
		if (!err)
			err = hs_attach_one(hs_prog(skel, i), cg_fd, st.st_ino, path);
	}
	close(cg_fd);
	return err;
}

/* The reset iterators: optional, the split works without them. */
static void hs_iters_attach(struct sock *skel)
{
	hs.iter_tcp = bpf_program__attach_iter(skel->progs.canary_sock_reset_tcp, NULL);
	hs.iter_udp = bpf_program__attach_iter(skel->progs.canary_sock_reset_udp, NULL);
	if (libbpf_get_error(hs.iter_tcp) || libbpf_get_error(hs.iter_udp)) {
		bpf_link__destroy(libbpf_get_error(hs.iter_tcp) ? NULL : hs.iter_tcp);
		bpf_link__destroy(libbpf_get_error(hs.iter_udp) ? NULL : hs.iter_udp);
		hs.iter_tcp = hs.iter_udp = NULL;
	}
}

static int hs_load_any(struct canary_dp *dp, const char *bpffs, __u64 netns, struct sock **skel)
{
	int err;

	if (kernel_destroys_sockets() && !hs_load(dp, bpffs, netns, true, skel)) {
		hs_iters_attach(*skel);
		if (hs.iter_tcp)
			return 0;
		err = 0;
	} else {
		err = hs_load(dp, bpffs, netns, false, skel);
	}
	if (!err)
		log_event(CLOG_WARN, "host sockets cannot be reset: an abort drains them", "hint",
			  "bpf_sock_destroy needs Linux 6.5+ and CAP_PERFMON to load its iterator");
	return err;
}

int hostsock_start(struct canary_dp *dp, const char *bpffs, const struct hostsock_opts *o)
{
	char root[PATH_MAX];
	const char *cgroup = o->cgroup;
	struct sock *skel = NULL;
	__u64 netns = 0;
	int err;

	if (cgroup && !strcmp(cgroup, HOSTSOCK_OFF))
		return hostsock_unpin(bpffs);
	if (!cgroup) {
		err = hostsock_cgroup_root(root, sizeof(root));
		if (err)
			return err;
		cgroup = root;
	}
	if (o->netns_only) {
		err = own_netns_cookie(&netns);
		if (err)
			return err;
	}
	err = hs_load_any(dp, bpffs, netns, &skel);
	if (!err)
		err = hs_attach(skel, bpffs, cgroup);
	if (err) {
		/* No half set: a connect4 without its getpeername4 would leak backends. */
		if (skel)
			hostsock_unpin(bpffs);
		hs.skel = skel;
		hostsock_stop();
		return err;
	}
	hs.skel = skel;
	log_event(CLOG_INFO, "host sockets attached", "cgroup", cgroup, "netns_only",
		  o->netns_only ? "yes" : "no", "abort_reset", hs.iter_tcp ? "destroy" : "drain");
	return 0;
}

/* Run one iterator to its end: each read() runs the program over a batch of sockets. */
static int hs_iter_run(struct bpf_link *link)
{
	char buf[64];
	ssize_t n;
	int fd = bpf_iter_create(bpf_link__fd(link)), err = 0;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (n < 0)
		err = -errno;
	close(fd);
	return err;
}

static void log_destroyed(unsigned int n)
{
	char num[16];

	snprintf(num, sizeof(num), "%u", n);
	log_event(CLOG_INFO, "host sockets reset", "sockets", num);
}

int hostsock_reset(unsigned int *destroyed)
{
	int err;

	*destroyed = 0;
	if (!hs.skel)
		return 0;
	if (!hs.iter_tcp)
		return -EOPNOTSUPP;
	hs.skel->bss->sockets_destroyed = 0;
	err = hs_iter_run(hs.iter_tcp);
	if (!err)
		err = hs_iter_run(hs.iter_udp);
	*destroyed = (unsigned int)hs.skel->bss->sockets_destroyed;
	if (err)
		log_event(CLOG_WARN, "cannot reset host sockets", "error", strerror(-err));
	else if (*destroyed)
		log_destroyed(*destroyed);
	return err;
}

void hostsock_stop(void)
{
	bpf_link__destroy(hs.iter_tcp);
	bpf_link__destroy(hs.iter_udp);
	sock__destroy(hs.skel);
	hs.iter_tcp = hs.iter_udp = NULL;
	hs.skel = NULL;
}
