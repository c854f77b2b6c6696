// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * canaryd, the agent: loads the data path, attaches it to the node's
 * interfaces (and to new ones as they appear), and runs the configured
 * rollouts: every tick it reads the kernel's counters, judges each canary
 * and moves its weight, or rolls it back. It reloads its configuration on
 * change and on SIGHUP, and leaves programs and maps in place when it exits,
 * so traffic keeps flowing with the last weights.
 */
#include <bpf/libbpf.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "api.h"
#include "attach.h"
#include "caps.h"
#include "config.h"
#include "configwatch.h"
#include "coord_kube.h"
#include "ctlifetimes.h"
#include "dataplane.h"
#include "etcd.h"
#include "external.h"
#include "fleet.h"
#include "healthcheck.h"
#include "hooks.h"
#include "hostsock.h"
#include "kubeconfig.h"
#include "kubeeps.h"
#include "kubespecs.h"
#include "linkwatch.h"
#include "log.h"
#include "metrics.h"
#include "probe.h"
#include "sandbox.h"
#include "state.h"
#include "version.h"

#define DEFAULT_INTERFACES "veth*,eth*"
#define DEFAULT_TICK_MS	   250
#define PROBE_TIMEOUT_MS   5000

struct options {
	const char *config;
	bool rollouts_from_kube; /* --rollouts-from kube: the Rollouts of the API, no --config */
	const char *bpffs;
	const char *state_dir;
	const char *interfaces;
	const char *probe; /* --probe PATH: ask the running agent, then exit */
	struct api_opts api;
	enum attach_mode mode;
	enum log_format log_format;
	int tick_ms;
	__u32 conntrack_entries;	  /* 0: the pinned map's size, or the default */
	struct ct_lifetimes ct_lifetimes; /* --conntrack-lifetimes over the defaults */
	unsigned int max_removals;	  /* 0: no limit */
	struct hostsock_opts host;	  /* --host-cgroup, --host-netns-only */
	const char *kubeconfig;		  /* --kubeconfig; NULL: in-cluster when in a pod */
	const char *kube_namespace;	  /* --kube-namespace: for rollouts without one */
	bool allow_empty_config;
	bool check_config;
	bool cleanup;
	/* --coordinator etcd|kube: one rollout across a fleet (fleet.h) */
	struct {
		const char *kind; /* NULL: this node decides alone */
		const char *endpoints;
		long kube_lease_s; /* kube: --kube-lease-duration (0: the default) */
		const char *prefix;
		const char *node; /* default: the hostname */
		struct etcd_tls tls;
	} coord;
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else
		stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: canaryd --config FILE|DIR | --rollouts-from kube\n"
		"               [--interfaces GLOB[,GLOB...]] [--bpffs DIR]\n"
		"               [--state-dir DIR] [--api-socket PATH] [--listen ADDR:PORT]\n"
		"               [--token-file FILE] [--tls-cert FILE --tls-key FILE]\n"
		"               [--log-format logfmt|json] [--attach tc|tcx|xdp]\n"
		"               [--tick-ms N] [--conntrack-entries N]\n"
		"               [--conntrack-lifetimes NAME=DURATION[,...]] [--check-config]\n"
		"               [--allow-empty-config] [--max-removals N]\n"
		"               [--host-cgroup PATH|off] [--host-netns-only|--host-all-netns]\n"
		"               [--kubeconfig FILE] [--kube-namespace NS]\n"
		"               [--coordinator etcd --etcd-endpoints URL[,URL...]\n"
		"                [--etcd-prefix PREFIX] [--node-name NAME]\n"
		"                [--etcd-cacert FILE --etcd-cert FILE --etcd-key FILE]]\n"
		"               [--coordinator kube [--kubeconfig FILE] [--kube-namespace NS]\n"
		"                [--kube-lease-duration SECONDS] [--node-name NAME]]\n"
		"       canaryd --cleanup [--bpffs DIR]\n"
		"       canaryd --probe /healthz|/readyz [--api-socket PATH]\n"
		"       canaryd --version\n"
		"defaults: --interfaces '%s' --bpffs %s --state-dir %s\n"
		"          --api-socket %s, no TCP listener, --attach tc --tick-ms %d\n"
		"          --conntrack-entries %d (two per flow)\n"
		"          --conntrack-lifetimes closed=10s,syn=60s,established=6h,udp=60s,reply=60s\n"
		"          --host-cgroup: the cgroup v2 root, sockets of the host's namespace\n"
		"          Kubernetes API (spec.*.service, --rollouts-from kube): in-cluster in a\n"
		"          pod, else --kubeconfig; --rollouts-from kube reads the Rollouts of\n"
		"          --kube-namespace (else the context's or the pod's namespace)\n",
		DEFAULT_INTERFACES, DP_DEFAULT_BPFFS, STATE_DEFAULT_DIR, API_DEFAULT_SOCKET,
		DEFAULT_TICK_MS, CANARY_CT_MAX_ENTRIES);
}

/* Print "canaryd: --flag: message" and exit 2, the usage-error status. */
static void __attribute__((noreturn, format(printf, 2, 3)))
die_usage(const char *flag, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "canaryd: %s: ", flag);
	va_start(ap, fmt);
	/* clang-analyzer 14 misses the va_start of a noreturn function. */
	vfprintf(stderr, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

#define NODE_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static void check_kube_args(struct options *o)
{
	static char host[COORD_NODE_LEN];

	if (o->coord.endpoints)
		die_usage("--etcd-endpoints", "only means something with --coordinator etcd");
	if (!o->coord.node) {
		if (gethostname(host, sizeof(host) - 1))
			die_usage("--node-name", "no hostname to default to: give one");
		o->coord.node = host;
	}
	/* It goes into Lease names and label values: see coord_kube.h. */
	if (!coord_kube_node_name_ok(o->coord.node))
		die_usage("--node-name",
			  "with kube, 1..%d characters of [a-z0-9.-], each dot-separated part "
			  "starting and ending with a letter or digit; got \"%s\"",
			  COORD_NODE_LEN - 1, o->coord.node);
}

static void check_coord_args(struct options *o)
{
	static char host[COORD_NODE_LEN];

	if (!o->coord.kind) {
		if (o->coord.endpoints)
			die_usage("--etcd-endpoints",
				  "only means something with --coordinator etcd");
		if (o->coord.kube_lease_s)
			die_usage("--kube-lease-duration",
				  "only means something with --coordinator kube");
		return;
	}
	if (!strcmp(o->coord.kind, "kube")) {
		check_kube_args(o);
		return;
	}
	if (o->coord.kube_lease_s)
		die_usage("--kube-lease-duration", "only means something with --coordinator kube");
	if (!o->coord.endpoints)
		die_usage("--coordinator", "etcd needs --etcd-endpoints URL[,URL...]");
	if (!o->coord.node) {
		if (gethostname(host, sizeof(host) - 1))
			die_usage("--node-name", "no hostname to default to: give one");
		o->coord.node = host;
	}
	/* It goes into etcd keys and into /metrics labels: keep it plain. */
	if (!*o->coord.node || strlen(o->coord.node) >= COORD_NODE_LEN ||
	    strspn(o->coord.node, NODE_NAME_CHARS) != strlen(o->coord.node))
		die_usage("--node-name", "1..%d characters of [A-Za-z0-9._-], got \"%s\"",
			  COORD_NODE_LEN - 1, o->coord.node);
	if (!(o->coord.tls.cert) != !(o->coord.tls.key))
		die_usage("--etcd-cert", "--etcd-cert and --etcd-key go together");
	if (!o->coord.prefix)
		o->coord.prefix = "/canaryd";
}

/* Exactly one place the Rollouts come from: --config, or the API (--rollouts-from kube). */
static void check_rollout_source(const struct options *o)
{
	if (o->rollouts_from_kube && o->config)
		die_usage("--config", "not with --rollouts-from kube: the Rollouts come from "
				      "the Kubernetes API, a file would be a second truth");
	if (o->rollouts_from_kube && o->check_config)
		die_usage("--check-config", "checks --config; with --rollouts-from kube the "
					    "agent logs each Rollout it refuses");
	if (!o->config && !o->rollouts_from_kube && !o->cleanup && !o->probe)
		die_usage("--config", "required: a Rollout YAML file or a directory of them "
				      "(or --rollouts-from kube)");
}

static void parse_args(int argc, char **argv, struct options *o)
{
	enum {
		O_TICK = 256,
		O_CHECK,
		O_SOCKET,
		O_LISTEN,
		O_TOKEN,
		O_CT_ENTRIES,
		O_ALLOW_EMPTY,
		O_MAX_REMOVALS,
		O_COORDINATOR,
		O_ETCD_ENDPOINTS,
		O_ETCD_PREFIX,
		O_NODE_NAME,
		O_ETCD_CACERT,
		O_ETCD_CERT,
		O_ETCD_KEY,
		O_KUBE_LEASE,
		O_PROBE,
		O_TLS_CERT,
		O_TLS_KEY,
		O_CT_LIFETIMES,
		O_HOST_CGROUP,
		O_HOST_NETNS_ONLY,
		O_HOST_ALL_NETNS,
		O_KUBECONFIG,
		O_KUBE_NAMESPACE,
		O_ROLLOUTS_FROM,
	};
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "interfaces", required_argument, NULL, 'i' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "attach", required_argument, NULL, 'a' },
		{ "log-format", required_argument, NULL, 'l' },
		{ "tick-ms", required_argument, NULL, O_TICK },
		{ "conntrack-entries", required_argument, NULL, O_CT_ENTRIES },
		{ "conntrack-lifetimes", required_argument, NULL, O_CT_LIFETIMES },
		{ "api-socket", required_argument, NULL, O_SOCKET },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "tls-cert", required_argument, NULL, O_TLS_CERT },
		{ "tls-key", required_argument, NULL, O_TLS_KEY },
		{ "check-config", no_argument, NULL, O_CHECK },
		{ "allow-empty-config", no_argument, NULL, O_ALLOW_EMPTY },
		{ "max-removals", required_argument, NULL, O_MAX_REMOVALS },
		{ "coordinator", required_argument, NULL, O_COORDINATOR },
		{ "etcd-endpoints", required_argument, NULL, O_ETCD_ENDPOINTS },
		{ "etcd-prefix", required_argument, NULL, O_ETCD_PREFIX },
		{ "node-name", required_argument, NULL, O_NODE_NAME },
		{ "etcd-cacert", required_argument, NULL, O_ETCD_CACERT },
		{ "etcd-cert", required_argument, NULL, O_ETCD_CERT },
		{ "etcd-key", required_argument, NULL, O_ETCD_KEY },
		{ "kube-lease-duration", required_argument, NULL, O_KUBE_LEASE },
		{ "probe", required_argument, NULL, O_PROBE },
		{ "host-cgroup", required_argument, NULL, O_HOST_CGROUP },
		{ "host-netns-only", no_argument, NULL, O_HOST_NETNS_ONLY },
		{ "host-all-netns", no_argument, NULL, O_HOST_ALL_NETNS },
		{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
		{ "kube-namespace", required_argument, NULL, O_KUBE_NAMESPACE },
		{ "rollouts-from", required_argument, NULL, O_ROLLOUTS_FROM },
		{ "cleanup", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	char why[160];
	char *end;
	long ct;
	int c;

	ct_lifetimes_default(&o->ct_lifetimes);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->config = optarg;
			break;
		case 'i':
			o->interfaces = optarg;
			break;
		case 'b':
			o->bpffs = optarg;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		case 'a':
			if (attach_mode_parse(optarg, &o->mode))
				die_usage("--attach", "expected tc, tcx or xdp, got \"%s\"",
					  optarg);
			break;
		case 'l':
			if (log_format_parse(optarg, &o->log_format))
				die_usage("--log-format", "expected logfmt or json, got \"%s\"",
					  optarg);
			break;
		case O_TICK:
			o->tick_ms = (int)strtol(optarg, &end, 10);
			if (*end || o->tick_ms < 10 || o->tick_ms > 60000)
				die_usage("--tick-ms", "expected 10..60000, got \"%s\"", optarg);
			break;
		case O_CT_ENTRIES:
			ct = strtol(optarg, &end, 10);
			if (*end || ct < DP_CT_ENTRIES_MIN || ct > DP_CT_ENTRIES_MAX)
				die_usage("--conntrack-entries", "expected %d..%d, got \"%s\"",
					  DP_CT_ENTRIES_MIN, DP_CT_ENTRIES_MAX, optarg);
			o->conntrack_entries = (__u32)ct;
			break;
		case O_CT_LIFETIMES:
			if (ct_lifetimes_parse(optarg, &o->ct_lifetimes, why, sizeof(why)))
				die_usage("--conntrack-lifetimes", "%s", why);
			break;
		case O_CHECK:
			o->check_config = true;
			break;
		case O_ALLOW_EMPTY:
			o->allow_empty_config = true;
			break;
		case O_MAX_REMOVALS:
			ct = strtol(optarg, &end, 10);
			if (*end || ct < 0 || ct > CANARY_MAX_SERVICES)
				die_usage("--max-removals", "expected 0..%d, got \"%s\"",
					  CANARY_MAX_SERVICES, optarg);
			o->max_removals = (unsigned int)ct;
			break;
		case O_PROBE:
			if (strcmp(optarg, "/healthz") != 0 && strcmp(optarg, "/readyz") != 0)
				die_usage("--probe", "expected /healthz or /readyz, got \"%s\"",
					  optarg);
			o->probe = optarg;
			break;
		case O_SOCKET:
			o->api.socket_path = optarg;
			break;
		case O_LISTEN:
			o->api.listen = optarg;
			break;
		case O_TOKEN:
			o->api.token_file = optarg;
			break;
		case O_COORDINATOR:
			if (strcmp(optarg, "etcd") != 0 && strcmp(optarg, "kube") != 0)
				die_usage("--coordinator", "expected etcd or kube, got \"%s\"",
					  optarg);
			o->coord.kind = optarg;
			break;
		case O_ETCD_ENDPOINTS:
			o->coord.endpoints = optarg;
			break;
		case O_KUBE_LEASE:
			o->coord.kube_lease_s = strtol(optarg, &end, 10);
			if (*end || o->coord.kube_lease_s < 3 || o->coord.kube_lease_s > 300)
				die_usage("--kube-lease-duration", "3..300 seconds, got \"%s\"",
					  optarg);
			break;
		case O_ETCD_PREFIX:
			o->coord.prefix = optarg;
			break;
		case O_NODE_NAME:
			o->coord.node = optarg;
			break;
		case O_ETCD_CACERT:
			o->coord.tls.cacert = optarg;
			break;
		case O_ETCD_CERT:
			o->coord.tls.cert = optarg;
			break;
		case O_ETCD_KEY:
			o->coord.tls.key = optarg;
			break;
		case O_TLS_CERT:
			o->api.tls_cert = optarg;
			break;
		case O_TLS_KEY:
			o->api.tls_key = optarg;
			break;
		case O_HOST_CGROUP:
			if (!*optarg)
				die_usage("--host-cgroup", "expected a cgroup v2 directory or off");
			o->host.cgroup = optarg;
			break;
		case O_HOST_NETNS_ONLY:
			o->host.netns_only = true;
			break;
		case O_HOST_ALL_NETNS:
			o->host.netns_only = false;
			break;
		case O_KUBECONFIG:
			o->kubeconfig = optarg;
			break;
		case O_KUBE_NAMESPACE:
			if (!*optarg || strlen(optarg) >= CONFIG_KUBE_NAME_LEN)
				die_usage("--kube-namespace",
					  "expected 1..%d characters, got \"%s\"",
					  CONFIG_KUBE_NAME_LEN - 1, optarg);
			o->kube_namespace = optarg;
			break;
		case O_ROLLOUTS_FROM:
			if (strcmp(optarg, "kube") != 0 && strcmp(optarg, "config") != 0)
				die_usage("--rollouts-from", "expected kube or config, got \"%s\"",
					  optarg);
			o->rollouts_from_kube = !strcmp(optarg, "kube");
			break;
		case 'c':
			o->cleanup = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("canaryd %s\n", CANARY_VERSION);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc)
		die_usage(argv[optind], "unexpected argument");
	check_rollout_source(o);
	o->api.tick_ms = o->tick_ms;
	if (o->api.token_file && !o->api.listen)
		die_usage("--token-file", "only means something with --listen");
	check_coord_args(o);
	if (!o->api.tls_cert != !o->api.tls_key)
		die_usage(o->api.tls_cert ? "--tls-key" : "--tls-cert",
			  "--tls-cert and --tls-key go together");
	if (o->api.tls_cert && !o->api.listen)
		die_usage("--tls-cert", "only means something with --listen");
}

/*
 * Offline, a VIP read from a Service cannot be checked: say which ones, on
 * stderr, so that stdout stays the one line scripts read.
 */
static void print_unchecked_vips(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_rollouts; i++)
		if (cfg->rollouts[i].vip_service[0])
			fprintf(stderr,
				"%s: rollout \"%s\": spec.service.fromService %s: the VIP is that "
				"Service's ClusterIP, read by the agent through the Kubernetes API "
				"(not checked here)\n",
				cfg->rollouts[i].origin, cfg->rollouts[i].name,
				cfg->rollouts[i].vip_service);
}

static int check_config(const struct options *o)
{
	char err[CONFIG_ERR_LEN];
	struct config cfg;

	if (config_load(o->config, &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("%s: %zu rollout(s), valid\n", o->config, cfg.n_rollouts);
	print_unchecked_vips(&cfg);
	config_free(&cfg);
	return 0;
}

static int cleanup(const struct options *o)
{
	unsigned int removed = 0;
	char n[16];
	int err;

	err = detach_all(&removed);
	if (!err)
		err = dp_unpin(o->bpffs);
	snprintf(n, sizeof(n), "%u", removed);
	log_event(err ? CLOG_ERROR : CLOG_INFO, "cleanup", "programs_detached", n, "bpffs",
		  o->bpffs, "error", err ? strerror(-err) : "", "hint",
		  err == -EPERM ? "telling canaryd's programs from others' needs CAP_SYS_ADMIN" :
				  "");
	return err ? 1 : 0;
}

/*
 * One agent per bpffs directory and per state directory: an flock on the
 * directory itself, held for the life of the process and released by the
 * kernel when it dies. Two agents on one state directory would overwrite
 * each other's rollout state.
 */
static int lock_dir(const char *dir)
{
	int fd;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * The bpffs directory's own flock does not survive "rm -rf" of it: the agent
 * pins its maps again in a new directory that nobody holds, and a second
 * agent could lock that one. So the bpffs is also locked through a file
 * named after its path in LOCK_DIR, which that rm -rf leaves alone (the
 * systemd unit's RuntimeDirectory, the DaemonSet's hostPath).
 */
#define LOCK_DIR "/run/canaryd"

enum { LOCK_BPFFS_PATH, LOCK_BPFFS, LOCK_STATE, LOCK_COUNT };

static int lock_bpffs_path(const char *bpffs)
{
	char name[NAME_MAX + 1], path[PATH_MAX];
	size_t n = strlen(bpffs), i, j = 0;
	int fd;

	while (n > 1 && bpffs[n - 1] == '/')
		n--; /* "/x/" and "/x" are one directory */
	if (n + sizeof("bpffs.lock") > sizeof(name))
		return -ENAMETOOLONG;
	j = (size_t)snprintf(name, sizeof(name), "bpffs");
	for (i = 0; i < n; i++)
		name[j++] = (char)(bpffs[i] == '/' ? '-' : bpffs[i]);
	snprintf(name + j, sizeof(name) - j, ".lock");
	if (snprintf(path, sizeof(path), "%s/%s", LOCK_DIR, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (mkdir(LOCK_DIR, 0755) && errno != EEXIST)
		return -errno;
	fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void log_bpffs_lock(const char *bpffs, int err, const char *what)
{
	log_event(CLOG_ERROR,
		  err == -EWOULDBLOCK ? "another canaryd is running on this bpffs" : what, "bpffs",
		  bpffs, "error", strerror(-err));
}

/*
 * All three locks, or none (logged): the bpffs path's (LOCK_DIR), the bpffs
 * directory's (what older agents hold) and the state directory's.
 */
static int lock_dirs(const struct options *o, int fds[LOCK_COUNT])
{
	fds[LOCK_BPFFS_PATH] = lock_bpffs_path(o->bpffs);
	if (fds[LOCK_BPFFS_PATH] < 0) {
		log_bpffs_lock(o->bpffs, fds[LOCK_BPFFS_PATH],
			       "cannot lock the bpffs in " LOCK_DIR);
		return fds[LOCK_BPFFS_PATH];
	}
	fds[LOCK_BPFFS] = lock_dir(o->bpffs);
	if (fds[LOCK_BPFFS] < 0) {
		log_bpffs_lock(o->bpffs, fds[LOCK_BPFFS], "cannot lock the bpffs directory");
		close(fds[LOCK_BPFFS_PATH]);
		return fds[LOCK_BPFFS];
	}
	fds[LOCK_STATE] = lock_dir(o->state_dir);
	if (fds[LOCK_STATE] < 0) {
		log_event(CLOG_ERROR,
			  fds[LOCK_STATE] == -EWOULDBLOCK ?
				  "another canaryd is using this state directory" :
				  "cannot lock the state directory",
			  "state_dir", o->state_dir, "error", strerror(-fds[LOCK_STATE]));
		close(fds[LOCK_BPFFS]);
		close(fds[LOCK_BPFFS_PATH]);
		return fds[LOCK_STATE];
	}
	return 0;
}

/* Kubernetes Services (spec.*.service, spec.service.fromService); NULL without an API to ask. */
static struct kubeeps *kube_eps;

/*
 * Service-backed versions take the Services' ready endpoints, and a VIP
 * from a Service its ClusterIP, before the config is applied. Without them
 * yet the config waits (-ECANCELED: the running one stays), and is applied
 * again once they come.
 */
static int fill_from_services(struct config *cfg, char *err, size_t errlen)
{
	size_t i;
	int rc;

	for (i = 0; i < cfg->n_rollouts && !kube_eps; i++)
		if (config_uses_services(&cfg->rollouts[i])) {
			snprintf(err, errlen,
				 "rollout \"%s\" names a Service, and the agent has no Kubernetes "
				 "API (--kubeconfig FILE, or run in a pod)",
				 cfg->rollouts[i].name);
			return -EINVAL;
		}
	if (!kube_eps)
		return 0;
	rc = kubeeps_fill(kube_eps, cfg, err, errlen);
	kubeeps_follow(kube_eps, cfg, false);
	return rc == -EAGAIN ? -ECANCELED : rc;
}

/* The Rollouts of the API (NULL: from --config). */
static struct kubespecs *kube_rollouts;

/*
 * The rollouts to run: the files of --config, or the accepted Rollouts of
 * the API (each refused object was logged by kubespecs.c, and its last
 * accepted spec is in the set). -ECANCELED before the API was first listed.
 */
static int load_rollouts(const struct options *o, struct config *cfg)
{
	char err[CONFIG_ERR_LEN];
	int rc;

	if (!kube_rollouts) {
		if (!config_load(o->config, cfg, err, sizeof(err)))
			return 0;
		log_event(CLOG_ERROR, "config rejected: keeping the running one", "error", err);
		return -EINVAL;
	}
	rc = kubespecs_config(kube_rollouts, cfg, err, sizeof(err));
	if (rc == -EAGAIN)
		log_event(CLOG_INFO, "config not applied yet: keeping the pinned services", "error",
			  err);
	else if (rc)
		log_event(CLOG_ERROR, "config not applied: keeping the running one", "error", err);
	return rc == -EAGAIN ? -ECANCELED : rc;
}

static int reload(struct agent *a, const struct options *o)
{
	char err[CONFIG_ERR_LEN], n[16], source[CONFIG_KUBE_NAME_LEN + 16];
	struct config cfg;
	int rc = load_rollouts(o, &cfg);

	if (rc)
		return rc;
	rc = fill_from_services(&cfg, err, sizeof(err));
	if (rc) {
		log_event(CLOG_ERROR, "config not applied: keeping the running one", "error", err);
		config_free(&cfg);
		return rc;
	}
	rc = agent_apply_config(a, &cfg, err, sizeof(err));
	if (!rc && kube_eps)
		kubeeps_follow(kube_eps, &cfg, true);
	snprintf(n, sizeof(n), "%zu", cfg.n_rollouts);
	config_free(&cfg);
	if (rc)
		log_event(CLOG_ERROR, "config not applied: keeping the running one", "error",
			  rc == -ECANCELED ? err : strerror(-rc));
	else if (kube_rollouts) {
		snprintf(source, sizeof(source), "kube:%s", kubespecs_namespace(kube_rollouts));
		log_event(CLOG_INFO, "config applied", "source", source, "rollouts", n);
	} else {
		log_event(CLOG_INFO, "config applied", "path", o->config, "rollouts", n);
	}
	return rc;
}

struct link_ctx {
	const struct canary_dp *dp;
	const struct options *o;
};

static void on_new_link(int ifindex, const char *ifname, void *arg)
{
	const struct link_ctx *lc = arg;
	enum attach_mode mode = lc->o->mode;
	char idx[16];
	int err;

	if (!ifname_matches(lc->o->interfaces, ifname))
		return;
	snprintf(idx, sizeof(idx), "%d", ifindex);
	err = attach_interface(lc->dp, ifindex, &mode);
	if (err)
		log_event(CLOG_WARN, "attach failed", "ifname", ifname, "ifindex", idx, "error",
			  strerror(-err));
	else
		log_event(CLOG_INFO, "attached", "ifname", ifname, "ifindex", idx, "mode",
			  attach_mode_name(mode));
}

static __u64 mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

enum { FD_LINKS, FD_CONFIG, FD_COUNT };

/*
 * Reloads wait this long after the last change event, so an editor's or
 * Kubernetes' several writes make one reload, and a file re-written in a
 * loop cannot keep the agent reloading.
 */
#define RELOAD_DEBOUNCE_MS 300
/* While a rollout is judged, canary errors are looked for this often. */
#define ERROR_POLL_MS 20

static struct configwatch config_watch;

static int poll_timeout(__u64 now, __u64 next_tick, __u64 reload_at, __u64 next_error_poll)
{
	__u64 next = next_tick;

	if (reload_at && reload_at < next)
		next = reload_at;
	if (next_error_poll < next)
		next = next_error_poll;
	return next > now ? (int)(next - now) : 0;
}

static void set_endpoints(const char *ns, const char *service, const struct canary_backend *ready,
			  int n_ready, const struct canary_backend *draining, int n_draining,
			  void *arg)
{
	agent_set_service_endpoints(arg, ns, service, ready, n_ready, draining, n_draining);
}

/* Services' endpoint changes go to the maps within one error poll (20 ms). */
static void follow_services(struct agent *a, __u64 *reload_at)
{
	if (!kube_eps)
		return;
	kubeeps_deliver(kube_eps, set_endpoints, a);
	if (kubeeps_reload_wanted(kube_eps) && !*reload_at)
		*reload_at = mono_ms();
}

/* A Rollout added, changed or deleted in the API is applied within one error poll. */
static void follow_rollouts(__u64 *reload_at)
{
	if (kube_rollouts && kubespecs_changed(kube_rollouts) && !*reload_at)
		*reload_at = mono_ms();
}

/* Changes to --config's files (none to read with --rollouts-from kube). */
static bool config_files_changed(const struct options *o)
{
	return o->config && configwatch_read(&config_watch) > 0;
}

/* Until a stop signal: ticks, link events, configuration changes. */
static void run(struct agent *a, const struct options *o, struct pollfd fds[FD_COUNT])
{
	struct link_ctx lc = { .dp = a->dp, .o = o };
	__u64 next_tick = mono_ms(), next_error_poll = mono_ms(), reload_at = 0;

	while (!stop_requested) {
		__u64 now = mono_ms();

		if (poll(fds, FD_COUNT, poll_timeout(now, next_tick, reload_at, next_error_poll)) >
		    0) {
			if (fds[FD_LINKS].revents & POLLIN)
				linkwatch_read(fds[FD_LINKS].fd, on_new_link, &lc);
			if ((fds[FD_CONFIG].revents & POLLIN) && config_files_changed(o))
				reload_at = mono_ms() + RELOAD_DEBOUNCE_MS;
		}
		now = mono_ms();
		if (reload_requested || (reload_at && now >= reload_at)) {
			reload_requested = 0;
			reload_at = 0;
			reload(a, o);
		}
		/* A canary error does not wait for the tick: judge it now. */
		if (now >= next_error_poll) {
			next_error_poll = now + ERROR_POLL_MS;
			follow_services(a, &reload_at);
			follow_rollouts(&reload_at);
			if (agent_canary_errors_rose(a))
				next_tick = now;
		}
		if (mono_ms() >= next_tick) {
			agent_tick(a);
			/* A deleted config directory is watched again once it is back. */
			if (config_files_changed(o) && !reload_at)
				reload_at = mono_ms() + RELOAD_DEBOUNCE_MS;
			next_tick += o->tick_ms;
			if (next_tick < mono_ms()) /* fell behind: skip, never burst */
				next_tick = mono_ms() + o->tick_ms;
		}
	}
}

/* Ended rollouts: delivery metrics and each rollout's history (docs/metrics.md). */
static struct delivery delivery;

/* How long a starting node waits to read the fleet's state before it goes on alone. */
#define FLEET_START_WAIT_MS 3000

/* The API server and namespace: --kubeconfig (and its context's namespace) or the pod's. */
static int kube_conn_of(const struct options *o, struct kube_conn *conn, const char **ns, char *msg,
			size_t msglen)
{
	int rc = o->kubeconfig ? kubeconfig_load(o->kubeconfig, conn, msg, msglen) :
				 kube_conn_in_cluster(conn, KUBE_SA_DIR, msg, msglen);

	*ns = o->kube_namespace ? o->kube_namespace : (conn->ns[0] ? conn->ns : "default");
	/* Its sandbox forbids running programs, and a daemon has no one to log in. */
	if (!rc && conn->exec.command[0]) {
		snprintf(msg, msglen,
			 "%s: user.exec: the agent runs no credential plugin; give token, "
			 "tokenFile or a client certificate and key",
			 o->kubeconfig);
		rc = -1;
	}
	return rc ? -EINVAL : 0;
}

static int start_fleet_kube(struct agent *a, const struct options *o)
{
	struct kube_conn conn;
	struct kube_client cl;
	struct coord c;
	char msg[CONFIG_ERR_LEN] = "";
	const char *ns;
	int err = kube_conn_of(o, &conn, &ns, msg, sizeof(msg));

	if (!err)
		err = kube_conn_client(&conn, &cl);
	if (!err) {
		err = coord_kube_open(&c, &cl, ns, o->coord.node, o->coord.kube_lease_s);
		kube_client_close(&cl);
	}
	if (!err)
		err = fleet_start(&c, o->coord.node, FLEET_START_WAIT_MS, &a->fleet);
	if (err)
		log_event(CLOG_ERROR, "cannot start the coordinator", "coordinator", "kube",
			  "kubeconfig", o->kubeconfig ? o->kubeconfig : "in-cluster", "error",
			  msg[0] ? msg : strerror(-err));
	return err;
}

/* Before the config is applied: the shared state comes before the maps. */
static int start_fleet(struct agent *a, const struct options *o)
{
	struct coord c;
	int err;

	if (!o->coord.kind)
		return 0;
	if (!strcmp(o->coord.kind, "kube"))
		return start_fleet_kube(a, o);
	err = coord_etcd_open(&c, o->coord.endpoints, o->coord.prefix, o->coord.node,
			      &o->coord.tls);
	if (!err)
		err = fleet_start(&c, o->coord.node, FLEET_START_WAIT_MS, &a->fleet);
	if (err)
		log_event(CLOG_ERROR, "cannot start the coordinator", "endpoints",
			  o->coord.endpoints, "error", strerror(-err));
	return err;
}

/*
 * Host-local clients. A cgroup named on the command line must work; the
 * default (the root) is best effort: the data path runs without it.
 */
static int start_host_sockets(struct canary_dp *dp, const struct options *o)
{
	int err = hostsock_start(dp, o->bpffs, &o->host);

	if (!err)
		return 0;
	log_event(o->host.cgroup ? CLOG_ERROR : CLOG_WARN, "cannot attach for host sockets",
		  "cgroup", o->host.cgroup ? o->host.cgroup : "(cgroup v2 root)", "error",
		  strerror(-err), "hint",
		  "--host-cgroup off: split only what crosses the interfaces");
	return o->host.cgroup ? err : 0;
}

static int start(const struct options *o, struct canary_dp **dp, struct agent *a,
		 struct pollfd fds[FD_COUNT])
{
	unsigned int attached = 0;
	int err;

	err = state_dir_prepare(o->state_dir);
	if (err) {
		log_event(CLOG_ERROR, "cannot create state directory", "path", o->state_dir,
			  "error", strerror(-err));
		return err;
	}
	err = dp_load(o->bpffs, o->conntrack_entries, dp);
	if (err)
		return err;
	dp_set_ct_lifetimes(*dp, &o->ct_lifetimes);
	err = agent_init(a, *dp, o->bpffs, o->state_dir);
	if (!err)
		err = delivery_init(&delivery, o->state_dir);
	a->delivery = err ? NULL : &delivery;
	if (!err)
		err = notifier_create(&a->notifier);
	a->allow_empty_config = o->allow_empty_config;
	a->max_removals = o->max_removals;
	if (!err)
		err = start_fleet(a, o);
	if (!err)
		err = reload(a, o);
	/* A refused config at start-up leaves the pinned services as they are. */
	if (err == -ECANCELED)
		err = 0;
	if (!err)
		err = attach_matching(*dp, o->interfaces, o->mode, &attached);
	if (!err)
		err = start_host_sockets(*dp, o);
	if (err)
		return err;
	fds[FD_LINKS].fd = linkwatch_open();
	err = o->config ? configwatch_open(&config_watch, o->config) : 0;
	fds[FD_CONFIG].fd = o->config ? config_watch.fd : -1;
	fds[FD_LINKS].events = fds[FD_CONFIG].events = POLLIN;
	if (fds[FD_LINKS].fd < 0 || err) {
		log_event(CLOG_ERROR, "cannot watch links or config", "error",
			  strerror(fds[FD_LINKS].fd < 0 ? -fds[FD_LINKS].fd : -err));
		return -EIO;
	}
	return 0;
}

/*
 * Loaded and attached: keep only CAP_BPF and CAP_NET_ADMIN from here on,
 * set no_new_privs and the seccomp filter, then start the API and the
 * workers. In that order, because capabilities belong to threads: a thread
 * started before the drop would keep them all. A failed drop is fatal.
 */
static int drop_privileges(void)
{
	bool bounding = false;
	int err = caps_drop_to_runtime(&bounding);

	if (err) {
		log_event(CLOG_ERROR, "cannot drop capabilities", "error", strerror(-err));
		return err;
	}
	err = sandbox_install();
	if (err) {
		log_event(CLOG_ERROR, "cannot install the seccomp filter", "error", strerror(-err));
		return err;
	}
	log_event(CLOG_INFO, "capabilities dropped", "kept", "CAP_BPF,CAP_NET_ADMIN",
		  "bounding_set",
		  bounding ? "dropped to the kept ones" : "as given (no CAP_SETPCAP)",
		  "no_new_privs", "1", "seccomp", "filter");
	return 0;
}

static int start_threads(struct agent *a, const struct options *o, struct api_server **api,
			 struct external **ext, struct worker **health, struct worker **hooks)
{
	int err = drop_privileges();

	if (!err)
		err = notifier_run(a->notifier);
	if (!err)
		err = api_start(a, &o->api, metrics_render, api);
	if (!err)
		err = external_start(a, ext);
	if (!err)
		err = health_start(a, health);
	if (!err)
		err = hooks_start(a, hooks);
	if (!err && kube_eps)
		err = kubeeps_run(kube_eps);
	if (!err && kube_rollouts)
		err = kubespecs_run(kube_rollouts);
	return err;
}

/* The Kubernetes API, when there is one: --kubeconfig, or the pod's service account. */
static int kube_setup(const struct options *o)
{
	char err[CONFIG_ERR_LEN];
	struct kube_conn conn;
	const char *ns;
	int rc;

	if (!o->kubeconfig && !getenv("KUBERNETES_SERVICE_HOST") && !o->rollouts_from_kube)
		return 0; /* spec.*.service is then refused, naming what is missing */
	if (kube_conn_of(o, &conn, &ns, err, sizeof(err))) {
		log_event(CLOG_ERROR, "cannot use the Kubernetes API", "error", err, "hint",
			  o->rollouts_from_kube && !o->kubeconfig ?
				  "--rollouts-from kube needs --kubeconfig FILE outside a pod" :
				  "");
		return -EINVAL;
	}
	rc = kubeeps_create(&conn, ns, &kube_eps);
	if (!rc && o->rollouts_from_kube)
		rc = kubespecs_create(&conn, ns, &kube_rollouts);
	if (!rc)
		log_event(CLOG_INFO, "kubernetes api", "server", conn.server, "namespace", ns,
			  "from", o->kubeconfig ? o->kubeconfig : "service account");
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = {
		.bpffs = DP_DEFAULT_BPFFS,
		.state_dir = STATE_DEFAULT_DIR,
		.interfaces = DEFAULT_INTERFACES,
		.tick_ms = DEFAULT_TICK_MS,
		.api = { .socket_path = API_DEFAULT_SOCKET },
		/* Pods keep their request metrics: their traffic crosses the veths. */
		.host = { .netns_only = true },
	};
	struct api_server *api = NULL;
	struct external *ext = NULL;
	struct worker *health = NULL, *hooks = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	struct pollfd fds[FD_COUNT] = { { .fd = -1 }, { .fd = -1 } };
	struct canary_dp *dp = NULL;
	struct agent agent = { 0 };
	int lock_fds[LOCK_COUNT], err, i;

	parse_args(argc, argv, &o);
	log_setup(o.log_format, CLOG_INFO);
	libbpf_set_print(attach_libbpf_print);
	if (o.probe)
		return probe_run(o.api.socket_path, o.probe, PROBE_TIMEOUT_MS);
	if (o.check_config)
		return check_config(&o);
	if (o.cleanup)
		return cleanup(&o);

	if (lock_dirs(&o, lock_fds))
		return 1;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* Before any thread: curl's global set-up is not thread-safe. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	err = kube_setup(&o);
	if (!err)
		err = start(&o, &dp, &agent, fds);
	if (!err)
		err = start_threads(&agent, &o, &api, &ext, &health, &hooks);
	if (!err) {
		agent.ready = true;
		log_event(CLOG_INFO, "ready", "bpffs", o.bpffs, "state_dir", o.state_dir,
			  "interfaces", o.interfaces);
		run(&agent, &o, fds);
		/* Programs stay attached and maps pinned: traffic flows on without us. */
		log_event(CLOG_INFO, "stopping", "detached", "no");
	} else {
		log_event(CLOG_ERROR, "start-up failed", "error", strerror(-err));
	}
	kubeeps_destroy(kube_eps); /* its threads stop within about a second */
	kubespecs_destroy(kube_rollouts);
	worker_stop(hooks);
	worker_stop(health);
	external_stop(ext);
	api_stop(api);
	fleet_stop(agent.fleet); /* resigns: another node leads at once */
	notifier_destroy(agent.notifier);
	agent.notifier = NULL;
	for (i = 0; i < FD_COUNT; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	if (dp)
		agent_destroy(&agent);
	if (agent.delivery)
		delivery_destroy(&delivery);
	hostsock_stop(); /* the pinned links stay: host sockets keep their split */
	dp_close(dp);
	for (i = 0; i < LOCK_COUNT; i++)
		close(lock_fds[i]);
	curl_global_cleanup();
	return err ? 1 : 0;
}
