// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kubesvc.h"
#include "log.h"

#define MAX_PATH 512

/* The first IPv4 address among clusterIP and clusterIPs (dual stack). -ENOENT: none there. */
static int cluster_ipv4(const json_t *spec, __be32 *vip, const char **first)
{
	const json_t *ips = json_object_get(spec, "clusterIPs"), *ip;
	const char *one = json_string_value(json_object_get(spec, "clusterIP"));
	struct in_addr a;
	size_t i;

	*first = one && one[0] ? one : NULL;
	if (one && inet_pton(AF_INET, one, &a) == 1) {
		*vip = a.s_addr;
		return 0;
	}
	json_array_foreach(ips, i, ip)
	{
		const char *s = json_string_value(ip);

		if (!*first && s && s[0])
			*first = s;
		if (s && inet_pton(AF_INET, s, &a) == 1) {
			*vip = a.s_addr;
			return 0;
		}
	}
	return -ENOENT;
}

static const char *port_protocol(const json_t *p)
{
	const char *s = json_string_value(json_object_get(p, "protocol"));

	return s ? s : "TCP"; /* the API's default */
}

/* "80/TCP, 443/TCP" into buf, for messages. */
static const char *list_ports(const json_t *ports, char *buf, size_t len)
{
	size_t used = 0, i;
	const json_t *p;

	buf[0] = '\0';
	json_array_foreach(ports, i, p)
	{
		int w = snprintf(buf + used, len - used, "%s%lld/%s", i ? ", " : "",
				 (long long)json_integer_value(json_object_get(p, "port")),
				 port_protocol(p));

		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	return buf;
}

/* The port entry the rollout means: the one numbered port, or the only one. */
static const json_t *pick_port(const json_t *ports, __u16 port, char *err, size_t errlen)
{
	size_t n = json_array_size(ports), i;
	const json_t *p;
	char have[128];

	if (!n) {
		snprintf(err, errlen, "the Service has no port");
		return NULL;
	}
	if (!port) {
		if (n == 1)
			return json_array_get(ports, 0);
		snprintf(
			err, errlen,
			"the Service has %zu ports (%s): set spec.service.port to the one to split",
			n, list_ports(ports, have, sizeof(have)));
		return NULL;
	}
	json_array_foreach(ports, i,
			   p) if (json_integer_value(json_object_get(p, "port")) == port) return p;
	snprintf(err, errlen, "the Service has no port %u (it has %s)", port,
		 list_ports(ports, have, sizeof(have)));
	return NULL;
}

int kubesvc_vip_from_json(const json_t *obj, __u16 port, __u8 proto, struct canary_service_key *key,
			  char *err, size_t errlen)
{
	const json_t *spec = json_object_get(obj, "spec"), *p;
	const char *want = proto == IPPROTO_UDP ? "UDP" : "TCP", *ip;
	const char *type = json_string_value(json_object_get(spec, "type"));
	json_int_t number;
	__be32 vip;

	if (!json_is_object(spec)) {
		snprintf(err, errlen, "not a Service (no spec)");
		return -EINVAL;
	}
	if (cluster_ipv4(spec, &vip, &ip)) {
		if (ip && !strcmp(ip, "None"))
			snprintf(
				err, errlen,
				"the Service is headless (clusterIP None): it has no VIP to split");
		else if (ip)
			snprintf(err, errlen,
				 "the Service's ClusterIP %s is not IPv4: the data path splits "
				 "IPv4 only",
				 ip);
		else
			snprintf(err, errlen, "the Service has no ClusterIP (type %s)",
				 type ? type : "unknown");
		return -EINVAL;
	}
	p = pick_port(json_object_get(spec, "ports"), port, err, errlen);
	if (!p)
		return -EINVAL;
	number = json_integer_value(json_object_get(p, "port"));
	if (number < 1 || number > 65535) {
		snprintf(err, errlen, "the Service's port %lld is not a port", (long long)number);
		return -EINVAL;
	}
	if (strcmp(port_protocol(p), want) != 0) {
		snprintf(err, errlen, "the Service's port %lld is %s, the rollout's protocol %s",
			 (long long)number, port_protocol(p), want);
		return -EINVAL;
	}
	memset(key, 0, sizeof(*key));
	key->vip = vip;
	key->port = htons((__u16)number);
	key->proto = proto;
	return 0;
}

bool kubesvc_same_vip(const json_t *a, const json_t *b)
{
	const json_t *sa = json_object_get(a, "spec"), *sb = json_object_get(b, "spec");
	static const char *const fields[] = { "clusterIP", "clusterIPs", "ports" };
	size_t i;

	if (!a || !b)
		return !a && !b;
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const json_t *x = json_object_get(sa, fields[i]),
			     *y = json_object_get(sb, fields[i]);

		if ((x || y) && !json_equal(x, y))
			return false;
	}
	return true;
}

/* ---- following one Service ---- */

static void services_path(char *path, size_t len, const char *ns, const char *name,
			  const char *query)
{
	snprintf(path, len, "/api/v1/namespaces/%s/services?fieldSelector=metadata.name%%3D%s%s%s",
		 ns, name, query[0] ? "&" : "", query);
}

static void copy_rv(char *rv, const json_t *obj)
{
	const char *s = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));

	if (s && strlen(s) < KUBE_RV_LEN)
		snprintf(rv, KUBE_RV_LEN, "%s", s);
}

int kubesvc_list(struct kube_client *c, const char *ns, const char *name, json_t **svc, char *rv)
{
	char path[MAX_PATH];
	json_t *resp = NULL, *items;
	long status = 0;
	int err;

	*svc = NULL;
	services_path(path, sizeof(path), ns, name, "");
	err = kube_get(c, path, &status, &resp);
	if (!err && status != 200)
		err = status == 403 ? -EACCES : -EIO;
	items = json_object_get(resp, "items");
	if (!err && !json_is_array(items))
		err = -EINVAL;
	if (!err) {
		rv[0] = '\0';
		copy_rv(rv, resp);
		*svc = json_incref(json_array_get(items, 0)); /* NULL when there is none */
	}
	json_decref(resp);
	return err;
}

struct svc_watch {
	const struct kubesvc_watch_opts *o;
	char rv[KUBE_RV_LEN];
	int err; /* why the stream ended on our side: -ESTALE (410), -EPROTO, -EINVAL; 1: stop */
};

static bool svc_watch_line(void *arg, const char *line, size_t len)
{
	struct svc_watch *w = arg;
	struct kube_event ev;
	bool go_on = true;

	w->err = kube_event_parse(line, len, &ev);
	if (w->err)
		return false;
	switch (ev.type) {
	case KUBE_EV_GONE:
		w->err = -ESTALE;
		break;
	case KUBE_EV_ERROR:
		log_event(CLOG_WARN, "kube watch error event", "service", w->o->name, "message",
			  json_string_value(json_object_get(ev.object, "message")));
		w->err = -EPROTO;
		break;
	case KUBE_EV_BOOKMARK:
		copy_rv(w->rv, ev.object);
		break;
	default:
		copy_rv(w->rv, ev.object);
		go_on = w->o->fn(ev.type == KUBE_EV_DELETED ? NULL : ev.object, w->o->arg);
		if (!go_on)
			w->err = 1;
	}
	kube_event_free(&ev);
	return go_on && !w->err;
}

/* One watch request from w->rv: as kube_stream, with w->err saying why it ended on our side. */
static int watch_once(struct kube_client *c, struct svc_watch *w)
{
	/* 5..10 min, as the EndpointSlice watch: a fleet's watches end apart. */
	long timeout_s = 300 + random() % 301;
	char path[MAX_PATH], query[KUBE_RV_LEN + 96];
	int rc;

	snprintf(query, sizeof(query),
		 "watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld&resourceVersion=%s",
		 timeout_s, w->rv);
	services_path(path, sizeof(path), w->o->ns, w->o->name, query);
	w->err = 0;
	rc = kube_stream(c, path, timeout_s, svc_watch_line, w, w->o->stop);
	return rc == 1 ? w->err : rc;
}

static void nap_ms(long ms, const atomic_bool *stop)
{
	struct timespec ts = { 0, 50 * 1000000L };

	for (; ms > 0 && !atomic_load(stop); ms -= 50)
		nanosleep(&ts, NULL);
}

static long next_backoff(const struct kubesvc_watch_opts *o, unsigned int *attempt)
{
	return kube_backoff_ms((*attempt)++, o->backoff_base_ms ? o->backoff_base_ms : 200,
			       o->backoff_max_ms ? o->backoff_max_ms : 30000,
			       (double)random() / (double)RAND_MAX);
}

/* List until it works (or stop) and hand the Service over. 1: stop. */
static int relist(struct kube_client *c, struct svc_watch *w)
{
	unsigned int attempt = 0;

	while (!atomic_load(w->o->stop)) {
		json_t *svc;
		int err = kubesvc_list(c, w->o->ns, w->o->name, &svc, w->rv);

		if (!err) {
			bool go_on = w->o->fn(svc, w->o->arg);

			json_decref(svc);
			return go_on ? 0 : 1;
		}
		if (err == -ENOMEM)
			return err;
		nap_ms(next_backoff(w->o, &attempt), w->o->stop);
	}
	return 1;
}

int kubesvc_watch(struct kube_client *c, const struct kubesvc_watch_opts *o)
{
	struct svc_watch w = { .o = o };
	unsigned int attempt = 0;
	int err = relist(c, &w);

	while (!err && !atomic_load(o->stop)) {
		err = watch_once(c, &w);
		if (err > 0 || err == -ENOMEM)
			break;
		if (err == -ESTALE) {
			err = relist(c, &w);
			attempt = 0;
		} else if (err) {
			nap_ms(next_backoff(o, &attempt), o->stop);
			err = 0;
		} else {
			attempt = 0; /* a watch that ran its time: resume from w.rv */
		}
	}
	return err > 0 ? 0 : err;
}
