// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <string.h>

#include "status.h"

#define BAR_WIDTH 40

struct phase_look {
	const char *phase;
	const char *icon;
	const char *color;
};

static const struct phase_look looks[] = {
	{ "Progressing", "◌", "\033[36m" },
	{ "Paused", "॥", "\033[33m" },
	{ "Healthy", "✔", "\033[32m" },
	{ "Degraded", "✖", "\033[31m" },
};

static const struct phase_look *look_of(const char *phase)
{
	size_t i;

	for (i = 0; i < sizeof(looks) / sizeof(looks[0]); i++)
		if (!strcmp(looks[i].phase, phase))
			return &looks[i];
	return &looks[0];
}

static const char *str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

static double num(json_t *obj, const char *key)
{
	return json_number_value(json_object_get(obj, key));
}

static void weight_bar(FILE *out, double weight)
{
	int filled = (int)(weight / 100.0 * BAR_WIDTH + 0.5), i;

	fputs("[", out);
	for (i = 0; i < BAR_WIDTH; i++)
		fputs(i < filled ? "█" : "░", out);
	fprintf(out, "] %g%%\n", weight);
}

static void print_step(FILE *out, json_t *step, int i, int current, const char *phase,
		       json_t *remaining)
{
	bool done = i < current || !strcmp(phase, "Healthy");
	bool here = i == current && strcmp(phase, "Healthy") != 0;
	json_t *pause = json_object_get(step, "pause");

	fprintf(out, "  %s %s ", here ? "▶" : " ", done ? "✔" : (here ? "◷" : "·"));
	if (!pause) {
		fprintf(out, "setWeight: %g\n", num(step, "setWeight"));
		return;
	}
	if (!json_object_get(pause, "duration_s")) {
		fprintf(out, "pause: {} (until promoted)\n");
		return;
	}
	fprintf(out, "pause: %gs", num(pause, "duration_s"));
	if (here && json_is_number(remaining))
		fprintf(out, " (%.0fs left)", json_number_value(remaining));
	fputc('\n', out);
}

static void print_version(FILE *out, const char *label, json_t *v)
{
	json_t *p50 = json_object_get(v, "latency_p50_ms"),
	       *p99 = json_object_get(v, "latency_p99_ms");

	fprintf(out, "  %-7s %-10s %9.1f %8.2f%% ", label, str(v, "revision"), num(v, "rps"),
		100.0 * num(v, "error_ratio"));
	if (!json_is_number(p50))
		fprintf(out, "%9s %9s", "-", "-");
	else
		fprintf(out, "%9.2f %9.2f", json_number_value(p50), json_number_value(p99));
	fprintf(out, " %10lld\n",
		(long long)json_integer_value(json_object_get(v, "requests_total")));
}

static void print_verdicts(FILE *out, const char *title, json_t *arr)
{
	size_t i;

	if (!json_array_size(arr))
		return;
	fprintf(out, "%s\n", title);
	for (i = 0; i < json_array_size(arr); i++) {
		const char *res = str(json_array_get(arr, i), "result");
		const char *icon = !strcmp(res, "pass") ? "✔" : !strcmp(res, "fail") ? "✖" : "…";

		json_t *v = json_array_get(arr, i);

		fprintf(out, "  %s %-18s %s\n", icon, str(v, "metric"), str(v, "detail"));
	}
}

/* A coordinated agent's view of the fleet: the leader, each node's weight, traffic, verdict. */
static void print_fleet(FILE *out, json_t *fleet)
{
	json_t *nodes = json_object_get(fleet, "nodes");
	size_t i;

	if (!fleet)
		return;
	fprintf(out, "Fleet:     node %s, leader %s%s, %d live nodes, coordinator %s, pooled %s\n",
		str(fleet, "node"), *str(fleet, "leader") ? str(fleet, "leader") : "(none)",
		json_is_true(json_object_get(fleet, "leading")) ? " (this node)" : "",
		(int)num(fleet, "liveNodes"),
		json_is_true(json_object_get(fleet, "reachable")) ? "reachable" : "UNREACHABLE",
		str(fleet, "pooledDecision"));
	fprintf(out, "  %-16s %-5s %7s %10s %8s %10s %8s %-12s\n", "NODE", "LIVE", "WEIGHT",
		"canary req", "errors", "stable req", "errors", "VERDICT");
	for (i = 0; i < json_array_size(nodes); i++) {
		json_t *n = json_array_get(nodes, i);
		char weight[16];

		snprintf(weight, sizeof(weight), "%g%%", num(n, "weightBp") / 100);
		fprintf(out, "  %-16s %-5s %7s %10.0f %8.0f %10.0f %8.0f %-12s\n", str(n, "node"),
			json_is_true(json_object_get(n, "live")) ? "yes" : "no", weight,
			num(n, "canaryRequests"), num(n, "canaryErrors"), num(n, "stableRequests"),
			num(n, "stableErrors"), str(n, "decision"));
	}
}

void status_print_rollout(FILE *out, json_t *r, bool color)
{
	const char *phase = str(r, "phase");
	const struct phase_look *look = look_of(phase);
	json_t *steps = json_object_get(r, "steps"), *svc = json_object_get(r, "service");
	json_t *analysis = json_object_get(r, "analysis");
	int current = (int)num(r, "step");
	size_t i;

	fprintf(out, "Name:      %s\n", str(r, "name"));
	fprintf(out, "Phase:     %s%s %s%s", color ? look->color : "", look->icon, phase,
		color ? "\033[0m" : "");
	if (*str(r, "message"))
		fprintf(out, "  — %s", str(r, "message"));
	fprintf(out, "\nService:   %s:%lld (%s)\n", str(svc, "vip"),
		(long long)json_integer_value(json_object_get(svc, "port")), str(svc, "protocol"));
	fprintf(out, "Step:      %d/%d\n", current, (int)num(r, "step_count"));
	fprintf(out, "Weight:    ");
	weight_bar(out, num(r, "weight"));
	fprintf(out, "Steps:\n");
	for (i = 0; i < json_array_size(steps); i++) {
		print_step(out, json_array_get(steps, i), (int)i, current, phase,
			   json_object_get(r, "pause_remaining_s"));
	}
	fprintf(out, "Versions:  %-10s %9s %9s %9s %9s %10s\n", "revision", "rps", "errors",
		"p50 ms", "p99 ms", "requests");
	print_version(out, "stable", json_object_get(r, "stable"));
	print_version(out, "canary", json_object_get(r, "canary"));
	fprintf(out, "Analysis:  %s", str(analysis, "decision"));
	/* What a hold waits for, what a pass rests on. */
	if (*str(analysis, "reason"))
		fprintf(out, " — %s", str(analysis, "reason"));
	fputc('\n', out);
	print_verdicts(out, "Last verdicts:", json_object_get(analysis, "verdicts"));
	print_verdicts(out,
		       "Verdicts behind the last abort:", json_object_get(r, "abort_verdicts"));
	print_fleet(out, json_object_get(r, "fleet"));
}

void status_print_list(FILE *out, json_t *rollouts)
{
	size_t i;

	fprintf(out, "%-24s %-14s %-6s %-7s %s\n", "NAME", "PHASE", "STEP", "WEIGHT", "MESSAGE");
	for (i = 0; i < json_array_size(rollouts); i++) {
		char step[16];
		char weight[16];

		json_t *r = json_array_get(rollouts, i);

		snprintf(step, sizeof(step), "%d/%d", (int)num(r, "step"),
			 (int)num(r, "step_count"));
		snprintf(weight, sizeof(weight), "%g%%", num(r, "weight"));
		fprintf(out, "%-24s %s %-12s %-6s %-7s %s\n", str(r, "name"),
			look_of(str(r, "phase"))->icon, str(r, "phase"), step, weight,
			str(r, "message"));
	}
}
