// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF_PROG_TEST_RUN suite for canaryd's kernel programs. Crafted frames go
 * through canary_tc_ingress, canary_xdp_ingress and canary_tc_egress of the
 * real skeleton, and the tests read back the output bytes and the pinned
 * maps. Every ingress test runs twice, once per ingress program, with the
 * same expectations: the XDP program must behave exactly like tc ingress.
 *
 * This file is the harness: the skeleton, the services, the map and flow
 * helpers and main(). The cases are in dp_<feature>.c, listed in harness.h.
 */
#include <signal.h>

#include "harness.h"

#define PIN_TEMPLATE "/sys/fs/bpf/canary-test-XXXXXX"

/* ------------------------------------------------------------------------ */
/* Services under test. Addresses and ports in network order, as in the maps. */

const struct canary_backend web_stable[] = {
	BE(10, 0, 1, 11, 8080),
	BE(10, 0, 1, 12, 8080),
	BE(10, 0, 1, 13, 8081),
};
const struct canary_backend web_canary[] = {
	BE(10, 0, 2, 21, 9090),
	BE(10, 0, 2, 22, 9091),
};
/* The lists after an endpoint change: no address in common with the above. */
const struct canary_backend web_stable_alt[] = { BE(10, 0, 3, 31, 7070) };
const struct canary_backend web_canary_alt[] = { BE(10, 0, 4, 41, 7071) };

const struct canary_backend dns_stable[] = {
	BE(10, 0, 1, 31, 5353),
	BE(10, 0, 1, 32, 5353),
	BE(10, 0, 1, 33, 5353),
};
const struct canary_backend dns_canary[] = { BE(10, 0, 2, 41, 5354) };

/* One backend per version: replies in the table-driven tests know their source. */
const struct canary_backend solo_stable[] = { BE(10, 0, 1, 50, 8080) };
const struct canary_backend solo_canary[] = { BE(10, 0, 2, 50, 9090) };

const struct svc_def web_def = {
	.name = "web",
	.key = { .vip = VIP_WEB, .port = PKT_BE16(80), .proto = IPPROTO_TCP },
	.id = SVC_WEB_ID,
	.flags = CANARY_SVC_F_HTTP,
	.be = { web_stable, web_canary },
	.n_be = { N_OF(web_stable), N_OF(web_canary) },
};
const struct svc_def dns_def = {
	.name = "dns",
	.key = { .vip = VIP_DNS, .port = PKT_BE16(53), .proto = IPPROTO_UDP },
	.id = SVC_DNS_ID,
	.be = { dns_stable, dns_canary },
	.n_be = { N_OF(dns_stable), N_OF(dns_canary) },
};
const struct svc_def solo_def = {
	.name = "solo",
	.key = { .vip = VIP_SOLO, .port = PKT_BE16(80), .proto = IPPROTO_TCP },
	.id = SVC_SOLO_ID,
	.flags = CANARY_SVC_F_HTTP,
	.be = { solo_stable, solo_canary },
	.n_be = { N_OF(solo_stable), N_OF(solo_canary) },
};
/* A VIP whose backend lists are both empty. */
const struct svc_def empty_def = {
	.name = "empty",
	.key = { .vip = VIP_EMPTY, .port = PKT_BE16(80), .proto = IPPROTO_TCP },
	.id = SVC_EMPTY_ID,
};

/* ------------------------------------------------------------------------ */
/* The loaded skeleton, shared by all tests. */

struct canary_fixture fx;

struct path tc_path = { "tc", &fx.tc_in_fd, TC_ACT_OK };
struct path xdp_path = { "xdp", &fx.xdp_fd, XDP_PASS };

/* For atexit(), which passes no argument. */
static void unload(void)
{
	fixture_unload(&fx);
}

static int group_setup(void **state)
{
	(void)state;
	return fx.skel && fx.pcpu ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	unload();
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Maps. */

/* Sum a per-CPU value of n u64 counters over all possible CPUs. */
void pcpu_sum(int fd, __u32 key, __u64 *out, size_t n)
{
	assert_int_equal(fixture_pcpu_sum(&fx, fd, key, out, n), 0);
}

void pcpu_zero(int fd, __u32 key, size_t value_size)
{
	memset(fx.pcpu, 0, (size_t)fx.ncpus * value_size);
	assert_int_equal(bpf_map_update_elem(fd, &key, fx.pcpu, BPF_ANY), 0);
}

/* The one value of ct_expired_v<N> (a plain array), zeroed. */
void array_zero(int fd)
{
	struct canary_ct_expired zero = { 0 };
	__u32 key = 0;

	assert_int_equal(bpf_map_update_elem(fd, &key, &zero, BPF_ANY), 0);
}

__u64 reason(int r)
{
	__u64 v;

	pcpu_sum(fx.reasons_fd, (__u32)r, &v, 1);
	return v;
}

void reasons_read(__u64 out[CANARY_R_COUNT])
{
	int r;

	for (r = 0; r < CANARY_R_COUNT; r++)
		out[r] = reason(r);
}

__u64 reasons_total(void)
{
	__u64 all[CANARY_R_COUNT];
	__u64 sum = 0;
	int r;

	reasons_read(all);
	for (r = 0; r < CANARY_R_COUNT; r++)
		sum += all[r];
	return sum;
}

void metrics_get(__u32 svc_id, int version, struct canary_metrics *m)
{
	pcpu_sum(fx.metrics_fd, svc_id * CANARY_V_COUNT + (__u32)version, (__u64 *)m,
		 sizeof(*m) / sizeof(__u64));
}

__u64 opened(__u32 svc_id, int version)
{
	struct canary_metrics m;

	metrics_get(svc_id, version, &m);
	return m.conns_opened;
}

void metrics_zero(__u32 svc_id)
{
	int v;

	for (v = 0; v < CANARY_V_COUNT; v++)
		pcpu_zero(fx.metrics_fd, svc_id * CANARY_V_COUNT + (__u32)v,
			  sizeof(struct canary_metrics));
}

/* Entries of tracked flows: in conntrack, and in the half-open table (ct_syn_v<N>). */
size_t ct_count(void)
{
	static struct canary_ct_key keys[CANARY_CT_MAX_ENTRIES];

	return fixture_map_keys(fx.ct_fd, keys, sizeof(keys[0]), CANARY_CT_MAX_ENTRIES) +
	       fixture_map_keys(fx.ct_syn_fd, keys, sizeof(keys[0]), CANARY_CT_SYN_MAX_ENTRIES);
}

void ct_clear(void)
{
	static struct canary_ct_key keys[CANARY_CT_SYN_MAX_ENTRIES];
	size_t i, n = fixture_map_keys(fx.ct_syn_fd, keys, sizeof(keys[0]),
				       CANARY_CT_SYN_MAX_ENTRIES);

	fixture_ct_clear(&fx);
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fx.ct_syn_fd, &keys[i]);
	assert_int_equal(ct_count(), 0);
}

void map_clear(int fd, size_t key_size)
{
	char key[64];

	assert_true(key_size <= sizeof(key));
	while (!bpf_map_get_next_key(fd, NULL, key))
		assert_int_equal(bpf_map_delete_elem(fd, key), 0);
}

struct canary_ct_key ct_key(__be32 saddr, __be16 sport, __be32 daddr, __be16 dport, __u8 proto)
{
	struct canary_ct_key k;

	memset(&k, 0, sizeof(k));
	k.saddr = saddr;
	k.sport = sport;
	k.daddr = daddr;
	k.dport = dport;
	k.proto = proto;
	return k;
}

/* A flow's entry: in conntrack, or still in the half-open table. */
bool ct_get(const struct canary_ct_key *k, struct canary_ct_entry *e)
{
	return bpf_map_lookup_elem(fx.ct_fd, k, e) == 0 ||
	       bpf_map_lookup_elem(fx.ct_syn_fd, k, e) == 0;
}

/* ------------------------------------------------------------------------ */
/* Services and overrides, written the way the agent writes them. */

void svc_fill(struct canary_service *s, const struct svc_def *d, __u16 weight)
{
	int v;

	memset(s, 0, sizeof(*s));
	s->id = d->id;
	s->generation = 1;
	s->seed = 0x5eed0000U + d->id;
	s->weight = weight;
	s->flags = d->flags;
	snprintf(s->name, sizeof(s->name), "%s", d->name);
	for (v = 0; v < CANARY_V_COUNT; v++) {
		s->n_backends[v] = d->n_be[v];
		if (d->n_be[v])
			memcpy(s->backends[v], d->be[v], d->n_be[v] * sizeof(*d->be[v]));
	}
}

void svc_install(const struct svc_def *d, __u16 weight, __u8 affinity)
{
	struct canary_service s;

	svc_fill(&s, d, weight);
	s.affinity = affinity;
	assert_int_equal(fixture_svc_put(&fx, &d->key, &s, BPF_ANY), 0);
}

void svc_read(const struct svc_def *d, struct canary_service *s)
{
	assert_int_equal(bpf_map_lookup_elem(fx.svc_fd, &d->key, s), 0);
}

/* Replace the whole value with a new weight, as one atomic update. */
void svc_set_weight(const struct svc_def *d, __u16 weight)
{
	struct canary_service s;

	svc_read(d, &s);
	s.weight = weight;
	s.generation++;
	assert_int_equal(fixture_svc_put(&fx, &d->key, &s, BPF_EXIST), 0);
}

void svc_set_backends(const struct svc_def *d, const struct canary_backend *st, __u8 n_st,
		      const struct canary_backend *ca, __u8 n_ca)
{
	struct canary_service s;

	svc_read(d, &s);
	memset(s.backends, 0, sizeof(s.backends));
	if (n_st)
		memcpy(s.backends[CANARY_V_STABLE], st, n_st * sizeof(*st));
	if (n_ca)
		memcpy(s.backends[CANARY_V_CANARY], ca, n_ca * sizeof(*ca));
	s.n_backends[CANARY_V_STABLE] = n_st;
	s.n_backends[CANARY_V_CANARY] = n_ca;
	s.generation++;
	assert_int_equal(fixture_svc_put(&fx, &d->key, &s, BPF_EXIST), 0);
}

/* Source CIDR override: the trie's prefix counts the 32 bits of svc_id too. */
void override_add(__u32 svc_id, __be32 net, __u32 cidr_len, __u32 version)
{
	struct canary_override_key k = {
		.prefixlen = 32 + cidr_len,
		.svc_id = svc_id,
		.addr = net,
	};
	struct canary_override v = { .version = version };

	assert_int_equal(bpf_map_update_elem(fx.ovr_fd, &k, &v, BPF_ANY), 0);
}

void overrides_clear(void)
{
	struct canary_override_key k;

	while (!bpf_map_get_next_key(fx.ovr_fd, NULL, &k))
		assert_int_equal(bpf_map_delete_elem(fx.ovr_fd, &k), 0);
}

/* Version whose list holds addr:port in service d, or -1. */
int be_version(const struct svc_def *d, __be32 addr, __be16 port)
{
	int v, i;

	for (v = 0; v < CANARY_V_COUNT; v++)
		for (i = 0; i < d->n_be[v]; i++)
			if (d->be[v][i].addr == addr && d->be[v][i].port == port)
				return v;
	return -1;
}

/* Clear a filter map (either), which the agent never does: each test starts from a new node. */
static void filter_clear(int fd)
{
	__u64 zero = 0;
	__u32 w;

	for (w = 0; w < CANARY_VIP_FILTER_WORDS; w++)
		assert_int_equal(bpf_map_update_elem(fd, &w, &zero, BPF_ANY), 0);
}

void vip_filter_clear(void)
{
	filter_clear(fx.vip_filter_fd);
}

void backend_filter_clear(void)
{
	filter_clear(fx.backend_filter_fd);
}

/* Delete every service, with its generation record, and the filters' bits. */
static void svc_clear(void)
{
	struct canary_service_key k;
	struct canary_service s;
	int n;

	for (n = 0; n <= CANARY_MAX_SERVICES && !bpf_map_get_next_key(fx.svc_fd, NULL, &k); n++) {
		assert_int_equal(bpf_map_lookup_elem(fx.svc_fd, &k, &s), 0);
		assert_int_equal(fixture_svc_delete(&fx, &k, s.id), 0);
	}
	vip_filter_clear();
	backend_filter_clear();
}

/*
 * Per-test setup: no flows, no counters, the standard services at weight
 * 5000 without affinity. Tests change what they need from there.
 */
int reset_maps(void **state)
{
	int r;
	__u32 id;

	(void)state;
	ct_clear();
	svc_clear();
	overrides_clear();
	map_clear(fx.killswitch_fd, sizeof(struct canary_service_key));
	for (r = 0; r < CANARY_R_COUNT; r++)
		pcpu_zero(fx.reasons_fd, (__u32)r, sizeof(__u64));
	for (id = 0; id < N_TEST_SVC; id++)
		metrics_zero(id);
	pcpu_zero(fx.ct_stats_fd, 0, sizeof(struct canary_ct_stats));
	map_clear(fx.frags_fd, sizeof(struct canary_frag_key));
	array_zero(fx.ct_expired_fd);
	svc_install(&web_def, 5000, CANARY_AFFINITY_NONE);
	svc_install(&dns_def, 5000, CANARY_AFFINITY_NONE);
	svc_install(&solo_def, 5000, CANARY_AFFINITY_NONE);
	svc_install(&empty_def, 5000, CANARY_AFFINITY_NONE);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Running frames. */

/*
 * Run a frame through BPF_PROG_TEST_RUN; returns 0 or the syscall's -errno.
 * Since 6.x the kernel refuses tc runs (-EINVAL) whose IPv4 header is shorter
 * than 20 bytes, and any run shorter than an Ethernet header: such frames can
 * only be shown to the programs where the kernel lets them through.
 */
int prog_try(int fd, struct xfer *x, __u32 repeat)
{
	struct fixture_run r;
	int err = fixture_test_run(fd, x->in, x->in_len, x->out, sizeof(x->out), repeat, &r);

	x->out_len = r.out_len;
	x->ret = (int)r.retval;
	return err;
}

int prog_run(int fd, struct xfer *x, __u32 repeat)
{
	assert_true(x->in_len > 0);
	assert_int_equal(prog_try(fd, x, repeat), 0);
	return x->ret;
}

void build(struct xfer *x, const struct pkt_spec *s)
{
	x->in_len = (__u32)pkt_build(x->in, sizeof(x->in), s);
	assert_true(x->in_len > 0);
}

/* The frame went through unchanged with verdict pass. */
void assert_untouched(const struct xfer *x, int pass)
{
	assert_int_equal(x->ret, pass);
	assert_int_equal(x->out_len, x->in_len);
	assert_memory_equal(x->out, x->in, x->in_len);
}

/*
 * Exactly one address and its port were rewritten (dst on ingress, src on
 * egress), both checksums verify from scratch, every other byte (TTL, TOS,
 * id, options, flags, payload, padding) is what was sent.
 */
void assert_nat(const struct xfer *x, bool dst, __be32 addr, __be16 port)
{
	size_t l4 = pkt_l4_off(x->out, x->out_len);
	size_t a_off = PKT_IP_OFF + (dst ? PKT_IP_DADDR : PKT_IP_SADDR);
	size_t p_off = l4 + (dst ? PKT_L4_DPORT : PKT_L4_SPORT);
	bool tcp = x->out[PKT_IP_OFF + PKT_IP_PROTO] == IPPROTO_TCP;
	size_t c_off = l4 + (tcp ? PKT_TCP_CHECK : PKT_UDP_CHECK);
	__u8 tmp[PKT_MAX];

	assert_int_equal(x->out_len, x->in_len);
	assert_true(l4 > 0);
	assert_int_equal(pkt_be32_at(x->out + a_off), addr);
	assert_int_equal(pkt_be16_at(x->out + p_off), port);
	assert_true(pkt_ipv4_csum_ok(x->out, x->out_len));
	assert_true(pkt_l4_csum_ok(x->out, x->out_len));
	memcpy(tmp, x->out, x->out_len);
	memcpy(tmp + a_off, x->in + a_off, 4);
	memcpy(tmp + p_off, x->in + p_off, 2);
	memcpy(tmp + PKT_IP_OFF + PKT_IP_CHECK, x->in + PKT_IP_OFF + PKT_IP_CHECK, 2);
	memcpy(tmp + c_off, x->in + c_off, 2);
	assert_memory_equal(tmp, x->in, x->in_len);
}

__be32 out_daddr(const struct xfer *x)
{
	return pkt_be32_at(x->out + PKT_IP_OFF + PKT_IP_DADDR);
}

__be16 out_dport(const struct xfer *x)
{
	return pkt_be16_at(x->out + pkt_l4_off(x->out, x->out_len) + PKT_L4_DPORT);
}

__u64 monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ------------------------------------------------------------------------ */
/* Flows: a client talking to a service through the programs. */

const char http_get[sizeof(HTTP_GET)] = HTTP_GET;
const char http_503[sizeof(HTTP_503)] = HTTP_503;
const char http_200[sizeof(HTTP_200)] = HTTP_200;
const char h2_preface[sizeof(H2_PREFACE)] = H2_PREFACE;
/* The first bytes of a TLS 1.2 ClientHello record. */
const __u8 tls_hello[24] = {
	0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03, 0x5a,
	0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
};

void flow_init(struct flow *f, struct path *p, const struct svc_def *d, __be32 client, __u16 cport)
{
	memset(f, 0, sizeof(*f));
	f->path = p;
	f->svc = d;
	f->client = client;
	f->cport = htons(cport);
	f->cseq = 0x10000000U + cport;
	f->sseq = 0x70000000U + cport;
	f->version = -1;
}

__u32 seq_len(__u8 flags, size_t len)
{
	return (__u32)len + ((flags & PKT_TCP_SYN) ? 1 : 0) + ((flags & PKT_TCP_FIN) ? 1 : 0);
}

/* Client -> VIP (egress false) or backend -> client (egress true). */
void flow_spec(const struct flow *f, bool egress, __u8 flags, const void *data, size_t len,
	       struct pkt_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->saddr = egress ? f->be_addr : f->client;
	s->sport = egress ? f->be_port : f->cport;
	s->daddr = egress ? f->client : f->svc->key.vip;
	s->dport = egress ? f->cport : f->svc->key.port;
	s->proto = f->svc->key.proto;
	s->ttl = egress ? 63 : 61;
	s->tos = 0x10;
	s->ip_id = (__u16)(0x1200 + f->pkts_in + f->pkts_out);
	s->frag = PKT_IP_DF;
	s->seq = egress ? f->sseq : f->cseq;
	s->ack = egress ? f->cseq : f->sseq;
	s->tcp_flags = flags;
	s->ip_opts = f->ip_opts;
	s->ip_opts_len = f->ip_opts_len;
	s->tcp_opts = f->tcp_opts;
	s->tcp_opts_len = f->tcp_opts_len;
	s->payload = data;
	s->payload_len = len;
	s->udp_no_csum = f->udp_no_csum;
}

/* Client packet through the flow's ingress program; no expectation yet. */
int flow_in(struct flow *f, __u8 flags, const void *data, size_t len, struct xfer *x)
{
	struct pkt_spec s;

	flow_spec(f, false, flags, data, len, &s);
	build(x, &s);
	prog_run(*f->path->fd, x, 1);
	f->cseq += seq_len(flags, len);
	f->pkts_in++;
	f->bytes_in += x->in_len - PKT_ETH_LEN;
	return x->ret;
}

/* Client packet that must reach the flow's backend. */
void flow_send(struct flow *f, __u8 flags, const void *data, size_t len)
{
	struct xfer x;

	flow_in(f, flags, data, len, &x);
	assert_int_equal(x.ret, f->path->pass);
	assert_nat(&x, true, f->be_addr, f->be_port);
}

/* First packet of a flow: learn the backend and check it belongs to a version. */
int flow_open_with(struct flow *f, __u8 flags)
{
	struct xfer x;

	flow_in(f, flags, NULL, 0, &x);
	assert_int_equal(x.ret, f->path->pass);
	f->be_addr = out_daddr(&x);
	f->be_port = out_dport(&x);
	f->version = be_version(f->svc, f->be_addr, f->be_port);
	assert_true(f->version >= 0);
	assert_nat(&x, true, f->be_addr, f->be_port);
	return f->version;
}

int flow_open(struct flow *f)
{
	return flow_open_with(f, f->svc->key.proto == IPPROTO_TCP ? PKT_TCP_SYN : 0);
}

/* Backend packet through tc egress: the source must become VIP:port again. */
void flow_reply(struct flow *f, __u8 flags, const void *data, size_t len)
{
	struct pkt_spec s;
	struct xfer x;

	flow_spec(f, true, flags, data, len, &s);
	build(&x, &s);
	prog_run(fx.tc_eg_fd, &x, 1);
	f->sseq += seq_len(flags, len);
	f->pkts_out++;
	f->bytes_out += x.in_len - PKT_ETH_LEN;
	assert_int_equal(x.ret, TC_ACT_OK);
	assert_nat(&x, false, f->svc->key.vip, f->svc->key.port);
}

void flow_establish(struct flow *f)
{
	flow_open(f);
	flow_reply(f, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0);
	flow_send(f, PKT_TCP_ACK, NULL, 0);
}

struct canary_ct_key flow_fwd_key(const struct flow *f)
{
	return ct_key(f->client, f->cport, f->svc->key.vip, f->svc->key.port, f->svc->key.proto);
}

struct canary_ct_key flow_rev_key(const struct flow *f)
{
	return ct_key(f->be_addr, f->be_port, f->client, f->cport, f->svc->key.proto);
}

__u32 flow_flags(const struct flow *f)
{
	struct canary_ct_key k = flow_fwd_key(f);
	struct canary_ct_entry e;

	assert_true(ct_get(&k, &e));
	return e.flags;
}

/* The flow is alone on its version: its packet and byte counts are exact. */
void assert_flow_traffic(const struct flow *f)
{
	struct canary_metrics m;

	metrics_get(f->svc->id, f->version, &m);
	assert_int_equal(m.packets_in, f->pkts_in);
	assert_int_equal(m.bytes_in, f->bytes_in);
	assert_int_equal(m.packets_out, f->pkts_out);
	assert_int_equal(m.bytes_out, f->bytes_out);
}

__u64 flow_conns_reset(const struct flow *f)
{
	struct canary_metrics m;

	metrics_get(f->svc->id, f->version, &m);
	return m.conns_reset;
}

struct path *test_path(void **state)
{
	return *state;
}

/* ------------------------------------------------------------------------ */
/* Frames, payloads and checks several suites share. */

const char frag_data[64] = "fragment payload";

/* IP and TCP options of the layouts SYNs and HTTP turns are sent in. */
const __u8 ip_opt_ra[4] = { 0x94, 0x04, 0x00, 0x00 }; /* router alert */
const __u8 ip_opt_40[40] = {
	0x07, 0x27, 0x04, [3 ... 38] = 0, 0x00, /* record route, 9 empty slots, EOL */
};
const __u8 tcp_opt_40[40] = { [0 ... 39] = 0x01 }; /* NOPs: doff 15 */

/* No map was touched but the one reason counter. */
void assert_nothing_tracked(void)
{
	struct canary_metrics m;
	__u32 id;
	int v;

	assert_int_equal(ct_count(), 0);
	for (id = 0; id < N_TEST_SVC; id++)
		for (v = 0; v < CANARY_V_COUNT; v++) {
			metrics_get(id, v, &m);
			assert_int_equal(m.packets_in + m.packets_out + m.conns_opened, 0);
		}
}

void assert_turns(const struct flow *f, __u64 requests, __u64 class_1xx, __u64 class_2xx,
		  __u64 class_5xx)
{
	struct canary_metrics m;

	metrics_get(f->svc->id, f->version, &m);
	assert_int_equal(m.requests, requests);
	assert_int_equal(m.responses[1], class_1xx);
	assert_int_equal(m.responses[2], class_2xx);
	assert_int_equal(m.responses[5], class_5xx);
	assert_int_equal(m.latency_count, class_1xx + class_2xx + class_5xx);
}

/* ------------------------------------------------------------------------ */
/* The binary: one skeleton, the suites of DP_SUITES in one cmocka group. */

static void install_cleanup(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

	fixture_cleanup_on_exit(&fx, unload, sigs, sizeof(sigs) / sizeof(sigs[0]));
}

/* The suites of DP_SUITES, in their order. */
struct dp_suite {
	const struct CMUnitTest *tests;
	size_t n;
};

/* Every suite's cases in one array; NULL if out of memory. */
static struct CMUnitTest *suites_join(size_t *n)
{
	const struct dp_suite suites[] = {
#define X(name_) { dp_suite_##name_, dp_suite_##name_##_len },
		DP_SUITES
#undef X
	};
	struct CMUnitTest *all;
	size_t i, at = 0;

	for (*n = 0, i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		*n += suites[i].n;
	all = calloc(*n, sizeof(*all));
	if (!all)
		return NULL;
	for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		memcpy(all + at, suites[i].tests, suites[i].n * sizeof(*all));
		at += suites[i].n;
	}
	return all;
}

int main(void)
{
	struct CMUnitTest *tests;
	char why[128];
	size_t n;
	int err;

	err = fixture_start(&fx, PIN_TEMPLATE, install_cleanup, why, sizeof(why));
	if (err == FIXTURE_SKIP)
		return fixture_skip(stderr, "bpf tests cannot run: %s\n", why);
	if (err) {
		fprintf(stderr, "cannot load the skeleton: %s\n", strerror(-err));
		return 1;
	}
	tests = suites_join(&n);
	if (!tests) {
		fprintf(stderr, "cannot list the tests: out of memory\n");
		return 1;
	}
	err = _cmocka_run_group_tests("bpf_datapath", tests, n, group_setup, group_teardown);
	free(tests);
	return err;
}
