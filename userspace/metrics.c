// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary_hist.h"
#include "fleet.h"
#include "metrics.h"
#include "netparse.h"
#include "stats.h"
#include "version.h"

/* OpenTelemetry's http.server.request.duration boundaries, in seconds. */
static const double otel_bounds_s[] = { 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
					0.5,   0.75, 1,	    2.5,  5,	 7.5, 10 };

static const char *const version_label[CANARY_V_COUNT] = { "stable", "canary" };
static const char *const class_label[CANARY_STATUS_CLASSES] = { "other", "1xx", "2xx",
								"3xx",	 "4xx", "5xx" };

/* What one rollout contributes, copied out under the agent's lock. */
struct rollout_sample {
	char name[CANARY_NAME_LEN];
	char service[32];
	enum rollout_phase phase;
	int step;
	__u16 weight_bp;
	__u32 aborts;
	bool kill_switch;
	__u64 verdicts[METRIC_KIND_COUNT][VERDICT_INCONCLUSIVE + 1];
	bool has_verdict[METRIC_KIND_COUNT];
	struct canary_metrics m[CANARY_V_COUNT];
};

struct collect {
	struct rollout_sample *s;
	size_t n, cap;
};

static void collect_one(const struct rollout_view *r,
			const struct canary_metrics now[CANARY_V_COUNT], void *arg)
{
	struct collect *c = arg;
	struct rollout_sample *s;
	int i;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;
		struct rollout_sample *grown = realloc(c->s, cap * sizeof(*grown));

		if (!grown)
			return; /* this rollout is left out of this scrape */
		c->s = grown;
		c->cap = cap;
	}
	s = &c->s[c->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", r->cfg->name);
	format_endpoint(r->cfg->service.key.vip, r->cfg->service.key.port, s->service,
			sizeof(s->service));
	s->phase = r->st->phase;
	s->step = r->st->step;
	s->weight_bp = rollout_effective_weight(r->st);
	s->aborts = r->st->aborts;
	s->kill_switch = r->kill_switch;
	memcpy(s->verdicts, r->verdict_counts, sizeof(s->verdicts));
	for (i = 0; i < r->cfg->analysis.n_metrics; i++)
		s->has_verdict[r->cfg->analysis.metrics[i].kind] = true;
	memcpy(s->m, now, sizeof(s->m));
}

double metrics_hist_cumulative(const struct canary_metrics *m, double le_us)
{
	double sum = 0;
	__u32 i;

	for (i = 0; i < CANARY_HIST_BUCKETS; i++) {
		double lo = (double)canary_hist_lower(i);
		double width = (double)canary_hist_width(i);

		if (!m->latency_hist[i])
			continue;
		if (lo + width <= le_us + 1e-9)
			sum += (double)m->latency_hist[i];
		else if (lo < le_us && i != CANARY_HIST_BUCKETS - 1)
			sum += (double)m->latency_hist[i] * (le_us - lo) / width;
	}
	return sum;
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Labels every per-version sample carries. */
static void version_labels(FILE *f, const struct rollout_sample *s, int v)
{
	fprintf(f, "rollout=\"%s\",service=\"%s\",version=\"%s\"", s->name, s->service,
		version_label[v]);
}

typedef __u64 (*counter_of)(const struct canary_metrics *m);

static __u64 requests_of(const struct canary_metrics *m)
{
	return m->requests;
}

static __u64 errors_of(const struct canary_metrics *m)
{
	return m->responses[5] + m->conns_reset + m->conns_refused;
}

static void per_version_counter(FILE *f, const struct collect *c, const char *name,
				const char *help, counter_of get)
{
	size_t i;
	int v;

	family(f, name, "counter", help);
	for (i = 0; i < c->n; i++) {
		for (v = 0; v < CANARY_V_COUNT; v++) {
			fprintf(f, "%s{", name);
			version_labels(f, &c->s[i], v);
			fprintf(f, "} %llu\n", (unsigned long long)get(&c->s[i].m[v]));
		}
	}
}

static void responses(FILE *f, const struct collect *c)
{
	size_t i;
	int v, k;

	family(f, "canaryd_responses_total", "counter",
	       "HTTP responses by status class (other: not an HTTP/1.x status line).");
	for (i = 0; i < c->n; i++)
		for (v = 0; v < CANARY_V_COUNT; v++)
			for (k = 0; k < CANARY_STATUS_CLASSES; k++) {
				fprintf(f, "canaryd_responses_total{");
				version_labels(f, &c->s[i], v);
				fprintf(f, ",code_class=\"%s\"} %llu\n", class_label[k],
					(unsigned long long)c->s[i].m[v].responses[k]);
			}
}

static void connections_and_bytes(FILE *f, const struct collect *c)
{
	size_t i;
	int v;

	family(f, "canaryd_connections_total", "counter",
	       "Connections by outcome: opened, refused (RST to the SYN), reset by the backend.");
	for (i = 0; i < c->n; i++)
		for (v = 0; v < CANARY_V_COUNT; v++) {
			const struct canary_metrics *m = &c->s[i].m[v];
			const __u64 vals[3] = { m->conns_opened, m->conns_refused, m->conns_reset };
			static const char *const outcome[3] = { "opened", "refused", "reset" };
			int k;

			for (k = 0; k < 3; k++) {
				fprintf(f, "canaryd_connections_total{");
				version_labels(f, &c->s[i], v);
				fprintf(f, ",outcome=\"%s\"} %llu\n", outcome[k],
					(unsigned long long)vals[k]);
			}
		}
	family(f, "canaryd_bytes_total", "counter",
	       "IP bytes by direction: to_backend (requests) and to_client (responses).");
	for (i = 0; i < c->n; i++)
		for (v = 0; v < CANARY_V_COUNT; v++) {
			fprintf(f, "canaryd_bytes_total{");
			version_labels(f, &c->s[i], v);
			fprintf(f, ",direction=\"to_backend\"} %llu\n",
				(unsigned long long)c->s[i].m[v].bytes_in);
			fprintf(f, "canaryd_bytes_total{");
			version_labels(f, &c->s[i], v);
			fprintf(f, ",direction=\"to_client\"} %llu\n",
				(unsigned long long)c->s[i].m[v].bytes_out);
		}
}

static void latency_histogram(FILE *f, const struct collect *c)
{
	const char *name = "canaryd_request_duration_seconds";
	size_t i, b;
	int v;

	family(f, name, "histogram",
	       "Time to the first response byte, with OpenTelemetry HTTP duration buckets.");
	for (i = 0; i < c->n; i++)
		for (v = 0; v < CANARY_V_COUNT; v++) {
			const struct canary_metrics *m = &c->s[i].m[v];

			for (b = 0; b < sizeof(otel_bounds_s) / sizeof(otel_bounds_s[0]); b++) {
				double cum = metrics_hist_cumulative(m, otel_bounds_s[b] * 1e6);

				fprintf(f, "%s_bucket{", name);
				version_labels(f, &c->s[i], v);
				fprintf(f, ",le=\"%g\"} %.0f\n", otel_bounds_s[b],
					floor(cum + 0.5));
			}
			fprintf(f, "%s_bucket{", name);
			version_labels(f, &c->s[i], v);
			fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)m->latency_count);
			fprintf(f, "%s_sum{", name);
			version_labels(f, &c->s[i], v);
			fprintf(f, "} %.6f\n", (double)m->latency_sum_us / 1e6);
			fprintf(f, "%s_count{", name);
			version_labels(f, &c->s[i], v);
			fprintf(f, "} %llu\n", (unsigned long long)m->latency_count);
		}
}

static void rollout_state(FILE *f, const struct collect *c)
{
	static const enum rollout_phase phases[] = { PHASE_PROGRESSING, PHASE_PAUSED, PHASE_HEALTHY,
						     PHASE_DEGRADED };
	size_t i, p;

	family(f, "canaryd_rollout_canary_weight_ratio", "gauge",
	       "Share of new connections sent to the canary, 0..1.");
	for (i = 0; i < c->n; i++)
		fprintf(f,
			"canaryd_rollout_canary_weight_ratio{rollout=\"%s\",service=\"%s\"} %.4f\n",
			c->s[i].name, c->s[i].service, c->s[i].weight_bp / 10000.0);
	family(f, "canaryd_rollout_step", "gauge", "Index of the current step (0-based).");
	for (i = 0; i < c->n; i++)
		fprintf(f, "canaryd_rollout_step{rollout=\"%s\",service=\"%s\"} %d\n", c->s[i].name,
			c->s[i].service, c->s[i].step);
	family(f, "canaryd_rollout_phase", "gauge", "1 for the rollout's current phase, else 0.");
	for (i = 0; i < c->n; i++)
		for (p = 0; p < sizeof(phases) / sizeof(phases[0]); p++)
			fprintf(f,
				"canaryd_rollout_phase{rollout=\"%s\",service=\"%s\",phase=\"%s\"} %d\n",
				c->s[i].name, c->s[i].service, rollout_phase_name(phases[p]),
				c->s[i].phase == phases[p]);
	family(f, "canaryd_rollout_aborts_total", "counter",
	       "Rollouts aborted (automatic or not).");
	for (i = 0; i < c->n; i++)
		fprintf(f, "canaryd_rollout_aborts_total{rollout=\"%s\",service=\"%s\"} %u\n",
			c->s[i].name, c->s[i].service, c->s[i].aborts);
	family(f, "canaryd_rollout_kill_switch", "gauge",
	       "1 while the operator's kill switch (canaryctl emergency-rollback) is engaged.");
	for (i = 0; i < c->n; i++)
		fprintf(f, "canaryd_rollout_kill_switch{rollout=\"%s\",service=\"%s\"} %d\n",
			c->s[i].name, c->s[i].service, c->s[i].kill_switch ? 1 : 0);
}

static void verdicts(FILE *f, const struct collect *c)
{
	size_t i;
	int k, res;

	family(f, "canaryd_analysis_verdicts_total", "counter",
	       "Analysis verdicts evaluated, by metric and result (one per metric per tick).");
	for (i = 0; i < c->n; i++)
		for (k = 0; k < METRIC_KIND_COUNT; k++) {
			if (!c->s[i].has_verdict[k])
				continue;
			for (res = 0; res <= VERDICT_INCONCLUSIVE; res++)
				fprintf(f,
					"canaryd_analysis_verdicts_total{rollout=\"%s\",service=\"%s\","
					"metric=\"%s\",result=\"%s\"} %llu\n",
					c->s[i].name, c->s[i].service, metric_kind_name(k),
					verdict_result_name(res),
					(unsigned long long)c->s[i].verdicts[k][res]);
		}
}

static void agent_families(FILE *f, struct agent *a)
{
	__u64 reasons[CANARY_R_COUNT];
	struct agent_stats st;

	/* One snapshot of what the tick writes: created = entries + evictions holds in it. */
	agent_stats(a, &st);

	family(f, "canaryd_build_info", "gauge", "Build of the running agent; always 1.");
	fprintf(f, "canaryd_build_info{version=\"%s\"} 1\n", CANARY_VERSION);
	family(f, "target_info", "gauge", "Target metadata.");
	fprintf(f, "target_info{service_name=\"canaryd\",service_version=\"%s\"} 1\n",
		CANARY_VERSION);
	if (!dp_reasons_read(a->dp, reasons)) {
		family(f, "canaryd_packets_total", "counter",
		       "Packets seen by the programs, by what was done with them and why.");
		for (int i = 0; i < CANARY_R_COUNT; i++)
			fprintf(f, "canaryd_packets_total{reason=\"%s\"} %llu\n", dp_reason_name(i),
				(unsigned long long)reasons[i]);
	}
	family(f, "canaryd_conntrack_entries", "gauge", "Conntrack entries in use (two per flow).");
	fprintf(f, "canaryd_conntrack_entries %u\n", st.conntrack_entries);
	family(f, "canaryd_conntrack_capacity_entries", "gauge", "Conntrack map capacity.");
	fprintf(f, "canaryd_conntrack_capacity_entries %u\n", st.conntrack_capacity);
	family(f, "canaryd_conntrack_entries_created_total", "counter",
	       "Conntrack entries created (two per new flow).");
	fprintf(f, "canaryd_conntrack_entries_created_total %llu\n",
		(unsigned long long)st.conntrack_created);
	family(f, "canaryd_conntrack_evictions_total", "counter",
	       "Conntrack entries evicted by the LRU to make room for new ones.");
	fprintf(f, "canaryd_conntrack_evictions_total %llu\n",
		(unsigned long long)st.conntrack_evictions);
	family(f, "canaryd_tick_duration_seconds", "gauge", "How long the last agent tick took.");
	fprintf(f, "canaryd_tick_duration_seconds %.6f\n", (double)st.last_tick_ns / 1e9);
	family(f, "canaryd_ticks_total", "counter", "Agent ticks run.");
	fprintf(f, "canaryd_ticks_total %llu\n", (unsigned long long)st.ticks);
}

char *metrics_render(struct agent *a, size_t *len)
{
	struct collect c = { 0 };
	char *buf = NULL;
	FILE *f;

	agent_each_rollout(a, collect_one, &c);
	f = open_memstream(&buf, len);
	if (f) {
		per_version_counter(f, &c, "canaryd_requests_total",
				    "HTTP requests (one per request/response turn).", requests_of);
		responses(f, &c);
		per_version_counter(f, &c, "canaryd_errors_total",
				    "Errors as the analysis counts them: 5xx, resets, refusals.",
				    errors_of);
		connections_and_bytes(f, &c);
		latency_histogram(f, &c);
		rollout_state(f, &c);
		verdicts(f, &c);
		if (a->delivery)
			delivery_render(a->delivery, f);
		if (a->notifier)
			notifier_render(a->notifier, f);
		agent_families(f, a);
		if (a->fleet)
			fleet_metrics(a->fleet, f);
		fclose(f);
	}
	free(c.s);
	return buf;
}
