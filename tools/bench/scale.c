// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * scale: canaryd's conntrack at 100k and 1M flows. For each fill level the
 * real programs are loaded from the skeleton, maps pinned in a fresh
 * /sys/fs/bpf/canary-scale-XXXXXX directory, the conntrack filled with
 * synthetic established flows, and then:
 *
 *   memory   every map's "memlock" from /proc/self/fdinfo (what bpftool map
 *            show prints), before and after the fill;
 *   fill     how long the batch insert of 2 entries per flow took, and a
 *            batch count that checks nothing was evicted;
 *   walk     the agent's own conntrack counts from the loader library: the
 *            walk (dp_flow_count_walked, batch lookups of 4,096 entries),
 *            which the agent runs every 40 ticks on kernels before 6.6, and
 *            the kernel's count (dp_flow_count through the
 *            bpf_map_sum_elem_count kfunc), which it runs every tick;
 *   packets  the established path's cost by BPF_PROG_TEST_RUN, next to an
 *            empty program measured the same way (as pktcost does):
 *              repeat  identity NAT (the flow's backend is the VIP itself,
 *                      so output = input), one flow, 1,000,000 runs a call;
 *              loop    one call per packet on the same flow, and one call
 *                      per packet on a random flow of the fill each time
 *                      (a conntrack entry that is rarely in the cache).
 *
 * Every filled flow belongs to the bench-identity service (VIP:5000, plain
 * TCP, one stable backend that is VIP:5000), so any of them can be timed.
 * Every run is checked: the forward reason grew by exactly the runs and no
 * other reason moved (no new flow, no conntrack miss), the frame came out
 * unchanged. A wrong branch aborts the tool instead of reporting a number.
 *
 * The product's conntrack_v<N> holds CANARY_CT_MAX_ENTRIES = 262,144 entries
 * (131,072 flows); 100k flows fit in it. 1M flows cannot: for that level the
 * map is resized before load (bpf_map__set_max_entries) to 2 x 1M + 1/16.
 *
 * Usage: scale [--quick] [--json FILE]   (--quick: 100k only, fewer runs)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "canary_consts.h"
#include "canary_structs.h"
#include "canary.skel.h"
#include "dataplane.h"
#include "empty.skel.h"
#include "fixture.h"
#include "pkt.h"

#define BENCH_TOOL "scale"
#include "bench_common.h"

#define PIN_TEMPLATE "/sys/fs/bpf/canary-scale-XXXXXX"

#define N_LOOP	     200000 /* calls of a loop row */
#define FILL_BATCH   4096
#define MAX_ROWS     40
#define MAX_MAPS     8
#define MAX_LEVELS   3

#define CLIENT_0     0x64400000U /* 100.64.0.0, flow i's client is CLIENT_0 + i / 1024 */

/* What --quick does, for the usage text. */
#define QUICK_HELP "100k flows only (and 1 flow), run counts divided by " BENCH_STR(BENCH_QUICK_DIV)

struct level {
	const char *name;
	__u32 flows;
	__u32 max_entries; /* conntrack_v<N> */
	bool in_quick;
};

static const struct level levels[MAX_LEVELS] = {
	{ "1 flow", 1, CANARY_CT_MAX_ENTRIES, true },
	{ "100k flows", 100000, CANARY_CT_MAX_ENTRIES, true },
	{ "1M flows", 1000000, 2 * 1000000 + 2 * 1000000 / 16, false },
};

struct row {
	int level;
	const char *path;
	const char *hook;
	bool repeat; /* else loop */
	bool xdp;
	bool empty;
	__u32 calls, runs_per_call;
	struct bench_stats st;
};

struct map_mem {
	char name[32];
	const char *type;
	__u32 max_entries, key_size, value_size;
	unsigned long long memlock_before, memlock_after;
};

struct level_result {
	bool done;
	__u32 max_entries;
	__u64 entries_counted; /* batch count after the fill */
	double fill_s;
	double batch_count_s;
	unsigned int walk_count; /* dp_flow_count_walked */
	double walk_s;
	unsigned int kcount; /* dp_flow_count: the kernel's own count, when it has one */
	double kcount_s;
	bool kcount_done;
	int n_maps;
	struct map_mem maps[MAX_MAPS];
};

static struct {
	struct canary *skel;
	struct empty *empty;
	char pin_dir[sizeof(PIN_TEMPLATE)];
	char pin_path[FIXTURE_N_PINNED][sizeof(PIN_TEMPLATE) + 32];
	volatile sig_atomic_t have_dir;
	int ct_fd, reasons_fd;
	struct bench_hooks hooks;
	int ncpus;
	__u64 *pcpu;
	__u32 *dur;
	unsigned int div;
	struct bench_xfer x;
	struct row rows[MAX_ROWS];
	int n_rows;
	struct level_result res[MAX_LEVELS];
	struct canary_ct_key *keys;
	struct canary_ct_entry *vals;
} b;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Setup and teardown. */

/* Async-signal-safe. */
static void unpin_all(void)
{
	size_t i;

	if (!b.have_dir)
		return;
	for (i = 0; i < FIXTURE_N_PINNED; i++)
		unlink(b.pin_path[i]);
	rmdir(b.pin_dir);
}

static void unpin_dir(void)
{
	char path[sizeof(b.pin_dir) + 256];
	struct dirent *de;
	DIR *d;

	if (!b.have_dir)
		return;
	d = opendir(b.pin_dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", b.pin_dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	unpin_all();
	b.have_dir = 0;
}

static void level_unload(void)
{
	canary__destroy(b.skel);
	b.skel = NULL;
	unpin_dir();
}

static void teardown(void)
{
	level_unload();
	empty__destroy(b.empty);
	b.empty = NULL;
	free(b.pcpu);
	b.pcpu = NULL;
	free(b.dur);
	b.dur = NULL;
	free(b.keys);
	b.keys = NULL;
	free(b.vals);
	b.vals = NULL;
}

static void on_signal(int sig)
{
	unpin_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_cleanup(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	size_t i;

	atexit(teardown);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_signal);
}

/* Once: the empty programs and the buffers. Returns -errno. */
static int global_init(void)
{
	int err = bench_empty_load(&b.hooks, &b.empty);

	if (err)
		return err;
	b.ncpus = libbpf_num_possible_cpus();
	if (b.ncpus <= 0)
		return -EINVAL;
	b.pcpu = calloc((size_t)b.ncpus, sizeof(__u64));
	b.dur = calloc(N_LOOP, sizeof(*b.dur));
	b.keys = calloc(FILL_BATCH, sizeof(*b.keys));
	b.vals = calloc(FILL_BATCH, sizeof(*b.vals));
	return b.pcpu && b.dur && b.keys && b.vals ? 0 : -ENOMEM;
}

/* The canary object with conntrack_v<N> sized for the level, pinned in a fresh dir. */
static int level_load(const struct level *lv)
{
	struct bpf_object_open_opts opts = {
		.sz = sizeof(opts),
		.pin_root_path = b.pin_dir,
	};
	size_t i;
	int err;

	strcpy(b.pin_dir, PIN_TEMPLATE);
	if (!mkdtemp(b.pin_dir))
		return -errno;
	for (i = 0; i < FIXTURE_N_PINNED; i++)
		snprintf(b.pin_path[i], sizeof(b.pin_path[i]), "%s/%s", b.pin_dir,
			 fixture_pinned_maps[i]);
	b.have_dir = 1;
	b.skel = canary__open_opts(&opts);
	if (!b.skel)
		return -errno;
	if (lv->max_entries != bpf_map__max_entries(b.skel->maps.CANARY_MAP(conntrack))) {
		err = bpf_map__set_max_entries(b.skel->maps.CANARY_MAP(conntrack), lv->max_entries);
		if (err)
			return err;
	}
	err = canary__load(b.skel);
	if (err)
		return err < 0 ? err : -err;
	bench_hooks_canary(&b.hooks, b.skel);
	b.ct_fd = bpf_map__fd(b.skel->maps.CANARY_MAP(conntrack));
	b.reasons_fd = bpf_map__fd(b.skel->maps.CANARY_MAP(reasons));
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Memory. */

static unsigned long long fd_memlock(int fd)
{
	char path[64], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void maps_memory(struct level_result *r, bool after)
{
	struct bpf_map *m;
	int n = 0;

	bpf_object__for_each_map(m, b.skel->obj) {
		struct map_mem *mm;

		if (n >= MAX_MAPS)
			break;
		mm = &r->maps[n++];
		if (!after) {
			snprintf(mm->name, sizeof(mm->name), "%s", bpf_map__name(m));
			mm->type = libbpf_bpf_map_type_str(bpf_map__type(m));
			mm->max_entries = bpf_map__max_entries(m);
			mm->key_size = bpf_map__key_size(m);
			mm->value_size = bpf_map__value_size(m);
			mm->memlock_before = fd_memlock(bpf_map__fd(m));
		} else {
			mm->memlock_after = fd_memlock(bpf_map__fd(m));
		}
	}
	r->n_maps = n;
}

/* ------------------------------------------------------------------------ */
/* Flows. */

static __be32 flow_client(__u32 i)
{
	return htonl(CLIENT_0 + (i >> 10));
}

static __be16 flow_port(__u32 i)
{
	return htons((__u16)(10000 + (i & 1023)));
}

/* Both entries of established identity flow i, as the programs would have written them. */
static void flow_entries(__u32 i, __u64 now, struct canary_ct_key *fk, struct canary_ct_entry *fe,
			 struct canary_ct_key *rk, struct canary_ct_entry *re)
{
	memset(fk, 0, sizeof(*fk));
	fk->saddr = flow_client(i);
	fk->daddr = BENCH_VIP;
	fk->sport = flow_port(i);
	fk->dport = BENCH_ID_PORT;
	fk->proto = IPPROTO_TCP;
	memset(fe, 0, sizeof(*fe));
	fe->nat_addr = BENCH_VIP;
	fe->nat_port = BENCH_ID_PORT;
	fe->version = CANARY_V_STABLE;
	fe->flags = CANARY_CT_F_ESTABLISHED | CANARY_CT_F_CSEQ_VALID | CANARY_CT_F_SSEQ_VALID |
		    CANARY_CT_F_PROBED;
	fe->svc_id = bench_svc_identity.id;
	fe->created_ns = now;
	fe->last_seen_ns = now;
	fe->client_seq_end = 0x10000001U;
	fe->server_seq_end = 0x70000001U;

	memset(rk, 0, sizeof(*rk));
	rk->saddr = BENCH_VIP; /* the backend is the VIP itself */
	rk->sport = BENCH_ID_PORT;
	rk->daddr = fk->saddr;
	rk->dport = fk->sport;
	rk->proto = IPPROTO_TCP;
	memset(re, 0, sizeof(*re));
	re->nat_addr = BENCH_VIP;
	re->nat_port = BENCH_ID_PORT;
	re->version = CANARY_V_STABLE;
	re->flags = CANARY_CT_F_REVERSE;
	re->svc_id = bench_svc_identity.id;
	re->created_ns = now;
	re->last_seen_ns = now;
}

static int fill(__u32 flows, double *secs)
{
	struct bpf_map_batch_opts opts = { .sz = sizeof(opts), .elem_flags = BPF_ANY };
	__u64 now = mono_ns();
	double t0 = now_s();
	__u32 i = 0, n, j;

	/* Bounded by flows: every round adds FILL_BATCH / 2 of them. */
	while (i < flows) {
		int err;

		n = 0;
		for (; i < flows && n + 2 <= FILL_BATCH; i++, n += 2)
			flow_entries(i, now, &b.keys[n], &b.vals[n], &b.keys[n + 1],
				     &b.vals[n + 1]);
		j = n;
		err = bpf_map_update_batch(b.ct_fd, b.keys, b.vals, &j, &opts);
		if (err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP) {
			/* No batch support: one update at a time. */
			for (j = 0; j < n; j++)
				if (bpf_map_update_elem(b.ct_fd, &b.keys[j], &b.vals[j], BPF_ANY))
					return bench_fail("filling conntrack: %s", strerror(errno));
		} else if (err || j != n) {
			return bench_fail("filling conntrack: %s (%u of %u)", strerror(-err), j, n);
		}
	}
	*secs = now_s() - t0;
	return 0;
}

/* Entries in conntrack, by batch lookups (fast, and independent of the agent's walk). */
static int batch_count(__u32 max_entries, __u64 *total, double *secs)
{
	__u32 tok_in, tok_out = 0, count, rounds;
	double t0 = now_s();
	void *in = NULL;

	*total = 0;
	/* Every round but the last returns at least one entry. */
	for (rounds = 0; rounds <= max_entries; rounds++) {
		int err;

		count = FILL_BATCH;
		err = bpf_map_lookup_batch(b.ct_fd, in, &tok_out, b.keys, b.vals, &count, NULL);
		if (err && err != -ENOENT)
			return bench_fail("counting conntrack: %s", strerror(-err));
		*total += count;
		if (err == -ENOENT) {
			*secs = now_s() - t0;
			return 0;
		}
		tok_in = tok_out;
		in = &tok_in;
	}
	return bench_fail("counting conntrack: the walk did not end");
}

/*
 * The agent's own counts, through the loader library on the pinned maps:
 * the walk (older kernels) and the kernel's O(1) count (Linux 6.6+).
 */
static int agent_walk(struct level_result *r)
{
	struct canary_dp *dp;
	double t0;
	int err = dp_open_pinned(b.pin_dir, &dp);

	if (err)
		return bench_fail("dp_open_pinned %s: %s", b.pin_dir, strerror(-err));
	t0 = now_s();
	err = dp_flow_count_walked(dp, &r->walk_count);
	r->walk_s = now_s() - t0;
	if (!err && dp_flow_count_is_cheap(dp)) {
		t0 = now_s();
		err = dp_flow_count(dp, &r->kcount);
		r->kcount_s = now_s() - t0;
		r->kcount_done = !err;
	}
	dp_close(dp);
	if (err)
		return bench_fail("counting conntrack entries: %s", strerror(-err));
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Running frames. */

/* A data segment (ACK+PSH, 43 bytes) of identity flow i. */
static void data_frame(__u32 i, struct bench_xfer *x)
{
	struct pkt_spec s;

	memset(&s, 0, sizeof(s));
	s.saddr = flow_client(i);
	s.sport = flow_port(i);
	s.daddr = BENCH_VIP;
	s.dport = BENCH_ID_PORT;
	s.proto = IPPROTO_TCP;
	s.frag = PKT_IP_DF;
	s.seq = 0x10000001U;
	s.ack = 0x70000001U;
	s.tcp_flags = PKT_TCP_ACK | PKT_TCP_PSH;
	s.payload = bench_http_get;
	s.payload_len = sizeof(bench_http_get) - 1;
	x->in_len = (__u32)pkt_build(x->in, sizeof(x->in), &s);
}

static int reasons_read(struct bench_reasons *r)
{
	__u32 k;
	int cpu;

	for (k = 0; k < CANARY_R_COUNT; k++) {
		if (bpf_map_lookup_elem(b.reasons_fd, &k, b.pcpu))
			return bench_fail("reading " CANARY_MAP_NAME("reasons") ": %s",
					  strerror(errno));
		r->n[k] = 0;
		for (cpu = 0; cpu < b.ncpus; cpu++)
			r->n[k] += b.pcpu[cpu];
	}
	return 0;
}

/* Only "forward" moved, by exactly n. */
static int forwarded_exactly(const struct bench_reasons *before, __u64 n, const char *path,
			     const char *hook)
{
	__u64 want[CANARY_R_COUNT] = { 0 };
	struct bench_reasons now;

	if (reasons_read(&now))
		return -1;
	want[CANARY_R_FORWARD] = n;
	return bench_reasons_moved(before, &now, want, path, hook);
}

/* ------------------------------------------------------------------------ */
/* Statistics and rows. */

static void add_row(int level, const char *path, const struct bench_hook *h, bool repeat,
		    __u32 calls, __u32 per_call, struct bench_stats st)
{
	struct row *r;

	if (b.n_rows >= MAX_ROWS)
		return;
	r = &b.rows[b.n_rows++];
	r->level = level;
	r->path = path;
	r->hook = h->name;
	r->repeat = repeat;
	r->xdp = h->xdp;
	r->empty = !strncmp(path, "empty", 5);
	r->calls = calls;
	r->runs_per_call = per_call;
	r->st = st;
}

static const struct row *empty_ref(const struct row *r)
{
	int i;

	for (i = 0; i < b.n_rows; i++)
		if (b.rows[i].empty && b.rows[i].xdp == r->xdp && b.rows[i].repeat == r->repeat)
			return &b.rows[i];
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Measuring. */

static int bench_empty(const struct bench_hook *h, const char *path)
{
	__u32 i, n = N_LOOP / b.div;
	struct bench_stats st;

	data_frame(0, &b.x);
	if (bench_run(h, &b.x, 1) || !bench_out_untouched(&b.x))
		return bench_fail("the empty program changed the frame");
	if (bench_measure_repeat(h, &b.x, BENCH_REPEAT / b.div, &st))
		return -1;
	add_row(-1, path, h, true, BENCH_ROUNDS, BENCH_REPEAT / b.div, st);
	for (i = 0; i < n; i++) {
		if (bench_run(h, &b.x, 1))
			return -1;
		b.dur[i] = b.x.duration;
	}
	add_row(-1, path, h, false, n, 1, bench_stats_of(b.dur, n));
	return 0;
}

/* Identity flow `flow`, repeated: the program's own cost on a warm entry. */
static int bench_repeat(int level, const struct bench_hook *h, __u32 flow)
{
	static const char path[] = "established (identity NAT), one flow";
	__u32 repeat = BENCH_REPEAT / b.div;
	struct bench_reasons before;
	struct bench_stats st;

	data_frame(flow, &b.x);
	if (reasons_read(&before) || bench_run(h, &b.x, 1))
		return -1;
	if (!bench_out_untouched(&b.x))
		return bench_fail("%s on %s: the frame was changed", path, h->name);
	if (forwarded_exactly(&before, 1, path, h->name) || reasons_read(&before))
		return -1;
	if (bench_measure_repeat(h, &b.x, repeat, &st))
		return -1;
	if (!bench_out_untouched(&b.x) ||
	    forwarded_exactly(&before, (__u64)BENCH_ROUNDS * repeat, path, h->name))
		return -1;
	add_row(level, path, h, true, BENCH_ROUNDS, repeat, st);
	return 0;
}

static __u64 rng_next(__u64 *s)
{
	__u64 z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#define HOT_SPAN 64

/*
 * One call per packet on a random flow among the first `span` flows of the
 * fill, each frame rebuilt before its call: span 1 is one flow (always in
 * the cache), HOT_SPAN a few flows that stay in the cache (the same frame
 * rebuilding, so a control for it), the whole fill an entry that is rarely
 * in the cache.
 */
static int bench_loop(int level, const struct bench_hook *h, __u32 span, const char *path)
{
	__u32 i, n = N_LOOP / b.div;
	struct bench_reasons before;
	__u64 rng = 0x5ca1e;

	if (reasons_read(&before))
		return -1;
	for (i = 0; i < n; i++) {
		data_frame((__u32)(rng_next(&rng) % span), &b.x);
		if (bench_run(h, &b.x, 1))
			return -1;
		b.dur[i] = b.x.duration;
	}
	if (!bench_out_untouched(&b.x) || forwarded_exactly(&before, n, path, h->name))
		return -1;
	add_row(level, path, h, false, n, 1, bench_stats_of(b.dur, n));
	return 0;
}

static int bench_loops(int level, const struct bench_hook *h, __u32 flows)
{
	if (bench_loop(level, h, 1, "established (identity NAT), one flow"))
		return -1;
	if (flows < 2 * HOT_SPAN)
		return 0;
	return bench_loop(level, h, HOT_SPAN, "established (identity NAT), random of 64 flows") ||
	       bench_loop(level, h, flows, "established (identity NAT), random flow of the fill");
}

static int bench_level(int li)
{
	const struct level *lv = &levels[li];
	struct level_result *r = &b.res[li];
	struct svcindex_fds fds;
	int err;

	printf("scale: %s (" CANARY_MAP_NAME("conntrack") " max_entries %u) ...\n", lv->name,
	       lv->max_entries);
	fflush(stdout);
	err = level_load(lv);
	if (err)
		return bench_fail("cannot load the programs for %s: %s", lv->name, strerror(-err));
	r->max_entries = bpf_map__max_entries(b.skel->maps.CANARY_MAP(conntrack));
	maps_memory(r, false);
	fds.services = bpf_map__fd(b.skel->maps.CANARY_MAP(services));
	fds.filter = bpf_map__fd(b.skel->maps.CANARY_MAP(vip_filter));
	fds.backends = bpf_map__fd(b.skel->maps.CANARY_MAP(be_filter));
	fds.gens = bpf_map__fd(b.skel->maps.CANARY_MAP(svc_gens));
	if (bench_svc_install(&fds, &bench_svc_identity) || fill(lv->flows, &r->fill_s) ||
	    batch_count(r->max_entries, &r->entries_counted, &r->batch_count_s))
		return -1;
	if (r->entries_counted != 2ULL * lv->flows)
		return bench_fail(
			"%s: %llu conntrack entries after the fill, expected %llu (evicted?)",
			lv->name, (unsigned long long)r->entries_counted, 2ULL * lv->flows);
	if (agent_walk(r))
		return -1;
	maps_memory(r, true);
	if (bench_repeat(li, &b.hooks.tc_in, 0) || bench_repeat(li, &b.hooks.xdp_in, 0))
		return -1;
	if (bench_loops(li, &b.hooks.tc_in, lv->flows) ||
	    bench_loops(li, &b.hooks.xdp_in, lv->flows))
		return -1;
	r->done = true;
	level_unload();
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Output. */

static void print_tables(void)
{
	int li, i;

	printf("\nscale: conntrack fill, memory and the agent's walk%s\n\n",
	       b.div > 1 ? " (--quick)" : "");
	printf("| fill | conntrack max_entries | entries | fill time s | agent walk "
	       "(dp_flow_count_walked) s | walk counted | kernel count (dp_flow_count) s | "
	       "kernel counted | walk / kernel count | batch count s | conntrack memlock MiB | "
	       "all maps memlock MiB |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (li = 0; li < MAX_LEVELS; li++) {
		const struct level_result *r = &b.res[li];
		unsigned long long ct = 0, all = 0;

		if (!r->done)
			continue;
		for (i = 0; i < r->n_maps; i++) {
			all += r->maps[i].memlock_after;
			if (!strcmp(r->maps[i].name, CANARY_MAP_NAME("conntrack")))
				ct = r->maps[i].memlock_after;
		}
		printf("| %s | %u | %llu | %.3f | %.3f | %u | ", levels[li].name, r->max_entries,
		       (unsigned long long)r->entries_counted, r->fill_s, r->walk_s, r->walk_count);
		if (r->kcount_done)
			printf("%.6f | %u | %.0fx | ", r->kcount_s, r->kcount,
			       r->kcount_s > 0 ? r->walk_s / r->kcount_s : 0);
		else
			printf("n/a | n/a | n/a | ");
		printf("%.3f | %.1f | %.1f |\n", r->batch_count_s, ct / 1048576.0, all / 1048576.0);
	}
	printf("\n| fill | map | type | max_entries | key B | value B | memlock before fill | "
	       "memlock after fill |\n|---|---|---|---:|---:|---:|---:|---:|\n");
	for (li = 0; li < MAX_LEVELS; li++) {
		const struct level_result *r = &b.res[li];

		if (!r->done || li == 0)
			continue;
		for (i = 0; i < r->n_maps; i++) {
			const struct map_mem *m = &r->maps[i];

			printf("| %s | %s | %s | %u | %u | %u | %llu | %llu |\n", levels[li].name,
			       m->name, m->type, m->max_entries, m->key_size, m->value_size,
			       m->memlock_before, m->memlock_after);
		}
	}
	printf("\n| fill | path | hook | method | median ns | mean ns | p99 ns | empty ns (same "
	       "method) | above empty |\n|---|---|---|---|---:|---:|---:|---:|---:|\n");
	for (i = 0; i < b.n_rows; i++) {
		const struct row *r = &b.rows[i];
		const struct row *e = empty_ref(r);
		char method[64];

		if (r->repeat)
			snprintf(method, sizeof(method), "repeat=%u, %u calls", r->runs_per_call,
				 r->calls);
		else
			snprintf(method, sizeof(method), "loop, %u calls", r->calls);
		printf("| %s | %s | %s | %s | %.1f | %.1f | %.1f | ",
		       r->level < 0 ? "-" : levels[r->level].name, r->path, r->hook, method,
		       r->st.median, r->st.mean, r->st.p99);
		if (r->empty || !e)
			printf("- | - |\n");
		else
			printf("%.1f | %+.1f |\n", e->st.median, r->st.median - e->st.median);
	}
}

static json_t *level_json(int li)
{
	const struct level_result *r = &b.res[li];
	json_t *maps = json_array(), *rows = json_array();
	unsigned long long all = 0;
	int i;

	for (i = 0; i < r->n_maps; i++) {
		const struct map_mem *m = &r->maps[i];

		all += m->memlock_after;
		json_array_append_new(
			maps,
			json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "name", m->name, "type",
				  m->type, "max_entries", (json_int_t)m->max_entries, "key_size",
				  (json_int_t)m->key_size, "value_size", (json_int_t)m->value_size,
				  "memlock_before_fill", (json_int_t)m->memlock_before,
				  "memlock_after_fill", (json_int_t)m->memlock_after));
	}
	for (i = 0; i < b.n_rows; i++) {
		const struct row *w = &b.rows[i];
		const struct row *e = empty_ref(w);

		if (w->level != li)
			continue;
		json_array_append_new(
			rows,
			json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:f, s:f, s:o, s:o}", "path",
				  w->path, "hook", w->hook, "method", w->repeat ? "repeat" : "loop",
				  "calls", (json_int_t)w->calls, "runs_per_call",
				  (json_int_t)w->runs_per_call, "median_ns", w->st.median,
				  "mean_ns", w->st.mean, "p99_ns", w->st.p99, "empty_ns",
				  e ? json_real(e->st.median) : json_null(), "above_empty_ns",
				  e ? json_real(w->st.median - e->st.median) : json_null()));
	}
	return json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:o, s:o, s:f, s:I, s:o, s:o}",
			 "name", levels[li].name, "flows", (json_int_t)levels[li].flows,
			 "conntrack_max_entries", (json_int_t)r->max_entries, "entries",
			 (json_int_t)r->entries_counted, "fill_s", r->fill_s, "agent_walk_s",
			 r->walk_s, "agent_walk_counted", (json_int_t)r->walk_count,
			 "agent_walk_bound", (json_int_t)(2 * CANARY_CT_MAX_ENTRIES),
			 "kernel_count_s", r->kcount_done ? json_real(r->kcount_s) : json_null(),
			 "kernel_counted", r->kcount_done ? json_integer(r->kcount) : json_null(),
			 "batch_count_s", r->batch_count_s, "memlock_total_bytes", (json_int_t)all,
			 "maps", maps, "rows", rows);
}

static int write_json(const char *file)
{
	json_t *lv = json_array(), *empties = json_array(), *root;
	struct utsname uts;
	int li, i;

	if (uname(&uts))
		memset(&uts, 0, sizeof(uts));
	for (li = 0; li < MAX_LEVELS; li++)
		if (b.res[li].done)
			json_array_append_new(lv, level_json(li));
	for (i = 0; i < b.n_rows; i++)
		if (b.rows[i].empty)
			json_array_append_new(
				empties,
				json_pack("{s:s, s:s, s:f, s:f}", "hook", b.rows[i].hook, "method",
					  b.rows[i].repeat ? "repeat" : "loop", "median_ns",
					  b.rows[i].st.median, "mean_ns", b.rows[i].st.mean));
	root = json_pack("{s:s, s:b, s:{s:s, s:I, s:i}, s:I, s:o, s:o}", "tool", "scale", "quick",
			 b.div > 1, "machine", "kernel", uts.release, "nproc",
			 (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "pinned_cpu", BENCH_CPU,
			 "product_conntrack_max_entries", (json_int_t)CANARY_CT_MAX_ENTRIES,
			 "empty", empties, "levels", lv);
	return bench_json_write(root, file);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	const char *json_file;
	int err, li;

	err = bench_args(argc, argv, QUICK_HELP, &b.div, &json_file);
	if (err >= 0)
		return err;
	err = bench_start(install_cleanup, global_init, teardown, "the empty programs");
	if (err >= 0)
		return err;
	if (bench_empty(&b.hooks.empty_tc, "empty_tc") ||
	    bench_empty(&b.hooks.empty_xdp, "empty_xdp"))
		return 1;
	for (li = 0; li < MAX_LEVELS; li++) {
		if (b.div > 1 && !levels[li].in_quick)
			continue;
		if (bench_level(li))
			return 1;
	}
	teardown();
	print_tables();
	return json_file && write_json(json_file) ? 1 : 0;
}
