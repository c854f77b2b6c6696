// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kubespecs.h"
#include "log.h"

#define API_VERSION "canaryd.io/v1alpha1"
/* Retries of a failed list or watch: soon, and never more than every 5 s. */
#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS	5000
/* A list or a watch step that hangs must not hold a stop up for long. */
#define REQUEST_MS 2000
/* Between two runs of the list+watch loop, when it ended on an error. */
#define RETRY_MS 1000
/* Same room as a file's "file:line:column" origin. */
#define ORIGIN_LEN 256

/* ---- one object into a rollout_cfg ---- */

static const char *meta_string(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static void object_label(const json_t *obj, char *buf, size_t len)
{
	const char *name = meta_string(obj, "name"), *ns = meta_string(obj, "namespace");

	snprintf(buf, len, "Rollout %s%s%s", ns ? ns : "", ns ? "/" : "",
		 name ? name : "(no metadata.name)");
}

/*
 * The document a file would hold: apiVersion, kind, metadata.name and
 * namespace, and the spec as it is. Indented, so that a message's line
 * and column point into the spec as `kubectl get -o json` prints it. Reals
 * with 15 significant digits: a weight of 12.34 stays "12.34" (17 would
 * write 12.339999999999999 and the two-decimals rule would refuse it).
 */
static char *object_document(const json_t *obj)
{
	const char *name = meta_string(obj, "name"), *ns = meta_string(obj, "namespace");
	json_t *doc =
		json_pack("{s:s, s:s, s:{s:s}, s:O}", "apiVersion", API_VERSION, "kind", "Rollout",
			  "metadata", "name", name, "spec", json_object_get(obj, "spec"));
	char *text = NULL;

	if (doc && ns)
		json_object_set_new(json_object_get(doc, "metadata"), "namespace", json_string(ns));
	if (doc)
		text = json_dumps(doc,
				  JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	json_decref(doc);
	return text;
}

int kubespecs_from_object(const json_t *obj, struct rollout_cfg *out, char *err, size_t errlen)
{
	char origin[ORIGIN_LEN];
	struct config cfg;
	char *text;
	int rc;

	object_label(obj, origin, sizeof(origin));
	if (!meta_string(obj, "name")) {
		snprintf(err, errlen, "%s: metadata.name: missing", origin);
		return -1;
	}
	if (!json_is_object(json_object_get(obj, "spec"))) {
		snprintf(err, errlen, "%s: spec: missing or not an object", origin);
		return -1;
	}
	text = object_document(obj);
	if (!text) {
		snprintf(err, errlen, "%s: out of memory", origin);
		return -1;
	}
	rc = config_parse_buffer(origin, text, strlen(text), &cfg, err, errlen);
	free(text);
	if (rc)
		return -1;
	*out = cfg.rollouts[0]; /* one document, one rollout */
	config_free(&cfg);
	out->generation =
		json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
	return 0;
}

/* ---- the set ---- */

static void entry_free(struct kr_entry *e)
{
	free(e->seen);
	memset(e, 0, sizeof(*e));
}

void kr_set_free(struct kr_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		entry_free(&set->v[i]);
	free(set->v);
	json_decref(set->events);
	memset(set, 0, sizeof(*set));
}

static struct kr_entry *find_entry(struct kr_set *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (!strcmp(set->v[i].name, name))
			return &set->v[i];
	return NULL;
}

static struct kr_entry *add_entry(struct kr_set *set, const char *name)
{
	struct kr_entry *grown = realloc(set->v, (set->n + 1) * sizeof(*set->v));

	if (!grown)
		return NULL;
	set->v = grown;
	memset(&grown[set->n], 0, sizeof(*grown));
	snprintf(grown[set->n].name, sizeof(grown[set->n].name), "%s", name);
	return &grown[set->n++];
}

/* Objects the server no longer has leave the set. Returns whether an accepted one went. */
static bool drop_gone(struct kr_set *set, const struct kube_objects *objs)
{
	bool changed = false;
	size_t i = 0;

	while (i < set->n) {
		if (json_object_get(objs->by_name, set->v[i].name)) {
			i++;
			continue;
		}
		if (set->v[i].good)
			log_event(CLOG_INFO, "rollout deleted from the API", "rollout",
				  set->v[i].name);
		changed |= set->v[i].good;
		entry_free(&set->v[i]);
		set->v[i] = set->v[--set->n];
	}
	return changed;
}

/* What decides whether an object changed: its namespace and spec, not its status. */
static char *spec_text(const json_t *obj)
{
	json_t *key = json_pack("{s:O?, s:O?}", "namespace",
				json_object_get(json_object_get(obj, "metadata"), "namespace"),
				"spec", json_object_get(obj, "spec"));
	char *text = key ? json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(key);
	return text;
}

/* A service key is the data path's: two Rollouts cannot share one (as two files cannot). */
static int check_service_free(const struct kr_set *set, const struct kr_entry *self,
			      const struct rollout_cfg *r, const char *origin, char *err,
			      size_t errlen)
{
	const struct canary_service_key *k = &r->service.key;
	size_t i;

	for (i = 0; i < set->n; i++) {
		const struct canary_service_key *o = &set->v[i].cfg.service.key;

		if (&set->v[i] == self || !set->v[i].good)
			continue;
		if (o->vip == k->vip && o->port == k->port && o->proto == k->proto) {
			/* Truncation only shortens a message. */
			if (snprintf(err, errlen,
				     "%s: spec.service: already the service of Rollout \"%s\"",
				     origin, set->v[i].name) < 0)
				err[0] = '\0';
			return -1;
		}
	}
	return 0;
}

json_t *kubespecs_rejection_event(const json_t *obj, const char *why, bool kept, long now_s)
{
	const char *name = meta_string(obj, "name"), *ns = meta_string(obj, "namespace"),
		   *rv = meta_string(obj, "resourceVersion"), *uid = meta_string(obj, "uid");
	char ev_name[KUBE_NAME_LEN + KUBE_RV_LEN + 16], msg[CONFIG_ERR_LEN + 96], t[32];
	time_t sec = (time_t)now_s;
	struct tm tm;

	if (!name || !ns || !rv)
		return NULL;
	snprintf(ev_name, sizeof(ev_name), "%s.rejected.%s", name, rv);
	snprintf(msg, sizeof(msg), "%s: %s",
		 kept ? "spec not applied, the last accepted spec keeps running" :
			"spec not applied, the rollout does not run",
		 why);
	gmtime_r(&sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:s,"
			 " s:s, s:{s:s}, s:s, s:s, s:i}",
			 "apiVersion", "v1", "kind", "Event", "metadata", "name", ev_name,
			 "namespace", ns, "involvedObject", "apiVersion", API_VERSION, "kind",
			 "Rollout", "name", name, "namespace", ns, "uid", uid ? uid : "",
			 "resourceVersion", rv, "reason", "SpecRejected", "type", "Warning",
			 "message", msg, "source", "component", "canaryd", "firstTimestamp", t,
			 "lastTimestamp", t, "count", 1);
}

/* Queue the Event of a refusal; losing it (no memory) loses only a view of the log line. */
static void queue_rejection(struct kr_set *set, const json_t *obj, const char *why, bool kept)
{
	json_t *ev = kubespecs_rejection_event(obj, why, kept, (long)time(NULL));

	if (!ev)
		return;
	if (!set->events)
		set->events = json_array();
	if (set->events)
		json_array_append(set->events, ev);
	json_decref(ev);
}

/* One object whose spec is new to the set. Returns whether the accepted set changed. */
static bool take_object(struct kr_set *set, struct kr_entry *e, const json_t *obj)
{
	char err[CONFIG_ERR_LEN], origin[ORIGIN_LEN];
	struct rollout_cfg cfg;

	object_label(obj, origin, sizeof(origin));
	if (kubespecs_from_object(obj, &cfg, err, sizeof(err)) ||
	    check_service_free(set, e, &cfg, origin, err, sizeof(err))) {
		set->rejected++;
		queue_rejection(set, obj, err, e->good);
		log_event(CLOG_ERROR,
			  e->good ? "rollout rejected: keeping its last accepted spec" :
				    "rollout rejected: not run",
			  "rollout", e->name, "resource_version",
			  meta_string(obj, "resourceVersion"), "error", err);
		return false;
	}
	log_event(CLOG_INFO, e->good ? "rollout changed in the API" : "rollout added in the API",
		  "rollout", e->name, "resource_version", meta_string(obj, "resourceVersion"));
	e->cfg = cfg;
	e->good = true;
	return true;
}

int kr_set_update(struct kr_set *set, const struct kube_objects *objs)
{
	bool changed = drop_gone(set, objs);
	const char *name;
	json_t *obj;

	json_object_foreach(objs->by_name, name, obj)
	{
		struct kr_entry *e = find_entry(set, name);
		char *text = spec_text(obj);

		if (!text || (!e && !(e = add_entry(set, name)))) {
			free(text);
			return -ENOMEM;
		}
		if (e->seen && !strcmp(e->seen, text)) {
			free(text); /* the status or the metadata moved: nothing to do */
			continue;
		}
		free(e->seen);
		e->seen = text;
		changed |= take_object(set, e, obj);
	}
	if (changed)
		set->generation++;
	return changed;
}

static int cmp_rollout_names(const void *a, const void *b)
{
	return strcmp(((const struct rollout_cfg *)a)->name, ((const struct rollout_cfg *)b)->name);
}

int kr_set_config(const struct kr_set *set, struct config *out)
{
	size_t i, n = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < set->n; i++)
		n += set->v[i].good;
	if (!n)
		return 0;
	out->rollouts = calloc(n, sizeof(*out->rollouts));
	if (!out->rollouts)
		return -ENOMEM;
	for (i = 0; i < set->n; i++)
		if (set->v[i].good)
			out->rollouts[out->n_rollouts++] = set->v[i].cfg;
	qsort(out->rollouts, out->n_rollouts, sizeof(*out->rollouts), cmp_rollout_names);
	return 0;
}

/* ---- the watcher ---- */

struct kubespecs {
	struct kube_conn conn;
	struct kube_client events; /* its own connection: the watch's is streaming */
	bool events_ready;
	long last_event_status; /* so that a lasting refusal is logged once */
	char ns[CONFIG_KUBE_NAME_LEN];
	pthread_t thread;
	bool running;
	atomic_bool stop;
	atomic_bool changed;  /* the accepted set moved since the last kubespecs_config */
	pthread_mutex_t lock; /* guards set and listed */
	struct kr_set set;
	bool listed;  /* a first list succeeded */
	int last_err; /* of the API check, so that a lasting failure is logged once */
};

int kubespecs_create(const struct kube_conn *conn, const char *ns, struct kubespecs **out)
{
	struct kubespecs *kr;

	if (!ns || !*ns || strlen(ns) >= sizeof(kr->ns))
		return -EINVAL;
	kr = calloc(1, sizeof(*kr));
	if (!kr)
		return -ENOMEM;
	if (pthread_mutex_init(&kr->lock, NULL)) {
		free(kr);
		return -ENOMEM;
	}
	kr->conn = *conn;
	snprintf(kr->ns, sizeof(kr->ns), "%s", ns);
	*out = kr;
	return 0;
}

void kubespecs_destroy(struct kubespecs *kr)
{
	if (!kr)
		return;
	atomic_store(&kr->stop, true);
	if (kr->running)
		pthread_join(kr->thread, NULL);
	if (kr->events_ready)
		kube_client_close(&kr->events);
	kr_set_free(&kr->set);
	pthread_mutex_destroy(&kr->lock);
	free(kr);
}

const char *kubespecs_namespace(const struct kubespecs *kr)
{
	return kr->ns;
}

static void rollouts_path(void *arg, const char *query, char *buf, size_t len)
{
	const struct kubespecs *kr = arg;

	snprintf(buf, len, KUBESPECS_API_PATH "/namespaces/%s/rollouts?%s", kr->ns, query);
}

/* Before every list: is the CRD served? Said once, not at every retry. */
static int check_api(struct kube_client *c, void *arg)
{
	struct kubespecs *kr = arg;
	json_t *resp = NULL;
	long status = 0;
	int err = kube_get(c, KUBESPECS_API_PATH, &status, &resp);

	json_decref(resp);
	if (!err && status != 200)
		err = status == 404 ? -ENOENT : -EIO;
	if (err && err != kr->last_err)
		log_event(CLOG_ERROR, "cannot list Rollouts: retrying", "namespace", kr->ns,
			  "error",
			  err == -ENOENT ? "rollouts.canaryd.io is not served (the CRD, "
					   "deploy/kubernetes/crd.yaml, is not applied)" :
					   strerror(-err));
	kr->last_err = err;
	return err == -ENOENT ? -EIO : err; /* a CRD applied later is taken then */
}

static int objects_add_page(void *state, const json_t *list, char *cont, size_t contlen)
{
	return kube_objects_add_page(state, list, cont, contlen);
}

static int objects_apply(void *state, const struct kube_event *ev)
{
	return kube_objects_apply(state, ev);
}

static void objects_replace(void *dst, void *src)
{
	kube_objects_replace(dst, src);
}

static void objects_free(void *state)
{
	kube_objects_free(state);
}

static const char *objects_rv(const void *state)
{
	return ((const struct kube_objects *)state)->rv;
}

static const struct kube_lw_ops objects_ops = {
	.state_size = sizeof(struct kube_objects),
	.add_page = objects_add_page,
	.apply = objects_apply,
	.replace = objects_replace,
	.free = objects_free,
	.rv = objects_rv,
};

/* POST one Event; 409 (another node created it first) is success. */
static void post_event(struct kubespecs *kr, const json_t *ev)
{
	char path[KUBE_URL_LEN];
	char *body = json_dumps(ev, JSON_COMPACT);
	json_t *resp = NULL;
	long status = 0;
	int err;

	if (!body)
		return;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", kr->ns);
	err = kube_request(&kr->events, "POST", path, "application/json", body, &status, &resp);
	free(body);
	if (err)
		status = -1; /* no answer */
	else if (status == 201 || status == 409)
		status = 0;
	if (status && status != kr->last_event_status) {
		char code[24];

		snprintf(code, sizeof(code), "%ld", status);
		log_event(CLOG_WARN, "cannot record the Event of a refused Rollout", "status", code,
			  "error",
			  err ? strerror(-err) :
				json_string_value(json_object_get(resp, "message")));
	}
	kr->last_event_status = status;
	json_decref(resp);
}

/* The Events queued by the last update, sent outside the lock (2 s each at most). */
static void send_events(struct kubespecs *kr, json_t *events)
{
	json_t *ev;
	size_t i;

	if (!kr->events_ready && kube_conn_client(&kr->conn, &kr->events) == 0) {
		kr->events.timeout_ms = REQUEST_MS;
		kr->events_ready = true;
	}
	json_array_foreach(events, i, ev) if (kr->events_ready) post_event(kr, ev);
}

static bool on_change(const void *state, void *arg)
{
	struct kubespecs *kr = arg;
	const struct kube_objects *objs = state;
	json_t *events;
	int rc;

	pthread_mutex_lock(&kr->lock);
	rc = kr_set_update(&kr->set, objs);
	if (rc > 0 || (rc == 0 && !kr->listed)) {
		if (!kr->listed) {
			char n[16];

			snprintf(n, sizeof(n), "%zu", kube_objects_count(objs));
			log_event(CLOG_INFO, "rollouts listed from the API", "namespace", kr->ns,
				  "objects", n, "rv", objs->rv);
		}
		kr->listed = true;
		atomic_store(&kr->changed, true);
	}
	events = kr->set.events;
	kr->set.events = NULL;
	pthread_mutex_unlock(&kr->lock);
	if (events)
		send_events(kr, events);
	json_decref(events);
	return rc >= 0;
}

static void nap_ms(long ms, const atomic_bool *stop)
{
	struct timespec ts = { .tv_nsec = 50 * 1000000L };

	for (; ms > 0 && !atomic_load(stop); ms -= 50)
		nanosleep(&ts, NULL);
}

static void *watch_thread(void *arg)
{
	struct kubespecs *kr = arg;
	struct kube_lw lw = {
		.ops = &objects_ops,
		.path = rollouts_path,
		.prepare = check_api,
		.fn = on_change,
		.arg = kr,
		.stop = &kr->stop,
		.backoff_base_ms = BACKOFF_BASE_MS,
		.backoff_max_ms = BACKOFF_MAX_MS,
	};
	struct kube_client c;

	while (!atomic_load(&kr->stop)) {
		int err = kube_conn_client(&kr->conn, &c);

		if (!err) {
			c.timeout_ms = REQUEST_MS;
			err = kube_list_watch(&c, &lw);
		}
		kube_client_close(&c);
		if (err && !atomic_load(&kr->stop))
			log_event(CLOG_ERROR, "rollout watch ended: retrying", "namespace", kr->ns,
				  "error", strerror(-err));
		nap_ms(RETRY_MS, &kr->stop);
	}
	return NULL;
}

int kubespecs_run(struct kubespecs *kr)
{
	int err;

	if (kr->running)
		return 0;
	err = pthread_create(&kr->thread, NULL, watch_thread, kr);
	if (err)
		return -err;
	kr->running = true;
	log_event(CLOG_INFO, "watching rollouts", "namespace", kr->ns, "server", kr->conn.server);
	return 0;
}

bool kubespecs_changed(struct kubespecs *kr)
{
	return atomic_load(&kr->changed);
}

int kubespecs_config(struct kubespecs *kr, struct config *out, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&kr->lock);
	atomic_store(&kr->changed, false);
	if (!kr->listed) {
		snprintf(err, errlen, "no list of the Rollouts in namespace \"%s\" yet", kr->ns);
		rc = -EAGAIN;
	} else {
		rc = kr_set_config(&kr->set, out);
		if (rc)
			snprintf(err, errlen, "out of memory");
	}
	pthread_mutex_unlock(&kr->lock);
	return rc;
}
