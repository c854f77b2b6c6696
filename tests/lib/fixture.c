// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The BPF test fixture (fixture.h): load, pin, run, clean up. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "canary_flowcache.h"
#include "canary.skel.h"
#include "fixture.h"
#include "svcindex.h"

const char *const fixture_pinned_maps[FIXTURE_N_PINNED] = {
	CANARY_MAP_NAME("services"),  CANARY_MAP_NAME("conntrack"),  CANARY_MAP_NAME("overrides"),
	CANARY_MAP_NAME("metrics"),   CANARY_MAP_NAME("reasons"),    CANARY_MAP_NAME("ct_stats"),
	CANARY_MAP_NAME("frags"),     CANARY_MAP_NAME("ct_expired"), CANARY_MAP_NAME("killswitch"),
	CANARY_MAP_NAME("ct_syn"),    CANARY_MAP_NAME("vip_filter"), CANARY_MAP_NAME("svc_gens"),
	CANARY_MAP_NAME("be_filter"),
};

/* The fixtures the signal handler cleans up (pktcost --base has two): a handler gets no argument. */
#define FIXTURE_MAX_SIGNALLED 2
static struct canary_fixture *fixture_signalled[FIXTURE_MAX_SIGNALLED];

/* Async-signal-safe: unlink and rmdir of paths computed at load time. */
static void fixture_unpin_all(struct canary_fixture *fx)
{
	size_t i;

	if (!fx->have_dir)
		return;
	for (i = 0; i < FIXTURE_N_PINNED; i++)
		unlink(fx->pin_path[i]);
	rmdir(fx->pin_dir);
}
/* Also removes pins nobody expected, so the directory can always go. */
static void fixture_unpin_dir(struct canary_fixture *fx)
{
	char path[sizeof(fx->pin_path[0]) + 256];
	struct dirent *de;
	DIR *d;

	if (!fx->have_dir)
		return;
	d = opendir(fx->pin_dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", fx->pin_dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	fixture_unpin_all(fx);
	fx->have_dir = 0;
}
/* Safe on a fixture that is loaded partly or not at all, and more than once. */
void fixture_unload(struct canary_fixture *fx)
{
	canary__destroy(fx->skel);
	fx->skel = NULL;
	fixture_unpin_dir(fx);
	free(fx->pcpu);
	fx->pcpu = NULL;
}
/* The pins go, then the signal does what it would have done. */
static void fixture_on_signal(int sig)
{
	size_t i;

	for (i = 0; i < FIXTURE_MAX_SIGNALLED; i++)
		if (fixture_signalled[i])
			fixture_unpin_all(fixture_signalled[i]);
	signal(sig, SIG_DFL);
	raise(sig);
}
/*
 * Before fixture_load(), so that no exit path leaves a pin: at_exit (the
 * program's own teardown, which calls fixture_unload()) runs at exit, and
 * each of sigs removes the pins before it ends the process.
 */
void fixture_cleanup_on_exit(struct canary_fixture *fx, void (*at_exit)(void), const int *sigs,
			     size_t n_sigs)
{
	size_t i;

	for (i = 0; i < FIXTURE_MAX_SIGNALLED; i++) {
		if (!fixture_signalled[i] || fixture_signalled[i] == fx) {
			fixture_signalled[i] = fx;
			break;
		}
	}
	atexit(at_exit);
	for (i = 0; i < n_sigs; i++)
		signal(sigs[i], fixture_on_signal);
}
/*
 * Keep in skeleton s only the maps the object elf declares: an older build
 * lacks the maps added since, which then stay NULL in the skeleton.
 */
static int fixture_skel_maps_of(struct bpf_object_skeleton *s, const void *elf, size_t sz)
{
	struct bpf_object *obj = bpf_object__open_mem(elf, sz, NULL);
	char *maps = (char *)s->maps;
	int i, kept = 0;

	if (!obj)
		return -errno;
	for (i = 0; i < s->map_cnt; i++) {
		struct bpf_map_skeleton *m = (void *)(maps + (size_t)i * s->map_skel_sz);

		if (!bpf_object__find_map_by_name(obj, m->name))
			continue;
		if (kept != i)
			memmove(maps + (size_t)kept * s->map_skel_sz, m, s->map_skel_sz);
		kept++;
	}
	s->map_cnt = kept;
	bpf_object__close(obj);
	return 0;
}

/*
 * Open the skeleton from its own object, or from fx->elf when set (another
 * build of the same programs and maps: pktcost --base). Returns NULL and
 * sets errno on failure.
 */
static struct canary *fixture_open(const struct canary_fixture *fx,
				   const struct bpf_object_open_opts *opts)
{
	struct canary *skel;
	int err;

	if (!fx->elf)
		return canary__open_opts(opts);
	skel = calloc(1, sizeof(*skel));
	if (!skel)
		return NULL;
	err = canary__create_skeleton(skel);
	if (!err)
		err = fixture_skel_maps_of(skel->skeleton, fx->elf, fx->elf_sz);
	if (!err) {
		skel->skeleton->data = (void *)fx->elf;
		skel->skeleton->data_sz = fx->elf_sz;
		err = bpf_object__open_skeleton(skel->skeleton, opts);
	}
	if (!err)
		return skel;
	canary__destroy(skel);
	errno = err < 0 ? -err : err;
	return NULL;
}

/*
 * Open and load the skeleton with its maps pinned in a fresh directory made
 * from template (mkdtemp), and take the descriptors of its maps and programs.
 * Returns 0 or -errno; on error fixture_unload() undoes what was done.
 */
int fixture_load(struct canary_fixture *fx, const char *template)
{
	struct bpf_object_open_opts opts = {
		.sz = sizeof(opts),
		.pin_root_path = fx->pin_dir,
	};
	size_t i;
	int err;

	if (strlen(template) >= sizeof(fx->pin_dir))
		return -ENAMETOOLONG;
	strcpy(fx->pin_dir, template);
	if (!mkdtemp(fx->pin_dir))
		return -errno;
	for (i = 0; i < FIXTURE_N_PINNED; i++)
		snprintf(fx->pin_path[i], sizeof(fx->pin_path[i]), "%s/%s", fx->pin_dir,
			 fixture_pinned_maps[i]);
	/* Only now: the signal handler must find every path in place. */
	fx->have_dir = 1;
	fx->skel = fixture_open(fx, &opts);
	if (!fx->skel)
		return -errno;
	err = canary__load(fx->skel);
	if (err)
		return err < 0 ? err : -err;
	fx->svc_fd = bpf_map__fd(fx->skel->maps.CANARY_MAP(services));
	fx->ct_fd = bpf_map__fd(fx->skel->maps.CANARY_MAP(conntrack));
	fx->ovr_fd = bpf_map__fd(fx->skel->maps.CANARY_MAP(overrides));
	fx->metrics_fd = bpf_map__fd(fx->skel->maps.CANARY_MAP(metrics));
	fx->reasons_fd = bpf_map__fd(fx->skel->maps.CANARY_MAP(reasons));
	fx->ct_stats_fd = bpf_map__fd(fx->skel->maps.CANARY_MAP(ct_stats));
	fx->frags_fd = bpf_map__fd(fx->skel->maps.CANARY_MAP(frags));
	fx->ct_expired_fd = bpf_map__fd(fx->skel->maps.CANARY_MAP(ct_expired));
	fx->killswitch_fd = bpf_map__fd(fx->skel->maps.CANARY_MAP(killswitch));
	fx->ct_syn_fd = bpf_map__fd(fx->skel->maps.CANARY_MAP(ct_syn));
	/* Absent from an older build (fx->elf): services are then written without them. */
	fx->vip_filter_fd = fx->skel->maps.CANARY_MAP(vip_filter) ?
				    bpf_map__fd(fx->skel->maps.CANARY_MAP(vip_filter)) :
				    -1;
	fx->svc_gens_fd = fx->skel->maps.CANARY_MAP(svc_gens) ?
				  bpf_map__fd(fx->skel->maps.CANARY_MAP(svc_gens)) :
				  -1;
	fx->backend_filter_fd = fx->skel->maps.CANARY_MAP(be_filter) ?
					bpf_map__fd(fx->skel->maps.CANARY_MAP(be_filter)) :
					-1;
	fx->fc_gens_fd = fx->skel->maps.CANARY_MAP(fc_gens) ?
				 bpf_map__fd(fx->skel->maps.CANARY_MAP(fc_gens)) :
				 -1;
	fx->tc_in_fd = bpf_program__fd(fx->skel->progs.canary_tc_ingress);
	fx->xdp_fd = bpf_program__fd(fx->skel->progs.canary_xdp_ingress);
	fx->tc_eg_fd = bpf_program__fd(fx->skel->progs.canary_tc_egress);
	fx->ncpus = libbpf_num_possible_cpus();
	if (fx->ncpus <= 0)
		return -EINVAL;
	fx->pcpu = calloc((size_t)fx->ncpus, sizeof(struct canary_metrics));
	return fx->pcpu ? 0 : -ENOMEM;
}
/*
 * How a run starts: BPF needs root, and even root may be refused the load
 * (-EPERM: no CAP_BPF in a container, lockdown), which is a reason to skip,
 * not a broken program; why says which. Otherwise install_cleanup (the
 * program's, with fixture_cleanup_on_exit()) runs before anything is pinned,
 * and the fixture is loaded. Returns 0, FIXTURE_SKIP, or -errno of the load.
 */
int fixture_start(struct canary_fixture *fx, const char *template, void (*install_cleanup)(void),
		  char *why, size_t why_size)
{
	int err;

	if (geteuid() != 0) {
		snprintf(why, why_size, "not running as root");
		return FIXTURE_SKIP;
	}
	install_cleanup();
	err = fixture_load(fx, template);
	if (err == -EPERM) {
		fixture_unload(fx);
		snprintf(why, why_size, "loading the skeleton: %s", strerror(-err));
		return FIXTURE_SKIP;
	}
	return err;
}
/*
 * Report a run that cannot load BPF, and return its exit status. A skip (0)
 * keeps "make test" usable without root; under CI=true a skip would pass a
 * run that tested nothing, so there the program says why in its own words
 * (ci_fmt, on ci_out) and fails.
 */
int fixture_skip(FILE *ci_out, const char *ci_fmt, ...)
{
	const char *ci = getenv("CI");

	if (ci && !strcmp(ci, "true")) {
		va_list ap;

		va_start(ap, ci_fmt);
		vfprintf(ci_out, ci_fmt, ap);
		va_end(ap);
		return 1;
	}
	printf("%s\n", FIXTURE_SKIP_MSG);
	return 0;
}
/*
 * Run program fd repeat times on the frame in; the output frame goes to out,
 * at most out_size bytes. Returns 0 or -errno; r is filled either way, with
 * what the kernel left there, so that it never holds an earlier run's values.
 */
int fixture_test_run(int fd, const void *in, __u32 in_len, void *out, __u32 out_size, __u32 repeat,
		     struct fixture_run *r)
{
	struct bpf_test_run_opts o = {
		.sz = sizeof(o),
		.data_in = in,
		.data_size_in = in_len,
		.data_out = out,
		.data_size_out = out_size,
		.repeat = repeat,
	};
	int err = bpf_prog_test_run_opts(fd, &o);

	r->out_len = o.data_size_out;
	r->retval = o.retval;
	r->duration = o.duration;
	return err;
}
/*
 * Sum a per-CPU value of n u64 counters over all possible CPUs. Returns 0 or
 * -errno of the lookup (out untouched then): each caller fails its own way.
 */
int fixture_pcpu_sum(const struct canary_fixture *fx, int fd, __u32 key, __u64 *out, size_t n)
{
	int cpu;
	size_t i;

	if (bpf_map_lookup_elem(fd, &key, fx->pcpu))
		return -errno;
	memset(out, 0, n * sizeof(*out));
	for (cpu = 0; cpu < fx->ncpus; cpu++)
		for (i = 0; i < n; i++)
			out[i] += fx->pcpu[(size_t)cpu * n + i];
	return 0;
}
/* Collect up to max keys of a hash map; get_next_key from the last one is linear. */
size_t fixture_map_keys(int fd, void *keys, size_t key_size, size_t max)
{
	char *k = keys;
	const void *prev = NULL;
	size_t n = 0;

	while (n < max && !bpf_map_get_next_key(fd, prev, k + n * key_size)) {
		prev = k + n * key_size;
		n++;
	}
	return n;
}
/*
 * Empty conntrack: collect the keys, then delete them in one batch, or one
 * by one if the batch call fails (entries it did not get to would stay).
 */
void fixture_ct_clear(const struct canary_fixture *fx)
{
	static struct canary_ct_key keys[CANARY_CT_MAX_ENTRIES];
	size_t n = fixture_map_keys(fx->ct_fd, keys, sizeof(keys[0]), CANARY_CT_MAX_ENTRIES);
	__u32 count = (__u32)n;

	if (n && bpf_map_delete_batch(fx->ct_fd, keys, &count, NULL))
		for (size_t i = 0; i < n; i++)
			bpf_map_delete_elem(fx->ct_fd, &keys[i]);
	fixture_flow_cache_flush(fx);
}

int fixture_flow_cache_flush(const struct canary_fixture *fx)
{
	static __u32 keys[CANARY_FLOW_CACHE_ENTRIES], gens[CANARY_FLOW_CACHE_ENTRIES];
	__u32 count = CANARY_FLOW_CACHE_ENTRIES, i, next;

	if (fx->fc_gens_fd < 0)
		return 0;
	/* An array has every key: one batch reads them all. */
	if (bpf_map_lookup_batch(fx->fc_gens_fd, NULL, &next, keys, gens, &count, NULL) &&
	    errno != ENOENT)
		return -errno;
	for (i = 0; i < count; i++)
		gens[i]++;
	return bpf_map_update_batch(fx->fc_gens_fd, keys, gens, &count, NULL) ? -errno : 0;
}

int fixture_flow_cache_changed(const struct canary_fixture *fx, const struct canary_ct_key *key)
{
	__u32 slot = canary_flow_cache_slot(key), gen;

	if (fx->fc_gens_fd < 0)
		return 0;
	if (bpf_map_lookup_elem(fx->fc_gens_fd, &slot, &gen))
		return -errno;
	gen++;
	return bpf_map_update_elem(fx->fc_gens_fd, &slot, &gen, BPF_EXIST) ? -errno : 0;
}

int fixture_svc_put(const struct canary_fixture *fx, const struct canary_service_key *key,
		    const struct canary_service *svc, __u64 flags)
{
	struct svcindex_fds fds = {
		.services = fx->svc_fd,
		.filter = fx->vip_filter_fd,
		.backends = fx->backend_filter_fd,
		.gens = fx->svc_gens_fd,
	};

	return svcindex_put(&fds, key, svc, flags);
}

int fixture_svc_delete(const struct canary_fixture *fx, const struct canary_service_key *key,
		       __u32 id)
{
	struct svcindex_fds fds = {
		.services = fx->svc_fd,
		.filter = fx->vip_filter_fd,
		.backends = fx->backend_filter_fd,
		.gens = fx->svc_gens_fd,
	};

	return svcindex_delete(&fds, key, id);
}
