// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kubeeps.h"
#include "kubesvc.h"
#include "log.h"

/* A list or discovery request that takes longer is an API server in trouble. */
#define KUBEEPS_REQUEST_MS 2000
/* After the watcher gave up (no EndpointSlice API), look again this much later. */
#define KUBEEPS_RETRY_MS 5000

struct kube_svc {
	struct kubeeps *ke;
	char ns[CONFIG_KUBE_NAME_LEN];
	char name[CONFIG_KUBE_NAME_LEN];
	/* Followed for its ClusterIP, a rollout's VIP (kubesvc.h), not for its endpoints. */
	bool for_vip;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	/* Under ke->lock from here on. */
	struct canary_backend ready[CANARY_MAX_BACKENDS];
	int n;		     /* 0: no ready endpoint seen yet */
	unsigned long gen;   /* bumped on every change of ready */
	unsigned long given; /* gen last handed to the tick loop */
	bool awaited;	     /* a configuration was refused for want of it */
	bool wanted;	     /* named by the configuration last followed */
	char api[32];
	/* for_vip only: the Service as last read (NULL: there is none). */
	json_t *object;
	bool known; /* read at least once */
};

struct kubeeps {
	struct kube_conn conn;
	char default_ns[CONFIG_KUBE_NAME_LEN];
	pthread_mutex_t lock;
	struct kube_svc **v;
	size_t n;
	bool threads_ok;
	bool reload_wanted;
};

int kubeeps_ready(const struct kube_backend *b, long n, struct canary_backend *out, int max,
		  int *skipped)
{
	int k = 0;
	long i;

	*skipped = 0;
	for (i = 0; i < n; i++) {
		struct in_addr a;

		if (b[i].state != KUBE_EP_READY)
			continue;
		if (k == max || inet_pton(AF_INET, b[i].addr, &a) != 1) {
			++*skipped;
			continue;
		}
		memset(&out[k], 0, sizeof(out[k]));
		out[k].addr = a.s_addr;
		out[k].port = htons(b[i].port);
		k++;
	}
	return k;
}

int kubeeps_create(const struct kube_conn *conn, const char *default_ns, struct kubeeps **out)
{
	struct kubeeps *ke = calloc(1, sizeof(*ke));

	if (!ke)
		return -ENOMEM;
	ke->conn = *conn;
	snprintf(ke->default_ns, sizeof(ke->default_ns), "%s", default_ns);
	if (pthread_mutex_init(&ke->lock, NULL)) {
		free(ke);
		return -ENOMEM;
	}
	*out = ke;
	return 0;
}

static void svc_stop(struct kube_svc *s)
{
	if (s->running) {
		atomic_store(&s->stop, true);
		pthread_join(s->thread, NULL);
		s->running = false;
	}
}

/* Stopped first: its thread no longer uses it. */
static void svc_free(struct kube_svc *s)
{
	json_decref(s->object);
	free(s);
}

static const char *svc_what(const struct kube_svc *s)
{
	return s->for_vip ? "its ClusterIP, a VIP" : "its endpoints";
}

void kubeeps_destroy(struct kubeeps *ke)
{
	size_t i;

	if (!ke)
		return;
	for (i = 0; i < ke->n; i++) {
		svc_stop(ke->v[i]);
		svc_free(ke->v[i]);
	}
	free(ke->v);
	pthread_mutex_destroy(&ke->lock);
	free(ke);
}

static struct kube_svc *find(struct kubeeps *ke, const char *ns, const char *name, bool for_vip)
{
	size_t i;

	for (i = 0; i < ke->n; i++)
		if (!strcmp(ke->v[i]->ns, ns) && !strcmp(ke->v[i]->name, name) &&
		    ke->v[i]->for_vip == for_vip)
			return ke->v[i];
	return NULL;
}

/* The Service's entry, made when new. Called by the tick loop's thread only. */
static struct kube_svc *get(struct kubeeps *ke, const char *ns, const char *name, bool for_vip)
{
	struct kube_svc *s = find(ke, ns, name, for_vip), **v;

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	v = realloc(ke->v, (ke->n + 1) * sizeof(struct kube_svc *));
	if (!v) {
		free(s);
		return NULL;
	}
	s->ke = ke;
	s->for_vip = for_vip;
	snprintf(s->ns, sizeof(s->ns), "%s", ns);
	snprintf(s->name, sizeof(s->name), "%s", name);
	atomic_init(&s->stop, false);
	pthread_mutex_lock(&ke->lock);
	ke->v = v;
	ke->v[ke->n++] = s;
	pthread_mutex_unlock(&ke->lock);
	return s;
}

static void count_states(const struct kube_backend *b, long n, int *term, int *unready)
{
	long i;

	*term = *unready = 0;
	for (i = 0; i < n; i++) {
		*term += b[i].state == KUBE_EP_TERMINATING;
		*unready += b[i].state == KUBE_EP_NOT_READY;
	}
}

/*
 * A new view of the Service: keep its ready set when it changed and is not
 * empty. Returns -ENOMEM or 0.
 */
static int take(struct kube_svc *s, const struct kube_slices *sl, const char *api)
{
	struct canary_backend ready[CANARY_MAX_BACKENDS];
	struct kube_backend *b;
	long n = kube_slices_backends(sl, &b);
	int k, skipped, term, unready;
	char c[4][16];
	bool changed;

	if (n < 0)
		return (int)n;
	k = kubeeps_ready(b, n, ready, CANARY_MAX_BACKENDS, &skipped);
	count_states(b, n, &term, &unready);
	free(b);
	pthread_mutex_lock(&s->ke->lock);
	changed = k && (k != s->n || memcmp(ready, s->ready, (size_t)k * sizeof(ready[0])) != 0);
	if (changed) {
		memcpy(s->ready, ready, (size_t)k * sizeof(ready[0]));
		s->n = k;
		s->gen++;
		if (s->awaited)
			s->ke->reload_wanted = true;
		s->awaited = false;
	}
	snprintf(s->api, sizeof(s->api), "%s", api);
	pthread_mutex_unlock(&s->ke->lock);
	snprintf(c[0], sizeof(c[0]), "%d", k);
	snprintf(c[1], sizeof(c[1]), "%d", term);
	snprintf(c[2], sizeof(c[2]), "%d", unready);
	snprintf(c[3], sizeof(c[3]), "%d", skipped);
	if (!k)
		log_event(CLOG_WARN, "service has no ready endpoint: keeping the last list",
			  "namespace", s->ns, "service", s->name, "terminating", c[1], "not_ready",
			  c[2], "api", api, "rv", sl->rv);
	else if (changed)
		log_event(CLOG_INFO, "service endpoints changed", "namespace", s->ns, "service",
			  s->name, "ready", c[0], "terminating", c[1], "not_ready", c[2],
			  "left_out", c[3], "api", api, "rv", sl->rv);
	return 0;
}

/* The watcher's view: its Service and the options kube.c fills in (api). */
struct watch_arg {
	struct kube_svc *s;
	struct kube_watch_opts o;
};

static bool on_change(const struct kube_slices *sl, void *arg)
{
	struct watch_arg *w = arg;

	return take(w->s, sl, w->o.api) == 0;
}

static void nap_ms(long ms, const atomic_bool *stop)
{
	struct timespec ts = { .tv_nsec = 50 * 1000000L };

	for (; ms > 0 && !atomic_load(stop); ms -= 50)
		nanosleep(&ts, NULL);
}

static const char *cluster_ip(const json_t *svc)
{
	const char *ip =
		json_string_value(json_object_get(json_object_get(svc, "spec"), "clusterIP"));

	return ip ? ip : "";
}

/* had: the Service was there before (a VIP from it may be in the maps). */
static void log_vip_read(const struct kube_svc *s, const json_t *svc, bool had)
{
	if (!svc)
		log_event(CLOG_WARN,
			  had ? "VIP service gone: the maps keep its last VIP" :
				"VIP service not found",
			  "namespace", s->ns, "service", s->name);
	else
		log_event(CLOG_INFO, "VIP service read", "namespace", s->ns, "service", s->name,
			  "cluster_ip", cluster_ip(svc));
}

/*
 * A new view of a VIP Service. A changed ClusterIP or port asks for a
 * reload, which moves the rollout's service to the new VIP; a deleted
 * Service keeps the VIP in the maps until it is back.
 */
static bool take_vip(json_t *svc, void *arg)
{
	struct kube_svc *s = arg;
	bool changed, had;

	pthread_mutex_lock(&s->ke->lock);
	had = s->object != NULL;
	changed = !s->known || !kubesvc_same_vip(s->object, svc);
	if (changed && (s->known || s->awaited))
		s->ke->reload_wanted = true;
	json_decref(s->object);
	s->object = json_incref(svc);
	s->known = true;
	pthread_mutex_unlock(&s->ke->lock);
	if (changed)
		log_vip_read(s, svc, had);
	return true;
}

static int watch_vip(struct kube_svc *s, struct kube_client *c)
{
	struct kubesvc_watch_opts o = {
		.ns = s->ns,
		.name = s->name,
		.backoff_base_ms = 200,
		.backoff_max_ms = 5000,
		.fn = take_vip,
		.arg = s,
		.stop = &s->stop,
	};

	return kubesvc_watch(c, &o);
}

static void *watch_thread(void *arg)
{
	struct kube_svc *s = arg;
	struct watch_arg w = { .s = s };
	struct kube_client c;

	w.o.ns = s->ns;
	w.o.service = s->name;
	w.o.fn = on_change;
	w.o.arg = &w;
	w.o.stop = &s->stop;
	w.o.backoff_base_ms = 200;
	w.o.backoff_max_ms = 5000;
	while (!atomic_load(&s->stop)) {
		int err = kube_conn_client(&s->ke->conn, &c);

		if (!err) {
			c.timeout_ms = KUBEEPS_REQUEST_MS;
			err = s->for_vip ? watch_vip(s, &c) : kube_watch_endpointslices(&c, &w.o);
		}
		kube_client_close(&c);
		if (err && !atomic_load(&s->stop))
			log_event(CLOG_ERROR, "service watch ended: retrying", "namespace", s->ns,
				  "service", s->name, "error",
				  err == -ENOENT ? "the API server serves no EndpointSlices" :
						   strerror(-err));
		nap_ms(KUBEEPS_RETRY_MS, &s->stop);
	}
	return NULL;
}

static int svc_start(struct kube_svc *s)
{
	int err;

	if (s->running)
		return 0;
	atomic_store(&s->stop, false);
	err = pthread_create(&s->thread, NULL, watch_thread, s);
	if (err)
		return -err;
	s->running = true;
	log_event(CLOG_INFO,
		  s->for_vip ? "watching service ClusterIP" : "watching service endpoints",
		  "namespace", s->ns, "service", s->name);
	return 0;
}

/* One list now, in the caller's thread: a Service the configuration names for the first time. */
static int list_now(struct kubeeps *ke, struct kube_svc *s)
{
	struct kube_watch_opts o = { .ns = s->ns, .service = s->name };
	struct kube_slices sl;
	struct kube_client c;
	int err = kube_conn_client(&ke->conn, &c);

	if (!err) {
		c.timeout_ms = KUBEEPS_REQUEST_MS;
		err = kube_list_endpointslices(&c, &o, &sl);
	}
	kube_client_close(&c);
	if (err)
		return err;
	err = take(s, &sl, o.api);
	kube_slices_free(&sl);
	return err;
}

/* One version of a rollout: its endpoints from the Service's ready set. */
static int fill_version(struct kubeeps *ke, const char *ns, struct version_cfg *v, char *err,
			size_t errlen)
{
	struct kube_svc *s;
	int rc = 0;

	if (!v->service[0])
		return 0;
	s = get(ke, ns, v->service, false);
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&ke->lock);
	rc = s->n;
	pthread_mutex_unlock(&ke->lock);
	if (!rc)
		rc = list_now(ke, s);
	pthread_mutex_lock(&ke->lock);
	memset(v->endpoints, 0, sizeof(v->endpoints));
	memcpy(v->endpoints, s->ready, (size_t)s->n * sizeof(s->ready[0]));
	v->n_endpoints = (__u8)s->n;
	s->awaited = !s->n;
	pthread_mutex_unlock(&ke->lock);
	if (v->n_endpoints)
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "Service %s/%s: no ready endpoint known yet (%s)", ns,
			 v->service, rc < 0 ? strerror(-rc) : "none ready");
	return -EAGAIN;
}

/* One read of a VIP Service now, in the caller's thread: named for the first time. */
static int read_vip_now(struct kubeeps *ke, struct kube_svc *s)
{
	struct kube_client c;
	json_t *svc = NULL;
	int err = kube_conn_client(&ke->conn, &c);

	if (!err) {
		char rv[KUBE_RV_LEN];

		c.timeout_ms = KUBEEPS_REQUEST_MS;
		err = kubesvc_list(&c, s->ns, s->name, &svc, rv);
	}
	kube_client_close(&c);
	if (err)
		return err;
	pthread_mutex_lock(&ke->lock);
	json_decref(s->object);
	s->object = svc;
	s->known = true;
	pthread_mutex_unlock(&ke->lock);
	log_vip_read(s, svc, false);
	return 0;
}

/* What the Service gives as the rollout's key, or why it gives none (in why). */
static int vip_of(struct kubeeps *ke, struct kube_svc *s, const struct rollout_cfg *r,
		  struct canary_service_key *key, char *why, size_t whylen)
{
	__u16 port = r->port_given ? ntohs(r->service.key.port) : 0;
	int rc = 0;

	pthread_mutex_lock(&ke->lock);
	if (!s->known)
		snprintf(why, whylen, "not read yet");
	else if (!s->object)
		snprintf(why, whylen, "no such Service");
	else
		rc = kubesvc_vip_from_json(s->object, port, r->service.key.proto, key, why, whylen);
	if (!s->known || !s->object)
		rc = -ENOENT;
	s->awaited = rc != 0;
	pthread_mutex_unlock(&ke->lock);
	return rc;
}

/* spec.service.fromService: the VIP is the Service's ClusterIP. -EAGAIN (err says why): not yet. */
static int fill_vip(struct kubeeps *ke, struct rollout_cfg *r, char *err, size_t errlen)
{
	struct canary_service_key key;
	struct kube_svc *s;
	char why[256];
	bool known;
	int rc = 0;

	if (!r->vip_service[0])
		return 0;
	s = get(ke, r->ns, r->vip_service, true);
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&ke->lock);
	known = s->known;
	pthread_mutex_unlock(&ke->lock);
	if (!known)
		rc = read_vip_now(ke, s);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		snprintf(why, sizeof(why), "cannot read it (%s)",
			 rc == -EACCES ? "403: the agent may not get, list and watch services" :
					 strerror(-rc));
		pthread_mutex_lock(&ke->lock);
		s->awaited = true;
		pthread_mutex_unlock(&ke->lock);
	} else {
		rc = vip_of(ke, s, r, &key, why, sizeof(why));
	}
	if (!rc) {
		r->service.key = key;
		return 0;
	}
	if (err && errlen)
		snprintf(err, errlen, "rollout \"%s\": spec.service.fromService: Service %s/%s: %s",
			 r->name, r->ns, r->vip_service, why);
	return -EAGAIN;
}

/* Two rollouts may not split one VIP:port: checked here for VIPs read from Services. */
static int check_vips_unique(const struct config *cfg, char *err, size_t errlen)
{
	char ep[32];
	size_t i, j;

	for (i = 0; i < cfg->n_rollouts; i++)
		for (j = 0; j < i; j++) {
			const struct rollout_cfg *a = &cfg->rollouts[j], *b = &cfg->rollouts[i];

			if ((!a->vip_service[0] && !b->vip_service[0]) ||
			    memcmp(&a->service.key, &b->service.key, sizeof(a->service.key)) != 0)
				continue;
			if (err && errlen)
				snprintf(
					err, errlen,
					"rollouts \"%s\" and \"%s\" have the same service %s/%s "
					"(spec.service.fromService gives a VIP another rollout uses)",
					a->name, b->name,
					format_endpoint(b->service.key.vip, b->service.key.port, ep,
							sizeof(ep)),
					b->service.key.proto == IPPROTO_UDP ? "udp" : "tcp");
			return -EAGAIN;
		}
	return 0;
}

int kubeeps_fill(struct kubeeps *ke, struct config *cfg, char *err, size_t errlen)
{
	int rc = 0;
	size_t i;

	for (i = 0; i < cfg->n_rollouts; i++) {
		struct rollout_cfg *r = &cfg->rollouts[i];
		int e;

		if (!config_uses_services(r))
			continue;
		if (!r->ns[0])
			snprintf(r->ns, sizeof(r->ns), "%s", ke->default_ns);
		e = fill_vip(ke, r, rc ? NULL : err, rc ? 0 : errlen);
		if (e == -ENOMEM)
			return e;
		if (e && !rc)
			rc = e;
		e = fill_version(ke, r->ns, &r->stable, rc ? NULL : err, rc ? 0 : errlen);
		if (e == -ENOMEM)
			return e;
		if (e && !rc)
			rc = e; /* go on: every awaited Service is marked */
		e = fill_version(ke, r->ns, &r->canary, rc ? NULL : err, rc ? 0 : errlen);
		if (e == -ENOMEM)
			return e;
		if (e && !rc)
			rc = e;
	}
	return rc ? rc : check_vips_unique(cfg, err, errlen);
}

static void want(struct kubeeps *ke, const char *ns, const char *name, bool for_vip)
{
	struct kube_svc *s;

	if (!name[0])
		return;
	s = get(ke, ns, name, for_vip);
	if (!s)
		return;
	s->wanted = true;
	if (ke->threads_ok && svc_start(s))
		log_event(CLOG_ERROR, "cannot start a service watcher", "namespace", ns, "service",
			  name);
}

/* Drop the entries no longer wanted; their threads stop first, outside the lock. */
static void prune(struct kubeeps *ke)
{
	size_t i, k = 0;

	for (i = 0; i < ke->n; i++) {
		struct kube_svc *s = ke->v[i];

		if (s->wanted) {
			ke->v[k++] = s;
			continue;
		}
		svc_stop(s);
		log_event(CLOG_INFO, "no longer watching service", "namespace", s->ns, "service",
			  s->name, "for", svc_what(s));
		pthread_mutex_lock(&ke->lock);
		svc_free(s);
		pthread_mutex_unlock(&ke->lock);
	}
	pthread_mutex_lock(&ke->lock);
	ke->n = k;
	pthread_mutex_unlock(&ke->lock);
}

int kubeeps_follow(struct kubeeps *ke, const struct config *cfg, bool prune_old)
{
	size_t i;

	if (prune_old)
		for (i = 0; i < ke->n; i++)
			ke->v[i]->wanted = false;
	for (i = 0; i < cfg->n_rollouts; i++) {
		const struct rollout_cfg *r = &cfg->rollouts[i];
		const char *ns = r->ns[0] ? r->ns : ke->default_ns;

		want(ke, ns, r->vip_service, true);
		want(ke, ns, r->stable.service, false);
		want(ke, ns, r->canary.service, false);
	}
	if (prune_old)
		prune(ke);
	return 0;
}

int kubeeps_run(struct kubeeps *ke)
{
	size_t i;
	int err = 0;

	ke->threads_ok = true;
	for (i = 0; i < ke->n && !err; i++)
		if (ke->v[i]->wanted)
			err = svc_start(ke->v[i]);
	return err;
}

void kubeeps_deliver(struct kubeeps *ke, kubeeps_fn fn, void *arg)
{
	struct canary_backend b[CANARY_MAX_BACKENDS];
	size_t i;

	for (i = 0; i < ke->n; i++) {
		struct kube_svc *s = ke->v[i];
		int n = -1;

		pthread_mutex_lock(&ke->lock);
		if (s->given != s->gen) {
			s->given = s->gen;
			n = s->n;
			memcpy(b, s->ready, sizeof(b));
		}
		pthread_mutex_unlock(&ke->lock);
		if (n > 0)
			fn(s->ns, s->name, b, n, arg);
	}
}

bool kubeeps_reload_wanted(struct kubeeps *ke)
{
	bool r;

	pthread_mutex_lock(&ke->lock);
	r = ke->reload_wanted;
	ke->reload_wanted = false;
	pthread_mutex_unlock(&ke->lock);
	return r;
}
