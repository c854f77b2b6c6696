// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * canaryd: loads the data path, attaches it to the node's interfaces and
 * applies a service. It keeps attaching interfaces that appear later, and
 * leaves everything in place when it exits so traffic keeps flowing.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "dataplane.h"
#include "linkwatch.h"
#include "log.h"
#include "netparse.h"

#define DEFAULT_INTERFACES "veth*,eth*"
#define DEFAULT_TICK_MS	   250
#define MAX_OVERRIDES	   64

struct override_arg {
	__be32 addr;
	__u8 prefixlen;
	enum canary_version version;
};

struct options {
	const char *bpffs;
	const char *interfaces;
	enum attach_mode mode;
	enum log_format log_format;
	int tick_ms;
	bool cleanup;
	/* One service from flags. */
	const char *name;
	struct service_spec spec;
	struct canary_backend stable[CANARY_MAX_BACKENDS];
	struct canary_backend canary[CANARY_MAX_BACKENDS];
	__u8 n_stable, n_canary;
	__u16 weight_bp;
	enum canary_affinity affinity;
	struct override_arg overrides[MAX_OVERRIDES];
	int n_overrides;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: canaryd [--interfaces GLOB[,GLOB...]] [--bpffs DIR] [--attach tc|xdp]\n"
		"               [--log-format logfmt|json] [--tick-ms N]\n"
		"               [--service NAME=VIP:PORT[/http|/tcp|/udp] --stable EP[,EP...]\n"
		"                [--canary EP[,EP...]] [--weight PERCENT] [--affinity none|client-ip]\n"
		"                [--override CIDR=stable|canary]...]\n"
		"       canaryd --cleanup [--bpffs DIR]\n"
		"defaults: --interfaces '%s' --bpffs %s --attach tc --tick-ms %d\n",
		DEFAULT_INTERFACES, DP_DEFAULT_BPFFS, DEFAULT_TICK_MS);
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

static void parse_service_flag(struct options *o, const char *arg)
{
	char err[NETPARSE_ERR_LEN];
	const char *eq = strchr(arg, '=');
	static char name[CANARY_NAME_LEN];

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(name))
		die_usage("--service", "expected NAME=VIP:PORT[/proto] with a name of 1..%d chars",
			  CANARY_NAME_LEN - 1);
	memcpy(name, arg, eq - arg);
	name[eq - arg] = '\0';
	o->name = name;
	if (parse_service_spec(eq + 1, &o->spec, err, sizeof(err)))
		die_usage("--service", "%s", err);
}

static void parse_override_flag(struct options *o, const char *arg)
{
	char err[NETPARSE_ERR_LEN], cidr[64];
	const char *eq = strchr(arg, '=');
	struct override_arg *ov;

	if (o->n_overrides >= MAX_OVERRIDES)
		die_usage("--override", "at most %d overrides", MAX_OVERRIDES);
	if (!eq || (size_t)(eq - arg) >= sizeof(cidr))
		die_usage("--override", "expected CIDR=stable|canary, got \"%s\"", arg);
	memcpy(cidr, arg, eq - arg);
	cidr[eq - arg] = '\0';
	ov = &o->overrides[o->n_overrides];
	if (parse_cidr(cidr, &ov->addr, &ov->prefixlen, err, sizeof(err)))
		die_usage("--override", "%s", err);
	if (!strcmp(eq + 1, "canary"))
		ov->version = CANARY_V_CANARY;
	else if (!strcmp(eq + 1, "stable"))
		ov->version = CANARY_V_STABLE;
	else
		die_usage("--override", "version must be stable or canary, got \"%s\"", eq + 1);
	o->n_overrides++;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	enum { O_SERVICE = 256, O_STABLE, O_CANARY, O_WEIGHT, O_AFFINITY, O_OVERRIDE, O_TICK };
	static const struct option longopts[] = {
		{ "interfaces", required_argument, NULL, 'i' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "attach", required_argument, NULL, 'a' },
		{ "log-format", required_argument, NULL, 'l' },
		{ "cleanup", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "service", required_argument, NULL, O_SERVICE },
		{ "stable", required_argument, NULL, O_STABLE },
		{ "canary", required_argument, NULL, O_CANARY },
		{ "weight", required_argument, NULL, O_WEIGHT },
		{ "affinity", required_argument, NULL, O_AFFINITY },
		{ "override", required_argument, NULL, O_OVERRIDE },
		{ "tick-ms", required_argument, NULL, O_TICK },
		{ 0 },
	};
	char err[NETPARSE_ERR_LEN];
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o->interfaces = optarg;
			break;
		case 'b':
			o->bpffs = optarg;
			break;
		case 'a':
			if (attach_mode_parse(optarg, &o->mode))
				die_usage("--attach", "expected tc or xdp, got \"%s\"", optarg);
			break;
		case 'l':
			if (log_format_parse(optarg, &o->log_format))
				die_usage("--log-format", "expected logfmt or json, got \"%s\"",
					  optarg);
			break;
		case 'c':
			o->cleanup = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case O_SERVICE:
			parse_service_flag(o, optarg);
			break;
		case O_STABLE:
			if (parse_endpoint_list(optarg, o->stable, &o->n_stable, err, sizeof(err)))
				die_usage("--stable", "%s", err);
			break;
		case O_CANARY:
			if (parse_endpoint_list(optarg, o->canary, &o->n_canary, err, sizeof(err)))
				die_usage("--canary", "%s", err);
			break;
		case O_WEIGHT:
			if (parse_weight_percent(optarg, &o->weight_bp, err, sizeof(err)))
				die_usage("--weight", "%s", err);
			break;
		case O_AFFINITY:
			if (!strcmp(optarg, "none"))
				o->affinity = CANARY_AFFINITY_NONE;
			else if (!strcmp(optarg, "client-ip"))
				o->affinity = CANARY_AFFINITY_CLIENT_IP;
			else
				die_usage("--affinity", "expected none or client-ip, got \"%s\"",
					  optarg);
			break;
		case O_OVERRIDE:
			parse_override_flag(o, optarg);
			break;
		case O_TICK:
			o->tick_ms = atoi(optarg);
			if (o->tick_ms < 10 || o->tick_ms > 60000)
				die_usage("--tick-ms", "expected 10..60000, got \"%s\"", optarg);
			break;
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc)
		die_usage(argv[optind], "unexpected argument");
	if (o->name && o->n_stable == 0)
		die_usage("--service", "needs --stable with at least one endpoint");
	if (!o->name && (o->n_stable || o->n_canary || o->n_overrides))
		die_usage("--stable/--canary/--override", "need --service");
	if (o->name && o->weight_bp > 0 && o->n_canary == 0)
		die_usage("--weight", "a canary weight needs --canary endpoints");
}

/* Deterministic per service, so a restarted agent splits exactly as before. */
static __u32 service_seed(const char *name)
{
	__u32 h = 2166136261U;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619U;
	return h;
}

static int apply_service(struct canary_dp *dp, const struct options *o)
{
	struct canary_service svc = {
		.weight = o->weight_bp,
		.affinity = o->affinity,
		.flags = o->spec.svc_flags,
		.seed = service_seed(o->name),
		.n_backends = { o->n_stable, o->n_canary },
	};
	char ep[32], weight[16], id[16];
	int err, i;

	snprintf(svc.name, sizeof(svc.name), "%s", o->name);
	memcpy(svc.backends[CANARY_V_STABLE], o->stable, sizeof(o->stable));
	memcpy(svc.backends[CANARY_V_CANARY], o->canary, sizeof(o->canary));
	err = dp_service_put(dp, &o->spec.key, &svc);
	if (err)
		return err;
	/* Overrides after the service: until then a client just gets the weighted choice. */
	err = dp_override_clear(dp, svc.id);
	for (i = 0; !err && i < o->n_overrides; i++)
		err = dp_override_put(dp, svc.id, o->overrides[i].addr, o->overrides[i].prefixlen,
				      o->overrides[i].version);
	if (err)
		return err;
	snprintf(id, sizeof(id), "%u", svc.id);
	log_event(CLOG_INFO, "service applied", "name", o->name, "vip",
		  format_endpoint(o->spec.key.vip, o->spec.key.port, ep, sizeof(ep)), "protocol",
		  service_protocol_name(&o->spec.key, o->spec.svc_flags), "weight",
		  format_weight(o->weight_bp, weight, sizeof(weight)), "id", id);
	return 0;
}

struct link_ctx {
	const struct canary_dp *dp;
	const struct options *o;
};

static void on_new_link(int ifindex, const char *ifname, void *arg)
{
	const struct link_ctx *lc = arg;
	char idx[16];
	int err;

	if (!ifname_matches(lc->o->interfaces, ifname))
		return;
	snprintf(idx, sizeof(idx), "%d", ifindex);
	err = attach_interface(lc->dp, ifindex, lc->o->mode);
	if (err)
		log_event(CLOG_WARN, "attach failed", "ifname", ifname, "ifindex", idx, "error",
			  strerror(-err));
	else
		log_event(CLOG_INFO, "attached", "ifname", ifname, "ifindex", idx, "mode",
			  attach_mode_name(lc->o->mode));
}

/* Until a stop signal: attach interfaces as they appear. */
static int run(const struct canary_dp *dp, const struct options *o)
{
	struct link_ctx lc = { .dp = dp, .o = o };
	struct pollfd pfd;
	int fd;

	fd = linkwatch_open();
	if (fd < 0) {
		log_event(CLOG_ERROR, "cannot watch links", "error", strerror(-fd));
		return fd;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (!stop_requested) {
		if (poll(&pfd, 1, o->tick_ms) > 0)
			linkwatch_read(fd, on_new_link, &lc);
	}
	close(fd);
	return 0;
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];

	/* libbpf's warnings explain load failures; its debug chatter is not wanted. */
	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	/*
	 * Kernel extack notes that are not errors here: re-attaching finds the
	 * clsact qdisc already there, and looking for a filter of ours to
	 * replace finds none on a fresh interface.
	 */
	if (strstr(line, "Exclusivity flag on") || strstr(line, "Cannot find specified filter"))
		return 0;
	return fputs(line, stderr);
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
		  o->bpffs, "error", err ? strerror(-err) : "");
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct options o = {
		.bpffs = DP_DEFAULT_BPFFS,
		.interfaces = DEFAULT_INTERFACES,
		.tick_ms = DEFAULT_TICK_MS,
	};
	struct sigaction sa = { .sa_handler = on_stop_signal };
	struct canary_dp *dp = NULL;
	unsigned int attached = 0;
	int err;

	parse_args(argc, argv, &o);
	log_setup(o.log_format, CLOG_INFO);
	libbpf_set_print(libbpf_log);
	if (o.cleanup)
		return cleanup(&o);

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	err = dp_load(o.bpffs, &dp);
	if (err)
		return 1;
	err = attach_matching(dp, o.interfaces, o.mode, &attached);
	if (!err && o.name)
		err = apply_service(dp, &o);
	if (err) {
		log_event(CLOG_ERROR, "start-up failed", "error", strerror(-err));
		dp_close(dp);
		return 1;
	}
	log_event(CLOG_INFO, "ready", "bpffs", o.bpffs, "interfaces", o.interfaces);
	err = run(dp, &o);
	/* Programs stay attached and maps pinned: traffic flows on without us. */
	log_event(CLOG_INFO, "stopping", "detached", "no");
	dp_close(dp);
	return err ? 1 : 0;
}
