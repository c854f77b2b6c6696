// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The half-open table (ct_syn_v<N>, bpf/lib/synstate.h): a SYN's choice
 * waits there until the client's ACK of the SYN-ACK moves the flow to
 * conntrack, so a flood of spoofed SYNs cannot evict established flows.
 * The cases install their own "web" service (VIP_WEB, two backends per
 * version) over the harness's.
 */
#include "harness.h"
#include "ctlifetimes.h"

#define SS_VIP	  PKT_IP4(10, 96, 0, 10)
#define SS_PORT	  PKT_BE16(80)
#define SS_SVC_ID 1
#define SS_SEC_NS 1000000000ULL

/* Established flows the flood must leave alone, and SYNs per conntrack entry. */
#define SS_ESTABLISHED 64
#define SS_FLOOD_SYNS  CANARY_CT_MAX_ENTRIES

static const struct canary_backend ss_backends[CANARY_V_COUNT][2] = {
	{ { PKT_IP4(10, 0, 1, 11), PKT_BE16(8080), 0 },
	  { PKT_IP4(10, 0, 1, 12), PKT_BE16(8080), 0 } },
	{ { PKT_IP4(10, 0, 2, 21), PKT_BE16(9090), 0 },
	  { PKT_IP4(10, 0, 2, 22), PKT_BE16(9090), 0 } },
};

/* ------------------------------------------------------------------------ */
/* Maps. */

static size_t ss_count(int fd)
{
	static struct canary_ct_key keys[CANARY_CT_MAX_ENTRIES];

	return fixture_map_keys(fd, keys, sizeof(keys[0]), CANARY_CT_MAX_ENTRIES);
}

static void ss_service(__u16 weight)
{
	struct canary_service_key key = { .vip = SS_VIP, .port = SS_PORT, .proto = IPPROTO_TCP };
	struct canary_service s;
	static __u32 generation;

	memset(&s, 0, sizeof(s));
	s.id = SS_SVC_ID;
	s.generation = ++generation;
	s.seed = 0x5eed0001U;
	s.weight = weight;
	s.flags = CANARY_SVC_F_HTTP;
	snprintf(s.name, sizeof(s.name), "web");
	s.n_backends[CANARY_V_STABLE] = 2;
	s.n_backends[CANARY_V_CANARY] = 2;
	memcpy(s.backends[CANARY_V_STABLE], ss_backends[CANARY_V_STABLE],
	       sizeof(ss_backends[CANARY_V_STABLE]));
	memcpy(s.backends[CANARY_V_CANARY], ss_backends[CANARY_V_CANARY],
	       sizeof(ss_backends[CANARY_V_CANARY]));
	assert_int_equal(fixture_svc_put(&fx, &key, &s, BPF_ANY), 0);
}

static __u64 ss_opened(int version)
{
	struct canary_metrics m;

	assert_int_equal(fixture_pcpu_sum(&fx, fx.metrics_fd, SS_SVC_ID * CANARY_V_COUNT + version,
					  (__u64 *)&m, sizeof(m) / sizeof(__u64)),
			 0);
	return m.conns_opened;
}

/* ------------------------------------------------------------------------ */
/* A client's flow through the programs. */

struct ss_flow {
	struct path *path;
	__be32 client;
	__be16 cport;
	__u32 cseq, sseq;
	__be32 be_addr;
	__be16 be_port;
};

struct ss_frame {
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 in_len;
	struct fixture_run run;
};

static void ss_flow_init(struct ss_flow *f, struct path *p, __be32 client, __u16 cport)
{
	memset(f, 0, sizeof(*f));
	f->path = p;
	f->client = client;
	f->cport = htons(cport);
	f->cseq = 0x10000000U + cport;
	f->sseq = 0x70000000U + cport;
}

static void ss_run(int fd, struct ss_frame *x, const struct pkt_spec *s)
{
	x->in_len = (__u32)pkt_build(x->in, sizeof(x->in), s);
	assert_true(x->in_len > 0);
	assert_int_equal(fixture_test_run(fd, x->in, x->in_len, x->out, sizeof(x->out), 1, &x->run),
			 0);
}

/* Client -> VIP; returns where it was sent (0 when untranslated). */
static __be32 ss_send(struct ss_flow *f, __u8 flags, __u32 ack, __be16 *port)
{
	struct pkt_spec s = {
		.saddr = f->client,
		.daddr = SS_VIP,
		.sport = f->cport,
		.dport = SS_PORT,
		.proto = IPPROTO_TCP,
		.seq = f->cseq,
		.ack = ack,
		.tcp_flags = flags,
		.frag = PKT_IP_DF,
	};
	struct ss_frame x;
	__be32 daddr;

	ss_run(*f->path->fd, &x, &s);
	assert_int_equal(x.run.retval, f->path->pass);
	assert_true(pkt_ipv4_csum_ok(x.out, x.run.out_len));
	assert_true(pkt_l4_csum_ok(x.out, x.run.out_len));
	daddr = pkt_be32_at(x.out + PKT_IP_OFF + PKT_IP_DADDR);
	if (port)
		*port = pkt_be16_at(x.out + pkt_l4_off(x.out, x.run.out_len) + PKT_L4_DPORT);
	if (flags & PKT_TCP_SYN)
		f->cseq += 1;
	return daddr == SS_VIP ? 0 : daddr;
}

/* The SYN of a new flow: it must be sent to a listed backend. */
static void ss_open(struct ss_flow *f)
{
	f->be_addr = ss_send(f, PKT_TCP_SYN, 0, &f->be_port);
	assert_true(f->be_addr != 0);
}

/* Backend -> client through tc egress; returns whether the VIP was restored. */
static bool ss_reply(struct ss_flow *f, __u8 flags)
{
	struct pkt_spec s = {
		.saddr = f->be_addr,
		.daddr = f->client,
		.sport = f->be_port,
		.dport = f->cport,
		.proto = IPPROTO_TCP,
		.seq = f->sseq,
		.ack = f->cseq,
		.tcp_flags = flags,
		.frag = PKT_IP_DF,
	};
	struct ss_frame x;

	ss_run(fx.tc_eg_fd, &x, &s);
	assert_int_equal(x.run.retval, TC_ACT_OK);
	if (flags & PKT_TCP_SYN)
		f->sseq += 1;
	return pkt_be32_at(x.out + PKT_IP_OFF + PKT_IP_SADDR) == SS_VIP;
}

/* SYN, SYN-ACK, ACK. */
static void ss_establish(struct ss_flow *f)
{
	ss_open(f);
	assert_true(ss_reply(f, PKT_TCP_SYN | PKT_TCP_ACK));
	assert_int_equal(ss_send(f, PKT_TCP_ACK, f->sseq, NULL), f->be_addr);
}

/* Both entries of f are in the table fd. */
static bool ss_in(int fd, const struct ss_flow *f)
{
	struct canary_ct_key fk = ct_key(f->client, f->cport, SS_VIP, SS_PORT, IPPROTO_TCP);
	struct canary_ct_key rk = ct_key(f->be_addr, f->be_port, f->client, f->cport, IPPROTO_TCP);
	struct canary_ct_entry e;
	bool fwd = !bpf_map_lookup_elem(fd, &fk, &e) && e.nat_addr == f->be_addr;
	bool rev = !bpf_map_lookup_elem(fd, &rk, &e) && (e.flags & CANARY_CT_F_REVERSE);

	return fwd && rev;
}

/* ------------------------------------------------------------------------ */

/*
 * A SYN is recorded in the half-open table only; its SYN-ACK is restored
 * from there; the client's ACK of it moves both entries to conntrack with
 * the handshake's state, and nothing is left behind.
 */
static void test_syn_half_open_then_promoted(void **state)
{
	struct canary_ct_key fk;
	struct canary_ct_entry e;
	struct ss_flow f;

	ss_service(5000);
	ss_flow_init(&f, test_path(state), PKT_IP4(192, 168, 1, 100), 40000);
	ss_open(&f);
	assert_true(ss_in(fx.ct_syn_fd, &f));
	assert_int_equal(ss_count(fx.ct_syn_fd), 2);
	assert_int_equal(ss_count(fx.ct_fd), 0);

	assert_true(ss_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK));
	assert_int_equal(ss_count(fx.ct_fd), 0); /* a SYN-ACK proves nothing about the client */

	assert_int_equal(ss_send(&f, PKT_TCP_ACK, f.sseq, NULL), f.be_addr);
	assert_true(ss_in(fx.ct_fd, &f));
	assert_int_equal(ss_count(fx.ct_fd), 2);
	assert_int_equal(ss_count(fx.ct_syn_fd), 0);
	fk = ct_key(f.client, f.cport, SS_VIP, SS_PORT, IPPROTO_TCP);
	assert_int_equal(bpf_map_lookup_elem(fx.ct_fd, &fk, &e), 0);
	assert_true(e.flags & CANARY_CT_F_ESTABLISHED);
	assert_true(e.flags & CANARY_CT_F_SSEQ_VALID);
	assert_int_equal(e.client_seq_end, f.cseq);
	assert_int_equal(e.server_seq_end, f.sseq);
	assert_int_equal(ss_opened(CANARY_V_STABLE) + ss_opened(CANARY_V_CANARY), 1);
	assert_true(ss_reply(&f, PKT_TCP_ACK)); /* replies now from conntrack */
}

/*
 * A retransmitted SYN finds its half-open entry: same backend whatever the
 * weight says now, counted as one connection.
 */
static void test_syn_retransmit_half_open(void **state)
{
	struct ss_flow f;
	__be32 again;
	__be16 port;
	int v;

	ss_service(5000);
	ss_flow_init(&f, test_path(state), PKT_IP4(192, 168, 1, 101), 40001);
	ss_open(&f);
	v = f.be_addr == ss_backends[CANARY_V_CANARY][0].addr ||
	    f.be_addr == ss_backends[CANARY_V_CANARY][1].addr;
	ss_service(v ? 0 : CANARY_WEIGHT_MAX); /* a new choice would take the other version */
	f.cseq -= 1;
	again = ss_send(&f, PKT_TCP_SYN, 0, &port);
	assert_int_equal(again, f.be_addr);
	assert_int_equal(port, f.be_port);
	assert_int_equal(ss_opened(v), 1);
	assert_int_equal(ss_opened(!v), 0);
	assert_int_equal(ss_count(fx.ct_fd), 0);
	/* Also after the SYN-ACK was seen (and lost on its way to the client). */
	assert_true(ss_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK));
	f.cseq -= 1;
	assert_int_equal(ss_send(&f, PKT_TCP_SYN, 0, NULL), f.be_addr);
	assert_int_equal(ss_opened(v), 1);
}

/*
 * An ACK that does not acknowledge the SYN-ACK (a blind spoof, or before
 * the SYN-ACK) goes to the flow's backend but promotes nothing.
 */
static void test_ack_must_answer_synack(void **state)
{
	struct ss_flow f;

	ss_service(5000);
	ss_flow_init(&f, test_path(state), PKT_IP4(192, 168, 1, 102), 40002);
	ss_open(&f);
	assert_int_equal(ss_send(&f, PKT_TCP_ACK, f.sseq, NULL), f.be_addr); /* no SYN-ACK yet */
	assert_int_equal(ss_count(fx.ct_fd), 0);
	assert_true(ss_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK));
	assert_int_equal(ss_send(&f, PKT_TCP_ACK, f.sseq + 0x40000000U, NULL), f.be_addr);
	assert_int_equal(ss_count(fx.ct_fd), 0);
	assert_true(ss_in(fx.ct_syn_fd, &f));
	assert_int_equal(ss_send(&f, PKT_TCP_ACK, f.sseq, NULL), f.be_addr);
	assert_true(ss_in(fx.ct_fd, &f));
}

/*
 * The backend refuses the SYN: counted once as refused, and the client's
 * next SYN (same port) is a new choice, still half-open.
 */
static void test_refused_half_open(void **state)
{
	struct canary_metrics m;
	struct ss_flow f;
	int v;

	ss_service(5000);
	ss_flow_init(&f, test_path(state), PKT_IP4(192, 168, 1, 103), 40003);
	ss_open(&f);
	assert_true(ss_reply(&f, PKT_TCP_RST | PKT_TCP_ACK));
	for (v = 0; v < CANARY_V_COUNT; v++) {
		assert_int_equal(fixture_pcpu_sum(&fx, fx.metrics_fd,
						  SS_SVC_ID * CANARY_V_COUNT + (__u32)v,
						  (__u64 *)&m, sizeof(m) / sizeof(__u64)),
				 0);
		if (m.conns_opened)
			assert_int_equal(m.conns_refused, 1);
	}
	f.cseq += 1000;
	ss_open(&f);
	assert_int_equal(ss_opened(CANARY_V_STABLE) + ss_opened(CANARY_V_CANARY), 2);
	assert_int_equal(ss_count(fx.ct_fd), 0);
}

/*
 * A late reply of an older flow whose forward entry expired, on a client
 * port now in a new handshake to another backend: restored, but it writes
 * no conntrack forward entry that would take the new flow to the old
 * backend.
 */
static void test_stale_reply_keeps_half_open(void **state)
{
	struct canary_ct_key fk;
	struct canary_ct_entry e;
	struct ss_flow old, f;

	ss_service(0);
	ss_flow_init(&old, test_path(state), PKT_IP4(192, 168, 1, 104), 40004);
	ss_establish(&old);
	fk = ct_key(old.client, old.cport, SS_VIP, SS_PORT, IPPROTO_TCP);
	assert_int_equal(bpf_map_delete_elem(fx.ct_fd, &fk), 0); /* its forward entry expired */
	ss_service(CANARY_WEIGHT_MAX);
	f = old;
	f.cseq += 100000;
	ss_open(&f);
	assert_int_not_equal(f.be_addr, old.be_addr);
	assert_true(ss_reply(&old, PKT_TCP_ACK | PKT_TCP_FIN)); /* the old backend, late */
	assert_int_not_equal(bpf_map_lookup_elem(fx.ct_fd, &fk, &e), 0);
	assert_int_equal(ss_send(&f, PKT_TCP_ACK, 0, NULL), f.be_addr);
	assert_true(ss_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK));
	assert_int_equal(ss_send(&f, PKT_TCP_ACK, f.sseq, NULL), f.be_addr);
	assert_int_equal(bpf_map_lookup_elem(fx.ct_fd, &fk, &e), 0);
	assert_int_equal(e.nat_addr, f.be_addr);
}

/*
 * The flood: SS_ESTABLISHED established flows, then as many distinct SYNs
 * as conntrack has entries, each answered by its backend's SYN-ACK (a
 * backend answers spoofed SYNs too) and never acknowledged. Every
 * established flow keeps both its entries and its backend. When each SYN
 * wrote two conntrack entries, half as many SYNs flushed the table.
 */
static void test_syn_flood_keeps_established(void **state)
{
	static struct ss_flow est[SS_ESTABLISHED];
	struct ss_flow syn;
	size_t kept = 0, conntrack;
	__u32 i;

	(void)state;
	ss_service(5000);
	for (i = 0; i < SS_ESTABLISHED; i++) {
		ss_flow_init(&est[i], &tc_path, PKT_IP4(192, 168, 2, 1 + i), (__u16)(41000 + i));
		ss_establish(&est[i]);
	}
	for (i = 0; i < SS_FLOOD_SYNS; i++) {
		/* Spoofed sources: 10.128.0.0/9, one port each. */
		ss_flow_init(&syn, &tc_path, htonl(0x0a800000U + (i >> 4)),
			     (__u16)(1024 + (i & 15)));
		ss_open(&syn);
		ss_reply(&syn, PKT_TCP_SYN | PKT_TCP_ACK);
	}
	for (i = 0; i < SS_ESTABLISHED; i++)
		kept += ss_in(fx.ct_fd, &est[i]);
	conntrack = ss_count(fx.ct_fd);
	print_message("  %u SYNs: %zu of %d established flows kept, %zu conntrack entries, "
		      "%zu half-open entries\n",
		      SS_FLOOD_SYNS, kept, SS_ESTABLISHED, conntrack, ss_count(fx.ct_syn_fd));
	assert_int_equal(kept, SS_ESTABLISHED);
	assert_int_equal(conntrack, 2 * SS_ESTABLISHED);
	assert_true(ss_count(fx.ct_syn_fd) <= CANARY_CT_SYN_MAX_ENTRIES);
	for (i = 0; i < SS_ESTABLISHED; i++) {
		assert_int_equal(ss_send(&est[i], PKT_TCP_ACK | PKT_TCP_PSH, est[i].sseq, NULL),
				 est[i].be_addr);
		assert_true(ss_reply(&est[i], PKT_TCP_ACK));
	}
}

/* The entries' clock (bpf_ktime_get_coarse_ns). */
static __u64 ss_coarse_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (__u64)ts.tv_sec * SS_SEC_NS + (__u64)ts.tv_nsec;
}

/* Make every entry of table fd look idle for age_ns. */
static void ss_age(int fd, __u64 age_ns)
{
	static struct canary_ct_key keys[64];
	struct canary_ct_entry e;
	size_t i, n = fixture_map_keys(fd, keys, sizeof(keys[0]), 64);
	__u64 now = ss_coarse_now();

	for (i = 0; i < n; i++) {
		assert_int_equal(bpf_map_lookup_elem(fd, &keys[i], &e), 0);
		e.last_seen_ns = now > age_ns ? now - age_ns : 0;
		assert_int_equal(bpf_map_update_elem(fd, &keys[i], &e, BPF_EXIST), 0);
	}
}

/* One expiry pass with lifetimes lt (NULL: the defaults); the entries it removed. */
static unsigned int ss_expire(const struct ct_lifetimes *lt)
{
	struct canary_dp *dp;
	unsigned int expired;

	assert_int_equal(dp_open_pinned(fx.pin_dir, &dp), 0);
	if (lt)
		dp_set_ct_lifetimes(dp, lt);
	assert_int_equal(dp_ct_expire(dp, &expired), 0);
	dp_close(dp);
	return expired;
}

/*
 * Half-open entries go after the SYN lifetime, a refused handshake's after
 * the closed one, and an answered-but-unacknowledged one is no exception;
 * they are not counted with conntrack's expired entries. The lifetimes are
 * the operator's (--conntrack-lifetimes) when set.
 */
static void test_half_open_expiry(void **state)
{
	struct ct_lifetimes lt;
	struct ss_flow a, b, c;

	(void)state;
	ss_service(5000);
	ss_flow_init(&a, &tc_path, PKT_IP4(192, 168, 3, 1), 42000);
	ss_open(&a);
	ss_flow_init(&b, &tc_path, PKT_IP4(192, 168, 3, 2), 42001);
	ss_open(&b);
	assert_true(ss_reply(&b, PKT_TCP_SYN | PKT_TCP_ACK));
	ss_flow_init(&c, &tc_path, PKT_IP4(192, 168, 3, 3), 42002);
	ss_open(&c);
	assert_true(ss_reply(&c, PKT_TCP_RST | PKT_TCP_ACK));
	assert_int_equal(ss_count(fx.ct_syn_fd), 6);

	ss_age(fx.ct_syn_fd, 11 * SS_SEC_NS);
	assert_int_equal(ss_expire(NULL), 0); /* conntrack's count: nothing there */
	assert_false(ss_in(fx.ct_syn_fd, &c));
	assert_int_equal(ss_count(fx.ct_syn_fd), 4);
	ss_age(fx.ct_syn_fd, 61 * SS_SEC_NS);
	ss_expire(NULL);
	assert_int_equal(ss_count(fx.ct_syn_fd), 0);

	/* The operator's lifetimes: syn=5s. */
	ss_open(&a);
	ct_lifetimes_default(&lt);
	lt.syn_ns = 5 * SS_SEC_NS;
	ss_age(fx.ct_syn_fd, 3 * SS_SEC_NS);
	ss_expire(&lt);
	assert_true(ss_in(fx.ct_syn_fd, &a));
	ss_age(fx.ct_syn_fd, 6 * SS_SEC_NS);
	ss_expire(&lt);
	assert_int_equal(ss_count(fx.ct_syn_fd), 0);
}

/* clang-format off */
DP_SUITE(synstate,
	BOTH(test_syn_half_open_then_promoted),
	BOTH(test_syn_retransmit_half_open),
	BOTH(test_ack_must_answer_synack),
	BOTH(test_refused_half_open),
	BOTH(test_stale_reply_keeps_half_open),
	ONCE(test_syn_flood_keeps_established),
	ONCE(test_half_open_expiry));
/* clang-format on */
