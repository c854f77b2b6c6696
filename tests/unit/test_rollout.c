// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The rollout state machine with a fake clock, and its state on disk. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "analysis.h"
#include "evidence.h"
#include "rollout.h"
#include "state.h"
#include "traffic.h"

/* setWeight 10, pause 30s, setWeight 50, pause {}, setWeight 100 */
static struct rollout_cfg cfg;
static struct rollout_state st;
static struct rollout_effects fx;
static char err[256];
static char state_dir[64];

static int setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.name, sizeof(cfg.name), "checkout");
	snprintf(cfg.canary.revision, sizeof(cfg.canary.revision), "v2");
	cfg.canary.n_endpoints = 1;
	cfg.canary.endpoints[0].addr = 0x1502000a;
	cfg.canary.endpoints[0].port = 0x901f;
	cfg.steps[0] = (struct step_cfg){ .kind = STEP_SET_WEIGHT, .weight_bp = 1000 };
	cfg.steps[1] = (struct step_cfg){ .kind = STEP_PAUSE, .pause_ms = 30000 };
	cfg.steps[2] = (struct step_cfg){ .kind = STEP_SET_WEIGHT, .weight_bp = 5000 };
	cfg.steps[3] = (struct step_cfg){ .kind = STEP_PAUSE, .pause_ms = CONFIG_PAUSE_INDEFINITE };
	cfg.steps[4] = (struct step_cfg){ .kind = STEP_SET_WEIGHT, .weight_bp = 10000 };
	cfg.n_steps = 5;
	cfg.abort_connections = ABORT_CONNECTIONS_RESET;
	rollout_init(&st, &cfg);
	snprintf(state_dir, sizeof(state_dir), "/tmp/canaryd-test-state-XXXXXX");
	return mkdtemp(state_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	state_remove(state_dir, "checkout");
	return rmdir(state_dir);
}

static void tick(enum analysis_decision d, __s64 now)
{
	rollout_tick(&st, &cfg, d, "compareErrorRate: canary worse", now, &fx);
}

/* Save and load: a restart in the current state must change nothing. */
static void restart(void)
{
	struct rollout_state loaded;

	assert_int_equal(state_save(state_dir, &st, NULL, true), 0);
	assert_int_equal(state_load(state_dir, "checkout", &loaded, NULL), 0);
	assert_string_equal(loaded.name, st.name);
	assert_int_equal(loaded.canary_fingerprint, st.canary_fingerprint);
	assert_int_equal(loaded.phase, st.phase);
	assert_int_equal(loaded.step, st.step);
	assert_int_equal(loaded.weight_bp, st.weight_bp);
	assert_int_equal(loaded.step_started, st.step_started);
	assert_int_equal(loaded.pause_until_ms, st.pause_until_ms);
	assert_int_equal(loaded.pause_left_ms, st.pause_left_ms);
	assert_int_equal(loaded.user_paused, st.user_paused);
	assert_int_equal(loaded.aborts, st.aborts);
	assert_string_equal(loaded.message, st.message);
	assert_int_equal(loaded.wait_since_ms, st.wait_since_ms);
	assert_int_equal(loaded.rejudge, st.rejudge);
	assert_int_equal(loaded.steps_fingerprint, st.steps_fingerprint);
	assert_string_equal(loaded.canary_revision, st.canary_revision);
}

static void test_happy_path(void **state)
{
	(void)state;
	assert_int_equal(st.phase, PHASE_PROGRESSING);
	tick(ANALYSIS_HOLD, 0); /* step 0: the weight goes out */
	assert_true(fx.apply_weight && fx.restart_analysis && fx.changed);
	assert_int_equal(rollout_effective_weight(&st), 1000);
	restart();
	tick(ANALYSIS_HOLD, 250); /* too little traffic: holds */
	assert_int_equal(st.step, 0);
	assert_false(fx.changed);
	tick(ANALYSIS_PASS, 500); /* judged: on to the pause */
	assert_int_equal(st.step, 1);
	assert_int_equal(st.phase, PHASE_PAUSED);
	assert_int_equal(st.pause_until_ms, 500 + 30000);
	restart();
	tick(ANALYSIS_PASS, 20000);
	assert_int_equal(st.step, 1);
	tick(ANALYSIS_HOLD, 31000); /* pause over, but no pass: hold */
	assert_int_equal(st.step, 1);
	tick(ANALYSIS_PASS, 31250);
	assert_int_equal(st.step, 2);
	assert_int_equal(rollout_effective_weight(&st), 5000);
	assert_true(fx.apply_weight);
	tick(ANALYSIS_PASS, 31500);
	assert_int_equal(st.step, 3); /* indefinite pause */
	assert_int_equal(st.phase, PHASE_PAUSED);
	restart();
	tick(ANALYSIS_PASS, 999999);
	assert_int_equal(st.step, 3); /* waits for a human */
	assert_int_equal(rollout_verb(&st, &cfg, VERB_PROMOTE, 0, 1000000, &fx, err, sizeof(err)),
			 0);
	tick(ANALYSIS_PASS, 1000250);
	assert_int_equal(rollout_effective_weight(&st), 10000);
	tick(ANALYSIS_PASS, 1000500); /* last step judged: complete */
	assert_int_equal(st.phase, PHASE_HEALTHY);
	assert_true(fx.promoted && fx.apply_weight);
	assert_int_equal(rollout_effective_weight(&st), 0);
	restart();
	/* A completed rollout stays so; verbs other than none are refused. */
	tick(ANALYSIS_FAIL, 1000750);
	assert_int_equal(st.phase, PHASE_HEALTHY);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_ABORT, 0, 1, &fx, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "complete"));
}

static void test_abort_and_retry(void **state)
{
	(void)state;
	tick(ANALYSIS_HOLD, 0);
	tick(ANALYSIS_FAIL, 250);
	assert_int_equal(st.phase, PHASE_DEGRADED);
	assert_true(fx.apply_weight && fx.reset_canary_flows);
	assert_int_equal(rollout_effective_weight(&st), 0);
	assert_non_null(strstr(st.message, "compareErrorRate"));
	assert_int_equal(st.aborts, 1);
	restart();
	/* Stays aborted until retried: ticks, promote and resume do nothing. */
	tick(ANALYSIS_PASS, 500);
	assert_int_equal(st.phase, PHASE_DEGRADED);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_PROMOTE, 0, 1, &fx, err, sizeof(err)),
			 -EPERM);
	assert_non_null(strstr(err, "retry"));
	assert_int_equal(rollout_verb(&st, &cfg, VERB_RETRY, 0, 600, &fx, err, sizeof(err)), 0);
	assert_int_equal(st.phase, PHASE_PROGRESSING);
	assert_int_equal(st.step, 0);
	/* The aborted step's failed evidence must not judge the retry. */
	assert_true(fx.restart_analysis);
	tick(ANALYSIS_HOLD, 700);
	assert_int_equal(rollout_effective_weight(&st), 1000);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_RETRY, 0, 800, &fx, err, sizeof(err)),
			 -EPERM);
}

static void test_drain_policy(void **state)
{
	(void)state;
	cfg.abort_connections = ABORT_CONNECTIONS_DRAIN;
	tick(ANALYSIS_HOLD, 0);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_ABORT, 0, 100, &fx, err, sizeof(err)), 0);
	assert_int_equal(st.phase, PHASE_DEGRADED);
	assert_false(fx.reset_canary_flows);
	assert_non_null(strstr(st.message, "operator"));
}

/* pause/resume during a timed pause keeps the time it had left. */
static void test_pause_resume_keeps_time_left(void **state)
{
	(void)state;
	tick(ANALYSIS_HOLD, 0);
	tick(ANALYSIS_PASS, 1000); /* pause until 31000 */
	assert_int_equal(rollout_verb(&st, &cfg, VERB_PAUSE, 0, 11000, &fx, err, sizeof(err)), 0);
	assert_true(st.user_paused);
	assert_int_equal(st.pause_left_ms, 20000);
	restart();
	tick(ANALYSIS_PASS, 100000); /* frozen */
	assert_int_equal(st.step, 1);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_RESUME, 0, 200000, &fx, err, sizeof(err)), 0);
	assert_int_equal(st.pause_until_ms, 220000);
	assert_int_equal(st.phase, PHASE_PAUSED);
	tick(ANALYSIS_PASS, 219999);
	assert_int_equal(st.step, 1);
	tick(ANALYSIS_PASS, 220000);
	assert_int_equal(st.step, 2);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_RESUME, 0, 1, &fx, err, sizeof(err)), -EPERM);
}

/* An abort still happens while paused by an operator: safety first. */
static void test_fail_while_paused(void **state)
{
	(void)state;
	tick(ANALYSIS_HOLD, 0);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_PAUSE, 0, 10, &fx, err, sizeof(err)), 0);
	tick(ANALYSIS_FAIL, 20);
	assert_int_equal(st.phase, PHASE_DEGRADED);
}

static void test_set_weight_and_promote_full(void **state)
{
	(void)state;
	tick(ANALYSIS_HOLD, 0);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_SET_WEIGHT, 10001, 5, &fx, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_SET_WEIGHT, 1250, 5, &fx, err, sizeof(err)),
			 0);
	assert_true(fx.apply_weight && fx.restart_analysis);
	assert_int_equal(rollout_effective_weight(&st), 1250);
	assert_int_equal(st.phase, PHASE_PAUSED);
	restart();
	tick(ANALYSIS_PASS, 100000); /* held by the manual weight */
	assert_int_equal(rollout_effective_weight(&st), 1250);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_PROMOTE_FULL, 0, 6, &fx, err, sizeof(err)),
			 0);
	assert_int_equal(st.phase, PHASE_HEALTHY);
	assert_true(fx.promoted);
}

/* promote skips the step in progress, including the wait on a weight. */
static void test_promote_skips_steps(void **state)
{
	(void)state;
	tick(ANALYSIS_HOLD, 0);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_PROMOTE, 0, 1, &fx, err, sizeof(err)), 0);
	assert_int_equal(st.step, 1);
	tick(ANALYSIS_HOLD, 2); /* the pause begins */
	assert_int_equal(st.phase, PHASE_PAUSED);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_PROMOTE, 0, 3, &fx, err, sizeof(err)), 0);
	assert_int_equal(st.step, 2);
	tick(ANALYSIS_HOLD, 4);
	assert_int_equal(rollout_effective_weight(&st), 5000);
}

/* Two promotes before a tick: the weight step skipped in between still sets its weight. */
static void test_promote_twice_keeps_weights(void **state)
{
	(void)state;
	tick(ANALYSIS_HOLD, 0);
	tick(ANALYSIS_PASS, 1); /* 10% held, then the 30 s pause begins */
	assert_int_equal(st.step, 1);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_PROMOTE, 0, 2, &fx, err, sizeof(err)), 0);
	assert_int_equal(rollout_verb(&st, &cfg, VERB_PROMOTE, 0, 3, &fx, err, sizeof(err)), 0);
	assert_int_equal(st.step, 3);
	assert_true(fx.apply_weight);
	assert_int_equal(rollout_effective_weight(&st), 5000);
	tick(ANALYSIS_HOLD, 4); /* the indefinite pause, at 50% */
	assert_int_equal(st.phase, PHASE_PAUSED);
	assert_int_equal(rollout_effective_weight(&st), 5000);
}

static void test_state_files(void **state)
{
	struct rollout_state loaded;
	char path[128];
	FILE *f;

	(void)state;
	assert_int_equal(state_load(state_dir, "checkout", &loaded, NULL), -ENOENT);
	tick(ANALYSIS_HOLD, 0);
	restart();
	/* A corrupt file is refused, not half-read. */
	snprintf(path, sizeof(path), "%s/checkout.json", state_dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"version\": 1, \"phase\": \"Sideways\"", f);
	fclose(f);
	assert_int_equal(state_load(state_dir, "checkout", &loaded, NULL), -EINVAL);
	/* A file from a newer canaryd is not guessed at. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"version\": 99, \"phase\": \"Healthy\"}", f);
	fclose(f);
	assert_int_equal(state_load(state_dir, "checkout", &loaded, NULL), -EPROTONOSUPPORT);
	/* Set aside, not deleted, and taken back. */
	assert_int_equal(state_save(state_dir, &st, NULL, true), 0);
	assert_int_equal(state_set_aside(state_dir, "checkout", "removed"), 0);
	assert_int_equal(state_load(state_dir, "checkout", &loaded, NULL), -ENOENT);
	assert_int_equal(state_take_back(state_dir, "checkout", "removed"), 0);
	assert_int_equal(state_load(state_dir, "checkout", &loaded, NULL), 0);
	/* No temporary file is left behind by a save. */
	assert_int_equal(state_save(state_dir, &st, NULL, true), 0);
	snprintf(path, sizeof(path), "%s/checkout.json.tmp", state_dir);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void test_fingerprint(void **state)
{
	__u64 fp = rollout_canary_fingerprint(&cfg);

	(void)state;
	assert_int_equal(st.canary_fingerprint, fp);
	snprintf(cfg.canary.revision, sizeof(cfg.canary.revision), "v3");
	assert_int_not_equal(rollout_canary_fingerprint(&cfg), fp);
	snprintf(cfg.canary.revision, sizeof(cfg.canary.revision), "v2");
	/* A canary pod that moved to another address is the same canary. */
	cfg.canary.endpoints[0].port = 0x911f;
	assert_int_equal(rollout_canary_fingerprint(&cfg), fp);
	assert_int_not_equal(rollout_legacy_fingerprint(&cfg), fp);
	/* The steps are not part of the canary's identity. */
	cfg.canary.endpoints[0].port = 0x901f;
	cfg.steps[0].weight_bp = 2000;
	assert_int_equal(rollout_canary_fingerprint(&cfg), fp);
}

/* A format-1 state file (before revisions and evidence were kept) still loads. */
static void test_state_format_1(void **state)
{
	struct rollout_state loaded;
	char path[128];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/checkout.json", state_dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"{\"version\": 1, \"name\": \"checkout\", \"canary_fingerprint\": "
		"\"%016llx\", \"phase\": \"Paused\", \"step\": 1, "
		"\"weight_basis_points\": 1000, \"step_started\": true, "
		"\"pause_until_ms\": 5, \"pause_left_ms\": 0, \"user_paused\": false, "
		"\"aborts\": 0, \"message\": \"\"}",
		(unsigned long long)rollout_legacy_fingerprint(&cfg));
	fclose(f);
	assert_int_equal(state_load(state_dir, "checkout", &loaded, NULL), 0);
	assert_int_equal(loaded.step, 1);
	assert_int_equal(loaded.weight_bp, 1000);
	assert_int_equal(loaded.canary_fingerprint, rollout_legacy_fingerprint(&cfg));
	assert_string_equal(loaded.canary_revision, "");
	assert_int_equal(loaded.steps_fingerprint, 0);
}

/* Fewer steps under a rollout at 50%: it never jumps to completion. */
static void test_steps_changed_never_jump(void **state)
{
	(void)state;
	tick(ANALYSIS_PASS, 0);	    /* 10% */
	tick(ANALYSIS_PASS, 1);	    /* pause 30 s starts */
	tick(ANALYSIS_PASS, 30001); /* 50% */
	tick(ANALYSIS_PASS, 30002); /* indefinite pause */
	assert_int_equal(st.step, 3);
	assert_int_equal(rollout_effective_weight(&st), 5000);
	/* The operator shortens the list to [10%, 50%]: index 3 is past its end. */
	cfg.steps[1] = (struct step_cfg){ .kind = STEP_SET_WEIGHT, .weight_bp = 5000 };
	cfg.n_steps = 2;
	rollout_steps_changed(&st, &cfg, &fx);
	assert_true(fx.restart_analysis);
	assert_true(st.rejudge);
	assert_int_equal(st.step, 2);
	assert_int_equal(rollout_effective_weight(&st), 5000);
	/* Holding (no evidence yet) or failing never completes it. */
	tick(ANALYSIS_HOLD, 30003);
	assert_int_equal(st.phase, PHASE_PROGRESSING);
	assert_int_equal(rollout_effective_weight(&st), 5000);
	/* Only a pass at 50% completes it. */
	tick(ANALYSIS_PASS, 30004);
	assert_int_equal(st.phase, PHASE_HEALTHY);
}

/* A longer list: the rollout goes on after the setWeight equal to its weight. */
static void test_steps_changed_resume_point(void **state)
{
	(void)state;
	tick(ANALYSIS_PASS, 0); /* 10% */
	cfg.steps[1] = (struct step_cfg){ .kind = STEP_SET_WEIGHT, .weight_bp = 500 };
	cfg.steps[2] = (struct step_cfg){ .kind = STEP_SET_WEIGHT, .weight_bp = 1000 };
	cfg.steps[3] = (struct step_cfg){ .kind = STEP_PAUSE, .pause_ms = 60000 };
	cfg.steps[4] = (struct step_cfg){ .kind = STEP_SET_WEIGHT, .weight_bp = 10000 };
	rollout_steps_changed(&st, &cfg, &fx);
	assert_int_equal(st.step, 3);
	tick(ANALYSIS_PASS, 10); /* judged once at 10%, then the 60 s pause starts */
	assert_int_equal(st.phase, PHASE_PAUSED);
	assert_int_equal(st.pause_until_ms, 60010);
	assert_int_equal(rollout_effective_weight(&st), 1000);
}

/* A step that never gets a passing decision stops for a person, saying why. */
static void test_progress_deadline(void **state)
{
	(void)state;
	cfg.progress_deadline_ms = 600000;
	tick(ANALYSIS_HOLD, 0); /* 10% */
	rollout_tick(&st, &cfg, ANALYSIS_HOLD, "waiting for 12 of 20 canary samples", 1000, &fx);
	assert_int_equal(st.phase, PHASE_PROGRESSING);
	rollout_tick(&st, &cfg, ANALYSIS_HOLD, "waiting for 12 of 20 canary samples", 601000, &fx);
	assert_int_equal(st.phase, PHASE_PAUSED);
	assert_true(st.user_paused);
	assert_true(fx.changed);
	assert_string_equal(fx.event, "progress deadline exceeded");
	assert_non_null(strstr(st.message, "no passing analysis for 10m at 10.00%"));
	assert_non_null(strstr(st.message, "waiting for 12 of 20 canary samples"));
	assert_int_equal(rollout_effective_weight(&st), 1000);
	/* resume waits another deadline; a pass then moves on. */
	assert_int_equal(rollout_verb(&st, &cfg, VERB_RESUME, 0, 601001, &fx, err, sizeof(err)), 0);
	rollout_tick(&st, &cfg, ANALYSIS_HOLD, "still", 700000, &fx);
	assert_int_equal(st.phase, PHASE_PROGRESSING);
	tick(ANALYSIS_PASS, 700001);
	assert_int_equal(st.phase, PHASE_PAUSED); /* the 30 s pause step */
	assert_false(st.user_paused);
}

/* inconclusiveLimit: the analysis gives up and a person decides. */
static void test_inconclusive_pauses(void **state)
{
	(void)state;
	tick(ANALYSIS_HOLD, 0);
	rollout_tick(&st, &cfg, ANALYSIS_INCONCLUSIVE, "errorRate: 4 inconclusive windows", 10,
		     &fx);
	assert_int_equal(st.phase, PHASE_PAUSED);
	assert_true(st.user_paused);
	assert_non_null(strstr(st.message, "errorRate: 4 inconclusive windows"));
	assert_int_equal(rollout_effective_weight(&st), 1000);
}

/* Evidence survives a save and a load, and keeps the step's age. */
static void test_evidence_round_trip(void **state)
{
	static struct analysis_state an, back;
	struct canary_metrics now[CANARY_V_COUNT];
	json_t *ev, *loaded_ev;
	struct rollout_state loaded;

	(void)state;
	cfg.analysis.n_metrics = 3;
	cfg.analysis.metrics[0].kind = METRIC_ERROR_RATE;
	cfg.analysis.metrics[1].kind = METRIC_COMPARE_ERROR_RATE;
	cfg.analysis.metrics[2].kind = METRIC_COMPARE_LATENCY;
	memset(now, 0, sizeof(now));
	now[CANARY_V_CANARY].responses[5] = 7;
	now[CANARY_V_STABLE].latency_hist[3] = 11;
	analysis_restart(&an, now, 1000);
	an.gate_start_ms[0] = 3000; /* the gate's window began 2 s later than the step */
	an.err_disp[1].events = 42;
	an.failures[2] = 1;
	an.crossed[1] = true;
	an.err_llr[4] = -1.5;
	ev = evidence_to_json(&an, &cfg.analysis, 5000, 1700000005000LL);
	assert_non_null(ev);
	assert_int_equal(state_save(state_dir, &st, ev, false), 0);
	json_decref(ev);
	assert_int_equal(state_load(state_dir, "checkout", &loaded, &loaded_ev), 0);
	assert_non_null(loaded_ev);
	/* Restored 400 s later on both clocks: the step is 404 s old. */
	assert_int_equal(
		evidence_from_json(loaded_ev, &back, &cfg.analysis, 405000, 1700000405000LL), 0);
	json_decref(loaded_ev);
	assert_int_equal(back.base[CANARY_V_CANARY].responses[5], 7);
	assert_int_equal(back.base[CANARY_V_STABLE].latency_hist[3], 11);
	assert_int_equal(back.failures[2], 1);
	assert_true(back.crossed[1]);
	assert_float_equal(back.err_llr[4], -1.5, 0);
	assert_int_equal(back.started_ms, 405000 - 404000);
	assert_int_equal(back.gate_start_ms[0], 405000 - 402000);
	assert_int_equal(back.gate_base[0].responses[5], 7);
	assert_float_equal(back.err_disp[1].events, 42, 0);
	/* Evidence of another shape is refused, and st left alone. */
	ev = json_pack("{s:i, s:I}", "format", 99, "started_wall_ms", (json_int_t)1);
	assert_int_equal(evidence_from_json(ev, &back, &cfg.analysis, 1, 1), -EINVAL);
	json_decref(ev);
	assert_int_equal(back.failures[2], 1);
	/* So is evidence gathered under other analysis settings. */
	ev = evidence_to_json(&an, &cfg.analysis, 5000, 1700000005000LL);
	cfg.analysis.min_requests++;
	assert_int_equal(evidence_from_json(ev, &back, &cfg.analysis, 1, 1), -EINVAL);
	json_decref(ev);
}

/*
 * End to end through the real analysis: a canary that is fine at 10% and 50%
 * and turns bad (10% errors) only at 100% must be aborted, not promoted.
 */
static void test_bad_only_at_last_step(void **state)
{
	static struct analysis_state an;
	struct canary_metrics now[CANARY_V_COUNT];
	struct analysis_cfg *a = &cfg.analysis;
	__s64 t;

	(void)state;
	a->interval_ms = 1000;
	a->min_requests = 50;
	a->failure_limit = 1;
	a->confidence = 0.99;
	a->metrics[0] = (struct metric_cfg){ .kind = METRIC_ERROR_RATE,
					     .max = 0.05,
					     .failure_limit = CONFIG_INHERIT };
	a->metrics[1] = (struct metric_cfg){ .kind = METRIC_COMPARE_ERROR_RATE,
					     .failure_limit = CONFIG_INHERIT };
	a->n_metrics = 2;
	cfg.steps[3] = (struct step_cfg){ .kind = STEP_PAUSE, .pause_ms = 30000 };
	memset(now, 0, sizeof(now));
	analysis_restart(&an, now, 0);
	/* 1,000 requests a second, 250 ms ticks, for at most 5 minutes. */
	for (t = 250; t <= 300000 && st.phase != PHASE_HEALTHY && st.phase != PHASE_DEGRADED;
	     t += 250) {
		__u64 w = rollout_effective_weight(&st), c = 250 * w / 10000, s = 250 - c;
		__u64 bad = w == 10000 ? c / 10 : 0;

		now[CANARY_V_CANARY].responses[2] += c - bad;
		now[CANARY_V_CANARY].responses[5] += bad;
		now[CANARY_V_STABLE].responses[2] += s;
		rollout_tick(&st, &cfg, analysis_tick(&an, a, now, (__u64)t), an.reason, t, &fx);
		if (fx.restart_analysis)
			analysis_restart(&an, now, (__u64)t);
	}
	assert_int_equal(st.phase, PHASE_DEGRADED);
	assert_non_null(strstr(st.message, "errorRate failed 2 times"));
}

/* At peak (maxStepIncrease 10, pauseFactor 2): 10 -> 20 -> ... -> 50, each judged; pauses x2. */
static void test_peak_smaller_steps(void **state)
{
	struct rollout_conditions peak = { .peak = true }, calm = { 0 };

	(void)state;
	cfg.traffic.peak_above_rps = 2000;
	cfg.traffic.peak_max_increase_bp = 1000;
	cfg.traffic.pause_factor = 2;
	rollout_tick_traffic(&st, &cfg, ANALYSIS_HOLD, NULL, 0, &peak, &fx); /* 10% */
	assert_int_equal(rollout_effective_weight(&st), 1000);
	rollout_tick_traffic(&st, &cfg, ANALYSIS_PASS, NULL, 1, &peak, &fx); /* pause, x2 */
	assert_int_equal(st.pause_until_ms, 1 + 60000);
	rollout_tick_traffic(&st, &cfg, ANALYSIS_PASS, NULL, 60001, &peak, &fx);
	assert_int_equal(rollout_effective_weight(&st), 2000);
	assert_true(fx.restart_analysis);
	assert_int_equal(st.step, 2);
	/* A hold keeps the intermediate weight; each pass adds 10 points. */
	rollout_tick_traffic(&st, &cfg, ANALYSIS_HOLD, NULL, 60002, &peak, &fx);
	assert_int_equal(rollout_effective_weight(&st), 2000);
	rollout_tick_traffic(&st, &cfg, ANALYSIS_PASS, NULL, 60003, &peak, &fx);
	assert_int_equal(rollout_effective_weight(&st), 3000);
	/* The peak ends: the rest of the step in one go. */
	rollout_tick_traffic(&st, &cfg, ANALYSIS_PASS, NULL, 60004, &calm, &fx);
	assert_int_equal(rollout_effective_weight(&st), 5000);
	assert_int_equal(st.step, 2);
	rollout_tick_traffic(&st, &cfg, ANALYSIS_PASS, NULL, 60005, &calm, &fx);
	assert_int_equal(st.step, 3); /* the indefinite pause at 50% */
}

/* A blackout holds without a deadline, says so, and never aborts for it. */
static void test_blackout_holds(void **state)
{
	struct rollout_conditions dark = { .blackout = true,
					   .blackout_why = "sat,sun all day UTC" };
	struct rollout_conditions calm = { 0 };

	(void)state;
	cfg.progress_deadline_ms = 600000;
	rollout_tick_traffic(&st, &cfg, ANALYSIS_PASS, NULL, 0, &dark, &fx);
	assert_int_equal(rollout_effective_weight(&st), 0); /* not even step 0 */
	assert_string_equal(st.message, "held: blackout window sat,sun all day UTC");
	assert_true(fx.changed);
	rollout_tick_traffic(&st, &cfg, ANALYSIS_HOLD, NULL, 48LL * 3600 * 1000, &dark, &fx);
	assert_int_equal(st.phase, PHASE_PROGRESSING);
	assert_false(fx.changed);
	rollout_tick_traffic(&st, &cfg, ANALYSIS_PASS, NULL, 48LL * 3600 * 1000 + 1, &calm, &fx);
	assert_int_equal(rollout_effective_weight(&st), 1000);
	assert_string_equal(st.message, "");
	/* Bad evidence still aborts in a blackout. */
	rollout_tick_traffic(&st, &cfg, ANALYSIS_FAIL, "errorRate failed", 48LL * 3600 * 1000 + 2,
			     &dark, &fx);
	assert_int_equal(st.phase, PHASE_DEGRADED);
}

/* Blackout windows: whole days, hours, across midnight, time zones. */
static void test_blackout_windows(void **state)
{
	/* 2026-12-05 is a Saturday; 1796428800 is its 00:00 UTC. */
	const __s64 sat0 = 1796428800000LL, hour = 3600000LL;
	struct traffic_policy_cfg t = { 0 };
	char why[128];

	(void)state;
	t.blackouts[0] =
		(struct blackout_cfg){ .days = 1U << 6 | 1U << 0, .from_min = -1, .to_min = -1 };
	t.n_blackouts = 1;
	assert_true(traffic_blackout(&t, sat0 + 12 * hour, why, sizeof(why)));
	assert_string_equal(why, "sun,sat all day UTC");
	assert_false(traffic_blackout(&t, sat0 - hour, why, sizeof(why))); /* Friday 23:00 */
	/* Mon..Fri 17:00-09:00, UTC+02:00: Friday 22:00 UTC is Saturday 00:00 there. */
	t.blackouts[0] = (struct blackout_cfg){
		.days = 0x3e, .from_min = 17 * 60, .to_min = 9 * 60, .utc_offset_min = 120
	};
	assert_true(traffic_blackout(&t, sat0 - 2 * hour, why, sizeof(why)));
	assert_string_equal(why, "mon,tue,wed,thu,fri 17:00-09:00 UTC+02:00");
	/* Saturday 08:00 there: the morning after Friday's evening, still dark. */
	assert_true(traffic_blackout(&t, sat0 + 6 * hour, why, sizeof(why)));
	/* Saturday 10:00 there: open. Sunday 08:00 there: Saturday is not listed. */
	assert_false(traffic_blackout(&t, sat0 + 8 * hour, why, sizeof(why)));
	assert_false(traffic_blackout(&t, sat0 + 30 * hour, why, sizeof(why)));
	/* Peak with hysteresis. */
	t.peak_above_rps = 1000;
	assert_false(traffic_at_peak(&t, 1000, false));
	assert_true(traffic_at_peak(&t, 1001, false));
	assert_true(traffic_at_peak(&t, 950, true));
	assert_false(traffic_at_peak(&t, 899, true));
}

static void test_names(void **state)
{
	enum rollout_verb verb;
	enum rollout_phase phase;

	(void)state;
	assert_int_equal(rollout_verb_parse("promote-full", &verb), 0);
	assert_int_equal(verb, VERB_PROMOTE_FULL);
	assert_int_equal(rollout_verb_parse("explode", &verb), -1);
	assert_int_equal(rollout_phase_parse("Degraded", &phase), 0);
	assert_int_equal(phase, PHASE_DEGRADED);
	assert_string_equal(rollout_phase_name(PHASE_PAUSED), "Paused");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_happy_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_and_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume_keeps_time_left, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_while_paused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_weight_and_promote_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_skips_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_twice_keeps_weights, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fingerprint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_format_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_steps_changed_never_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_steps_changed_resume_point, setup, teardown),
		cmocka_unit_test_setup_teardown(test_progress_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inconclusive_pauses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evidence_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_only_at_last_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peak_smaller_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blackout_holds, setup, teardown),
		cmocka_unit_test(test_blackout_windows),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests_name("rollout", tests, NULL, NULL);
}
