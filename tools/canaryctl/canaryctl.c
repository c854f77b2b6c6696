// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * canaryctl: the operator's CLI. Rollout verbs go to the agent's API (its
 * UNIX socket, or --server with a bearer token); maps, flows,
 * emergency-rollback, emergency-clear and uninstall read and patch the
 * pinned maps directly, and attachments asks the kernel, so they work
 * during an incident while the agent is down.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <getopt.h>
#include <math.h>
#include <jansson.h>
#include <linux/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attach.h"
#include "client.h"
#include "plan.h"
#include "plugin.h"
#include "dataplane.h"
#include "duration.h"
#include "defaults.h"
#include "log.h"
#include "netparse.h"
#include "stats.h"
#include "status.h"
#include "version.h"
#include "yamlout.h"

struct ctl {
	const char *bpffs;
	bool json; /* machine output: JSON, or YAML when yaml is set too */
	bool yaml;
	struct canary_dp *dp;
	struct client api;
};

/* Exit status of status --until-done when --timeout passes first. */
#define EXIT_TIMEOUT 3

static const char *const version_names[CANARY_V_COUNT] = { "stable", "canary" };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: canaryctl [--socket PATH | --server URL --token-file FILE] [--bpffs DIR]\n"
		"                 [-o json|yaml|text] VERB [ARGS]\n"
		"       canaryctl --version\n"
		"options go before or after the verb: canaryctl status web -o json\n"
		"rollout verbs (through the agent's API, default socket %s):\n"
		"  status [NAME] [--watch] [--until-done [--timeout DURATION]]\n"
		"                                    rollouts; one in full, redrawn with --watch;\n"
		"                                    --until-done exits 0 Healthy, 1 Degraded,\n"
		"                                    3 when DURATION (90s, 5m, 1h) passes first\n"
		"  promote NAME [--full]             next step (--full: straight to 100%% and done)\n"
		"  pause NAME | resume NAME          hold the steps / go on\n"
		"  abort NAME | retry NAME           roll back / start again after an abort\n"
		"  set-weight NAME PERCENT           set the canary weight by hand (holds the steps)\n"
		"  history NAME                      past revisions: outcome, duration, time to\n"
		"                                    rollback, the verdicts that decided\n"
		"  plan NAME [--errors X] [--latency F] [--power P] [--target SECONDS]\n"
		"                                    how long each step must last to catch X times\n"
		"                                    the errors or F slower (defaults 2, 0.2, 0.9)\n"
		"incident verbs (they read the pinned maps directly; no agent needed):\n"
		"  maps                              services, weights, per-version counters\n"
		"  flows [NAME] [--track stable|canary]\n"
		"                                    tracked connections\n"
		"  attachments                       where the programs are attached in this\n"
		"                                    network namespace (tc, tcx, xdp)\n"
		"  emergency-rollback NAME [--connections reset|drain]\n"
		"                                    canary weight to 0 now; reset (default)\n"
		"                                    or drain its established connections;\n"
		"                                    engages the kill switch, which holds\n"
		"                                    the canary at 0 until emergency-clear\n"
		"  emergency-clear NAME              release the kill switch (the agent\n"
		"                                    then takes verbs such as retry again)\n"
		"  uninstall                         detach from every interface of this\n"
		"                                    network namespace and remove the pins\n"
		"default --bpffs: %s\n",
		API_DEFAULT_SOCKET, DP_DEFAULT_BPFFS);
}

static int open_maps(struct ctl *c)
{
	int err = dp_open_pinned(c->bpffs, &c->dp);

	if (err)
		fprintf(stderr, "canaryctl: cannot open canaryd maps under %s: %s%s\n", c->bpffs,
			strerror(-err),
			err == -ENOENT ? " (is canaryd running or installed? see --bpffs)" : "");
	return err;
}

/* A verb's document in the -o format: one line of JSON, or YAML. */
static void print_doc(const struct ctl *c, json_t *obj)
{
	if (c->yaml) {
		yaml_print(stdout, obj);
		return;
	}
	json_dumpf(obj, stdout, JSON_COMPACT);
	printf("\n");
}

static int set_output(struct ctl *c, const char *fmt)
{
	if (strcmp(fmt, "json") != 0 && strcmp(fmt, "yaml") != 0 && strcmp(fmt, "text") != 0) {
		fprintf(stderr, "canaryctl: -o: expected json, yaml or text, got \"%s\"\n", fmt);
		return 2;
	}
	c->json = strcmp(fmt, "text") != 0;
	c->yaml = !strcmp(fmt, "yaml");
	return 0;
}

/* The options every verb takes, before or after it: "status web -o json". */
static const struct option global_longopts[] = {
	{ "socket", required_argument, NULL, 's' },
	{ "server", required_argument, NULL, 'S' },
	{ "token-file", required_argument, NULL, 't' },
	{ "bpffs", required_argument, NULL, 'b' },
	{ "output", required_argument, NULL, 'o' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

#define MAX_VERB_OPTS 8
#define MAX_OPTS      (sizeof(global_longopts) / sizeof(global_longopts[0]) + MAX_VERB_OPTS)

/* The global options, then own's (at most MAX_VERB_OPTS), then the terminator. */
static void merge_opts(struct option *opts, const struct option *own)
{
	size_t n = 0, i;

	for (i = 0; global_longopts[i].name; i++)
		opts[n++] = global_longopts[i];
	for (i = 0; own && own[i].name && i < MAX_VERB_OPTS; i++)
		opts[n++] = own[i];
	opts[n] = (struct option){ 0 };
}

/* A global option: 0 when taken, 2 on a bad value, -1 when opt is not one. */
static int global_opt(struct ctl *c, int opt, const char *val)
{
	switch (opt) {
	case 'b':
		c->bpffs = val;
		return 0;
	case 's':
		c->api.socket_path = val;
		return 0;
	case 'S':
		c->api.server = val;
		return 0;
	case 't':
		c->api.token_file = val;
		return 0;
	case 'o':
		return set_output(c, val);
	case 'h':
		usage(stdout);
		exit(0);
	}
	return -1;
}

/* A verb's own option: 0 when taken, 2 (a usage error, said on stderr) if not. */
typedef int (*verb_opt_fn)(int opt, const char *val, void *arg);

/*
 * A verb's arguments: its own options (own, taken by own_fn) and the global
 * ones, in any order among its operands (GNU getopt permutes them). argv[0]
 * is "canaryctl VERB", which getopt's messages start with. On return the
 * operands are argv[*first..argc). 0, or 2 on a usage error.
 */
static int verb_args(struct ctl *c, int argc, char **argv, const struct option *own,
		     verb_opt_fn own_fn, void *arg, int *first)
{
	struct option opts[MAX_OPTS];
	int opt;

	merge_opts(opts, own);
	optind = 0; /* glibc: start over, on a new argv */
	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		int rc = global_opt(c, opt, optarg);

		if (rc < 0)
			rc = opt == '?' || !own_fn ? 2 : own_fn(opt, optarg, arg);
		if (rc)
			return rc;
	}
	*first = optind;
	return 0;
}

/* Colour only on a terminal, and never when NO_COLOR is set (no-color.org). */
static bool use_color(void)
{
	const char *no_color = getenv("NO_COLOR");

	return isatty(STDOUT_FILENO) && !(no_color && *no_color);
}

/* ---- maps ---- */

/* Counters are u64; JSON integers are signed 64-bit. Counters stay below 2^63. */
static json_t *json_u64(__u64 v)
{
	return json_integer((json_int_t)v);
}

static json_t *metrics_json(const struct canary_metrics *m)
{
	static const char *const classes[CANARY_STATUS_CLASSES] = { "other", "1xx", "2xx",
								    "3xx",   "4xx", "5xx" };
	json_t *obj = json_object(), *resp = json_object();
	int i;

	for (i = 0; i < CANARY_STATUS_CLASSES; i++)
		json_object_set_new(resp, classes[i], json_u64(m->responses[i]));
	json_object_set_new(obj, "conns_opened", json_u64(m->conns_opened));
	json_object_set_new(obj, "conns_refused", json_u64(m->conns_refused));
	json_object_set_new(obj, "conns_reset", json_u64(m->conns_reset));
	json_object_set_new(obj, "requests", json_u64(m->requests));
	json_object_set_new(obj, "responses", resp);
	json_object_set_new(obj, "bytes_in", json_u64(m->bytes_in));
	json_object_set_new(obj, "bytes_out", json_u64(m->bytes_out));
	json_object_set_new(obj, "packets_in", json_u64(m->packets_in));
	json_object_set_new(obj, "packets_out", json_u64(m->packets_out));
	json_object_set_new(obj, "latency_count", json_u64(m->latency_count));
	json_object_set_new(obj, "latency_sum_us", json_u64(m->latency_sum_us));
	json_object_set_new(obj, "latency_p50_us", json_real(stats_latency_quantile_us(m, 0.50)));
	json_object_set_new(obj, "latency_p99_us", json_real(stats_latency_quantile_us(m, 0.99)));
	return obj;
}

/*
 * Version v's endpoints: the selectable ones (draining false), or the
 * draining ones after them (true; see canary_service.backends).
 */
static json_t *endpoints_json(const struct canary_service *svc, int v, bool draining)
{
	json_t *arr = json_array();
	char ep[32];
	int i = draining ? svc->n_backends[v] : 0;

	for (; i < CANARY_MAX_BACKENDS &&
	       (draining ? svc->backends[v][i].addr != 0 : i < svc->n_backends[v]);
	     i++)
		json_array_append_new(arr, json_string(format_endpoint(svc->backends[v][i].addr,
								       svc->backends[v][i].port, ep,
								       sizeof(ep))));
	return arr;
}

static void print_version_line(const char *name, const struct canary_metrics *m)
{
	printf("  %-7s %8llu %7llu %6llu %9llu %8llu %8llu %8.0f %8.0f %11llu %11llu\n", name,
	       (unsigned long long)m->conns_opened, (unsigned long long)m->conns_refused,
	       (unsigned long long)m->conns_reset, (unsigned long long)m->requests,
	       (unsigned long long)m->responses[2], (unsigned long long)m->responses[5],
	       stats_latency_quantile_us(m, 0.50), stats_latency_quantile_us(m, 0.99),
	       (unsigned long long)m->bytes_in, (unsigned long long)m->bytes_out);
}

struct maps_walk {
	struct ctl *c;
	json_t *services;
	int err;
};

static int show_service(const struct canary_service_key *key, const struct canary_service *svc,
			void *arg)
{
	struct maps_walk *w = arg;
	struct canary_metrics m[CANARY_V_COUNT];
	char vip[32], weight[16];
	json_t *obj;
	int v;

	for (v = 0; v < CANARY_V_COUNT; v++) {
		w->err = dp_metrics_read(w->c->dp, svc->id, v, &m[v]);
		if (w->err)
			return 1;
	}
	format_endpoint(key->vip, key->port, vip, sizeof(vip));
	format_weight(svc->weight, weight, sizeof(weight));
	if (!w->c->json) {
		printf("%s  %s/%s  weight %s%%  affinity %s  id %u  generation %u\n", svc->name,
		       vip, service_protocol_name(key, svc->flags), weight,
		       svc->affinity == CANARY_AFFINITY_CLIENT_IP ? "client-ip" : "none", svc->id,
		       svc->generation);
		printf("  %-7s %8s %7s %6s %9s %8s %8s %8s %8s %11s %11s\n", "VERSION", "CONNS",
		       "REFUSED", "RESET", "REQUESTS", "2XX", "5XX", "P50_US", "P99_US", "BYTES_IN",
		       "BYTES_OUT");
		for (v = 0; v < CANARY_V_COUNT; v++)
			print_version_line(version_names[v], &m[v]);
		return 0;
	}
	obj = json_object();
	json_object_set_new(obj, "name", json_string(svc->name));
	json_object_set_new(obj, "vip", json_string(vip));
	json_object_set_new(obj, "protocol", json_string(service_protocol_name(key, svc->flags)));
	json_object_set_new(obj, "id", json_integer(svc->id));
	json_object_set_new(obj, "generation", json_integer(svc->generation));
	json_object_set_new(obj, "weight", json_real(svc->weight / 100.0));
	json_object_set_new(obj, "weight_basis_points", json_integer(svc->weight));
	json_object_set_new(obj, "affinity", json_string(svc->affinity ? "client-ip" : "none"));
	for (v = 0; v < CANARY_V_COUNT; v++) {
		json_t *ver = json_object();

		json_object_set_new(ver, "endpoints", endpoints_json(svc, v, false));
		json_object_set_new(ver, "draining", endpoints_json(svc, v, true));
		json_object_set_new(ver, "metrics", metrics_json(&m[v]));
		json_object_set_new(obj, version_names[v], ver);
	}
	json_array_append_new(w->services, obj);
	return 0;
}

/* The conntrack's entries and evictions; the latter unknown (-1) with pins older than ct_stats_v<N>. */
static int read_conntrack(struct ctl *c, unsigned int *entries, long long *created,
			  long long *evicted)
{
	int err = dp_ct_read(c->dp, entries, created);

	*evicted = *created < 0 ? -1 :
				  (long long)dp_ct_evictions((__u64)*created - dp_ct_expired(c->dp),
							     *entries, 0);
	return err;
}

static json_t *json_count(long long v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static int show_maps(struct ctl *c)
{
	struct maps_walk w = { .c = c, .services = json_array() };
	__u64 reasons[CANARY_R_COUNT];
	long long created = -1, evicted = -1;
	unsigned int flows = 0;
	json_t *root, *rj;
	int i;

	dp_service_each(c->dp, show_service, &w);
	if (!w.err)
		w.err = dp_reasons_read(c->dp, reasons);
	if (!w.err)
		w.err = read_conntrack(c, &flows, &created, &evicted);
	if (w.err) {
		fprintf(stderr, "canaryctl: reading maps: %s\n", strerror(-w.err));
		json_decref(w.services);
		return 1;
	}
	if (!c->json) {
		printf("conntrack entries: %u of %u, created %lld, evicted %lld\npackets by reason:",
		       flows, dp_ct_capacity(c->dp), created, evicted);
		for (i = 0; i < CANARY_R_COUNT; i++)
			printf(" %s=%llu", dp_reason_name(i), (unsigned long long)reasons[i]);
		printf("\n");
		json_decref(w.services);
		return 0;
	}
	rj = json_object();
	for (i = 0; i < CANARY_R_COUNT; i++)
		json_object_set_new(rj, dp_reason_name(i), json_u64(reasons[i]));
	root = json_pack("{s:o, s:o, s:I, s:I, s:o, s:o}", "services", w.services, "reasons", rj,
			 "conntrack_entries", (json_int_t)flows, "conntrack_capacity",
			 (json_int_t)dp_ct_capacity(c->dp), "conntrack_created",
			 json_count(created), "conntrack_evictions", json_count(evicted));
	print_doc(c, root);
	json_decref(root);
	return 0;
}

/* Run fn on the pinned maps: the incident verbs need no agent. */
static int with_maps(struct ctl *c, int (*fn)(struct ctl *c, void *arg), void *arg)
{
	int rc;

	if (open_maps(c))
		return 1;
	rc = fn(c, arg);
	dp_close(c->dp);
	c->dp = NULL;
	return rc;
}

static int maps_run(struct ctl *c, void *arg)
{
	(void)arg;
	return show_maps(c);
}

static int cmd_maps(struct ctl *c, const char *verb, int argc, char **argv)
{
	int first, rc = verb_args(c, argc, argv, NULL, NULL, NULL, &first);

	if (rc || first < argc)
		return fprintf(stderr, "canaryctl: usage: %s\n", verb), 2;
	return with_maps(c, maps_run, NULL);
}

/* ---- flows ---- */

struct flows_walk {
	struct ctl *c;
	__u32 svc_id; /* UINT32_MAX: every service */
	int version;  /* -1: both versions */
	__u64 now_ns;
	json_t *arr;
	unsigned int shown;
};

static void flag_names(__u32 flags, char *buf, size_t len)
{
	static const struct {
		__u32 flag;
		const char *name;
	} names[] = {
		{ CANARY_CT_F_ESTABLISHED, "established" },
		{ CANARY_CT_F_OPAQUE, "opaque" },
		{ CANARY_CT_F_IN_REQUEST, "in-request" },
		{ CANARY_CT_F_RESET_REQ, "reset-req" },
		{ CANARY_CT_F_RESTEERED, "resteered" },
		{ CANARY_CT_F_RST_SEEN, "rst" },
		{ CANARY_CT_F_FIN_SEEN, "fin" },
		{ CANARY_CT_F_HTTP, "http" },
	};
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]) && off < len; i++)
		if (flags & names[i].flag)
			off += snprintf(buf + off, len - off, "%s%s", off ? "," : "",
					names[i].name);
}

static int show_flow(const struct canary_ct_key *key, const struct canary_ct_entry *e, void *arg)
{
	struct flows_walk *w = arg;
	char client[32], vip[32], backend[32], flags[128];
	double age;

	/* A flow is shown once, by its forward entry. */
	if ((e->flags & CANARY_CT_F_REVERSE) ||
	    (w->svc_id != UINT32_MAX && e->svc_id != w->svc_id) ||
	    (w->version >= 0 && e->version != w->version))
		return 0;
	format_endpoint(key->saddr, key->sport, client, sizeof(client));
	format_endpoint(key->daddr, key->dport, vip, sizeof(vip));
	format_endpoint(e->nat_addr, e->nat_port, backend, sizeof(backend));
	flag_names(e->flags, flags, sizeof(flags));
	age = w->now_ns > e->created_ns ? (double)(w->now_ns - e->created_ns) / 1e9 : 0;
	w->shown++;
	if (!w->c->json) {
		printf("%-21s %-21s %-21s %-6s %-4s %8.1f %s\n", client, vip, backend,
		       version_names[e->version & 1], key->proto == IPPROTO_UDP ? "udp" : "tcp",
		       age, flags);
		return 0;
	}
	json_array_append_new(w->arr,
			      json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:f, s:s}", "client",
					client, "vip", vip, "backend", backend, "version",
					version_names[e->version & 1], "protocol",
					key->proto == IPPROTO_UDP ? "udp" : "tcp", "service_id",
					(json_int_t)e->svc_id, "age_s", age, "flags", flags));
	return 0;
}

struct flows_opts {
	const char *name;
	int version; /* -1: both */
};

/*
 * --track stable|canary; --version, its old name, still works with a
 * warning (it clashed with canaryctl --version).
 */
static int flows_opt(int opt, const char *val, void *arg)
{
	struct flows_opts *o = arg;

	if (strcmp(val, "stable") != 0 && strcmp(val, "canary") != 0) {
		fprintf(stderr, "canaryctl: flows: --%s: expected stable or canary, got \"%s\"\n",
			opt == 'V' ? "version" : "track", val);
		return 2;
	}
	if (opt == 'V')
		fprintf(stderr, "canaryctl: flows --version is deprecated: use --track\n");
	o->version = !strcmp(val, "canary") ? CANARY_V_CANARY : CANARY_V_STABLE;
	return 0;
}

static int show_flows(struct ctl *c, void *arg)
{
	const struct flows_opts *o = arg;
	struct flows_walk w = { .c = c, .svc_id = UINT32_MAX, .version = o->version };
	const char *name = o->name;
	struct canary_service_key key;
	struct canary_service svc;
	struct timespec ts;

	if (name) {
		if (dp_service_find(c->dp, name, &key, &svc)) {
			fprintf(stderr, "canaryctl: no service named \"%s\"\n", name);
			return 1;
		}
		w.svc_id = svc.id;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_ns() is CLOCK_MONOTONIC */
	w.now_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	if (c->json) {
		w.arr = json_array();
		dp_flow_each(c->dp, show_flow, &w);
		print_doc(c, w.arr);
		json_decref(w.arr);
		return 0;
	}
	printf("%-21s %-21s %-21s %-6s %-4s %8s %s\n", "CLIENT", "VIP", "BACKEND", "VERSION",
	       "PROTO", "AGE_S", "FLAGS");
	dp_flow_each(c->dp, show_flow, &w);
	printf("%u flows\n", w.shown);
	return 0;
}

static int cmd_flows(struct ctl *c, const char *verb, int argc, char **argv)
{
	static const struct option own[] = {
		{ "track", required_argument, NULL, 'k' },
		{ "version", required_argument, NULL, 'V' },
		{ 0 },
	};
	struct flows_opts o = { .version = -1 };
	int first, rc = verb_args(c, argc, argv, own, flows_opt, &o, &first);

	if (rc || argc - first > 1)
		return fprintf(stderr, "canaryctl: usage: %s [NAME] [--track stable|canary]\n",
			       verb),
		       2;
	o.name = first < argc ? argv[first] : NULL;
	return with_maps(c, show_flows, &o);
}

/* ---- emergency-rollback ---- */

struct live_count {
	__u32 svc_id;
	unsigned int n;
};

static int count_live_canary(const struct canary_ct_key *key, const struct canary_ct_entry *e,
			     void *arg)
{
	struct live_count *lc = arg;

	(void)key;
	if (!(e->flags & (CANARY_CT_F_REVERSE | CANARY_CT_F_RST_SEEN | CANARY_CT_F_FIN_SEEN)) &&
	    e->svc_id == lc->svc_id && e->version == CANARY_V_CANARY)
		lc->n++;
	return 0;
}

/* Established canary connections, which drain keeps on the canary. */
static int count_canary_flows(const struct canary_dp *dp, __u32 svc_id, unsigned int *n)
{
	struct live_count lc = { .svc_id = svc_id };
	int err = dp_flow_each(dp, count_live_canary, &lc);

	*n = lc.n;
	return err;
}

struct rollback_opts {
	const char *name;
	bool drain;
};

static int rollback_opt(int opt, const char *val, void *arg)
{
	struct rollback_opts *o = arg;

	(void)opt;
	if (strcmp(val, "drain") != 0 && strcmp(val, "reset") != 0) {
		fprintf(stderr,
			"canaryctl: emergency-rollback: --connections: expected reset or drain, "
			"got \"%s\"\n",
			val);
		return 2;
	}
	o->drain = !strcmp(val, "drain");
	return 0;
}

static int emergency_rollback(struct ctl *c, void *arg)
{
	const struct rollback_opts *o = arg;
	const char *name = o->name;
	struct canary_service_key key;
	struct canary_service svc;
	unsigned int reset = 0;
	bool drain = o->drain;
	__u16 was_bp;
	char was[16];
	int err;

	if (dp_service_find(c->dp, name, &key, &svc)) {
		fprintf(stderr, "canaryctl: no service named \"%s\"\n", name);
		return 1;
	}
	/*
	 * The kill switch first: it is the operator's own word, which no other
	 * writer of the service (the agent, its health checks) can undo. The
	 * weight is also set to 0 so that a running agent sees the rollback
	 * in the service, as with pins older than the kill switch.
	 */
	err = dp_killswitch_set(c->dp, &key, true);
	if (err == -ENOENT)
		fprintf(stderr,
			"canaryctl: warning: the pins predate " CANARY_MAP_NAME(
				"killswitch") ": "
					      "weight 0 only, which the agent may overwrite\n");
	else if (err)
		goto out;
	/* Read again: the service may have changed since it was found. */
	err = dp_service_get(c->dp, &key, &svc);
	if (err)
		goto out;
	format_weight(svc.weight, was, sizeof(was));
	was_bp = svc.weight;
	svc.weight = 0;
	err = dp_service_put(c->dp, &key, &svc);
	if (!err && !drain)
		err = dp_reset_canary_flows(c->dp, svc.id, &reset);
	else if (!err)
		err = count_canary_flows(c->dp, svc.id, &reset);
out:
	if (err) {
		fprintf(stderr, "canaryctl: emergency-rollback %s: %s\n", name, strerror(-err));
		return 1;
	}
	if (c->json) {
		json_t *out =
			json_pack("{s:s, s:i, s:f, s:s, s:I}", "name", svc.name, "weight", 0,
				  "previous_weight", was_bp / 100.0, "connections",
				  drain ? "drain" : "reset", "flows_reset", (json_int_t)reset);

		print_doc(c, out);
		json_decref(out);
	} else {
		printf("%s: canary weight 0 (was %s%%); %u canary connections %s\n", svc.name, was,
		       reset, drain ? "left to drain" : "reset");
	}
	return 0;
}

static int cmd_emergency_rollback(struct ctl *c, const char *verb, int argc, char **argv)
{
	static const struct option own[] = {
		{ "connections", required_argument, NULL, 'c' },
		{ 0 },
	};
	struct rollback_opts o = { 0 };
	int first, rc = verb_args(c, argc, argv, own, rollback_opt, &o, &first);

	if (rc || argc - first != 1)
		return fprintf(stderr, "canaryctl: usage: %s NAME [--connections reset|drain]\n",
			       verb),
		       2;
	o.name = argv[first];
	return with_maps(c, emergency_rollback, &o);
}

/* ---- emergency-clear ---- */

static int emergency_clear(struct ctl *c, void *arg)
{
	const char *name = arg;
	struct canary_service_key key;
	struct canary_service svc;
	bool was;
	int err;

	if (dp_service_find(c->dp, name, &key, &svc)) {
		fprintf(stderr, "canaryctl: no service named \"%s\"\n", name);
		return 1;
	}
	was = dp_killswitch_engaged(c->dp, &key);
	err = dp_killswitch_set(c->dp, &key, false);
	if (err) {
		fprintf(stderr, "canaryctl: emergency-clear %s: %s\n", name, strerror(-err));
		return 1;
	}
	if (c->json) {
		json_t *out = json_pack("{s:s, s:b, s:b}", "name", svc.name, "kill_switch", 0,
					"was_engaged", was);

		print_doc(c, out);
		json_decref(out);
	} else {
		printf("%s: kill switch %s; the canary weight stays where it is (0 after an "
		       "emergency rollback) until the rollout is retried\n",
		       svc.name, was ? "cleared" : "was not engaged");
	}
	return 0;
}

static int cmd_emergency_clear(struct ctl *c, const char *verb, int argc, char **argv)
{
	int first, rc = verb_args(c, argc, argv, NULL, NULL, NULL, &first);

	if (rc || argc - first != 1)
		return fprintf(stderr, "canaryctl: usage: %s NAME\n", verb), 2;
	return with_maps(c, emergency_clear, argv[first]);
}

/* ---- uninstall ---- */

static int uninstall(struct ctl *c)
{
	unsigned int removed = 0;
	int err;

	err = detach_all(&removed);
	if (!err)
		err = dp_unpin(c->bpffs);
	if (err) {
		fprintf(stderr, "canaryctl: uninstall: %s%s\n", strerror(-err),
			err == -EPERM ? " (telling canaryd's programs from others' needs "
					"CAP_SYS_ADMIN: run as root)" :
					"");
		return 1;
	}
	if (c->json) {
		json_t *out = json_pack("{s:I, s:s}", "programs_detached", (json_int_t)removed,
					"bpffs", c->bpffs);

		print_doc(c, out);
		json_decref(out);
	} else {
		printf("detached %u programs; removed the maps pinned under %s\n", removed,
		       c->bpffs);
	}
	return 0;
}

static int cmd_uninstall(struct ctl *c, const char *verb, int argc, char **argv)
{
	int first, rc = verb_args(c, argc, argv, NULL, NULL, NULL, &first);

	if (rc || first < argc)
		return fprintf(stderr, "canaryctl: usage: %s\n", verb), 2;
	return uninstall(c);
}

/* ---- attachments ---- */

#define MAX_ATTACHMENTS 1024

static json_t *attachment_json(const struct attachment *a)
{
	return json_pack("{s:s, s:i, s:s, s:s, s:I}", "interface", a->ifname, "ifindex", a->ifindex,
			 "hook", a->hook, "program", a->prog_name, "id", (json_int_t)a->prog_id);
}

/*
 * Where our programs are attached in this network namespace, read from the
 * kernel (no pinned map, no agent): tc filters, tcx lists and XDP.
 */
static int show_attachments(struct ctl *c)
{
	struct attachment *list = calloc(MAX_ATTACHMENTS, sizeof(*list));
	int n, i;

	if (!list)
		return fprintf(stderr, "canaryctl: out of memory\n"), 1;
	n = attach_list(list, MAX_ATTACHMENTS);
	if (n < 0) {
		fprintf(stderr, "canaryctl: attachments: %s%s\n", strerror(-n),
			n == -EPERM ?
				" (reading the hooks needs CAP_NET_ADMIN, telling canaryd's programs from others' CAP_SYS_ADMIN)" :
				"");
		free(list);
		return 1;
	}
	if (n > MAX_ATTACHMENTS) {
		fprintf(stderr, "canaryctl: attachments: showing %d of %d\n", MAX_ATTACHMENTS, n);
		n = MAX_ATTACHMENTS;
	}
	if (c->json) {
		json_t *arr = json_array();

		for (i = 0; i < n; i++)
			json_array_append_new(arr, attachment_json(&list[i]));
		print_doc(c, arr);
		json_decref(arr);
	} else {
		printf("%-16s %-8s %-12s %-18s %s\n", "INTERFACE", "IFINDEX", "HOOK", "PROGRAM",
		       "ID");
		for (i = 0; i < n; i++)
			printf("%-16s %-8d %-12s %-18s %u\n", list[i].ifname, list[i].ifindex,
			       list[i].hook, list[i].prog_name, list[i].prog_id);
		printf("%d attachments\n", n);
	}
	free(list);
	return 0;
}

static int cmd_attachments(struct ctl *c, const char *verb, int argc, char **argv)
{
	int first, rc = verb_args(c, argc, argv, NULL, NULL, NULL, &first);

	if (rc || first < argc)
		return fprintf(stderr, "canaryctl: usage: %s\n", verb), 2;
	return show_attachments(c);
}

/* ---- rollout verbs, through the API ---- */

static int api_error(long status, json_t *reply)
{
	const char *msg = json_string_value(json_object_get(reply, "error"));

	fprintf(stderr, "canaryctl: %s (HTTP %ld)\n", msg ? msg : "request failed", status);
	return 1;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

struct status_opts {
	bool watch, until_done;
	long long timeout_ms; /* 0: none */
	const char *timeout;  /* as given, for the message */
};

static int status_opt(int opt, const char *val, void *arg)
{
	struct status_opts *o = arg;

	switch (opt) {
	case 'w':
		o->watch = true;
		return 0;
	case 'u':
		o->watch = o->until_done = true;
		return 0;
	case 'T':
		o->timeout = val;
		o->timeout_ms = parse_duration_ms(val);
		if (o->timeout_ms > 0)
			return 0;
		fprintf(stderr,
			"canaryctl: status: --timeout: a duration > 0 (90s, 5m, 1h, 500ms), "
			"got \"%s\"\n",
			val);
		return 2;
	}
	return 2;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Sleep up to 1 s, less when the deadline (0: none) is nearer. */
static void nap(long long deadline_ms)
{
	long long ms = 1000;
	struct timespec ts;

	if (deadline_ms && deadline_ms - now_ms() < ms)
		ms = deadline_ms - now_ms() > 0 ? deadline_ms - now_ms() : 0;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
}

/*
 * Redraw in place every second; with until_done, stop once Healthy (0) or
 * Degraded (1), or after the timeout (EXIT_TIMEOUT). In JSON or YAML only
 * the final document is printed.
 */
static int watch_rollout(struct ctl *c, const char *path, const struct status_opts *o)
{
	struct sigaction sa = { .sa_handler = on_interrupt };
	bool tty = isatty(STDOUT_FILENO), color = use_color(), until_done = o->until_done;
	long long deadline = o->timeout_ms ? now_ms() + o->timeout_ms : 0;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!interrupted) {
		char phase[32] = "unknown";
		json_t *reply;
		long status;
		int rc;

		if (client_call(&c->api, "GET", path, NULL, &status, &reply))
			return 1;
		if (status != 200) {
			rc = api_error(status, reply);
			json_decref(reply);
			return rc;
		}
		if (json_string_value(json_object_get(reply, "phase")))
			snprintf(phase, sizeof(phase), "%s",
				 json_string_value(json_object_get(reply, "phase")));
		rc = !strcmp(phase, "Degraded");
		if (!c->json) {
			if (tty)
				fputs("\033[H\033[2J", stdout);
			status_print_rollout(stdout, reply, color);
			if (!tty)
				fputs("\n", stdout);
			fflush(stdout);
		}
		if (until_done && (!strcmp(phase, "Healthy") || rc)) {
			if (c->json)
				print_doc(c, reply);
			json_decref(reply);
			return rc;
		}
		json_decref(reply);
		if (deadline && now_ms() >= deadline) {
			fprintf(stderr,
				"canaryctl: status: not done after --timeout %s (phase %s)\n",
				o->timeout, phase);
			return EXIT_TIMEOUT;
		}
		nap(deadline);
	}
	return 0;
}

static int cmd_status(struct ctl *c, const char *verb, int argc, char **argv)
{
	static const struct option own[] = {
		{ "watch", no_argument, NULL, 'w' },
		{ "until-done", no_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 'T' },
		{ 0 },
	};
	struct status_opts o = { 0 };
	const char *name = NULL;
	char path[128];
	json_t *reply;
	long status;
	int first, rc = verb_args(c, argc, argv, own, status_opt, &o, &first);

	if (!rc && argc - first > 1) {
		fprintf(stderr, "canaryctl: status: unexpected \"%s\"\n", argv[first + 1]);
		rc = 2;
	}
	if (rc)
		return fprintf(stderr,
			       "canaryctl: usage: %s [NAME] [--watch] "
			       "[--until-done [--timeout DURATION]]\n",
			       verb),
		       rc;
	name = first < argc ? argv[first] : NULL;
	if (o.timeout_ms && !o.until_done)
		return fprintf(stderr, "canaryctl: status: --timeout goes with --until-done\n"), 2;
	if (o.watch && !name)
		return fprintf(stderr, "canaryctl: status --watch needs a NAME\n"), 2;
	snprintf(path, sizeof(path), "/api/v1/rollouts%s%s", name ? "/" : "", name ? name : "");
	if (o.until_done || (o.watch && !c->json))
		return watch_rollout(c, path, &o);
	if (client_call(&c->api, "GET", path, NULL, &status, &reply))
		return 1;
	if (status != 200)
		rc = api_error(status, reply);
	else if (c->json)
		print_doc(c, reply);
	else if (name)
		status_print_rollout(stdout, reply, use_color());
	else
		status_print_list(stdout, json_object_get(reply, "rollouts"));
	json_decref(reply);
	return rc;
}

/* "12.3 s", or "-" for null. */
static void print_seconds(const char *label, json_t *v)
{
	if (json_is_number(v))
		printf("  %s %.3f s", label, json_number_value(v));
	else
		printf("  %s -", label);
}

static void print_history(json_t *history)
{
	size_t i, k;

	if (!json_array_size(history))
		printf("no ended revisions recorded\n");
	for (i = 0; i < json_array_size(history); i++) {
		json_t *h = json_array_get(history, i), *vs = json_object_get(h, "verdicts");

		printf("%-12s %-10s step %lld at %g%%",
		       json_string_value(json_object_get(h, "revision")),
		       json_string_value(json_object_get(h, "outcome")),
		       (long long)json_integer_value(json_object_get(h, "step")),
		       json_number_value(json_object_get(h, "weight")));
		print_seconds("duration", json_object_get(h, "duration_s"));
		print_seconds("time to rollback", json_object_get(h, "time_to_rollback_s"));
		printf("\n  %s\n", json_string_value(json_object_get(h, "message")));
		for (k = 0; k < json_array_size(vs); k++) {
			json_t *v = json_array_get(vs, k);

			printf("    %-18s %-12s %s\n",
			       json_string_value(json_object_get(v, "metric")),
			       json_string_value(json_object_get(v, "result")),
			       json_string_value(json_object_get(v, "detail")));
		}
	}
}

/* history NAME: how the rollout's past revisions ended. */
static int cmd_history(struct ctl *c, const char *verb, int argc, char **argv)
{
	char path[128];
	json_t *reply;
	long status;
	int first, rc = verb_args(c, argc, argv, NULL, NULL, NULL, &first);

	if (rc || argc - first != 1)
		return fprintf(stderr, "canaryctl: usage: %s NAME\n", verb), 2;
	snprintf(path, sizeof(path), "/api/v1/rollouts/%s/history", argv[first]);
	if (client_call(&c->api, "GET", path, NULL, &status, &reply))
		return 1;
	if (status != 200)
		rc = api_error(status, reply);
	else if (c->json)
		print_doc(c, reply);
	else
		print_history(json_object_get(reply, "history"));
	json_decref(reply);
	return rc;
}

/* A number of a JSON object, 0 when absent. */
static double jnum(json_t *obj, const char *key)
{
	return json_number_value(json_object_get(obj, key));
}

/* The rollout's analysis settings, as the API reports them ("analysis"."config"). */
static int analysis_from_json(json_t *c, struct analysis_cfg *a)
{
	json_t *ms = json_object_get(c, "metrics");
	size_t i;
	int k;

	memset(a, 0, sizeof(*a));
	if (!json_is_object(c) || !json_is_array(ms))
		return -1;
	a->interval_ms = (__s64)json_integer_value(json_object_get(c, "interval_ms"));
	a->min_requests = (__u64)json_integer_value(json_object_get(c, "min_requests"));
	a->failure_limit = (__u32)json_integer_value(json_object_get(c, "failure_limit"));
	a->confidence = json_number_value(json_object_get(c, "confidence"));
	for (i = 0; i < json_array_size(ms) && a->n_metrics < CONFIG_MAX_METRICS; i++) {
		json_t *m = json_array_get(ms, i);
		struct metric_cfg *mc = &a->metrics[a->n_metrics];
		const char *kind = json_string_value(json_object_get(m, "kind"));

		for (k = 0; k < METRIC_KIND_COUNT; k++)
			if (kind && !strcmp(kind, metric_kind_name(k)))
				break;
		/* External checks cannot be simulated: the plan leaves them out. */
		if (k == METRIC_KIND_COUNT || k == METRIC_PROMETHEUS || k == METRIC_WEBHOOK)
			continue;
		mc->kind = (enum metric_kind)k;
		mc->max = json_number_value(json_object_get(m, "max"));
		mc->max_increase = json_number_value(json_object_get(m, "max_increase"));
		mc->quantile = json_number_value(json_object_get(m, "quantile"));
		mc->failure_limit = json_integer_value(json_object_get(m, "failure_limit"));
		mc->dry_run = json_is_true(json_object_get(m, "dry_run"));
		a->n_metrics++;
	}
	return 0;
}

struct plan_opts {
	double errors, latency, power, target_s;
};

static int plan_opt(int opt, const char *val, void *arg)
{
	struct plan_opts *o = arg;
	double *dst = opt == 'e' ? &o->errors :
		      opt == 'l' ? &o->latency :
		      opt == 'p' ? &o->power :
				   &o->target_s;
	const char *flag = opt == 'e' ? "--errors" :
			   opt == 'l' ? "--latency" :
			   opt == 'p' ? "--power" :
					"--target";
	char *end;

	*dst = strtod(val, &end);
	if (end == val || *end || *dst < 0)
		return fprintf(stderr, "canaryctl: plan: %s: a number >= 0, got \"%s\"\n", flag,
			       val),
		       2;
	return 0;
}

/* plan's arguments; 0, or 2 on a usage error. */
static int plan_args(struct ctl *c, int argc, char **argv, struct plan_opts *o, int *first)
{
	static const struct option own[] = {
		{ "errors", required_argument, NULL, 'e' },
		{ "latency", required_argument, NULL, 'l' },
		{ "power", required_argument, NULL, 'p' },
		{ "target", required_argument, NULL, 'g' },
		{ 0 },
	};

	*o = (struct plan_opts){ .errors = 2, .latency = 0.2, .power = 0.9, .target_s = 0 };
	if (verb_args(c, argc, argv, own, plan_opt, o, first) || argc - *first != 1)
		return 2;
	if (o->power <= 0 || o->power >= 1)
		return fprintf(stderr, "canaryctl: plan: --power: between 0 and 1\n"), 2;
	return 0;
}

/* Simulated steps per figure, and how long one may run: a plan takes seconds. */
#define PLAN_RUNS  50
#define PLAN_MAX_S 300

/* "12.5 s", or "not within 5m". */
static void print_time(double s)
{
	if (s < 0)
		printf(" %16s", "not within 5m");
	else
		printf(" %14.1f s", s);
}

/* What each weight below 100% needs: its pause, or -1 when nothing is caught in time. */
struct plan_row {
	double weight, pause_s;
};

/*
 * The steps to propose: each weight with a pause as long as it needs. With a
 * target, the lowest weights (which need the longest pauses) go first until
 * the pauses fit, keeping at least one; a weight that catches nothing in
 * time is left out.
 */
static void propose(const struct plan_row *rows, int n, double target_s)
{
	double total = 0;
	int i, first = 0, caught = 0;

	for (i = 0; i < n; i++) {
		total += rows[i].pause_s > 0 ? ceil(rows[i].pause_s) : 0;
		caught += rows[i].pause_s > 0;
	}
	if (!caught) {
		printf("proposed: none; no weight catches a regression that size in time\n");
		return;
	}
	while (target_s > 0 && total > target_s && first < n - 1) {
		total -= rows[first].pause_s > 0 ? ceil(rows[first].pause_s) : 0;
		first++;
	}
	printf("proposed (%.0f s of pauses%s): steps: [", total,
	       target_s <= 0	 ? "" :
	       total <= target_s ? ", within the target" :
				   ", over the target even with one weight");
	for (i = first; i < n; i++)
		if (rows[i].pause_s > 0)
			printf("{setWeight: %g}, {pause: {duration: %.0fs}}, ", rows[i].weight,
			       ceil(rows[i].pause_s));
	printf("{setWeight: 100}]\n");
}

static void plan_steps(json_t *r, const struct analysis_cfg *a, const struct plan_opts *o)
{
	json_t *stable = json_object_get(r, "stable"), *steps = json_object_get(r, "steps");
	double rps = jnum(json_object_get(r, "traffic"), "rps");
	struct plan_traffic t = {
		.rps = rps,
		.err_p = fmax(jnum(stable, "error_ratio"), 0.001),
		.p50_us = fmax(jnum(stable, "latency_p50_ms"), 1) * 1000,
		.p99_us = fmax(jnum(stable, "latency_p99_ms"), 2) * 1000,
	};
	const struct plan_regression errs = { .err_ratio = o->errors },
				     slow = { .err_ratio = 1, .lat_increase = o->latency };
	struct plan_row rows[CONFIG_MAX_STEPS];
	int n = 0, missed = 0;
	size_t i;

	printf("traffic %.1f req/s, stable errors %.2f%%, p50 %.1f ms, p99 %.1f ms; power %.0f%%\n",
	       rps, 100 * t.err_p, t.p50_us / 1000, t.p99_us / 1000, 100 * o->power);
	printf("%-8s %12s %16s %16s\n", "weight", "canary rps", "x errors caught", "slower caught");
	for (i = 0; i < json_array_size(steps) && n < CONFIG_MAX_STEPS; i++) {
		json_t *w = json_object_get(json_array_get(steps, i), "setWeight");
		double e, l;

		if (!json_is_number(w) || json_number_value(w) >= 100)
			continue;
		t.canary_share = json_number_value(w) / 100;
		e = plan_detect_time(a, &t, &errs, o->power, PLAN_RUNS, PLAN_MAX_S, 1);
		l = plan_detect_time(a, &t, &slow, o->power, PLAN_RUNS, PLAN_MAX_S, 2);
		printf("%6.2f%% %12.1f", 100 * t.canary_share, rps * t.canary_share);
		print_time(e);
		print_time(l);
		putchar('\n');
		rows[n].weight = json_number_value(w);
		rows[n++].pause_s = e < 0 || l < 0 ? -1 : fmax(e, l);
		missed += e < 0 || l < 0;
	}
	propose(rows, n, o->target_s);
	if (missed)
		printf("%d weight(s) cannot catch a regression that size within %d s at this "
		       "traffic:\nraise the weight or the traffic, or accept a larger regression\n",
		       missed, PLAN_MAX_S);
}

static int plan_fail(const char *what, const char *name)
{
	fprintf(stderr, "canaryctl: plan: %s %s\n", what, name);
	return 1;
}

/* plan NAME: how long each step must last for the analysis to catch a regression. */
static int cmd_plan(struct ctl *c, const char *verb, int argc, char **argv)
{
	struct analysis_cfg a;
	struct plan_opts o;
	const char *name;
	char path[128];
	json_t *reply;
	long status;
	int first, rc = 0;

	(void)verb;
	if (plan_args(c, argc, argv, &o, &first))
		return fprintf(stderr, "canaryctl: usage: plan NAME [--errors X] [--latency F] "
				       "[--power P] [--target SECONDS]\n"),
		       2;
	name = argv[first];
	snprintf(path, sizeof(path), "/api/v1/rollouts/%s", name);
	if (client_call(&c->api, "GET", path, NULL, &status, &reply))
		return 1;
	if (status != 200)
		rc = api_error(status, reply);
	else if (analysis_from_json(json_object_get(json_object_get(reply, "analysis"), "config"),
				    &a))
		rc = plan_fail("the agent reports no analysis settings for", name);
	else if (jnum(json_object_get(reply, "traffic"), "rps") <= 0)
		rc = plan_fail("no traffic measured yet for", name);
	else
		plan_steps(reply, &a, &o);
	json_decref(reply);
	return rc;
}

/* promote/pause/resume/abort/retry/set-weight NAME ... */
static int promote_opt(int opt, const char *val, void *arg)
{
	(void)opt;
	(void)val;
	*(bool *)arg = true;
	return 0;
}

static int cmd_verb(struct ctl *c, const char *verb, int argc, char **argv)
{
	static const struct option promote[] = {
		{ "full", no_argument, NULL, 'F' },
		{ 0 },
	};
	bool is_promote = !strcmp(verb, "promote"), full = false;
	char path[128], body[64];
	const char *action = verb, *payload = NULL;
	json_t *reply;
	long status;
	__u16 bp;
	int first, rc;

	rc = verb_args(c, argc, argv, is_promote ? promote : NULL, is_promote ? promote_opt : NULL,
		       &full, &first);
	if (rc) {
		argc = -1; /* a usage error: on to the usage line */
	} else {
		argc -= first;
		argv += first;
		if (argc < 1)
			return fprintf(stderr, "canaryctl: %s needs a rollout NAME\n", verb), 2;
	}
	if (!strcmp(verb, "set-weight")) {
		char err[NETPARSE_ERR_LEN];

		if (argc != 2)
			return fprintf(stderr, "canaryctl: usage: set-weight NAME PERCENT\n"), 2;
		if (parse_weight_percent(argv[1], &bp, err, sizeof(err)))
			return fprintf(stderr, "canaryctl: set-weight: %s\n", err), 2;
		snprintf(body, sizeof(body), "{\"weight\": %u.%02u}", bp / 100, bp % 100);
		action = "weight";
		payload = body;
	} else if (full && argc == 1) {
		action = "promote-full";
	} else if (argc != 1) {
		return fprintf(stderr, "canaryctl: usage: %s NAME%s\n", verb,
			       strcmp(verb, "promote") ? "" : " [--full]"),
		       2;
	}
	snprintf(path, sizeof(path), "/api/v1/rollouts/%s/%s", argv[0], action);
	if (client_call(&c->api, "POST", path, payload, &status, &reply))
		return 1;
	if (status != 200)
		rc = api_error(status, reply);
	else if (c->json)
		print_doc(c, reply);
	else
		printf("%s: %s -> %s%s%s\n", argv[0], action,
		       json_string_value(json_object_get(reply, "phase")),
		       *json_string_value(json_object_get(reply, "message")) ? ": " : "",
		       json_string_value(json_object_get(reply, "message")));
	json_decref(reply);
	return rc;
}

typedef int (*verb_fn)(struct ctl *c, const char *verb, int argc, char **argv);

static verb_fn find_verb(const char *verb)
{
	static const struct {
		const char *name;
		verb_fn fn;
	} verbs[] = {
		{ "status", cmd_status },
		{ "promote", cmd_verb },
		{ "pause", cmd_verb },
		{ "resume", cmd_verb },
		{ "abort", cmd_verb },
		{ "retry", cmd_verb },
		{ "set-weight", cmd_verb },
		{ "history", cmd_history },
		{ "plan", cmd_plan },
		{ "maps", cmd_maps },
		{ "flows", cmd_flows },
		{ "attachments", cmd_attachments },
		{ "emergency-rollback", cmd_emergency_rollback },
		{ "emergency-clear", cmd_emergency_clear },
		{ "uninstall", cmd_uninstall },
	};
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(verb, verbs[i].name))
			return verbs[i].fn;
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option own[] = {
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct ctl c = { .bpffs = DP_DEFAULT_BPFFS, .api = { .socket_path = API_DEFAULT_SOCKET } };
	struct option longopts[MAX_OPTS];
	char prog[64];
	const char *verb;
	verb_fn fn;
	int opt;

	/* Installed as kubectl-canary: the kubectl plugin, on the API server. */
	if (argc > 0 && plugin_invoked(argv[0]))
		return plugin_main(argc, argv);
	libbpf_set_print(attach_libbpf_print);
	merge_opts(longopts, own);
	/* "+": the options before the verb; verb_args takes those after it. */
	while ((opt = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
		int rc = global_opt(&c, opt, optarg);

		if (rc > 0)
			return rc;
		if (rc == 0)
			continue;
		if (opt == 'V') {
			printf("canaryctl %s\n", CANARY_VERSION);
			return 0;
		}
		usage(stderr);
		return 2;
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	verb = argv[optind];
	fn = find_verb(verb);
	if (!fn) {
		fprintf(stderr, "canaryctl: unknown verb \"%s\"\n", verb);
		usage(stderr);
		return 2;
	}
	/* The verb's argv: "canaryctl VERB" first, for getopt's messages. */
	snprintf(prog, sizeof(prog), "canaryctl %s", verb);
	argv += optind;
	argc -= optind;
	argv[0] = prog;
	return fn(&c, verb, argc, argv);
}
