// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Packet fuzzer for canaryd's kernel programs. Random and mutated frames go
 * through canary_tc_ingress, canary_xdp_ingress and canary_tc_egress of the
 * real skeleton (maps pinned in a private directory) with BPF_PROG_TEST_RUN,
 * and every output is checked against invariants:
 *
 *   (a) ingress rewrites a destination only to a backend of the service the
 *       packet was sent to (the one its flow is pinned to, or a stable one
 *       when the flow was re-steered for a reset), and otherwise leaves the
 *       packet alone; egress rewrites a source only to the VIP:port of the
 *       reply's flow (a configured service of the same protocol);
 *   (b) on every rewritten packet the IPv4 header checksum and the TCP/UDP
 *       checksum verify whenever they did on input (and are off by exactly
 *       what they were off by when they did not: incremental updates keep
 *       the difference); a UDP checksum is 0 on output iff it was 0 on input;
 *   (c) return codes are TC_ACT_OK/TC_ACT_SHOT or XDP_PASS/XDP_DROP; an
 *       untranslated packet passes byte for byte unchanged, a translated one
 *       differs only in the address, the port and the two checksums;
 *   (d) the counters match a model of bpf/canary.bpf.c (below), per reason
 *       and per service and version, checked every CHECK_EVERY packets.
 *
 * Counting, as the program does it (bpf/canary.bpf.c, ingress_handle):
 *   - a frame that does not parse counts one reason (not_ipv4, malformed,
 *     fragment, not_tcp_udp); a later fragment parses with the ports its
 *     first fragment left in frags_v<N>, and counts fragment when there are
 *     none;
 *   - a parsed frame whose tuple has a *reverse* conntrack entry (a
 *     backend's packet seen on ingress) counts nothing;
 *   - a known flow counts forward; a new flow (no entry, or a SYN reusing the
 *     tuple of a finished flow) counts no_service, or ct_miss_non_syn when
 *     it is not an opening packet *and also* one of no_backend, ct_full,
 *     new_flow;
 *   - then, for a flow, reset_steered when it was marked for reset, and
 *     opaque when its first payload is TLS or HTTP/2.
 * So, over all ingress runs:
 *   sum(ingress reasons) = runs - reverse_hits + ct_miss_non_syn + opaque
 *                          + reset_steered
 * and on egress: reply = packets with a reverse entry, reply_no_forward <=
 * reply (counted when a reply reads its forward entry, which a plain one
 * does once a second only, and finds none of its flow:
 * model_reply_reads_forward()), plus malformed and fragment for the
 * packets it cannot parse, and icmp_error_out or icmp_no_flow for ICMP
 * errors quoting TCP/UDP; nothing else is counted. An ICMP error
 * (bpf/lib/icmp.h) counts on ingress one of not_tcp_udp, malformed
 * (modelled by model_icmp), icmp_no_flow or icmp_error_in; a translated
 * one is checked like (a) to (c): its quote names the flow's backend
 * (ingress) or VIP (egress), only the addresses,
 * the port and the checksums over them change, and the outer IP header,
 * the ICMP message, the quoted IP header and the whole frame keep their
 * sums. Per service and version: packets_in and
 * bytes_in count exactly the packets handed to a flow (translated, or dropped
 * by a failed rewrite), attributed to the flow's version; packets_out and
 * bytes_out the replies; conns_opened the opening packets of new flows.
 *
 * The flow cache (bpf/lib/flowcache.h) serves most packets of plain flows
 * from copies of conntrack. What the fuzzer changes behind the programs'
 * back (a conntrack clear, a reset mark, an expiry pass 61 s ahead) drops
 * the copies as the programs' own changes do, so the model, which reads
 * conntrack, stays exact; a copy the programs failed to drop shows as a
 * wrong backend (a) or a count the model does not expect (d).
 *
 * Frames: valid SYN / data / FIN / RST / UDP from clients and SYN-ACK /
 * data / RST / UDP replies from backends of live flows (pkt.h), mutated by
 * flipping bytes and bits, truncating, padding, and changing ihl, doff,
 * lengths, flags, fragment bits, protocol, ports, addresses and ethertype
 * (checksums then fixed half of the time), plus purely random frames, ICMP
 * echo, ICMP errors about live flows both ways (types 3, 11, 12, some of
 * other types or about unknown ports, quotes cut anywhere), ARP and IPv6.
 * The agent's actions run between packets: weight changes, marking canary
 * flows for reset, and the operator's kill switch engaged and released
 * (while engaged, (a) also requires every new connection of the service to
 * go to a stable backend).
 *
 * usage: test_bpf_fuzz [--packets N] [--max-seconds T] [--seed S] [--save-dir DIR]
 *   N: frames to send (default 3000000, spread over the 3 programs by the
 *      mix); T: stop early after T seconds (default 75), but never before
 *      1000000 frames have run; S: PRNG seed (default: from the clock;
 *      printed: rerun with it to reproduce); DIR: where the first failing
 *      frames are written.
 * Output: TAP lines; exit 1 on any failure. Without root: "skipped: needs
 * root/CAP_BPF" (a failure when CI=true).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "canary_consts.h"
#include "canary_structs.h"
#include "canary_svcindex.h"
#include "canary.skel.h"
#include "ct_count.skel.h"
#include "fixture.h"
#include "pkt.h"

#define PIN_TEMPLATE	"/sys/fs/bpf/canary-fuzz-XXXXXX"
#define DEFAULT_PACKETS 3000000UL
#define DEFAULT_SECONDS 75.0
#define MIN_PACKETS	1000000UL /* run at least this many, whatever the time */
#define CHECK_EVERY	8192
#define MAX_REPORTS	20 /* failures printed in full */
#define MAX_SAVED	10 /* failing frames written to --save-dir */
#define POOL_SIZE	4096
#define CT_CLEAR_AT	40000 /* flows created before conntrack is emptied */
#define SYN_CLEAR_AT	4096  /* half-open flows (2 entries each) before ct_syn is */

/* ------------------------------------------------------------------------ */
/* Services: a TCP HTTP one and a UDP one. Addresses and ports network order. */

#define N_SVC 2
/* clang-format off */
#define BE(a, b, c, d, port) { PKT_IP4(a, b, c, d), PKT_BE16(port), 0 }
/* clang-format on */

struct svc_def {
	const char *name;
	struct canary_service_key key;
	__u32 id;
	__u8 flags;
	__u8 affinity;
	__u16 weight;
	struct canary_backend be[CANARY_V_COUNT][CANARY_MAX_BACKENDS];
	__u8 n_be[CANARY_V_COUNT];
	/* Source CIDR override: clients in it always get this version. */
	__be32 ovr_net;
	__u32 ovr_len;
	__u32 ovr_version;
	bool killed; /* the operator's kill switch (killswitch_v<N>) is engaged */
};

static struct svc_def svcs[N_SVC] = {
	{
		.name = "web",
		.key = { .vip = PKT_IP4(10, 96, 0, 10),
			 .port = PKT_BE16(80),
			 .proto = IPPROTO_TCP },
		.id = 1,
		.flags = CANARY_SVC_F_HTTP,
		.weight = 3000,
		.be = { { BE(10, 0, 1, 11, 8080), BE(10, 0, 1, 12, 8080), BE(10, 0, 1, 13, 8081) },
			{ BE(10, 0, 2, 21, 9090), BE(10, 0, 2, 22, 9091) } },
		.n_be = { 3, 2 },
		.ovr_net = PKT_IP4(192, 168, 7, 0),
		.ovr_len = 24,
		.ovr_version = CANARY_V_CANARY,
	},
	{
		.name = "dns",
		.key = { .vip = PKT_IP4(10, 96, 0, 53),
			 .port = PKT_BE16(53),
			 .proto = IPPROTO_UDP },
		.id = 2,
		.affinity = CANARY_AFFINITY_CLIENT_IP,
		.weight = 5000,
		.be = { { BE(10, 0, 1, 31, 5353), BE(10, 0, 1, 32, 5353), BE(10, 0, 1, 33, 5353) },
			{ BE(10, 0, 2, 41, 5354) } },
		.n_be = { 3, 1 },
		.ovr_net = PKT_IP4(192, 168, 8, 0),
		.ovr_len = 24,
		.ovr_version = CANARY_V_STABLE,
	},
};

static const struct svc_def *svc_by_key(__be32 vip, __be16 port, __u8 proto)
{
	for (int i = 0; i < N_SVC; i++)
		if (svcs[i].key.vip == vip && svcs[i].key.port == port &&
		    svcs[i].key.proto == proto)
			return &svcs[i];
	return NULL;
}

static const struct svc_def *svc_by_id(__u32 id)
{
	return id >= 1 && id <= N_SVC ? &svcs[id - 1] : NULL;
}

/* Version of backend addr:port in service d, or -1. */
static int be_version(const struct svc_def *d, __be32 addr, __be16 port)
{
	for (int v = 0; v < CANARY_V_COUNT; v++)
		for (int i = 0; i < d->n_be[v]; i++)
			if (d->be[v][i].addr == addr && d->be[v][i].port == port)
				return v;
	return -1;
}

/* ------------------------------------------------------------------------ */
/* The loaded skeleton, in a private pin directory removed on any exit. */

static struct canary_fixture fx;

enum prog { P_TC_IN, P_XDP_IN, P_TC_EG, P_COUNT };
static const char *const prog_names[P_COUNT] = { "tc_ingress", "xdp_ingress", "tc_egress" };
static const int *const prog_fd[P_COUNT] = { &fx.tc_in_fd, &fx.xdp_fd, &fx.tc_eg_fd };

/* For atexit(), which passes no argument. */
static struct ct_count *expiry; /* the agent's expiry pass, loaded over fx's maps */

static void unload(void)
{
	ct_count__destroy(expiry);
	expiry = NULL;
	fixture_unload(&fx);
}

static void install_cleanup(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGABRT, SIGSEGV };

	fixture_cleanup_on_exit(&fx, unload, sigs, sizeof(sigs) / sizeof(sigs[0]));
}

/* ------------------------------------------------------------------------ */
/* Reporting. */

enum check { C_A, C_B, C_C, C_D, C_E, C_COUNT };
static const char *const check_names[C_COUNT] = {
	"(a) rewrites only to a configured backend (ingress) or VIP:port (egress)",
	"(b) IPv4 and TCP/UDP checksums of rewritten packets",
	"(c) return codes, and bytes outside the rewritten fields unchanged",
	"(d) counters consistent with the program's design",
	"(e) a SYN waits in ct_syn; only the client's ACK of the SYN-ACK moves it to conntrack",
};

static unsigned long failures[C_COUNT];
static unsigned long n_reports, n_saved;
static unsigned long long seed;
static const char *save_dir;

struct frame {
	__u8 b[PKT_MAX];
	__u32 len;
};

/* The first 96 bytes of a frame, 32 a line. */
static void hexdump(const char *tag, const struct frame *f)
{
	size_t i;

	printf("#   %s (%u bytes):", tag, f->len);
	for (i = 0; i < f->len && i < 96; i++)
		printf("%s%02x", i % 32 ? " " : "\n#     ", f->b[i]);
	printf("%s\n", i < f->len ? " ..." : "");
}

static void save_frame(unsigned long idx, enum prog p, const struct frame *in)
{
	char path[512];
	FILE *f;

	if (!save_dir || n_saved >= MAX_SAVED)
		return;
	mkdir(save_dir, 0755); /* may exist already */
	snprintf(path, sizeof(path), "%s/bpf_fuzz-seed%llu-pkt%lu-%s.bin", save_dir, seed, idx,
		 prog_names[p]);
	f = fopen(path, "wb");
	if (!f)
		return;
	fwrite(in->b, 1, in->len, f);
	fclose(f);
	n_saved++;
	printf("#   frame saved: %s\n", path);
}

/* One broken invariant for packet idx through program p. */
static void fail_pkt(enum check c, unsigned long idx, enum prog p, const struct frame *in,
		     const struct frame *out, const char *fmt, ...)
{
	va_list ap;

	failures[c]++;
	if (++n_reports > MAX_REPORTS)
		return;
	printf("# FAIL %c: packet %lu, %s: ", "abcd"[c], idx, prog_names[p]);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (in)
		hexdump("in", in);
	if (out)
		hexdump("out", out);
	if (in)
		save_frame(idx, p, in);
}

static void fail_counter(const char *fmt, ...)
{
	va_list ap;

	failures[C_D]++;
	if (++n_reports > MAX_REPORTS)
		return;
	printf("# FAIL d: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* ------------------------------------------------------------------------ */
/* PRNG: xorshift64*, seeded. */

static unsigned long long rng_state;

static __u64 rnd64(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static __u32 rnd(__u32 n)
{
	return n ? (__u32)((rnd64() >> 32) % n) : 0;
}

static bool chance(__u32 percent)
{
	return rnd(100) < percent;
}

static void rnd_bytes(__u8 *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (__u8)rnd64();
}

/* ------------------------------------------------------------------------ */
/* Maps. */

/*
 * The model of vip_filter_v<N> (headers/canary_svcindex.h): the bit of every
 * VIP:port/proto a service was ever written for, kept here from the writes
 * alone, so that a wrong bit in the map shows as a packet the model and the
 * program treat differently.
 */
static __u64 model_filter[CANARY_VIP_FILTER_WORDS];
/* And of be_filter_v<N>: every backend address:port/proto ever written. */
static __u64 model_backends[CANARY_VIP_FILTER_WORDS];

static void model_bit_add(__u64 *filter, __be32 addr, __be16 port, __u8 proto)
{
	__u64 h = canary_vip_hash(addr, port, proto);

	filter[canary_vip_word(h)] |= canary_vip_bit(h);
}

static bool model_bit_has(const __u64 *filter, __be32 addr, __be16 port, __u8 proto)
{
	__u64 h = canary_vip_hash(addr, port, proto);

	return (filter[canary_vip_word(h)] & canary_vip_bit(h)) != 0;
}

static bool model_filter_has(const struct canary_ct_key *t)
{
	return model_bit_has(model_filter, t->daddr, t->dport, t->proto);
}

/* Could the packet's source be a backend? If not, egress looks nothing up. */
static bool model_backend_has(const struct canary_ct_key *t)
{
	return model_bit_has(model_backends, t->saddr, t->sport, t->proto);
}

static int svc_write(const struct svc_def *d, __u32 generation)
{
	struct canary_service s;

	memset(&s, 0, sizeof(s));
	s.id = d->id;
	s.generation = generation;
	s.seed = 0x5eed0000U + d->id;
	s.weight = d->weight;
	s.affinity = d->affinity;
	s.flags = d->flags;
	snprintf(s.name, sizeof(s.name), "%s", d->name);
	for (int v = 0; v < CANARY_V_COUNT; v++) {
		s.n_backends[v] = d->n_be[v];
		memcpy(s.backends[v], d->be[v], sizeof(d->be[v]));
		for (int i = 0; i < CANARY_MAX_BACKENDS; i++)
			if (d->be[v][i].addr)
				model_bit_add(model_backends, d->be[v][i].addr, d->be[v][i].port,
					      d->key.proto);
	}
	model_bit_add(model_filter, d->key.vip, d->key.port, d->key.proto);
	return fixture_svc_put(&fx, &d->key, &s, BPF_ANY);
}

static int override_write(const struct svc_def *d)
{
	struct canary_override_key k = { .prefixlen = 32 + d->ovr_len,
					 .svc_id = d->id,
					 .addr = d->ovr_net };
	struct canary_override v = { .version = d->ovr_version };

	return bpf_map_update_elem(fx.ovr_fd, &k, &v, BPF_ANY) ? -errno : 0;
}

static int configure(void)
{
	int err = 0;

	for (int i = 0; i < N_SVC && !err; i++)
		err = svc_write(&svcs[i], 1);
	for (int i = 0; i < N_SVC && !err; i++)
		err = override_write(&svcs[i]);
	return err;
}

static bool ct_get(const struct canary_ct_key *k, struct canary_ct_entry *e)
{
	return bpf_map_lookup_elem(fx.ct_fd, k, e) == 0;
}

/* A flow's entry in conntrack or, *half set, in the half-open table (ct_syn_v<N>). */
static bool ct_find(const struct canary_ct_key *k, struct canary_ct_entry *e, bool *half)
{
	*half = false;
	if (ct_get(k, e))
		return true;
	*half = bpf_map_lookup_elem(fx.ct_syn_fd, k, e) == 0;
	return *half;
}

/* ------------------------------------------------------------------------ */
/* A model of parse_ipv4() (bpf/lib/parse.h), on the frame bytes. */

#define M_OK CANARY_R_COUNT

struct mpkt {
	struct canary_ct_key tuple;
	__u32 l4_off, payload_off, payload_len, ip_len, seq, ack_seq;
	__u8 tcp_flags;
	bool no_l4_hdr; /* a later fragment: ports from frags_v<N> */
};

/* parse_later_fragment(): the ports its first fragment left in frags_v<N>. */
static int model_later_fragment(const __u8 *ip, struct mpkt *p)
{
	struct canary_frag_key k = { .proto = ip[PKT_IP_PROTO] };
	struct canary_frag_ports ports;

	memcpy(&k.saddr, ip + PKT_IP_SADDR, 4);
	memcpy(&k.daddr, ip + PKT_IP_DADDR, 4);
	memcpy(&k.id, ip + 4, 2);
	if (bpf_map_lookup_elem(fx.frags_fd, &k, &ports))
		return CANARY_R_FRAGMENT;
	p->tuple.sport = ports.sport;
	p->tuple.dport = ports.dport;
	p->no_l4_hdr = true;
	p->payload_off = p->l4_off;
	return M_OK;
}

static int model_parse(const __u8 *f, size_t len, struct mpkt *p)
{
	const __u8 *ip = f + PKT_IP_OFF;
	__u32 ihl, end, frag;

	memset(p, 0, sizeof(*p));
	if (len < PKT_ETH_LEN)
		return CANARY_R_MALFORMED;
	if (pkt_get16(f + 12) != PKT_ETH_P_IP)
		return CANARY_R_NOT_IPV4;
	if (len < PKT_ETH_LEN + PKT_IP_MIN)
		return CANARY_R_MALFORMED;
	ihl = (__u32)(ip[0] & 0x0f) * 4;
	p->ip_len = pkt_get16(ip + PKT_IP_TOT_LEN);
	if ((ip[0] >> 4) != 4 || ihl < PKT_IP_MIN || p->ip_len < ihl)
		return CANARY_R_MALFORMED;
	frag = pkt_get16(ip + PKT_IP_FRAG) & 0x3fff;
	if (frag && ip[PKT_IP_PROTO] != IPPROTO_TCP && ip[PKT_IP_PROTO] != IPPROTO_UDP)
		return CANARY_R_FRAGMENT;
	memcpy(&p->tuple.saddr, ip + PKT_IP_SADDR, 4);
	memcpy(&p->tuple.daddr, ip + PKT_IP_DADDR, 4);
	p->tuple.proto = ip[PKT_IP_PROTO];
	p->l4_off = PKT_ETH_LEN + ihl;
	if (frag & PKT_IP_OFFMASK)
		return p->l4_off > len ? CANARY_R_MALFORMED : model_later_fragment(ip, p);
	if (p->tuple.proto == IPPROTO_TCP) {
		const __u8 *tcp = f + p->l4_off;

		if (p->l4_off + PKT_TCP_MIN > len)
			return CANARY_R_MALFORMED;
		if ((tcp[12] >> 4) * 4 < PKT_TCP_MIN)
			return CANARY_R_MALFORMED;
		memcpy(&p->tuple.sport, tcp, 2);
		memcpy(&p->tuple.dport, tcp + 2, 2);
		p->seq = pkt_get32(tcp + PKT_TCP_SEQ);
		p->ack_seq = pkt_get32(tcp + PKT_TCP_SEQ + 4);
		p->tcp_flags = tcp[13];
		p->payload_off = p->l4_off + (__u32)(tcp[12] >> 4) * 4;
	} else if (p->tuple.proto == IPPROTO_UDP) {
		if (p->l4_off + PKT_UDP_LEN > len)
			return CANARY_R_MALFORMED;
		memcpy(&p->tuple.sport, f + p->l4_off, 2);
		memcpy(&p->tuple.dport, f + p->l4_off + 2, 2);
		p->payload_off = p->l4_off + PKT_UDP_LEN;
	} else {
		return CANARY_R_NOT_TCP_UDP;
	}
	end = PKT_ETH_LEN + p->ip_len;
	if (p->payload_off > end)
		return CANARY_R_MALFORMED;
	p->payload_len = frag ? 0 : end - p->payload_off; /* a first fragment is not sniffed */
	return M_OK;
}

/*
 * A model of icmp_parse_error() (bpf/lib/icmp.h): what an ICMP error quotes.
 * Nothing past the IP datagram, nor past a quoted TCP checksum behind the
 * longest headers, is read.
 */
#define M_ICMP_QUOTE_END (PKT_ETH_LEN + 60 + PKT_ICMP_LEN + 60 + 18)

struct mquote {
	struct canary_ct_key tuple;
	__u32 ip_off, ihl, l4_off;
	__u32 csum_off; /* the quoted TCP/UDP checksum, rewritten; 0: not quoted, or UDP's 0 */
	__u32 end;	/* of what may be read */
};

static int model_icmp(const __u8 *f, size_t len, const struct mpkt *p, struct mquote *q)
{
	size_t end = PKT_ETH_LEN + p->ip_len, off = p->l4_off, csum_rel;
	const __u8 *in;
	__u8 type;

	memset(q, 0, sizeof(*q));
	if (end > M_ICMP_QUOTE_END)
		end = M_ICMP_QUOTE_END;
	if (end > len)
		end = len;
	q->end = (__u32)end;
	if (off + PKT_ICMP_LEN > end)
		return CANARY_R_MALFORMED;
	type = f[off];
	if (type != 3 && type != 11 && type != 12)
		return CANARY_R_NOT_TCP_UDP;
	if (off + PKT_ICMP_LEN + PKT_IP_MIN > end)
		return CANARY_R_MALFORMED;
	in = f + off + PKT_ICMP_LEN;
	q->ihl = (__u32)(in[0] & 0x0f) * 4;
	if ((in[0] >> 4) != 4 || q->ihl < PKT_IP_MIN)
		return CANARY_R_MALFORMED;
	if (in[PKT_IP_PROTO] != IPPROTO_TCP && in[PKT_IP_PROTO] != IPPROTO_UDP)
		return CANARY_R_NOT_TCP_UDP;
	if (pkt_get16(in + PKT_IP_FRAG) & PKT_IP_OFFMASK)
		return CANARY_R_NOT_TCP_UDP; /* a later fragment quotes no ports */
	q->ip_off = (__u32)off + PKT_ICMP_LEN;
	q->l4_off = q->ip_off + q->ihl;
	if (q->l4_off + 4 > end)
		return CANARY_R_MALFORMED;
	memcpy(&q->tuple.saddr, in + PKT_IP_SADDR, 4);
	memcpy(&q->tuple.daddr, in + PKT_IP_DADDR, 4);
	memcpy(&q->tuple.sport, f + q->l4_off, 2);
	memcpy(&q->tuple.dport, f + q->l4_off + 2, 2);
	q->tuple.proto = in[PKT_IP_PROTO];
	csum_rel = q->tuple.proto == IPPROTO_TCP ? PKT_TCP_CHECK : PKT_UDP_CHECK;
	if (q->l4_off + csum_rel + 2 <= end &&
	    (q->tuple.proto == IPPROTO_TCP || pkt_get16(f + q->l4_off + csum_rel)))
		q->csum_off = q->l4_off + (__u32)csum_rel;
	return M_OK;
}

/*
 * egress_reverse_entry() of bpf/canary.bpf.c: a backend's SYN-ACK or RST
 * reads the half-open table first, any other packet conntrack first.
 */
static bool reverse_find(const struct mpkt *m, struct canary_ct_entry *e, bool *half)
{
	bool answers_syn =
		m->tuple.proto == IPPROTO_TCP && (m->tcp_flags & (PKT_TCP_SYN | PKT_TCP_RST));

	if (answers_syn && !bpf_map_lookup_elem(fx.ct_syn_fd, &m->tuple, e) &&
	    (e->flags & CANARY_CT_F_REVERSE)) {
		*half = true;
		return true;
	}
	*half = false;
	if (ct_get(&m->tuple, e))
		return true;
	*half = !answers_syn && bpf_map_lookup_elem(fx.ct_syn_fd, &m->tuple, e) == 0;
	return *half;
}

/* ct_is_port_reuse() of bpf/lib/conntrack.h. */
static bool model_port_reuse(const struct mpkt *p, const struct canary_ct_entry *e)
{
	if (p->tuple.proto != IPPROTO_TCP)
		return false;
	if ((p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) != PKT_TCP_SYN)
		return false;
	if (e->flags & (CANARY_CT_F_RST_SEEN | CANARY_CT_F_FIN_SEEN | CANARY_CT_F_RESTEERED))
		return true;
	/* Not a retransmitted SYN (with or without its Fast Open data): a new connection. */
	if (e->flags & CANARY_CT_F_CSEQ_VALID)
		return e->client_seq_end - (p->seq + 1) >= 65536U;
	return (e->flags & (CANARY_CT_F_ESTABLISHED | CANARY_CT_F_MIDFLOW)) != 0;
}

/*
 * syn_handshake_done() of bpf/lib/synstate.h: the client's plain ACK of the
 * SYN-ACK seen on egress moves a half-open flow to conntrack.
 */
static bool model_handshake_done(const struct mpkt *p, const struct canary_ct_entry *e)
{
	__u32 answered = CANARY_CT_F_ESTABLISHED | CANARY_CT_F_SSEQ_VALID;

	if (p->tuple.proto != IPPROTO_TCP || p->no_l4_hdr)
		return false;
	if ((p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK | PKT_TCP_RST)) != PKT_TCP_ACK)
		return false;
	return (e->flags & answered) == answered && e->server_seq_end - p->ack_seq < 65536U;
}

/* http_probe() counting opaque: first client payload of an HTTP flow is TLS or "PRI ". */
static bool model_opaque(const struct frame *in, const struct mpkt *p, __u32 flags, bool xdp)
{
	const __u8 *b;

	if (p->tuple.proto != IPPROTO_TCP || !(flags & CANARY_CT_F_HTTP) || !p->payload_len ||
	    (flags & CANARY_CT_F_PROBED) || p->payload_len < 12)
		return false;
	if (p->payload_off + 12 > in->len || (xdp && p->payload_off > PKT_ETH_LEN + 120))
		return false;
	b = in->b + p->payload_off;
	return (b[0] == 0x16 && b[1] == 0x03) || !memcmp(b, "PRI ", 4);
}

/* ------------------------------------------------------------------------ */
/* Expected and measured totals. */

static struct {
	__u64 reasons[CANARY_R_COUNT];
	__u64 pk_in[N_SVC][CANARY_V_COUNT], by_in[N_SVC][CANARY_V_COUNT];
	__u64 pk_out[N_SVC][CANARY_V_COUNT], by_out[N_SVC][CANARY_V_COUNT];
	__u64 opened[N_SVC][CANARY_V_COUNT];
} want;

static struct {
	unsigned long run[P_COUNT], refused[P_COUNT], translated[P_COUNT], dropped[P_COUNT];
	unsigned long ingress_runs, ingress_reverse_hits, egress_reverse_hits;
	unsigned long ip_csum_valid_in, l4_csum_valid_in, udp_zero_in, csum_off_in;
	unsigned long mutated, random, resets_marked, weight_changes, ct_clears, checks;
	unsigned long killswitch_toggles;
	unsigned long later_frags;     /* translated by the ports of their first fragment */
	unsigned long egress_unparsed; /* counted under malformed or fragment */
	unsigned long expiry_passes, expired;
	unsigned long created_since_clear;
	unsigned long half_open_since_clear, half_open_created, promoted;
	unsigned long icmp_errors;	  /* generated */
	unsigned long icmp_translated[2]; /* [0] egress, [1] ingress */
	unsigned long egress_icmp;	  /* counted on egress: icmp_error_out, icmp_no_flow */
} st;

/* ------------------------------------------------------------------------ */
/* Live flows, for data, FINs and replies. */

struct flow {
	__u8 proto;
	__be32 client, vip, be_addr;
	__be16 cport, vport, be_port;
	__u32 cseq, sseq;
};

static struct flow pool[POOL_SIZE];
static unsigned int pool_n, pool_next;

static void pool_add(const struct mpkt *p, __be32 be_addr, __be16 be_port)
{
	struct flow *f = &pool[pool_next];

	f->proto = p->tuple.proto;
	f->client = p->tuple.saddr;
	f->cport = p->tuple.sport;
	f->vip = p->tuple.daddr;
	f->vport = p->tuple.dport;
	f->be_addr = be_addr;
	f->be_port = be_port;
	f->cseq = p->seq + 1;
	f->sseq = (__u32)rnd64();
	pool_next = (pool_next + 1) % POOL_SIZE;
	if (pool_n < POOL_SIZE)
		pool_n++;
}

static struct flow *pool_pick(__u8 proto)
{
	for (int tries = 0; tries < 8 && pool_n; tries++) {
		struct flow *f = &pool[rnd(pool_n)];

		if (f->proto == proto)
			return f;
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Frame generators. */

static const char http_get[] = "GET /index.html HTTP/1.1\r\nHost: web\r\n\r\n";
static const char http_200[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
static const char http_503[] = "HTTP/1.1 503 Service Unavailable\r\n\r\n";
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const __u8 tls_hello[] = { 0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00,
				  0x2b, 0x03, 0x03, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a };
static const __u8 ip_opts_nop[] = { 0x01, 0x01, 0x01, 0x00 };
static const __u8 ip_opts_rr[] = { 0x07, 0x07, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00 };
static const __u8 tcp_opts_mss[] = { 0x02, 0x04, 0x05, 0xb4 };
static const __u8 tcp_opts_ts[] = { 0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 0 };

static __be32 rnd_client(void)
{
	static const __u8 nets[] = { 1, 7, 8 }; /* 7 and 8 are the override CIDRs */

	return PKT_IP4(192, 168, nets[rnd(3)], 1 + rnd(32));
}

static __be16 rnd_cport(void)
{
	return htons((__u16)(20000 + rnd(8192)));
}

static void spec_options(struct pkt_spec *s)
{
	if (chance(15)) {
		s->ip_opts = chance(50) ? ip_opts_nop : ip_opts_rr;
		s->ip_opts_len =
			s->ip_opts == ip_opts_nop ? sizeof(ip_opts_nop) : sizeof(ip_opts_rr);
	}
	if (s->proto == IPPROTO_TCP && chance(30)) {
		s->tcp_opts = chance(50) ? tcp_opts_mss : tcp_opts_ts;
		s->tcp_opts_len =
			s->tcp_opts == tcp_opts_mss ? sizeof(tcp_opts_mss) : sizeof(tcp_opts_ts);
	}
	if (chance(5))
		s->pad_to = 60 + rnd(40); /* Ethernet padding after the datagram */
	s->frag = chance(70) ? PKT_IP_DF : 0;
	s->ip_id = (__u16)rnd(65536);
	s->ttl = (__u8)(1 + rnd(255));
}

static __u8 payload_buf[512];

static void spec_payload(struct pkt_spec *s, bool reply)
{
	switch (rnd(6)) {
	case 0:
		s->payload = reply ? http_200 : http_get;
		s->payload_len = reply ? sizeof(http_200) - 1 : sizeof(http_get) - 1;
		break;
	case 1:
		s->payload = reply ? http_503 : h2_preface;
		s->payload_len = reply ? sizeof(http_503) - 1 : sizeof(h2_preface) - 1;
		break;
	case 2:
		s->payload = tls_hello;
		s->payload_len = sizeof(tls_hello);
		break;
	case 3:
		s->payload_len = 0;
		break;
	default:
		s->payload_len = rnd(sizeof(payload_buf));
		rnd_bytes(payload_buf, s->payload_len);
		s->payload = payload_buf;
		break;
	}
}

static void build(struct frame *fr, const struct pkt_spec *s)
{
	fr->len = (__u32)pkt_build(fr->b, sizeof(fr->b), s);
}

/* Client SYN to the web VIP (sometimes to the UDP VIP's port, or elsewhere). */
static void gen_syn(struct frame *fr)
{
	struct pkt_spec s = { 0 };

	s.saddr = rnd_client();
	s.sport = rnd_cport();
	s.daddr = svcs[0].key.vip;
	s.dport = svcs[0].key.port;
	s.proto = IPPROTO_TCP;
	s.tcp_flags = chance(90) ? PKT_TCP_SYN : PKT_TCP_SYN | (__u8)rnd(256);
	s.seq = (__u32)rnd64();
	spec_options(&s);
	if (chance(10)) /* TCP Fast Open: the request on the SYN */
		spec_payload(&s, false);
	build(fr, &s);
}

/* Client data, FIN or RST on a live flow (or on a tuple never seen). */
static void gen_client_tcp(struct frame *fr)
{
	struct flow *f = pool_pick(IPPROTO_TCP);
	struct pkt_spec s = { 0 };
	static const __u8 flags[] = {
		PKT_TCP_ACK | PKT_TCP_PSH,
		PKT_TCP_ACK | PKT_TCP_PSH,
		PKT_TCP_ACK,
		PKT_TCP_ACK | PKT_TCP_FIN,
		PKT_TCP_RST,
		PKT_TCP_SYN,
	};

	s.proto = IPPROTO_TCP;
	if (f && chance(90)) {
		s.saddr = f->client;
		s.sport = f->cport;
		s.daddr = f->vip;
		s.dport = f->vport;
		s.seq = chance(85) ? f->cseq : f->cseq - rnd(100); /* sometimes a retransmit */
		s.ack = f->sseq;
	} else {
		s.saddr = rnd_client();
		s.sport = rnd_cport();
		s.daddr = svcs[0].key.vip;
		s.dport = svcs[0].key.port;
		s.seq = (__u32)rnd64();
	}
	s.tcp_flags = flags[rnd(sizeof(flags))];
	spec_options(&s);
	if (!(s.tcp_flags & (PKT_TCP_RST | PKT_TCP_SYN)))
		spec_payload(&s, false);
	if (f && s.saddr == f->client)
		f->cseq += (__u32)s.payload_len + ((s.tcp_flags & PKT_TCP_FIN) ? 1 : 0);
	build(fr, &s);
}

/* Client datagram to the UDP VIP. */
static void gen_udp(struct frame *fr)
{
	struct flow *f = chance(50) ? pool_pick(IPPROTO_UDP) : NULL;
	struct pkt_spec s = { 0 };

	s.proto = IPPROTO_UDP;
	s.saddr = f ? f->client : rnd_client();
	s.sport = f ? f->cport : rnd_cport();
	s.daddr = svcs[1].key.vip;
	s.dport = svcs[1].key.port;
	s.udp_no_csum = chance(20);
	spec_options(&s);
	s.payload_len = rnd(200);
	rnd_bytes(payload_buf, s.payload_len);
	s.payload = payload_buf;
	build(fr, &s);
}

/* A backend's answer on a live flow: SYN-ACK, data, FIN, RST, or a datagram. */
static bool gen_reply(struct frame *fr)
{
	struct flow *f = pool_pick(chance(70) ? IPPROTO_TCP : IPPROTO_UDP);
	struct pkt_spec s = { 0 };
	static const __u8 flags[] = {
		PKT_TCP_SYN | PKT_TCP_ACK, PKT_TCP_ACK | PKT_TCP_PSH,
		PKT_TCP_ACK | PKT_TCP_PSH, PKT_TCP_ACK,
		PKT_TCP_ACK | PKT_TCP_FIN, PKT_TCP_RST,
		PKT_TCP_RST | PKT_TCP_ACK,
	};

	if (!f)
		return false;
	s.proto = f->proto;
	s.saddr = f->be_addr;
	s.sport = f->be_port;
	s.daddr = f->client;
	s.dport = f->cport;
	s.seq = chance(85) ? f->sseq : f->sseq - rnd(100);
	s.ack = f->cseq;
	spec_options(&s);
	if (s.proto == IPPROTO_TCP) {
		s.tcp_flags = flags[rnd(sizeof(flags))];
		if (!(s.tcp_flags & (PKT_TCP_RST | PKT_TCP_SYN)))
			spec_payload(&s, true);
		f->sseq += (__u32)s.payload_len + ((s.tcp_flags & PKT_TCP_SYN) ? 1 : 0);
	} else {
		s.udp_no_csum = chance(20);
		s.payload_len = rnd(200);
		rnd_bytes(payload_buf, s.payload_len);
		s.payload = payload_buf;
	}
	build(fr, &s);
	return true;
}

/*
 * Fragments of one datagram at a time (a client's to a VIP, or a backend's
 * answer): the first one, then the later ones in order, or, now and then, a
 * later one before its first (which cannot be placed).
 */
static void fix_ip_csum(struct frame *fr);
static void gen_random(struct frame *fr);

static struct {
	struct frame whole;
	size_t l4, next; /* L4 byte offset of the next fragment */
	bool reply;
} frag_state;

static void frag_start(void)
{
	struct frame *w = &frag_state.whole;

	frag_state.reply = chance(40) && gen_reply(w);
	if (!frag_state.reply)
		chance(50) ? gen_udp(w) : gen_client_tcp(w);
	pkt_put16(w->b + PKT_IP_OFF + 4, (__u16)rnd64()); /* a fresh datagram id */
	frag_state.l4 = pkt_l4_off(w->b, w->len);
	frag_state.next = chance(10) ? 8 * (1 + rnd(4)) : 0;
}

/* The next fragment, 8 to 64 bytes of L4 data; returns whether it is a reply. */
static bool gen_fragment(struct frame *fr)
{
	const struct frame *w = &frag_state.whole;
	size_t left, len;
	__u16 more;
	__u8 *ip = fr->b + PKT_IP_OFF;

	if (!frag_state.l4 || frag_state.l4 + frag_state.next >= w->len)
		frag_start();
	if (!frag_state.l4 || frag_state.l4 + frag_state.next >= w->len) {
		gen_random(fr);
		return false;
	}
	left = w->len - frag_state.l4 - frag_state.next;
	len = 8 * (1 + rnd(8));
	more = len < left ? PKT_IP_MF : 0;
	if (!more)
		len = left;
	memcpy(fr->b, w->b, frag_state.l4);
	memcpy(fr->b + frag_state.l4, w->b + frag_state.l4 + frag_state.next, len);
	fr->len = (__u32)(frag_state.l4 + len);
	pkt_put16(ip + PKT_IP_TOT_LEN, (__u16)(fr->len - PKT_IP_OFF));
	pkt_put16(ip + PKT_IP_FRAG, (__u16)(more | (frag_state.next / 8)));
	fix_ip_csum(fr);
	frag_state.next += len;
	return frag_state.reply;
}

/* ICMP to a VIP, ARP, IPv6+TCP. */
static void gen_other(struct frame *fr)
{
	static const __u8 v6a[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	static const __u8 v6b[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2 };

	switch (rnd(3)) {
	case 0:
		rnd_bytes(payload_buf, 32);
		fr->len = (__u32)pkt_build_icmp_echo(fr->b, sizeof(fr->b), rnd_client(),
						     svcs[rnd(N_SVC)].key.vip, payload_buf, 32);
		break;
	case 1:
		fr->len = (__u32)pkt_build_arp(fr->b, sizeof(fr->b), rnd_client(), svcs[0].key.vip);
		break;
	default:
		fr->len = (__u32)pkt_build_ipv6_tcp(fr->b, sizeof(fr->b), v6a, v6b, rnd_cport(),
						    PKT_BE16(80), PKT_TCP_SYN);
		break;
	}
}

/*
 * An ICMP error about a live flow: quoting a reply (VIP -> client) sent to
 * the VIP by a router or the client, or a request (client -> backend) sent
 * to the client by the node or the backend. Now and then of another type,
 * or quoting a port no flow uses. Returns whether it is egress's.
 */
static bool gen_icmp_error(struct frame *fr)
{
	static const __u8 types[] = { 3, 3, 3, 11, 12, 0, 5 };
	struct flow *f = pool_pick(chance(60) ? IPPROTO_TCP : IPPROTO_UDP);
	__u8 type = types[rnd(sizeof(types))];
	bool about_reply = chance(50);
	struct pkt_spec q = { 0 };
	__be32 src, dst;

	if (!f) {
		gen_other(fr);
		return false;
	}
	q.proto = f->proto;
	q.saddr = about_reply ? f->vip : f->client;
	q.sport = about_reply ? f->vport : f->cport;
	q.daddr = about_reply ? f->client : f->be_addr;
	q.dport = about_reply ? f->cport : f->be_port;
	if (chance(10))
		q.dport ^= htons(0x0100); /* a flow we do not know */
	q.seq = about_reply ? f->sseq : f->cseq;
	q.tcp_flags = PKT_TCP_ACK | PKT_TCP_PSH;
	q.frag = PKT_IP_DF;
	spec_options(&q);
	q.udp_no_csum = q.proto == IPPROTO_UDP && chance(20);
	q.payload_len = rnd(300);
	rnd_bytes(payload_buf, q.payload_len);
	q.payload = payload_buf;
	if (about_reply) {
		src = chance(50) ? PKT_IP4(172, 16, 0, 1) : f->client;
		dst = f->vip;
	} else {
		src = chance(50) ? PKT_IP4(10, 0, 0, 1) : f->be_addr;
		dst = f->client;
	}
	fr->len = (__u32)pkt_build_icmp_about(fr->b, sizeof(fr->b), src, dst, type,
					      (__u8)(type == 3 ? rnd(5) : 0), &q,
					      chance(50) ? PKT_IP_MIN + rnd(60) : 548);
	st.icmp_errors++;
	return !about_reply;
}

/* Purely random bytes; half the time with an IPv4 ethertype and version. */
static void gen_random(struct frame *fr)
{
	fr->len = PKT_ETH_LEN + rnd(400);
	rnd_bytes(fr->b, fr->len);
	if (chance(50) && fr->len >= PKT_ETH_LEN + 1) {
		pkt_put16(fr->b + 12, PKT_ETH_P_IP);
		fr->b[PKT_IP_OFF] = (__u8)(0x40 | (fr->b[PKT_IP_OFF] & 0x0f));
	}
	st.random++;
}

/* ------------------------------------------------------------------------ */
/* Mutations. */

static __be32 rnd_addr(void)
{
	switch (rnd(5)) {
	case 0:
		return svcs[rnd(N_SVC)].key.vip;
	case 1: {
		const struct svc_def *d = &svcs[rnd(N_SVC)];
		int v = (int)rnd(CANARY_V_COUNT);

		return d->be[v][rnd(d->n_be[v])].addr;
	}
	case 2:
		return rnd_client();
	default:
		return (__be32)rnd64();
	}
}

static __be16 rnd_port(void)
{
	switch (rnd(4)) {
	case 0:
		return svcs[rnd(N_SVC)].key.port;
	case 1: {
		const struct svc_def *d = &svcs[rnd(N_SVC)];

		return d->be[0][0].port;
	}
	case 2:
		return rnd_cport();
	default:
		return (__be16)rnd64();
	}
}

/* Recompute the IPv4 header checksum, if the header is there. */
static void fix_ip_csum(struct frame *fr)
{
	size_t l4 = pkt_l4_off(fr->b, fr->len);

	if (!l4)
		return;
	pkt_put16(fr->b + PKT_IP_OFF + PKT_IP_CHECK, 0);
	pkt_put16(fr->b + PKT_IP_OFF + PKT_IP_CHECK,
		  pkt_fold(pkt_sum(0, fr->b + PKT_IP_OFF, l4 - PKT_IP_OFF)));
}

/* Recompute the TCP/UDP checksum over the segment tot_len announces, if it is all there. */
static void fix_l4_csum(struct frame *fr)
{
	size_t l4 = pkt_l4_off(fr->b, fr->len), seg, off;
	const __u8 *ip = fr->b + PKT_IP_OFF;
	__u8 proto;
	__u16 c;

	if (!l4 || pkt_get16(ip + PKT_IP_TOT_LEN) < l4 - PKT_IP_OFF)
		return;
	seg = pkt_get16(ip + PKT_IP_TOT_LEN) - (l4 - PKT_IP_OFF);
	proto = ip[PKT_IP_PROTO];
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return;
	off = proto == IPPROTO_TCP ? PKT_TCP_CHECK : PKT_UDP_CHECK;
	if (l4 + seg > fr->len || seg < off + 2)
		return;
	if (proto == IPPROTO_UDP && !pkt_get16(fr->b + l4 + off) && chance(50))
		return; /* keep "no checksum" */
	pkt_put16(fr->b + l4 + off, 0);
	c = pkt_fold(pkt_sum(pkt_pseudo_sum(ip, proto, seg), fr->b + l4, seg));
	pkt_put16(fr->b + l4 + off, proto == IPPROTO_UDP && !c ? 0xffff : c);
}

static void mutate_once(struct frame *fr)
{
	__u8 *ip = fr->b + PKT_IP_OFF;
	size_t l4 = PKT_ETH_LEN + (size_t)(ip[0] & 0x0f) * 4;

	switch (rnd(16)) {
	case 0: /* a byte anywhere */
		fr->b[rnd(fr->len)] = (__u8)rnd64();
		break;
	case 1: /* a bit in the headers */
		fr->b[rnd(fr->len < 74 ? fr->len : 74)] ^= (__u8)(1U << rnd(8));
		break;
	case 2: /* truncate: never below the Ethernet header (the kernel refuses those) */
		fr->len = PKT_ETH_LEN + rnd(fr->len - PKT_ETH_LEN + 1);
		break;
	case 3: { /* pad or extend with random bytes */
		__u32 add = 1 + rnd(64);

		if (fr->len + add <= sizeof(fr->b)) {
			rnd_bytes(fr->b + fr->len, add);
			fr->len += add;
		}
		break;
	}
	case 4: /* ihl */
		if (fr->len > PKT_IP_OFF)
			ip[0] = (__u8)((ip[0] & 0xf0) | rnd(16));
		break;
	case 5: /* version */
		if (fr->len > PKT_IP_OFF)
			ip[0] = (__u8)((rnd(16) << 4) | (ip[0] & 0x0f));
		break;
	case 6: /* tot_len: random, or a little off */
		if (fr->len >= PKT_IP_OFF + 4)
			pkt_put16(ip + PKT_IP_TOT_LEN,
				  chance(50) ?
					  (__u16)rnd(65536) :
					  (__u16)(pkt_get16(ip + PKT_IP_TOT_LEN) + rnd(41) - 20));
		break;
	case 7: /* fragment bits */
		if (fr->len >= PKT_IP_OFF + 8)
			pkt_put16(ip + PKT_IP_FRAG,
				  (__u16)(chance(50) ? rnd(65536) : (PKT_IP_MF * rnd(2)) | rnd(2)));
		break;
	case 8: { /* protocol */
		static const __u8 protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, 0, 255 };

		if (fr->len > PKT_IP_OFF + PKT_IP_PROTO)
			ip[PKT_IP_PROTO] =
				chance(80) ? protos[rnd(sizeof(protos))] : (__u8)rnd(256);
		break;
	}
	case 9: /* addresses */
		if (fr->len >= PKT_IP_OFF + 20) {
			__be32 a = rnd_addr();

			memcpy(ip + (chance(50) ? PKT_IP_SADDR : PKT_IP_DADDR), &a, 4);
		}
		break;
	case 10: /* ports */
		if (l4 + 4 <= fr->len) {
			__be16 p = rnd_port();

			memcpy(fr->b + l4 + (chance(50) ? PKT_L4_SPORT : PKT_L4_DPORT), &p, 2);
		}
		break;
	case 11: /* TCP flags */
		if (l4 + 14 <= fr->len)
			fr->b[l4 + 13] = (__u8)rnd(256);
		break;
	case 12: /* TCP data offset */
		if (l4 + 13 <= fr->len)
			fr->b[l4 + 12] = (__u8)((rnd(16) << 4) | (fr->b[l4 + 12] & 0x0f));
		break;
	case 13: /* UDP length, or the checksum field */
		if (l4 + 8 <= fr->len)
			pkt_put16(fr->b + l4 + (chance(50) ? 4 : PKT_UDP_CHECK),
				  chance(30) ? 0 : (__u16)rnd(65536));
		break;
	case 14: { /* ethertype */
		static const __u16 types[] = { PKT_ETH_P_IP, PKT_ETH_P_IPV6, PKT_ETH_P_ARP,
					       0x8100,	     0x0000,	     0x05dc };

		pkt_put16(fr->b + 12, chance(80) ? types[rnd(sizeof(types) / 2)] : (__u16)rnd64());
		break;
	}
	default: /* a run of random bytes in the headers */
		if (fr->len > PKT_IP_OFF) {
			__u32 at = PKT_IP_OFF + rnd(fr->len - PKT_IP_OFF);
			__u32 n = 1 + rnd(8);

			if (at + n > fr->len)
				n = fr->len - at;
			rnd_bytes(fr->b + at, n);
		}
		break;
	}
}

static void mutate(struct frame *fr)
{
	int n = 1 + (int)rnd(4);

	for (int i = 0; i < n; i++)
		mutate_once(fr);
	if (chance(50))
		fix_ip_csum(fr);
	if (chance(50))
		fix_l4_csum(fr);
	st.mutated++;
}

/* ------------------------------------------------------------------------ */
/* Running one frame and checking the output. */

/*
 * BPF_PROG_TEST_RUN refuses (-EINVAL) tc runs of an IPv4 frame with less
 * than 20 bytes after the Ethernet header, or an IPv6 one with less than 40
 * (6.18; measured): the programs never see those on tc. Nothing else may be
 * refused.
 */
static bool kernel_may_refuse(enum prog p, const struct frame *in)
{
	__u16 type = pkt_get16(in->b + 12);

	if (p == P_XDP_IN)
		return false;
	return (type == PKT_ETH_P_IP && in->len < PKT_ETH_LEN + PKT_IP_MIN) ||
	       (type == PKT_ETH_P_IPV6 && in->len < PKT_ETH_LEN + PKT_IPV6_LEN);
}

static int run_prog(enum prog p, const struct frame *in, struct frame *out, __u32 *ret)
{
	struct fixture_run r;
	int err = fixture_test_run(*prog_fd[p], in->b, in->len, out->b, sizeof(out->b), 1, &r);

	out->len = r.out_len;
	*ret = r.retval;
	return err;
}

/* Folded ones'-complement sum of the IPv4 header (0xffff when it verifies). */
static __u16 ip_sum(const struct frame *f)
{
	size_t l4 = pkt_l4_off(f->b, f->len);

	return (__u16)pkt_sum(0, f->b + PKT_IP_OFF, l4 - PKT_IP_OFF);
}

/* Same for the TCP/UDP segment with its pseudo-header; false if not all there. */
static bool l4_sum(const struct frame *f, __u16 *sum)
{
	size_t l4 = pkt_l4_off(f->b, f->len), seg;
	const __u8 *ip = f->b + PKT_IP_OFF;

	if (!l4 || pkt_get16(ip + PKT_IP_TOT_LEN) < l4 - PKT_IP_OFF)
		return false;
	seg = pkt_get16(ip + PKT_IP_TOT_LEN) - (l4 - PKT_IP_OFF);
	if (l4 + seg > f->len ||
	    seg < (ip[PKT_IP_PROTO] == IPPROTO_TCP ? PKT_TCP_MIN : PKT_UDP_LEN))
		return false;
	*sum = (__u16)pkt_sum(pkt_pseudo_sum(ip, ip[PKT_IP_PROTO], seg), f->b + l4, seg);
	return true;
}

/* Two ones'-complement sums equal, +0 and -0 being the same number. */
static bool sums_equal(__u16 a, __u16 b)
{
	return a == b || ((a == 0 || a == 0xffff) && (b == 0 || b == 0xffff));
}

/*
 * The frame was rewritten: only the address at a_off, the port at p_off and
 * the two checksums may differ (c), and the checksums must still add up (b).
 */
static void check_rewrite(unsigned long idx, enum prog p, const struct frame *in,
			  const struct frame *out, const struct mpkt *m, bool dst)
{
	size_t a_off = PKT_IP_OFF + (dst ? PKT_IP_DADDR : PKT_IP_SADDR);
	size_t p_off = m->l4_off + (dst ? PKT_L4_DPORT : PKT_L4_SPORT);
	size_t c_off = m->l4_off + (m->tuple.proto == IPPROTO_TCP ? PKT_TCP_CHECK : PKT_UDP_CHECK);
	__u8 tmp[PKT_MAX];
	__u16 in_sum, out_sum;

	memcpy(tmp, out->b, out->len);
	memcpy(tmp + a_off, in->b + a_off, 4);
	memcpy(tmp + PKT_IP_OFF + PKT_IP_CHECK, in->b + PKT_IP_OFF + PKT_IP_CHECK, 2);
	if (!m->no_l4_hdr) { /* a later fragment's bytes past the IP header are payload */
		memcpy(tmp + p_off, in->b + p_off, 2);
		memcpy(tmp + c_off, in->b + c_off, 2);
	}
	if (memcmp(tmp, in->b, in->len)) {
		size_t i = 0;

		while (tmp[i] == in->b[i])
			i++;
		fail_pkt(C_C, idx, p, in, out, "byte %zu changed outside the rewritten fields", i);
	}

	/* (b) IPv4 header checksum. */
	in_sum = ip_sum(in);
	out_sum = ip_sum(out);
	if (in_sum == 0xffff) {
		st.ip_csum_valid_in++;
		if (!pkt_ipv4_csum_ok(out->b, out->len))
			fail_pkt(C_B, idx, p, in, out,
				 "IPv4 checksum valid on input, not on output");
	} else if (!sums_equal(in_sum, out_sum)) {
		fail_pkt(
			C_B, idx, p, in, out,
			"IPv4 checksum off by a different amount after the rewrite (sum %04x -> %04x)",
			in_sum, out_sum);
	}

	/* (b) TCP/UDP checksum: a later fragment has none, its first one covers it. */
	if (m->no_l4_hdr)
		return;
	if (m->tuple.proto == IPPROTO_UDP) {
		bool zero_in = !pkt_get16(in->b + c_off), zero_out = !pkt_get16(out->b + c_off);

		if (zero_in)
			st.udp_zero_in++;
		if (zero_in != zero_out)
			fail_pkt(C_B, idx, p, in, out, "UDP checksum %s 0 after the rewrite",
				 zero_in ? "no longer" : "became");
		if (zero_in)
			return;
	}
	if (!l4_sum(in, &in_sum))
		return; /* segment not all there: nothing to verify */
	if (!l4_sum(out, &out_sum)) {
		fail_pkt(C_B, idx, p, in, out, "L4 segment no longer checksummable");
		return;
	}
	if (in_sum == 0xffff) {
		st.l4_csum_valid_in++;
		if (!pkt_l4_csum_ok(out->b, out->len))
			fail_pkt(C_B, idx, p, in, out, "%s checksum valid on input, not on output",
				 m->tuple.proto == IPPROTO_TCP ? "TCP" : "UDP");
	} else {
		st.csum_off_in++;
		if (!sums_equal(in_sum, out_sum))
			fail_pkt(
				C_B, idx, p, in, out,
				"L4 checksum off by a different amount after the rewrite (%04x -> %04x)",
				in_sum, out_sum);
	}
}

static void check_untouched(unsigned long idx, enum prog p, const struct frame *in,
			    const struct frame *out, __u32 ret, __u32 pass, const char *why)
{
	if (ret != pass)
		fail_pkt(C_C, idx, p, in, out, "%s: verdict %u, want pass (%u)", why, ret, pass);
	if (memcmp(in->b, out->b, in->len))
		fail_pkt(C_C, idx, p, in, out, "%s: frame changed", why);
}

static __be32 out_addr(const struct frame *f, bool dst)
{
	return pkt_be32_at(f->b + PKT_IP_OFF + (dst ? PKT_IP_DADDR : PKT_IP_SADDR));
}

/* The port the frame carries; a later fragment carries none, so the one it stands for. */
static __be16 out_port(const struct frame *f, const struct mpkt *m, bool dst, __be16 meant)
{
	if (m->no_l4_hdr)
		return meant;
	return pkt_be16_at(f->b + m->l4_off + (dst ? PKT_L4_DPORT : PKT_L4_SPORT));
}

static bool opening(const struct mpkt *m)
{
	return m->tuple.proto == IPPROTO_UDP ||
	       (m->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN;
}

/* (b) for one checksummed region of an ICMP error: valid stays valid, off stays off as much. */
static void check_icmp_sum(unsigned long idx, enum prog p, const struct frame *in,
			   const struct frame *out, size_t off, size_t len, const char *what)
{
	__u16 a = (__u16)pkt_sum(0, in->b + off, len), b = (__u16)pkt_sum(0, out->b + off, len);

	if (a == 0xffff ? b != 0xffff : !sums_equal(a, b))
		fail_pkt(C_B, idx, p, in, out, "%s sum %04x -> %04x after the rewrite", what, a, b);
}

/*
 * An ICMP error about a translated flow (bpf/lib/icmp.h): ingress sends one
 * quoting a reply (VIP -> client) on to the flow's backend; egress restores
 * the VIP in one quoting a request (client -> backend). (a) the quote is
 * rewritten to the flow's entry, (c) only the addresses, the port and the
 * checksums change, (b) every checksum and the frame's whole sum keep their
 * validity. Anything else passes untouched: on ingress counted (not_tcp_udp,
 * malformed, icmp_no_flow), on egress only when it quotes TCP/UDP.
 */
static void icmp_one(unsigned long idx, enum prog p, const struct frame *in,
		     const struct frame *out, __u32 ret, const struct mpkt *m)
{
	bool ingress = p != P_TC_EG, ours, outer;
	__u32 pass = p == P_XDP_IN ? XDP_PASS : TC_ACT_OK;
	__u32 outer_off = PKT_IP_OFF + (ingress ? PKT_IP_DADDR : PKT_IP_SADDR);
	__u32 addr_off, port_off, icmp_end;
	struct canary_ct_key k = { 0 };
	const struct svc_def *d;
	struct canary_ct_entry e;
	struct mquote q;
	__u8 tmp[PKT_MAX];
	__be32 a;
	__be16 port;
	int r = model_icmp(in->b, in->len, m, &q);

	if (r != M_OK) {
		if (ingress)
			want.reasons[r]++;
		check_untouched(idx, p, in, out, ret, pass, "ICMP, not an error about TCP/UDP");
		return;
	}
	k.saddr = q.tuple.daddr;
	k.daddr = q.tuple.saddr;
	k.sport = q.tuple.dport;
	k.dport = q.tuple.sport;
	k.proto = q.tuple.proto;
	ours = ct_get(&k, &e) && !(e.flags & CANARY_CT_F_REVERSE) == ingress &&
	       (!ingress || m->tuple.daddr == q.tuple.saddr);
	if (!ingress)
		st.egress_icmp++;
	if (!ours) {
		want.reasons[CANARY_R_ICMP_NO_FLOW]++;
		check_untouched(idx, p, in, out, ret, pass, "ICMP error about no flow");
		return;
	}
	want.reasons[ingress ? CANARY_R_ICMP_ERROR_IN : CANARY_R_ICMP_ERROR_OUT]++;
	st.icmp_translated[ingress]++;
	if (ret != pass) {
		fail_pkt(C_C, idx, p, in, out, "ICMP error dropped (rewrite failed)");
		return;
	}
	/* (a): the quote names the flow's backend (ingress) or its VIP (egress). */
	addr_off = q.ip_off + (ingress ? PKT_IP_SADDR : PKT_IP_DADDR);
	port_off = q.l4_off + (ingress ? PKT_L4_SPORT : PKT_L4_DPORT);
	a = pkt_be32_at(out->b + addr_off);
	port = pkt_be16_at(out->b + port_off);
	d = svc_by_id(e.svc_id);
	if (a != e.nat_addr || port != e.nat_port)
		fail_pkt(C_A, idx, p, in, out,
			 "quote rewritten to another address than its entry's");
	else if (!d ||
		 (ingress ? be_version(d, a, port) < 0 : svc_by_key(a, port, q.tuple.proto) != d))
		fail_pkt(C_A, idx, p, in, out, "quote rewritten to %s:%u, not %s of its service",
			 inet_ntoa((struct in_addr){ a }), ntohs(port),
			 ingress ? "a backend" : "the VIP");
	outer = pkt_be32_at(in->b + outer_off) == (ingress ? q.tuple.saddr : q.tuple.daddr);
	if (outer && pkt_be32_at(out->b + outer_off) != e.nat_addr)
		fail_pkt(C_A, idx, p, in, out, "outer %s not rewritten with the quote",
			 ingress ? "destination" : "source");

	/* (c): nothing but those fields and the checksums over them. */
	memcpy(tmp, out->b, out->len);
	if (outer) {
		memcpy(tmp + outer_off, in->b + outer_off, 4);
		memcpy(tmp + PKT_IP_OFF + PKT_IP_CHECK, in->b + PKT_IP_OFF + PKT_IP_CHECK, 2);
	}
	memcpy(tmp + m->l4_off + 2, in->b + m->l4_off + 2, 2);
	memcpy(tmp + addr_off, in->b + addr_off, 4);
	memcpy(tmp + q.ip_off + PKT_IP_CHECK, in->b + q.ip_off + PKT_IP_CHECK, 2);
	memcpy(tmp + port_off, in->b + port_off, 2);
	if (q.csum_off)
		memcpy(tmp + q.csum_off, in->b + q.csum_off, 2);
	if (memcmp(tmp, in->b, in->len))
		fail_pkt(C_C, idx, p, in, out, "ICMP error changed outside the rewritten fields");
	if (q.csum_off && !pkt_get16(out->b + q.csum_off) && q.tuple.proto == IPPROTO_UDP)
		fail_pkt(C_B, idx, p, in, out, "quoted UDP checksum became 0");

	/* (b): outer IP header, ICMP message, quoted IP header, the whole frame. */
	icmp_end = PKT_ETH_LEN + m->ip_len < in->len ? PKT_ETH_LEN + m->ip_len : in->len;
	check_icmp_sum(idx, p, in, out, PKT_IP_OFF, m->l4_off - PKT_IP_OFF, "outer IPv4 header");
	check_icmp_sum(idx, p, in, out, m->l4_off, icmp_end - m->l4_off, "ICMP message");
	check_icmp_sum(idx, p, in, out, q.ip_off,
		       q.ip_off + q.ihl <= q.end ? q.ihl : q.end - q.ip_off, "quoted IPv4 header");
	check_icmp_sum(idx, p, in, out, PKT_IP_OFF, in->len - PKT_IP_OFF, "frame");
}

static void ingress_one(unsigned long idx, enum prog p, const struct frame *in)
{
	__u32 pass = p == P_XDP_IN ? XDP_PASS : TC_ACT_OK;
	__u32 drop = p == P_XDP_IN ? XDP_DROP : TC_ACT_SHOT;
	struct canary_ct_entry pre, post;
	const struct svc_def *d = NULL;
	bool have_pre = false, new_flow, steer = false, translated;
	bool pre_half = false, post_half, promote = false, want_half;
	struct frame out = { .len = 0 };
	struct mpkt m;
	int reason, err;
	__u32 ret, flags;

	reason = model_parse(in->b, in->len, &m);
	if (reason == M_OK)
		have_pre = ct_find(&m.tuple, &pre, &pre_half);
	err = run_prog(p, in, &out, &ret);
	if (err == -EINVAL && kernel_may_refuse(p, in)) {
		st.refused[p]++;
		return;
	}
	if (err) {
		fail_pkt(C_C, idx, p, in, NULL, "BPF_PROG_TEST_RUN: %s", strerror(-err));
		return;
	}
	st.run[p]++;
	st.ingress_runs++;
	if (ret != pass && ret != drop)
		fail_pkt(C_C, idx, p, in, &out, "verdict %u is neither pass nor drop", ret);
	if (out.len != in->len) {
		fail_pkt(C_C, idx, p, in, &out, "length %u -> %u", in->len, out.len);
		return;
	}
	if (reason == CANARY_R_NOT_TCP_UDP && m.tuple.proto == IPPROTO_ICMP) {
		icmp_one(idx, p, in, &out, ret, &m);
		return;
	}
	if (reason != M_OK) {
		want.reasons[reason]++;
		check_untouched(idx, p, in, &out, ret, pass, canary_reason_names[reason]);
		return;
	}
	if (!model_filter_has(&m.tuple)) {
		/* No service ever had this destination: not even a conntrack lookup. */
		want.reasons[CANARY_R_NO_SERVICE]++;
		check_untouched(idx, p, in, &out, ret, pass, "no VIP filter bit");
		return;
	}
	if (have_pre && (pre.flags & CANARY_CT_F_REVERSE)) {
		st.ingress_reverse_hits++;
		check_untouched(idx, p, in, &out, ret, pass, "reverse entry on ingress");
		return;
	}
	new_flow = !have_pre || model_port_reuse(&m, &pre);
	if (new_flow) {
		d = svc_by_key(m.tuple.daddr, m.tuple.dport, m.tuple.proto);
		if (!d) {
			want.reasons[CANARY_R_NO_SERVICE]++;
			check_untouched(idx, p, in, &out, ret, pass, "not a VIP");
			return;
		}
		if (!opening(&m))
			want.reasons[CANARY_R_CT_MISS_NON_SYN]++;
	} else {
		d = svc_by_id(pre.svc_id);
		want.reasons[CANARY_R_FORWARD]++;
		/* A flow over (RST or FIN seen) needs no reset. */
		steer = (pre.flags & (CANARY_CT_F_RESET_REQ | CANARY_CT_F_RESTEERED |
				      CANARY_CT_F_RST_SEEN | CANARY_CT_F_FIN_SEEN)) ==
			CANARY_CT_F_RESET_REQ;
		if (!d || svc_by_key(m.tuple.daddr, m.tuple.dport, m.tuple.proto) != d)
			fail_pkt(C_A, idx, p, in, &out,
				 "forward entry of service id %u for a tuple that is not its VIP",
				 pre.svc_id);
		if (!d)
			return;
	}

	/*
	 * (e) The half-open table: a SYN that opens a flow without a conntrack
	 * entry is kept there; only the client's ACK of the SYN-ACK moves it to
	 * conntrack; nothing else does.
	 */
	promote = pre_half && !new_flow && model_handshake_done(&m, &pre);
	want_half = new_flow ?
			    m.tuple.proto == IPPROTO_TCP && opening(&m) && (!have_pre || pre_half) :
			    pre_half && !promote;
	translated = memcmp(in->b, out.b, in->len) != 0;
	if (!ct_find(&m.tuple, &post, &post_half)) {
		if (new_flow && !translated && ret == drop) {
			want.reasons[CANARY_R_CT_FULL]++; /* the insert was refused: dropped */
			return;
		}
		fail_pkt(C_D, idx, p, in, &out, "no forward entry after the packet");
		return;
	}
	if (post_half != want_half) {
		fail_pkt(C_E, idx, p, in, &out,
			 "flow entry in %s after the packet, wanted in %s (%s, flags %#x, ack %#x, "
			 "server seq end %#x)",
			 post_half ? "ct_syn" : "conntrack", want_half ? "ct_syn" : "conntrack",
			 new_flow ? "new flow" :
			 pre_half ? "half-open" :
				    "tracked",
			 pre.flags, m.ack_seq, pre.server_seq_end);
		return;
	}
	if (promote) {
		struct canary_ct_entry left;

		st.promoted++;
		if (!bpf_map_lookup_elem(fx.ct_syn_fd, &m.tuple, &left))
			fail_pkt(C_E, idx, p, in, &out, "promoted flow left in ct_syn");
	}
	if (new_flow) {
		want.reasons[CANARY_R_NEW_FLOW]++;
		if (post_half) {
			st.half_open_since_clear++;
			st.half_open_created++;
		} else {
			st.created_since_clear++;
		}
	}
	if (steer)
		want.reasons[CANARY_R_RESET_STEERED]++;
	flags = new_flow ? ((d->flags & CANARY_SVC_F_HTTP) ? CANARY_CT_F_HTTP : 0) : pre.flags;
	if (model_opaque(in, &m, flags, p == P_XDP_IN))
		want.reasons[CANARY_R_OPAQUE]++;

	/* The packet is the flow's: counted in its version, rewritten to its backend. */
	if (post.svc_id != d->id || (post.flags & CANARY_CT_F_REVERSE)) {
		fail_pkt(C_D, idx, p, in, &out, "entry after the packet: service %u, flags %#x",
			 post.svc_id, post.flags);
		return;
	}
	want.pk_in[d->id - 1][post.version & 1]++;
	want.by_in[d->id - 1][post.version & 1] += m.ip_len;
	if (new_flow && opening(&m))
		want.opened[d->id - 1][post.version & 1]++;
	/* The kill switch: no new connection goes to the canary, whatever the weight or override. */
	if (new_flow && opening(&m) && d->killed && post.version != CANARY_V_STABLE)
		fail_pkt(C_A, idx, p, in, &out,
			 "new flow of %s sent to the canary with the kill switch engaged", d->name);

	if (ret == drop) {
		st.dropped[p]++; /* a failed rewrite: counted in (c) below */
		fail_pkt(C_C, idx, p, in, &out, "translated packet dropped (rewrite failed)");
		return;
	}
	st.translated[p]++;
	st.later_frags += m.no_l4_hdr;
	if (!translated) {
		fail_pkt(C_A, idx, p, in, &out, "flow packet passed without translation");
		return;
	}
	/* (a): to the entry's backend, a backend of this service (a stable one if re-steered). */
	{
		__be32 a = out_addr(&out, true);
		__be16 port = out_port(&out, &m, true, post.nat_port);
		int v = be_version(d, a, port);

		if (v < 0)
			fail_pkt(C_A, idx, p, in, &out, "rewritten to %s:%u, not a backend of %s",
				 inet_ntoa((struct in_addr){ a }), ntohs(port), d->name);
		else if ((post.flags & CANARY_CT_F_RESTEERED) && v != CANARY_V_STABLE)
			fail_pkt(C_A, idx, p, in, &out, "re-steered flow sent to a canary backend");
		if (a != post.nat_addr || port != post.nat_port)
			fail_pkt(C_A, idx, p, in, &out,
				 "rewritten to another backend than its entry's");
		if (!new_flow && !steer && (a != pre.nat_addr || port != pre.nat_port))
			fail_pkt(C_A, idx, p, in, &out, "known flow moved to another backend");
		if (!(post.flags & CANARY_CT_F_RESTEERED) && v >= 0 && v != (post.version & 1))
			fail_pkt(C_A, idx, p, in, &out, "backend of version %d, flow of version %u",
				 v, post.version);
		if (new_flow && opening(&m) && v >= 0 && !m.no_l4_hdr)
			pool_add(&m, a, port);
	}
	check_rewrite(idx, p, in, &out, &m, true);
}

/*
 * Does egress read the forward entry for this reply (egress_needs_forward())?
 * Always for a half-open flow, and for a TCP reply with SYN, FIN or RST or
 * of a flow whose reverse entry is not PLAIN; any other reply only on its
 * flow's once-a-second check, which is when the program refreshes the
 * reverse entry's age: the age read back after the run (post) tells.
 */
static bool model_reply_reads_forward(const struct mpkt *m, const struct canary_ct_entry *rev,
				      bool half, const struct canary_ct_entry *post)
{
	if (half || (post && post->last_seen_ns != rev->last_seen_ns))
		return true;
	if (m->tuple.proto != IPPROTO_TCP)
		return false;
	return !(rev->flags & CANARY_CT_F_PLAIN) ||
	       (m->tcp_flags & (PKT_TCP_SYN | PKT_TCP_FIN | PKT_TCP_RST));
}

static void egress_one(unsigned long idx, const struct frame *in)
{
	const enum prog p = P_TC_EG;
	struct canary_ct_entry rev, fwd, post;
	struct canary_ct_key fkey;
	const struct svc_def *d;
	bool have_rev = false, fwd_ok = false, half = false, post_half, have_post;
	struct frame out = { .len = 0 };
	struct mpkt m;
	int reason, err;
	__u32 ret;

	reason = model_parse(in->b, in->len, &m);
	if (reason == M_OK) {
		/* A SYN-ACK or refusal finds its reverse entry in the half-open table. */
		have_rev = model_backend_has(&m.tuple) && reverse_find(&m, &rev, &half) &&
			   (rev.flags & CANARY_CT_F_REVERSE);
		if (have_rev) {
			memset(&fkey, 0, sizeof(fkey));
			fkey.saddr = m.tuple.daddr;
			fkey.sport = m.tuple.dport;
			fkey.daddr = rev.nat_addr;
			fkey.dport = rev.nat_port;
			fkey.proto = m.tuple.proto;
			fwd_ok = (half ? !bpf_map_lookup_elem(fx.ct_syn_fd, &fkey, &fwd) :
					 ct_get(&fkey, &fwd)) &&
				 fwd.nat_addr == m.tuple.saddr && fwd.nat_port == m.tuple.sport;
		}
	}
	err = run_prog(p, in, &out, &ret);
	if (err == -EINVAL && kernel_may_refuse(p, in)) {
		st.refused[p]++;
		return;
	}
	if (err) {
		fail_pkt(C_C, idx, p, in, NULL, "BPF_PROG_TEST_RUN: %s", strerror(-err));
		return;
	}
	st.run[p]++;
	if (ret != TC_ACT_OK && ret != TC_ACT_SHOT)
		fail_pkt(C_C, idx, p, in, &out, "verdict %u is neither TC_ACT_OK nor TC_ACT_SHOT",
			 ret);
	if (out.len != in->len) {
		fail_pkt(C_C, idx, p, in, &out, "length %u -> %u", in->len, out.len);
		return;
	}
	if (reason == CANARY_R_NOT_TCP_UDP && m.tuple.proto == IPPROTO_ICMP) {
		icmp_one(idx, p, in, &out, ret, &m);
		return;
	}
	if (reason == CANARY_R_MALFORMED || reason == CANARY_R_FRAGMENT) {
		want.reasons[reason]++; /* egress_parse(): an IPv4 TCP/UDP packet it cannot read */
		st.egress_unparsed++;
	}
	if (!have_rev) {
		check_untouched(idx, p, in, &out, ret, TC_ACT_OK,
				reason != M_OK ? canary_reason_names[reason] : "no reverse entry");
		return;
	}
	st.egress_reverse_hits++;
	want.reasons[CANARY_R_REPLY]++;
	have_post = ct_find(&m.tuple, &post, &post_half) && (post.flags & CANARY_CT_F_REVERSE);
	if (!fwd_ok && model_reply_reads_forward(&m, &rev, half, have_post ? &post : NULL))
		want.reasons[CANARY_R_REPLY_NO_FORWARD]++;
	d = svc_by_id(rev.svc_id);
	if (!d) {
		fail_counter("reverse entry with service id %u", rev.svc_id);
		return;
	}
	/*
	 * Counted in the version the entry holds after the packet: a reply
	 * on a generation the service has moved past takes the version whose
	 * list holds its backend now (svcgen_check_reverse), which differs for
	 * a canary flow reset onto a stable backend.
	 */
	if (have_post)
		rev.version = post.version;
	want.pk_out[d->id - 1][rev.version & 1]++;
	want.by_out[d->id - 1][rev.version & 1] += m.ip_len;
	if (ret == TC_ACT_SHOT) {
		st.dropped[p]++;
		fail_pkt(C_C, idx, p, in, &out, "reply dropped (rewrite failed)");
		return;
	}
	st.translated[p]++;
	st.later_frags += m.no_l4_hdr;
	/* (a): the source becomes the VIP:port of a service of this protocol. */
	{
		__be32 a = out_addr(&out, false);
		__be16 port = out_port(&out, &m, false, rev.nat_port);
		const struct svc_def *vip = svc_by_key(a, port, m.tuple.proto);

		if (!vip)
			fail_pkt(C_A, idx, p, in, &out, "source rewritten to %s:%u, not a VIP:port",
				 inet_ntoa((struct in_addr){ a }), ntohs(port));
		else if (vip != d)
			fail_pkt(C_A, idx, p, in, &out, "reply of %s restored to the VIP of %s",
				 d->name, vip->name);
		if (a != rev.nat_addr || port != rev.nat_port)
			fail_pkt(C_A, idx, p, in, &out, "source is not the reverse entry's VIP");
	}
	check_rewrite(idx, p, in, &out, &m, false);
}

/* ------------------------------------------------------------------------ */
/* (d): the counters against the model. */

static __u64 actual_reasons[CANARY_R_COUNT];

static void check_counters(bool final)
{
	__u64 ingress_sum = 0, expected_sum;
	bool ok = true;

	st.checks++;
	for (int r = 0; r < CANARY_R_COUNT; r++) {
		if (fixture_pcpu_sum(&fx, fx.reasons_fd, (__u32)r, &actual_reasons[r], 1)) {
			fail_counter("cannot read " CANARY_MAP_NAME("reasons") "[%d]", r);
			return;
		}
		if (actual_reasons[r] != want.reasons[r]) {
			fail_counter("reason %s: counted %llu, model %llu", canary_reason_names[r],
				     (unsigned long long)actual_reasons[r],
				     (unsigned long long)want.reasons[r]);
			ok = false;
		}
		if (r != CANARY_R_REPLY && r != CANARY_R_REPLY_NO_FORWARD)
			ingress_sum += actual_reasons[r];
	}
	/* The design relation, on the kernel's own counters. */
	ingress_sum -= st.egress_unparsed + st.egress_icmp;
	expected_sum = st.ingress_runs - st.ingress_reverse_hits +
		       actual_reasons[CANARY_R_CT_MISS_NON_SYN] + actual_reasons[CANARY_R_OPAQUE] +
		       actual_reasons[CANARY_R_RESET_STEERED];
	if (ingress_sum != expected_sum)
		fail_counter("sum of ingress reasons %llu != runs %lu - reverse hits %lu + "
			     "ct_miss_non_syn + opaque + reset_steered = %llu",
			     (unsigned long long)ingress_sum, st.ingress_runs,
			     st.ingress_reverse_hits, (unsigned long long)expected_sum);
	if (actual_reasons[CANARY_R_REPLY] != st.egress_reverse_hits ||
	    actual_reasons[CANARY_R_REPLY_NO_FORWARD] > actual_reasons[CANARY_R_REPLY])
		fail_counter("egress: reply %llu for %lu replies with a reverse entry, "
			     "reply_no_forward %llu",
			     (unsigned long long)actual_reasons[CANARY_R_REPLY],
			     st.egress_reverse_hits,
			     (unsigned long long)actual_reasons[CANARY_R_REPLY_NO_FORWARD]);

	for (__u32 id = 0; id <= N_SVC + 1; id++) {
		for (int v = 0; v < CANARY_V_COUNT; v++) {
			struct canary_metrics mt;
			__u64 resp = 0;
			int i = (int)id - 1;

			if (fixture_pcpu_sum(&fx, fx.metrics_fd, id * CANARY_V_COUNT + (__u32)v,
					     (__u64 *)&mt, sizeof(mt) / sizeof(__u64))) {
				fail_counter("cannot read " CANARY_MAP_NAME("metrics"));
				return;
			}
			for (int c = 0; c < CANARY_STATUS_CLASSES; c++)
				resp += mt.responses[c];
			if (id < 1 || id > N_SVC) {
				if (mt.packets_in || mt.packets_out || mt.conns_opened)
					fail_counter("metrics of unused service id %u counted", id);
				continue;
			}
			if (mt.packets_in != want.pk_in[i][v] || mt.bytes_in != want.by_in[i][v] ||
			    mt.packets_out != want.pk_out[i][v] ||
			    mt.bytes_out != want.by_out[i][v] ||
			    mt.conns_opened != want.opened[i][v]) {
				fail_counter(
					"%s/%s: packets_in %llu (model %llu), bytes_in %llu (%llu), "
					"packets_out %llu (%llu), bytes_out %llu (%llu), "
					"conns_opened %llu (%llu)",
					svcs[i].name, v ? "canary" : "stable",
					(unsigned long long)mt.packets_in,
					(unsigned long long)want.pk_in[i][v],
					(unsigned long long)mt.bytes_in,
					(unsigned long long)want.by_in[i][v],
					(unsigned long long)mt.packets_out,
					(unsigned long long)want.pk_out[i][v],
					(unsigned long long)mt.bytes_out,
					(unsigned long long)want.by_out[i][v],
					(unsigned long long)mt.conns_opened,
					(unsigned long long)want.opened[i][v]);
				ok = false;
			}
			/*
			 * A turn ends once: by a response (a packet out) or
			 * abandoned by the client's FIN or RST (a packet in).
			 */
			if (mt.requests > mt.packets_in || resp > mt.requests ||
			    resp > mt.packets_out + mt.packets_in || mt.latency_count != resp ||
			    mt.conns_refused + mt.conns_reset > mt.packets_out)
				fail_counter(
					"%s/%s: requests %llu, responses %llu, latency samples %llu, "
					"refused+reset %llu for %llu packets in, %llu out",
					svcs[i].name, v ? "canary" : "stable",
					(unsigned long long)mt.requests, (unsigned long long)resp,
					(unsigned long long)mt.latency_count,
					(unsigned long long)(mt.conns_refused + mt.conns_reset),
					(unsigned long long)mt.packets_in,
					(unsigned long long)mt.packets_out);
		}
	}
	/* Resynchronise after a mismatch, so one divergence is reported once. */
	if (!ok && !final) {
		memcpy(want.reasons, actual_reasons, sizeof(want.reasons));
	}
}

/* ------------------------------------------------------------------------ */
/* The agent's expiry pass (bpf/ct_count.bpf.c), over the fixture's maps. */

static int expiry_load(void)
{
	struct bpf_map *map = NULL;

	expiry = ct_count__open();
	if (!expiry)
		return -errno;
	while ((map = bpf_object__next_map(expiry->obj, map))) {
		int fd = map == expiry->maps.CANARY_MAP(conntrack) ?
				 fx.ct_fd :
			 map == expiry->maps.CANARY_MAP(ct_syn) ?
				 fx.ct_syn_fd :
			 map == expiry->maps.CANARY_MAP(ct_expired) ?
				 bpf_map__fd(fx.skel->maps.CANARY_MAP(ct_expired)) :
			 map == expiry->maps.CANARY_MAP(metrics) ? fx.metrics_fd :
								   -1;
		int err;

		if (bpf_map__is_internal(map))
			continue; /* .rodata: the lifetimes, the defaults here */
		err = bpf_map__set_pin_path(map, NULL);
		if (!err)
			err = fd >= 0 ? bpf_map__reuse_fd(map, fd) :
					bpf_map__set_autocreate(map, false);
		if (err)
			return err;
	}
	return ct_count__load(expiry);
}

/*
 * One pass, 61 s in the future: closed, unanswered and UDP flows go (and
 * reverse entries left alone), established TCP flows stay. The model reads
 * the conntrack before every packet, so the flows that went are new again.
 */
static void expiry_pass(void)
{
	struct timespec ts;
	struct canary_ct_expire_args args = { 0 };
	int err;
	struct bpf_test_run_opts run = {
		.sz = sizeof(run),
		.ctx_in = &args,
		.ctx_size_in = sizeof(args),
	};

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	args.now_ns = (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec + 61000000000ULL;
	if (bpf_prog_test_run_opts(bpf_program__fd(expiry->progs.canary_ct_expire), &run)) {
		fail_counter("expiry pass: %s", strerror(errno));
		return;
	}
	st.expiry_passes++;
	st.expired += args.expired;
	/* 61 s on, no cached copy of conntrack would be trusted any more. */
	err = fixture_flow_cache_flush(&fx);
	if (err)
		fail_counter("flow cache flush: %s", strerror(-err));
}

/* ------------------------------------------------------------------------ */
/* The agent's side: weight changes and reset marks, as agent.c/dataplane.c do. */

static __u32 generation = 1;

/* Empty the half-open table: its LRU would evict, and the model would guess. */
static void syn_clear(void)
{
	static struct canary_ct_key keys[CANARY_CT_SYN_MAX_ENTRIES];
	size_t i, n = fixture_map_keys(fx.ct_syn_fd, keys, sizeof(keys[0]),
				       CANARY_CT_SYN_MAX_ENTRIES);

	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fx.ct_syn_fd, &keys[i]);
}

static void agent_actions(unsigned long i)
{
	if (i % 10007 == 0) {
		struct svc_def *d = &svcs[rnd(N_SVC)];

		d->weight = chance(20) ? (chance(50) ? 0 : CANARY_WEIGHT_MAX) : (__u16)rnd(10001);
		if (svc_write(d, ++generation) == 0)
			st.weight_changes++;
	}
	if (i % 25013 == 0) {
		/*
		 * The reset mark older agents wrote (dataplane.c's mark_reset()),
		 * on flows of the pool; as any writer outside the programs, it
		 * drops the flow's cached copy.
		 */
		for (int k = 0; k < 64 && pool_n; k++) {
			const struct flow *f = &pool[rnd(pool_n)];
			struct canary_ct_key key = { .saddr = f->client,
						     .daddr = f->vip,
						     .sport = f->cport,
						     .dport = f->vport,
						     .proto = f->proto };
			struct canary_ct_entry e;

			if (!ct_get(&key, &e) ||
			    (e.flags & (CANARY_CT_F_REVERSE | CANARY_CT_F_RESET_REQ |
					CANARY_CT_F_RST_SEEN | CANARY_CT_F_FIN_SEEN)) ||
			    e.version != CANARY_V_CANARY)
				continue;
			e.flags |= CANARY_CT_F_RESET_REQ;
			if (!bpf_map_update_elem(fx.ct_fd, &key, &e, BPF_EXIST) &&
			    !fixture_flow_cache_changed(&fx, &key))
				st.resets_marked++;
		}
	}
	if (i % 15013 == 0) {
		/* canaryctl emergency-rollback / emergency-clear. */
		struct svc_def *d = &svcs[rnd(N_SVC)];
		struct canary_killswitch ks = { .engaged = 1 };

		d->killed = !d->killed;
		if (d->killed)
			bpf_map_update_elem(bpf_map__fd(fx.skel->maps.CANARY_MAP(killswitch)),
					    &d->key, &ks, BPF_ANY);
		else
			bpf_map_delete_elem(bpf_map__fd(fx.skel->maps.CANARY_MAP(killswitch)),
					    &d->key);
		st.killswitch_toggles++;
	}
	if (i % 20011 == 0)
		expiry_pass();
	/* Keep conntrack far from full: LRU eviction would make the model guess. */
	if (st.created_since_clear >= CT_CLEAR_AT || st.half_open_since_clear >= SYN_CLEAR_AT) {
		fixture_ct_clear(&fx);
		syn_clear();
		pool_n = pool_next = 0;
		st.created_since_clear = 0;
		st.half_open_since_clear = 0;
		st.ct_clears++;
	}
}

/* One frame: pick a kind and a program, maybe mutate, run, check. */
static void one_packet(unsigned long i)
{
	struct frame in;
	enum prog p;
	__u32 kind = rnd(100);
	bool reply = false;

	memset(&in, 0, sizeof(in)); /* mutations may look past len: keep runs reproducible */
	if (kind < 18) {
		gen_syn(&in);
	} else if (kind < 34) {
		gen_client_tcp(&in);
	} else if (kind < 44) {
		gen_udp(&in);
	} else if (kind < 48) {
		reply = gen_fragment(&in);
	} else if (kind < 80) {
		reply = gen_reply(&in);
		if (!reply)
			gen_syn(&in);
	} else if (kind < 85) {
		if (chance(50))
			reply = gen_icmp_error(&in);
		else
			gen_other(&in);
	} else {
		gen_random(&in);
	}
	if (in.len < PKT_ETH_LEN) /* a builder refused: should not happen */
		gen_random(&in);
	if (kind < 85 && chance(60))
		mutate(&in);

	if (reply)
		p = chance(80) ? P_TC_EG : (chance(50) ? P_TC_IN : P_XDP_IN);
	else if (kind >= 80)
		p = (enum prog)rnd(P_COUNT);
	else
		p = chance(50) ? P_TC_IN : P_XDP_IN;
	if (p == P_TC_EG)
		egress_one(i, &in);
	else
		ingress_one(i, p, &in);
}

/* ------------------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long packets = DEFAULT_PACKETS, sent = 0, total_fail = 0;
	double max_seconds = DEFAULT_SECONDS;
	bool have_seed = false;
	double t0, t;
	char why[128];
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--packets") && i + 1 < argc) {
			packets = strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc) {
			max_seconds = strtod(argv[++i], NULL);
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
			have_seed = true;
		} else if (!strcmp(argv[i], "--save-dir") && i + 1 < argc) {
			save_dir = argv[++i];
		} else {
			fprintf(stderr,
				"usage: %s [--packets N] [--max-seconds T] [--seed S] [--save-dir DIR]\n",
				argv[0]);
			return 2;
		}
	}
	if (!have_seed) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = ((unsigned long long)ts.tv_sec * 1000000007ULL) ^
		       (unsigned long long)ts.tv_nsec ^ ((unsigned long long)getpid() << 32);
	}
	rng_state = seed ? seed : 1;

	err = fixture_start(&fx, PIN_TEMPLATE, install_cleanup, why, sizeof(why));
	if (err == FIXTURE_SKIP)
		return fixture_skip(stdout, "not ok - bpf_fuzz: cannot run: %s (CI=true)\n", why);
	if (err || (err = configure()) || (err = expiry_load())) {
		printf("not ok - bpf_fuzz: load the skeleton, the expiry pass and configure 2 "
		       "services: %s\n",
		       strerror(-err));
		return 1;
	}
	printf("ok - bpf_fuzz: skeleton loaded (pins in %s), services web (tcp, http) and dns "
	       "(udp), one override each\n",
	       fx.pin_dir);
	printf("# seed %llu (reproduce: test_bpf_fuzz --seed %llu --packets %lu)\n", seed, seed,
	       packets);

	t0 = now_s();
	for (unsigned long i = 1; i <= packets; i++) {
		agent_actions(i);
		one_packet(i);
		sent = i;
		if (i % CHECK_EVERY == 0) {
			check_counters(false);
			if (st.run[0] + st.run[1] + st.run[2] >= MIN_PACKETS &&
			    now_s() - t0 > max_seconds)
				break;
		}
	}
	check_counters(true);
	t = now_s() - t0;

	printf("# %lu frames in %.1f s (%.0f/s): %lu mutated, %lu random, %lu well-formed%s\n",
	       sent, t, (double)sent / t, st.mutated, st.random, sent - st.mutated - st.random,
	       sent < packets ? " (time limit)" : "");
	for (int p = 0; p < P_COUNT; p++)
		printf("# %-11s run %lu, translated %lu, dropped %lu, refused by the kernel %lu\n",
		       prog_names[p], st.run[p], st.translated[p], st.dropped[p], st.refused[p]);
	printf("# ingress hits on reverse entries %lu; egress replies with a reverse entry %lu\n",
	       st.ingress_reverse_hits, st.egress_reverse_hits);
	printf("# ICMP errors generated %lu; translated on ingress %lu, on egress %lu\n",
	       st.icmp_errors, st.icmp_translated[1], st.icmp_translated[0]);
	printf("# later fragments translated by their first fragment's ports: %lu\n",
	       st.later_frags);
	printf("# checksums verified on rewritten packets: IPv4 valid on input %lu, L4 valid on "
	       "input %lu, L4 off on input %lu, UDP without checksum %lu\n",
	       st.ip_csum_valid_in, st.l4_csum_valid_in, st.csum_off_in, st.udp_zero_in);
	printf("# agent actions: %lu weight changes, %lu flows marked for reset, %lu conntrack "
	       "clears, %lu expiry passes (%lu entries expired), %lu kill switch toggles; %lu "
	       "counter checks\n",
	       st.weight_changes, st.resets_marked, st.ct_clears, st.expiry_passes, st.expired,
	       st.killswitch_toggles, st.checks);
	printf("# half-open table: %lu flows began there, %lu moved to conntrack by the client's "
	       "ACK of the SYN-ACK\n",
	       st.half_open_created, st.promoted);
	printf("# reasons:");
	for (int r = 0; r < CANARY_R_COUNT; r++)
		printf(" %s=%llu", canary_reason_names[r], (unsigned long long)actual_reasons[r]);
	printf("\n");

	{
		unsigned long total_run = st.run[0] + st.run[1] + st.run[2];

		printf("%s - bpf_fuzz: %lu packets run (tc ingress %lu, xdp ingress %lu, tc egress "
		       "%lu)\n",
		       total_run >= MIN_PACKETS || total_run >= packets * 9 / 10 ? "ok" : "not ok",
		       total_run, st.run[P_TC_IN], st.run[P_XDP_IN], st.run[P_TC_EG]);
		if (total_run < MIN_PACKETS && total_run < packets * 9 / 10)
			total_fail++;
	}
	for (int c = 0; c < C_COUNT; c++) {
		printf("%s - bpf_fuzz: %s%s", failures[c] ? "not ok" : "ok", check_names[c],
		       failures[c] ? "" : "\n");
		if (failures[c])
			printf(": %lu failures\n", failures[c]);
		total_fail += failures[c];
	}
	return total_fail ? 1 : 0;
}
