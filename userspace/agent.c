// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "evidence.h"
#include "fleet.h"
#include "log.h"
#include "netparse.h"
#include "report.h"
#include "state.h"
#include "stats.h"
#include "seedsecret.h"
#include "traffic.h"

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

/* The hash seeds' secret, pinned beside the maps: created on the first start, kept after. */
static int open_secret(struct agent *a)
{
	bool created;

	a->secret_fd = seed_secret_open(a->bpffs, &a->secret, &created);
	if (a->secret_fd < 0) {
		log_event(CLOG_ERROR, "cannot read or create the hash seeds' secret", "bpffs",
			  a->bpffs, "map", CANARY_MAP_NAME("secret"), "error",
			  strerror(-a->secret_fd));
		return a->secret_fd;
	}
	if (created)
		log_event(CLOG_INFO, "hash seeds' secret created", "bpffs", a->bpffs, "map",
			  CANARY_MAP_NAME("secret"));
	return 0;
}

int agent_init(struct agent *a, struct canary_dp *dp, const char *bpffs, const char *state_dir)
{
	int err = agent_init_ops(a, &dp_ops_kernel, dp, bpffs, state_dir);

	a->dp = dp;
	return err;
}

int agent_init_ops(struct agent *a, const struct dp_ops *ops, void *dp, const char *bpffs,
		   const char *state_dir)
{
	memset(a, 0, sizeof(*a));
	a->ops = ops;
	a->ops_dp = dp;
	a->bpffs = bpffs;
	a->state_dir = state_dir;
	a->secret_fd = -1;
	dp_watch_init(&a->watch, ops, dp, bpffs);
	if (pthread_mutex_init(&a->save_lock, NULL))
		return -ENOMEM;
	if (pthread_mutex_init(&a->lock, NULL))
		return -ENOMEM;
	/* Last: agent_destroy() undoes all of the above whatever this returns. */
	return dp && bpffs ? open_secret(a) : 0;
}

void agent_destroy(struct agent *a)
{
	size_t i;

	for (i = 0; i < a->n_pending_records; i++)
		json_decref(a->pending_records[i].verdicts);
	free(a->pending_records);
	free(a->rollouts);
	a->rollouts = NULL;
	a->n_rollouts = 0;
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->save_lock);
	if (a->secret_fd >= 0)
		close(a->secret_fd);
	a->secret_fd = -1;
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
		if (!r->health.down[i])
			svc->backends[CANARY_V_STABLE][n++] = stable->endpoints[i];
	if (n == 0) {
		memcpy(svc->backends[CANARY_V_STABLE], stable->endpoints,
		       sizeof(stable->endpoints));
		n = stable->n_endpoints;
	}
	svc->n_backends[CANARY_V_STABLE] = n;
}

/*
 * A version's draining endpoints go after its selectable ones, in the room
 * left: new flows never get one, established flows keep theirs (the data
 * path's bpf/lib/backends.h).
 */
static void append_draining(struct canary_service *svc, int v, const struct canary_backend *list,
			    __u8 count)
{
	__u8 i, n = svc->n_backends[v];

	while (n < CANARY_MAX_BACKENDS && svc->backends[v][n].addr)
		n++; /* after the draining slots already there */
	for (i = 0; i < count && n < CANARY_MAX_BACKENDS; i++)
		svc->backends[v][n++] = list[i];
}

static void add_draining(struct canary_service *svc, int v, const struct version_cfg *ver)
{
	append_draining(svc, v, ver->draining, ver->n_draining);
}

static void fill_service(const struct agent *a, const struct agent_rollout *r,
			 struct canary_service *svc)
{
	memset(svc, 0, sizeof(*svc));
	snprintf(svc->name, sizeof(svc->name), "%s", r->cfg.name);
	svc->weight = rollout_effective_weight(&r->st);
	svc->affinity = r->cfg.affinity;
	svc->flags = r->cfg.service.svc_flags;
	svc->seed = seed_secret_seed(&a->secret, r->cfg.name);
	healthy_stable(r, svc);
	svc->n_backends[CANARY_V_CANARY] = r->cfg.canary.n_endpoints;
	memcpy(svc->backends[CANARY_V_CANARY], r->cfg.canary.endpoints,
	       sizeof(r->cfg.canary.endpoints));
	add_draining(svc, CANARY_V_STABLE, stable_set(r));
	add_draining(svc, CANARY_V_CANARY, &r->cfg.canary);
	/*
	 * Once promoted, the old stable endpoints drain behind the new set: a
	 * connection on one finishes there instead of being moved to the new
	 * set, whose backend would reset it (Argo Rollouts likewise keeps the
	 * old ReplicaSet through its scale-down delay). They leave with the
	 * next configuration of the rollout.
	 */
	if (r->st.phase == PHASE_HEALTHY) {
		append_draining(svc, CANARY_V_STABLE, r->cfg.stable.endpoints,
				r->cfg.stable.n_endpoints);
		add_draining(svc, CANARY_V_STABLE, &r->cfg.stable);
	}
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
	return a->ops->override_sync(a->ops_dp, r->svc_id, addrs, lens, versions, n);
}

static int write_service(struct agent *a, struct agent_rollout *r)
{
	struct canary_service svc;
	int err;

	fill_service(a, r, &svc);
	err = a->ops->service_put(a->ops_dp, &r->cfg.service.key, &svc);
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
	int err =
		a->ops->metrics_read(a->ops_dp, r->svc_id, CANARY_V_STABLE, &now[CANARY_V_STABLE]);

	return err ? err :
		     a->ops->metrics_read(a->ops_dp, r->svc_id, CANARY_V_CANARY,
					  &now[CANARY_V_CANARY]);
}

static void restart_analysis(struct agent *a, struct agent_rollout *r)
{
	struct canary_metrics now[CANARY_V_COUNT];

	if (read_counters(a, r, now))
		memset(now, 0, sizeof(now));
	analysis_restart(&r->an, now, mono_ns() / 1000000);
	r->evidence_valid = true;
	r->first_fail_ms = 0;
}

/* ---- state on disk ---- */

static bool is_running(const struct agent_rollout *r)
{
	return r->st.phase == PHASE_PROGRESSING || r->st.phase == PHASE_PAUSED;
}

/* The state with the evidence of a running rollout's step; sync for transitions. */
static int save_state(struct agent *a, struct agent_rollout *r, bool sync)
{
	__u64 now = mono_ns() / 1000000;
	json_t *ev = is_running(r) && r->evidence_valid ?
			     evidence_to_json(&r->an, &r->cfg.analysis, now, wall_ms()) :
			     NULL;
	int err;

	pthread_mutex_lock(&a->save_lock);
	err = state_save(a->state_dir, &r->st, ev, sync);
	pthread_mutex_unlock(&a->save_lock);
	json_decref(ev);
	if (!err)
		r->evidence_saved_ms = now;
	return err;
}

static void note_saved(struct agent *a, struct agent_rollout *r, int err)
{
	if (err && !r->state_write_failed)
		log_event(CLOG_ERROR, "cannot save rollout state: holding the rollout", "rollout",
			  r->cfg.name, "state_dir", a->state_dir, "error", strerror(-err));
	else if (!err && r->state_write_failed)
		log_event(CLOG_INFO, "rollout state saved again", "rollout", r->cfg.name);
	r->state_write_failed = err != 0;
}

static int persist(struct agent *a, struct agent_rollout *r)
{
	int err = save_state(a, r, true);

	note_saved(a, r, err);
	return err;
}

/*
 * Save a transition before the kernel or an operator sees it. One that
 * cannot be saved is undone, so that the kernel, the API and the state file
 * agree, and the rollout holds until the directory takes writes again.
 * Aborts do not come here: they reach the kernel first (apply_abort).
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

/* ---- delivery records ---- */

static json_t *verdicts_json(const struct verdict *vs, int n)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; arr && i < n; i++)
		json_array_append_new(arr, report_verdict(&vs[i]));
	return arr;
}

/* Queue how r ended; written by flush_records once the lock is let go. */
static void queue_record(struct agent *a, const struct agent_rollout *r,
			 enum delivery_outcome outcome, __s64 rollback_ms)
{
	struct delivery_record *grown, *rec;
	bool automatic = outcome == OUTCOME_ABORTED && rollback_ms >= 0;

	if (!a->delivery)
		return;
	grown = realloc(a->pending_records, (a->n_pending_records + 1) * sizeof(*grown));
	if (!grown)
		return;
	a->pending_records = grown;
	rec = &grown[a->n_pending_records++];
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->rollout, sizeof(rec->rollout), "%s", r->cfg.name);
	snprintf(rec->revision, sizeof(rec->revision), "%s", r->cfg.canary.revision);
	rec->outcome = outcome;
	rec->started_ms = r->st.started_ms > 0 ? r->st.started_ms : -1;
	rec->ended_ms = wall_ms();
	rec->rollback_ms = rollback_ms;
	rec->step = r->st.step;
	rec->weight_bp = r->st.weight_bp;
	snprintf(rec->message, sizeof(rec->message), "%s", r->st.message);
	rec->verdicts = automatic ? verdicts_json(r->abort_verdicts, r->n_abort_verdicts) :
				    verdicts_json(r->an.last, r->an.n_last);
}

/* Write the queued records; call without the lock held. */
static void flush_records(struct agent *a)
{
	struct delivery_record *recs;
	size_t i, n;

	pthread_mutex_lock(&a->lock);
	recs = a->pending_records;
	n = a->n_pending_records;
	a->pending_records = NULL;
	a->n_pending_records = 0;
	pthread_mutex_unlock(&a->lock);
	for (i = 0; i < n; i++) {
		int err = delivery_record(a->delivery, &recs[i]);

		if (err)
			log_event(CLOG_WARN, "cannot write the rollout's history", "rollout",
				  recs[i].rollout, "error", strerror(-err));
	}
	free(recs);
}

/* Which notification a transition's event is, or -1 for none. */
static int notify_event_of(const char *event)
{
	static const struct {
		const char *event;
		enum notify_event kind;
	} map[] = {
		{ "weight set", NOTIFY_STEP },	   { "paused", NOTIFY_PAUSED },
		{ "pause", NOTIFY_PAUSED },	   { "progress deadline exceeded", NOTIFY_PAUSED },
		{ "inconclusive", NOTIFY_PAUSED }, { "promoted", NOTIFY_PROMOTED },
		{ "aborted", NOTIFY_ABORTED },
	};
	size_t i;

	for (i = 0; event && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(event, map[i].event))
			return (int)map[i].kind;
	return -1;
}

/* Queue the webhooks' notifications of r for kind (copies; never waits on a receiver). */
static void notify(struct agent *a, const struct agent_rollout *r, enum notify_event kind)
{
	struct notify_info info = {
		.rollout = r->cfg.name,
		.revision = r->cfg.canary.revision,
		.event = kind,
		.phase = rollout_phase_name(r->st.phase),
		.step = r->st.step,
		.weight_bp = r->st.weight_bp,
		.message = r->st.message,
	};

	if (!a->notifier || !r->cfg.n_notifications)
		return;
	if (kind == NOTIFY_ABORTED)
		info.verdicts = verdicts_json(r->abort_verdicts, r->n_abort_verdicts);
	notifier_send(a->notifier, r->cfg.notifications, r->cfg.n_notifications, &info);
	json_decref(info.verdicts);
}

/* A rollout that just ended: promoted, or aborted (by the analysis or a person). */
static void note_outcome(struct agent *a, const struct agent_rollout *r,
			 const struct rollout_effects *fx)
{
	if (fx->promoted && r->st.phase == PHASE_HEALTHY)
		queue_record(a, r, OUTCOME_PROMOTED, -1);
	else if (r->st.phase == PHASE_DEGRADED && fx->event && !strcmp(fx->event, "aborted"))
		queue_record(a, r, OUTCOME_ABORTED,
			     r->decision == ANALYSIS_FAIL && r->first_fail_ms ?
				     wall_ms() - r->first_fail_ms :
				     -1);
}

static void apply_effects(struct agent *a, struct agent_rollout *r,
			  const struct rollout_effects *fx)
{
	unsigned int reset = 0;

	if (fx->promoted) {
		/* A new stable set: what was known of the old one's endpoints is moot. */
		health_forget(&r->health);
	}
	if (fx->apply_weight || fx->promoted)
		write_service(a, r);
	if (fx->reset_canary_flows) {
		int err = a->ops->reset_canary_flows(a->ops_dp, r->svc_id, &reset);
		struct canary_service cur;
		char n[16];

		/* The epoch is our own write: not someone else's (notice_external_change). */
		if (!err && !a->ops->service_get(a->ops_dp, &r->cfg.service.key, &cur))
			r->svc_generation = cur.generation;
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
	note_outcome(a, r, fx);
	if (notify_event_of(fx->event) >= 0)
		notify(a, r, (enum notify_event)notify_event_of(fx->event));
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

/*
 * Once traffic is measured: warn about a timed pause after a weight that,
 * at this traffic, cannot gather minRequests canary samples (canaryctl plan
 * says how long it would take to catch a regression there).
 */
static void check_pauses(struct agent_rollout *r)
{
	const struct rollout_cfg *c = &r->cfg;
	__u16 weight = 0;
	int i;

	if (r->pauses_checked || r->service_rps <= 0)
		return;
	r->pauses_checked = true;
	for (i = 0; i < c->n_steps; i++) {
		const struct step_cfg *s = &c->steps[i];
		double samples = r->service_rps * weight / 10000 * (double)s->pause_ms / 1000;
		char step[16], n[32];

		if (s->kind == STEP_SET_WEIGHT) {
			weight = s->weight_bp;
			continue;
		}
		if (s->pause_ms == CONFIG_PAUSE_INDEFINITE ||
		    samples >= (double)c->analysis.min_requests)
			continue;
		snprintf(step, sizeof(step), "%d", i);
		snprintf(n, sizeof(n), "%.0f", samples);
		log_event(CLOG_WARN,
			  "pause too short to judge anything at this traffic: see canaryctl plan",
			  "rollout", c->name, "step", step, "canary_samples", n);
	}
}

/* What strategy.trafficPolicy says now; why (for a blackout) lives in buf. */
static struct rollout_conditions traffic_now(struct agent_rollout *r,
					     const struct canary_metrics now[CANARY_V_COUNT],
					     char *buf, size_t len)
{
	struct rollout_conditions t = { 0 };
	bool was = r->at_peak;

	r->service_rps = rate_window_rps(&r->rates, now, mono_ns() / 1000000);
	check_pauses(r);
	r->at_peak = traffic_at_peak(&r->cfg.traffic, r->service_rps, r->at_peak);
	if (r->at_peak != was) {
		char rps[32];

		snprintf(rps, sizeof(rps), "%.1f", r->service_rps);
		log_event(CLOG_INFO,
			  r->at_peak ? "peak traffic: smaller steps, longer pauses" :
				       "peak traffic over",
			  "rollout", r->cfg.name, "rps", rps);
	}
	t.peak = r->at_peak;
	t.blackout = traffic_blackout(&r->cfg.traffic, wall_ms(), buf, len);
	t.blackout_why = buf;
	t.promotion_approved = r->promotion_approved;
	t.promotion_why = r->promotion_why;
	return t;
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

	if (a->ops->service_get(a->ops_dp, &r->cfg.service.key, &cur) ||
	    cur.generation == r->svc_generation)
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

/*
 * The operator's kill switch (killswitch_v<N>, set by "canaryctl
 * emergency-rollback"): the data path already sends no new flow to the
 * canary. The agent never clears it; it records a rollout that still had
 * canary traffic as aborted (the flows were reset or left to drain by
 * canaryctl) and holds the rollout while the switch is engaged. Returns
 * whether it is.
 */
static bool follow_kill_switch(struct agent *a, struct agent_rollout *r)
{
	struct rollout_effects fx;
	char err[AGENT_ERR_LEN];
	bool was = r->kill_switch;

	r->kill_switch = a->ops->killswitch_engaged(a->ops_dp, &r->cfg.service.key);
	if (r->kill_switch != was)
		log_event(r->kill_switch ? CLOG_WARN : CLOG_INFO,
			  r->kill_switch ? "kill switch engaged: rollout held" :
					   "kill switch cleared",
			  "rollout", r->cfg.name);
	if (!r->kill_switch)
		return false;
	if (rollout_effective_weight(&r->st) == 0 || r->st.phase == PHASE_DEGRADED)
		return true;
	if (rollout_verb(&r->st, &r->cfg, VERB_ABORT, 0, wall_ms(), &fx, err, sizeof(err)))
		return true;
	snprintf(r->st.message, sizeof(r->st.message),
		 "aborted: operator kill switch (canaryctl emergency-rollback)");
	fx.reset_canary_flows = false;
	apply_effects(a, r, &fx);
	return true;
}

/*
 * An abort takes traffic off the canary before anything else: the kernel
 * first, the record afterwards (a restart already reads weight 0 in the map
 * as an abort). The tick saves it once every rollout's kernel work is done,
 * so a slow disk delays no rollback.
 */
static void apply_abort(struct agent *a, struct agent_rollout *r, struct rollout_effects *fx,
			bool defer_save)
{
	fx->changed = !defer_save;
	r->persist_pending = defer_save;
	apply_effects(a, r, fx);
}

/* Keep the step's evidence on disk now and then, cheaply (no fsync). */
static void save_evidence(struct agent *a, struct agent_rollout *r)
{
	if (mono_ns() / 1000000 - r->evidence_saved_ms < EVIDENCE_SAVE_EVERY_MS ||
	    r->state_write_failed)
		return;
	save_state(a, r, false);
}

/* When the step's evidence first failed: the start of time-to-rollback. */
static void note_first_failure(struct agent_rollout *r)
{
	int i;

	for (i = 0; i < r->an.n_last && !r->first_fail_ms; i++)
		if (r->an.last[i].result == VERDICT_FAIL && !r->an.last[i].dry_run)
			r->first_fail_ms = wall_ms();
}

static const char *decision_why(const struct agent_rollout *r)
{
	return r->decision == ANALYSIS_FAIL ? failing_detail(&r->an) : r->an.reason;
}

/* ---- the fleet (--coordinator) ---- */

/* The shared state is the truth: take it, with what it takes in the kernel. */
static void follow_fleet(struct agent *a, struct agent_rollout *r)
{
	struct rollout_state shared;
	struct rollout_effects fx;

	if (!fleet_follow(a->fleet, &r->cfg, &r->st, &shared, &fx))
		return;
	r->st = shared;
	apply_effects(a, r, &fx);
}

/* A node of a fleet judges its own counts with its share of alpha. */
static const struct analysis_cfg *judged_by(struct agent *a, const struct agent_rollout *r)
{
	return a->fleet ? fleet_local_cfg(a->fleet, &r->cfg) : &r->cfg.analysis;
}

static void tick_rollout(struct agent *a, struct agent_rollout *r)
{
	struct canary_metrics now[CANARY_V_COUNT];
	struct rollout_conditions traffic;
	struct rollout_state before;
	struct rollout_effects fx;
	char blackout[128];

	if (r->service_stale)
		write_service(a, r); /* the kernel missed the last write: keep trying */
	if (r->state_write_failed)
		persist(a, r); /* an abort that went ahead unsaved, or a held transition */
	notice_external_change(a, r);
	if (follow_kill_switch(a, r))
		return; /* held: nothing moves until the operator clears it */
	if (read_counters(a, r, now))
		return;
	rate_window_roll(&r->rates, now, mono_ns() / 1000000);
	if (a->fleet)
		follow_fleet(a, r);
	if (!is_running(r))
		return;
	if (!r->st.started_ms)
		r->st.started_ms = wall_ms(); /* saved with the next transition */
	r->decision = analysis_tick(&r->an, judged_by(a, r), now, mono_ns() / 1000000);
	count_verdicts(r);
	note_first_failure(r);
	if (r->decision == ANALYSIS_FAIL)
		keep_abort_verdicts(r);
	/* In a fleet, all but this node's own failure is the leader's to decide. */
	if (a->fleet && r->decision != ANALYSIS_FAIL) {
		fleet_after_tick(a->fleet, &r->cfg, &r->st, now, r->an.base, r->decision);
		return;
	}
	before = r->st;
	traffic = traffic_now(r, now, blackout, sizeof(blackout));
	rollout_tick_traffic(&r->st, &r->cfg, r->decision, decision_why(r), wall_ms(), &traffic,
			     &fx);
	if (r->st.phase == PHASE_DEGRADED && fx.event) {
		log_abort_verdicts(r);
		apply_abort(a, r, &fx, true);
		if (a->fleet)
			fleet_abort(a->fleet, &r->cfg, &r->st);
		return;
	}
	/* A new weight's evidence starts now, and is what the transition saves. */
	if (fx.restart_analysis) {
		restart_analysis(a, r);
		fx.restart_analysis = false;
	}
	if (save_transition(a, r, &before, &fx))
		return; /* held: the same transition is tried again next tick */
	apply_effects(a, r, &fx);
	save_evidence(a, r);
}

/* An abort already in the kernel, to be saved outside the agent's lock. */
struct pending_save {
	char name[CANARY_NAME_LEN];
	struct rollout_state st;
	int err;
};

/* Copies of this tick's aborts. On ENOMEM they are saved here, under the lock. */
static struct pending_save *collect_aborts(struct agent *a, size_t *n)
{
	struct pending_save *saves = NULL;
	size_t i, count = 0;

	*n = 0;
	for (i = 0; i < a->n_rollouts; i++)
		count += a->rollouts[i].persist_pending;
	if (count)
		saves = calloc(count, sizeof(*saves));
	for (i = 0; i < a->n_rollouts; i++) {
		struct agent_rollout *r = &a->rollouts[i];

		if (!r->persist_pending)
			continue;
		r->persist_pending = false;
		if (!saves) {
			persist(a, r);
			continue;
		}
		snprintf(saves[*n].name, sizeof(saves[*n].name), "%s", r->cfg.name);
		saves[(*n)++].st = r->st;
	}
	return saves;
}

/*
 * Called with save_lock held and the agent's lock free; releases save_lock.
 * An abort carries no evidence (the step is over), so the copy is all it takes.
 */
static void save_aborts(struct agent *a, struct pending_save *saves, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		saves[i].err = state_save(a->state_dir, &saves[i].st, NULL, true);
	pthread_mutex_unlock(&a->save_lock);
	pthread_mutex_lock(&a->lock);
	for (i = 0; i < n; i++) {
		struct agent_rollout *r = find_rollout(a->rollouts, a->n_rollouts, saves[i].name);

		if (r) /* a failed save is retried by the next tick */
			note_saved(a, r, saves[i].err);
	}
	pthread_mutex_unlock(&a->lock);
}

void agent_tick(struct agent *a)
{
	__u64 start = mono_ns();
	size_t i;

	struct pending_save *saves;
	size_t n_saves = 0;

	pthread_mutex_lock(&a->lock);
	dp_watch_pins(&a->watch, a->secret_fd);
	for (i = 0; i < a->n_rollouts; i++)
		tick_rollout(a, &a->rollouts[i]);
	saves = collect_aborts(a, &n_saves);
	dp_watch_conntrack(&a->watch, a->ticks);
	a->ticks++;
	a->last_tick_ns = mono_ns() - start;
	__atomic_store_n(&a->tick_done_ms, mono_ns() / 1000000, __ATOMIC_RELEASE);
	/* Taken before the agent's lock is let go: no verb's save can slip in before these. */
	if (n_saves)
		pthread_mutex_lock(&a->save_lock);
	pthread_mutex_unlock(&a->lock);
	if (n_saves)
		save_aborts(a, saves, n_saves);
	free(saves);
	flush_records(a);
}

void agent_stats(struct agent *a, struct agent_stats *out)
{
	pthread_mutex_lock(&a->lock);
	out->conntrack_entries = a->watch.conntrack_entries;
	out->conntrack_capacity = a->watch.conntrack_capacity;
	out->conntrack_created = a->watch.conntrack_created;
	out->conntrack_evictions = a->watch.conntrack_evictions;
	out->ticks = a->ticks;
	out->last_tick_ns = a->last_tick_ns;
	pthread_mutex_unlock(&a->lock);
}

/* Errors as the analysis counts them: 5xx, resets, refusals. */
static __u64 canary_errors(struct agent *a, const struct agent_rollout *r)
{
	struct canary_metrics m;

	if (a->ops->metrics_read(a->ops_dp, r->svc_id, CANARY_V_CANARY, &m))
		return 0;
	return m.responses[5] + m.conns_reset + m.conns_refused;
}

bool agent_canary_errors_rose(struct agent *a)
{
	size_t i, looked = 0, n;
	bool rose = false;

	pthread_mutex_lock(&a->lock);
	n = a->n_rollouts;
	/* Bounded per look, round robin: with many rollouts each is looked at less often. */
	for (i = 0; i < n && looked < ERROR_POLL_ROLLOUTS && a->ops_dp; i++) {
		struct agent_rollout *r = &a->rollouts[(a->error_poll_next + i) % n];
		__u64 errors;

		if (!is_running(r) || !rollout_effective_weight(&r->st))
			continue;
		looked++;
		errors = canary_errors(a, r);
		rose |= errors > r->canary_errors_seen;
		r->canary_errors_seen = errors;
	}
	a->error_poll_next = n ? (a->error_poll_next + i) % n : 0;
	pthread_mutex_unlock(&a->lock);
	return rose;
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

		if (verb != VERB_ABORT &&
		    a->ops->killswitch_engaged(a->ops_dp, &r->cfg.service.key)) {
			snprintf(err, errlen,
				 "the operator's kill switch is engaged for \"%s\": run "
				 "\"canaryctl emergency-clear %s\" first",
				 name, name);
			pthread_mutex_unlock(&a->lock);
			return -EPERM; /* 409: the operator holds it */
		}
		if (a->fleet && verb != VERB_ABORT) {
			/* The fleet's rollout: every node follows what is written. */
			rc = fleet_verb(a->fleet, &r->cfg, verb, weight_bp, err, errlen);
			pthread_mutex_unlock(&a->lock);
			return rc;
		}
		rc = rollout_verb(&r->st, &r->cfg, verb, weight_bp, wall_ms(), &fx, err, errlen);
		if (!rc && verb == VERB_ABORT) {
			apply_abort(a, r, &fx, false);
			if (a->fleet)
				fleet_abort(a->fleet, &r->cfg, &r->st);
			pthread_mutex_unlock(&a->lock);
			flush_records(a);
			return 0;
		}
		if (!rc && fx.restart_analysis) {
			restart_analysis(a, r);
			fx.restart_analysis = false;
		}
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
	flush_records(a);
	return rc;
}

/* ---- external metrics ---- */

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
		m = external_due(&r->ext, an, now);
		if (m < 0)
			continue;
		snprintf(job->rollout, sizeof(job->rollout), "%s", r->cfg.name);
		job->metric = m;
		snprintf(job->address, sizeof(job->address), "%s", an->metrics[m].prom_address);
		snprintf(job->query, sizeof(job->query), "%s", an->metrics[m].prom_query);
		job->auth = an->metrics[m].prom_auth;
		found = 1;
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

/* ---- webhooks: analysis webhooks and the pre-promotion hook ---- */

static __u64 analysis_interval_ms(const struct agent_rollout *r)
{
	return (__u64)(r->cfg.analysis.interval_ms > 0 ? r->cfg.analysis.interval_ms : 1000);
}

static void fill_hook_job(const struct agent_rollout *r, int metric, const char *url,
			  __s64 timeout_ms, struct hook_job *job)
{
	json_t *body;
	size_t len;

	snprintf(job->rollout, sizeof(job->rollout), "%s", r->cfg.name);
	job->metric = metric;
	snprintf(job->url, sizeof(job->url), "%s", url);
	job->timeout_ms = timeout_ms;
	body = json_pack("{s:s, s:s, s:s, s:i, s:f, s:s, s:s}", "rollout", r->cfg.name, "revision",
			 r->cfg.canary.revision, "phase", rollout_phase_name(r->st.phase), "step",
			 r->st.step, "weight", r->st.weight_bp / 100.0, "hook",
			 metric < 0 ? "pre-promotion" : "analysis", "metric",
			 metric < 0 ? "" : r->cfg.analysis.metrics[metric].name);
	len = body ? json_dumpb(body, job->body, sizeof(job->body) - 1, JSON_COMPACT) : 0;
	job->body[len < sizeof(job->body) ? len : 0] = '\0';
	json_decref(body);
}

/* A due call of r, if any; schedules the one after it an analysis interval later. */
static bool hook_due(struct agent_rollout *r, __u64 now, struct hook_job *job)
{
	const struct analysis_cfg *an = &r->cfg.analysis;
	int m;

	if (r->st.awaiting_promotion && !r->promotion_approved && r->promotion_next_ms <= now) {
		r->promotion_next_ms = now + analysis_interval_ms(r);
		fill_hook_job(r, -1, r->cfg.pre_promotion_url, r->cfg.pre_promotion_timeout_ms,
			      job);
		return true;
	}
	for (m = 0; m < an->n_metrics && m < CONFIG_MAX_METRICS; m++) {
		if (an->metrics[m].kind != METRIC_WEBHOOK || r->hook_next_ms[m] > now)
			continue;
		r->hook_next_ms[m] = now + analysis_interval_ms(r);
		fill_hook_job(r, m, an->metrics[m].hook_url, an->metrics[m].hook_timeout_ms, job);
		return true;
	}
	return false;
}

int agent_hook_next(struct agent *a, struct hook_job *job)
{
	__u64 now = mono_ns() / 1000000;
	int found = 0;
	size_t i;

	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->n_rollouts && !found; i++)
		if (is_running(&a->rollouts[i]))
			found = hook_due(&a->rollouts[i], now, job);
	pthread_mutex_unlock(&a->lock);
	return found;
}

static void note_promotion_answer(struct agent_rollout *r, bool ok, long status, const char *err)
{
	if (ok)
		snprintf(r->promotion_why, sizeof(r->promotion_why), "it answered HTTP %ld",
			 status);
	else
		snprintf(r->promotion_why, sizeof(r->promotion_why), "%.100s",
			 err && *err ? err : "no answer");
	r->promotion_approved = ok && status >= 200 && status < 300;
	log_event(r->promotion_approved ? CLOG_INFO : CLOG_WARN, "pre-promotion hook", "rollout",
		  r->cfg.name, "answer", r->promotion_why);
}

void agent_hook_result(struct agent *a, const struct hook_job *job, bool ok, long status,
		       const char *err)
{
	struct agent_rollout *r;

	pthread_mutex_lock(&a->lock);
	r = find_rollout(a->rollouts, a->n_rollouts, job->rollout);
	/* The config may have changed while the hook ran: drop a stale answer. */
	if (r && is_running(r) && job->metric < 0 && r->st.awaiting_promotion &&
	    !strcmp(r->cfg.pre_promotion_url, job->url))
		note_promotion_answer(r, ok, status, err);
	else if (r && is_running(r) && job->metric >= 0 &&
		 job->metric < r->cfg.analysis.n_metrics &&
		 r->cfg.analysis.metrics[job->metric].kind == METRIC_WEBHOOK &&
		 !strcmp(r->cfg.analysis.metrics[job->metric].hook_url, job->url))
		analysis_external(&r->an, &r->cfg.analysis, job->metric, ok, (double)status, err);
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

		if (!health_due(&r->health, &r->cfg.health, now))
			continue;
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

			if (!health_update(&r->health, &r->cfg.health, i, ok[i]))
				continue;
			changed = true;
			format_endpoint(job->endpoints[i].addr, job->endpoints[i].port, ep,
					sizeof(ep));
			log_event(r->health.down[i] ? CLOG_WARN : CLOG_INFO,
				  r->health.down[i] ? "stable endpoint down: no new connections" :
						      "stable endpoint up again",
				  "rollout", r->cfg.name, "endpoint", ep);
		}
		if (changed)
			write_service(a, r);
	}
	pthread_mutex_unlock(&a->lock);
}

/* ---- endpoints from Kubernetes Services ---- */

/*
 * Version v takes ready[0..n) and draining[0..d) when it names ns/service;
 * true when that changed it.
 */
static bool take_endpoints(const struct agent_rollout *r, struct version_cfg *v, const char *ns,
			   const char *service, const struct canary_backend *ready, int n,
			   const struct canary_backend *draining, int d)
{
	if (strcmp(v->service, service) != 0 || strcmp(r->cfg.ns, ns) != 0 ||
	    (same_endpoints(v->endpoints, v->n_endpoints, ready, n) &&
	     same_endpoints(v->draining, v->n_draining, draining, d)))
		return false;
	memset(v->endpoints, 0, sizeof(v->endpoints));
	memset(v->draining, 0, sizeof(v->draining));
	memcpy(v->endpoints, ready, (size_t)n * sizeof(*ready));
	if (d)
		memcpy(v->draining, draining, (size_t)d * sizeof(*draining));
	v->n_endpoints = (__u8)n;
	v->n_draining = (__u8)d;
	return true;
}

void agent_set_service_endpoints(struct agent *a, const char *ns, const char *service,
				 const struct canary_backend *ready, int n,
				 const struct canary_backend *draining, int d)
{
	char count[16], drain[16];
	size_t i;

	if (n <= 0 || d < 0 || n + d > CANARY_MAX_BACKENDS)
		return;
	snprintf(count, sizeof(count), "%d", n);
	snprintf(drain, sizeof(drain), "%d", d);
	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->n_rollouts; i++) {
		struct agent_rollout *r = &a->rollouts[i];
		const struct version_cfg *stable = stable_set(r);
		bool st = take_endpoints(r, &r->cfg.stable, ns, service, ready, n, draining, d);
		bool cn = take_endpoints(r, &r->cfg.canary, ns, service, ready, n, draining, d);

		if (!st && !cn)
			continue;
		/* Health checks count by index: a new stable list starts them afresh. */
		if ((st && stable == &r->cfg.stable) || (cn && stable == &r->cfg.canary))
			health_forget(&r->health);
		log_event(CLOG_INFO, "endpoints programmed from service", "rollout", r->cfg.name,
			  "service", service, "version",
			  st && cn ? "stable,canary" : (st ? "stable" : "canary"), "endpoints",
			  count, "draining", drain);
		write_service(a, r);
	}
	pthread_mutex_unlock(&a->lock);
}

/* ---- reports ---- */

/* The read-only view of r that report.c and metrics.c get, valid under the lock. */
static void view_of(const struct agent_rollout *r, struct rollout_view *v)
{
	*v = (struct rollout_view){
		.cfg = &r->cfg,
		.st = &r->st,
		.an = &r->an,
		.rates = &r->rates,
		.decision = r->decision,
		.abort_verdicts = r->abort_verdicts,
		.n_abort_verdicts = r->n_abort_verdicts,
		.service_rps = r->service_rps,
		.at_peak = r->at_peak,
		.kill_switch = r->kill_switch,
		.verdict_counts = r->verdict_counts,
	};
}

static json_t *rollout_json_locked(struct agent *a, const struct agent_rollout *r)
{
	struct canary_metrics now[CANARY_V_COUNT];
	struct rollout_view v;
	json_t *obj;

	if (read_counters(a, r, now))
		memset(now, 0, sizeof(now));
	view_of(r, &v);
	obj = report_rollout(&v, now, mono_ns() / 1000000, wall_ms());
	if (obj)
		json_object_set_new(
			obj, "kill_switch",
			json_boolean(a->ops->killswitch_engaged(a->ops_dp, &r->cfg.service.key)));
	if (obj && a->fleet)
		json_object_set_new(obj, "fleet", fleet_status_json(a->fleet, r->cfg.name));
	return obj;
}

void agent_each_rollout(struct agent *a,
			void (*fn)(const struct rollout_view *r,
				   const struct canary_metrics now[CANARY_V_COUNT], void *arg),
			void *arg)
{
	struct canary_metrics now[CANARY_V_COUNT];
	struct rollout_view v;
	size_t i;

	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->n_rollouts; i++) {
		if (read_counters(a, &a->rollouts[i], now))
			memset(now, 0, sizeof(now));
		view_of(&a->rollouts[i], &v);
		fn(&v, now, arg);
	}
	pthread_mutex_unlock(&a->lock);
}

json_t *agent_history_json(struct agent *a, const char *name)
{
	return a->delivery ? delivery_history(a->delivery, name) : NULL;
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

	if (a->ops->service_get(a->ops_dp, &r->cfg.service.key, &cur) || cur.weight != 0 ||
	    rollout_effective_weight(&r->st) == 0)
		return;
	if (rollout_verb(&r->st, &r->cfg, VERB_ABORT, 0, wall_ms(), &fx, err, sizeof(err)))
		return;
	snprintf(r->st.message, sizeof(r->st.message),
		 "aborted: weight 0 found in the pinned map at start-up (emergency rollback)");
	log_rollout(CLOG_WARN, "aborted", r);
	persist(a, r);
}

static bool same_spec(const void *a, const void *b, size_t len)
{
	return !memcmp(a, b, len); /* configs are zeroed before parsing: padding too */
}

/*
 * The same rollout, reloaded. It keeps its state and, when its analysis
 * and steps are unchanged, its evidence: re-applying a config must not
 * reset a judgement in progress. Returns whether the analysis must restart.
 */
static bool keep_running(struct agent *a, struct agent_rollout *nr, const struct agent_rollout *old)
{
	struct rollout_effects fx;

	nr->st = old->st;
	nr->an = old->an;
	nr->decision = old->decision;
	nr->state_write_failed = old->state_write_failed;
	nr->service_stale = old->service_stale;
	nr->svc_id = old->svc_id;
	nr->svc_generation = old->svc_generation;
	nr->evidence_saved_ms = old->evidence_saved_ms;
	nr->evidence_valid = old->evidence_valid;
	nr->n_abort_verdicts = old->n_abort_verdicts;
	nr->rates = old->rates;
	memcpy(nr->verdict_counts, old->verdict_counts, sizeof(old->verdict_counts));
	nr->ext = old->ext;
	memcpy(nr->hook_next_ms, old->hook_next_ms, sizeof(old->hook_next_ms));
	nr->promotion_next_ms = old->promotion_next_ms;
	nr->promotion_approved = old->promotion_approved;
	memcpy(nr->promotion_why, old->promotion_why, sizeof(old->promotion_why));
	if (same_endpoints(stable_set(nr)->endpoints, stable_set(nr)->n_endpoints,
			   stable_set(old)->endpoints, stable_set(old)->n_endpoints))
		health_keep(&nr->health, &old->health);
	memcpy(nr->abort_verdicts, old->abort_verdicts, sizeof(old->abort_verdicts));
	if (nr->st.steps_fingerprint != rollout_steps_fingerprint(&nr->cfg)) {
		rollout_steps_changed(&nr->st, &nr->cfg, &fx);
		log_rollout(CLOG_WARN, fx.event, nr);
		persist(a, nr);
		return fx.restart_analysis;
	}
	if (!same_spec(&nr->cfg.analysis, &old->cfg.analysis, sizeof(nr->cfg.analysis))) {
		log_rollout(CLOG_INFO, "analysis changed: judging the step afresh", nr);
		return true;
	}
	return false;
}

/*
 * A new canary while the last one was promoted, and spec.stable still names
 * the revision before it: stable traffic goes back to that revision's
 * endpoints. That is what the file says, so it is done, loudly.
 */
static void warn_stale_stable(struct agent_rollout *nr, enum rollout_phase old_phase,
			      const char *promoted)
{
	if (old_phase != PHASE_HEALTHY || !promoted[0] ||
	    !strcmp(nr->cfg.stable.revision, promoted))
		return;
	log_event(CLOG_WARN,
		  "spec.stable does not name the promoted revision: stable traffic goes to "
		  "spec.stable's endpoints",
		  "rollout", nr->cfg.name, "promoted", promoted, "stable", nr->cfg.stable.revision,
		  "canary", nr->cfg.canary.revision);
	snprintf(nr->st.message, sizeof(nr->st.message),
		 "warning: %.60s was promoted, but spec.stable names %.60s: stable traffic goes "
		 "to %.60s",
		 promoted, nr->cfg.stable.revision, nr->cfg.stable.revision);
}

static void start_new(struct agent *a, struct agent_rollout *nr, enum rollout_phase prev_phase,
		      const char *prev_canary)
{
	rollout_init(&nr->st, &nr->cfg);
	warn_stale_stable(nr, prev_phase, prev_canary);
	log_rollout(CLOG_INFO, "rollout started", nr);
	notify(a, nr, NOTIFY_STARTED);
	persist(a, nr);
}

/* Do the backends of version v in the map equal these endpoints? */
static bool map_has(const struct canary_service *svc, int v, const struct version_cfg *ver)
{
	return same_endpoints(svc->backends[v], svc->n_backends[v], ver->endpoints,
			      ver->n_endpoints);
}

/*
 * No usable state file, but the pinned map holds this rollout's service: it
 * was running. Never move traffic on missing state: take the weight the
 * kernel carries and hold the rollout for a person. Returns false when the
 * map has nothing to go on (a new rollout may start).
 */
static bool reconstruct_from_map(struct agent *a, struct agent_rollout *nr, const char *why)
{
	struct canary_service cur;
	struct rollout_effects fx;

	if (!a->ops_dp || a->ops->service_get(a->ops_dp, &nr->cfg.service.key, &cur))
		return false;
	rollout_init(&nr->st, &nr->cfg);
	if (cur.weight == 0 && map_has(&cur, CANARY_V_STABLE, &nr->cfg.canary)) {
		nr->st.phase = PHASE_HEALTHY;
		nr->st.step = nr->cfg.n_steps;
		snprintf(nr->st.message, sizeof(nr->st.message),
			 "%s: the pinned map shows the canary promoted", why);
	} else {
		char w[16];

		nr->st.weight_bp = map_has(&cur, CANARY_V_CANARY, &nr->cfg.canary) ? cur.weight : 0;
		rollout_steps_changed(&nr->st, &nr->cfg, &fx);
		nr->st.user_paused = true;
		nr->st.phase = PHASE_PAUSED;
		format_weight(nr->st.weight_bp, w, sizeof(w));
		snprintf(nr->st.message, sizeof(nr->st.message),
			 "%s: holding at %s%%, the weight in the pinned map; resume to go on "
			 "from step %d, or abort",
			 why, w, nr->st.step);
	}
	log_rollout(CLOG_ERROR, "rollout state reconstructed from the pinned map", nr);
	persist(a, nr);
	return true;
}

static bool same_identity(const struct rollout_state *disk, const struct rollout_cfg *cfg)
{
	if (disk->canary_revision[0])
		return disk->canary_fingerprint == rollout_canary_fingerprint(cfg);
	return disk->canary_fingerprint == rollout_legacy_fingerprint(cfg); /* format 1 */
}

/* Resumed from disk: the evidence of the step, or a fresh analysis. */
static bool resume(struct agent *a, struct agent_rollout *nr, const struct rollout_state *disk,
		   json_t *ev)
{
	struct rollout_effects fx;
	bool restart = true;

	nr->st = *disk;
	nr->st.canary_fingerprint = rollout_canary_fingerprint(&nr->cfg);
	snprintf(nr->st.canary_revision, sizeof(nr->st.canary_revision), "%s",
		 nr->cfg.canary.revision);
	log_rollout(CLOG_INFO, "rollout resumed", nr);
	if (nr->st.steps_fingerprint != rollout_steps_fingerprint(&nr->cfg) &&
	    (disk->steps_fingerprint || disk->step > nr->cfg.n_steps)) {
		rollout_steps_changed(&nr->st, &nr->cfg, &fx);
		log_rollout(CLOG_WARN, fx.event, nr);
	} else if (ev && !evidence_from_json(ev, &nr->an, &nr->cfg.analysis, mono_ns() / 1000000,
					     wall_ms())) {
		restart = false; /* judge what the kernel counted while we were away */
		nr->evidence_valid = true;
		log_rollout(CLOG_INFO, "analysis evidence restored", nr);
	}
	nr->st.steps_fingerprint = rollout_steps_fingerprint(&nr->cfg);
	respect_map_rollback(a, nr);
	persist(a, nr);
	return restart;
}

static bool from_disk(struct agent *a, struct agent_rollout *nr)
{
	struct rollout_state disk;
	json_t *ev = NULL;
	char why[128];
	int err;

	err = state_load(a->state_dir, nr->cfg.name, &disk, &ev);
	/* A rollout back in the config after a removal: its state was set aside. */
	if (err == -ENOENT && !state_take_back(a->state_dir, nr->cfg.name, "removed"))
		err = state_load(a->state_dir, nr->cfg.name, &disk, &ev);
	if (!err && same_identity(&disk, &nr->cfg)) {
		bool restart = resume(a, nr, &disk, ev);

		json_decref(ev);
		return restart;
	}
	json_decref(ev);
	if (!err) { /* the file is about another canary: this one is new */
		start_new(a, nr, disk.phase, disk.canary_revision);
		return true;
	}
	if (err != -ENOENT) {
		char aside[32];

		snprintf(aside, sizeof(aside), "bad-%lld", (long long)wall_ms());
		state_set_aside(a->state_dir, nr->cfg.name, aside);
		log_event(CLOG_ERROR, "rollout state file unreadable: kept aside", "rollout",
			  nr->cfg.name, "kept_as", aside, "error",
			  err == -EPROTONOSUPPORT ? "written by a newer canaryd" : strerror(-err));
	}
	snprintf(why, sizeof(why), "state file %s",
		 err == -ENOENT ? "missing" : "unreadable (kept aside)");
	if (!reconstruct_from_map(a, nr, why))
		start_new(a, nr, PHASE_PROGRESSING, "");
	return true;
}

/*
 * The state of a configured rollout: kept, resumed from disk, or new.
 * Returns whether its analysis must start afresh.
 */
static bool adopt_state(struct agent *a, struct agent_rollout *nr, const struct agent_rollout *old)
{
	if (old && old->st.canary_fingerprint == rollout_canary_fingerprint(&nr->cfg))
		return keep_running(a, nr, old);
	if (old) {
		log_rollout(CLOG_INFO, "superseded", old);
		if (is_running(old)) {
			queue_record(a, old, OUTCOME_SUPERSEDED, -1);
			notify(a, old, NOTIFY_SUPERSEDED);
		}
		start_new(a, nr, old->st.phase, old->cfg.canary.revision);
		return true;
	}
	return from_disk(a, nr);
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
	a->ops->service_each(a->ops_dp, collect_stale, w);
	for (i = 0; i < w->n; i++) {
		a->ops->service_delete(a->ops_dp, &w->stale[i]);
		log_event(CLOG_INFO, "service removed", "vip",
			  format_endpoint(w->stale[i].vip, w->stale[i].port, vip, sizeof(vip)));
	}
	free(w);
}

static bool in_config(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_rollouts; i++)
		if (!strcmp(cfg->rollouts[i].name, name))
			return true;
	return false;
}

static int count_pinned(const struct canary_service_key *key, const struct canary_service *svc,
			void *arg)
{
	(void)key;
	(void)svc;
	++*(unsigned int *)arg;
	return 0;
}

/* Refuse a configuration that takes every service off the node, or too many rollouts. */
static int check_removals(struct agent *a, const struct config *cfg, char *err, size_t errlen)
{
	unsigned int removed = 0, pinned = 0;
	size_t i;

	for (i = 0; i < a->n_rollouts; i++)
		removed += !in_config(cfg, a->rollouts[i].cfg.name);
	if (a->ops_dp)
		a->ops->service_each(a->ops_dp, count_pinned, &pinned);
	if (!cfg->n_rollouts && (a->n_rollouts || pinned) && !a->allow_empty_config) {
		snprintf(err, errlen,
			 "the configuration has no rollout and would remove %zu running rollouts "
			 "and %u services from the node (start with --allow-empty-config to allow)",
			 a->n_rollouts, pinned);
		return -ECANCELED;
	}
	if (a->max_removals && removed > a->max_removals) {
		snprintf(err, errlen,
			 "the configuration would remove %u rollouts, more than --max-removals %u",
			 removed, a->max_removals);
		return -ECANCELED;
	}
	return 0;
}

/* A removed rollout leaves the maps; its state is set aside, never deleted. */
static void retire_removed(struct agent *a, const struct config *cfg)
{
	size_t i;

	for (i = 0; i < a->n_rollouts; i++) {
		const char *name = a->rollouts[i].cfg.name;

		if (in_config(cfg, name))
			continue;
		state_set_aside(a->state_dir, name, "removed");
		log_event(CLOG_WARN, "rollout removed: state kept aside", "rollout", name,
			  "kept_as", "removed");
	}
}

/* Write the service only when what the kernel would get differs. */
static void sync_service(struct agent *a, struct agent_rollout *nr, const struct agent_rollout *old)
{
	struct canary_service want, had;

	if (old && !old->service_stale && old->svc_id == nr->svc_id) {
		fill_service(a, nr, &want);
		fill_service(a, old, &had);
		if (same_spec(&want, &had, sizeof(want)) &&
		    same_spec(nr->cfg.overrides, old->cfg.overrides, sizeof(nr->cfg.overrides)))
			return;
	}
	write_service(a, nr);
}

/*
 * A (re)starting node of a fleet takes the shared state before its maps
 * are written. Returns whether the analysis must start afresh.
 */
static bool take_fleet_state(struct agent *a, struct agent_rollout *nr)
{
	struct rollout_state shared;
	struct rollout_effects fx;

	if (!fleet_follow(a->fleet, &nr->cfg, &nr->st, &shared, &fx))
		return false;
	nr->st = shared;
	log_rollout(CLOG_INFO, "state taken from the fleet", nr);
	persist(a, nr);
	return fx.restart_analysis;
}

int agent_apply_config(struct agent *a, const struct config *cfg, char *err, size_t errlen)
{
	struct agent_rollout *next;
	int rc;
	size_t i;

	next = calloc(cfg->n_rollouts ? cfg->n_rollouts : 1, sizeof(*next));
	if (!next)
		return -ENOMEM;
	pthread_mutex_lock(&a->lock);
	rc = check_removals(a, cfg, err, errlen);
	if (rc) {
		pthread_mutex_unlock(&a->lock);
		free(next);
		return rc;
	}
	for (i = 0; i < cfg->n_rollouts; i++) {
		struct agent_rollout *nr = &next[i];
		const struct agent_rollout *old =
			find_rollout(a->rollouts, a->n_rollouts, cfg->rollouts[i].name);

		bool restart;

		nr->cfg = cfg->rollouts[i];
		restart = adopt_state(a, nr, old);
		if (a->fleet)
			restart |= take_fleet_state(a, nr);
		sync_service(a, nr,
			     old && old->st.canary_fingerprint == nr->st.canary_fingerprint ? old :
											      NULL);
		if (restart)
			restart_analysis(a, nr); /* after the write: the service has its id */
	}
	retire_removed(a, cfg);
	remove_stale_services(a, cfg);
	free(a->rollouts);
	a->rollouts = next;
	a->n_rollouts = cfg->n_rollouts;
	pthread_mutex_unlock(&a->lock);
	flush_records(a);
	return 0;
}
