// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * pktcost: what each canaryd program path costs per packet, measured with
 * BPF_PROG_TEST_RUN next to an empty program of the same type measured the
 * same way. The difference is what canaryd adds; the empty program's number
 * is the harness itself.
 *
 * Two methods:
 *   repeat  one call runs the program `repeat` times on one packet and the
 *           kernel reports the average. Valid only for a path that neither
 *           rewrites the packet (or rewrites it into itself) nor changes
 *           state the next run depends on. Done in a few calls; median and
 *           mean are over those calls.
 *   loop    one call per packet (repeat=1), so every packet can differ and
 *           state can move on; median and mean over the calls. Each call
 *           also pays for reading the clock twice, as the empty program does,
 *           and is only as fine as the kernel clock (10 ns steps on some
 *           AMD hosts): compare means when the medians are that close.
 *
 * A rewriting path gets a repeat row by making the translation an identity:
 * the bench-identity service's one backend is its own VIP and port, so the
 * established path does all its work (conntrack hit, counters, checksum
 * fix-ups, stores) and the frame comes out as it went in, ready for the
 * next run. On both hooks the unchanged port skips the port's checksum
 * fix-up and store (nat_rewrite()).
 *
 * Every path is first checked to take the intended branch (reasons_v<N>,
 * metrics_v<N>, rewritten bytes) and checked again after the run: a benchmark
 * of the wrong path is worse than none, so pktcost aborts instead.
 *
 * Old and new in one run: --base FILE loads FILE (canary.bpf.o built from
 * another revision with the same maps and programs; `make bench` builds
 * PKTCOST_BASE's) next to the built-in programs. Every path runs --rounds
 * times (default 3 with a base, else 1) for each, base and new alternating
 * which goes first; each figure is the median of its rounds' figures, and a
 * second table puts the base's cost above empty next to the new one.
 *
 * Usage: pktcost [--quick] [--json FILE] [--base FILE] [--rounds N]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "canary_consts.h"
#include "canary_structs.h"
#include "canary.skel.h"
#include "empty.skel.h"
#include "primitives.skel.h"
#include "fixture.h"
#include "pkt.h"

#define BENCH_TOOL "pktcost"
#include "bench_common.h"

#define PIN_TEMPLATE "/sys/fs/bpf/canary-bench-XXXXXX"

/* Full-run loop sizes; --quick divides each, and BENCH_REPEAT, by BENCH_QUICK_DIV. */
#define N_SYN	   200000
#define N_EST	   1000000
#define N_REPLY	   500000
#define N_EMPTY	   1000000
#define N_MAX_LOOP N_EST /* the longest loop: sizes the durations array */
_Static_assert(N_MAX_LOOP >= N_SYN && N_MAX_LOOP >= N_REPLY && N_MAX_LOOP >= N_EMPTY,
	       "N_MAX_LOOP must hold every loop");
/* What --quick does, for the usage text. */
#define QUICK_HELP "divide every packet count by " BENCH_STR(BENCH_QUICK_DIV) " (CI smoke run)"

/*
 * Two entries per flow: clearing every 50k flows keeps conntrack at 100k of
 * its 262k entries, so no SYN pays for evicting a live flow. SYNs still pay,
 * once per 64, for refilling the LRU's per-CPU free list, as they would in
 * a running agent; that is what separates their mean from their median.
 */
#define CT_CLEAR_EVERY 50000
#define CT_BATCH       4096

#define MAX_ROWS       20

/* ------------------------------------------------------------------------ */
/*
 * Services: one VIP, a plain TCP port and an HTTP port with the same
 * backends, and a plain TCP port translated to itself (bench_svc_identity).
 */

#define NOT_A_VIP  PKT_IP4(10, 96, 9, 9)
#define CLIENT	   PKT_IP4(192, 168, 1, 100)
#define SVC_WEIGHT 1000 /* 10% canary */

static const struct canary_backend be_stable[] = {
	{ .addr = PKT_IP4(10, 0, 1, 11), .port = PKT_BE16(8080) },
	{ .addr = PKT_IP4(10, 0, 1, 12), .port = PKT_BE16(8080) },
};
static const struct canary_backend be_canary[] = {
	{ .addr = PKT_IP4(10, 0, 2, 21), .port = PKT_BE16(9090) },
};

#define N_OF(a) ((__u8)(sizeof(a) / sizeof((a)[0])))

static const struct bench_svc svc_tcp = {
	.name = "bench-tcp",
	.key = { .vip = BENCH_VIP, .port = PKT_BE16(6379), .proto = IPPROTO_TCP },
	.id = 0,
	.weight = SVC_WEIGHT,
	.stable = be_stable,
	.n_stable = N_OF(be_stable),
	.canary = be_canary,
	.n_canary = N_OF(be_canary),
};
static const struct bench_svc svc_http = {
	.name = "bench-http",
	.key = { .vip = BENCH_VIP, .port = PKT_BE16(80), .proto = IPPROTO_TCP },
	.id = 1,
	.flags = CANARY_SVC_F_HTTP,
	.weight = SVC_WEIGHT,
	.stable = be_stable,
	.n_stable = N_OF(be_stable),
	.canary = be_canary,
	.n_canary = N_OF(be_canary),
};
/* Never installed: the destination of the nomatch frame. */
static const struct bench_svc svc_none = {
	.name = "none",
	.key = { .vip = NOT_A_VIP, .port = PKT_BE16(80), .proto = IPPROTO_TCP },
};

#define TXT(s) (s), (sizeof(s) - 1)

static const char http_200[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* ------------------------------------------------------------------------ */
/* State. */

enum method {
	M_REPEAT = 0,
	M_LOOP = 1,
};

struct row {
	const char *path;
	const char *hook;
	enum method method;
	bool xdp;   /* which empty program it compares with */
	bool empty; /* it is an empty program */
	__u32 calls;
	__u32 repeat;
	struct bench_stats st;
};

struct bench {
	struct empty *empty;
	struct bench_hooks hooks;
	__u32 *dur;	  /* per-call durations of a loop */
	unsigned int div; /* 1, or BENCH_QUICK_DIV for --quick */
	struct bench_xfer x[2];
	struct row rows[MAX_ROWS];
	int n_rows;
};

/*
 * The programs measured: the built ones (V_NEW) and, with --base, another
 * build of the same programs and maps (V_BASE, e.g. from an older revision),
 * measured in alternating rounds of the same run. fx is the one being run.
 */
enum variant {
	V_NEW = 0,
	V_BASE = 1,
	V_COUNT = 2,
};

#define MAX_ROUNDS 9

static struct canary_fixture fxs[V_COUNT]; /* skeletons, maps and pins */
static struct canary_fixture *fx = &fxs[V_NEW];
static struct bench_hooks hooks_of[V_COUNT];
/* Each round's rows, per variant. */
static struct row round_rows[V_COUNT][MAX_ROUNDS][MAX_ROWS];
static int round_n_rows[V_COUNT][MAX_ROUNDS];
static void *base_elf;
/* With --base: the base's figures above empty, row by row (same order as the new rows). */
static bool have_base;
static double base_above[MAX_ROWS];
static struct bench b;

/* ------------------------------------------------------------------------ */
/* Setup and teardown. */

static void teardown(void)
{
	fixture_unload(&fxs[V_NEW]);
	fixture_unload(&fxs[V_BASE]);
	empty__destroy(b.empty);
	free(base_elf);
	base_elf = NULL;
	b.empty = NULL;
	free(b.dur);
	b.dur = NULL;
}

static void install_cleanup(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

	/* Both variants' pins go on a signal; teardown runs twice at exit, harmlessly. */
	fixture_cleanup_on_exit(&fxs[V_NEW], teardown, sigs, sizeof(sigs) / sizeof(sigs[0]));
	fixture_cleanup_on_exit(&fxs[V_BASE], teardown, sigs, sizeof(sigs) / sizeof(sigs[0]));
}

/* Read the whole of file into *buf. Returns its size, or 0 (said why). */
static size_t read_file(const char *file, void **buf)
{
	size_t size = 0, cap = 0, n;
	char *p = NULL, *q;
	FILE *f = fopen(file, "rb");

	if (!f) {
		bench_fail("opening %s: %s", file, strerror(errno));
		return 0;
	}
	do {
		if (size == cap) {
			cap = cap ? cap * 2 : 1 << 20;
			q = realloc(p, cap);
			if (!q) {
				size = 0;
				break;
			}
			p = q;
		}
		n = fread(p + size, 1, cap - size, f);
		size += n;
	} while (n);
	if (ferror(f) || !size) {
		bench_fail("reading %s", file);
		size = 0;
	}
	fclose(f);
	if (!size)
		free(p);
	*buf = size ? p : NULL;
	return size;
}

/* Load one variant, its maps pinned in a fresh directory. Returns -errno. */
static int variant_load(enum variant v)
{
	int err = fixture_load(&fxs[v], PIN_TEMPLATE);

	if (err)
		return err;
	bench_hooks_canary(&hooks_of[v], fxs[v].skel);
	return 0;
}

/* Open and load canary (and its base with --base) and the empty programs. Returns -errno. */
static int bench_load(void)
{
	int err = variant_load(V_NEW);

	if (err)
		return err;
	if (base_elf) {
		err = variant_load(V_BASE);
		if (err)
			return err;
	}
	err = bench_empty_load(&b.hooks, &b.empty);
	if (err)
		return err;
	b.dur = calloc(N_MAX_LOOP, sizeof(*b.dur));
	return b.dur ? 0 : -ENOMEM;
}

/* Run from now on the programs and maps of variant v. */
static void variant_use(enum variant v)
{
	fx = &fxs[v];
	b.hooks.tc_in = hooks_of[v].tc_in;
	b.hooks.xdp_in = hooks_of[v].xdp_in;
	b.hooks.tc_eg = hooks_of[v].tc_eg;
}

/* ------------------------------------------------------------------------ */
/* Maps: per-CPU sums and conntrack clearing. */

/* Sum n u64 counters of a per-CPU value over all possible CPUs; say so if it cannot. */
static int pcpu_sum(int fd, __u32 key, __u64 *out, size_t n)
{
	int err = fixture_pcpu_sum(fx, fd, key, out, n);

	if (err)
		return bench_fail("reading per-CPU map: %s", strerror(-err));
	return 0;
}

static int reasons_read(struct bench_reasons *r)
{
	int i;

	for (i = 0; i < CANARY_R_COUNT; i++)
		if (pcpu_sum(fx->reasons_fd, (__u32)i, &r->n[i], 1))
			return -1;
	return 0;
}

/* Did exactly the reasons in want move since before, each by exactly its amount? */
static int reasons_moved(const struct bench_reasons *before, const __u64 want[CANARY_R_COUNT],
			 const char *path, const char *hook)
{
	struct bench_reasons now;

	if (reasons_read(&now))
		return -1;
	return bench_reasons_moved(before, &now, want, path, hook);
}

/* The HTTP counters of a service, both versions summed. */
struct turns {
	__u64 requests;
	__u64 ok; /* 2xx responses */
	__u64 latency;
};

/*
 * The packet counters of a service in one direction, both versions summed:
 * client -> backend (in) or backend -> client (out).
 */
struct traffic {
	__u64 packets;
	__u64 bytes;
};

/* Read a service's counters of both versions, into turns and/or traffic (out: replies). */
static int svc_counters(const struct bench_svc *d, struct turns *t, struct traffic *tr, bool out)
{
	struct canary_metrics m;
	int v;

	if (t)
		memset(t, 0, sizeof(*t));
	if (tr)
		memset(tr, 0, sizeof(*tr));
	for (v = 0; v < CANARY_V_COUNT; v++) {
		if (pcpu_sum(fx->metrics_fd, d->id * CANARY_V_COUNT + (__u32)v, (__u64 *)&m,
			     sizeof(m) / sizeof(__u64)))
			return -1;
		if (t) {
			t->requests += m.requests;
			t->ok += m.responses[2];
			t->latency += m.latency_count;
		}
		if (tr) {
			tr->packets += out ? m.packets_out : m.packets_in;
			tr->bytes += out ? m.bytes_out : m.bytes_in;
		}
	}
	return 0;
}

static int turns_read(const struct bench_svc *d, struct turns *t)
{
	return svc_counters(d, t, NULL, false);
}

/* Did requests, 2xx responses and latency samples each grow by n? */
static int turns_moved(const struct bench_svc *d, const struct turns *before, __u64 n,
		       const char *path, const char *hook)
{
	struct turns now;

	if (turns_read(d, &now))
		return -1;
	if (now.requests - before->requests != n || now.ok - before->ok != n ||
	    now.latency - before->latency != n)
		return bench_wrong_branch(
			path, hook, "%llu requests, %llu 2xx, %llu latency samples; expected %llu",
			(unsigned long long)(now.requests - before->requests),
			(unsigned long long)(now.ok - before->ok),
			(unsigned long long)(now.latency - before->latency), (unsigned long long)n);
	return 0;
}

/* Did the packets and bytes of direction out grow by n frames of ip_len bytes? */
static int traffic_moved(const struct bench_svc *d, const struct traffic *before, bool out, __u64 n,
			 __u64 ip_len, const char *path, const char *hook)
{
	struct traffic now;

	if (svc_counters(d, NULL, &now, out))
		return -1;
	if (now.packets - before->packets != n || now.bytes - before->bytes != n * ip_len)
		return bench_wrong_branch(
			path, hook, "%llu packets, %llu bytes %s; expected %llu, %llu",
			(unsigned long long)(now.packets - before->packets),
			(unsigned long long)(now.bytes - before->bytes), out ? "out" : "in",
			(unsigned long long)n, (unsigned long long)(n * ip_len));
	return 0;
}

/* Empty one conntrack table; name says which. */
static int table_clear(int fd, const char *name)
{
	static struct canary_ct_key keys[CT_BATCH];
	static struct canary_ct_entry vals[CT_BATCH];
	struct canary_ct_key k;
	__u32 in_tok, out_tok = 0, count;
	void *in = NULL;
	int err;

	do {
		count = CT_BATCH;
		err = bpf_map_lookup_and_delete_batch(fd, in, &out_tok, keys, vals, &count, NULL);
		in_tok = out_tok;
		in = &in_tok;
	} while (!err);
	if (err != -ENOENT)
		return bench_fail("clearing %s: %s", name, strerror(-err));
	if (!bpf_map_get_next_key(fd, NULL, &k))
		return bench_fail("clearing %s: entries left", name);
	return 0;
}

/*
 * Empty conntrack and the half-open table: every path starts from the same
 * state, and a SYN replayed from an earlier run opens a new flow again.
 */
static int ct_clear(void)
{
	return table_clear(fx->ct_fd, "conntrack") || table_clear(fx->ct_syn_fd, "ct_syn") ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Running frames. */

/* Destination (ingress) or source (egress) address and port of the output frame. */
static void out_endpoint(const struct bench_xfer *x, bool dst, __be32 *addr, __be16 *port)
{
	size_t l4 = pkt_l4_off(x->out, x->out_len);

	*addr = pkt_be32_at(x->out + PKT_IP_OFF + (dst ? PKT_IP_DADDR : PKT_IP_SADDR));
	*port = l4 ? pkt_be16_at(x->out + l4 + (dst ? PKT_L4_DPORT : PKT_L4_SPORT)) : 0;
}

static bool is_backend(__be32 addr, __be16 port)
{
	size_t i;

	for (i = 0; i < sizeof(be_stable) / sizeof(be_stable[0]); i++)
		if (be_stable[i].addr == addr && be_stable[i].port == port)
			return true;
	for (i = 0; i < sizeof(be_canary) / sizeof(be_canary[0]); i++)
		if (be_canary[i].addr == addr && be_canary[i].port == port)
			return true;
	return false;
}

/* The frame came out translated with valid checksums, not just passed. */
static bool out_translated(const struct bench_xfer *x)
{
	return x->out_len == x->in_len && pkt_ipv4_csum_ok(x->out, x->out_len) &&
	       pkt_l4_csum_ok(x->out, x->out_len) && memcmp(x->out, x->in, x->in_len) != 0;
}

/* ------------------------------------------------------------------------ */
/* Flows: a client of a service, and its packets both ways. */

struct flow {
	const struct bench_svc *svc;
	__be32 client;
	__be16 cport;
	__be32 be_addr; /* where the flow was sent */
	__be16 be_port;
	__u32 cseq; /* next client sequence number */
	__u32 sseq; /* next backend sequence number */
};

static void flow_init(struct flow *f, const struct bench_svc *d, __be32 client, __u16 cport)
{
	memset(f, 0, sizeof(*f));
	f->svc = d;
	f->client = client;
	f->cport = htons(cport);
	f->cseq = 0x10000000U + cport;
	f->sseq = 0x70000000U + cport;
}

/* Client -> VIP, or backend -> client when reply is set. */
static void flow_build(const struct flow *f, bool reply, __u8 flags, const char *data, size_t len,
		       struct bench_xfer *x)
{
	struct pkt_spec s;

	memset(&s, 0, sizeof(s));
	s.saddr = reply ? f->be_addr : f->client;
	s.sport = reply ? f->be_port : f->cport;
	s.daddr = reply ? f->client : f->svc->key.vip;
	s.dport = reply ? f->cport : f->svc->key.port;
	s.proto = IPPROTO_TCP;
	s.frag = PKT_IP_DF;
	s.seq = reply ? f->sseq : f->cseq;
	s.ack = reply ? f->cseq : f->sseq;
	s.tcp_flags = flags;
	s.payload = data;
	s.payload_len = len;
	x->in_len = (__u32)pkt_build(x->in, sizeof(x->in), &s);
}

/* SYN in, SYN-ACK out: the flow is established and its backend known. */
static int flow_open(struct flow *f, const struct bench_hook *h, const char *path)
{
	struct bench_xfer *x = &b.x[0];
	__be32 addr;
	__be16 port;

	flow_build(f, false, PKT_TCP_SYN, NULL, 0, x);
	if (bench_run(h, x, 1))
		return -1;
	out_endpoint(x, true, &f->be_addr, &f->be_port);
	if (!is_backend(f->be_addr, f->be_port) || !out_translated(x))
		return bench_wrong_branch(path, h->name, "the SYN was not sent to a backend");
	f->cseq++;
	flow_build(f, true, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0, x);
	if (bench_run(&b.hooks.tc_eg, x, 1))
		return -1;
	out_endpoint(x, false, &addr, &port);
	if (addr != f->svc->key.vip || port != f->svc->key.port)
		return bench_wrong_branch(path, h->name, "the SYN-ACK did not get the VIP back");
	f->sseq++;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Statistics and rows. */

/* Record one measured row; -1 when the table is full (MAX_ROWS too small). */
static int add_row(const char *path, const struct bench_hook *h, enum method m, __u32 calls,
		   __u32 repeat, struct bench_stats st)
{
	struct row *r;

	if (b.n_rows >= MAX_ROWS) {
		fprintf(stderr, "pktcost: more than %d rows; raise MAX_ROWS\n", MAX_ROWS);
		return -1;
	}
	r = &b.rows[b.n_rows++];
	r->path = path;
	r->hook = h->name;
	r->method = m;
	r->xdp = h->xdp;
	r->empty = !strncmp(path, "empty", 5);
	r->calls = calls;
	r->repeat = repeat;
	r->st = st;
	return 0;
}

/* The empty program of the row's type, measured the same way. */
static const struct row *empty_ref(const struct row *r)
{
	int i;

	for (i = 0; i < b.n_rows; i++)
		if (b.rows[i].empty && b.rows[i].xdp == r->xdp && b.rows[i].method == r->method)
			return &b.rows[i];
	return NULL;
}

static void method_label(const struct row *r, char *buf, size_t len)
{
	if (r->method == M_REPEAT)
		snprintf(buf, len, "repeat=%u, %u calls", r->repeat, r->calls);
	else
		snprintf(buf, len, "loop repeat=1, %u calls", r->calls);
}

/* ------------------------------------------------------------------------ */
/* Measuring. */

static __u32 scaled(__u32 n)
{
	return n / b.div;
}

static void nomatch_frame(struct bench_xfer *x)
{
	struct flow f;

	flow_init(&f, &svc_none, CLIENT, 33000);
	flow_build(&f, false, PKT_TCP_ACK, NULL, 0, x);
}

/*
 * A TCP packet of no service, from and to addresses no service has: on
 * ingress its destination is no VIP (counted no_service), on egress its
 * source no backend (counted nowhere). Either way it passes unchanged.
 */
static int bench_nomatch(const struct bench_hook *h)
{
	static const char path[] = "nomatch";
	bool egress = h == &b.hooks.tc_eg;
	__u64 want[CANARY_R_COUNT] = { [CANARY_R_NO_SERVICE] = egress ? 0 : 1 };
	struct bench_xfer *x = &b.x[0];
	__u32 repeat = scaled(BENCH_REPEAT);
	struct bench_reasons before;
	struct bench_stats st;

	nomatch_frame(x);
	if (reasons_read(&before) || bench_run(h, x, 1))
		return -1;
	if (!bench_out_untouched(x))
		return bench_wrong_branch(path, h->name, "the frame was changed");
	if (reasons_moved(&before, want, path, h->name) || reasons_read(&before))
		return -1;
	if (bench_measure_repeat(h, x, repeat, &st))
		return -1;
	want[CANARY_R_NO_SERVICE] = egress ? 0 : (__u64)BENCH_ROUNDS * repeat;
	if (reasons_moved(&before, want, path, h->name))
		return -1;
	return add_row(path, h, M_REPEAT, BENCH_ROUNDS, repeat, st);
}

/* Flow i of the SYN run: a distinct client address and port for each. */
static void syn_frame(__u32 i, struct bench_xfer *x)
{
	struct flow f;

	flow_init(&f, &svc_tcp, htonl(0x64400000U | (i >> 8)), (__u16)(32768 + (i & 0xff)));
	flow_build(&f, false, PKT_TCP_SYN, NULL, 0, x);
}

/* The probe SYN: a translated frame and one new flow, nothing else. */
static int syn_probe(const struct bench_hook *h, const char *path)
{
	__u64 want[CANARY_R_COUNT] = { [CANARY_R_NEW_FLOW] = 1 };
	struct bench_xfer *x = &b.x[0];
	struct bench_reasons before;
	__be32 addr;
	__be16 port;

	syn_frame(0, x);
	if (ct_clear() || reasons_read(&before) || bench_run(h, x, 1))
		return -1;
	out_endpoint(x, true, &addr, &port);
	if (!is_backend(addr, port) || !out_translated(x))
		return bench_wrong_branch(path, h->name, "the SYN was not sent to a backend");
	if (reasons_moved(&before, want, path, h->name))
		return -1;
	return ct_clear();
}

/*
 * A freshly loaded LRU hands out its preallocated entries in address order;
 * once entries have been deleted (or evicted) it hands them out in whatever
 * order they came back, and refilling the per-CPU free list costs several
 * times more. Churn the table once so every measured SYN, on either hook,
 * sees the long-running state rather than the just-loaded one.
 */
static int syn_churn(const struct bench_hook *h, __u32 n)
{
	struct bench_xfer *x = &b.x[0];
	__u32 i;

	for (i = 0; i < n; i++) {
		syn_frame(i, x);
		if (bench_run(h, x, 1))
			return -1;
	}
	return ct_clear();
}

/* SYNs of new flows: service lookup, version and backend choice, two inserts, rewrite. */
static int bench_syn(const struct bench_hook *h)
{
	static const char path[] = "syn";
	__u64 want[CANARY_R_COUNT] = { 0 };
	struct bench_xfer *x = &b.x[0];
	__u32 i, n = scaled(N_SYN);
	struct bench_reasons before;

	if (syn_probe(h, path) || syn_churn(h, n < CT_CLEAR_EVERY ? n : CT_CLEAR_EVERY))
		return -1;
	if (reasons_read(&before))
		return -1;
	for (i = 0; i < n; i++) {
		if (i && i % CT_CLEAR_EVERY == 0 && ct_clear())
			return -1;
		syn_frame(i, x);
		if (bench_run(h, x, 1))
			return -1;
		b.dur[i] = x->duration;
	}
	want[CANARY_R_NEW_FLOW] = n;
	if (reasons_moved(&before, want, path, h->name) || ct_clear())
		return -1;
	return add_row(path, h, M_LOOP, n, 1, bench_stats_of(b.dur, n));
}

/* The same data segment of a plain TCP flow, again and again: the forward fast path. */
static int bench_established(const struct bench_hook *h)
{
	static const char path[] = "established";
	__u64 want[CANARY_R_COUNT] = { [CANARY_R_FORWARD] = 1 };
	struct bench_xfer *x = &b.x[0];
	__u32 i, n = scaled(N_EST);
	struct bench_reasons before;
	struct turns t0;
	struct flow f;
	__be32 addr;
	__be16 port;

	flow_init(&f, &svc_tcp, CLIENT, 40000);
	if (ct_clear() || flow_open(&f, h, path))
		return -1;
	flow_build(&f, false, PKT_TCP_ACK | PKT_TCP_PSH, TXT(bench_http_get), x);
	if (reasons_read(&before) || turns_read(f.svc, &t0) || bench_run(h, x, 1))
		return -1;
	out_endpoint(x, true, &addr, &port);
	if (addr != f.be_addr || port != f.be_port || !out_translated(x))
		return bench_wrong_branch(path, h->name,
					  "the segment was not sent to the flow's backend");
	if (reasons_moved(&before, want, path, h->name) || reasons_read(&before))
		return -1;
	for (i = 0; i < n; i++) {
		if (bench_run(h, x, 1))
			return -1;
		b.dur[i] = x->duration;
	}
	want[CANARY_R_FORWARD] = n;
	if (reasons_moved(&before, want, path, h->name) ||
	    turns_moved(f.svc, &t0, 0, path, h->name))
		return -1;
	return add_row(path, h, M_LOOP, n, 1, bench_stats_of(b.dur, n));
}

/*
 * SYN in and SYN-ACK out on a flow of bench-identity: the flow's half-open
 * entry is established, pinned to the VIP itself, and neither frame changed
 * on the way. The first data segment (the caller's probe) moves it to
 * conntrack.
 */
static int identity_open(struct flow *f, const struct bench_hook *h, const char *path)
{
	__u64 want[CANARY_R_COUNT] = { [CANARY_R_NEW_FLOW] = 1 };
	struct bench_xfer *x = &b.x[0];
	struct canary_ct_key k;
	struct canary_ct_entry e;
	struct bench_reasons before;

	flow_build(f, false, PKT_TCP_SYN, NULL, 0, x);
	if (reasons_read(&before) || bench_run(h, x, 1))
		return -1;
	if (!bench_out_untouched(x))
		return bench_wrong_branch(path, h->name, "the SYN was changed");
	if (reasons_moved(&before, want, path, h->name))
		return -1;
	memset(&k, 0, sizeof(k));
	k.saddr = f->client;
	k.daddr = f->svc->key.vip;
	k.sport = f->cport;
	k.dport = f->svc->key.port;
	k.proto = IPPROTO_TCP;
	if (bpf_map_lookup_elem(fx->ct_syn_fd, &k, &e))
		return bench_wrong_branch(path, h->name, "the SYN left no half-open entry");
	if (e.nat_addr != BENCH_VIP || e.nat_port != BENCH_ID_PORT ||
	    (e.flags & CANARY_CT_F_REVERSE) || e.svc_id != f->svc->id)
		return bench_wrong_branch(path, h->name,
					  "the flow is not pinned to the VIP itself");
	f->be_addr = e.nat_addr;
	f->be_port = e.nat_port;
	f->cseq++;

	memset(want, 0, sizeof(want));
	want[CANARY_R_REPLY] = 1;
	flow_build(f, true, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0, x);
	if (reasons_read(&before) || bench_run(&b.hooks.tc_eg, x, 1))
		return -1;
	if (!bench_out_untouched(x))
		return bench_wrong_branch(path, h->name, "the SYN-ACK was changed");
	if (reasons_moved(&before, want, path, h->name))
		return -1;
	if (bpf_map_lookup_elem(fx->ct_syn_fd, &k, &e) || !(e.flags & CANARY_CT_F_ESTABLISHED))
		return bench_wrong_branch(path, h->name, "the SYN-ACK did not establish the flow");
	f->sseq++;
	return 0;
}

/*
 * The established path with repeat, on a bench-identity flow, the same frame
 * every run: the client's data segment through h, or (reply) the backend's
 * answer to it through tc egress. The service is plain TCP, so a reply
 * reads no forward entry but once a second (egress_needs_forward()).
 * Checked once before timing (forwarded or restored, counted, unchanged)
 * and again after all the runs.
 *
 * No repeat row for established_http: from the second run on, the same
 * request segment is a retransmission (seq_advance says old data), so the
 * runs would time the HTTP service's retransmit path, which skips exactly
 * what distinguishes a request (the clock read, the request flag, the
 * counter). That is not the path established_http stands for, and it
 * differs from the plain established path only by a few flag tests and a
 * sequence comparison; the loop row is the honest number for requests.
 */
static int bench_identity(const struct bench_hook *h, bool reply)
{
	const char *path = reply ? "reply (identity NAT)" : "established (identity NAT)";
	const struct bench_hook *timed = reply ? &b.hooks.tc_eg : h;
	const int counted = reply ? CANARY_R_REPLY : CANARY_R_FORWARD;
	__u64 want[CANARY_R_COUNT] = { 0 };
	struct bench_xfer *x = &b.x[0];
	__u32 repeat = scaled(BENCH_REPEAT);
	struct bench_reasons before;
	struct traffic t0;
	struct bench_stats st;
	struct flow f;
	__u64 ip_len, runs;

	flow_init(&f, &bench_svc_identity, CLIENT, 42000);
	if (ct_clear() || identity_open(&f, h, path))
		return -1;
	flow_build(&f, false, PKT_TCP_ACK | PKT_TCP_PSH, TXT(bench_http_get), x);
	if (reply) {
		/* The request moves the flow to conntrack; its answer is timed. */
		if (bench_run(h, x, 1))
			return -1;
		f.cseq += sizeof(bench_http_get) - 1;
		flow_build(&f, true, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200), x);
	}
	ip_len = x->in_len - PKT_IP_OFF;
	want[counted] = 1;
	if (reasons_read(&before) || svc_counters(f.svc, NULL, &t0, reply) ||
	    bench_run(timed, x, 1))
		return -1;
	if (!bench_out_untouched(x))
		return bench_wrong_branch(path, timed->name, "the segment was changed");
	if (reasons_moved(&before, want, path, timed->name) ||
	    traffic_moved(f.svc, &t0, reply, 1, ip_len, path, timed->name))
		return -1;
	if (reasons_read(&before) || svc_counters(f.svc, NULL, &t0, reply))
		return -1;
	if (bench_measure_repeat(timed, x, repeat, &st))
		return -1;
	if (!bench_out_untouched(x))
		return bench_wrong_branch(path, timed->name,
					  "the segment was changed by the repeated runs");
	runs = (__u64)BENCH_ROUNDS * repeat;
	want[counted] = runs;
	if (reasons_moved(&before, want, path, timed->name) ||
	    traffic_moved(f.svc, &t0, reply, runs, ip_len, path, timed->name) || ct_clear())
		return -1;
	return add_row(path, timed, M_REPEAT, BENCH_ROUNDS, repeat, st);
}

/*
 * One HTTP turn: a new request in through h (new data, no request in flight)
 * and the backend's 200 out through tc egress (new data, request in flight).
 * Both sequence numbers advance, so neither side is ever a retransmit.
 */
static int http_turn(const struct bench_hook *h, struct flow *f)
{
	struct bench_xfer *req = &b.x[0], *rsp = &b.x[1];

	flow_build(f, false, PKT_TCP_ACK | PKT_TCP_PSH, TXT(bench_http_get), req);
	if (bench_run(h, req, 1))
		return -1;
	f->cseq += sizeof(bench_http_get) - 1;
	flow_build(f, true, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200), rsp);
	if (bench_run(&b.hooks.tc_eg, rsp, 1))
		return -1;
	f->sseq += sizeof(http_200) - 1;
	return 0;
}

/* The probe turn: request to the backend, reply from the VIP, counted as a 2xx turn. */
static int http_probe(const struct bench_hook *h, struct flow *f, const char *path,
		      const char *hook)
{
	__u64 want[CANARY_R_COUNT] = { [CANARY_R_FORWARD] = 1, [CANARY_R_REPLY] = 1 };
	struct bench_reasons before;
	struct turns t0;
	__be32 addr;
	__be16 port;

	if (reasons_read(&before) || turns_read(f->svc, &t0) || http_turn(h, f))
		return -1;
	out_endpoint(&b.x[0], true, &addr, &port);
	if (addr != f->be_addr || port != f->be_port || !out_translated(&b.x[0]))
		return bench_wrong_branch(path, hook,
					  "the request was not sent to the flow's backend");
	out_endpoint(&b.x[1], false, &addr, &port);
	if (addr != f->svc->key.vip || port != f->svc->key.port || !out_translated(&b.x[1]))
		return bench_wrong_branch(path, hook, "the response did not get the VIP back");
	if (reasons_moved(&before, want, path, hook))
		return -1;
	return turns_moved(f->svc, &t0, 1, path, hook);
}

/*
 * HTTP turns on an established flow of the HTTP service, timing either the
 * request (established_http, through h) or the response (reply_status,
 * through tc egress with a request in flight: the status-sniffing path).
 */
static int bench_turns(const struct bench_hook *h, bool time_reply, const char *path, __u32 n)
{
	__u64 want[CANARY_R_COUNT] = { 0 };
	const struct bench_hook *timed = time_reply ? &b.hooks.tc_eg : h;
	const struct bench_xfer *tx = &b.x[time_reply ? 1 : 0];
	struct bench_reasons before;
	struct turns t0;
	struct flow f;
	__u32 i;

	flow_init(&f, &svc_http, CLIENT, 41000);
	if (ct_clear() || flow_open(&f, h, path) || http_probe(h, &f, path, timed->name))
		return -1;
	if (reasons_read(&before) || turns_read(f.svc, &t0))
		return -1;
	for (i = 0; i < n; i++) {
		if (http_turn(h, &f))
			return -1;
		b.dur[i] = tx->duration;
	}
	want[CANARY_R_FORWARD] = n;
	want[CANARY_R_REPLY] = n;
	if (reasons_moved(&before, want, path, timed->name) ||
	    turns_moved(f.svc, &t0, n, path, timed->name))
		return -1;
	return add_row(path, timed, M_LOOP, n, 1, bench_stats_of(b.dur, n));
}

/* The empty program both ways, on the nomatch frame; it must change nothing. */
static int bench_empty(const struct bench_hook *h, const char *path)
{
	static const __u64 none[CANARY_R_COUNT];
	struct bench_xfer *x = &b.x[0];
	__u32 i, n = scaled(N_EMPTY), repeat = scaled(BENCH_REPEAT);
	struct bench_reasons before;
	struct bench_stats st;

	nomatch_frame(x);
	if (reasons_read(&before) || bench_run(h, x, 1))
		return -1;
	if (!bench_out_untouched(x))
		return bench_wrong_branch(path, h->name, "the empty program changed the frame");
	if (reasons_moved(&before, none, path, h->name))
		return -1;
	if (bench_measure_repeat(h, x, repeat, &st))
		return -1;
	if (add_row(path, h, M_REPEAT, BENCH_ROUNDS, repeat, st))
		return -1;
	for (i = 0; i < n; i++) {
		if (bench_run(h, x, 1))
			return -1;
		b.dur[i] = x->duration;
	}
	return add_row(path, h, M_LOOP, n, 1, bench_stats_of(b.dur, n));
}

static int bench_all(void)
{
	struct svcindex_fds fds = {
		.services = fx->svc_fd,
		.filter = fx->vip_filter_fd,
		.backends = fx->backend_filter_fd,
		.gens = fx->svc_gens_fd,
	};

	if (bench_svc_install(&fds, &svc_tcp) || bench_svc_install(&fds, &svc_http) ||
	    bench_svc_install(&fds, &bench_svc_identity))
		return -1;
	if (bench_empty(&b.hooks.empty_tc, "empty_tc") ||
	    bench_empty(&b.hooks.empty_xdp, "empty_xdp"))
		return -1;
	if (bench_nomatch(&b.hooks.tc_in) || bench_nomatch(&b.hooks.xdp_in) ||
	    bench_nomatch(&b.hooks.tc_eg))
		return -1;
	if (bench_syn(&b.hooks.tc_in) || bench_syn(&b.hooks.xdp_in))
		return -1;
	if (bench_established(&b.hooks.tc_in) || bench_established(&b.hooks.xdp_in))
		return -1;
	if (bench_identity(&b.hooks.tc_in, false) || bench_identity(&b.hooks.xdp_in, false) ||
	    bench_identity(&b.hooks.tc_in, true))
		return -1;
	if (bench_turns(&b.hooks.tc_in, false, "established_http", scaled(N_EST)) ||
	    bench_turns(&b.hooks.xdp_in, false, "established_http", scaled(N_EST)))
		return -1;
	return bench_turns(&b.hooks.tc_in, true, "reply_status", scaled(N_REPLY));
}

/* ------------------------------------------------------------------------ */
/* Output. */

struct machine {
	struct utsname uts;
	char cpu[256];
	long nproc;
};

static void machine_read(struct machine *m)
{
	char line[512];
	FILE *f;

	if (uname(&m->uts))
		memset(&m->uts, 0, sizeof(m->uts));
	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(m->cpu, sizeof(m->cpu), "unknown");
	f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');
		if (strncmp(line, "model name", 10) != 0 || !p)
			continue;
		p += strspn(p + 1, " \t") + 1;
		p[strcspn(p, "\n")] = '\0';
		snprintf(m->cpu, sizeof(m->cpu), "%s", p);
		break;
	}
	fclose(f);
}

static void print_table(const struct machine *m)
{
	char label[64];
	int i;

	printf("pktcost: kernel %s, %s, %ld CPUs, pinned to CPU %d%s\n\n", m->uts.release, m->cpu,
	       m->nproc, BENCH_CPU, b.div > 1 ? " (--quick)" : "");
	printf("| path | hook | method | median ns | mean ns | empty ns (same method) | above empty |\n");
	printf("|---|---|---|---:|---:|---:|---:|\n");
	for (i = 0; i < b.n_rows; i++) {
		const struct row *r = &b.rows[i];
		const struct row *e = empty_ref(r);

		method_label(r, label, sizeof(label));
		printf("| %s | %s | %s | %.1f | %.1f | ", r->path, r->hook, label, r->st.median,
		       r->st.mean);
		if (r->empty || !e)
			printf("- | - |\n");
		else
			printf("%.1f | %+.1f |\n", e->st.median, r->st.median - e->st.median);
	}
	printf("\nrepeat: the kernel's mean over `repeat` runs of one packet; loop: one syscall per "
	       "packet (adds its cache effects and clock steps).\n");
	printf("identity NAT: the backend is the service's own VIP:port, so output = input and "
	       "repeat applies; the unchanged port skips the port fix-up.\n");
}

/* ------------------------------------------------------------------------ */
/* Single operations (primitives.bpf.c): the floor under the paths. */

struct prim {
	const char *name;
	const char *what;
	struct bench_stats st;
};

static struct prim prims[] = {
	{ .name = "prim_hash_hit", .what = "hash lookup that hits (conntrack's types, LRU)" },
	{ .name = "prim_hash_miss", .what = "hash lookup that misses (the same map)" },
	{ .name = "prim_array_read", .what = "array lookup (inlined by the verifier)" },
	{ .name = "prim_flow_cache_hit",
	  .what = "flow cache hit: per-CPU array slot by a key hash, key compared, slot generation read" },
	{ .name = "prim_helper_call", .what = "helper call (bpf_ktime_get_coarse_ns)" },
	{ .name = "prim_lru_insert", .what = "LRU insert into a full table (evicts)" },
	{ .name = "prim_lru_insert_percpu",
	  .what = "the same, LRU lists per CPU (BPF_F_NO_COMMON_LRU)" },
	{ .name = "prim_lru_insert_room",
	  .what = "LRU insert into a table with room, and delete (no eviction)" },
	{ .name = "prim_tc_rewrite",
	  .what = "tc rewrite of one address: l4_csum_replace, store_bytes of the IPv4 checksum and address" },
	{ .name = "prim_tc_rewrite_port_2stores",
	  .what = "tc rewrite of an address and a port: two l4_csum_replace, store_bytes of the IPv4 checksum and address, store_bytes of the port" },
	{ .name = "prim_tc_rewrite_port",
	  .what = "tc rewrite of an address and a port: two l4_csum_replace, one store_bytes from the IPv4 checksum to the ports" },
};
#define N_PRIMS (sizeof(prims) / sizeof(prims[0]))
static struct bench_stats prim_empty;
static bool have_prims;

static int prim_time(struct primitives *p, struct prim *pr, struct bench_xfer *x, __u32 repeat)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(p->obj, pr->name);
	struct bench_hook h = { pr->name, prog ? bpf_program__fd(prog) : -1, TC_ACT_OK, false };

	if (!prog)
		return bench_fail("%s: no such program", pr->name);
	if (bench_measure_repeat(&h, x, repeat, &pr->st))
		return -1;
	if (!bench_out_untouched(x))
		return bench_fail("%s changed the frame", pr->name);
	return 0;
}

/* Each single operation on the nomatch frame, next to empty_tc measured the same way. */
static int bench_primitives(void)
{
	struct canary_ct_key hit = { .saddr = 1, .daddr = 2, .sport = 3, .dport = 4, .proto = 6 };
	struct canary_ct_entry e = { .nat_port = 1 };
	struct bench_xfer *x = &b.x[0];
	__u32 repeat = scaled(BENCH_REPEAT);
	struct primitives *p = primitives__open();
	size_t i;
	int err = p ? 0 : -errno;

	if (!err) {
		p->rodata->prim_hit_key = hit;
		err = primitives__load(p);
	}
	if (!err &&
	    bpf_map__update_elem(p->maps.prim_lookup, &hit, sizeof(hit), &e, sizeof(e), BPF_ANY))
		err = -errno;
	if (err) {
		primitives__destroy(p);
		return bench_fail("loading primitives.bpf.o: %s", strerror(-err));
	}
	nomatch_frame(x);
	err = bench_measure_repeat(&b.hooks.empty_tc, x, repeat, &prim_empty);
	for (i = 0; i < N_PRIMS && !err; i++)
		err = prim_time(p, &prims[i], x, repeat);
	primitives__destroy(p);
	have_prims = !err;
	return err;
}

static void print_primitives(void)
{
	size_t i;

	printf("\nsingle operations on tc, repeat=%u, 5 calls (primitives.bpf.c), above empty_tc "
	       "(%.1f ns) in the same run:\n\n",
	       scaled(BENCH_REPEAT), prim_empty.median);
	printf("| operation | program | median ns | above empty |\n|---|---|---:|---:|\n");
	for (i = 0; i < N_PRIMS; i++)
		printf("| %s | %s | %.1f | %+.1f |\n", prims[i].what, prims[i].name,
		       prims[i].st.median, prims[i].st.median - prim_empty.median);
}

static json_t *primitives_json(void)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; have_prims && i < N_PRIMS; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:f, s:f}", "program", prims[i].name,
						   "operation", prims[i].what, "median_ns",
						   prims[i].st.median, "above_empty_ns",
						   prims[i].st.median - prim_empty.median));
	return a;
}

static json_t *row_json(const struct row *r)
{
	const struct row *e = empty_ref(r);
	bool cmp = e && !r->empty;
	double nb = have_base ? base_above[r - b.rows] : NAN;

	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:f, s:f, s:o, s:o, s:o}", "path", r->path,
			 "hook", r->hook, "method", r->method == M_REPEAT ? "repeat" : "loop",
			 "calls", (json_int_t)r->calls, "repeat", (json_int_t)r->repeat,
			 "median_ns", r->st.median, "mean_ns", r->st.mean, "p99_ns", r->st.p99,
			 "empty_ns", cmp ? json_real(e->st.median) : json_null(), "above_empty_ns",
			 cmp ? json_real(r->st.median - e->st.median) : json_null(),
			 "base_above_empty_ns", isnan(nb) ? json_null() : json_real(nb));
}

static int write_json(const char *file, const struct machine *m)
{
	json_t *rows = json_array(), *root;
	int i;

	for (i = 0; i < b.n_rows; i++)
		json_array_append_new(rows, row_json(&b.rows[i]));
	root = json_pack("{s:s, s:b, s:{s:s, s:s, s:I, s:i}, s:o, s:o}", "tool", "pktcost", "quick",
			 b.div > 1, "machine", "kernel", m->uts.release, "cpu_model", m->cpu,
			 "nproc", (json_int_t)m->nproc, "pinned_cpu", BENCH_CPU, "rows", rows,
			 "primitives", primitives_json());
	return bench_json_write(root, file);
}

/* ------------------------------------------------------------------------ */

/*
 * --base FILE and --rounds N, taken out of argv before the options every
 * bench tool shares (bench_args). Returns -1 to go on, or 2 on a bad value.
 */
static int pktcost_args(int *argc, char **argv, const char **base, unsigned int *rounds)
{
	int i, n = 1;

	for (i = 1; i < *argc; i++) {
		if (!strcmp(argv[i], "--base") && i + 1 < *argc) {
			*base = argv[++i];
		} else if (!strcmp(argv[i], "--rounds") && i + 1 < *argc) {
			*rounds = (unsigned int)strtoul(argv[++i], NULL, 10);
			if (*rounds < 1 || *rounds > MAX_ROUNDS) {
				fprintf(stderr, "pktcost: --rounds takes 1..%d\n", MAX_ROUNDS);
				return 2;
			}
		} else {
			argv[n++] = argv[i];
		}
	}
	*argc = n;
	return -1;
}

/* One round: every path of variant v, its rows kept as round r's. */
static int run_round(enum variant v, unsigned int r)
{
	int err;

	variant_use(v);
	b.n_rows = 0;
	err = bench_all();
	memcpy(round_rows[v][r], b.rows, sizeof(b.rows));
	round_n_rows[v][r] = b.n_rows;
	return err;
}

static int cmp_double(const void *pa, const void *pb)
{
	double x = *(const double *)pa, y = *(const double *)pb;

	return (x > y) - (x < y);
}

static double median_of(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Variant v's rows into b.rows: each figure the median of its rounds' figures. */
static void rows_of_rounds(enum variant v, unsigned int rounds)
{
	double med[MAX_ROUNDS], mean[MAX_ROUNDS], p99[MAX_ROUNDS];
	unsigned int r;
	int i;

	b.n_rows = round_n_rows[v][0];
	memcpy(b.rows, round_rows[v][0], sizeof(b.rows));
	for (i = 0; i < b.n_rows; i++) {
		for (r = 0; r < rounds; r++) {
			med[r] = round_rows[v][r][i].st.median;
			mean[r] = round_rows[v][r][i].st.mean;
			p99[r] = round_rows[v][r][i].st.p99;
		}
		b.rows[i].st.median = median_of(med, rounds);
		b.rows[i].st.mean = median_of(mean, rounds);
		b.rows[i].st.p99 = median_of(p99, rounds);
	}
}

/* Every path, rounds times; with a base, base and new alternate which goes first. */
static int run_rounds(unsigned int rounds)
{
	unsigned int r;

	for (r = 0; r < rounds; r++) {
		if (base_elf && r % 2 == 0 && run_round(V_BASE, r))
			return -1;
		if (run_round(V_NEW, r))
			return -1;
		if (base_elf && r % 2 == 1 && run_round(V_BASE, r))
			return -1;
	}
	return 0;
}

/* What a row of b.rows costs above its empty program, or NAN for an empty row. */
static double above_empty(const struct row *r)
{
	const struct row *e = empty_ref(r);

	return r->empty || !e ? NAN : r->st.median - e->st.median;
}

/* Base next to new, above empty; b.rows holds the new rows. */
static void print_compare(const char *base_name, unsigned int rounds)
{
	char label[64];
	int i;

	printf("\nbase %s and new, above empty, each the median of %u interleaved rounds:\n\n",
	       base_name, rounds);
	printf("| path | hook | method | base ns | new ns | new - base | new / base |\n");
	printf("|---|---|---|---:|---:|---:|---:|\n");
	for (i = 0; i < b.n_rows; i++) {
		const struct row *r = &b.rows[i];
		double nb = base_above[i], nn = above_empty(r);

		if (isnan(nn) || isnan(nb))
			continue;
		method_label(r, label, sizeof(label));
		printf("| %s | %s | %s | %.1f | %.1f | %+.1f | %s%.2f |\n", r->path, r->hook, label,
		       nb, nn, nn - nb, nb > 0 ? "" : "~", nb > 0 ? nn / nb : 0.0);
	}
}

int main(int argc, char **argv)
{
	const char *json_file, *base = NULL;
	unsigned int rounds = 0;
	struct machine m;
	int err;

	err = pktcost_args(&argc, argv, &base, &rounds);
	if (err >= 0)
		return err;
	err = bench_args(argc, argv, QUICK_HELP, &b.div, &json_file);
	if (err >= 0) {
		/* The options only pktcost has, after the usage bench_args() printed. */
		fprintf(err ? stderr : stdout,
			"  --base FILE  also measure FILE, another build of canary.bpf.o\n"
			"  --rounds N   rounds of every path, medians reported (1..%d; 3 with"
			" --base, else 1)\n",
			MAX_ROUNDS);
		return err;
	}
	if (!rounds)
		rounds = base ? 3 : 1;
	if (base) {
		fxs[V_BASE].elf_sz = read_file(base, &base_elf);
		if (!fxs[V_BASE].elf_sz)
			return 1;
		fxs[V_BASE].elf = base_elf;
	}
	err = bench_start(install_cleanup, bench_load, teardown, "the programs");
	if (err >= 0)
		return err;
	err = run_rounds(rounds);
	if (!err)
		err = bench_primitives();
	teardown();
	if (err)
		return 1;
	machine_read(&m);
	if (base) {
		int i;

		rows_of_rounds(V_BASE, rounds);
		for (i = 0; i < b.n_rows; i++)
			base_above[i] = above_empty(&b.rows[i]);
		have_base = true;
	}
	rows_of_rounds(V_NEW, rounds);
	print_table(&m);
	if (base)
		print_compare(base, rounds);
	print_primitives();
	return json_file && write_json(json_file, &m) ? 1 : 0;
}
