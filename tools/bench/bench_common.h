/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the two BPF_PROG_TEST_RUN benchmarks share: tools/bench/pktcost.c
 * (the cost of each program path) and tools/bench/scale.c (conntrack at 100k
 * and 1M flows). Both time canary's programs next to empty programs of the
 * same types measured the same way, refuse to report a number for a run that
 * took the wrong branch, time the established path on the same identity
 * service, and take the same command line. Keeping that here means their
 * repeat rows are measured alike and can be read side by side. Header only,
 * building on the test-run call and skip rule of the tests' fixture library
 * (tests/lib/fixture.h, libcanary-testfix.a).
 *
 * The includer defines BENCH_TOOL, its name, before including this: every
 * message starts with it. What each tool measures, its rows, tables and JSON
 * stay in the tool, as does how it loads canary (scale resizes conntrack
 * before the load, which fixture_load() cannot).
 */
#ifndef CANARY_TOOLS_BENCH_COMMON_H
#define CANARY_TOOLS_BENCH_COMMON_H

#ifndef BENCH_TOOL
#error "define BENCH_TOOL, the tool's name for its messages, before including bench_common.h"
#endif

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "canary_consts.h"
#include "canary_reasons.h"
#include "canary_structs.h"
#include "canary.skel.h"
#include "empty.skel.h"
#include "fixture.h"
#include "pkt.h"
#include "svcindex.h"

/* The CPU both tools run on (bench_pin_cpu()) and report in their JSON. */
#define BENCH_CPU 0

/*
 * The repeat method, the same in both tools: BENCH_ROUNDS calls (enough for
 * a median) of BENCH_REPEAT runs each. --quick divides the runs of every
 * method by BENCH_QUICK_DIV.
 */
#define BENCH_REPEAT	1000000
#define BENCH_ROUNDS	5
#define BENCH_QUICK_DIV 100

/* A number as a string literal, for help text that quotes a constant. */
#define BENCH_STR_(x) #x
#define BENCH_STR(x)  BENCH_STR_(x)

__attribute__((format(printf, 1, 2))) static inline int bench_fail(const char *fmt, ...)
{
	va_list ap;

	fputs(BENCH_TOOL ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* A path that did not do what we meant to measure: say so and measure nothing. */
#define bench_wrong_branch(path, hook, fmt, ...)                                                  \
	bench_fail("%s on %s took the wrong branch: " fmt "; refusing to report a number for it", \
		   path, hook, ##__VA_ARGS__)

/* Report a run that cannot load BPF (fixture_skip()), and return its exit status. */
static inline int bench_skip(const char *why)
{
	return fixture_skip(stderr, BENCH_TOOL " cannot run: %s\n", why);
}

/* Stabler numbers: no migration between calls, one CPU's caches and counters. */
static inline void bench_pin_cpu(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(BENCH_CPU, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fprintf(stderr, BENCH_TOOL ": warning: cannot pin to CPU %d: %s\n", BENCH_CPU,
			strerror(errno));
}

/* quick_help: what --quick does in this tool. */
static inline void bench_usage(FILE *f, const char *argv0, const char *quick_help)
{
	fprintf(f,
		"usage: %s [--quick] [--json FILE]\n"
		"  --quick      %s\n"
		"  --json FILE  also write the results as JSON to FILE\n",
		argv0, quick_help);
}

/*
 * [--quick] [--json FILE] [--help]: *div becomes 1, or BENCH_QUICK_DIV with
 * --quick, and *json_file the file or NULL. Returns -1 to go on, or the
 * status to exit with once the usage has been printed (0 for --help).
 */
static inline int bench_args(int argc, char **argv, const char *quick_help, unsigned int *div,
			     const char **json_file)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*div = 1;
	*json_file = NULL;
	while ((c = getopt_long(argc, argv, "qj:h", longopts, NULL)) != -1) {
		if (c == 'q') {
			*div = BENCH_QUICK_DIV;
		} else if (c == 'j') {
			*json_file = optarg;
		} else {
			bench_usage(c == 'h' ? stdout : stderr, argv[0], quick_help);
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind != argc) {
		bench_usage(stderr, argv[0], quick_help);
		return 2;
	}
	return -1;
}

/*
 * How a run starts: BPF needs root, and even root may be refused the load
 * (-EPERM, -EACCES: no CAP_BPF in a container, lockdown), which is a reason
 * to skip, not a broken tool. Otherwise the tool is pinned to BENCH_CPU, its
 * install_cleanup (atexit of its teardown, and the signals) runs before
 * anything is pinned, and load() runs; what names what it loads, for the
 * error. Returns -1 to go on, or the status to exit with.
 */
static inline int bench_start(void (*install_cleanup)(void), int (*load)(void),
			      void (*teardown)(void), const char *what)
{
	int err;

	if (geteuid() != 0)
		return bench_skip("not running as root");
	bench_pin_cpu();
	install_cleanup();
	err = load();
	if (err == -EPERM || err == -EACCES) {
		teardown();
		return bench_skip(strerror(-err));
	}
	if (err) {
		bench_fail("cannot load %s: %s", what, strerror(-err));
		return 1;
	}
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Programs: canary's three and the empty ones they are compared with. */

/* A program to run and the verdict that means "let it through". */
struct bench_hook {
	const char *name;
	int fd;
	__u32 pass;
	bool xdp; /* which empty program its rows are compared with */
};

struct bench_hooks {
	struct bench_hook tc_in, xdp_in, tc_eg, empty_tc, empty_xdp;
};

/* The hooks of a loaded canary skeleton. */
static inline void bench_hooks_canary(struct bench_hooks *h, const struct canary *skel)
{
	h->tc_in =
		(struct bench_hook){ "tc ingress", bpf_program__fd(skel->progs.canary_tc_ingress),
				     TC_ACT_OK, false };
	h->xdp_in = (struct bench_hook){ "xdp", bpf_program__fd(skel->progs.canary_xdp_ingress),
					 XDP_PASS, true };
	h->tc_eg = (struct bench_hook){ "tc egress", bpf_program__fd(skel->progs.canary_tc_egress),
					TC_ACT_OK, false };
}

/* Open and load the empty programs into *e and take their hooks. Returns -errno. */
static inline int bench_empty_load(struct bench_hooks *h, struct empty **e)
{
	*e = empty__open_and_load();
	if (!*e)
		return -errno;
	h->empty_tc = (struct bench_hook){ "tc", bpf_program__fd((*e)->progs.empty_tc), TC_ACT_OK,
					   false };
	h->empty_xdp = (struct bench_hook){ "xdp", bpf_program__fd((*e)->progs.empty_xdp), XDP_PASS,
					    true };
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The identity service and the request both tools time on it. */

/*
 * bench-identity: VIP:5000, plain TCP, weight 0, and its one stable backend
 * is VIP:5000 itself. The established path does all its work (conntrack hit,
 * counters, checksum fix-ups, stores) and the frame comes out as it went in,
 * ready for the next run: the repeat method applies.
 */
#define BENCH_VIP     PKT_IP4(10, 96, 0, 10)
#define BENCH_ID_PORT PKT_BE16(5000)

/* A service as the tools install it. */
struct bench_svc {
	const char *name;
	struct canary_service_key key;
	__u32 id;
	__u8 flags;
	__u16 weight;
	const struct canary_backend *stable, *canary;
	__u8 n_stable, n_canary;
};

static const struct canary_backend bench_be_self[] = {
	{ .addr = BENCH_VIP, .port = BENCH_ID_PORT },
};

/* Id 2: pktcost installs it next to its bench-tcp (0) and bench-http (1). */
static const struct bench_svc bench_svc_identity = {
	.name = "bench-identity",
	.key = { .vip = BENCH_VIP, .port = BENCH_ID_PORT, .proto = IPPROTO_TCP },
	.id = 2,
	.weight = 0,
	.stable = bench_be_self,
	.n_stable = sizeof(bench_be_self) / sizeof(bench_be_self[0]),
};

static const char bench_http_get[] = "GET /api/v1/items HTTP/1.1\r\nHost: bench\r\n\r\n";

/*
 * Install d in the services map of fds, as the agent would (generation 1,
 * with the VIP filter bit and the generation record: userspace/svcindex.h).
 */
static inline int bench_svc_install(const struct svcindex_fds *fds, const struct bench_svc *d)
{
	struct canary_service s;
	int err;

	memset(&s, 0, sizeof(s));
	s.id = d->id;
	s.generation = 1;
	s.seed = 0x5eed0000U + d->id;
	s.weight = d->weight;
	s.flags = d->flags;
	snprintf(s.name, sizeof(s.name), "%s", d->name);
	s.n_backends[CANARY_V_STABLE] = d->n_stable;
	s.n_backends[CANARY_V_CANARY] = d->n_canary;
	memcpy(s.backends[CANARY_V_STABLE], d->stable, d->n_stable * sizeof(*d->stable));
	if (d->n_canary)
		memcpy(s.backends[CANARY_V_CANARY], d->canary, d->n_canary * sizeof(*d->canary));
	err = svcindex_put(fds, &d->key, &s, BPF_ANY);
	if (err)
		return bench_fail("installing service %s: %s", d->name, strerror(-err));
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Statistics. */

struct bench_stats {
	double median;
	double mean;
	double p99;
};

static inline int bench_cmp_u32(const void *pa, const void *pb)
{
	__u32 x = *(const __u32 *)pa, y = *(const __u32 *)pb;

	return (x > y) - (x < y);
}

/* Median, mean and p99 of n durations. Sorts v. */
static inline struct bench_stats bench_stats_of(__u32 *v, size_t n)
{
	struct bench_stats st = { 0, 0, 0 };
	double sum = 0;
	size_t i;

	if (!n)
		return st;
	for (i = 0; i < n; i++)
		sum += v[i];
	qsort(v, n, sizeof(*v), bench_cmp_u32);
	st.mean = sum / (double)n;
	st.median = n % 2 ? v[n / 2] : ((double)v[n / 2 - 1] + v[n / 2]) / 2;
	st.p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
	return st;
}

/* ------------------------------------------------------------------------ */
/* Running frames. */

/* A frame in, what came out, and what the kernel said about the run. */
struct bench_xfer {
	__u8 in[PKT_MAX];
	__u8 out[PKT_MAX];
	__u32 in_len;
	__u32 out_len;
	__u32 ret;
	__u32 duration;
};

/* Any verdict but the hook's pass is a failure: the frame would not have gone on. */
static inline int bench_run(const struct bench_hook *h, struct bench_xfer *x, __u32 repeat)
{
	struct fixture_run r;
	int err = fixture_test_run(h->fd, x->in, x->in_len, x->out, sizeof(x->out), repeat, &r);

	if (err)
		return bench_fail("BPF_PROG_TEST_RUN on %s: %s", h->name, strerror(-err));
	x->out_len = r.out_len;
	x->ret = r.retval;
	x->duration = r.duration;
	if (x->ret != h->pass)
		return bench_fail("%s returned %u, expected %u", h->name, x->ret, h->pass);
	return 0;
}

static inline bool bench_out_untouched(const struct bench_xfer *x)
{
	return x->out_len == x->in_len && !memcmp(x->out, x->in, x->in_len);
}

/* BENCH_ROUNDS calls of `repeat` runs each on the same frame. */
static inline int bench_measure_repeat(const struct bench_hook *h, struct bench_xfer *x,
				       __u32 repeat, struct bench_stats *st)
{
	__u32 avg[BENCH_ROUNDS];
	int i;

	for (i = 0; i < BENCH_ROUNDS; i++) {
		if (bench_run(h, x, repeat))
			return -1;
		avg[i] = x->duration;
	}
	*st = bench_stats_of(avg, BENCH_ROUNDS);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Which branch a run took. */

/*
 * The reasons_v<N> counters, summed over CPUs. Each tool reads them its own
 * way: pktcost through its fixture, scale (which has none) directly.
 */
struct bench_reasons {
	__u64 n[CANARY_R_COUNT];
};

/* Did exactly the reasons in want move from before to now, each by exactly its amount? */
static inline int bench_reasons_moved(const struct bench_reasons *before,
				      const struct bench_reasons *now,
				      const __u64 want[CANARY_R_COUNT], const char *path,
				      const char *hook)
{
	int i;

	for (i = 0; i < CANARY_R_COUNT; i++)
		if (now->n[i] - before->n[i] != want[i])
			return bench_wrong_branch(path, hook,
						  "reason %s counted %llu, expected %llu",
						  canary_reason_names[i],
						  (unsigned long long)(now->n[i] - before->n[i]),
						  (unsigned long long)want[i]);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Output. */

/* Write the report to file and free it; a NULL root is a report that could not be built. */
static inline int bench_json_write(json_t *root, const char *file)
{
	int err;

	if (!root)
		return bench_fail("building the JSON report");
	err = json_dump_file(root, file, JSON_INDENT(2));
	json_decref(root);
	if (err)
		return bench_fail("writing %s: %s", file, strerror(errno));
	return 0;
}

#endif /* CANARY_TOOLS_BENCH_COMMON_H */
