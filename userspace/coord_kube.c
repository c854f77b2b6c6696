// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The coordinator on the Kubernetes API; the mapping is in coord_kube.h and
 * docs/kubernetes.md. There is no session object: a node's session is the
 * set of Leases it renews. Kubernetes has no transaction over two objects,
 * so a fenced write is two requests: read the leader Lease (this tenure,
 * not expired), then patch the status with its resourceVersion as the
 * precondition. A leader that stalls between the two could write after its
 * Lease expired; fleet.c stops proposing FLEET_LEASE_MARGIN_MS before its
 * own renewal deadline, and the others take over only after the whole
 * duration, which bounds that window as client-go's leader election does.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coord_kube.h"
#include "log.h"
#include "rollout.h"

#define PATH_LEN     (KUBE_NAME_LEN * 3 + 256)
#define LEASE_NAME   (CANARY_NAME_LEN + COORD_NODE_LEN + 32)
#define MERGE_PATCH  "application/merge-patch+json"
#define JSON_TYPE    "application/json"
#define LEASES_API   "/apis/coordination.k8s.io/v1/namespaces/"
#define ROLLOUTS_API "/apis/canaryd.io/v1alpha1/namespaces/"
#define OUR_LEASES   "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dcanaryd"

/*
 * Events waiting to be posted, by a thread of their own with its own
 * connection: a slow API server delays the next Event, never a write of
 * the state (an abort behind an Event could wait a request's timeout).
 */
#define EVENT_QUEUE 16

struct event_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool stop;
	bool failed; /* logged; quiet until an Event is recorded again */
	char *items[EVENT_QUEUE];
	size_t head, n;
	struct kube_client cl;
	char path[PATH_LEN];
};

/* A Lease this node keeps renewing. */
struct held {
	char rollout[CANARY_NAME_LEN];
	bool node;    /* evidence published: renew it */
	__s64 rv;     /* leader: its resourceVersion as last written; 0: not held */
	__s64 tenure; /* leader: the fence */
	__s64 acquire_us;
	long transitions;
};

struct kube_be {
	struct kube_client cl;
	struct kube_client cl2; /* the watch's second stream */
	char ns[KUBE_NAME_LEN];
	char node[COORD_NODE_LEN];
	long lease_s;
	bool session;
	__s64 renewed_us;
	long last_refused;	    /* the status last logged by refused() */
	struct event_queue *events; /* started with the first Event */
	char last_event[CANARY_NAME_LEN + ROLLOUT_MESSAGE_LEN + 96]; /* its key */
	struct held *held;
	size_t n_held;
};

/* ---- pure parts ---- */

__s64 coord_kube_rv(const char *rv)
{
	char *end;
	long long v;

	if (!rv || *rv < '0' || *rv > '9')
		return -1;
	errno = 0;
	v = strtoll(rv, &end, 10);
	return errno || *end || v <= 0 ? -1 : (__s64)v;
}

int coord_kube_time_parse(const char *s, __s64 *us)
{
	struct tm tm = { 0 };
	long frac = 0;
	int n = 0;
	const char *p;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -EINVAL;
	p = s + n;
	if (*p == '.') {
		int digits;

		for (digits = 0, p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 6)
				frac = frac * 10 + (*p - '0');
		for (; digits < 6; digits++)
			frac *= 10;
	}
	if (strcmp(p, "Z") != 0)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*us = (__s64)timegm(&tm) * 1000000 + frac;
	return 0;
}

void coord_kube_time_format(__s64 us, char *buf, size_t len)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	char sec[24];

	gmtime_r(&t, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06lldZ", sec, (long long)(us % 1000000));
}

int coord_kube_lease_name(char *buf, size_t len, const char *rollout, const char *node)
{
	int n = node ? snprintf(buf, len, "canaryd-%s.node.%s", rollout, node) :
		       snprintf(buf, len, "canaryd-%s.leader", rollout);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

bool coord_kube_node_name_ok(const char *name)
{
	const char *dot;

	if (!*name || strlen(name) >= COORD_NODE_LEN)
		return false;
	/* A DNS subdomain: labels joined by dots. */
	for (; (dot = strchr(name, '.')); name = dot + 1)
		if (!config_dns_label(name, (size_t)(dot - name)))
			return false;
	return config_dns_label(name, strlen(name));
}

static const json_t *path2(const json_t *o, const char *a, const char *b)
{
	return json_object_get(json_object_get(o, a), b);
}

static const char *str2(const json_t *o, const char *a, const char *b)
{
	return json_string_value(path2(o, a, b));
}

bool coord_kube_lease_expired(const json_t *lease, __s64 now_us)
{
	const char *holder = str2(lease, "spec", "holderIdentity");
	json_int_t dur = json_integer_value(path2(lease, "spec", "leaseDurationSeconds"));
	__s64 renew;

	if (!holder || !*holder || dur <= 0 ||
	    coord_kube_time_parse(str2(lease, "spec", "renewTime"), &renew))
		return true;
	return renew + (__s64)dur * 1000000 < now_us;
}

int coord_kube_lease_record(const json_t *lease, __s64 now_us, struct coord_record *rec)
{
	const json_t *meta = json_object_get(lease, "metadata");
	const char *rollout = str2(meta, "labels", COORD_KUBE_LABEL_ROLLOUT);
	const char *role = str2(meta, "labels", COORD_KUBE_LABEL_ROLE);
	const char *node = str2(meta, "labels", COORD_KUBE_LABEL_NODE);
	__s64 rv = coord_kube_rv(json_string_value(json_object_get(meta, "resourceVersion")));
	__s64 tenure = coord_kube_rv(str2(meta, "annotations", COORD_KUBE_ANN_TENURE));

	memset(rec, 0, sizeof(*rec));
	if (!rollout || !role || rv <= 0 || strlen(rollout) >= sizeof(rec->rollout))
		return -EINVAL;
	snprintf(rec->rollout, sizeof(rec->rollout), "%s", rollout);
	rec->mod_revision = rv;
	/* Until its first renewal a tenure's Lease is at the version that began it. */
	rec->create_revision = tenure > 0 ? tenure : rv;
	if (!strcmp(role, "leader")) {
		rec->kind = COORD_LEADER;
		rec->value = str2(lease, "spec", "holderIdentity");
	} else if (!strcmp(role, "node") && node && *node && strlen(node) < sizeof(rec->node)) {
		rec->kind = COORD_NODE;
		snprintf(rec->node, sizeof(rec->node), "%s", node);
		rec->value = str2(meta, "annotations", COORD_KUBE_ANN_EVIDENCE);
	} else {
		return -EINVAL;
	}
	if (coord_kube_lease_expired(lease, now_us))
		rec->value = NULL;
	return 0;
}

#define OPERATOR_ABORT_MSG "aborted: status.abort set on the Rollout through the Kubernetes API"

char *coord_kube_operator_abort(const char *shared)
{
	json_t *s = json_loads(shared, 0, NULL);
	const char *phase = json_string_value(json_object_get(s, "phase"));
	char *text = NULL;

	/* Only a running rollout has something to abort (Argo ignores it too). */
	if (phase && (!strcmp(phase, "Progressing") || !strcmp(phase, "Paused")) &&
	    !json_object_set_new(s, "phase", json_string("Degraded")) &&
	    !json_object_set_new(s, "weightBp", json_integer(0)) &&
	    !json_object_set_new(s, "userPaused", json_false()) &&
	    !json_object_set_new(
		    s, "aborts",
		    json_integer(json_integer_value(json_object_get(s, "aborts")) + 1)) &&
	    !json_object_set_new(s, "message", json_string(OPERATOR_ABORT_MSG)) &&
	    !json_object_set_new(s, "writer", json_string("kubernetes-api")))
		text = json_dumps(s, JSON_COMPACT);
	json_decref(s);
	return text;
}

int coord_kube_rollout_record(const json_t *rollout, struct coord_record *rec, char **owned)
{
	const char *name = str2(rollout, "metadata", "name");
	__s64 rv = coord_kube_rv(str2(rollout, "metadata", "resourceVersion"));

	*owned = NULL;
	memset(rec, 0, sizeof(*rec));
	if (!name || !*name || strlen(name) >= sizeof(rec->rollout) || rv <= 0)
		return -EINVAL;
	snprintf(rec->rollout, sizeof(rec->rollout), "%s", name);
	rec->kind = COORD_STATE;
	rec->mod_revision = rv;
	rec->create_revision = rv;
	rec->value = str2(rollout, "status", "shared");
	if (!rec->value)
		return -ENOENT;
	/*
	 * The agents write status.abort from the shared state's phase, so
	 * true beside a running phase is someone else's: an operator's abort,
	 * which needs no agent and no leader. Every node reads it alike.
	 */
	if (json_is_true(path2(rollout, "status", "abort")))
		*owned = coord_kube_operator_abort(rec->value);
	if (*owned)
		rec->value = *owned;
	return 0;
}

static int set_str(json_t *o, const char *k, const char *v)
{
	return json_object_set_new(o, k, json_string(v));
}

static json_t *lease_meta(const struct coord_kube_lease *l, const char *name)
{
	json_t *m = json_object(), *labels = json_object(), *ann = json_object();
	char rv[24];
	int err = !m || !labels || !ann;

	err = err || set_str(labels, COORD_KUBE_LABEL_MANAGED, "canaryd") ||
	      set_str(labels, COORD_KUBE_LABEL_ROLLOUT, l->rollout) ||
	      set_str(labels, COORD_KUBE_LABEL_ROLE, l->node ? "node" : "leader") ||
	      (l->node && set_str(labels, COORD_KUBE_LABEL_NODE, l->node));
	if (!err && l->tenure > 0) {
		snprintf(rv, sizeof(rv), "%lld", (long long)l->tenure);
		err = set_str(ann, COORD_KUBE_ANN_TENURE, rv);
	}
	if (!err && l->evidence)
		err = set_str(ann, COORD_KUBE_ANN_EVIDENCE, l->evidence);
	if (!err && l->rv > 0) {
		snprintf(rv, sizeof(rv), "%lld", (long long)l->rv);
		err = set_str(m, "resourceVersion", rv);
	}
	err = err || set_str(m, "name", name) || set_str(m, "namespace", l->ns);
	err = err || json_object_set(m, "labels", labels) || json_object_set(m, "annotations", ann);
	json_decref(labels);
	json_decref(ann);
	if (err) {
		json_decref(m);
		return NULL;
	}
	return m;
}

static json_t *lease_spec(const struct coord_kube_lease *l)
{
	json_t *s = json_object();
	int err = !s;

	if (!err && l->holder) {
		char t[48];

		coord_kube_time_format(l->acquire_us, t, sizeof(t));
		err = set_str(s, "holderIdentity", l->holder) || set_str(s, "acquireTime", t);
		coord_kube_time_format(l->renew_us, t, sizeof(t));
		err = err || set_str(s, "renewTime", t);
	}
	err = err || json_object_set_new(s, "leaseDurationSeconds", json_integer(l->duration_s)) ||
	      json_object_set_new(s, "leaseTransitions", json_integer(l->transitions));
	if (err) {
		json_decref(s);
		return NULL;
	}
	return s;
}

json_t *coord_kube_lease_json(const struct coord_kube_lease *l)
{
	char name[LEASE_NAME];
	json_t *o, *meta, *spec;

	if (coord_kube_lease_name(name, sizeof(name), l->rollout, l->node))
		return NULL;
	o = json_pack("{s:s, s:s}", "apiVersion", "coordination.k8s.io/v1", "kind", "Lease");
	meta = lease_meta(l, name);
	spec = lease_spec(l);
	if (!o || !meta || !spec || json_object_set(o, "metadata", meta) ||
	    json_object_set(o, "spec", spec)) {
		json_decref(o);
		o = NULL;
	}
	json_decref(meta);
	json_decref(spec);
	return o;
}

/*
 * A string of the shared state, for people. An empty one is a null: the
 * merge patch removes the old text (a 1.20 API server refuses "" there).
 */
static int copy_string(json_t *to, const json_t *from, const char *key)
{
	const char *v = json_string_value(json_object_get(from, key));

	if (!v)
		return 0;
	return *v ? set_str(to, key, v) : json_object_set_new(to, key, json_null());
}

/* The printer columns, from the shared JSON; a JSON the agent cannot read is kept as text only. */
static int status_columns(json_t *status, const char *shared)
{
	json_t *s = json_loads(shared, 0, NULL);
	const char *phase = json_string_value(json_object_get(s, "phase"));
	json_t *step = json_object_get(s, "step"), *bp = json_object_get(s, "weightBp");
	int err = 0;

	if (phase)
		err |= set_str(status, "phase", phase) ||
		       json_object_set_new(status, "abort",
					   json_boolean(!strcmp(phase, "Degraded")));
	if (json_is_integer(step))
		err |= json_object_set(status, "step", step);
	if (json_is_integer(bp))
		err |= json_object_set_new(status, "weight",
					   json_real((double)json_integer_value(bp) / 100.0));
	err |= copy_string(status, s, "message");
	/* Only a Healthy state names one: the last promoted stays until the next. */
	err |= copy_string(status, s, "promotedRevision");
	json_decref(s);
	return err;
}

char *coord_kube_status_patch(const char *shared, __s64 rv)
{
	json_t *p = json_object(), *status = json_object(), *meta = json_object();
	char *text = NULL;
	int err = !p || !status || !meta;

	err = err || set_str(status, "shared", shared) || status_columns(status, shared);
	if (!err && rv > 0) {
		char rvs[24];

		snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
		err = set_str(meta, "resourceVersion", rvs) || json_object_set(p, "metadata", meta);
	}
	err = err || json_object_set(p, "status", status);
	if (!err)
		text = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	json_decref(status);
	json_decref(meta);
	return text;
}

char *coord_kube_view_patch(const char *view)
{
	json_t *v = json_loads(view, 0, NULL), *p;
	char *text = NULL;

	if (!json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	p = json_pack("{s:o}", "status", v);
	if (p)
		text = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	return text;
}

/* Reason and type of the Event that records a write leading to phase. */
static const char *event_reason(enum coord_kube_write w, const char *phase, const char *msg,
				bool *warning)
{
	*warning = w == COORD_KUBE_WRITE_ABORT || !strcmp(phase, "Degraded");
	if (*warning)
		return "Aborted";
	if (!strcmp(phase, "Healthy") || !strncmp(msg, "promoted", 8))
		return "Promoted";
	if (!strcmp(phase, "Paused"))
		return "Paused";
	if (w == COORD_KUBE_WRITE_STEP)
		return "StepAdvanced";
	return !strncmp(msg, "retried", 7) ? "Retried" : "Resumed";
}

static json_t *event_meta(const struct coord_kube_event *e)
{
	char name[CANARY_NAME_LEN + 24];

	/* As client-go names them: the object's name and a unique suffix. */
	snprintf(name, sizeof(name), "%s.%llx", e->rollout, (unsigned long long)e->now_us * 1000);
	return json_pack("{s:s, s:s, s:{s:s}}", "name", name, "namespace", e->ns, "labels",
			 COORD_KUBE_LABEL_MANAGED, "canaryd");
}

/* The Event of a state st with a phase. */
static json_t *event_of(const struct coord_kube_event *e, const json_t *st, const char *phase,
			char *key, size_t len)
{
	const char *msg = json_string_value(json_object_get(st, "message"));
	char t[32], full[ROLLOUT_MESSAGE_LEN + 64];
	time_t sec = (time_t)(e->now_us / 1000000);
	struct tm tm;
	bool warning;
	const char *reason;

	msg = msg && *msg ? msg : phase;
	reason = event_reason(e->write, phase, msg, &warning);
	snprintf(full, sizeof(full), "step %lld, weight %g%%: %s",
		 (long long)json_integer_value(json_object_get(st, "step")),
		 (double)json_integer_value(json_object_get(st, "weightBp")) / 100, msg);
	snprintf(key, len, "%s/%s/%s", e->rollout, reason, full);
	gmtime_r(&sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:s, s:s, s:o, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s,"
			 " s:{s:s, s:s}, s:s, s:s, s:i}",
			 "apiVersion", "v1", "kind", "Event", "metadata", event_meta(e),
			 "involvedObject", "apiVersion", "canaryd.io/v1alpha1", "kind", "Rollout",
			 "name", e->rollout, "namespace", e->ns, "uid", e->uid ? e->uid : "",
			 "reason", reason, "type", warning ? "Warning" : "Normal", "message", full,
			 "source", "component", "canaryd", "host", e->node, "firstTimestamp", t,
			 "lastTimestamp", t, "count", 1);
}

json_t *coord_kube_event_json(const struct coord_kube_event *e, char *key, size_t len)
{
	json_t *st = json_loads(e->shared, 0, NULL), *o = NULL;
	const char *phase = json_string_value(json_object_get(st, "phase"));

	if (phase)
		o = event_of(e, st, phase, key, len);
	json_decref(st);
	return o;
}

/* ---- requests ---- */

static __s64 now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (__s64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * An answer other than the expected: say what the API server said (RBAC
 * forbidden, schema refused), once per distinct status in a row.
 */
static void refused(struct kube_be *b, const char *path, long status, const json_t *resp)
{
	if (status == b->last_refused)
		return;
	b->last_refused = status;
	kube_log_refused("kube coordinator: request refused", path, status, resp);
}

static int status_errno(long status)
{
	if (status == 404)
		return -ENOENT;
	if (status == 401 || status == 403)
		return -EACCES;
	return -EIO;
}

/* One request with a JSON body (or none); *resp is kept only if wanted. */
static int call(struct kube_be *b, const char *method, const char *path, const char *type,
		const char *body, long *status, json_t **resp)
{
	json_t *r = NULL;
	int err = kube_request(&b->cl, method, path, type, body, status, &r);

	/* 404 and 409 are answers the callers expect; anything else is worth a line. */
	if (!err && *status >= 400 && *status != 404 && *status != 409)
		refused(b, path, *status, r);
	else if (!err && *status < 300)
		b->last_refused = 0;
	if (resp)
		*resp = r;
	else
		json_decref(r);
	return err;
}

static int call_json(struct kube_be *b, const char *method, const char *path, json_t *body,
		     long *status, json_t **resp, const char *type)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int err;

	json_decref(body);
	if (!text)
		return -ENOMEM;
	err = call(b, method, path, type, text, status, resp);
	free(text);
	return err;
}

static void lease_path(const struct kube_be *b, char *path, const char *rollout, const char *node)
{
	char name[LEASE_NAME];

	coord_kube_lease_name(name, sizeof(name), rollout, node);
	snprintf(path, PATH_LEN, LEASES_API "%s/leases/%s", b->ns, name);
}

static struct held *held_of(struct kube_be *b, const char *rollout, bool add)
{
	struct held *grown;
	size_t i;

	for (i = 0; i < b->n_held; i++)
		if (!strcmp(b->held[i].rollout, rollout))
			return &b->held[i];
	if (!add)
		return NULL;
	grown = realloc(b->held, (b->n_held + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	b->held = grown;
	memset(&grown[b->n_held], 0, sizeof(*grown));
	snprintf(grown[b->n_held].rollout, CANARY_NAME_LEN, "%s", rollout);
	return &b->held[b->n_held++];
}

static __s64 resp_rv(const json_t *resp)
{
	return coord_kube_rv(str2(resp, "metadata", "resourceVersion"));
}

/* PUT the leader Lease as this node's (h->rv is the precondition); 409: *ok = false. */
static int put_leader(struct kube_be *b, struct held *h, __s64 tenure, bool *ok)
{
	struct coord_kube_lease l = { .ns = b->ns,
				      .rollout = h->rollout,
				      .holder = b->node,
				      .duration_s = b->lease_s,
				      .acquire_us = h->acquire_us,
				      .renew_us = now_us(),
				      .transitions = h->transitions,
				      .rv = h->rv,
				      .tenure = tenure };
	char path[PATH_LEN];
	json_t *resp;
	long status;
	int err;

	lease_path(b, path, h->rollout, NULL);
	err = call_json(b, "PUT", path, coord_kube_lease_json(&l), &status, &resp, JSON_TYPE);
	*ok = !err && status == 200 && resp_rv(resp) > 0;
	if (*ok)
		h->rv = resp_rv(resp);
	json_decref(resp);
	if (!err && !*ok && status != 409)
		err = status_errno(status);
	return err;
}

static int renew_node(struct kube_be *b, const char *rollout)
{
	char path[PATH_LEN], t[48], *body;
	json_t *p;
	long status;
	int err;

	coord_kube_time_format(now_us(), t, sizeof(t));
	p = json_pack("{s:{s:s, s:s, s:i}}", "spec", "holderIdentity", b->node, "renewTime", t,
		      "leaseDurationSeconds", (int)b->lease_s);
	body = p ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	if (!body)
		return -ENOMEM;
	lease_path(b, path, rollout, b->node);
	err = call(b, "PATCH", path, MERGE_PATCH, body, &status, NULL);
	free(body);
	return !err && status != 200 ? status_errno(status) : err;
}

/* ---- the session: the Leases this node renews ---- */

static int session_open(void *be, __s64 ttl_s, __s64 *granted)
{
	struct kube_be *b = be;
	char path[PATH_LEN];
	long status;
	int err;

	(void)ttl_s; /* a Lease's duration is ours to choose: see COORD_KUBE_LEASE_S */
	snprintf(path, sizeof(path), LEASES_API "%s/leases?limit=1&%s", b->ns, OUR_LEASES);
	err = call(b, "GET", path, NULL, NULL, &status, NULL);
	if (!err && status != 200)
		err = status_errno(status);
	if (err)
		return err == -ENOENT ? -EIO : err;
	b->session = true;
	b->renewed_us = now_us();
	*granted = b->lease_s;
	return 0;
}

static void forget_held(struct kube_be *b)
{
	free(b->held);
	b->held = NULL;
	b->n_held = 0;
	b->session = false;
}

static int session_renew(void *be)
{
	struct kube_be *b = be;
	__s64 now = now_us();
	size_t i;
	int err = 0;

	/* Renewed too late: another node may have taken what this one held. */
	if (!b->session || now - b->renewed_us > (__s64)b->lease_s * 1000000) {
		forget_held(b);
		return -ENOENT;
	}
	for (i = 0; i < b->n_held && !err; i++) {
		struct held *h = &b->held[i];
		bool ok = true;

		if (h->rv)
			err = put_leader(b, h, h->tenure, &ok);
		if (!err && !ok)
			h->rv = 0; /* taken over or released: the watch says by whom */
		if (!err && h->node)
			err = renew_node(b, h->rollout);
		if (err == -ENOENT) {
			h->node = false; /* deleted by someone: published again */
			err = 0;
		}
	}
	if (!err)
		b->renewed_us = now;
	return err;
}

static void release(struct kube_be *b, struct held *h)
{
	struct coord_kube_lease l = { .ns = b->ns,
				      .rollout = h->rollout,
				      .duration_s = b->lease_s,
				      .transitions = h->transitions,
				      .rv = h->rv };
	char path[PATH_LEN];
	long status;

	lease_path(b, path, h->rollout, NULL);
	call_json(b, "PUT", path, coord_kube_lease_json(&l), &status, NULL, JSON_TYPE);
	h->rv = 0;
}

/* A node's evidence Lease without holder: the others see it gone now, not at its expiry. */
static void release_node(struct kube_be *b, const char *rollout)
{
	static const char patch[] = "{\"spec\":{\"holderIdentity\":null}}";
	char path[PATH_LEN];
	long status;

	lease_path(b, path, rollout, b->node);
	call(b, "PATCH", path, MERGE_PATCH, patch, &status, NULL);
}

static void session_close(void *be)
{
	struct kube_be *b = be;
	size_t i;

	for (i = 0; i < b->n_held; i++) {
		if (b->held[i].rv)
			release(b, &b->held[i]);
		if (b->held[i].node)
			release_node(b, b->held[i].rollout);
	}
	forget_held(b);
}

/* ---- reading ---- */

static int list(struct kube_be *b, struct kube_client *cl, const char *path, json_t **items,
		__s64 *rev)
{
	json_t *resp = NULL;
	long status;
	int err = kube_get(cl, path, &status, &resp);

	if (!err && status != 200)
		err = status_errno(status) == -EACCES ? -EACCES : -EIO;
	*rev = err ? 0 : resp_rv(json_object_get(resp, "metadata") ? resp : NULL);
	if (!err && (*rev <= 0 || !json_is_array(json_object_get(resp, "items"))))
		err = -EPROTO;
	*items = err ? NULL : json_incref(json_object_get(resp, "items"));
	json_decref(resp);
	(void)b;
	return err;
}

static int read_all(void *be, coord_record_fn fn, void *arg, __s64 *rev)
{
	struct kube_be *b = be;
	char path[PATH_LEN];
	json_t *rollouts, *leases, *it;
	__s64 r1, r2, now = now_us();
	struct coord_record rec;
	size_t i;
	int err;

	snprintf(path, sizeof(path), ROLLOUTS_API "%s/rollouts", b->ns);
	err = list(b, &b->cl, path, &rollouts, &r1);
	if (err)
		return err;
	snprintf(path, sizeof(path), LEASES_API "%s/leases?%s", b->ns, OUR_LEASES);
	err = list(b, &b->cl, path, &leases, &r2);
	if (err) {
		json_decref(rollouts);
		return err;
	}
	json_array_foreach(rollouts, i, it)
	{
		char *owned;

		if (!coord_kube_rollout_record(it, &rec, &owned))
			fn(&rec, arg);
		free(owned);
	}
	/* An expired Lease comes as a deletion, the one etcd would have made. */
	json_array_foreach(leases, i, it) if (!coord_kube_lease_record(it, now, &rec))
		fn(&rec, arg);
	json_decref(rollouts);
	json_decref(leases);
	/* The older of the two lists: whatever either lacks was gone by then. */
	*rev = r1 < r2 ? r1 : r2;
	return 0;
}

/* ---- watching: the Rollouts and our Leases, one stream each ---- */

struct stream {
	struct kube_be *b;
	struct kube_client *cl;
	bool leases;
	__s64 from; /* resourceVersion to watch after */
	coord_record_fn fn;
	void *arg;
	atomic_bool *end; /* either stream ending ends both */
	__s64 rev;	  /* last seen */
	bool gone;	  /* 410 */
	int err;
	pthread_t thread;
};

static void deliver_event(struct stream *s, const struct kube_event *ev)
{
	struct coord_record rec;
	char *owned = NULL;
	int err = s->leases ? coord_kube_lease_record(ev->object, now_us(), &rec) :
			      coord_kube_rollout_record(ev->object, &rec, &owned);

	if (err == -EINVAL)
		return;
	/* A Rollout with no shared state (yet, or any more) is no state record. */
	if (ev->type == KUBE_EV_DELETED || err == -ENOENT)
		rec.value = NULL;
	s->fn(&rec, s->arg);
	free(owned);
}

static bool stream_line(void *arg, const char *line, size_t len)
{
	struct stream *s = arg;
	struct kube_event ev;
	__s64 rv;

	if (kube_event_parse(line, len, &ev))
		return true; /* not an event: skipped */
	if (ev.type == KUBE_EV_GONE || ev.type == KUBE_EV_ERROR) {
		s->gone = ev.type == KUBE_EV_GONE;
		s->err = s->gone ? 0 : -EIO;
		kube_event_free(&ev);
		return false;
	}
	if (ev.type != KUBE_EV_BOOKMARK)
		deliver_event(s, &ev);
	rv = resp_rv(ev.object);
	if (rv > s->rev)
		s->rev = rv;
	kube_event_free(&ev);
	return true;
}

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	char path[PATH_LEN];
	/* A short watch: a server that went silent is left within a minute. */
	long timeout_s = 30 + random() % 30;
	int err;

	snprintf(path, sizeof(path),
		 "%s%s/%s?%s%swatch=1&allowWatchBookmarks=true&timeoutSeconds=%ld"
		 "&resourceVersion=%lld",
		 s->leases ? LEASES_API : ROLLOUTS_API, s->b->ns, s->leases ? "leases" : "rollouts",
		 s->leases ? OUR_LEASES : "", s->leases ? "&" : "", timeout_s, (long long)s->from);
	err = kube_stream(s->cl, path, timeout_s, stream_line, s, s->end);
	if (err == -ESTALE)
		s->gone = true;
	else if (!s->err && err < 0)
		s->err = err;
	atomic_store(s->end, true);
	return NULL;
}

static int watch(void *be, __s64 from_rev, coord_record_fn fn, void *arg, const atomic_bool *stop,
		 bool *resync, __s64 *last_rev)
{
	struct kube_be *b = be;
	atomic_bool end;
	struct stream s[2];
	struct timespec nap = { 0, 50 * 1000000L };
	int i, started = 0;

	atomic_init(&end, false);
	for (i = 0; i < 2; i++) {
		s[i] = (struct stream){ .b = b,
					.cl = i ? &b->cl2 : &b->cl,
					.leases = i == 1,
					.from = from_rev - 1,
					.fn = fn,
					.arg = arg,
					.end = &end,
					.rev = from_rev - 1 };
		if (pthread_create(&s[i].thread, NULL, stream_main, &s[i]))
			break;
		started++;
	}
	if (started < 2)
		atomic_store(&end, true);
	while (!atomic_load(&end) && !atomic_load(stop))
		nanosleep(&nap, NULL);
	atomic_store(&end, true);
	for (i = 0; i < started; i++)
		pthread_join(s[i].thread, NULL);
	*resync = s[0].gone || (started == 2 && s[1].gone);
	/* Both streams are complete up to the older of the two. */
	*last_rev = started == 2 && s[1].rev < s[0].rev ? s[1].rev : s[0].rev;
	if (started < 2)
		return -ENOMEM;
	return s[0].err ? s[0].err : s[1].err;
}

/* ---- writing ---- */

static int publish_evidence(void *be, const char *rollout, const char *value)
{
	struct kube_be *b = be;
	struct held *h = held_of(b, rollout, true);
	__s64 now = now_us();
	struct coord_kube_lease l = { .ns = b->ns,
				      .rollout = rollout,
				      .node = b->node,
				      .holder = b->node,
				      .duration_s = b->lease_s,
				      .acquire_us = now,
				      .renew_us = now,
				      .evidence = value };
	char path[PATH_LEN];
	json_t *resp = NULL;
	long status;
	int err;

	if (!b->session)
		return -ENOENT;
	if (!h)
		return -ENOMEM;
	/* A merge patch of the whole Lease but its version: it is this node's alone. */
	lease_path(b, path, rollout, b->node);
	err = call_json(b, "PATCH", path, coord_kube_lease_json(&l), &status, &resp, MERGE_PATCH);
	if (!err && status == 404) {
		json_decref(resp);
		snprintf(path, sizeof(path), LEASES_API "%s/leases", b->ns);
		err = call_json(b, "POST", path, coord_kube_lease_json(&l), &status, &resp,
				JSON_TYPE);
	}
	if (!err && status != 200 && status != 201)
		err = status_errno(status);
	json_decref(resp);
	h->node = !err;
	return err;
}

/* The Lease is free: nobody holds it or its holder stopped renewing. */
static int take_over(struct kube_be *b, struct held *h, const json_t *lease, bool *won)
{
	long transitions = (long)json_integer_value(path2(lease, "spec", "leaseTransitions"));

	*won = false;
	if (!coord_kube_lease_expired(lease, now_us()))
		return 0;
	h->rv = resp_rv(lease);
	h->acquire_us = now_us();
	h->transitions = transitions + 1;
	return put_leader(b, h, 0, won);
}

static int campaign(void *be, const char *rollout, bool *won, __s64 *leader_rev)
{
	struct kube_be *b = be;
	struct held *h = held_of(b, rollout, true);
	__s64 now = now_us();
	struct coord_kube_lease l = { .ns = b->ns,
				      .rollout = rollout,
				      .holder = b->node,
				      .duration_s = b->lease_s,
				      .acquire_us = now,
				      .renew_us = now };
	char path[PATH_LEN];
	json_t *resp = NULL;
	long status;
	int err;

	*won = false;
	if (!b->session)
		return -ENOENT;
	if (!h)
		return -ENOMEM;
	snprintf(path, sizeof(path), LEASES_API "%s/leases", b->ns);
	err = call_json(b, "POST", path, coord_kube_lease_json(&l), &status, &resp, JSON_TYPE);
	if (!err && status == 201) {
		*won = resp_rv(resp) > 0;
		h->rv = resp_rv(resp);
		h->acquire_us = now;
		h->transitions = 0;
	} else if (!err && status == 409) {
		json_decref(resp);
		resp = NULL;
		lease_path(b, path, rollout, NULL);
		err = kube_get(&b->cl, path, &status, &resp);
		if (!err && status == 200)
			err = take_over(b, h, resp, won);
	} else if (!err) {
		err = status_errno(status);
	}
	json_decref(resp);
	if (*won)
		h->tenure = h->rv;
	else
		h->rv = 0;
	*leader_rev = *won ? h->tenure : 0;
	return err;
}

static int resign(void *be, const char *rollout, __s64 leader_rev)
{
	struct kube_be *b = be;
	struct held *h = held_of(b, rollout, false);

	if (h && h->rv && h->tenure == leader_rev)
		release(b, h);
	return 0;
}

/* A failure, once until an Event is recorded again; called under q->mu. */
static void event_failed(struct event_queue *q, const char *why, long status)
{
	char code[24];

	if (q->failed)
		return;
	q->failed = true;
	snprintf(code, sizeof(code), "%ld", status);
	log_event(CLOG_WARN, "kube coordinator: Event not recorded (dropped)", "error", why,
		  "status", code);
}

static void *event_main(void *arg)
{
	struct event_queue *q = arg;
	json_t *resp;
	char *text;
	long status;
	int err;

	pthread_mutex_lock(&q->mu);
	while (!q->stop) {
		if (!q->n) {
			pthread_cond_wait(&q->cv, &q->mu);
			continue;
		}
		text = q->items[q->head];
		q->head = (q->head + 1) % EVENT_QUEUE;
		q->n--;
		pthread_mutex_unlock(&q->mu);
		status = 0;
		err = kube_request(&q->cl, "POST", q->path, JSON_TYPE, text, &status, &resp);
		json_decref(resp);
		free(text);
		pthread_mutex_lock(&q->mu);
		if (!err && status == 201)
			q->failed = false;
		else
			event_failed(q, err ? strerror(-err) : "refused", status);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static void events_stop(struct event_queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	while (q->n) {
		free(q->items[q->head]);
		q->head = (q->head + 1) % EVENT_QUEUE;
		q->n--;
	}
	kube_client_close(&q->cl);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static struct event_queue *events_start(struct kube_be *b)
{
	struct event_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	if (kube_client_clone(&q->cl, &b->cl)) {
		free(q);
		return NULL;
	}
	snprintf(q->path, sizeof(q->path), "/api/v1/namespaces/%s/events", b->ns);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (pthread_create(&q->thread, NULL, event_main, q)) {
		kube_client_close(&q->cl);
		pthread_cond_destroy(&q->cv);
		pthread_mutex_destroy(&q->mu);
		free(q);
		return NULL;
	}
	return q;
}

/* Queue text (taken) for the Event thread; a full queue drops it. */
static void event_push(struct event_queue *q, char *text)
{
	pthread_mutex_lock(&q->mu);
	if (q->n == EVENT_QUEUE) {
		event_failed(q, "queue full", 0);
		free(text);
	} else {
		q->items[(q->head + q->n++) % EVENT_QUEUE] = text;
		pthread_cond_signal(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
}

/*
 * Record a write on the Rollout as an Event, for `kubectl describe`. Only
 * the node that wrote records it (the others only read the state), and a
 * write that changes neither reason, step, weight nor message (the leader
 * noting a pause began) records nothing new. One try, on the Event thread;
 * a failure is logged once until one succeeds again, and the Event dropped.
 */
static void record_event(struct kube_be *b, const char *rollout, const char *value,
			 enum coord_kube_write w, const json_t *rollout_obj)
{
	struct coord_kube_event e = { .ns = b->ns,
				      .rollout = rollout,
				      .uid = str2(rollout_obj, "metadata", "uid"),
				      .node = b->node,
				      .shared = value,
				      .write = w,
				      .now_us = now_us() };
	char key[sizeof(b->last_event)], *text;
	json_t *ev = coord_kube_event_json(&e, key, sizeof(key));
	bool fresh = ev && strcmp(key, b->last_event) != 0;

	if (fresh && !b->events)
		b->events = events_start(b);
	text = fresh && b->events ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (!text)
		return;
	snprintf(b->last_event, sizeof(b->last_event), "%s", key);
	event_push(b->events, text);
}

/* Merge-patch the status; base_rev > 0 is the precondition, 0: there must be no state. */
static int write_state(struct kube_be *b, const char *rollout, const char *value, __s64 base_rev,
		       enum coord_kube_write w, bool *ok)
{
	char path[PATH_LEN], *patch;
	json_t *resp = NULL;
	long status;
	int err = 0;

	*ok = false;
	snprintf(path, sizeof(path), ROLLOUTS_API "%s/rollouts/%s", b->ns, rollout);
	if (base_rev == 0) {
		err = kube_get(&b->cl, path, &status, &resp);
		if (!err && status != 200)
			err = status_errno(status);
		if (!err && str2(resp, "status", "shared"))
			err = 1; /* there is a state now: not the one judged */
		base_rev = err ? 0 : resp_rv(resp);
		json_decref(resp);
		if (err)
			return err > 0 ? 0 : err;
	}
	patch = coord_kube_status_patch(value, base_rev);
	if (!patch)
		return -ENOMEM;
	strncat(path, "/status", sizeof(path) - strlen(path) - 1);
	err = call(b, "PATCH", path, MERGE_PATCH, patch, &status, &resp);
	free(patch);
	*ok = !err && status == 200;
	if (*ok)
		record_event(b, rollout, value, w, resp);
	json_decref(resp);
	return !err && !*ok && status != 409 ? status_errno(status) : err;
}

/* This node's tenure is still the Lease's, and the Lease is not expired. */
static int check_fence(struct kube_be *b, const char *rollout, __s64 leader_rev, bool *ok)
{
	char path[PATH_LEN];
	struct coord_record rec;
	json_t *resp = NULL;
	long status;
	int err;

	lease_path(b, path, rollout, NULL);
	err = kube_get(&b->cl, path, &status, &resp);
	if (!err && status != 200 && status != 404)
		err = status_errno(status);
	*ok = !err && status == 200 && !coord_kube_lease_record(resp, now_us(), &rec) &&
	      rec.value && !strcmp(rec.value, b->node) && rec.create_revision == leader_rev;
	json_decref(resp);
	return err;
}

static int write_fenced(void *be, const char *rollout, const char *value, __s64 leader_rev,
			__s64 base_rev, bool *ok)
{
	struct kube_be *b = be;
	int err = check_fence(b, rollout, leader_rev, ok);

	if (err || !*ok)
		return err;
	return write_state(b, rollout, value, base_rev, COORD_KUBE_WRITE_STEP, ok);
}

static int write_if(void *be, const char *rollout, const char *value, __s64 base_rev, bool *ok)
{
	return write_state(be, rollout, value, base_rev, COORD_KUBE_WRITE_VERB, ok);
}

static int write_abort(void *be, const char *rollout, const char *value)
{
	struct kube_be *b = be;
	char path[PATH_LEN], *patch = coord_kube_status_patch(value, 0);
	json_t *resp = NULL;
	long status;
	int err;

	if (!patch)
		return -ENOMEM;
	snprintf(path, sizeof(path), ROLLOUTS_API "%s/rollouts/%s/status", b->ns, rollout);
	err = call(b, "PATCH", path, MERGE_PATCH, patch, &status, &resp);
	free(patch);
	if (!err && status == 200)
		record_event(b, rollout, value, COORD_KUBE_WRITE_ABORT, resp);
	json_decref(resp);
	return !err && status != 200 ? status_errno(status) : err;
}

/* Unconditional: the view is the leader's alone, and a precondition of no write. */
static int publish_view(void *be, const char *rollout, const char *value)
{
	struct kube_be *b = be;
	char path[PATH_LEN], *patch = coord_kube_view_patch(value);
	long status;
	int err;

	if (!patch)
		return -EINVAL;
	snprintf(path, sizeof(path), ROLLOUTS_API "%s/rollouts/%s/status", b->ns, rollout);
	err = call(b, "PATCH", path, MERGE_PATCH, patch, &status, NULL);
	free(patch);
	return !err && status != 200 ? status_errno(status) : err;
}

static void destroy(void *be)
{
	struct kube_be *b = be;

	if (!b)
		return;
	events_stop(b->events);
	kube_client_close(&b->cl);
	kube_client_close(&b->cl2);
	free(b->held);
	free(b);
}

static const struct coord_ops kube_ops = {
	.name = "kube",
	.session_open = session_open,
	.session_renew = session_renew,
	.session_close = session_close,
	.read_all = read_all,
	.watch = watch,
	.publish_evidence = publish_evidence,
	.campaign = campaign,
	.resign = resign,
	.write_fenced = write_fenced,
	.write_if = write_if,
	.write_abort = write_abort,
	.publish_view = publish_view,
	.destroy = destroy,
};

static struct kube_be *new_be(const struct kube_client *proto, const char *ns, const char *node,
			      long lease_s, int *err)
{
	struct kube_be *b = calloc(1, sizeof(*b));

	*err = b ? 0 : -ENOMEM;
	if (!*err && (strlen(ns) >= sizeof(b->ns) || strlen(node) >= sizeof(b->node)))
		*err = -ENAMETOOLONG;
	if (!*err)
		*err = kube_client_clone(&b->cl, proto);
	if (!*err)
		*err = kube_client_clone(&b->cl2, proto);
	if (*err) {
		destroy(b);
		return NULL;
	}
	snprintf(b->ns, sizeof(b->ns), "%s", ns);
	snprintf(b->node, sizeof(b->node), "%s", node);
	b->lease_s = lease_s > 0 ? lease_s : COORD_KUBE_LEASE_S;
	return b;
}

int coord_kube_open(struct coord *c, const struct kube_client *proto, const char *ns,
		    const char *node, long lease_s)
{
	int err;

	memset(c, 0, sizeof(*c));
	c->ops = &kube_ops;
	c->be = new_be(proto, ns, node, lease_s, &err);
	if (!err)
		c->be_watch = new_be(proto, ns, node, lease_s, &err);
	if (err)
		coord_close(c);
	return err;
}
