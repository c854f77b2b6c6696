/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Judging a canary: absolute gates (limits on the canary's own numbers) and
 * sequential canary-vs-stable tests that stay valid however often they are
 * looked at. See docs/analysis.md for the statistics.
 *
 * The caller feeds cumulative per-version counters (as read from the
 * kernel) every tick; analysis_restart() marks where the samples of the
 * weight being judged begin, so nothing from before it counts.
 */
#ifndef CANARY_ANALYSIS_H
#define CANARY_ANALYSIS_H

#include <stdbool.h>
#include <linux/types.h>

#include "canary_structs.h"
#include "config.h"

enum verdict_result {
	VERDICT_PASS,
	VERDICT_FAIL,
	VERDICT_INCONCLUSIVE, /* too few samples, or not enough evidence yet */
};

/* One metric's verdict, with the numbers behind it. */
struct verdict {
	enum metric_kind metric;
	enum verdict_result result;
	__u64 canary_samples;
	__u64 stable_samples;
	double canary_value; /* rate (0..1) or latency (us) */
	double stable_value; /* comparisons only */
	double limit;	     /* the configured max / max_increase */
	double statistic;    /* test statistic, e.g. log mixture likelihood ratio */
	double threshold;    /* the statistic's decision boundary */
	double z;	/* comparisons: normal-approximation z, for people (not the decision) */
	double rank_u;	/* compareLatency: Mann-Whitney U of canary over (1+f) x stable */
	__u32 failures; /* failed measurements of this metric since the restart */
	bool dry_run;	/* shown, never decides */
	char name[CONFIG_METRIC_NAME_LEN]; /* the metric's name in the config */
	char detail[160];		   /* one human sentence */
};

enum analysis_decision {
	ANALYSIS_HOLD,	       /* not enough evidence, or a metric failing now: never a pass */
	ANALYSIS_PASS,	       /* enough evidence and nothing failing */
	ANALYSIS_FAIL,	       /* a metric's failures exceeded its failureLimit: abort */
	ANALYSIS_INCONCLUSIVE, /* inconclusiveLimit exceeded: a person must decide */
};

#define ANALYSIS_REASON_LEN   256

#define ANALYSIS_MAX_VERDICTS CONFIG_MAX_METRICS
/* Canary/stable error-rate ratios mixed by the compareErrorRate test. */
#define ANALYSIS_ERR_GRID 8

/*
 * Running sums of one version's per-tick counts (errors, or latencies over
 * a threshold) and exposures: Pearson's dispersion of the counts around
 * the version's own rate, i.e. how far they are from independent.
 */
struct count_dispersion {
	double events;	   /* sum of the counts */
	double exposures;  /* sum of the exposures */
	double sq_per_exp; /* sum of count^2 / exposures */
	__u32 ticks;	   /* ticks with exposures */
};

/*
 * Running sums of one version's per-tick placements against the other
 * version (the share of pairs in which it is the slower), weighted by the
 * tick's samples: their spread measures how much a tick's samples move
 * together (one pod's slow tick) beyond independent samples.
 */
struct placement_dispersion {
	double samples; /* sum of n_t */
	double sum;	/* sum of n_t a_t */
	double sum_sq;	/* sum of n_t a_t^2 */
	__u32 ticks;
};

struct analysis_state {
	/* Baselines: counters when the judged weight was applied. */
	struct canary_metrics base[CANARY_V_COUNT];
	__u64 started_ms;
	/* Per metric, as Argo counts: failed measurements since the restart ... */
	__u32 failures[ANALYSIS_MAX_VERDICTS];
	/* ... conclusive gate windows since the restart ... */
	__u32 measured[ANALYSIS_MAX_VERDICTS];
	/* ... and inconclusive gate windows in a row. */
	__u32 inconclusive_run[ANALYSIS_MAX_VERDICTS];
	/* Counters at the previous tick: the error test works on per-tick increments. */
	struct canary_metrics prev[CANARY_V_COUNT];
	/* compareErrorRate: log likelihood ratio of each rate ratio of the mixture. */
	double err_llr[ANALYSIS_ERR_GRID];
	/* A comparison stays failed once it crossed (always-valid p-value) ... */
	bool crossed[ANALYSIS_MAX_VERDICTS];
	/* ... and its message keeps the value it crossed with. */
	double crossed_at[ANALYSIS_MAX_VERDICTS];
	/* External (Prometheus) metrics: errors in a row, and whether the last result passed. */
	__u32 ext_errors[ANALYSIS_MAX_VERDICTS];
	bool ext_passed[ANALYSIS_MAX_VERDICTS];
	struct verdict last[ANALYSIS_MAX_VERDICTS];
	int n_last;
	/*
	 * Each gate's own window: the canary's counters and the time it began.
	 * A window grows until it holds the samples its gate needs.
	 */
	struct canary_metrics gate_base[ANALYSIS_MAX_VERDICTS];
	__u64 gate_start_ms[ANALYSIS_MAX_VERDICTS];
	/* compareErrorRate: per-tick error counts, for their dispersion. */
	struct count_dispersion err_disp[CANARY_V_COUNT];
	/* compareLatency: per-tick placements of each version, for their dispersion. */
	struct placement_dispersion lat_disp[CANARY_V_COUNT];
	/* compareLatencyTail: like compareErrorRate, on latencies above stable's quantile. */
	double tail_llr[ANALYSIS_ERR_GRID];
	struct count_dispersion tail_disp[CANARY_V_COUNT];
	/* Why the decision holds, or on what evidence it passed: one sentence. */
	char reason[ANALYSIS_REASON_LEN];
};

/* Begin judging from these counters (a weight was just applied). */
void analysis_restart(struct analysis_state *st, const struct canary_metrics now[CANARY_V_COUNT],
		      __u64 now_ms);

/*
 * One tick: update with the cumulative counters and decide. The verdicts of
 * this tick are left in st->last (also when the decision is HOLD), and
 * st->reason says what a HOLD waits for or what a PASS rests on.
 *
 * PASS needs all of: no metric failing at this moment; minRequests canary
 * samples; every gate measured at least once; every external metric's last
 * result passing; every comparison passing with minRequests samples on both
 * sides. A comparison short of stable samples (a weight near 100%) cannot
 * vouch: the measured gates then carry the decision, and without a gate the
 * decision holds. dryRun metrics are judged and shown but take no part.
 */
enum analysis_decision analysis_tick(struct analysis_state *st, const struct analysis_cfg *cfg,
				     const struct canary_metrics now[CANARY_V_COUNT], __u64 now_ms);

/*
 * A result of external metric idx (a Prometheus query) arrived: ok with its
 * value, or an error. A value that misses the successCondition is a failed
 * measurement (toward failureLimit); more errors in a row than
 * consecutiveErrorLimit abort. An error or a missing result is never a pass.
 */
void analysis_external(struct analysis_state *st, const struct analysis_cfg *cfg, int idx, bool ok,
		       double value, const char *err);

const char *verdict_result_name(enum verdict_result r);
/* The metric's name as configured ("errorRate", or a prometheus metric's own). */
const char *verdict_metric_name(const struct verdict *v);
const char *analysis_decision_name(enum analysis_decision d);

#endif /* CANARY_ANALYSIS_H */
