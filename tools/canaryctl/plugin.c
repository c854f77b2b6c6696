// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `kubectl canary VERB`: the Rollout objects of the API server, read and
 * written as the agents of --coordinator kube read and write them
 * (docs/kubernetes.md). abort is the status.abort merge patch the agents
 * honour from anyone; every other verb is judged by the fleet's own rule
 * on the shared state read (kuberollout.c) and written at the version read,
 * so that a Rollout changed meanwhile (409) is read and judged again.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube.h"
#include "kubeconfig.h"
#include "kubeexec.h"
#include "kuberollout.h"
#include "plugin.h"
#include "plugin_args.h"
#include "version.h"

#define ROLLOUTS_PATH "/apis/canaryd.io/v1alpha1/namespaces/%s/rollouts"
#define MERGE_PATCH   "application/merge-patch+json"
#define PATH_LEN      512
/* A verb whose write met a newer Rollout (409) is judged again, this often at most. */
#define VERB_TRIES 5
/* Exit status of status --watch when --timeout passes first (as canaryctl's --until-done). */
#define EXIT_TIMEOUT 3
/* One watch request lasts this long at most; then the Rollout is read again. */
#define WATCH_CHUNK_S 60
/* A watch that keeps failing (the server gone) ends status --watch after this many tries. */
#define WATCH_FAILURES 5

struct plugin {
	struct plugin_args a;
	struct kube_client cl;
	char ns[CONFIG_KUBE_NAME_LEN];
};

static atomic_bool interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	atomic_store(&interrupted, true);
}

bool plugin_invoked(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	return !strcmp(base ? base + 1 : argv0, PLUGIN_PROG);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kubectl canary [--kubeconfig FILE] [-n NAMESPACE] VERB [ARGS]\n"
		"       kubectl canary --version\n"
		"verbs (the Rollouts on the API server, as the kubeconfig's user):\n"
		"  get [NAME] [-o json]              NAME PHASE STEP WEIGHT AGE of the Rollouts\n"
		"  status NAME [-o json] [--watch [--timeout DURATION]]\n"
		"                                    the rollout's state; --watch follows it and\n"
		"                                    exits 0 Healthy, 1 Degraded, 3 at the timeout\n"
		"  promote NAME [--full]             next step (--full: straight to 100%%)\n"
		"  pause NAME | resume NAME          hold the steps / go on\n"
		"  abort NAME | retry NAME           weight 0 on every node / run it again\n"
		"  set-weight NAME PERCENT           pin the canary's weight (0..100, 0.01 steps)\n"
		"the kubeconfig: --kubeconfig, else $KUBECONFIG (its first file), else\n"
		"~/.kube/config; the namespace: -n, else the context's, else default\n");
}

/* --kubeconfig, else $KUBECONFIG's first file, else ~/.kube/config. */
static int kubeconfig_path(const struct plugin_args *a, char *buf, size_t len)
{
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
	int n;

	if (a->kubeconfig)
		n = snprintf(buf, len, "%s", a->kubeconfig);
	else if (env && *env)
		n = snprintf(buf, len, "%.*s", (int)strcspn(env, ":"), env);
	else if (home && *home)
		n = snprintf(buf, len, "%s/.kube/config", home);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int connect_api(struct plugin *p)
{
	char path[PATH_MAX], err[512];
	struct kube_conn conn;
	const char *ns;

	if (kubeconfig_path(&p->a, path, sizeof(path)))
		return fprintf(stderr, "kubectl canary: no kubeconfig: give --kubeconfig or set "
				       "KUBECONFIG or HOME\n"),
		       1;
	memset(&conn, 0, sizeof(conn));
	if (kubeconfig_load(path, &conn, err, sizeof(err)))
		return fprintf(stderr, "kubectl canary: kubeconfig %s\n", err), 1;
	if (kube_exec_credential(&conn, err, sizeof(err)))
		return fprintf(stderr, "kubectl canary: kubeconfig %s: %s\n", path, err), 1;
	ns = p->a.ns ? p->a.ns : conn.ns[0] ? conn.ns : "default";
	/* A DNS label: it goes into the request's path. */
	if (!*ns || strlen(ns) >= sizeof(p->ns) ||
	    strspn(ns, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(ns))
		return fprintf(stderr, "kubectl canary: not a namespace name: \"%s\"\n", ns), 2;
	snprintf(p->ns, sizeof(p->ns), "%s", ns);
	if (kube_conn_client(&conn, &p->cl))
		return fprintf(stderr, "kubectl canary: %s: bad server or out of memory\n", path),
		       1;
	return 0;
}

/* What went wrong, in words: the transport, or the API server's answer. */
static int report(const struct plugin *p, int err, long status, const json_t *resp)
{
	const char *msg = json_string_value(json_object_get(resp, "message"));
	const char *kind =
		json_string_value(json_object_get(json_object_get(resp, "details"), "kind"));

	if (err == -EACCES)
		fprintf(stderr, "kubectl canary: cannot read the kubeconfig's tokenFile %s\n",
			p->cl.token_file);
	else if (err)
		fprintf(stderr, "kubectl canary: cannot reach the API server %s: %s\n",
			p->cl.server, strerror(-err));
	else if (status == 404 && kind && !strcmp(kind, "rollouts"))
		fprintf(stderr, "kubectl canary: Rollout \"%s\" not found in namespace \"%s\"\n",
			p->a.name, p->ns);
	else if (status == 404)
		fprintf(stderr, "kubectl canary: the API server serves no rollouts.canaryd.io (is "
				"deploy/kubernetes/crd.yaml applied?)\n");
	else if (status == 401)
		fprintf(stderr, "kubectl canary: unauthorized: the API server refused the "
				"kubeconfig's token\n");
	else if (status == 403)
		fprintf(stderr, "kubectl canary: forbidden: %s\n", msg ? msg : "(no message)");
	else
		fprintf(stderr, "kubectl canary: the API server answered %ld: %s\n", status,
			msg ? msg : "(no message)");
	return 1;
}

/* GET one Rollout (name) or the list (name NULL). 0 with *obj, or an exit status. */
static int get(struct plugin *p, const char *name, json_t **obj)
{
	char path[PATH_LEN];
	long status = 0;
	int n, err;

	*obj = NULL;
	n = snprintf(path, sizeof(path), ROLLOUTS_PATH "%s%s", p->ns, name ? "/" : "",
		     name ? name : "");
	if (n < 0 || (size_t)n >= sizeof(path))
		return fprintf(stderr, "kubectl canary: name too long\n"), 2;
	err = kube_get(&p->cl, path, &status, obj);
	if (!err && status == 200)
		return 0;
	report(p, err, status, *obj);
	json_decref(*obj);
	*obj = NULL;
	return 1;
}

static void print_json(const json_t *o)
{
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (text)
		printf("%s\n", text);
	free(text);
}

static void print_table(const struct plugin *p, const json_t *obj)
{
	const json_t *items = json_object_get(obj, "items");
	size_t i;

	if (!p->a.name && !json_array_size(items)) {
		fprintf(stderr, "No Rollouts found in namespace %s.\n", p->ns);
		return;
	}
	kuberollout_table_header(stdout);
	if (p->a.name)
		kuberollout_table_row(stdout, obj, time(NULL));
	for (i = 0; !p->a.name && i < json_array_size(items); i++)
		kuberollout_table_row(stdout, json_array_get(items, i), time(NULL));
}

static int cmd_get(struct plugin *p)
{
	json_t *obj;
	int rc = get(p, p->a.name, &obj);

	if (rc)
		return rc;
	if (p->a.json)
		print_json(obj);
	else
		print_table(p, obj);
	json_decref(obj);
	return 0;
}

/* An abort: the merge patch of status.abort, no version (any writer, as the agents' aborts). */
static int abort_rollout(struct plugin *p, const json_t *obj, char *path, json_t **resp,
			 long *status)
{
	struct fleet_shared s;
	int rc = kuberollout_shared(obj, &s);

	if (rc == -ENOENT)
		return fprintf(stderr,
			       "kubectl canary: abort %s: no agent has written status.shared yet "
			       "(is canaryd --coordinator kube running this rollout?)\n",
			       p->a.name),
		       1;
	if (rc || (s.st.phase != PHASE_PROGRESSING && s.st.phase != PHASE_PAUSED))
		return fprintf(stderr,
			       "kubectl canary: abort %s: nothing to abort (rollout is %s)\n",
			       p->a.name, rc ? "unreadable" : rollout_phase_name(s.st.phase)),
		       1;
	rc = kube_request(&p->cl, "PATCH", path, MERGE_PATCH, KUBEROLLOUT_ABORT_PATCH, status,
			  resp);
	return rc ? report(p, rc, 0, NULL) : 0;
}

/* Any other verb: judged on the Rollout as read, written at the version read. */
static int write_judged(struct plugin *p, const json_t *obj, enum rollout_verb verb,
			const char *path, json_t **resp, long *status)
{
	char err[512], *patch = NULL;
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	rc = kuberollout_verb_patch(obj, verb, p->a.weight_bp,
				    (__s64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &patch, err,
				    sizeof(err));
	if (rc) {
		fprintf(stderr, "kubectl canary: %s %s: %s\n", plugin_verb_name(p->a.verb),
			p->a.name, err);
		return 1;
	}
	rc = kube_request(&p->cl, "PATCH", path, MERGE_PATCH, patch, status, resp);
	free(patch);
	return rc ? report(p, rc, 0, NULL) : 0;
}

/*
 * The write as an Event on the Rollout, as the agents record theirs, for
 * `kubectl describe`. The state in .status is the record: a failure
 * (RBAC without events create) is a warning, not the verb's failure.
 */
static void record_event(struct plugin *p, const json_t *written, bool abort)
{
	struct timespec ts;
	char path[PATH_LEN], *text;
	json_t *ev, *resp = NULL;
	long status = 0;
	int err;

	clock_gettime(CLOCK_REALTIME, &ts);
	ev = kuberollout_event(written, abort, (__s64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (!text)
		return;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", p->ns);
	err = kube_request(&p->cl, "POST", path, "application/json", text, &status, &resp);
	free(text);
	if (err || status != 201)
		fprintf(stderr,
			"kubectl canary: warning: the Event of this %s was not recorded (%s)\n",
			plugin_verb_name(p->a.verb),
			err ? strerror(-err) :
			json_string_value(json_object_get(resp, "message")) ?
			      json_string_value(json_object_get(resp, "message")) :
			      "no message");
	json_decref(resp);
}

/* One try of a verb: read, judge, write. 0, 1 (an error), or -EAGAIN (409: judge again). */
static int verb_once(struct plugin *p, enum rollout_verb verb)
{
	char path[PATH_LEN];
	json_t *obj, *resp = NULL;
	long status = 0;
	int rc = get(p, p->a.name, &obj);

	if (rc)
		return rc;
	snprintf(path, sizeof(path), ROLLOUTS_PATH "/%s/status", p->ns, p->a.name);
	if (verb == VERB_ABORT)
		rc = abort_rollout(p, obj, path, &resp, &status);
	else
		rc = write_judged(p, obj, verb, path, &resp, &status);
	if (!rc && status == 409) {
		rc = -EAGAIN;
	} else if (!rc && status != 200) {
		rc = report(p, 0, status, resp);
	} else if (!rc) {
		printf("%s: ", plugin_verb_name(p->a.verb));
		kuberollout_status_line(stdout, resp);
		record_event(p, resp, verb == VERB_ABORT);
	}
	json_decref(resp);
	json_decref(obj);
	return rc;
}

static int cmd_verb(struct plugin *p)
{
	int i, rc = -EAGAIN;

	for (i = 0; i < VERB_TRIES && rc == -EAGAIN; i++)
		rc = verb_once(p, plugin_rollout_verb(&p->a));
	if (rc == -EAGAIN)
		return fprintf(stderr,
			       "kubectl canary: %s %s: the Rollout changed under every one of %d "
			       "tries (409 Conflict); try again\n",
			       plugin_verb_name(p->a.verb), p->a.name, VERB_TRIES),
		       1;
	return rc;
}

/* ---- status [--watch] ---- */

struct watch_ctx {
	struct plugin *p;
	char last[512]; /* the line last printed: print changes only */
	char rv[KUBE_RV_LEN];
	int done; /* -1: go on; else the exit status */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Print the rollout if it changed; done when it is Healthy or Degraded. */
static void show(struct watch_ctx *w, const json_t *obj)
{
	const char *rv = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	char line[sizeof(w->last)];
	FILE *f = fmemopen(line, sizeof(line), "w");
	enum kuberollout_outcome o = kuberollout_outcome(obj);

	if (rv)
		snprintf(w->rv, sizeof(w->rv), "%s", rv);
	line[0] = '\0';
	if (f) {
		kuberollout_status_line(f, obj);
		fclose(f);
	}
	if (strcmp(line, w->last) != 0) {
		if (w->p->a.json) {
			char *t = json_dumps(json_object_get(obj, "status"), JSON_COMPACT);

			printf("%s\n", t ? t : "{}");
			free(t);
		} else {
			fputs(line, stdout);
		}
		fflush(stdout);
		snprintf(w->last, sizeof(w->last), "%s", line);
	}
	if (o != KUBEROLLOUT_RUNNING)
		w->done = o == KUBEROLLOUT_HEALTHY ? 0 : 1;
}

static bool watch_line(void *arg, const char *line, size_t len)
{
	struct watch_ctx *w = arg;
	struct kube_event ev;

	if (kube_event_parse(line, len, &ev))
		return true;
	if (ev.type == KUBE_EV_ADDED || ev.type == KUBE_EV_MODIFIED) {
		show(w, ev.object);
	} else if (ev.type == KUBE_EV_DELETED) {
		fprintf(stderr, "kubectl canary: Rollout \"%s\" was deleted\n", w->p->a.name);
		w->done = 1;
	} else if (ev.type == KUBE_EV_GONE || ev.type == KUBE_EV_ERROR) {
		w->rv[0] = '\0'; /* read it again */
	}
	kube_event_free(&ev);
	return w->done < 0 && w->rv[0];
}

/* Read the Rollout, then watch it from that version; again until done or the deadline. */
static int watch_status(struct plugin *p)
{
	struct watch_ctx w = { .p = p, .done = -1 };
	long long deadline = p->a.timeout_ms ? now_ms() + p->a.timeout_ms : 0;
	char path[PATH_LEN];
	int failures = 0;

	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
	while (w.done < 0 && !atomic_load(&interrupted)) {
		long long left = deadline ? deadline - now_ms() : WATCH_CHUNK_S * 1000LL;
		json_t *obj;
		int rc;

		if (left <= 0) {
			fprintf(stderr,
				"kubectl canary: %s: timed out after %lld ms, still running\n",
				p->a.name, p->a.timeout_ms);
			return EXIT_TIMEOUT;
		}
		if (!w.rv[0]) {
			if (get(p, p->a.name, &obj))
				return 1;
			show(&w, obj);
			json_decref(obj);
			continue;
		}
		snprintf(path, sizeof(path),
			 ROLLOUTS_PATH
			 "?fieldSelector=metadata.name%%3D%s&watch=1&resourceVersion=%s"
			 "&timeoutSeconds=%lld",
			 p->ns, p->a.name, w.rv,
			 left / 1000 + 1 < WATCH_CHUNK_S ? left / 1000 + 1 : WATCH_CHUNK_S);
		rc = kube_stream(&p->cl, path, WATCH_CHUNK_S, watch_line, &w, &interrupted);
		if (rc < 0 && rc != -ESTALE && ++failures >= WATCH_FAILURES)
			return report(p, rc, 0, NULL);
		if (rc == -ESTALE || rc < 0)
			w.rv[0] = '\0';
		if (rc >= 0)
			failures = 0;
	}
	return w.done < 0 ? 130 : w.done;
}

static int cmd_status(struct plugin *p)
{
	json_t *obj;
	int rc;

	if (p->a.watch)
		return watch_status(p);
	rc = get(p, p->a.name, &obj);
	if (rc)
		return rc;
	if (p->a.json)
		print_json(json_object_get(obj, "status"));
	else
		kuberollout_status_line(stdout, obj);
	json_decref(obj);
	return 0;
}

int plugin_main(int argc, char **argv)
{
	struct plugin p = { 0 };
	char err[256];
	int rc;

	if (plugin_parse_args(argc, argv, &p.a, err, sizeof(err))) {
		fprintf(stderr, "kubectl canary: %s\n", err);
		usage(stderr);
		return 2;
	}
	if (p.a.help)
		return usage(stdout), 0;
	if (p.a.version)
		return printf("kubectl-canary %s\n", CANARY_VERSION), 0;
	rc = connect_api(&p);
	if (rc)
		return rc;
	if (p.a.verb == PLUGIN_GET)
		rc = cmd_get(&p);
	else if (p.a.verb == PLUGIN_STATUS)
		rc = cmd_status(&p);
	else
		rc = cmd_verb(&p);
	kube_client_close(&p.cl);
	return rc;
}
