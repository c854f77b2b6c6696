/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The real canary skeleton, loaded for a program that drives it with
 * BPF_PROG_TEST_RUN: tests/bpf/test_datapath.c, tests/bpf/test_bpf_fuzz.c and
 * tools/bench/pktcost.c (tools/bench/scale.c, which resizes conntrack before
 * loading, takes only its test-run and skip helpers, through bench_common.h). Its maps are pinned, as the agent pins them, but in a
 * private directory under /sys/fs/bpf, so that a run never touches a running
 * agent's maps and never leaves pins behind: the directory goes at exit and
 * on the fatal signals the program names. Header only: each program has one
 * fixture and compiles these helpers into itself.
 *
 * What each program does with the fixture (what it asserts, how it reports,
 * which signals it catches) stays in the program.
 */
#ifndef CANARY_TESTS_BPF_FIXTURE_H
#define CANARY_TESTS_BPF_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "canary_consts.h"
#include "canary_reasons.h"
#include "canary_structs.h"
#include "canary.skel.h"

/* Every map the object pins; removed by name, also from a signal handler. */
static const char *const fixture_pinned_maps[] = {
	CANARY_MAP_NAME("services"), CANARY_MAP_NAME("conntrack"),  CANARY_MAP_NAME("overrides"),
	CANARY_MAP_NAME("metrics"),  CANARY_MAP_NAME("reasons"),    CANARY_MAP_NAME("ct_stats"),
	CANARY_MAP_NAME("frags"),    CANARY_MAP_NAME("ct_expired"), CANARY_MAP_NAME("killswitch"),
	CANARY_MAP_NAME("ct_syn"),
};
#define FIXTURE_N_PINNED (sizeof(fixture_pinned_maps) / sizeof(fixture_pinned_maps[0]))

/* What a skipped run prints: the words of every suite that needs BPF (docs/testing.md). */
#define FIXTURE_SKIP_MSG "skipped: needs root/CAP_BPF"

/* fixture_start(): the run cannot load BPF here, and is skipped rather than failed. */
#define FIXTURE_SKIP 1

/* Room for a mkdtemp() template such as "/sys/fs/bpf/canary-test-XXXXXX". */
#define FIXTURE_PIN_DIR_MAX 64

/*
 * The kernel hands out a per-CPU value per possible CPU at a stride of its
 * size rounded up to 8 bytes; fixture_pcpu_sum() steps by whole u64s, which
 * is that stride only while the largest value is made of u64s.
 */
_Static_assert(sizeof(struct canary_metrics) % 8 == 0, "per-CPU stride is the struct size");

struct canary_fixture {
	struct canary *skel;
	char pin_dir[FIXTURE_PIN_DIR_MAX];
	/* Computed at load time: the signal handler may not format strings. */
	char pin_path[FIXTURE_N_PINNED][FIXTURE_PIN_DIR_MAX + 32];
	volatile sig_atomic_t have_dir; /* read by the signal handler */
	int svc_fd, ct_fd, ovr_fd, metrics_fd, reasons_fd, ct_stats_fd, frags_fd, ct_expired_fd;
	int killswitch_fd, ct_syn_fd;
	int tc_in_fd, xdp_fd, tc_eg_fd;
	int ncpus;
	__u64 *pcpu; /* one per-CPU value of the largest per-CPU map, read or zeroed */
};

/* The fixture the signal handler cleans up: a handler gets no argument. */
static struct canary_fixture *fixture_signalled;

/* Async-signal-safe: unlink and rmdir of paths computed at load time. */
static inline void fixture_unpin_all(struct canary_fixture *fx)
{
	size_t i;

	if (!fx->have_dir)
		return;
	for (i = 0; i < FIXTURE_N_PINNED; i++)
		unlink(fx->pin_path[i]);
	rmdir(fx->pin_dir);
}

/* Also removes pins nobody expected, so the directory can always go. */
static inline void fixture_unpin_dir(struct canary_fixture *fx)
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
static inline void fixture_unload(struct canary_fixture *fx)
{
	canary__destroy(fx->skel);
	fx->skel = NULL;
	fixture_unpin_dir(fx);
	free(fx->pcpu);
	fx->pcpu = NULL;
}

/* The pins go, then the signal does what it would have done. */
static inline void fixture_on_signal(int sig)
{
	if (fixture_signalled)
		fixture_unpin_all(fixture_signalled);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Before fixture_load(), so that no exit path leaves a pin: at_exit (the
 * program's own teardown, which calls fixture_unload()) runs at exit, and
 * each of sigs removes the pins before it ends the process.
 */
static inline void fixture_cleanup_on_exit(struct canary_fixture *fx, void (*at_exit)(void),
					   const int *sigs, size_t n_sigs)
{
	size_t i;

	fixture_signalled = fx;
	atexit(at_exit);
	for (i = 0; i < n_sigs; i++)
		signal(sigs[i], fixture_on_signal);
}

/*
 * Open and load the skeleton with its maps pinned in a fresh directory made
 * from template (mkdtemp), and take the descriptors of its maps and programs.
 * Returns 0 or -errno; on error fixture_unload() undoes what was done.
 */
static inline int fixture_load(struct canary_fixture *fx, const char *template)
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
	fx->skel = canary__open_opts(&opts);
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
static inline int fixture_start(struct canary_fixture *fx, const char *template,
				void (*install_cleanup)(void), char *why, size_t why_size)
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
__attribute__((format(printf, 2, 3))) static inline int fixture_skip(FILE *ci_out,
								     const char *ci_fmt, ...)
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

/* What one BPF_PROG_TEST_RUN gave back. */
struct fixture_run {
	__u32 out_len;
	__u32 retval;
	__u32 duration; /* ns: the kernel's mean over the repeat runs */
};

/*
 * Run program fd repeat times on the frame in; the output frame goes to out,
 * at most out_size bytes. Returns 0 or -errno; r is filled either way, with
 * what the kernel left there, so that it never holds an earlier run's values.
 */
static inline int fixture_test_run(int fd, const void *in, __u32 in_len, void *out, __u32 out_size,
				   __u32 repeat, struct fixture_run *r)
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
static inline int fixture_pcpu_sum(const struct canary_fixture *fx, int fd, __u32 key, __u64 *out,
				   size_t n)
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
static inline size_t fixture_map_keys(int fd, void *keys, size_t key_size, size_t max)
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
static inline void fixture_ct_clear(const struct canary_fixture *fx)
{
	static struct canary_ct_key keys[CANARY_CT_MAX_ENTRIES];
	size_t n = fixture_map_keys(fx->ct_fd, keys, sizeof(keys[0]), CANARY_CT_MAX_ENTRIES);
	__u32 count = (__u32)n;

	if (n && bpf_map_delete_batch(fx->ct_fd, keys, &count, NULL))
		for (size_t i = 0; i < n; i++)
			bpf_map_delete_elem(fx->ct_fd, &keys[i]);
}

#endif /* CANARY_TESTS_BPF_FIXTURE_H */
