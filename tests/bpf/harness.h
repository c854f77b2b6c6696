/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The BPF_PROG_TEST_RUN suite's harness: the loaded skeleton, the services
 * under test, map helpers and flows. Each tests/bpf/dp_<feature>.c defines
 * its cases with DP_SUITE(); DP_SUITES lists the files that make up the
 * one test_bpf binary.
 */
#ifndef CANARY_TEST_HARNESS_H
#define CANARY_TEST_HARNESS_H

#include <errno.h>
#include <setjmp.h>
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

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "canary_consts.h"
#include "canary_hist.h"
#include "canary_structs.h"
#include "canary.skel.h"
#include "dataplane.h"
#include "fixture.h"
#include "pkt.h"

/*
 * The suites, in the order they run. A feature file defines its cases with
 * DP_SUITE(name, ...) and is added here with one X(name).
 */
#define DP_SUITES     \
	X(nat)        \
	X(parse)      \
	X(split)      \
	X(http)       \
	X(conntrack)  \
	X(frags)      \
	X(svcgen)     \
	X(drain)      \
	X(reset)      \
	X(killswitch) \
	X(icmp)       \
	X(synstate)   \
	X(flowcache)

/* One suite's cases, run with reset_maps() as their setup. */
#define DP_SUITE(name_, ...)                                          \
	const struct CMUnitTest dp_suite_##name_[] = { __VA_ARGS__ }; \
	const size_t dp_suite_##name_##_len = sizeof(dp_suite_##name_) / sizeof(dp_suite_##name_[0])

#define X(name_)                                           \
	extern const struct CMUnitTest dp_suite_##name_[]; \
	extern const size_t dp_suite_##name_##_len;
DP_SUITES
#undef X

/* clang-format off */
/* An ingress case runs once per ingress program (state: its struct path). */
#define BOTH(fn) \
	{ #fn "/tc", fn, reset_maps, NULL, &tc_path }, \
	{ #fn "/xdp", fn, reset_maps, NULL, &xdp_path }
#define ONCE(fn) { #fn, fn, reset_maps, NULL, NULL }
/* clang-format on */

/* Metrics slots of these service ids are zeroed before every test. */
#define N_TEST_SVC 8

/* ------------------------------------------------------------------------ */
/* Services under test. Addresses and ports in network order, as in the maps. */

#define VIP_WEB	     PKT_IP4(10, 96, 0, 10)
#define VIP_DNS	     PKT_IP4(10, 96, 0, 53)
#define VIP_SOLO     PKT_IP4(10, 96, 0, 20)
#define VIP_EMPTY    PKT_IP4(10, 96, 0, 30)
#define NOT_A_VIP    PKT_IP4(10, 96, 9, 9)
#define CLIENT_A     PKT_IP4(192, 168, 1, 100)
#define CLIENT_B     PKT_IP4(192, 168, 1, 101)

#define SVC_WEB_ID   1
#define SVC_DNS_ID   2
#define SVC_SOLO_ID  3
#define SVC_EMPTY_ID 4

/* clang-format off */
#define BE(a, b, c, d, port) { PKT_IP4(a, b, c, d), PKT_BE16(port), 0 }
/* clang-format on */

#define N_OF(a) ((__u8)(sizeof(a) / sizeof((a)[0])))

struct svc_def {
	const char *name;
	struct canary_service_key key;
	__u32 id;
	__u8 flags;
	const struct canary_backend *be[CANARY_V_COUNT];
	__u8 n_be[CANARY_V_COUNT];
};

extern const struct canary_backend web_stable[3];
extern const struct canary_backend web_canary[2];
extern const struct canary_backend web_stable_alt[1];
extern const struct canary_backend web_canary_alt[1];
extern const struct canary_backend dns_stable[3];
extern const struct canary_backend dns_canary[1];
extern const struct canary_backend solo_stable[1];
extern const struct canary_backend solo_canary[1];
extern const struct svc_def web_def;
extern const struct svc_def dns_def;
extern const struct svc_def solo_def;
extern const struct svc_def empty_def;

/* ------------------------------------------------------------------------ */
/* The loaded skeleton, shared by all tests. */

/* An ingress program and the verdict that means "let it through". */
struct path {
	const char *name;
	const int *fd;
	int pass;
};

extern struct canary_fixture fx;
extern struct path tc_path;
extern struct path xdp_path;

struct path *test_path(void **state);

/* ------------------------------------------------------------------------ */
/* Maps, services and overrides. */

void pcpu_sum(int fd, __u32 key, __u64 *out, size_t n);
void pcpu_zero(int fd, __u32 key, size_t value_size);
void array_zero(int fd);
__u64 reason(int r);
void reasons_read(__u64 out[CANARY_R_COUNT]);
__u64 reasons_total(void);
void metrics_get(__u32 svc_id, int version, struct canary_metrics *m);
__u64 opened(__u32 svc_id, int version);
void metrics_zero(__u32 svc_id);
size_t ct_count(void);
void ct_clear(void);
void map_clear(int fd, size_t key_size);
struct canary_ct_key ct_key(__be32 saddr, __be16 sport, __be32 daddr, __be16 dport, __u8 proto);
bool ct_get(const struct canary_ct_key *k, struct canary_ct_entry *e);
void svc_fill(struct canary_service *s, const struct svc_def *d, __u16 weight);
void svc_install(const struct svc_def *d, __u16 weight, __u8 affinity);
/* Clear vip_filter_v<N> or be_filter_v<N>: services written after it are seen again. */
void vip_filter_clear(void);
void backend_filter_clear(void);
void svc_read(const struct svc_def *d, struct canary_service *s);
void svc_set_weight(const struct svc_def *d, __u16 weight);
void svc_set_backends(const struct svc_def *d, const struct canary_backend *st, __u8 n_st,
		      const struct canary_backend *ca, __u8 n_ca);
void override_add(__u32 svc_id, __be32 net, __u32 cidr_len, __u32 version);
void overrides_clear(void);
int be_version(const struct svc_def *d, __be32 addr, __be16 port);
int reset_maps(void **state);
void assert_nothing_tracked(void);

/* ------------------------------------------------------------------------ */
/* Running frames. */

struct xfer {
	__u8 in[PKT_MAX];
	__u8 out[PKT_MAX];
	__u32 in_len;
	__u32 out_len;
	int ret;
};

int prog_try(int fd, struct xfer *x, __u32 repeat);
int prog_run(int fd, struct xfer *x, __u32 repeat);
void build(struct xfer *x, const struct pkt_spec *s);
void assert_untouched(const struct xfer *x, int pass);
void assert_nat(const struct xfer *x, bool dst, __be32 addr, __be16 port);
__be32 out_daddr(const struct xfer *x);
__be16 out_dport(const struct xfer *x);
__u64 monotonic_ns(void);
void sleep_us(long us);

/* ------------------------------------------------------------------------ */
/* Frames and payloads several suites send. */

#define TXT(s) (s), (sizeof(s) - 1)

#define TCP_TO(vip, port, sport_, flags_)                                                   \
	.proto = IPPROTO_TCP, .saddr = CLIENT_A, .sport = PKT_BE16(sport_), .daddr = (vip), \
	.dport = PKT_BE16(port), .tcp_flags = (flags_), .seq = 1
#define SYN_TO(vip, port) TCP_TO(vip, port, 43000, PKT_TCP_SYN)
#define UDP_TO(vip, port, sport_)                                                           \
	.proto = IPPROTO_UDP, .saddr = CLIENT_A, .sport = PKT_BE16(sport_), .daddr = (vip), \
	.dport = PKT_BE16(port)
#define QUERY	  .payload = "query", .payload_len = 5
#define FRAG_DATA .payload = frag_data, .payload_len = sizeof(frag_data)

extern const char frag_data[64];
extern const __u8 ip_opt_ra[4];
extern const __u8 ip_opt_40[40];
extern const __u8 tcp_opt_40[40];

/* The literals give the arrays their sizes: TXT() works in every file. */
#define HTTP_GET   "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
#define HTTP_503   "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
#define HTTP_200   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

extern const char http_get[sizeof(HTTP_GET)];
extern const char http_503[sizeof(HTTP_503)];
extern const char http_200[sizeof(HTTP_200)];
extern const char h2_preface[sizeof(H2_PREFACE)];
/* The first bytes of a TLS 1.2 ClientHello record. */
extern const __u8 tls_hello[24];

/* ------------------------------------------------------------------------ */
/* Flows: a client talking to a service through the programs. */

struct flow {
	struct path *path;
	const struct svc_def *svc;
	__be32 client;
	__be16 cport;
	__u32 cseq;	/* next client sequence number */
	__u32 sseq;	/* next backend sequence number */
	__be32 be_addr; /* where the flow was sent */
	__be16 be_port;
	int version;
	const __u8 *ip_opts; /* carried by every packet of the flow, both ways */
	__u8 ip_opts_len;
	const __u8 *tcp_opts;
	__u8 tcp_opts_len;
	bool udp_no_csum;
	__u64 pkts_in, bytes_in, pkts_out, bytes_out; /* what the metrics should say */
};

void flow_init(struct flow *f, struct path *p, const struct svc_def *d, __be32 client, __u16 cport);
__u32 seq_len(__u8 flags, size_t len);
void flow_spec(const struct flow *f, bool egress, __u8 flags, const void *data, size_t len,
	       struct pkt_spec *s);
int flow_in(struct flow *f, __u8 flags, const void *data, size_t len, struct xfer *x);
void flow_send(struct flow *f, __u8 flags, const void *data, size_t len);
int flow_open_with(struct flow *f, __u8 flags);
int flow_open(struct flow *f);
void flow_reply(struct flow *f, __u8 flags, const void *data, size_t len);
void flow_establish(struct flow *f);
struct canary_ct_key flow_fwd_key(const struct flow *f);
struct canary_ct_key flow_rev_key(const struct flow *f);
__u32 flow_flags(const struct flow *f);
void assert_flow_traffic(const struct flow *f);
__u64 flow_conns_reset(const struct flow *f);
void assert_turns(const struct flow *f, __u64 requests, __u64 class_1xx, __u64 class_2xx,
		  __u64 class_5xx);

#endif /* CANARY_TEST_HARNESS_H */
