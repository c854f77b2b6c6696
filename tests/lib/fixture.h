/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The real canary skeleton, loaded for a program that drives it with
 * BPF_PROG_TEST_RUN: the BPF suite (tests/bpf/harness.c),
 * tests/bpf/test_bpf_fuzz.c and tools/bench/pktcost.c (tools/bench/scale.c,
 * which resizes conntrack before loading, takes only its test-run and skip
 * helpers, through bench_common.h). Its maps are pinned, as the agent pins
 * them, but in a private directory under /sys/fs/bpf, so that a run never
 * touches a running agent's maps and never leaves pins behind: the directory
 * goes at exit and on the fatal signals the program names.
 *
 * Part of libcanary-testfix.a (tests/lib/, with pkt.h): built once, as is for
 * the benchmarks and the packet fuzzer and with sanitizers for the BPF suite.
 * A program has one fixture at a time (the signal handler knows one).
 *
 * What each program does with the fixture (what it asserts, how it reports,
 * which signals it catches) stays in the program.
 */
#ifndef CANARY_TESTS_LIB_FIXTURE_H
#define CANARY_TESTS_LIB_FIXTURE_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include <linux/types.h>

#include "canary_consts.h"
#include "canary_reasons.h"
#include "canary_structs.h"

/* Every map the object pins; removed by name, also from a signal handler. */
#define FIXTURE_N_PINNED 13
extern const char *const fixture_pinned_maps[FIXTURE_N_PINNED];

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

struct canary; /* canary.skel.h */

struct canary_fixture {
	struct canary *skel;
	char pin_dir[FIXTURE_PIN_DIR_MAX];
	/* Computed at load time: the signal handler may not format strings. */
	char pin_path[FIXTURE_N_PINNED][FIXTURE_PIN_DIR_MAX + 32];
	volatile sig_atomic_t have_dir; /* read by the signal handler */
	int svc_fd, ct_fd, ovr_fd, metrics_fd, reasons_fd, ct_stats_fd, frags_fd, ct_expired_fd;
	int killswitch_fd, ct_syn_fd, vip_filter_fd, svc_gens_fd, backend_filter_fd;
	int fc_gens_fd; /* -1 in an older build without the flow cache */
	int tc_in_fd, xdp_fd, tc_eg_fd;
	int ncpus;
	/* Set before fixture_load() to load this object instead of the built-in one. */
	const void *elf;
	size_t elf_sz;
	__u64 *pcpu; /* one per-CPU value of the largest per-CPU map, read or zeroed */
};

/*
 * Write or delete a service as the agent does (userspace/svcindex.h): with
 * the filter bits and the generation record the programs read. Returns 0
 * or -errno. A raw write of services_v<N> leaves the programs blind to it.
 */
int fixture_svc_put(const struct canary_fixture *fx, const struct canary_service_key *key,
		    const struct canary_service *svc, __u64 flags);
int fixture_svc_delete(const struct canary_fixture *fx, const struct canary_service_key *key,
		       __u32 id);

/* Safe on a fixture that is loaded partly or not at all, and more than once. */
void fixture_unload(struct canary_fixture *fx);

/*
 * Before fixture_load(), so that no exit path leaves a pin: at_exit (the
 * program's own teardown, which calls fixture_unload()) runs at exit, and
 * each of sigs removes the pins before it ends the process.
 */
void fixture_cleanup_on_exit(struct canary_fixture *fx, void (*at_exit)(void), const int *sigs,
			     size_t n_sigs);

/*
 * Open and load the skeleton with its maps pinned in a fresh directory made
 * from template (mkdtemp), and take the descriptors of its maps and programs.
 * Returns 0 or -errno; on error fixture_unload() undoes what was done.
 */
int fixture_load(struct canary_fixture *fx, const char *template);

/*
 * How a run starts: BPF needs root, and even root may be refused the load
 * (-EPERM: no CAP_BPF in a container, lockdown), which is a reason to skip,
 * not a broken program; why says which. Otherwise install_cleanup (the
 * program's, with fixture_cleanup_on_exit()) runs before anything is pinned,
 * and the fixture is loaded. Returns 0, FIXTURE_SKIP, or -errno of the load.
 */
int fixture_start(struct canary_fixture *fx, const char *template, void (*install_cleanup)(void),
		  char *why, size_t why_size);

/*
 * Report a run that cannot load BPF, and return its exit status. A skip (0)
 * keeps "make test" usable without root; under CI=true a skip would pass a
 * run that tested nothing, so there the program says why in its own words
 * (ci_fmt, on ci_out) and fails.
 */
__attribute__((format(printf, 2, 3))) int fixture_skip(FILE *ci_out, const char *ci_fmt, ...);

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
int fixture_test_run(int fd, const void *in, __u32 in_len, void *out, __u32 out_size, __u32 repeat,
		     struct fixture_run *r);

/*
 * Sum a per-CPU value of n u64 counters over all possible CPUs. Returns 0 or
 * -errno of the lookup (out untouched then): each caller fails its own way.
 */
int fixture_pcpu_sum(const struct canary_fixture *fx, int fd, __u32 key, __u64 *out, size_t n);

/* Collect up to max keys of a hash map; get_next_key from the last one is linear. */
size_t fixture_map_keys(int fd, void *keys, size_t key_size, size_t max);

/*
 * Empty conntrack: collect the keys, then delete them in one batch, or one
 * by one if the batch call fails (entries it did not get to would stay).
 */
/* Empty conntrack, and drop every cached copy of it (fixture_flow_cache_flush()). */
void fixture_ct_clear(const struct canary_fixture *fx);

/*
 * The flow cache (bpf/lib/flowcache.h) trusts its copies of conntrack for
 * up to a second. A test that changes conntrack behind the programs' back,
 * or moves time ahead (an expiry pass in the future), drops them as the
 * programs do on a change: flush bumps every slot's generation, changed
 * the slot of key. 0 or -errno.
 */
int fixture_flow_cache_flush(const struct canary_fixture *fx);
int fixture_flow_cache_changed(const struct canary_fixture *fx, const struct canary_ct_key *key);

#endif /* CANARY_TESTS_LIB_FIXTURE_H */
