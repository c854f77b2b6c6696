// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Step plans: the time to catch a regression with 90% power, from simulated
 * steps through the real analysis. Checked against an independent run of
 * the same simulation (other seeds): the figure must reproduce, and more
 * traffic or a larger regression must never take longer.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "plan.h"

static void cfg_errors(struct analysis_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->interval_ms = 1000;
	c->min_requests = 50;
	c->failure_limit = 1;
	c->confidence = 0.99;
	c->metrics[0].kind = METRIC_COMPARE_ERROR_RATE;
	c->metrics[0].failure_limit = CONFIG_INHERIT;
	c->n_metrics = 1;
}

static void test_error_plan_reproduces(void **state)
{
	const struct plan_traffic t = {
		.rps = 400, .canary_share = 0.1, .err_p = 0.01, .p50_us = 50000, .p99_us = 160000
	};
	const struct plan_regression twice = { .err_ratio = 3, .lat_increase = 0 };
	struct analysis_cfg cfg;
	double a, b;

	(void)state;
	cfg_errors(&cfg);
	a = plan_detect_time(&cfg, &t, &twice, 0.9, 100, 120, 1);
	b = plan_detect_time(&cfg, &t, &twice, 0.9, 100, 120, 2);
	printf("  3x errors (1%% -> 3%%) at 40 canary req/s: 90%% caught within %.2f s "
	       "(independent seeds: %.2f s)\n",
	       a, b);
	assert_true(a > 0 && b > 0);
	assert_true(fabs(a - b) <= 0.3 * fmax(a, b) + 0.5);
	/* Half the power comes no later. */
	assert_true(plan_detect_time(&cfg, &t, &twice, 0.5, 100, 120, 1) <= a);
}

static void test_more_traffic_not_slower(void **state)
{
	struct plan_traffic t = {
		.rps = 200, .canary_share = 0.1, .err_p = 0.01, .p50_us = 50000, .p99_us = 160000
	};
	const struct plan_regression reg = { .err_ratio = 3, .lat_increase = 0 };
	struct analysis_cfg cfg;
	double slow, fast;

	(void)state;
	cfg_errors(&cfg);
	slow = plan_detect_time(&cfg, &t, &reg, 0.9, 60, 300, 7);
	t.rps = 800;
	fast = plan_detect_time(&cfg, &t, &reg, 0.9, 60, 300, 7);
	printf("  the same at 20 and at 80 canary req/s: %.2f s and %.2f s\n", slow, fast);
	assert_true(slow > 0 && fast > 0 && fast <= slow);
}

/* A regression the analysis cannot see within the bound: -1, never a made-up figure. */
static void test_undetectable_is_minus_one(void **state)
{
	const struct plan_traffic t = {
		.rps = 20, .canary_share = 0.01, .err_p = 0.001, .p50_us = 50000, .p99_us = 160000
	};
	const struct plan_regression reg = { .err_ratio = 1.1, .lat_increase = 0 };
	struct analysis_cfg cfg;

	(void)state;
	cfg_errors(&cfg);
	assert_true(plan_detect_time(&cfg, &t, &reg, 0.9, 20, 30, 3) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_plan_reproduces),
		cmocka_unit_test(test_more_traffic_not_slower),
		cmocka_unit_test(test_undetectable_is_minus_one),
	};

	return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
