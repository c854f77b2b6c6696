/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's rollouts: each configured Rollout with its state machine, its
 * analysis and its service in the kernel maps. The agent reconciles the
 * maps with the configuration, ticks every rollout, and applies what the
 * state machine decides. All entry points take the agent's lock, so the API
 * thread and the tick loop can share it.
 */
#ifndef CANARY_AGENT_H
#define CANARY_AGENT_H

#include <pthread.h>
#include <stdbool.h>

#include "analysis.h"
#include "canary_secret.h"
#include "config.h"
#include "dataplane.h"
#include "dpops.h"
#include "dpwatch.h"
#include "external.h"
#include "healthcheck.h"
#include "delivery.h"
#include "notify.h"
#include "report.h"
#include "rollout.h"

#define AGENT_ERR_LEN 256

struct fleet;

struct agent_rollout {
	struct rollout_cfg cfg;
	struct rollout_state st;
	struct analysis_state an;
	__u32 svc_id;
	__u32 svc_generation;		 /* of the service value we wrote last */
	enum analysis_decision decision; /* of the last tick */
	/* The verdicts behind the last abort, kept for operators. */
	struct verdict abort_verdicts[ANALYSIS_MAX_VERDICTS];
	int n_abort_verdicts;
	bool state_write_failed;  /* the state dir refused a write: hold */
	bool service_stale;	  /* the last write to services_v<N> failed: retried every tick */
	bool kill_switch;	  /* the operator's kill switch, as read at the last tick */
	bool persist_pending;	  /* an abort already in the kernel, saved at the tick's end */
	__u64 evidence_saved_ms;  /* monotonic ms of the last periodic evidence save */
	bool evidence_valid;	  /* an holds a step's evidence (restarted or restored) */
	__u64 canary_errors_seen; /* canary errors at the last look between ticks */
	__s64 first_fail_ms;	  /* wall ms of the step's first failing verdict; 0: none */
	/* Webhooks (hooks.c): when each webhook metric is next called, monotonic ms ... */
	__u64 hook_next_ms[CONFIG_MAX_METRICS];
	/* ... and the pre-promotion hook: next call, its last answer, and a yes. */
	__u64 promotion_next_ms;
	char promotion_why[128];
	bool promotion_approved;
	/* strategy.trafficPolicy: the service's request rate and whether it is at peak. */
	double service_rps;
	bool at_peak;
	bool pauses_checked; /* pauses too short to judge anything were warned about */
	/* Counters 5..10 s ago, for the recent rates operators see. */
	struct rate_window rates;
	/* Active checks of the stable endpoints (spec.healthCheck). */
	struct health_state health;
	/* When each external (Prometheus) metric is next queried. */
	struct external_schedule ext;
	/* Verdicts evaluated, by metric and result, for /metrics. */
	__u64 verdict_counts[METRIC_KIND_COUNT][VERDICT_INCONCLUSIVE + 1];
};

struct agent {
	pthread_mutex_t lock;
	/*
	 * Orders writes to the state directory. Taken inside lock (never the
	 * other way round); the tick holds it alone while it saves aborts, so
	 * a slow disk delays no kernel write and no other rollout's tick.
	 */
	pthread_mutex_t save_lock;
	struct canary_dp
		*dp; /* the kernel's maps, for canaryd's attach and /metrics; NULL in tests */
	/* What the agent reads and writes in the data plane: ops over ops_dp. */
	const struct dp_ops *ops;
	void *ops_dp;
	const char *state_dir;
	const char *bpffs; /* where the maps are pinned, checked every tick */
	/* Key of the rollouts' hash seeds (zero without bpffs: tests) and its pinned map. */
	struct canary_secret secret;
	int secret_fd;
	struct agent_rollout *rollouts;
	size_t n_rollouts;
	__u64 ticks;
	__u64 last_tick_ns; /* duration of the last tick */
	bool ready;	    /* configured and attached */
	/*
	 * A configuration that would take every service off the node is refused
	 * unless allowed (a renamed file must not delete a live VIP); so is one
	 * that removes more than max_removals rollouts, when that is set.
	 */
	bool allow_empty_config;
	unsigned int max_removals; /* 0: no limit */
	/*
	 * Where ended rollouts are recorded (NULL: nowhere). Records are queued
	 * under the lock and written after it is let go: a history file's fsync
	 * must not hold up the tick.
	 */
	size_t error_poll_next; /* where agent_canary_errors_rose goes on */
	struct delivery *delivery;
	struct notifier *notifier; /* webhooks of spec.notifications (NULL: none sent) */
	struct delivery_record *pending_records;
	size_t n_pending_records;
	/* Monotonic ms when the last tick ended (0: none yet), for /healthz: read without the lock. */
	__u64 tick_done_ms;
	/* Pins and conntrack counts of the data path, kept by the tick. */
	struct dp_watch watch;
	/* --coordinator: the fleet decides with this node (fleet.h); NULL: alone. */
	struct fleet *fleet;
};

int agent_init(struct agent *a, struct canary_dp *dp, const char *bpffs, const char *state_dir);
/* The same over any data plane (dp_ops_kernel, or a test double); a->dp stays NULL. */
int agent_init_ops(struct agent *a, const struct dp_ops *ops, void *dp, const char *bpffs,
		   const char *state_dir);
void agent_destroy(struct agent *a);

/* Evidence is saved (without fsync) this often while a rollout is judged. */
#define EVIDENCE_SAVE_EVERY_MS 5000

/*
 * Make the agent and the maps match cfg: new rollouts start (or resume
 * from the state directory), changed canaries start a new rollout, removed
 * rollouts leave the maps (their state files are set aside, not deleted).
 * A rollout whose spec did not change keeps its analysis; one whose steps
 * changed is judged again at its weight (rollout_steps_changed). Returns
 * -ECANCELED, with err saying why, for a configuration that would remove
 * every service or more than max_removals rollouts. Takes ownership of
 * nothing; cfg may be freed.
 */
int agent_apply_config(struct agent *a, const struct config *cfg, char *err, size_t errlen);

/* One tick: read the counters, judge, move each rollout. */
void agent_tick(struct agent *a);

/*
 * Did a judged canary count new errors since the last call? Cheap (one map
 * read per running rollout), so the main loop asks every few milliseconds
 * and ticks at once when it did: strong evidence need not wait for the tick.
 */
bool agent_canary_errors_rose(struct agent *a);
/* Rollouts looked at by one agent_canary_errors_rose call, at most. */
#define ERROR_POLL_ROLLOUTS 64

/*
 * An operator's verb on rollout name. Returns 0, -ENOENT (unknown rollout),
 * -EPERM (invalid transition), -EINVAL (bad argument) or -EAGAIN (the state
 * directory takes no writes: nothing changed); err says why.
 */
int agent_verb(struct agent *a, const char *name, enum rollout_verb verb, __u16 weight_bp,
	       char *err, size_t errlen);

/*
 * Call fn for every rollout's read-only view with its counters read now,
 * under the lock (for /metrics). fn must not call back into the agent.
 */
void agent_each_rollout(struct agent *a,
			void (*fn)(const struct rollout_view *r,
				   const struct canary_metrics now[CANARY_V_COUNT], void *arg),
			void *arg);

/* The agent's own figures for /metrics, one snapshot taken under the lock. */
struct agent_stats {
	unsigned int conntrack_entries;
	__u32 conntrack_capacity;
	__u64 conntrack_created;
	__u64 conntrack_evictions;
	__u64 ticks;
	__u64 last_tick_ns;
};

/* In that snapshot created = entries + evictions (+ expired) holds. */
void agent_stats(struct agent *a, struct agent_stats *out);

/* One external query to run, copied out so it runs without the lock. */
struct external_job {
	char rollout[CANARY_NAME_LEN];
	int metric; /* index into the rollout's analysis metrics */
	char address[CONFIG_PROM_ADDRESS_LEN];
	char query[CONFIG_PROM_QUERY_LEN];
	struct prom_tls_auth auth;
};

/*
 * The next external query that is due (returns 1 and fills job, and
 * schedules the one after it an analysis interval later), or 0.
 */
int agent_external_next(struct agent *a, struct external_job *job);
/* Hand the result of job to its rollout's analysis (if it still exists). */
void agent_external_result(struct agent *a, const struct external_job *job, bool ok, double value,
			   const char *err);

/* One webhook call (a webhook metric, or the pre-promotion hook), copied out. */
struct hook_job {
	char rollout[CANARY_NAME_LEN];
	int metric; /* index of the webhook metric, or -1 for the pre-promotion hook */
	char url[256];
	__s64 timeout_ms;
	char body[512]; /* the JSON POSTed: rollout, revision, phase, step, weight, hook */
};

/* The next webhook call that is due (1, job filled), or 0. */
int agent_hook_next(struct agent *a, struct hook_job *job);
/* Its answer: ok with the HTTP status, or a transport error. */
void agent_hook_result(struct agent *a, const struct hook_job *job, bool ok, long status,
		       const char *err);

/* The stable endpoints of one rollout to check, copied out like external jobs. */
struct health_job {
	char rollout[CANARY_NAME_LEN];
	struct canary_backend endpoints[CANARY_MAX_BACKENDS];
	int n;
	__s64 timeout_ms;
};

/* The next rollout whose health check is due (1, job filled), or 0. */
int agent_health_next(struct agent *a, struct health_job *job);
/* ok[i] for job->endpoints[i]: update failures, route around down endpoints. */
void agent_health_result(struct agent *a, const struct health_job *job, const bool *ok);

/*
 * The ready endpoints of Kubernetes Service ns/service (kubeeps.h) and its
 * draining ones (terminating, still serving): every version of a rollout
 * that names it takes them, and its service is written at once. n > 0: an
 * empty list is never programmed; n + d <= CANARY_MAX_BACKENDS.
 */
void agent_set_service_endpoints(struct agent *a, const char *ns, const char *service,
				 const struct canary_backend *ready, int n,
				 const struct canary_backend *draining, int d);

/* The history of ended revisions of rollout name (a JSON array; NULL without records). */
struct json_t *agent_history_json(struct agent *a, const char *name);

/* JSON of every rollout, or of one (NULL when unknown). Caller json_decref()s. */
struct json_t;
struct json_t *agent_rollouts_json(struct agent *a);
struct json_t *agent_rollout_json(struct agent *a, const char *name);

#endif /* CANARY_AGENT_H */
