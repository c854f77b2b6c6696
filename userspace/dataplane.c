// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "canary.skel.h"
#include "ct_count.skel.h"
#include "btflayout.h"
#include "canary_layout.h"
#include "canary_reasons.h"
#include "ctlifetimes.h"
#include "dataplane.h"
#include "hostsock.h"
#include "log.h"
#include "svcindex.h"

struct canary_dp {
	struct canary *skel;	       /* NULL when only the pinned maps are open */
	struct ct_count *ct_count;     /* NULL where the kernel cannot count entries */
	bool ct_count_tried;	       /* loaded on first use: canaryctl rarely needs it */
	struct ct_lifetimes lifetimes; /* the expiry pass's, set in it before load */
	__u64 last_expire_ms;	       /* CLOCK_MONOTONIC of the last expiry pass */
	__u32 ct_max;		       /* conntrack_v<N>'s size, which bounds a walk */
	int map_fds[DP_MAP_COUNT];
	int ncpus;
	/* One metrics value per possible CPU; the API's and the tick's threads share it. */
	pthread_mutex_t buf_lock;
	void *percpu_buf;
};

/* Pinned file names; they are the map names in bpf/lib/maps.h. */
static const char *const map_names[DP_MAP_COUNT] = {
	[DP_MAP_SERVICES] = CANARY_MAP_NAME("services"),
	[DP_MAP_CONNTRACK] = CANARY_MAP_NAME("conntrack"),
	[DP_MAP_OVERRIDES] = CANARY_MAP_NAME("overrides"),
	[DP_MAP_METRICS] = CANARY_MAP_NAME("metrics"),
	[DP_MAP_REASONS] = CANARY_MAP_NAME("reasons"),
	[DP_MAP_CT_STATS] = CANARY_MAP_NAME("ct_stats"),
	[DP_MAP_FRAGS] = CANARY_MAP_NAME("frags"),
	[DP_MAP_CT_EXPIRED] = CANARY_MAP_NAME("ct_expired"),
	[DP_MAP_KILLSWITCH] = CANARY_MAP_NAME("killswitch"),
	[DP_MAP_CT_SYN] = CANARY_MAP_NAME("ct_syn"),
	[DP_MAP_VIP_FILTER] = CANARY_MAP_NAME("vip_filter"),
	[DP_MAP_SVC_GENS] = CANARY_MAP_NAME("svc_gens"),
	[DP_MAP_BACKEND_FILTER] = CANARY_MAP_NAME("be_filter"),
};

/* Per-CPU values are laid out at 8-byte strides. */
#define PERCPU_STRIDE(size) (((size) + 7) & ~(size_t)7)

const char *dp_map_name(enum dp_map map)
{
	return map < DP_MAP_COUNT ? map_names[map] : "?";
}

const char *dp_reason_name(enum canary_reason reason)
{
	return reason < CANARY_R_COUNT && canary_reason_names[reason] ?
		       canary_reason_names[reason] :
		       "?";
}

int dp_map_fd(const struct canary_dp *dp, enum dp_map map)
{
	return map < DP_MAP_COUNT ? dp->map_fds[map] : -1;
}

int dp_prog_fd(const struct canary_dp *dp, enum dp_prog prog)
{
	if (!dp->skel)
		return -1;
	switch (prog) {
	case DP_PROG_TC_INGRESS:
		return bpf_program__fd(dp->skel->progs.canary_tc_ingress);
	case DP_PROG_TC_EGRESS:
		return bpf_program__fd(dp->skel->progs.canary_tc_egress);
	case DP_PROG_XDP_INGRESS:
		return bpf_program__fd(dp->skel->progs.canary_xdp_ingress);
	default:
		return -1;
	}
}

__u32 dp_ct_capacity(const struct canary_dp *dp)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(dp->map_fds[DP_MAP_CONNTRACK], &info, &len))
		return 0;
	return info.max_entries;
}

static struct canary_dp *dp_alloc(void)
{
	struct canary_dp *dp = calloc(1, sizeof(*dp));
	int i;

	if (!dp)
		return NULL;
	for (i = 0; i < DP_MAP_COUNT; i++)
		dp->map_fds[i] = -1;
	ct_lifetimes_default(&dp->lifetimes);
	dp->ncpus = libbpf_num_possible_cpus();
	if (dp->ncpus <= 0) {
		free(dp);
		return NULL;
	}
	dp->percpu_buf = calloc(dp->ncpus, PERCPU_STRIDE(sizeof(struct canary_metrics)));
	if (!dp->percpu_buf || pthread_mutex_init(&dp->buf_lock, NULL)) {
		free(dp->percpu_buf);
		free(dp);
		return NULL;
	}
	return dp;
}

void dp_close(struct canary_dp *dp)
{
	int i;

	if (!dp)
		return;
	ct_count__destroy(dp->ct_count); /* its maps are dups of ours: closed apart */
	if (dp->skel) {
		canary__destroy(dp->skel); /* closes the map fds it owns */
	} else {
		for (i = 0; i < DP_MAP_COUNT; i++)
			if (dp->map_fds[i] >= 0)
				close(dp->map_fds[i]);
	}
	pthread_mutex_destroy(&dp->buf_lock);
	free(dp->percpu_buf);
	free(dp);
}

/* mkdir -p for a directory on bpffs. */
static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static struct bpf_map *skel_map(struct canary *skel, enum dp_map map)
{
	switch (map) {
	case DP_MAP_SERVICES:
		return skel->maps.CANARY_MAP(services);
	case DP_MAP_CONNTRACK:
		return skel->maps.CANARY_MAP(conntrack);
	case DP_MAP_OVERRIDES:
		return skel->maps.CANARY_MAP(overrides);
	case DP_MAP_METRICS:
		return skel->maps.CANARY_MAP(metrics);
	case DP_MAP_REASONS:
		return skel->maps.CANARY_MAP(reasons);
	case DP_MAP_CT_STATS:
		return skel->maps.CANARY_MAP(ct_stats);
	case DP_MAP_FRAGS:
		return skel->maps.CANARY_MAP(frags);
	case DP_MAP_CT_EXPIRED:
		return skel->maps.CANARY_MAP(ct_expired);
	case DP_MAP_KILLSWITCH:
		return skel->maps.CANARY_MAP(killswitch);
	case DP_MAP_CT_SYN:
		return skel->maps.CANARY_MAP(ct_syn);
	case DP_MAP_VIP_FILTER:
		return skel->maps.CANARY_MAP(vip_filter);
	case DP_MAP_SVC_GENS:
		return skel->maps.CANARY_MAP(svc_gens);
	case DP_MAP_BACKEND_FILTER:
		return skel->maps.CANARY_MAP(be_filter);
	default:
		return NULL;
	}
}

/* Does the running kernel have the kfunc bpf/ct_count.bpf.c calls (Linux 6.6+)? */
static bool kernel_counts_map_entries(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool found;

	if (libbpf_get_error(vmlinux))
		return false;
	found = btf__find_by_name_kind(vmlinux, "bpf_map_sum_elem_count", BTF_KIND_FUNC) > 0;
	btf__free(vmlinux);
	return found;
}

/*
 * Load the O(1) entry counter (bpf/ct_count.bpf.c) over dp's conntrack map;
 * its object declares the other maps too, but they are not its to create.
 * Optional: on a kernel before 6.6, dp_flow_count walks the map instead.
 */
static void ct_count_load(struct canary_dp *dp)
{
	struct ct_count *cc;
	struct bpf_map *map;
	int err = 0;

	dp->ct_count_tried = true;
	if (!kernel_counts_map_entries())
		return;
	cc = ct_count__open();
	if (!cc)
		return;
	bpf_object__for_each_map(map, cc->obj) {
		int fd = map == cc->maps.CANARY_MAP(conntrack)	? dp->map_fds[DP_MAP_CONNTRACK] :
			 map == cc->maps.CANARY_MAP(ct_syn)	? dp->map_fds[DP_MAP_CT_SYN] :
			 map == cc->maps.CANARY_MAP(ct_expired) ? dp->map_fds[DP_MAP_CT_EXPIRED] :
			 map == cc->maps.CANARY_MAP(metrics)	? dp->map_fds[DP_MAP_METRICS] :
								  -1;

		if (bpf_map__is_internal(map))
			continue; /* its .rodata: the lifetimes */
		err = bpf_map__set_pin_path(map, NULL);
		if (!err)
			err = fd >= 0 ? bpf_map__reuse_fd(map, fd) :
					bpf_map__set_autocreate(map, false);
		if (err)
			goto fail;
	}
	cc->rodata->ct_closed_ns = dp->lifetimes.closed_ns;
	cc->rodata->ct_syn_ns = dp->lifetimes.syn_ns;
	cc->rodata->ct_tcp_ns = dp->lifetimes.established_ns;
	cc->rodata->ct_udp_ns = dp->lifetimes.udp_ns;
	cc->rodata->ct_reply_ns = dp->lifetimes.reply_ns;
	err = ct_count__load(cc);
	if (err)
		goto fail;
	dp->ct_count = cc;
	return;
fail:
	log_event(CLOG_WARN, "conntrack entries are counted by walking the map", "error",
		  strerror(-err));
	ct_count__destroy(cc);
}

void dp_set_ct_lifetimes(struct canary_dp *dp, const struct ct_lifetimes *lt)
{
	dp->lifetimes = *lt;
	/* They are constants of the loaded object: the next use loads it again. */
	ct_count__destroy(dp->ct_count);
	dp->ct_count = NULL;
	dp->ct_count_tried = false;
}

/* Size of a map pinned at bpffs/name, or 0 when there is none to read. */
static __u32 pinned_map_size(const char *bpffs, const char *name)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", bpffs, name) >= (int)sizeof(path))
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.max_entries = 0;
	close(fd);
	return info.max_entries;
}

/*
 * The conntrack map's size: a pinned map's own, since libbpf reuses a pin
 * only when the sizes agree and resizing would drop every flow's entry.
 */
static int size_conntrack(struct canary *skel, const char *bpffs, __u32 wanted)
{
	__u32 pinned = pinned_map_size(bpffs, map_names[DP_MAP_CONNTRACK]);
	char have[16], want[16];

	if (pinned && wanted && pinned != wanted) {
		snprintf(have, sizeof(have), "%u", pinned);
		snprintf(want, sizeof(want), "%u", wanted);
		log_event(CLOG_WARN, "conntrack map keeps its pinned size", "entries", have,
			  "asked", want, "hint",
			  "canaryd --cleanup resizes it, and drops every flow's entry");
	}
	if (pinned)
		wanted = pinned;
	else if (!wanted)
		wanted = CANARY_CT_MAX_ENTRIES;
	return bpf_map__set_max_entries(skel->maps.CANARY_MAP(conntrack), wanted);
}

/*
 * layout_v<N> (headers/canary_layout.h): the layout digests of the pins,
 * readable without CAP_SYS_ADMIN. Created empty when asked and missing;
 * -1 when there is none (or it cannot be had: the BTF check stands alone).
 */
static int layout_record_open(const char *bpffs, bool create)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", bpffs, CANARY_MAP_NAME("layout")) >=
	    (int)sizeof(path))
		return -1;
	fd = bpf_obj_get(path);
	if (fd >= 0 || errno != ENOENT || !create)
		return fd >= 0 ? fd : -1;
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, CANARY_MAP_NAME("layout"),
			    sizeof(struct canary_layout_key), sizeof(struct canary_layout_val),
			    CANARY_LAYOUT_MAX_MAPS, NULL);
	if (fd >= 0 && bpf_obj_pin(fd, path)) {
		close(fd);
		fd = -1;
	}
	return fd >= 0 ? fd : -1;
}

/*
 * Pinned maps whose types differ from the program's (a same-size field
 * reorder passes libbpf's size checks) are refused, never reused: the
 * programs would read one field as another. *checked is false when some pin
 * could not be checked (its BTF needs CAP_SYS_ADMIN, and it has no record).
 */
static int check_pin_layouts(const struct bpf_object *obj, const char *bpffs, int record_fd,
			     bool *checked)
{
	char why[512];
	int err = btf_layout_check_pins(obj, record_fd, why, sizeof(why));

	*checked = !err;
	if (!err)
		return 0;
	/*
	 * Reading a map's BTF by id needs CAP_SYS_ADMIN, which neither shipped
	 * deployment grants: a pin without a record then has only libbpf's
	 * size checks.
	 */
	if (err == -EPERM || err == -EACCES) {
		log_event(
			CLOG_WARN, "pinned maps' BTF not readable: layout checked by size only",
			"bpffs", bpffs, "detail", why, "hint",
			"the BTF check needs CAP_SYS_ADMIN; pins made by this agent are recorded");
		return 0;
	}
	log_event(CLOG_ERROR,
		  err > 0 ? "pinned map has another layout than the program's: not reused" :
			    "cannot check the pinned maps' layout",
		  "bpffs", bpffs, "difference", why, "hint",
		  "canaryd --cleanup removes the pins (and every flow's entry); a layout change "
		  "needs a CANARY_LAYOUT_VERSION bump");
	return err > 0 ? -EINVAL : err;
}

/* The pins at bpffs against the program's types, for readers that load no program. */
static int check_pinned_only(const char *bpffs)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = bpffs);
	struct canary *skel = canary__open_opts(&opts);
	int record_fd, err;
	bool checked;

	if (!skel)
		return -errno;
	record_fd = layout_record_open(bpffs, false);
	err = check_pin_layouts(skel->obj, bpffs, record_fd, &checked);
	if (record_fd >= 0)
		close(record_fd);
	canary__destroy(skel);
	return err;
}

/* After a load that checked every pin: their layouts, for the next start. */
static void record_layouts(const struct bpf_object *obj, const char *bpffs, int record_fd)
{
	int err = record_fd < 0 ? -ENOENT : btf_layout_record(obj, record_fd);

	if (err)
		log_event(CLOG_WARN, "cannot record the pinned maps' layout", "bpffs", bpffs, "map",
			  CANARY_MAP_NAME("layout"), "error", strerror(-err));
}

static struct svcindex_fds dp_svcindex(const struct canary_dp *dp)
{
	struct svcindex_fds fds = {
		.services = dp->map_fds[DP_MAP_SERVICES],
		.filter = dp->map_fds[DP_MAP_VIP_FILTER],
		.backends = dp->map_fds[DP_MAP_BACKEND_FILTER],
		.gens = dp->map_fds[DP_MAP_SVC_GENS],
	};

	return fds;
}

static bool pin_exists(const char *bpffs, enum dp_map map)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", bpffs, map_names[map]);
	return access(path, F_OK) == 0;
}

/*
 * The indexes of services_v<N> (svcindex.h), after a load: every service's
 * filter bits and generation record and, for a filter map that is new while
 * flows may be pinned (pins of an agent older than it), the VIPs or the
 * backends of those flows too, or their packets would pass untranslated.
 */
static int dp_index_services(struct canary_dp *dp, bool filter_new, bool backends_new)
{
	struct svcindex_fds fds = dp_svcindex(dp);
	int vips = filter_new ? fds.filter : -1, backends = backends_new ? fds.backends : -1;
	int err = svcindex_sync(&fds);

	if (!err && (filter_new || backends_new))
		err = svcindex_mark_flows(vips, backends, dp->map_fds[DP_MAP_CONNTRACK],
					  dp->ct_max);
	if (!err && (filter_new || backends_new))
		err = svcindex_mark_flows(vips, backends, dp->map_fds[DP_MAP_CT_SYN],
					  CANARY_CT_SYN_MAX_ENTRIES);
	if (err)
		log_event(CLOG_ERROR, "cannot index the services for the data path", "error",
			  strerror(-err));
	return err;
}

int dp_load(const char *bpffs, __u32 ct_entries, struct canary_dp **out)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = bpffs);
	struct canary_dp *dp;
	int err, i, record_fd = -1;
	bool checked = false, filter_new, backends_new;

	err = mkdir_p(bpffs);
	if (err) {
		log_event(CLOG_ERROR, "cannot create bpffs directory", "path", bpffs, "error",
			  strerror(-err));
		return err;
	}
	dp = dp_alloc();
	if (!dp)
		return -ENOMEM;
	dp->skel = canary__open_opts(&opts);
	if (!dp->skel) {
		err = -errno;
		goto fail;
	}
	filter_new = !pin_exists(bpffs, DP_MAP_VIP_FILTER);
	backends_new = !pin_exists(bpffs, DP_MAP_BACKEND_FILTER);
	record_fd = layout_record_open(bpffs, false);
	err = check_pin_layouts(dp->skel->obj, bpffs, record_fd, &checked); /* logs why */
	if (!err)
		err = size_conntrack(dp->skel, bpffs, ct_entries);
	if (!err)
		err = canary__load(dp->skel);
	if (!err && checked) {
		if (record_fd < 0) /* created once the pins it describes are there */
			record_fd = layout_record_open(bpffs, true);
		record_layouts(dp->skel->obj, bpffs, record_fd);
	}
	if (record_fd >= 0)
		close(record_fd);
	if (err) {
		log_event(CLOG_ERROR, "cannot load BPF programs", "bpffs", bpffs, "error",
			  strerror(-err), "hint",
			  "an incompatible pinned map? run canaryd --cleanup");
		goto fail;
	}
	for (i = 0; i < DP_MAP_COUNT; i++) {
		struct bpf_map *map = skel_map(dp->skel, i);

		/* The table above must name the maps as the BPF source does. */
		if (strcmp(bpf_map__name(map), map_names[i]) != 0) {
			err = -EINVAL;
			goto fail;
		}
		dp->map_fds[i] = bpf_map__fd(map);
	}
	dp->ct_max = dp_ct_capacity(dp) ?: CANARY_CT_MAX_ENTRIES; /* bounds walks */
	err = dp_index_services(dp, filter_new, backends_new);
	if (err)
		goto fail;
	*out = dp;
	return 0;
fail:
	dp_close(dp);
	return err;
}

/* Maps that came after the first release: older pins lack them. */
static bool pin_is_optional(int map)
{
	return map == DP_MAP_CT_STATS || map == DP_MAP_FRAGS || map == DP_MAP_CT_EXPIRED ||
	       map == DP_MAP_KILLSWITCH || map == DP_MAP_CT_SYN || map == DP_MAP_VIP_FILTER ||
	       map == DP_MAP_SVC_GENS || map == DP_MAP_BACKEND_FILTER;
}

int dp_open_pinned(const char *bpffs, struct canary_dp **out)
{
	char path[PATH_MAX];
	struct canary_dp *dp;
	int err, i;

	err = check_pinned_only(bpffs);
	if (err)
		return err;
	dp = dp_alloc();
	if (!dp)
		return -ENOMEM;
	for (i = 0; i < DP_MAP_COUNT; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", bpffs, map_names[i]) >=
		    (int)sizeof(path)) {
			err = -ENAMETOOLONG;
			goto fail;
		}
		dp->map_fds[i] = bpf_obj_get(path);
		/* Pins of an agent older than these maps still serve the incident tools. */
		if (dp->map_fds[i] < 0 && !(pin_is_optional(i) && errno == ENOENT)) {
			err = -errno;
			goto fail;
		}
	}
	dp->ct_max = dp_ct_capacity(dp) ?: CANARY_CT_MAX_ENTRIES; /* bounds walks */
	*out = dp;
	return 0;
fail:
	dp_close(dp);
	return err;
}

int dp_unpin(const char *bpffs)
{
	char path[PATH_MAX];
	int i, err = 0, host_err;

	for (i = 0; i < DP_MAP_COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", bpffs, map_names[i]);
		if (unlink(path) && errno != ENOENT)
			err = -errno;
	}
	/* The hash seeds' secret (seedsecret.c) goes too: a clean start draws a new one. */
	snprintf(path, sizeof(path), "%s/%s", bpffs, CANARY_MAP_NAME("secret"));
	if (unlink(path) && errno != ENOENT)
		err = -errno;
	snprintf(path, sizeof(path), "%s/%s", bpffs, CANARY_MAP_NAME("layout"));
	if (unlink(path) && errno != ENOENT)
		err = -errno;
	/* The host sockets' links (which detaches them) and their map. */
	host_err = hostsock_unpin(bpffs);
	if (!err)
		err = host_err;
	/* Other files in the directory are not ours: leave them and it. */
	if (rmdir(bpffs) && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
		err = err ? err : -errno;
	return err;
}

int dp_repin_missing(struct canary_dp *dp, const char *bpffs, unsigned int *restored)
{
	char path[PATH_MAX];
	int i, err = 0;

	*restored = 0;
	for (i = 0; i < DP_MAP_COUNT; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", bpffs, map_names[i]) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		if (!access(path, F_OK) || errno != ENOENT)
			continue;
		err = mkdir_p(bpffs); /* the directory may have gone too */
		if (!err && bpf_obj_pin(dp->map_fds[i], path))
			err = -errno;
		if (err)
			return err;
		(*restored)++;
	}
	return 0;
}

static __u64 clock_ns(clockid_t id);

/* ---- services ---- */

int dp_service_get(const struct canary_dp *dp, const struct canary_service_key *key,
		   struct canary_service *svc)
{
	return bpf_map_lookup_elem(dp->map_fds[DP_MAP_SERVICES], key, svc) ? -errno : 0;
}

int dp_service_each(const struct canary_dp *dp,
		    int (*fn)(const struct canary_service_key *, const struct canary_service *,
			      void *),
		    void *arg)
{
	struct canary_service_key key, next;
	struct canary_service svc;
	int fd = dp->map_fds[DP_MAP_SERVICES];
	void *prev = NULL;
	int n, rc;

	for (n = 0; n <= CANARY_MAX_SERVICES && !bpf_map_get_next_key(fd, prev, &next); n++) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &svc))
			continue; /* deleted meanwhile */
		rc = fn(&key, &svc, arg);
		if (rc)
			return rc;
	}
	return 0;
}

struct find_by_name {
	const char *name;
	struct canary_service_key *key;
	struct canary_service *svc;
};

static int match_name(const struct canary_service_key *key, const struct canary_service *svc,
		      void *arg)
{
	struct find_by_name *f = arg;

	if (strncmp(svc->name, f->name, CANARY_NAME_LEN) != 0)
		return 0;
	*f->key = *key;
	*f->svc = *svc;
	return 1;
}

int dp_service_find(const struct canary_dp *dp, const char *name, struct canary_service_key *key,
		    struct canary_service *svc)
{
	struct find_by_name f = { .name = name, .key = key, .svc = svc };

	return dp_service_each(dp, match_name, &f) == 1 ? 0 : -ENOENT;
}

static int mark_used_id(const struct canary_service_key *key, const struct canary_service *svc,
			void *arg)
{
	unsigned char *used = arg;

	(void)key;
	if (svc->id < CANARY_MAX_SERVICES)
		used[svc->id] = 1;
	return 0;
}

static int zero_metrics(struct canary_dp *dp, __u32 svc_id)
{
	int err = 0;
	__u32 v, key;

	pthread_mutex_lock(&dp->buf_lock);
	memset(dp->percpu_buf, 0, dp->ncpus * PERCPU_STRIDE(sizeof(struct canary_metrics)));
	for (v = 0; v < CANARY_V_COUNT && !err; v++) {
		key = svc_id * CANARY_V_COUNT + v;
		if (bpf_map_update_elem(dp->map_fds[DP_MAP_METRICS], &key, dp->percpu_buf, 0))
			err = -errno;
	}
	pthread_mutex_unlock(&dp->buf_lock);
	return err;
}

/* Lowest id no service uses; its counters start from zero. */
static int alloc_service_id(struct canary_dp *dp, __u32 *id)
{
	unsigned char used[CANARY_MAX_SERVICES] = { 0 };
	__u32 i;

	dp_service_each(dp, mark_used_id, used);
	for (i = 0; i < CANARY_MAX_SERVICES; i++) {
		if (!used[i]) {
			*id = i;
			return zero_metrics(dp, i);
		}
	}
	return -ENOSPC;
}

/*
 * First generation of a new service: random, so that conntrack entries left
 * by a deleted service (which keep its id and last generation) do not match
 * a new service that reuses its id or its VIP, whatever their histories
 * were (bpf/lib/svcgen.h). Collisions are 1 in 2^32 per reuse.
 */
static __u32 first_generation(void)
{
	__u32 gen = 0;

	if (getrandom(&gen, sizeof(gen), GRND_NONBLOCK) != (ssize_t)sizeof(gen))
		gen = (__u32)time(NULL) ^ (__u32)clock_ns(CLOCK_MONOTONIC);
	return gen ? gen : 1;
}

int dp_service_put(struct canary_dp *dp, const struct canary_service_key *key,
		   struct canary_service *svc)
{
	struct canary_service old;
	struct svcindex_fds fds;
	int err;

	if (svc->weight > CANARY_WEIGHT_MAX || svc->n_backends[0] > CANARY_MAX_BACKENDS ||
	    svc->n_backends[1] > CANARY_MAX_BACKENDS)
		return -EINVAL;
	if (!dp_service_get(dp, key, &old)) {
		svc->id = old.id;
		/* 0 means "no service" in svc_gens_v<N>: skipped when the count wraps. */
		svc->generation = old.generation + 1 ?: 1;
		/* A reset still owed to flows that have not spoken since stays owed. */
		if (old.reset_ns > svc->reset_ns)
			svc->reset_ns = old.reset_ns;
	} else {
		err = alloc_service_id(dp, &svc->id);
		if (err)
			return err;
		svc->generation = first_generation();
	}
	fds = dp_svcindex(dp);
	return svcindex_put(&fds, key, svc, BPF_ANY);
}

int dp_service_delete(struct canary_dp *dp, const struct canary_service_key *key)
{
	struct svcindex_fds fds = dp_svcindex(dp);
	struct canary_service svc;
	int err;

	err = dp_service_get(dp, key, &svc);
	if (!err)
		err = svcindex_delete(&fds, key, svc.id);
	return err ? err : dp_override_clear(dp, svc.id);
}

/* ---- overrides ---- */

int dp_override_put(struct canary_dp *dp, __u32 svc_id, __be32 addr, __u8 prefixlen,
		    enum canary_version version)
{
	struct canary_override_key key = {
		.prefixlen = 32 + prefixlen,
		.svc_id = svc_id,
		.addr = addr,
	};
	struct canary_override val = { .version = version };

	if (prefixlen > 32 || version >= CANARY_V_COUNT)
		return -EINVAL;
	return bpf_map_update_elem(dp->map_fds[DP_MAP_OVERRIDES], &key, &val, BPF_ANY) ? -errno : 0;
}

int dp_override_clear(struct canary_dp *dp, __u32 svc_id)
{
	return dp_override_sync(dp, svc_id, NULL, NULL, NULL, 0);
}

static bool override_wanted(const struct canary_override_key *key, const __be32 *addrs,
			    const __u8 *prefixlens, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (addrs[i] == key->addr && 32U + prefixlens[i] == key->prefixlen)
			return true;
	return false;
}

int dp_override_sync(struct canary_dp *dp, __u32 svc_id, const __be32 *addrs,
		     const __u8 *prefixlens, const enum canary_version *versions, int n)
{
	struct canary_override_key key, next;
	int fd = dp->map_fds[DP_MAP_OVERRIDES];
	void *prev = NULL;
	int i, err, walked;

	for (i = 0; i < n; i++) {
		err = dp_override_put(dp, svc_id, addrs[i], prefixlens[i], versions[i]);
		if (err)
			return err;
	}
	/*
	 * Deleting while walking: restart from the beginning after each delete,
	 * since the deleted key can no longer anchor get_next_key.
	 */
	for (walked = 0;
	     walked <= 2 * CANARY_MAX_OVERRIDES && !bpf_map_get_next_key(fd, prev, &next);
	     walked++) {
		key = next;
		if (key.svc_id != svc_id || override_wanted(&key, addrs, prefixlens, n)) {
			prev = &key;
			continue;
		}
		if (bpf_map_delete_elem(fd, &key))
			return -errno;
		prev = NULL;
	}
	return 0;
}

/* ---- conntrack ---- */

/* Entries read per syscall by dp_flow_each: 256 KiB of keys and values. */
#define FLOW_BATCH 4096

/*
 * Batch lookups of the flow table fd (max entries), bucket by bucket: about
 * 7 times faster than two syscalls a key.
 */
static int flow_each_batched(int fd, __u32 max,
			     int (*fn)(const struct canary_ct_key *, const struct canary_ct_entry *,
				       void *),
			     void *arg, struct canary_ct_key *keys, struct canary_ct_entry *vals)
{
	__u32 tok_in, tok_out = 0, count, i, seen = 0;
	void *in = NULL;
	int err, rc;

	/* Bounded: entries come and go while we read, the walk must still end. */
	while (seen < 2 * max) {
		count = FLOW_BATCH;
		err = bpf_map_lookup_batch(fd, in, &tok_out, keys, vals, &count, NULL);
		if (err && err != -ENOENT)
			return err;
		for (i = 0; i < count; i++) {
			rc = fn(&keys[i], &vals[i], arg);
			if (rc)
				return rc;
		}
		if (err == -ENOENT)
			return 0; /* the last bucket was read */
		seen += count;
		tok_in = tok_out;
		in = &tok_in;
	}
	return 0;
}

/* Every entry of the flow table fd (max entries). */
static int table_each(int fd, __u32 max,
		      int (*fn)(const struct canary_ct_key *, const struct canary_ct_entry *,
				void *),
		      void *arg)
{
	struct canary_ct_key *keys;
	struct canary_ct_entry *vals;
	int rc;

	keys = calloc(FLOW_BATCH, sizeof(*keys));
	vals = calloc(FLOW_BATCH, sizeof(*vals));
	rc = keys && vals ? flow_each_batched(fd, max, fn, arg, keys, vals) : -ENOMEM;
	free(keys);
	free(vals);
	return rc;
}

int dp_flow_each(const struct canary_dp *dp,
		 int (*fn)(const struct canary_ct_key *, const struct canary_ct_entry *, void *),
		 void *arg)
{
	return table_each(dp->map_fds[DP_MAP_CONNTRACK], dp->ct_max, fn, arg);
}

static int count_flow(const struct canary_ct_key *key, const struct canary_ct_entry *e, void *arg)
{
	(void)key;
	(void)e;
	(*(unsigned int *)arg)++;
	return 0;
}

int dp_flow_count_walked(const struct canary_dp *dp, unsigned int *count)
{
	*count = 0;
	return dp_flow_each(dp, count_flow, count);
}

bool dp_flow_count_is_cheap(struct canary_dp *dp)
{
	if (!dp->ct_count_tried)
		ct_count_load(dp);
	return dp->ct_count != NULL;
}

int dp_flow_count(struct canary_dp *dp, unsigned int *count)
{
	struct canary_ct_count_args args = { .entries = -1 };
	LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &args, .ctx_size_in = sizeof(args));
	int err;

	if (!dp_flow_count_is_cheap(dp))
		return dp_flow_count_walked(dp, count);
	/* A syscall program writes its results back into ctx_in. */
	err = bpf_prog_test_run_opts(bpf_program__fd(dp->ct_count->progs.canary_ct_count), &run);
	if (err)
		return -errno;
	if (args.entries < 0)
		return -EIO;
	*count = (unsigned int)args.entries;
	return 0;
}

/* Sum of the per-CPU conntrack counters; -ENOENT with pins older than ct_stats_v<N>. */
static int ct_stats_read(const struct canary_dp *dp, struct canary_ct_stats *sum)
{
	struct canary_ct_stats *vals = calloc(dp->ncpus, sizeof(*vals));
	__u32 key = 0;
	int cpu, err = 0;

	_Static_assert(sizeof(*vals) % 8 == 0, "per-CPU values at 8-byte strides");
	memset(sum, 0, sizeof(*sum));
	if (dp->map_fds[DP_MAP_CT_STATS] < 0) {
		free(vals);
		return -ENOENT;
	}
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(dp->map_fds[DP_MAP_CT_STATS], &key, vals))
		err = -errno;
	for (cpu = 0; cpu < dp->ncpus && !err; cpu++) {
		sum->entries_created += vals[cpu].entries_created;
		sum->entries_replaced += vals[cpu].entries_replaced;
	}
	free(vals);
	return err;
}

int dp_ct_read(struct canary_dp *dp, unsigned int *entries, long long *created)
{
	struct canary_ct_stats st;
	int err = ct_stats_read(dp, &st);

	if (err && err != -ENOENT)
		return err;
	*created = err ? -1 : (long long)st.entries_created;
	return dp_flow_count(dp, entries);
}

static __u64 clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

int dp_ct_expire(struct canary_dp *dp, unsigned int *expired)
{
	/* The entries' times are bpf_ktime_get_coarse_ns(): the coarse clock. */
	struct canary_ct_expire_args args = { .now_ns = clock_ns(CLOCK_MONOTONIC_COARSE) };
	LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &args, .ctx_size_in = sizeof(args));
	__u64 now_ms = clock_ns(CLOCK_MONOTONIC) / 1000000;

	*expired = 0;
	if (dp->last_expire_ms && now_ms - dp->last_expire_ms < 1000)
		return 0;
	if (!dp_flow_count_is_cheap(dp))
		return -ENOTSUP;
	dp->last_expire_ms = now_ms;
	if (bpf_prog_test_run_opts(bpf_program__fd(dp->ct_count->progs.canary_ct_expire), &run))
		return -errno;
	*expired = (unsigned int)args.expired;
	return 0;
}

__u64 dp_ct_expired(const struct canary_dp *dp)
{
	struct canary_ct_expired v = { 0 };
	__u32 zero = 0;

	if (dp->map_fds[DP_MAP_CT_EXPIRED] >= 0)
		bpf_map_lookup_elem(dp->map_fds[DP_MAP_CT_EXPIRED], &zero, &v);
	return v.entries;
}

__u64 dp_ct_evictions(__u64 created, __u64 entries, __u64 prev)
{
	__u64 now = created > entries ? created - entries : 0;

	return now > prev ? now : prev;
}

/* Canary flows of a service that the reset epoch epoch_ns will reset. */
struct reset_walk {
	__u32 svc_id;
	__u64 epoch_ns;
	unsigned int n;
};

static int count_reset(const struct canary_ct_key *key, const struct canary_ct_entry *e, void *arg)
{
	struct reset_walk *w = arg;

	(void)key;
	/* Reply entries, flows already re-steered, and flows that ended need nothing. */
	if ((e->flags & (CANARY_CT_F_REVERSE | CANARY_CT_F_RESTEERED | CANARY_CT_F_RST_SEEN |
			 CANARY_CT_F_FIN_SEEN)) ||
	    e->svc_id != w->svc_id || e->version != CANARY_V_CANARY || e->created_ns > w->epoch_ns)
		return 0;
	w->n++;
	return 0;
}

struct find_by_id {
	__u32 id;
	struct canary_service_key *key;
	struct canary_service *svc;
};

static int match_id(const struct canary_service_key *key, const struct canary_service *svc,
		    void *arg)
{
	struct find_by_id *f = arg;

	if (svc->id != f->id)
		return 0;
	*f->key = *key;
	*f->svc = *svc;
	return 1;
}

/*
 * One write of the service's value, no write to conntrack: the data path
 * resets each canary flow that began at or before the epoch on its next
 * packet. Rewriting the flows' entries from user space, as before, raced
 * with the data path's own updates of them (flags, sequence marks) and
 * could undo them.
 */
int dp_reset_canary_flows(struct canary_dp *dp, __u32 svc_id, unsigned int *count)
{
	struct canary_service_key key;
	struct canary_service svc;
	struct find_by_id f = { .id = svc_id, .key = &key, .svc = &svc };
	struct reset_walk w = { .svc_id = svc_id };
	struct svcindex_fds fds;
	int err;

	if (dp_service_each(dp, match_id, &f) != 1)
		return -ENOENT;
	w.epoch_ns = clock_ns(CLOCK_MONOTONIC_COARSE);
	svc.reset_ns = w.epoch_ns;
	svc.generation = svc.generation + 1 ?: 1;
	fds = dp_svcindex(dp);
	err = svcindex_put(&fds, &key, &svc, BPF_EXIST);
	if (err)
		return err;
	if (count) {
		int syn_fd = dp->map_fds[DP_MAP_CT_SYN]; /* < 0 with pins that predate it */

		/* A flow still in its handshake is reset too, once it reaches conntrack. */
		dp_flow_each(dp, count_reset, &w);
		if (syn_fd >= 0)
			table_each(syn_fd, CANARY_CT_SYN_MAX_ENTRIES, count_reset, &w);
		*count = w.n;
	}
	return 0;
}

/* ---- kill switch ---- */

int dp_killswitch_set(struct canary_dp *dp, const struct canary_service_key *key, bool engaged)
{
	struct canary_killswitch ks = { .engaged = 1 };
	int fd = dp->map_fds[DP_MAP_KILLSWITCH];

	if (fd < 0)
		return -ENOENT;
	if (engaged)
		return bpf_map_update_elem(fd, key, &ks, BPF_ANY) ? -errno : 0;
	if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
		return -errno;
	return 0;
}

bool dp_killswitch_engaged(const struct canary_dp *dp, const struct canary_service_key *key)
{
	struct canary_killswitch ks = { 0 };
	int fd = dp->map_fds[DP_MAP_KILLSWITCH];

	return fd >= 0 && !bpf_map_lookup_elem(fd, key, &ks) && ks.engaged;
}

/* ---- metrics ---- */

static void sum_percpu_metrics(const struct canary_dp *dp, struct canary_metrics *sum)
{
	size_t stride = PERCPU_STRIDE(sizeof(*sum));
	size_t w, words = sizeof(*sum) / sizeof(__u64);
	__u64 *dst = (__u64 *)sum;
	int cpu;

	_Static_assert(sizeof(*sum) % sizeof(__u64) == 0, "metrics must be all __u64");
	memset(sum, 0, sizeof(*sum));
	/* struct canary_metrics is all __u64, so it sums word by word. */
	for (cpu = 0; cpu < dp->ncpus; cpu++) {
		const __u64 *src = (const __u64 *)((const char *)dp->percpu_buf + cpu * stride);

		for (w = 0; w < words; w++)
			dst[w] += src[w];
	}
}

int dp_metrics_read(struct canary_dp *dp, __u32 svc_id, enum canary_version version,
		    struct canary_metrics *sum)
{
	__u32 key = svc_id * CANARY_V_COUNT + version;
	int err = 0;

	if (svc_id >= CANARY_MAX_SERVICES || version >= CANARY_V_COUNT)
		return -EINVAL;
	pthread_mutex_lock(&dp->buf_lock);
	if (bpf_map_lookup_elem(dp->map_fds[DP_MAP_METRICS], &key, dp->percpu_buf))
		err = -errno;
	else
		sum_percpu_metrics(dp, sum);
	pthread_mutex_unlock(&dp->buf_lock);
	return err;
}

int dp_reasons_read(const struct canary_dp *dp, __u64 reasons[CANARY_R_COUNT])
{
	/* Small enough for a buffer of its own: no lock needed. */
	__u64 *vals = calloc(dp->ncpus, sizeof(__u64));
	__u32 key;
	int cpu, err = 0;

	if (!vals)
		return -ENOMEM;
	for (key = 0; key < CANARY_R_COUNT && !err; key++) {
		reasons[key] = 0;
		if (bpf_map_lookup_elem(dp->map_fds[DP_MAP_REASONS], &key, vals)) {
			err = -errno;
			break;
		}
		for (cpu = 0; cpu < dp->ncpus; cpu++)
			reasons[key] += vals[cpu];
	}
	free(vals);
	return err;
}
