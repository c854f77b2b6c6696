// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rollout configuration (docs/configuration.md): the schema.
 *
 * yamltree.c turns each YAML document into a small bounded tree; the schema
 * walker here turns the tree into struct rollout_cfg. A tree (rather than
 * walking events directly) lets a field be checked against its siblings,
 * e.g. a metric's "max" against its "name", whatever order they come in.
 * Files and directories are read by config_load.c; the names of metric
 * kinds and what a successCondition means at run time are in metric_kind.c.
 *
 * Every error names "file:line:column: field.path: what" and stops the load.
 * Loading is all or nothing: the caller sees rollouts only when every
 * document of every file is good, so a bad edit never half-applies.
 */
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "metric_kind.h"

#define API_VERSION	  "canaryd.io/v1alpha1"
#define KIND		  "Rollout"
#define MAX_ROLLOUTS	  CANARY_MAX_SERVICES	   /* one service each in the maps */
#define MAX_DURATION_US	  (720LL * 3600 * 1000000) /* 30 days */
#define MAX_MIN_REQUESTS  1000000000ULL
#define MAX_FAILURE_LIMIT 1000000ULL
#define MAX_INCREASE	  100.0 /* compareLatency: 100 = 10000% slower */
/* compareLatencyTail: median to p99.9 (whose line already needs 10,000 stable samples) */
#define MIN_TAIL_QUANTILE 0.5
#define MAX_TAIL_QUANTILE 0.999

#define ARRAY_SIZE(a)	  (sizeof(a) / sizeof((a)[0]))
#define BIT(n)		  (1U << (n))

/* "a, b, c" into buf, for messages that list what is allowed. */
static const char *join_names(const char *const names[], size_t count, char *buf, size_t len)
{
	size_t used = 0, i;

	buf[0] = '\0';
	for (i = 0; i < count; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);

		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	return buf;
}

/* ------------------------------------------------------------------------ */
/* Tree to rollout: helpers */

struct doc {
	struct loader *ld;
	const char *file;
	char path[128]; /* of the node being read, e.g. "spec.stable.endpoints[1]" */
	size_t plen;
	const struct ynode *name_node; /* for the checks across documents */
	const struct ynode *service_node;
	__be32 vip; /* of the rollout being read: no endpoint may be it */
};

/* Fails at m; key, when given, is appended to the current path. */
static int fail(struct doc *d, const struct ypos *m, const char *key, const char *fmt, ...)
{
	char path[sizeof(d->path) + 64];
	va_list ap;

	snprintf(path, sizeof(path), "%s%s%s", d->path, key && d->plen ? "." : "", key ? key : "");
	va_start(ap, fmt);
	yfail_at(d->ld->err, sizeof(d->ld->err), d->file, m, path, fmt, ap);
	va_end(ap);
	return -1;
}

static size_t path_push(struct doc *d, const char *key, size_t index)
{
	size_t old = d->plen, room = sizeof(d->path) - old;
	int w;

	if (key)
		w = snprintf(d->path + old, room, "%s%s", old ? "." : "", key);
	else
		w = snprintf(d->path + old, room, "[%zu]", index);
	if (w > 0)
		d->plen = (size_t)w < room ? old + (size_t)w : sizeof(d->path) - 1;
	return old;
}

static void path_pop(struct doc *d, size_t old)
{
	d->plen = old;
	d->path[old] = '\0';
}

typedef int (*parse_fn)(struct doc *d, const struct ynode *n, void *arg);

/* Parses an optional sub-object under its key; an absent one keeps its defaults. */
static int sub(struct doc *d, const char *key, const struct ynode *n, parse_fn fn, void *arg)
{
	size_t old;
	int rc;

	if (!n)
		return 0;
	old = path_push(d, key, 0);
	rc = fn(d, n, arg);
	path_pop(d, old);
	return rc;
}

/* A YAML core-schema number: [-+]? (.digits | digits[.digits]) ([eE][-+]?digits)? */
static bool is_number_text(const char *s)
{
	bool digits = false;

	if (*s == '-' || *s == '+')
		s++;
	for (; isdigit((unsigned char)*s); s++)
		digits = true;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			digits = true;
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return !*s;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static const char *kind_name(const struct ynode *n)
{
	if (n->kind == Y_MAP)
		return "a mapping";
	if (n->kind == Y_SEQ)
		return "a sequence";
	if (n->null)
		return "null";
	return !n->quoted && is_number_text(n->text) ? "a number" : "a string";
}

static int want(struct doc *d, const struct ynode *n, enum ykind kind)
{
	static const char *const kinds[] = {
		[Y_SCALAR] = "a scalar",
		[Y_SEQ] = "a sequence",
		[Y_MAP] = "a mapping",
	};

	if (n->kind == kind)
		return 0;
	return fail(d, &n->mark, NULL, "expected %s, got %s", kinds[kind], kind_name(n));
}

static size_t find_name(const char *const names[], size_t count, const char *s)
{
	size_t k;

	for (k = 0; k < count; k++)
		if (!strcmp(names[k], s))
			break;
	return k;
}

static const struct ynode *find_value(const struct ynode *map, const char *key)
{
	size_t i;

	for (i = 0; i + 1 < map->n; i += 2)
		if (!strcmp(map->items[i]->text, key))
			return map->items[i + 1];
	return NULL;
}

static int unknown_field(struct doc *d, const struct ynode *key, const char *const names[],
			 size_t count)
{
	char allowed[256];

	return fail(d, &key->mark, key->text, "unknown field (expected one of: %s)",
		    join_names(names, count, allowed, sizeof(allowed)));
}

/*
 * Checks that n is a mapping whose keys are all in names[], none twice, and
 * files each value under its key's index in val[] (NULL when absent).
 * required is a bitmask over names[].
 */
static int map_fields(struct doc *d, const struct ynode *n, const char *const names[], size_t count,
		      unsigned int required, const struct ynode *val[])
{
	size_t i, k;

	if (want(d, n, Y_MAP))
		return -1;
	for (k = 0; k < count; k++)
		val[k] = NULL;
	for (i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *key = n->items[i];

		k = find_name(names, count, key->text);
		if (k == count)
			return unknown_field(d, key, names, count);
		if (val[k])
			return fail(d, &key->mark, key->text, "duplicate key (first at %zu:%zu)",
				    val[k]->key->mark.line + 1, val[k]->key->mark.column + 1);
		val[k] = n->items[i + 1];
	}
	for (k = 0; k < count; k++)
		if ((required & BIT(k)) && !val[k])
			return fail(d, &n->mark, names[k], "missing required field");
	return 0;
}

/*
 * Runs fn on each item of the sequence n, with the path at "[i]". what is
 * the singular noun for messages; at most max items, at least one if
 * nonempty.
 */
static int seq_items(struct doc *d, const struct ynode *n, const char *what, size_t max,
		     bool nonempty, parse_fn fn, void *arg)
{
	size_t i, old;
	int rc = 0;

	if (want(d, n, Y_SEQ))
		return -1;
	if (nonempty && !n->n)
		return fail(d, &n->mark, NULL, "empty list (at least one %s is required)", what);
	if (n->n > max) {
		old = path_push(d, NULL, max);
		rc = fail(d, &n->items[max]->mark, NULL, "too many %ss (at most %zu)", what, max);
		path_pop(d, old);
		return rc;
	}
	for (i = 0; i < n->n && !rc; i++) {
		old = path_push(d, NULL, i);
		rc = fn(d, n->items[i], arg);
		path_pop(d, old);
	}
	return rc;
}

static int get_string(struct doc *d, const struct ynode *n, const char *key, const char **s)
{
	*s = "";
	if (n->kind != Y_SCALAR || n->null)
		return fail(d, &n->mark, key, "expected a string, got %s", kind_name(n));
	*s = n->text;
	return 0;
}

/* The text of a number, for the netparse parsers: unquoted, so "10" is not 10. */
static int get_number(struct doc *d, const struct ynode *n, const char *key, const char **s)
{
	*s = "";
	if (n->kind != Y_SCALAR || n->null || n->quoted)
		return fail(d, &n->mark, key, "expected a number, got %s", kind_name(n));
	*s = n->text;
	return 0;
}

static int get_uint(struct doc *d, const struct ynode *n, const char *key, unsigned long long min,
		    unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	const char *s;

	*out = 0;
	if (get_number(d, n, key, &s))
		return -1;
	if (!all_digits(s) && !(*s == '-' && all_digits(s + 1)))
		return fail(d, &n->mark, key, "expected an integer, got \"%s\"", s);
	errno = 0;
	v = *s == '-' ? 0 : strtoull(s, NULL, 10);
	if (*s == '-' || errno == ERANGE || v < min || v > max)
		return fail(d, &n->mark, key, "%s is out of range (%llu..%llu)", s, min, max);
	*out = v;
	return 0;
}

static int get_double(struct doc *d, const struct ynode *n, const char *key, double *out)
{
	/* YAML always writes "0.5": the agent's locale must not make that 0. */
	locale_t c_locale;
	const char *s;

	*out = 0;
	if (get_number(d, n, key, &s))
		return -1;
	if (!is_number_text(s))
		return fail(d, &n->mark, key, "expected a number, got \"%s\"", s);
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	*out = c_locale ? strtod_l(s, NULL, c_locale) : strtod(s, NULL);
	if (c_locale)
		freelocale(c_locale);
	if (!isfinite(*out))
		return fail(d, &n->mark, key, "%s is out of range", s);
	return 0;
}

/* YAML 1.2 core booleans only: "yes" or "on" would be a YAML 1.1 surprise. */
static int get_bool(struct doc *d, const struct ynode *n, const char *key, bool *out)
{
	*out = false;
	if (n->kind != Y_SCALAR || n->null || n->quoted ||
	    (strcmp(n->text, "true") != 0 && strcmp(n->text, "false") != 0))
		return fail(d, &n->mark, key, "expected true or false, got %s",
			    n->kind == Y_SCALAR && !n->null ? n->text : kind_name(n));
	*out = !strcmp(n->text, "true");
	return 0;
}

/* what: "invalid value", "unknown metric", ... */
static int not_one_of(struct doc *d, const struct ynode *n, const char *key, const char *what,
		      const char *const names[], size_t count)
{
	char allowed[256];

	return fail(d, &n->mark, key, "%s \"%s\" (expected one of: %s)", what, n->text,
		    join_names(names, count, allowed, sizeof(allowed)));
}

static int get_enum(struct doc *d, const struct ynode *n, const char *key,
		    const char *const names[], size_t count, int *out)
{
	const char *s;
	size_t k;

	*out = 0;
	if (get_string(d, n, key, &s))
		return -1;
	k = find_name(names, count, s);
	if (k == count)
		return not_one_of(d, n, key, "invalid value", names, count);
	*out = (int)k;
	return 0;
}

static const char needs_unit[] = "duration needs a unit (ms, s, m, h)";

/*
 * "250ms", "1.5s", "2m", "1h" to microseconds, in integers so "0.1s" is
 * exactly 100000. Returns NULL or what is wrong.
 */
static const char *parse_duration(const char *s, long long *us)
{
	static const struct {
		const char *unit;
		long long us;
	} units[] = {
		{ "ms", 1000LL }, { "s", 1000000LL }, { "m", 60000000LL }, { "h", 3600000000LL }
	};
	long long whole = 0, frac = 0, scale = 1;
	const char *p = s;
	size_t i;

	for (; isdigit((unsigned char)*p) && p - s < 9; p++)
		whole = whole * 10 + (*p - '0');
	if (p == s || isdigit((unsigned char)*p))
		return isdigit((unsigned char)*p) ? "is too long" : "is not a duration";
	if (*p == '.') {
		const char *f = ++p;

		for (; isdigit((unsigned char)*p) && p - f < 6; p++, scale *= 10)
			frac = frac * 10 + (*p - '0');
		if (p == f || isdigit((unsigned char)*p))
			return p == f ? "is not a duration" : "has more than 6 decimals";
	}
	if (!*p)
		return needs_unit;
	for (i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcmp(p, units[i].unit))
			break;
	if (i == ARRAY_SIZE(units))
		return "has an unknown unit (expected ms, s, m, h)";
	if (frac * units[i].us % scale)
		return "is finer than a microsecond";
	*us = whole * units[i].us + frac * units[i].us / scale;
	return NULL;
}

static int get_duration_us(struct doc *d, const struct ynode *n, const char *key, long long *us)
{
	const char *s, *why;

	*us = 0;
	if (get_string(d, n, key, &s))
		return -1;
	why = parse_duration(s, us);
	if (why == needs_unit)
		return fail(d, &n->mark, key, "\"%s\": %s", s, needs_unit);
	if (why)
		return fail(d, &n->mark, key, "invalid duration \"%s\": %s", s, why);
	if (*us <= 0 || *us > MAX_DURATION_US)
		return fail(d, &n->mark, key,
			    "duration \"%s\" is out of range (more than 0, at most 720h)", s);
	return 0;
}

static int get_duration_ms(struct doc *d, const struct ynode *n, const char *key, __s64 *ms)
{
	long long us;

	if (get_duration_us(d, n, key, &us))
		return -1;
	if (us % 1000)
		return fail(d, &n->mark, key,
			    "duration \"%s\" is not a whole number of milliseconds", n->text);
	*ms = us / 1000;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Tree to rollout: the schema */

static bool valid_name(const char *s)
{
	size_t len = strlen(s), i;

	if (!len || len >= CANARY_NAME_LEN || !islower((unsigned char)s[0]) || s[len - 1] == '-')
		return false;
	for (i = 0; i < len; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

bool config_dns_label(const char *s, size_t n)
{
	size_t i;

	if (!n || n >= CONFIG_KUBE_NAME_LEN || !isalnum((unsigned char)s[0]) || s[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* A DNS-1123 label, as Kubernetes names Services and namespaces. */
static bool valid_label(const char *s)
{
	return config_dns_label(s, strlen(s));
}

static int copy_label(struct doc *d, const struct ynode *n, const char *key, char *dst)
{
	const char *s;

	if (get_string(d, n, key, &s))
		return -1;
	if (!valid_label(s))
		return fail(d, &n->mark, key,
			    "invalid %s \"%s\" (1..%d of a-z, 0-9 and '-', starting and ending "
			    "with a letter or digit)",
			    key, s, CONFIG_KUBE_NAME_LEN - 1);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int parse_metadata(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "name", "namespace" };
	struct rollout_cfg *r = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	const char *s;

	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0), f) ||
	    get_string(d, f[0], "name", &s) || (f[1] && copy_label(d, f[1], "namespace", r->ns)))
		return -1;
	if (!valid_name(s))
		return fail(
			d, &f[0]->mark, "name",
			"invalid name \"%s\" (1..%d of a-z, 0-9 and '-', starting with a letter, "
			"not ending with '-')",
			s, CANARY_NAME_LEN - 1);
	memcpy(r->name, s, strlen(s) + 1);
	d->name_node = f[0];
	return 0;
}

enum { SVC_VIP, SVC_PORT, SVC_PROTOCOL, SVC_FROM_SERVICE, SVC_N };

/* vip, or fromService (a Service whose ClusterIP the agent reads): exactly one. */
static int parse_vip_source(struct doc *d, const struct ynode *const f[SVC_N],
			    const struct ynode *n, struct rollout_cfg *r)
{
	char why[NETPARSE_ERR_LEN];
	const char *vip;

	if (f[SVC_VIP] && f[SVC_FROM_SERVICE])
		return fail(d, &f[SVC_FROM_SERVICE]->key->mark, "fromService",
			    "give either vip or fromService, not both");
	if (f[SVC_FROM_SERVICE])
		return copy_label(d, f[SVC_FROM_SERVICE], "fromService", r->vip_service);
	if (!f[SVC_VIP])
		return fail(d, &n->mark, "vip",
			    "missing required field (or fromService: a Kubernetes Service whose "
			    "ClusterIP is the VIP)");
	if (!f[SVC_PORT])
		return fail(d, &n->mark, "port", "missing required field (with vip)");
	if (get_string(d, f[SVC_VIP], "vip", &vip))
		return -1;
	if (parse_ipv4_addr(vip, &r->service.key.vip, why, sizeof(why)))
		return fail(d, &f[SVC_VIP]->mark, "vip", "%s", why);
	if (r->service.key.vip == 0 || r->service.key.vip == INADDR_BROADCAST)
		return fail(d, &f[SVC_VIP]->mark, "vip",
			    "invalid vip \"%s\": not a unicast address", vip);
	return 0;
}

static int parse_service_port(struct doc *d, const struct ynode *n, __be16 *port)
{
	char why[NETPARSE_ERR_LEN];
	const char *s;

	if (get_number(d, n, "port", &s))
		return -1;
	if (parse_port(s, port, why, sizeof(why)))
		return fail(d, &n->mark, "port", "%s", why);
	return 0;
}

static int parse_service(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[SVC_N] = { "vip", "port", "protocol", "fromService" };
	static const char *const protocols[] = { "tcp", "http", "udp" };
	struct rollout_cfg *r = arg;
	struct service_spec *svc = &r->service;
	const struct ynode *f[SVC_N];
	int proto = 0;

	if (map_fields(d, n, names, SVC_N, 0, f) || parse_vip_source(d, f, n, r) ||
	    (f[SVC_PROTOCOL] &&
	     get_enum(d, f[SVC_PROTOCOL], "protocol", protocols, ARRAY_SIZE(protocols), &proto)))
		return -1;
	r->port_given = f[SVC_PORT] != NULL;
	if (f[SVC_PORT] && parse_service_port(d, f[SVC_PORT], &svc->key.port))
		return -1;
	svc->key.proto = proto == 2 ? IPPROTO_UDP : IPPROTO_TCP;
	svc->svc_flags = proto == 1 ? CANARY_SVC_F_HTTP : 0;
	d->service_node = n;
	d->vip = svc->key.vip;
	return 0;
}

static int parse_endpoint_item(struct doc *d, const struct ynode *n, void *arg)
{
	struct version_cfg *v = arg;
	struct canary_backend *be = &v->endpoints[v->n_endpoints];
	char why[NETPARSE_ERR_LEN];
	const char *s;
	__u8 i;

	if (get_string(d, n, NULL, &s))
		return -1;
	if (parse_endpoint(s, be, why, sizeof(why)))
		return fail(d, &n->mark, NULL, "%s", why);
	if (be->addr == d->vip)
		return fail(d, &n->mark, NULL, "endpoint \"%s\" is the service's VIP", s);
	/* A repeated backend would silently get twice the traffic. */
	for (i = 0; i < v->n_endpoints; i++)
		if (v->endpoints[i].addr == be->addr && v->endpoints[i].port == be->port)
			return fail(d, &n->mark, NULL, "duplicate endpoint \"%s\"", s);
	v->n_endpoints++;
	return 0;
}

static int parse_endpoints(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "endpoint", CANARY_MAX_BACKENDS, true, parse_endpoint_item, arg);
}

static int copy_revision(struct doc *d, const struct ynode *n, char *dst)
{
	const char *s;
	size_t len, i;

	if (get_string(d, n, "revision", &s))
		return -1;
	len = strlen(s);
	if (len >= CONFIG_REVISION_LEN)
		return fail(d, &n->mark, "revision", "too long (at most %d characters)",
			    CONFIG_REVISION_LEN - 1);
	/* It ends up in logs and metric labels. */
	for (i = 0; i < len; i++)
		if (iscntrl((unsigned char)s[i]))
			return fail(d, &n->mark, "revision", "control character in revision");
	memcpy(dst, s, len + 1);
	return 0;
}

enum { VER_REVISION, VER_ENDPOINTS, VER_SERVICE, VER_N };

/* Endpoints listed, or a Service whose EndpointSlices list them: exactly one. */
static int parse_version(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[VER_N] = { "revision", "endpoints", "service" };
	struct version_cfg *v = arg;
	const struct ynode *f[VER_N];

	if (map_fields(d, n, names, VER_N, 0, f) ||
	    (f[VER_REVISION] && copy_revision(d, f[VER_REVISION], v->revision)))
		return -1;
	if (f[VER_ENDPOINTS] && f[VER_SERVICE])
		return fail(d, &f[VER_SERVICE]->key->mark, "service",
			    "give either endpoints or service, not both");
	if (!f[VER_ENDPOINTS] && !f[VER_SERVICE])
		return fail(d, &n->mark, "endpoints",
			    "missing required field (or service: a Kubernetes Service's name)");
	if (f[VER_SERVICE])
		return copy_label(d, f[VER_SERVICE], "service", v->service);
	return sub(d, "endpoints", f[VER_ENDPOINTS], parse_endpoints, v);
}

enum { OVR_CIDR, OVR_VERSION, OVR_N };

static int parse_override(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[OVR_N] = { "cidr", "version" };
	static const char *const versions[] = {
		[CANARY_V_STABLE] = "stable", [CANARY_V_CANARY] = "canary"
	};
	struct rollout_cfg *r = arg;
	struct override_cfg *o = &r->overrides[r->n_overrides];
	const struct ynode *f[OVR_N];
	char why[NETPARSE_ERR_LEN];
	const char *cidr;
	int version, i;

	if (map_fields(d, n, names, OVR_N, BIT(OVR_CIDR) | BIT(OVR_VERSION), f) ||
	    get_string(d, f[OVR_CIDR], "cidr", &cidr) ||
	    get_enum(d, f[OVR_VERSION], "version", versions, ARRAY_SIZE(versions), &version))
		return -1;
	if (parse_cidr(cidr, &o->addr, &o->prefixlen, why, sizeof(why)))
		return fail(d, &f[OVR_CIDR]->mark, "cidr", "%s", why);
	/* The LPM trie holds one version per prefix: a second one would be lost. */
	for (i = 0; i < r->n_overrides; i++)
		if (r->overrides[i].addr == o->addr && r->overrides[i].prefixlen == o->prefixlen)
			return fail(d, &f[OVR_CIDR]->mark, "cidr", "duplicate override for %s",
				    cidr);
	o->version = (enum canary_version)version;
	r->n_overrides++;
	return 0;
}

static int parse_overrides(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "override", CONFIG_MAX_OVERRIDES, false, parse_override, arg);
}

static int parse_pause(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "duration" };
	struct step_cfg *st = arg;
	const struct ynode *f[ARRAY_SIZE(names)];

	if (n->kind == Y_SCALAR && n->null)
		return fail(d, &n->mark, NULL,
			    "expected a mapping: pause: {} waits for a human, "
			    "pause: {duration: 30s} for a while");
	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f))
		return -1;
	return f[0] ? get_duration_ms(d, f[0], "duration", &st->pause_ms) : 0;
}

enum { STEP_F_SET_WEIGHT, STEP_F_PAUSE, STEP_F_N };

static int parse_step(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[STEP_F_N] = { "setWeight", "pause" };
	struct rollout_cfg *r = arg;
	struct step_cfg *st = &r->steps[r->n_steps];
	const struct ynode *f[STEP_F_N];
	char why[NETPARSE_ERR_LEN];
	const char *s;

	if (map_fields(d, n, names, STEP_F_N, 0, f))
		return -1;
	if (f[STEP_F_SET_WEIGHT] && f[STEP_F_PAUSE]) {
		/* Point at whichever of the two comes second. */
		int later =
			f[STEP_F_PAUSE]->key->mark.index > f[STEP_F_SET_WEIGHT]->key->mark.index;

		return fail(
			d, &f[later]->key->mark, names[later],
			"a step is either setWeight or pause, not both (make them two list items)");
	}
	memset(st, 0, sizeof(*st));
	if (f[STEP_F_PAUSE]) {
		st->kind = STEP_PAUSE;
		st->pause_ms = CONFIG_PAUSE_INDEFINITE;
		if (sub(d, "pause", f[STEP_F_PAUSE], parse_pause, st))
			return -1;
	} else if (f[STEP_F_SET_WEIGHT]) {
		st->kind = STEP_SET_WEIGHT;
		if (get_number(d, f[STEP_F_SET_WEIGHT], "setWeight", &s))
			return -1;
		if (parse_weight_percent(s, &st->weight_bp, why, sizeof(why)))
			return fail(d, &f[STEP_F_SET_WEIGHT]->mark, "setWeight", "%s", why);
	} else {
		return fail(d, &n->mark, NULL, "a step needs setWeight or pause");
	}
	r->n_steps++;
	return 0;
}

static int parse_steps(struct doc *d, const struct ynode *n, void *arg)
{
	struct rollout_cfg *r = arg;
	int i;

	if (seq_items(d, n, "step", CONFIG_MAX_STEPS, true, parse_step, r))
		return -1;
	for (i = 0; i < r->n_steps; i++)
		if (r->steps[i].kind == STEP_SET_WEIGHT)
			return 0;
	return fail(d, &n->mark, NULL, "at least one setWeight step is required");
}

struct hook_target {
	char *url;
	size_t url_len;
	__s64 *timeout_ms;
};

/* {url, timeout}: an HTTP endpoint canaryd POSTs to and reads the status of. */
static int parse_hook(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "url", "timeout" };
	const struct hook_target *h = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	const char *url;

	*h->timeout_ms = 2000;
	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0), f) ||
	    get_string(d, f[0], "url", &url) ||
	    (f[1] && get_duration_ms(d, f[1], "timeout", h->timeout_ms)))
		return -1;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return fail(d, &f[0]->mark, "url", "\"%s\": expected http://… or https://…", url);
	if (strlen(url) >= h->url_len)
		return fail(d, &f[0]->mark, "url", "longer than %zu characters", h->url_len - 1);
	if (*h->timeout_ms > 60000)
		return fail(d, &f[1]->mark, "timeout", "at most 60s");
	snprintf(h->url, h->url_len, "%s", url);
	return 0;
}

/* "HH:MM" into minutes after midnight. */
static int get_clock(struct doc *d, const struct ynode *n, const char *key, __s16 *min)
{
	unsigned int h, m;
	const char *s;
	char end;

	if (get_string(d, n, key, &s))
		return -1;
	if (sscanf(s, "%2u:%2u%c", &h, &m, &end) != 2 || strlen(s) != 5 || h > 23 || m > 59)
		return fail(d, &n->mark, key, "\"%s\": expected a time of day HH:MM (00:00..23:59)",
			    s);
	*min = (__s16)(h * 60 + m);
	return 0;
}

static int parse_blackout_day(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
	struct blackout_cfg *b = arg;
	int day;

	if (get_enum(d, n, NULL, days, ARRAY_SIZE(days), &day))
		return -1;
	b->days |= (__u8)BIT(day);
	return 0;
}

static int parse_blackout_days(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "day", 7, true, parse_blackout_day, arg);
}

/* timezone: UTC (default), local (the node's), or a fixed offset "+HH:MM" / "-HH:MM". */
static int parse_timezone(struct doc *d, const struct ynode *n, struct blackout_cfg *b)
{
	unsigned int h, m;
	const char *s;
	char sign, end;

	if (get_string(d, n, "timezone", &s))
		return -1;
	if (!strcmp(s, "UTC"))
		return 0;
	if (!strcmp(s, "local")) {
		b->local_time = true;
		return 0;
	}
	if (sscanf(s, "%c%2u:%2u%c", &sign, &h, &m, &end) != 3 || strlen(s) != 6 ||
	    (sign != '+' && sign != '-') || h > 14 || m > 59)
		return fail(d, &n->mark, "timezone", "\"%s\": expected UTC, local or +HH:MM", s);
	b->utc_offset_min = (sign == '-' ? -1 : 1) * (__s32)(h * 60 + m);
	return 0;
}

static int parse_blackout(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "days", "from", "to", "timezone" };
	struct traffic_policy_cfg *t = arg;
	struct blackout_cfg *b = &t->blackouts[t->n_blackouts];
	const struct ynode *f[ARRAY_SIZE(names)];

	memset(b, 0, sizeof(*b));
	b->from_min = b->to_min = -1;
	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f) ||
	    sub(d, "days", f[0], parse_blackout_days, b) ||
	    (f[1] && get_clock(d, f[1], "from", &b->from_min)) ||
	    (f[2] && get_clock(d, f[2], "to", &b->to_min)) || (f[3] && parse_timezone(d, f[3], b)))
		return -1;
	if (!f[1] != !f[2])
		return fail(d, &n->mark, NULL, "from and to go together (neither: the whole day)");
	if (f[1] && b->from_min == b->to_min)
		return fail(d, &f[2]->mark, "to", "equals from: leave both out for the whole day");
	if (!f[0])
		b->days = 0x7f; /* every day */
	t->n_blackouts++;
	return 0;
}

static int parse_blackouts(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "blackout window", CONFIG_MAX_BLACKOUTS, false, parse_blackout, arg);
}

static int parse_peak(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "aboveRps", "maxStepIncrease", "pauseFactor" };
	struct traffic_policy_cfg *t = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	const char *s;
	char why[128];

	t->pause_factor = 1;
	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0), f) ||
	    get_double(d, f[0], "aboveRps", &t->peak_above_rps) ||
	    (f[2] && get_double(d, f[2], "pauseFactor", &t->pause_factor)))
		return -1;
	if (t->peak_above_rps <= 0)
		return fail(d, &f[0]->mark, "aboveRps", "%s is out of range (more than 0)",
			    f[0]->text);
	if (f[2] && (t->pause_factor < 1 || t->pause_factor > 100))
		return fail(d, &f[2]->mark, "pauseFactor", "%s is out of range (1..100)",
			    f[2]->text);
	if (!f[1])
		return 0;
	if (get_number(d, f[1], "maxStepIncrease", &s))
		return -1;
	if (parse_weight_percent(s, &t->peak_max_increase_bp, why, sizeof(why)) ||
	    !t->peak_max_increase_bp)
		return fail(d, &f[1]->mark, "maxStepIncrease", "%s",
			    t->peak_max_increase_bp ? why : "must be more than 0");
	return 0;
}

static int parse_traffic_policy(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "peak", "blackout" };
	struct rollout_cfg *r = arg;
	const struct ynode *f[ARRAY_SIZE(names)];

	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f) ||
	    sub(d, "peak", f[0], parse_peak, &r->traffic))
		return -1;
	return sub(d, "blackout", f[1], parse_blackouts, &r->traffic);
}

/* progressDeadline: a duration, or "none" for a rollout that may wait forever. */
static int parse_progress_deadline(struct doc *d, const struct ynode *n, struct rollout_cfg *r)
{
	if (n->kind == Y_SCALAR && !n->null && !strcmp(n->text, "none")) {
		r->progress_deadline_ms = CONFIG_NO_DEADLINE;
		return 0;
	}
	return get_duration_ms(d, n, "progressDeadline", &r->progress_deadline_ms);
}

static int parse_strategy(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "steps", "progressDeadline", "trafficPolicy",
					     "prePromotion" };
	struct rollout_cfg *r = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	struct hook_target h = { r->pre_promotion_url, sizeof(r->pre_promotion_url),
				 &r->pre_promotion_timeout_ms };

	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0), f) ||
	    sub(d, "prePromotion", f[3], parse_hook, &h))
		return -1;
	if (f[1] && parse_progress_deadline(d, f[1], arg))
		return -1;
	if (sub(d, "trafficPolicy", f[2], parse_traffic_policy, arg))
		return -1;
	return sub(d, "steps", f[0], parse_steps, arg);
}

/* What limit each metric takes. */
enum limit_kind {
	LIMIT_FRACTION, /* max: 0..1 */
	LIMIT_LATENCY,	/* max: a duration */
	LIMIT_NONE,	/* prometheus: a successCondition instead */
	LIMIT_INCREASE, /* compareLatency: maxIncrease, optional */
};

static const enum limit_kind metric_limits[METRIC_KIND_COUNT] = {
	[METRIC_ERROR_RATE] = LIMIT_FRACTION,
	[METRIC_RESET_RATE] = LIMIT_FRACTION,
	[METRIC_LATENCY_P50] = LIMIT_LATENCY,
	[METRIC_LATENCY_P95] = LIMIT_LATENCY,
	[METRIC_LATENCY_P99] = LIMIT_LATENCY,
	[METRIC_COMPARE_ERROR_RATE] = LIMIT_INCREASE,
	[METRIC_COMPARE_LATENCY] = LIMIT_INCREASE,
	[METRIC_PROMETHEUS] = LIMIT_NONE,
	[METRIC_COMPARE_LATENCY_TAIL] = LIMIT_INCREASE,
	[METRIC_WEBHOOK] = LIMIT_NONE,
};

enum {
	MET_NAME,
	MET_MAX,
	MET_MAX_INCREASE,
	MET_PROMETHEUS,
	MET_SUCCESS,
	MET_ERROR_LIMIT,
	MET_DRY_RUN,
	MET_FAILURE_LIMIT,
	MET_QUANTILE,
	MET_WEBHOOK,
	MET_N,
};
static const char *const metric_fields[MET_N] = { "name",
						  "max",
						  "maxIncrease",
						  "prometheus",
						  "successCondition",
						  "consecutiveErrorLimit",
						  "dryRun",
						  "failureLimit",
						  "quantile",
						  "webhook" };

static int not_allowed(struct doc *d, const struct ynode *const f[], int field,
		       enum metric_kind kind)
{
	if (!f[field])
		return 0;
	return fail(d, &f[field]->key->mark, metric_fields[field], "not allowed for %s",
		    metric_kind_names[kind]);
}

static int limit_fraction(struct doc *d, const struct ynode *n, const struct ynode *const f[],
			  struct metric_cfg *m)
{
	if (!f[MET_MAX])
		return fail(d, &n->mark, NULL, "%s needs a limit (max: a fraction, 0..1)",
			    metric_kind_names[m->kind]);
	if (not_allowed(d, f, MET_MAX_INCREASE, m->kind) ||
	    get_double(d, f[MET_MAX], "max", &m->max))
		return -1;
	if (m->max < 0 || m->max > 1)
		return fail(d, &f[MET_MAX]->mark, "max", "%s is out of range (a fraction, 0..1)",
			    f[MET_MAX]->text);
	return 0;
}

static int limit_latency(struct doc *d, const struct ynode *n, const struct ynode *const f[],
			 struct metric_cfg *m)
{
	long long us;

	if (!f[MET_MAX])
		return fail(d, &n->mark, NULL, "%s needs a limit (max: a duration such as 250ms)",
			    metric_kind_names[m->kind]);
	if (not_allowed(d, f, MET_MAX_INCREASE, m->kind) ||
	    get_duration_us(d, f[MET_MAX], "max", &us))
		return -1;
	m->max = (double)us;
	return 0;
}

static int limit_increase(struct doc *d, const struct ynode *const f[], struct metric_cfg *m)
{
	if (not_allowed(d, f, MET_MAX, m->kind))
		return -1;
	/*
	 * compareLatency: 10% by default, so that one pod's slow seconds do not
	 * read as a regression (docs/analysis.md); the tail: no slower than stable.
	 */
	m->max_increase = m->kind == METRIC_COMPARE_LATENCY ? CONFIG_DEFAULT_MAX_INCREASE : 0;
	if (!f[MET_MAX_INCREASE])
		return 0;
	if (get_double(d, f[MET_MAX_INCREASE], "maxIncrease", &m->max_increase))
		return -1;
	if (m->max_increase < 0 || m->max_increase > MAX_INCREASE)
		return fail(d, &f[MET_MAX_INCREASE]->mark, "maxIncrease",
			    "%s is out of range (a fraction, 0..%g: 0.2 is 20%% more)",
			    f[MET_MAX_INCREASE]->text, MAX_INCREASE);
	return 0;
}

static int metric_limit(struct doc *d, const struct ynode *n, const struct ynode *const f[],
			struct metric_cfg *m)
{
	switch (metric_limits[m->kind]) {
	case LIMIT_FRACTION:
		return limit_fraction(d, n, f, m);
	case LIMIT_LATENCY:
		return limit_latency(d, n, f, m);
	case LIMIT_INCREASE:
		return limit_increase(d, f, m);
	case LIMIT_NONE:
		break;
	}
	if (not_allowed(d, f, MET_MAX, m->kind))
		return -1;
	return not_allowed(d, f, MET_MAX_INCREASE, m->kind);
}

/* compareLatencyTail: the quantile whose tail is compared, default 0.99. */
static int metric_quantile(struct doc *d, const struct ynode *const f[], struct metric_cfg *m)
{
	if (m->kind != METRIC_COMPARE_LATENCY_TAIL)
		return not_allowed(d, f, MET_QUANTILE, m->kind);
	m->quantile = CONFIG_DEFAULT_TAIL_QUANTILE;
	if (!f[MET_QUANTILE])
		return 0;
	if (get_double(d, f[MET_QUANTILE], "quantile", &m->quantile))
		return -1;
	if (m->quantile < MIN_TAIL_QUANTILE || m->quantile > MAX_TAIL_QUANTILE)
		return fail(d, &f[MET_QUANTILE]->mark, "quantile",
			    "%s is out of range (%g..%g: 0.99 is p99)", f[MET_QUANTILE]->text,
			    MIN_TAIL_QUANTILE, MAX_TAIL_QUANTILE);
	return 0;
}

/* "result OP NUMBER", spaces allowed around each part. */
static int parse_condition(struct doc *d, const struct ynode *n, struct metric_cfg *m)
{
	locale_t c_locale;
	const char *p, *s;
	char *end = NULL;
	size_t i;

	if (get_string(d, n, "successCondition", &s))
		return -1;
	p = s + strspn(s, " ");
	if (strncmp(p, "result", 6) != 0)
		goto bad;
	p += 6 + strspn(p + 6, " ");
	for (i = 0; i < cond_op_count; i++)
		if (!strncmp(p, cond_op_texts[i].text, strlen(cond_op_texts[i].text)))
			break;
	if (i == cond_op_count)
		goto bad;
	m->cond_op = cond_op_texts[i].op;
	p += strlen(cond_op_texts[i].text);
	p += strspn(p, " ");
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	m->cond_value = c_locale ? strtod_l(p, &end, c_locale) : strtod(p, &end);
	if (c_locale)
		freelocale(c_locale);
	if (end == p || !isfinite(m->cond_value) || end[strspn(end, " ")] != '\0')
		goto bad;
	return 0;
bad:
	return fail(d, &n->mark, "successCondition",
		    "\"%s\": expected \"result OP NUMBER\" with OP one of < <= > >= == !=", s);
}

/* A file named for the query worker: an absolute path that fits. */
static int get_path(struct doc *d, const struct ynode *n, const char *key, char *out, size_t size)
{
	const char *path;

	if (get_string(d, n, key, &path))
		return -1;
	if (path[0] != '/')
		return fail(d, &n->mark, key, "\"%s\": expected an absolute path", path);
	if (strlen(path) >= size)
		return fail(d, &n->mark, key, "longer than %zu characters", size - 1);
	snprintf(out, size, "%s", path);
	return 0;
}

/* tls: {caFile, certFile, keyFile, insecureSkipVerify} */
static int parse_prom_tls(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "caFile", "certFile", "keyFile",
					     "insecureSkipVerify" };
	struct prom_tls_auth *t = arg;
	const struct ynode *f[ARRAY_SIZE(names)];

	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f) ||
	    (f[0] && get_path(d, f[0], "caFile", t->ca_file, sizeof(t->ca_file))) ||
	    (f[1] && get_path(d, f[1], "certFile", t->cert_file, sizeof(t->cert_file))) ||
	    (f[2] && get_path(d, f[2], "keyFile", t->key_file, sizeof(t->key_file))) ||
	    (f[3] && get_bool(d, f[3], "insecureSkipVerify", &t->insecure_skip_verify)))
		return -1;
	/* One without the other would fail every query, far from this line. */
	if (!!f[1] != !!f[2])
		return fail(d, &n->mark, f[1] ? "keyFile" : "certFile",
			    "certFile and keyFile go together (a client certificate and its key)");
	if (f[0] && t->insecure_skip_verify)
		return fail(d, &f[3]->mark, "insecureSkipVerify",
			    "caFile is never used when insecureSkipVerify is true: drop one");
	return 0;
}

/*
 * prometheus: {address: http://host:port, query: "...", tls: {...},
 * bearerTokenFile: /path}
 */
static int parse_prometheus(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "address", "query", "tls", "bearerTokenFile" };
	struct metric_cfg *m = arg;
	struct prom_tls_auth *t = &m->prom_auth;
	const struct ynode *f[ARRAY_SIZE(names)];
	const char *address, *query;
	bool https;

	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0) | BIT(1), f) ||
	    get_string(d, f[0], "address", &address) || get_string(d, f[1], "query", &query))
		return -1;
	if (strncmp(address, "http://", 7) != 0 && strncmp(address, "https://", 8) != 0)
		return fail(d, &f[0]->mark, "address", "\"%s\": expected http://HOST:PORT",
			    address);
	if (strlen(address) >= sizeof(m->prom_address))
		return fail(d, &f[0]->mark, "address", "longer than %zu characters",
			    sizeof(m->prom_address) - 1);
	if (!*query || strlen(query) >= sizeof(m->prom_query))
		return fail(d, &f[1]->mark, "query", "must be 1..%zu characters",
			    sizeof(m->prom_query) - 1);
	https = !strncmp(address, "https://", 8);
	/* A token over plain http is readable by anyone on the path: never send it. */
	if ((f[2] || f[3]) && !https)
		return fail(d, &f[f[2] ? 2 : 3]->key->mark, names[f[2] ? 2 : 3],
			    "needs an https:// address (\"%s\" is plain http)", address);
	if ((f[2] && sub(d, "tls", f[2], parse_prom_tls, t)) ||
	    (f[3] && get_path(d, f[3], "bearerTokenFile", t->token_file, sizeof(t->token_file))))
		return -1;
	snprintf(m->prom_address, sizeof(m->prom_address), "%s", address);
	snprintf(m->prom_query, sizeof(m->prom_query), "%s", query);
	return 0;
}

/* An external metric: a free name, a query and the condition it must meet. */
static int parse_external(struct doc *d, const struct ynode *const f[], struct metric_cfg *m)
{
	unsigned long long limit = CONFIG_DEFAULT_CONSECUTIVE_ERRORS;
	const char *name = m->name;
	size_t len = strlen(name);

	if (!len || len >= sizeof(m->name) ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len)
		return fail(d, &f[MET_NAME]->mark, "name",
			    "\"%s\": 1..%zu letters, digits, '_' or '-'", name,
			    sizeof(m->name) - 1);
	if (find_name(metric_kind_names, METRIC_KIND_COUNT, name) != METRIC_KIND_COUNT)
		return fail(d, &f[MET_NAME]->mark, "name",
			    "\"%s\" is a built-in metric: give the query its own name", name);
	if (!f[MET_SUCCESS])
		return fail(d, &f[MET_PROMETHEUS]->key->mark, NULL,
			    "a prometheus metric needs successCondition: \"result < 0.05\"");
	if (not_allowed(d, f, MET_MAX, m->kind) || not_allowed(d, f, MET_MAX_INCREASE, m->kind) ||
	    not_allowed(d, f, MET_QUANTILE, m->kind) ||
	    sub(d, "prometheus", f[MET_PROMETHEUS], parse_prometheus, m) ||
	    parse_condition(d, f[MET_SUCCESS], m))
		return -1;
	if (f[MET_ERROR_LIMIT] &&
	    get_uint(d, f[MET_ERROR_LIMIT], "consecutiveErrorLimit", 0, 1000, &limit))
		return -1;
	m->consecutive_error_limit = (__u32)limit;
	return 0;
}

/* dryRun and failureLimit: what every kind of metric may say about its failures. */
static int parse_metric_failures(struct doc *d, const struct ynode *const f[], struct metric_cfg *m)
{
	unsigned long long limit;

	m->failure_limit = CONFIG_INHERIT;
	if (f[MET_DRY_RUN] && get_bool(d, f[MET_DRY_RUN], "dryRun", &m->dry_run))
		return -1;
	if (!f[MET_FAILURE_LIMIT])
		return 0;
	if (get_uint(d, f[MET_FAILURE_LIMIT], "failureLimit", 0, MAX_FAILURE_LIMIT, &limit))
		return -1;
	m->failure_limit = (__s64)limit;
	return 0;
}

/* A webhook metric: its own name, webhook: {url, timeout}; 2xx passes. */
static int parse_webhook_metric(struct doc *d, const struct ynode *const f[], struct metric_cfg *m)
{
	struct hook_target h = { m->hook_url, sizeof(m->hook_url), &m->hook_timeout_ms };
	unsigned long long limit = CONFIG_DEFAULT_CONSECUTIVE_ERRORS;

	if (find_name(metric_kind_names, METRIC_KIND_COUNT, m->name) != METRIC_KIND_COUNT)
		return fail(d, &f[MET_NAME]->mark, "name",
			    "\"%s\" is a built-in metric: give the webhook its own name", m->name);
	m->kind = METRIC_WEBHOOK;
	if (not_allowed(d, f, MET_MAX, m->kind) || not_allowed(d, f, MET_MAX_INCREASE, m->kind) ||
	    not_allowed(d, f, MET_SUCCESS, m->kind) || not_allowed(d, f, MET_QUANTILE, m->kind) ||
	    not_allowed(d, f, MET_PROMETHEUS, m->kind) ||
	    sub(d, "webhook", f[MET_WEBHOOK], parse_hook, &h))
		return -1;
	if (f[MET_ERROR_LIMIT] &&
	    get_uint(d, f[MET_ERROR_LIMIT], "consecutiveErrorLimit", 0, 1000, &limit))
		return -1;
	m->consecutive_error_limit = (__u32)limit;
	return 0;
}

static int parse_metric(struct doc *d, const struct ynode *n, void *arg)
{
	struct analysis_cfg *a = arg;
	struct metric_cfg *m = &a->metrics[a->n_metrics];
	const struct ynode *f[MET_N];
	const char *s;
	int kind, i;

	if (map_fields(d, n, metric_fields, MET_N, BIT(MET_NAME), f))
		return -1;
	if (get_string(d, f[MET_NAME], "name", &s))
		return -1;
	for (i = 0; i < a->n_metrics; i++)
		if (!strcmp(a->metrics[i].name, s))
			return fail(d, &f[MET_NAME]->mark, "name", "metric %s is listed twice", s);
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", s);
	if (parse_metric_failures(d, f, m))
		return -1;
	if (f[MET_WEBHOOK]) {
		if (parse_webhook_metric(d, f, m))
			return -1;
		a->n_metrics++;
		return 0;
	}
	if (f[MET_PROMETHEUS]) {
		m->kind = METRIC_PROMETHEUS;
		if (parse_external(d, f, m))
			return -1;
		a->n_metrics++;
		return 0;
	}
	kind = (int)find_name(metric_kind_names, METRIC_KIND_COUNT, s);
	if (kind == METRIC_PROMETHEUS || kind == METRIC_WEBHOOK)
		return fail(d, &f[MET_NAME]->mark, "name",
			    "a prometheus or webhook metric has its own name and a prometheus: "
			    "{address, query} or a webhook: {url}");
	if (kind == METRIC_KIND_COUNT)
		return not_one_of(d, f[MET_NAME], "name", "unknown metric", metric_kind_names,
				  METRIC_PROMETHEUS);
	m->kind = (enum metric_kind)kind;
	if (not_allowed(d, f, MET_SUCCESS, m->kind) || not_allowed(d, f, MET_WEBHOOK, m->kind) ||
	    not_allowed(d, f, MET_ERROR_LIMIT, m->kind) || metric_limit(d, n, f, m) ||
	    metric_quantile(d, f, m))
		return -1;
	a->n_metrics++;
	return 0;
}

static int parse_metrics(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "metric", CONFIG_MAX_METRICS, false, parse_metric, arg);
}

enum {
	AN_INTERVAL,
	AN_MIN_REQUESTS,
	AN_FAILURE_LIMIT,
	AN_CONFIDENCE,
	AN_METRICS,
	AN_INCONCLUSIVE_LIMIT,
	AN_N
};

static int parse_analysis(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[AN_N] = { "interval",   "minRequests", "failureLimit",
						 "confidence", "metrics",     "inconclusiveLimit" };
	struct analysis_cfg *a = arg;
	const struct ynode *f[AN_N];
	unsigned long long u;

	if (map_fields(d, n, names, AN_N, 0, f) ||
	    (f[AN_INTERVAL] && get_duration_ms(d, f[AN_INTERVAL], "interval", &a->interval_ms)))
		return -1;
	if (f[AN_MIN_REQUESTS]) {
		if (get_uint(d, f[AN_MIN_REQUESTS], "minRequests", 1, MAX_MIN_REQUESTS, &u))
			return -1;
		a->min_requests = u;
	}
	if (f[AN_FAILURE_LIMIT]) {
		if (get_uint(d, f[AN_FAILURE_LIMIT], "failureLimit", 0, MAX_FAILURE_LIMIT, &u))
			return -1;
		a->failure_limit = (__u32)u;
	}
	if (f[AN_INCONCLUSIVE_LIMIT]) {
		if (get_uint(d, f[AN_INCONCLUSIVE_LIMIT], "inconclusiveLimit", 0, MAX_FAILURE_LIMIT,
			     &u))
			return -1;
		a->inconclusive_limit = (__u32)u;
	}
	if (f[AN_CONFIDENCE]) {
		if (get_double(d, f[AN_CONFIDENCE], "confidence", &a->confidence))
			return -1;
		if (!(a->confidence > 0.5 && a->confidence < 1))
			return fail(d, &f[AN_CONFIDENCE]->mark, "confidence",
				    "%s is out of range (more than 0.5, less than 1)",
				    f[AN_CONFIDENCE]->text);
	}
	return sub(d, "metrics", f[AN_METRICS], parse_metrics, a);
}

static int parse_abort(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "connections" };
	static const char *const modes[] = {
		[ABORT_CONNECTIONS_RESET] = "reset", [ABORT_CONNECTIONS_DRAIN] = "drain"
	};
	struct rollout_cfg *r = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	int mode;

	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f))
		return -1;
	if (!f[0])
		return 0;
	if (get_enum(d, f[0], "connections", modes, ARRAY_SIZE(modes), &mode))
		return -1;
	r->abort_connections = (enum abort_connections)mode;
	return 0;
}

/* healthCheck: {interval: 1s, timeout: 200ms, failureThreshold: 2} */
static int parse_health(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "interval", "timeout", "failureThreshold" };
	struct health_cfg *h = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	unsigned long long threshold = h->failure_threshold;

	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f) ||
	    (f[0] && get_duration_ms(d, f[0], "interval", &h->interval_ms)) ||
	    (f[1] && get_duration_ms(d, f[1], "timeout", &h->timeout_ms)) ||
	    (f[2] && get_uint(d, f[2], "failureThreshold", 1, 100, &threshold)))
		return -1;
	if (h->timeout_ms >= h->interval_ms)
		return fail(d, &n->mark, NULL, "timeout must be shorter than interval");
	h->failure_threshold = (__u32)threshold;
	h->enabled = true;
	return 0;
}

static const char *const notify_event_names[NOTIFY_EVENT_COUNT] = {
	[NOTIFY_STARTED] = "started", [NOTIFY_STEP] = "step",
	[NOTIFY_PAUSED] = "paused",   [NOTIFY_PROMOTED] = "promoted",
	[NOTIFY_ABORTED] = "aborted", [NOTIFY_SUPERSEDED] = "superseded",
};

const char *notify_event_name(enum notify_event e)
{
	return e < NOTIFY_EVENT_COUNT ? notify_event_names[e] : "unknown";
}

static int parse_notify_event(struct doc *d, const struct ynode *n, void *arg)
{
	struct notify_cfg *c = arg;
	int e;

	if (get_enum(d, n, NULL, notify_event_names, NOTIFY_EVENT_COUNT, &e))
		return -1;
	c->events |= BIT(e);
	return 0;
}

static int parse_notify_events(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "event", NOTIFY_EVENT_COUNT, true, parse_notify_event, arg);
}

static int parse_notification(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "url", "events", "format", "timeout" };
	static const char *const formats[] = {
		[NOTIFY_FORMAT_GENERIC] = "generic", [NOTIFY_FORMAT_SLACK] = "slack"
	};
	struct rollout_cfg *r = arg;
	struct notify_cfg *c = &r->notifications[r->n_notifications];
	const struct ynode *f[ARRAY_SIZE(names)];
	const char *url;
	int format = NOTIFY_FORMAT_GENERIC;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = 2000;
	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0), f) ||
	    get_string(d, f[0], "url", &url) ||
	    (f[2] && get_enum(d, f[2], "format", formats, ARRAY_SIZE(formats), &format)) ||
	    (f[3] && get_duration_ms(d, f[3], "timeout", &c->timeout_ms)) ||
	    sub(d, "events", f[1], parse_notify_events, c))
		return -1;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return fail(d, &f[0]->mark, "url",
			    "\"%s\": expected http://HOST[:PORT]/PATH or https://…", url);
	if (strlen(url) >= sizeof(c->url))
		return fail(d, &f[0]->mark, "url", "longer than %zu characters",
			    sizeof(c->url) - 1);
	if (c->timeout_ms > 60000)
		return fail(d, &f[3]->mark, "timeout", "at most 60s");
	snprintf(c->url, sizeof(c->url), "%s", url);
	c->format = (enum notify_format)format;
	if (!f[1])
		c->events = BIT(NOTIFY_EVENT_COUNT) - 1; /* all of them */
	r->n_notifications++;
	return 0;
}

static int parse_notifications(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "notification", CONFIG_MAX_NOTIFICATIONS, false, parse_notification,
			 arg);
}

enum {
	SPEC_SERVICE,
	SPEC_STABLE,
	SPEC_CANARY,
	SPEC_AFFINITY,
	SPEC_OVERRIDES,
	SPEC_STRATEGY,
	SPEC_ANALYSIS,
	SPEC_ABORT,
	SPEC_HEALTH,
	SPEC_NOTIFICATIONS,
	SPEC_N,
};

static int parse_spec(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[SPEC_N] = {
		[SPEC_SERVICE] = "service",	[SPEC_STABLE] = "stable",
		[SPEC_CANARY] = "canary",	[SPEC_AFFINITY] = "affinity",
		[SPEC_OVERRIDES] = "overrides", [SPEC_STRATEGY] = "strategy",
		[SPEC_ANALYSIS] = "analysis",	[SPEC_ABORT] = "abort",
		[SPEC_HEALTH] = "healthCheck",	[SPEC_NOTIFICATIONS] = "notifications",
	};
	static const char *const affinities[] = {
		[CANARY_AFFINITY_NONE] = "none", [CANARY_AFFINITY_CLIENT_IP] = "client-ip"
	};
	const unsigned int required =
		BIT(SPEC_SERVICE) | BIT(SPEC_STABLE) | BIT(SPEC_CANARY) | BIT(SPEC_STRATEGY);
	struct rollout_cfg *r = arg;
	const struct ynode *f[SPEC_N];
	int affinity = CANARY_AFFINITY_NONE;

	if (map_fields(d, n, names, SPEC_N, required, f) ||
	    sub(d, "service", f[SPEC_SERVICE], parse_service, r) ||
	    sub(d, "stable", f[SPEC_STABLE], parse_version, &r->stable) ||
	    sub(d, "canary", f[SPEC_CANARY], parse_version, &r->canary) ||
	    (f[SPEC_AFFINITY] && get_enum(d, f[SPEC_AFFINITY], "affinity", affinities,
					  ARRAY_SIZE(affinities), &affinity)) ||
	    sub(d, "overrides", f[SPEC_OVERRIDES], parse_overrides, r) ||
	    sub(d, "strategy", f[SPEC_STRATEGY], parse_strategy, r) ||
	    sub(d, "analysis", f[SPEC_ANALYSIS], parse_analysis, &r->analysis) ||
	    sub(d, "abort", f[SPEC_ABORT], parse_abort, r) ||
	    sub(d, "healthCheck", f[SPEC_HEALTH], parse_health, &r->health) ||
	    sub(d, "notifications", f[SPEC_NOTIFICATIONS], parse_notifications, r))
		return -1;
	r->affinity = (enum canary_affinity)affinity;
	return 0;
}

static int expect_literal(struct doc *d, const struct ynode *n, const char *key, const char *want)
{
	const char *s;

	if (!n)
		return 0;
	if (get_string(d, n, key, &s))
		return -1;
	if (strcmp(s, want) != 0)
		return fail(d, &n->mark, key, "unsupported %s \"%s\" (expected %s)", key, s, want);
	return 0;
}

enum { TOP_API_VERSION, TOP_KIND, TOP_METADATA, TOP_SPEC, TOP_N };

static int parse_rollout(struct doc *d, const struct ynode *n, struct rollout_cfg *r)
{
	static const char *const names[TOP_N] = { "apiVersion", "kind", "metadata", "spec" };
	const struct ynode *f[TOP_N];

	if (want(d, n, Y_MAP))
		return -1;
	/* These two first, so another tool's document is called that, not unknown fields. */
	if (expect_literal(d, find_value(n, "apiVersion"), "apiVersion", API_VERSION) ||
	    expect_literal(d, find_value(n, "kind"), "kind", KIND) ||
	    map_fields(d, n, names, TOP_N, BIT(TOP_N) - 1, f))
		return -1;
	if (sub(d, "metadata", f[TOP_METADATA], parse_metadata, r))
		return -1;
	return sub(d, "spec", f[TOP_SPEC], parse_spec, r);
}

static void rollout_defaults(struct rollout_cfg *r, const char *file, const struct ypos *start)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->origin, sizeof(r->origin), "%s:%zu:%zu", file, start->line + 1,
		 start->column + 1);
	r->affinity = CANARY_AFFINITY_NONE;
	r->analysis.interval_ms = 1000;
	r->analysis.min_requests = 50;
	r->analysis.failure_limit = 1;
	r->analysis.confidence = 0.99;
	r->progress_deadline_ms = CONFIG_DEFAULT_PROGRESS_DEADLINE_MS;
	r->abort_connections = ABORT_CONNECTIONS_RESET;
	r->health.interval_ms = 1000;
	r->health.timeout_ms = 200;
	r->health.failure_threshold = 2;
}

/* Names and services are keys for the agent and the data path: each must be unique. */
static int check_unique(struct doc *d, const struct rollout_cfg *r)
{
	const struct canary_service_key *k = &r->service.key;
	char ep[32];
	size_t i;

	for (i = 0; i < d->ld->n; i++)
		if (!strcmp(d->ld->v[i].name, r->name))
			return fail(d, &d->name_node->mark, "metadata.name",
				    "duplicate rollout name \"%s\" (first defined at %s)", r->name,
				    d->ld->v[i].origin);
	/* A VIP read from a Service is known only to the agent, which checks it there. */
	for (i = 0; i < d->ld->n && !r->vip_service[0]; i++) {
		const struct canary_service_key *o = &d->ld->v[i].service.key;

		if (o->vip == k->vip && o->port == k->port && o->proto == k->proto)
			return fail(d, &d->service_node->mark, "spec.service",
				    "%s/%s is already the service of rollout \"%s\" (%s)",
				    format_endpoint(k->vip, k->port, ep, sizeof(ep)),
				    k->proto == IPPROTO_UDP ? "udp" : "tcp", d->ld->v[i].name,
				    d->ld->v[i].origin);
	}
	return 0;
}

static int loader_reserve(struct loader *ld)
{
	struct rollout_cfg *v;
	size_t cap;

	if (ld->n < ld->cap)
		return 0;
	cap = ld->cap ? ld->cap * 2 : 4;
	v = realloc(ld->v, cap * sizeof(*v));
	if (!v)
		return -1;
	ld->v = v;
	ld->cap = cap;
	return 0;
}

static int load_document(struct loader *ld, const char *file, const struct ynode *root,
			 const struct ypos *start)
{
	struct doc d = { .ld = ld, .file = file };
	struct rollout_cfg *r;

	/* An empty document, e.g. after a trailing "---", as kubectl allows. */
	if (!root || (root->kind == Y_SCALAR && root->null))
		return 0;
	if (ld->n == MAX_ROLLOUTS)
		return fail(&d, start, NULL, "more than %d rollouts", MAX_ROLLOUTS);
	if (loader_reserve(ld))
		return fail(&d, start, NULL, "out of memory");
	r = &ld->v[ld->n];
	rollout_defaults(r, file, start);
	if (parse_rollout(&d, root, r) || check_unique(&d, r))
		return -1;
	ld->n++;
	return 0;
}

int config_parse_stream(struct loader *ld, const char *file, const char *buf, size_t len)
{
	struct ypos start = { 0 };
	struct ynode *root = NULL;
	struct ystream *s;
	int rc;

	if (len > CONFIG_MAX_FILE_SIZE)
		return file_fail(ld, file, "larger than 1 MiB (%zu bytes)", len);
	if (ystream_open(&s, file, buf, len, ld->err, sizeof(ld->err)))
		return -1;
	while ((rc = ystream_next(s, &root, &start)) > 0) {
		rc = load_document(ld, file, root, &start);
		ynode_free(root);
		if (rc)
			break;
	}
	ystream_close(s);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* API */

/* ------------------------------------------------------------------------ */
/* API */

int config_finish(struct loader *ld, int rc, struct config *out, char *err, size_t errlen)
{
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "%s", ld->err[0] ? ld->err : "invalid configuration");
		free(ld->v);
		return -1;
	}
	if (!ld->n) {
		free(ld->v);
		ld->v = NULL;
	}
	out->rollouts = ld->v;
	out->n_rollouts = ld->n;
	return 0;
}

int config_parse_buffer(const char *name, const char *buf, size_t len, struct config *out,
			char *err, size_t errlen)
{
	struct loader ld = { 0 };

	if (!buf)
		buf = len ? NULL : "";
	if (!buf)
		return config_finish(&ld, file_fail(&ld, name ? name : "(buffer)", "no data"), out,
				     err, errlen);
	return config_finish(&ld, config_parse_stream(&ld, name ? name : "(buffer)", buf, len), out,
			     err, errlen);
}

bool config_uses_services(const struct rollout_cfg *r)
{
	return r->vip_service[0] || r->stable.service[0] || r->canary.service[0];
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->rollouts);
	cfg->rollouts = NULL;
	cfg->n_rollouts = 0;
}
