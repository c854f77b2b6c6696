/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rollout configuration: YAML documents of kind Rollout (see
 * docs/configuration.md), parsed strictly. Durations are kept in
 * milliseconds, latencies in microseconds, rates as fractions (0..1).
 */
#ifndef CANARY_CONFIG_H
#define CANARY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "canary_structs.h"
#include "netparse.h"

#define CONFIG_MAX_STEPS		    32
#define CONFIG_MAX_METRICS		    16
#define CONFIG_MAX_OVERRIDES		    64
#define CONFIG_REVISION_LEN		    64
#define CONFIG_ERR_LEN			    512
#define CONFIG_PAUSE_INDEFINITE		    (-1)
#define CONFIG_NO_DEADLINE		    (-1)
#define CONFIG_DEFAULT_PROGRESS_DEADLINE_MS 600000

enum metric_kind {
	METRIC_ERROR_RATE,  /* max: fraction */
	METRIC_LATENCY_P50, /* max: microseconds */
	METRIC_LATENCY_P95,
	METRIC_LATENCY_P99,
	METRIC_RESET_RATE,	     /* max: fraction */
	METRIC_COMPARE_ERROR_RATE,   /* canary vs stable, sequential test */
	METRIC_COMPARE_LATENCY,	     /* canary vs stable; max_increase: fraction */
	METRIC_COMPARE_LATENCY_TAIL, /* canary vs stable above a quantile; quantile, max_increase */
	METRIC_PROMETHEUS,	     /* an external query with a successCondition */
	METRIC_WEBHOOK,		     /* an HTTP endpoint: 2xx passes (Flagger's rollout hook) */
	METRIC_KIND_COUNT,
};

#define CONFIG_METRIC_NAME_LEN		  48
#define CONFIG_PROM_ADDRESS_LEN		  128
#define CONFIG_PROM_QUERY_LEN		  512
#define CONFIG_PROM_PATH_LEN		  256
#define CONFIG_DEFAULT_CONSECUTIVE_ERRORS 4
#define CONFIG_DEFAULT_TAIL_QUANTILE	  0.99
#define CONFIG_DEFAULT_MAX_INCREASE	  0.1

/* successCondition: "result OP NUMBER" */
enum cond_op {
	COND_LT,
	COND_LE,
	COND_GT,
	COND_GE,
	COND_EQ,
	COND_NE,
};

/*
 * How a Prometheus over https is reached: which CAs vouch for it, the
 * client certificate it asks for, and a bearer token. Files are named, not
 * read, here: the query worker reads them for every query, so a renewed
 * certificate or a rotated token is taken without a reload.
 */
struct prom_tls_auth {
	char ca_file[CONFIG_PROM_PATH_LEN];   /* "": the system's CAs */
	char cert_file[CONFIG_PROM_PATH_LEN]; /* client certificate, with key_file */
	char key_file[CONFIG_PROM_PATH_LEN];
	char token_file[CONFIG_PROM_PATH_LEN]; /* "Authorization: Bearer", https only */
	bool insecure_skip_verify;	       /* no check of the server's certificate */
};

struct metric_cfg {
	enum metric_kind kind;
	char name[CONFIG_METRIC_NAME_LEN]; /* as written; chosen freely for prometheus metrics */
	double max;			   /* absolute gates */
	/* compareLatency(Tail): tolerated relative increase, default 0.1 (Tail: 0) */
	double max_increase;
	/* METRIC_PROMETHEUS only */
	char prom_address[CONFIG_PROM_ADDRESS_LEN]; /* http://host:port */
	char prom_query[CONFIG_PROM_QUERY_LEN];
	struct prom_tls_auth prom_auth;
	enum cond_op cond_op;
	double cond_value;
	__u32 consecutive_error_limit; /* query errors in a row that abort */
	/* METRIC_WEBHOOK only */
	char hook_url[256];
	__s64 hook_timeout_ms;
	/* Failed measurements tolerated (more abort); CONFIG_INHERIT: the analysis'. */
	__s64 failure_limit;
	bool dry_run;	 /* judged and shown, but never aborts or holds the rollout */
	double quantile; /* compareLatencyTail: the quantile compared, default 0.99 */
};

/* A per-metric setting that takes the analysis-wide value. */
#define CONFIG_INHERIT (-1)

/* Does value meet the metric's "result OP NUMBER"? */
bool metric_condition_holds(const struct metric_cfg *m, double value);
/* "result < 0.05", for messages. */
void metric_condition_format(const struct metric_cfg *m, char *buf, size_t len);

enum step_kind {
	STEP_SET_WEIGHT,
	STEP_PAUSE,
};

struct step_cfg {
	enum step_kind kind;
	__u16 weight_bp; /* setWeight, basis points */
	__s64 pause_ms;	 /* pause; CONFIG_PAUSE_INDEFINITE waits for a human */
};

struct analysis_cfg {
	__s64 interval_ms;   /* default 1000 */
	__u64 min_requests;  /* default 50 */
	__u32 failure_limit; /* default 1 */
	double confidence;   /* default 0.99 */
	struct metric_cfg metrics[CONFIG_MAX_METRICS];
	int n_metrics;
	/* Inconclusive gate windows in a row that pause the rollout; 0: no limit. */
	__u32 inconclusive_limit;
};

struct override_cfg {
	__be32 addr;
	__u8 prefixlen;
	enum canary_version version;
};

enum abort_connections {
	ABORT_CONNECTIONS_RESET, /* default */
	ABORT_CONNECTIONS_DRAIN,
};

/* A Kubernetes object name of a Service or namespace (a DNS-1123 label). */
#define CONFIG_KUBE_NAME_LEN 64

/*
 * Are the n characters at s a DNS-1123 label: 1..63 of a-z, 0-9 and '-',
 * starting and ending with a letter or digit?
 */
bool config_dns_label(const char *s, size_t n);

/*
 * A version's backends: the endpoints listed in the file, or (service set)
 * the ready endpoints of that Kubernetes Service's EndpointSlices, which the
 * agent writes into endpoints as they change (kubeeps.h). Exactly one of the
 * two is given in the file. A Service's terminating endpoints that still
 * serve are draining: they keep their flows and get no new one; a file's
 * endpoints never drain.
 */
struct version_cfg {
	char revision[CONFIG_REVISION_LEN];
	struct canary_backend endpoints[CANARY_MAX_BACKENDS];
	__u8 n_endpoints;
	/* n_endpoints + n_draining <= CANARY_MAX_BACKENDS (one list in the map). */
	struct canary_backend draining[CANARY_MAX_BACKENDS];
	__u8 n_draining;
	char service[CONFIG_KUBE_NAME_LEN]; /* "": the endpoints are static */
};

/*
 * Optional active TCP checks of the stable endpoints: one that fails
 * failure_threshold checks in a row gets no new connections until it
 * answers again. Canary endpoints are not routed around: a dying canary is
 * a signal the analysis must see.
 */
struct health_cfg {
	bool enabled;
	__s64 interval_ms;	 /* default 1000 */
	__s64 timeout_ms;	 /* default 200 */
	__u32 failure_threshold; /* default 2 */
};

#define CONFIG_MAX_BLACKOUTS 8

/*
 * A window in which the rollout does not move forward (it may still abort
 * on bad evidence): on the days in `days` (bit 0 Sunday ... bit 6 Saturday),
 * from from_min to to_min minutes after midnight (to < from crosses
 * midnight; from == to == -1: the whole day), in UTC shifted by
 * utc_offset_min, or in the node's local time.
 */
struct blackout_cfg {
	__u8 days;
	__s16 from_min;
	__s16 to_min;
	bool local_time;
	__s32 utc_offset_min;
};

/* spec.strategy.trafficPolicy: smaller steps and longer pauses at peak traffic. */
struct traffic_policy_cfg {
	double peak_above_rps;	    /* 0: no peak policy */
	__u16 peak_max_increase_bp; /* at peak, a step raises the weight by at most this */
	double pause_factor;	    /* at peak, pauses last this many times longer (>= 1) */
	struct blackout_cfg blackouts[CONFIG_MAX_BLACKOUTS];
	int n_blackouts;
};

/* Transitions a notification may be sent for (spec.notifications[].events). */
enum notify_event {
	NOTIFY_STARTED,
	NOTIFY_STEP, /* a new weight is set */
	NOTIFY_PAUSED,
	NOTIFY_PROMOTED,
	NOTIFY_ABORTED,
	NOTIFY_SUPERSEDED,
	NOTIFY_EVENT_COUNT,
};

enum notify_format {
	NOTIFY_FORMAT_GENERIC, /* the whole event as JSON */
	NOTIFY_FORMAT_SLACK,   /* {"text": "..."}: Slack, Mattermost, Rocket.Chat webhooks */
};

#define CONFIG_MAX_NOTIFICATIONS 8
#define CONFIG_URL_LEN		 256

/* A webhook that gets a JSON POST on the transitions it asks for. */
struct notify_cfg {
	char url[CONFIG_URL_LEN];
	__u32 events; /* BIT(enum notify_event) */
	enum notify_format format;
	__s64 timeout_ms; /* default 2000 */
};

const char *notify_event_name(enum notify_event e);

struct rollout_cfg {
	char name[CANARY_NAME_LEN];
	/* metadata.namespace: where spec.*.service live ("": the agent's default). */
	char ns[CONFIG_KUBE_NAME_LEN];
	char origin[256]; /* "file:line:column" of the document, for messages */
	struct service_spec service;
	/*
	 * spec.service.fromService: the VIP is this Kubernetes Service's
	 * ClusterIP, which the agent reads into service.key before the config is
	 * applied (kubeeps.h); "": service.key.vip is spec.service.vip. Without
	 * port_given the port is the Service's only one.
	 */
	char vip_service[CONFIG_KUBE_NAME_LEN];
	bool port_given;
	struct version_cfg stable;
	struct version_cfg canary;
	enum canary_affinity affinity;
	struct override_cfg overrides[CONFIG_MAX_OVERRIDES];
	int n_overrides;
	struct step_cfg steps[CONFIG_MAX_STEPS];
	int n_steps;
	/* A step waiting this long for a decision pauses; CONFIG_NO_DEADLINE: never. */
	__s64 progress_deadline_ms;
	struct traffic_policy_cfg traffic;
	/* strategy.prePromotion: an HTTP endpoint that must answer 2xx before completion. */
	char pre_promotion_url[256];
	__s64 pre_promotion_timeout_ms;
	struct analysis_cfg analysis;
	struct health_cfg health;
	enum abort_connections abort_connections;
	struct notify_cfg notifications[CONFIG_MAX_NOTIFICATIONS];
	int n_notifications;
	/*
	 * metadata.generation of the Rollout object this spec came from
	 * (--rollouts-from kube), for status.observedGeneration; 0: a file.
	 * Not part of the spec: no comparison of specs looks at it.
	 */
	__s64 generation;
};

struct config {
	struct rollout_cfg *rollouts;
	size_t n_rollouts;
};

/*
 * Load every Rollout document of a file, or of every *.yaml / *.yml file of
 * a directory (sorted by name; hidden files such as Kubernetes' "..data"
 * skipped). On error returns -1 with "file:line:column: field.path: what"
 * in err and leaves out untouched; on success out owns the rollouts.
 */
int config_load(const char *path, struct config *out, char *err, size_t errlen);
/* Same, from a buffer (for tests and fuzzing); name is used in messages. */
int config_parse_buffer(const char *name, const char *buf, size_t len, struct config *out,
			char *err, size_t errlen);
void config_free(struct config *cfg);

const char *metric_kind_name(enum metric_kind kind);

/* Does the rollout take its VIP or a side's endpoints from a Kubernetes Service? */
bool config_uses_services(const struct rollout_cfg *r);

#endif /* CANARY_CONFIG_H */
