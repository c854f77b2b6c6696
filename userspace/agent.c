// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "agent.h"
#include "log.h"
#include "netparse.h"
#include "report.h"
#include "state.h"

/* Rollout state times are wall-clock, so a pause deadline survives restarts. */
static __s64 wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (__s64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Analysis windows use the monotonic clock, immune to clock steps. */
static __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/* Deterministic per rollout, so a restarted agent splits exactly as before. */
static __u32 service_seed(const char *name)
{
	__u32 h = 2166136261U;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619U;
	return h;
}

static void count_conntrack(struct agent *a)
{
	unsigned int entries;
	long long created;

	if (dp_ct_read(a->dp, &entries, &created) || created < 0)
		return;
	a->conntrack_entries = entries;
	a->conntrack_created = (__u64)created;
	a->conntrack_evictions = dp_ct_evictions((__u64)created, entries, a->conntrack_evictions);
}

int agent_init(struct agent *a, struct canary_dp *dp, const char *bpffs, const char *state_dir)
{
	memset(a, 0, sizeof(*a));
	a->dp = dp;
	a->bpffs = bpffs;
	a->state_dir = state_dir;
	if (dp) {
		a->conntrack_capacity = dp_ct_capacity(dp);
		/* What was evicted before this start is no news, and no scrape reads 0 first. */
		count_conntrack(a);
		a->evictions_logged = a->conntrack_evictions;
	}
	return -pthread_mutex_init(&a->lock, NULL);
}

void agent_destroy(struct agent *a)
{
	free(a->rollouts);
	a->rollouts = NULL;
	a->n_rollouts = 0;
	pthread_mutex_destroy(&a->lock);
}

static struct agent_rollout *find_rollout(struct agent_rollout *rs, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(rs[i].cfg.name, name))
			return &rs[i];
	return NULL;
}

static void log_rollout(enum log_level level, const char *event, const struct agent_rollout *r)
{
	char weight[16], step[16];

	format_weight(rollout_effective_weight(&r->st), weight, sizeof(weight));
	snprintf(step, sizeof(step), "%d", r->st.step);
	log_event(level, event, "rollout", r->cfg.name, "phase", rollout_phase_name(r->st.phase),
		  "step", step, "weight", weight, "message", r->st.message);
}

/* ---- the service in the kernel ---- */

/* Once promoted, the canary's endpoints are the stable set. */
static const struct version_cfg *stable_set(const struct agent_rollout *r)
{
	return r->st.phase == PHASE_HEALTHY ? &r->cfg.canary : &r->cfg.stable;
}

/*
 * The stable endpoints new connections may go to: all but those the health
 * check found down, unless that would leave none (then all: a refused
 * connection tells more than no connection).
 */
static void healthy_stable(const struct agent_rollout *r, struct canary_service *svc)
{
	const struct version_cfg *stable = stable_set(r);
	__u8 i, n = 0;

	for (i = 0; i < stable->n_endpoints && i < CANARY_MAX_BACKENDS; i++)
		if (!r->ep_down[i])
			svc->backends[CANARY_V_STABLE][n++] = stable->endpoints[i];
	if (n == 0) {
		memcpy(svc->backends[CANARY_V_STABLE], stable->endpoints,
		       sizeof(stable->endpoints));
		n = stable->n_endpoints;
	}
	svc->n_backends[CANARY_V_STABLE] = n;
}

static void fill_service(const struct agent_rollout *r, struct canary_service *svc)
{
	memset(svc, 0, sizeof(*svc));
	snprintf(svc->name, sizeof(svc->name), "%s", r->cfg.name);
	svc->weight = rollout_effective_weight(&r->st);
	svc->affinity = r->cfg.affinity;
	svc->flags = r->cfg.service.svc_flags;
	svc->seed = service_seed(r->cfg.name);
	healthy_stable(r, svc);
	svc->n_backends[CANARY_V_CANARY] = r->cfg.canary.n_endpoints;
	memcpy(svc->backends[CANARY_V_CANARY], r->cfg.canary.endpoints,
	       sizeof(r->cfg.canary.endpoints));
}

/* Overrides send chosen clients to a version only while a rollout runs. */
static int sync_overrides(struct agent *a, const struct agent_rollout *r)
{
	__be32 addrs[CONFIG_MAX_OVERRIDES];
	__u8 lens[CONFIG_MAX_OVERRIDES];
	enum canary_version versions[CONFIG_MAX_OVERRIDES];
	int n = 0;

	if (r->st.phase == PHASE_PROGRESSING || r->st.phase == PHASE_PAUSED) {
		for (int i = 0; i < r->cfg.n_overrides; i++, n++) {
			addrs[n] = r->cfg.overrides[i].addr;
			lens[n] = r->cfg.overrides[i].prefixlen;
			versions[n] = r->cfg.overrides[i].version;
		}
	}
	return dp_override_sync(a->dp, r->svc_id, addrs, lens, versions, n);
}

static int write_service(struct agent *a, struct agent_rollout *r)
{
	struct canary_service svc;
	int err;

	fill_service(r, &svc);
	err = dp_service_put(a->dp, &r->cfg.service.key, &svc);
	if (!err) {
		r->svc_id = svc.id;
		r->svc_generation = svc.generation;
		err = sync_overrides(a, r);
	}
	if (err && !r->service_stale)
		log_event(CLOG_ERROR, "cannot write service", "rollout", r->cfg.name, "error",
			  strerror(-err));
	else if (!err && r->service_stale)
		log_event(CLOG_INFO, "service written again", "rollout", r->cfg.name);
	r->service_stale = err != 0;
	return err;
}

static int read_counters(struct agent *a, const struct agent_rollout *r,
			 struct canary_metrics now[CANARY_V_COUNT])
{
	int err = dp_metrics_read(a->dp, r->svc_id, CANARY_V_STABLE, &now[CANARY_V_STABLE]);

	return err ? err :
		     dp_metrics_read(a->dp, r->svc_id, CANARY_V_CANARY, &now[CANARY_V_CANARY]);
}

static void restart_analysis(struct agent *a, struct agent_rollout *r)
{
	struct canary_metrics now[CANARY_V_COUNT];

	if (read_counters(a, r, now))
		memset(now, 0, sizeof(now));
	analysis_restart(&r->an, now, mono_ns() / 1000000);
}

/* ---- state on disk ---- */

static int persist(struct agent *a, struct agent_rollout *r)
{
	int err = state_save(a->state_dir, &r->st);

	if (err && !r->state_write_failed)
		log_event(CLOG_ERROR, "cannot save rollout state: holding the rollout", "rollout",
			  r->cfg.name, "state_dir", a->state_dir, "error", strerror(-err));
	else if (!err && r->state_write_failed)
		log_event(CLOG_INFO, "rollout state saved again", "rollout", r->cfg.name);
	r->state_write_failed = err != 0;
	return err;
}

/*
 * Save a transition before the kernel or an operator sees it. One that
 * cannot be saved is undone, so that the kernel, the API and the state file
 * agree, and the rollout holds until the directory takes writes again. An
 * abort goes ahead all the same: taking traffic off a bad canary matters more
 * than its record, which the next ticks keep trying to write.
 */
static int save_transition(struct agent *a, struct agent_rollout *r,
			   const struct rollout_state *before, struct rollout_effects *fx)
{
	int err;

	if (!fx->changed)
		return 0;
	err = persist(a, r);
	if (!err || r->st.phase == PHASE_DEGRADED) {
		fx->changed = false; /* saved, or left for the retries */
		return 0;
	}
	r->st = *before;
	return err;
}

/* ---- transitions ---- */

static void log_abort_verdicts(const struct agent_rollout *r)
{
	char cv[32], sv[32], stat[32], thr[32], n[32];
	int i;

	for (i = 0; i < r->n_abort_verdicts; i++) {
		const struct verdict *v = &r->abort_verdicts[i];

		snprintf(cv, sizeof(cv), "%.6g", v->canary_value);
		snprintf(sv, sizeof(sv), "%.6g", v->stable_value);
		snprintf(stat, sizeof(stat), "%.4g", v->statistic);
		snprintf(thr, sizeof(thr), "%.4g", v->threshold);
		snprintf(n, sizeof(n), "%llu", (unsigned long long)v->canary_samples);
		log_event(CLOG_WARN, "verdict", "rollout", r->cfg.name, "metric",
			  verdict_metric_name(v), "result", verdict_result_name(v->result),
			  "canary", cv, "stable", sv, "statistic", stat, "threshold", thr,
			  "canary_samples", n, "detail", v->detail);
	}
}

static void keep_abort_verdicts(struct agent_rollout *r)
{
	int i;

	r->n_abort_verdicts = 0;
	for (i = 0; i < r->an.n_last; i++)
		if (r->an.last[i].result == VERDICT_FAIL)
			r->abort_verdicts[r->n_abort_verdicts++] = r->an.last[i];
}

static void apply_effects(struct agent *a, struct agent_rollout *r,
			  const struct rollout_effects *fx)
{
	unsigned int reset = 0;

	if (fx->promoted) {
		/* A new stable set: what was known of the old one's endpoints is moot. */
		memset(r->ep_down, 0, sizeof(r->ep_down));
		memset(r->ep_failures, 0, sizeof(r->ep_failures));
	}
	if (fx->apply_weight || fx->promoted)
		write_service(a, r);
	if (fx->reset_canary_flows) {
		int err = dp_reset_canary_flows(a->dp, r->svc_id, &reset);
		char n[16];

		snprintf(n, sizeof(n), "%u", reset);
		log_event(err ? CLOG_ERROR : CLOG_INFO, "canary connections reset", "rollout",
			  r->cfg.name, "connections", n, "error", err ? strerror(-err) : "");
	}
	if (fx->restart_analysis)
		restart_analysis(a, r);
	if (fx->changed)
		persist(a, r);
	if (fx->event)
		log_rollout(r->st.phase == PHASE_DEGRADED ? CLOG_WARN : CLOG_INFO, fx->event, r);
}

static const char *failing_detail(const struct analysis_state *an)
{
	int i;

	for (i = 0; i < an->n_last; i++)
		if (an->last[i].result == VERDICT_FAIL)
			return an->last[i].detail;
	return "analysis failed";
}

static void count_verdicts(struct agent_rollout *r)
{
	int i;

	for (i = 0; i < r->an.n_last; i++) {
		const struct verdict *v = &r->an.last[i];

		if (v->metric < METRIC_KIND_COUNT && v->result <= VERDICT_INCONCLUSIVE)
			r->verdict_counts[v->metric][v->result]++;
	}
}

/* Keep counters from 5..10 s ago, for the recent rates operators see. */
static void roll_rate_window(struct agent_rollout *r,
			     const struct canary_metrics now[CANARY_V_COUNT], __u64 now_ms)
{
	if (r->rate_base_ms && now_ms - r->rate_base_ms < 5000)
		return;
	memcpy(r->rate_prev, r->rate_base, sizeof(r->rate_prev));
	r->rate_prev_ms = r->rate_base_ms ? r->rate_base_ms : now_ms;
	memcpy(r->rate_base, now, sizeof(r->rate_base));
	r->rate_base_ms = now_ms;
}

/*
 * Someone else wrote the service: "canaryctl emergency-rollback" sets the
 * weight to 0 straight in the pinned map. The agent takes that as an abort
 * (the flows were already reset or left to drain by canaryctl), rather than
 * undoing it at its next step.
 */
static void notice_external_change(struct agent *a, struct agent_rollout *r)
{
	struct canary_service cur;
	struct rollout_effects fx;
	char err[AGENT_ERR_LEN];

	if (dp_service_get(a->dp, &r->cfg.service.key, &cur) || cur.generation == r->svc_generation)
		return;
	r->svc_generation = cur.generation;
	if (cur.weight != 0 || rollout_effective_weight(&r->st) == 0)
		return;
	if (rollout_verb(&r->st, &r->cfg, VERB_ABORT, 0, wall_ms(), &fx, err, sizeof(err)))
		return;
	snprintf(r->st.message, sizeof(r->st.message),
		 "aborted: emergency rollback through the pinned map");
	fx.reset_canary_flows = false;
	apply_effects(a, r, &fx);
}

static void tick_rollout(struct agent *a, struct agent_rollout *r)
{
	struct canary_metrics now[CANARY_V_COUNT];
	struct rollout_state before;
	struct rollout_effects fx;

	if (r->service_stale)
		write_service(a, r); /* the kernel missed the last write: keep trying */
	if (r->state_write_failed)
		persist(a, r); /* an abort that went ahead unsaved, or a held transition */
	notice_external_change(a, r);
	if (read_counters(a, r, now))
		return;
	roll_rate_window(r, now, mono_ns() / 1000000);
	if (r->st.phase == PHASE_HEALTHY || r->st.phase == PHASE_DEGRADED)
		return;
	r->decision = analysis_tick(&r->an, &r->cfg.analysis, now, mono_ns() / 1000000);
	count_verdicts(r);
	if (r->decision == ANALYSIS_FAIL)
		keep_abort_verdicts(r);
	before = r->st;
	rollout_tick(&r->st, &r->cfg, r->decision, failing_detail(&r->an), wall_ms(), &fx);
	if (save_transition(a, r, &before, &fx))
		return; /* held: the same transition is tried again next tick */
	if (r->st.phase == PHASE_DEGRADED && fx.event)
		log_abort_verdicts(r);
	apply_effects(a, r, &fx);
}

/*
 * Someone removed the pins (rm -rf /sys/fs/bpf/canaryd): the maps live on in
 * the programs and in this process, so pin them again where operators and
 * canaryctl look for them.
 */
static void keep_pins(struct agent *a)
{
	unsigned int restored = 0;
	char n[16];
	int err;

	if (!a->bpffs)
		return;
	err = dp_repin_missing(a->dp, a->bpffs, &restored);
	if (!err && !restored)
		return;
	snprintf(n, sizeof(n), "%u", restored);
	log_event(err ? CLOG_ERROR : CLOG_WARN,
		  err ? "cannot pin the maps again" : "pinned maps were removed: pinned again",
		  "bpffs", a->bpffs, "maps", n, "error", err ? strerror(-err) : "");
}

/* A full conntrack evicts flows: say so, once a minute while it goes on. */
static void log_evictions(struct agent *a)
{
	__u64 now = mono_ns() / 1000000;
	char ev[24], n[16], cap[16];

	if (a->conntrack_evictions == a->evictions_logged ||
	    (a->evictions_log_ms && now - a->evictions_log_ms < EVICTIONS_LOG_EVERY_MS))
		return;
	snprintf(ev, sizeof(ev), "%llu", (unsigned long long)a->conntrack_evictions);
	snprintf(n, sizeof(n), "%u", a->conntrack_entries);
	snprintf(cap, sizeof(cap), "%u", a->conntrack_capacity);
	log_event(CLOG_WARN, "conntrack full: least recently used flows evicted", "evictions", ev,
		  "entries", n, "capacity", cap, "hint", "raise --conntrack-entries");
	a->evictions_logged = a->conntrack_evictions;
	a->evictions_log_ms = now;
}

void agent_tick(struct agent *a)
{
	__u64 start = mono_ns();
	size_t i;

	pthread_mutex_lock(&a->lock);
	keep_pins(a);
	for (i = 0; i < a->n_rollouts; i++)
		tick_rollout(a, &a->rollouts[i]);
	if (dp_flow_count_is_cheap(a->dp) || a->ticks % CONNTRACK_COUNT_EVERY == 0) {
		count_conntrack(a);
		log_evictions(a);
	}
	a->ticks++;
	a->last_tick_ns = mono_ns() - start;
	__atomic_store_n(&a->tick_done_ms, mono_ns() / 1000000, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&a->lock);
}

int agent_verb(struct agent *a, const char *name, enum rollout_verb verb, __u16 weight_bp,
	       char *err, size_t errlen)
{
	struct rollout_effects fx;
	struct agent_rollout *r;
	int rc;

	pthread_mutex_lock(&a->lock);
	r = find_rollout(a->rollouts, a->n_rollouts, name);
	if (!r) {
		snprintf(err, errlen, "no rollout named \"%s\"", name);
		rc = -ENOENT;
	} else {
		struct rollout_state before = r->st;
		int serr = 0;

		rc = rollout_verb(&r->st, &r->cfg, verb, weight_bp, wall_ms(), &fx, err, errlen);
		if (!rc)
			serr = save_transition(a, r, &before, &fx);
		if (serr) {
			snprintf(err, errlen,
				 "cannot save the rollout's state in %s (%s): nothing changed",
				 a->state_dir, strerror(-serr));
			rc = -EAGAIN;
		} else if (!rc) {
			apply_effects(a, r, &fx);
		}
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* ---- external metrics ---- */

static bool is_running(const struct agent_rollout *r)
{
	return r->st.phase == PHASE_PROGRESSING || r->st.phase == PHASE_PAUSED;
}

int agent_external_next(struct agent *a, struct external_job *job)
{
	__u64 now = mono_ns() / 1000000;
	int found = 0;
	size_t i;

	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->n_rollouts && !found; i++) {
		struct agent_rollout *r = &a->rollouts[i];
		const struct analysis_cfg *an = &r->cfg.analysis;
		int m;

		if (!is_running(r))
			continue;
		for (m = 0; m < an->n_metrics && m < CONFIG_MAX_METRICS; m++) {
			if (an->metrics[m].kind != METRIC_PROMETHEUS || r->ext_next_ms[m] > now)
				continue;
			r->ext_next_ms[m] =
				now + (__u64)(an->interval_ms > 0 ? an->interval_ms : 1000);
			snprintf(job->rollout, sizeof(job->rollout), "%s", r->cfg.name);
			job->metric = m;
			snprintf(job->address, sizeof(job->address), "%s",
				 an->metrics[m].prom_address);
			snprintf(job->query, sizeof(job->query), "%s", an->metrics[m].prom_query);
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return found;
}

void agent_external_result(struct agent *a, const struct external_job *job, bool ok, double value,
			   const char *err)
{
	struct agent_rollout *r;

	pthread_mutex_lock(&a->lock);
	r = find_rollout(a->rollouts, a->n_rollouts, job->rollout);
	/* The config may have changed while the query ran: drop a stale answer. */
	if (r && is_running(r) && job->metric < r->cfg.analysis.n_metrics) {
		const struct metric_cfg *m = &r->cfg.analysis.metrics[job->metric];

		if (m->kind == METRIC_PROMETHEUS && !strcmp(m->prom_query, job->query))
			analysis_external(&r->an, &r->cfg.analysis, job->metric, ok, value, err);
		if (!ok)
			log_event(CLOG_WARN, "external metric query failed", "rollout",
				  job->rollout, "metric", m->name, "error", err);
	}
	pthread_mutex_unlock(&a->lock);
}

/* ---- health checks of the stable endpoints ---- */

int agent_health_next(struct agent *a, struct health_job *job)
{
	__u64 now = mono_ns() / 1000000;
	size_t i;
	int found = 0;

	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->n_rollouts && !found; i++) {
		struct agent_rollout *r = &a->rollouts[i];
		const struct version_cfg *stable = stable_set(r);

		if (!r->cfg.health.enabled || r->hc_next_ms > now)
			continue;
		r->hc_next_ms = now + (__u64)r->cfg.health.interval_ms;
		snprintf(job->rollout, sizeof(job->rollout), "%s", r->cfg.name);
		memcpy(job->endpoints, stable->endpoints, sizeof(job->endpoints));
		job->n = stable->n_endpoints;
		job->timeout_ms = r->cfg.health.timeout_ms;
		found = 1;
	}
	pthread_mutex_unlock(&a->lock);
	return found;
}

static bool same_endpoints(const struct canary_backend *a, int na, const struct canary_backend *b,
			   int nb)
{
	return na == nb && !memcmp(a, b, (size_t)na * sizeof(*a));
}

/* Count one check of endpoint i; true when its up/down state changed. */
static bool health_update(struct agent_rollout *r, int i, bool ok)
{
	bool was_down = r->ep_down[i];

	if (ok) {
		r->ep_failures[i] = 0;
		r->ep_down[i] = false;
	} else if (r->ep_failures[i] < 255) {
		r->ep_failures[i]++;
		r->ep_down[i] = r->ep_failures[i] >= r->cfg.health.failure_threshold;
	}
	return was_down != r->ep_down[i];
}

void agent_health_result(struct agent *a, const struct health_job *job, const bool *ok)
{
	struct agent_rollout *r;

	pthread_mutex_lock(&a->lock);
	r = find_rollout(a->rollouts, a->n_rollouts, job->rollout);
	/* Drop a result for a stable set that changed while it was checked. */
	if (r && same_endpoints(stable_set(r)->endpoints, stable_set(r)->n_endpoints,
				job->endpoints, job->n)) {
		bool changed = false;

		for (int i = 0; i < job->n && i < CANARY_MAX_BACKENDS; i++) {
			char ep[32];

			if (!health_update(r, i, ok[i]))
				continue;
			changed = true;
			format_endpoint(job->endpoints[i].addr, job->endpoints[i].port, ep,
					sizeof(ep));
			log_event(r->ep_down[i] ? CLOG_WARN : CLOG_INFO,
				  r->ep_down[i] ? "stable endpoint down: no new connections" :
						  "stable endpoint up again",
				  "rollout", r->cfg.name, "endpoint", ep);
		}
		if (changed)
			write_service(a, r);
	}
	pthread_mutex_unlock(&a->lock);
}

/* ---- reports ---- */

static json_t *rollout_json_locked(struct agent *a, const struct agent_rollout *r)
{
	struct canary_metrics now[CANARY_V_COUNT];

	if (read_counters(a, r, now))
		memset(now, 0, sizeof(now));
	return report_rollout(r, now, mono_ns() / 1000000, wall_ms());
}

void agent_each_rollout(struct agent *a,
			void (*fn)(const struct agent_rollout *r,
				   const struct canary_metrics now[CANARY_V_COUNT], void *arg),
			void *arg)
{
	struct canary_metrics now[CANARY_V_COUNT];
	size_t i;

	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->n_rollouts; i++) {
		if (read_counters(a, &a->rollouts[i], now))
			memset(now, 0, sizeof(now));
		fn(&a->rollouts[i], now, arg);
	}
	pthread_mutex_unlock(&a->lock);
}

json_t *agent_rollouts_json(struct agent *a)
{
	json_t *arr = json_array();
	size_t i;

	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->n_rollouts; i++)
		json_array_append_new(arr, rollout_json_locked(a, &a->rollouts[i]));
	pthread_mutex_unlock(&a->lock);
	return arr;
}

json_t *agent_rollout_json(struct agent *a, const char *name)
{
	struct agent_rollout *r;
	json_t *obj = NULL;

	pthread_mutex_lock(&a->lock);
	r = find_rollout(a->rollouts, a->n_rollouts, name);
	if (r)
		obj = rollout_json_locked(a, r);
	pthread_mutex_unlock(&a->lock);
	return obj;
}

/* ---- configuration ---- */

/*
 * At start-up: the map says weight 0 but the saved state says a canary had
 * traffic. Either someone rolled back through the pinned map while the agent
 * was down (canaryctl emergency-rollback), or an abort was applied but not
 * yet saved when the agent died. Both are aborts: never resume silently.
 */
static void respect_map_rollback(struct agent *a, struct agent_rollout *r)
{
	struct canary_service cur;
	struct rollout_effects fx;
	char err[AGENT_ERR_LEN];

	if (dp_service_get(a->dp, &r->cfg.service.key, &cur) || cur.weight != 0 ||
	    rollout_effective_weight(&r->st) == 0)
		return;
	if (rollout_verb(&r->st, &r->cfg, VERB_ABORT, 0, wall_ms(), &fx, err, sizeof(err)))
		return;
	snprintf(r->st.message, sizeof(r->st.message),
		 "aborted: weight 0 found in the pinned map at start-up (emergency rollback)");
	log_rollout(CLOG_WARN, "aborted", r);
	persist(a, r);
}

/* The state of a configured rollout: kept, resumed from disk, or new. */
static void adopt_state(struct agent *a, struct agent_rollout *nr, const struct agent_rollout *old)
{
	__u64 fp = rollout_canary_fingerprint(&nr->cfg);
	struct rollout_state disk;

	if (old && old->st.canary_fingerprint == fp) {
		nr->st = old->st;
		nr->state_write_failed = old->state_write_failed;
		nr->service_stale = old->service_stale;
		nr->svc_id = old->svc_id;
		nr->svc_generation = old->svc_generation;
		nr->n_abort_verdicts = old->n_abort_verdicts;
		nr->rate_prev_ms = old->rate_prev_ms;
		nr->rate_base_ms = old->rate_base_ms;
		memcpy(nr->rate_prev, old->rate_prev, sizeof(old->rate_prev));
		memcpy(nr->rate_base, old->rate_base, sizeof(old->rate_base));
		memcpy(nr->verdict_counts, old->verdict_counts, sizeof(old->verdict_counts));
		memcpy(nr->ext_next_ms, old->ext_next_ms, sizeof(old->ext_next_ms));
		if (same_endpoints(stable_set(nr)->endpoints, stable_set(nr)->n_endpoints,
				   stable_set(old)->endpoints, stable_set(old)->n_endpoints)) {
			memcpy(nr->ep_down, old->ep_down, sizeof(old->ep_down));
			memcpy(nr->ep_failures, old->ep_failures, sizeof(old->ep_failures));
		}
		memcpy(nr->abort_verdicts, old->abort_verdicts, sizeof(old->abort_verdicts));
		return;
	}
	if (old) {
		log_rollout(CLOG_INFO, "superseded", old);
		rollout_init(&nr->st, &nr->cfg);
		log_rollout(CLOG_INFO, "rollout started", nr);
		persist(a, nr);
		return;
	}
	if (!state_load(a->state_dir, nr->cfg.name, &disk) && disk.canary_fingerprint == fp) {
		nr->st = disk;
		log_rollout(CLOG_INFO, "rollout resumed", nr);
		respect_map_rollback(a, nr);
		return;
	}
	rollout_init(&nr->st, &nr->cfg);
	log_rollout(CLOG_INFO, "rollout started", nr);
	persist(a, nr);
}

struct stale_walk {
	const struct config *cfg;
	struct canary_service_key stale[CANARY_MAX_SERVICES];
	int n;
};

static int collect_stale(const struct canary_service_key *key, const struct canary_service *svc,
			 void *arg)
{
	struct stale_walk *w = arg;
	size_t i;

	(void)svc;
	for (i = 0; i < w->cfg->n_rollouts; i++)
		if (!memcmp(&w->cfg->rollouts[i].service.key, key, sizeof(*key)))
			return 0;
	if (w->n < CANARY_MAX_SERVICES)
		w->stale[w->n++] = *key;
	return 0;
}

/* Services in the maps that no configured rollout owns any more. */
static void remove_stale_services(struct agent *a, const struct config *cfg)
{
	struct stale_walk *w = calloc(1, sizeof(*w));
	char vip[32];
	int i;

	if (!w)
		return;
	w->cfg = cfg;
	dp_service_each(a->dp, collect_stale, w);
	for (i = 0; i < w->n; i++) {
		dp_service_delete(a->dp, &w->stale[i]);
		log_event(CLOG_INFO, "service removed", "vip",
			  format_endpoint(w->stale[i].vip, w->stale[i].port, vip, sizeof(vip)));
	}
	free(w);
}

int agent_apply_config(struct agent *a, const struct config *cfg)
{
	struct agent_rollout *next;
	size_t i;

	next = calloc(cfg->n_rollouts ? cfg->n_rollouts : 1, sizeof(*next));
	if (!next)
		return -ENOMEM;
	pthread_mutex_lock(&a->lock);
	for (i = 0; i < cfg->n_rollouts; i++) {
		struct agent_rollout *nr = &next[i];

		nr->cfg = cfg->rollouts[i];
		adopt_state(a, nr, find_rollout(a->rollouts, a->n_rollouts, nr->cfg.name));
		write_service(a, nr);
		restart_analysis(a, nr);
	}
	for (i = 0; i < a->n_rollouts; i++) {
		if (find_rollout(next, cfg->n_rollouts, a->rollouts[i].cfg.name))
			continue;
		state_remove(a->state_dir, a->rollouts[i].cfg.name);
		log_event(CLOG_INFO, "rollout removed", "rollout", a->rollouts[i].cfg.name);
	}
	remove_stale_services(a, cfg);
	free(a->rollouts);
	a->rollouts = next;
	a->n_rollouts = cfg->n_rollouts;
	pthread_mutex_unlock(&a->lock);
	return 0;
}
