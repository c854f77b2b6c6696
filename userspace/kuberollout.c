// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A Rollout object as an operator outside the nodes acts on it (kuberollout.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_kube.h"
#include "kuberollout.h"

static const char *str2(const json_t *o, const char *a, const char *b)
{
	return json_string_value(json_object_get(json_object_get(o, a), b));
}

/*
 * Only what a config file holds: the object's metadata (uid, managedFields,
 * resourceVersion...) and status are the API server's, which the config
 * module would rightly refuse as unknown fields.
 */
static char *spec_document(const json_t *rollout)
{
	const char *ns = str2(rollout, "metadata", "namespace");
	json_t *meta = json_pack("{s:s?}", "name", str2(rollout, "metadata", "name"));
	json_t *doc = NULL;
	char *text = NULL;

	if (meta && ns)
		json_object_set_new(meta, "namespace", json_string(ns));
	if (meta)
		doc = json_pack("{s:O?, s:O?, s:O, s:O?}", "apiVersion",
				json_object_get(rollout, "apiVersion"), "kind",
				json_object_get(rollout, "kind"), "metadata", meta, "spec",
				json_object_get(rollout, "spec"));
	if (doc)
		text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	json_decref(meta);
	return text;
}

int kuberollout_config(const json_t *rollout, struct config *out, char *err, size_t errlen)
{
	const char *name = str2(rollout, "metadata", "name");
	char *text = spec_document(rollout), label[96];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!text) {
		snprintf(err, errlen, "the Rollout object has no metadata.name or no spec");
		return -1;
	}
	/* JSON is YAML: the agents' own parser and checks read the spec. */
	snprintf(label, sizeof(label), "Rollout %s (spec)", name ? name : "?");
	rc = config_parse_buffer(label, text, strlen(text), out, err, errlen);
	free(text);
	if (!rc && out->n_rollouts != 1) {
		config_free(out);
		snprintf(err, errlen, "the Rollout object holds %zu rollouts, not one",
			 out->n_rollouts);
		rc = -1;
	}
	return rc;
}

int kuberollout_shared(const json_t *rollout, struct fleet_shared *out)
{
	struct coord_record rec;
	char *owned = NULL;
	int rc = coord_kube_rollout_record(rollout, &rec, &owned);

	if (!rc)
		rc = fleet_shared_from_json(rec.value, out) ? -EINVAL : 0;
	if (!rc)
		snprintf(out->st.name, sizeof(out->st.name), "%s", rec.rollout);
	free(owned);
	return rc;
}

/* The shared state read, checked against the spec: the state a verb starts from. */
static int verb_base(const json_t *rollout, const struct rollout_cfg *cfg, struct fleet_shared *cur,
		     char *err, size_t errlen)
{
	int rc = kuberollout_shared(rollout, cur);

	if (rc == -ENOENT) {
		snprintf(err, errlen,
			 "no agent has written status.shared yet (is canaryd --coordinator kube "
			 "running this rollout?)");
		return rc;
	}
	if (rc) {
		snprintf(err, errlen, "status.shared is not a state canaryd can read");
		return rc;
	}
	if (cur->st.canary_fingerprint != rollout_canary_fingerprint(cfg)) {
		snprintf(
			err, errlen,
			"status.shared is about canary revision \"%s\", not the spec's \"%s\": the "
			"agents have not taken the new spec yet",
			cur->st.canary_revision, cfg->canary.revision);
		return -ESTALE;
	}
	cur->st.steps_fingerprint = rollout_steps_fingerprint(cfg);
	return 0;
}

int kuberollout_verb_patch(const json_t *rollout, enum rollout_verb verb, __u16 weight_bp,
			   __s64 now_ms, char **patch, char *err, size_t errlen)
{
	__s64 rv = coord_kube_rv(str2(rollout, "metadata", "resourceVersion"));
	struct fleet_shared cur, next;
	struct config cfg;
	json_t *j = NULL;
	char *text = NULL;
	int rc;

	*patch = NULL;
	if (verb == VERB_ABORT || verb >= VERB_COUNT) {
		snprintf(err, errlen, "%s is not a versioned write", rollout_verb_name(verb));
		return -EINVAL;
	}
	if (kuberollout_config(rollout, &cfg, err, errlen))
		return -EINVAL;
	rc = verb_base(rollout, &cfg.rollouts[0], &cur, err, errlen);
	if (!rc)
		rc = fleet_verb_next(&cur, &cfg.rollouts[0], verb, weight_bp, KUBEROLLOUT_WRITER,
				     now_ms, &next, err, errlen);
	if (!rc) {
		j = fleet_shared_to_json(&next);
		text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		/* rv > 0 makes it conditional: a 409 when the Rollout changed meanwhile. */
		*patch = text && rv > 0 ? coord_kube_status_patch(text, rv) : NULL;
		rc = *patch ? 0 : -ENOMEM;
		if (rc)
			snprintf(err, errlen, "out of memory, or no metadata.resourceVersion");
	}
	free(text);
	json_decref(j);
	config_free(&cfg);
	return rc;
}

json_t *kuberollout_event(const json_t *rollout, bool abort, __s64 now_us)
{
	struct coord_kube_event e = {
		.ns = str2(rollout, "metadata", "namespace"),
		.rollout = str2(rollout, "metadata", "name"),
		.uid = str2(rollout, "metadata", "uid"),
		.node = KUBEROLLOUT_WRITER,
		.write = abort ? COORD_KUBE_WRITE_ABORT : COORD_KUBE_WRITE_VERB,
		.now_us = now_us,
	};
	struct fleet_shared s;
	json_t *j = NULL, *ev = NULL;
	char *text = NULL;

	/* The state as the agents read it: an abort's, not the running one beside abort: true. */
	if (e.ns && e.rollout && !kuberollout_shared(rollout, &s))
		j = fleet_shared_to_json(&s);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	e.shared = text;
	if (text) {
		char key[CANARY_NAME_LEN + ROLLOUT_MESSAGE_LEN +
			 96]; /* unused: no previous Event */

		ev = coord_kube_event_json(&e, key, sizeof(key));
	}
	free(text);
	json_decref(j);
	return ev;
}

enum kuberollout_outcome kuberollout_outcome(const json_t *rollout)
{
	struct fleet_shared s;

	if (kuberollout_shared(rollout, &s))
		return KUBEROLLOUT_RUNNING;
	if (s.st.phase == PHASE_HEALTHY)
		return KUBEROLLOUT_HEALTHY;
	return s.st.phase == PHASE_DEGRADED ? KUBEROLLOUT_DEGRADED : KUBEROLLOUT_RUNNING;
}

#define MINUTE 60LL
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

void kuberollout_age(__s64 seconds, char *buf, size_t len)
{
	long long s = seconds < 0 ? 0 : (long long)seconds;

	if (s < 2 * MINUTE)
		snprintf(buf, len, "%llds", s);
	else if (s < 10 * MINUTE)
		snprintf(buf, len, "%lldm%llds", s / MINUTE, s % MINUTE);
	else if (s < 3 * HOUR)
		snprintf(buf, len, "%lldm", s / MINUTE);
	else if (s < 8 * HOUR)
		snprintf(buf, len, "%lldh%lldm", s / HOUR, s % HOUR / MINUTE);
	else if (s < 2 * DAY)
		snprintf(buf, len, "%lldh", s / HOUR);
	else if (s < 8 * DAY)
		snprintf(buf, len, "%lldd%lldh", s / DAY, s % DAY / HOUR);
	else
		snprintf(buf, len, "%lldd", s / DAY);
}

#define TABLE_FORMAT "%-31s %-12s %-5s %-7s %s\n"

void kuberollout_table_header(FILE *out)
{
	fprintf(out, TABLE_FORMAT, "NAME", "PHASE", "STEP", "WEIGHT", "AGE");
}

void kuberollout_table_row(FILE *out, const json_t *rollout, __s64 now_s)
{
	const char *name = str2(rollout, "metadata", "name");
	const char *created = str2(rollout, "metadata", "creationTimestamp");
	char step[16] = "-", weight[16] = "-", age[24] = "<unknown>";
	const char *phase = "-";
	struct fleet_shared s;
	__s64 us;

	/* The state the agents act on, an operator's abort included (not the copied columns). */
	if (!kuberollout_shared(rollout, &s)) {
		phase = rollout_phase_name(s.st.phase);
		snprintf(step, sizeof(step), "%d", s.st.step);
		snprintf(weight, sizeof(weight), "%u.%02u", rollout_effective_weight(&s.st) / 100,
			 rollout_effective_weight(&s.st) % 100);
	}
	if (!coord_kube_time_parse(created, &us))
		kuberollout_age(now_s - us / 1000000, age, sizeof(age));
	fprintf(out, TABLE_FORMAT, name ? name : "?", phase, step, weight, age);
}

void kuberollout_status_line(FILE *out, const json_t *rollout)
{
	const char *name = str2(rollout, "metadata", "name");
	struct fleet_shared s;
	__u16 w;

	if (kuberollout_shared(rollout, &s)) {
		fprintf(out, "%s: no state yet (no agent has written status.shared)\n",
			name ? name : "?");
		return;
	}
	w = rollout_effective_weight(&s.st);
	fprintf(out, "%s: %s, step %d, weight %u.%02u%%%s%s\n", name ? name : "?",
		rollout_phase_name(s.st.phase), s.st.step, w / 100, w % 100,
		s.st.message[0] ? ": " : "", s.st.message);
}
