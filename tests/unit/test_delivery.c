// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Delivery records: metrics, and a history that is bounded and survives a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "delivery.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/canaryd-test-delivery-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/web.history.json", dir);
	unlink(path);
	return rmdir(dir);
}

static void record(struct delivery *d, enum delivery_outcome o, __s64 start, __s64 end,
		   __s64 rollback, int step)
{
	struct delivery_record rec = { .outcome = o,
				       .started_ms = start,
				       .ended_ms = end,
				       .rollback_ms = rollback,
				       .step = step,
				       .weight_bp = 1000 };

	snprintf(rec.rollout, sizeof(rec.rollout), "web");
	snprintf(rec.revision, sizeof(rec.revision), "v%d", step);
	rec.verdicts = json_pack("[{s:s}]", "metric", "errorRate");
	assert_int_equal(delivery_record(d, &rec), 0);
	assert_null(rec.verdicts);
}

static char *render(struct delivery *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	delivery_render(d, f);
	fclose(f);
	return buf;
}

static void test_metrics(void **state)
{
	struct delivery d;
	char *text;

	(void)state;
	assert_int_equal(delivery_init(&d, dir), 0);
	record(&d, OUTCOME_PROMOTED, 1000, 91000, -1, 5); /* 90 s */
	record(&d, OUTCOME_ABORTED, 1000, 21000, 168, 2); /* 20 s, 0.168 s to roll back */
	record(&d, OUTCOME_ABORTED, 1000, 2000, -1, 0);	  /* by an operator */
	record(&d, OUTCOME_SUPERSEDED, -1, 5000, -1, 1);  /* start unknown */
	text = render(&d);
	assert_non_null(
		strstr(text, "canaryd_rollouts_total{rollout=\"web\",outcome=\"promoted\"} 1\n"));
	assert_non_null(
		strstr(text, "canaryd_rollouts_total{rollout=\"web\",outcome=\"aborted\"} 2\n"));
	assert_non_null(
		strstr(text, "canaryd_rollouts_total{rollout=\"web\",outcome=\"superseded\"} 1\n"));
	assert_non_null(strstr(text, "canaryd_rollout_duration_seconds_bucket{rollout=\"web\","
				     "outcome=\"promoted\",le=\"60\"} 0\n"));
	assert_non_null(strstr(text, "canaryd_rollout_duration_seconds_bucket{rollout=\"web\","
				     "outcome=\"promoted\",le=\"120\"} 1\n"));
	assert_non_null(strstr(text, "canaryd_rollout_duration_seconds_count{rollout=\"web\","
				     "outcome=\"superseded\"} 0\n"));
	assert_non_null(
		strstr(text, "canaryd_rollback_seconds_bucket{rollout=\"web\",le=\"0.1\"} 0\n"));
	assert_non_null(
		strstr(text, "canaryd_rollback_seconds_bucket{rollout=\"web\",le=\"0.25\"} 1\n"));
	assert_non_null(strstr(text, "canaryd_rollback_seconds_count{rollout=\"web\"} 1\n"));
	assert_non_null(strstr(
		text, "canaryd_rollout_aborts_by_step_total{rollout=\"web\",step=\"2\"} 1\n"));
	assert_non_null(strstr(
		text, "canaryd_rollout_aborts_by_step_total{rollout=\"web\",step=\"0\"} 1\n"));
	free(text);
	delivery_destroy(&d);
}

/* Newest last, at most DELIVERY_HISTORY_MAX, read back by a new instance. */
static void test_history_bounded_and_kept(void **state)
{
	struct delivery d;
	json_t *h, *last;
	int i;

	(void)state;
	assert_int_equal(delivery_init(&d, dir), 0);
	for (i = 0; i < DELIVERY_HISTORY_MAX + 5; i++)
		record(&d, OUTCOME_ABORTED, 1000, 3000, 500, i % CONFIG_MAX_STEPS);
	delivery_destroy(&d);

	assert_int_equal(delivery_init(&d, dir), 0);
	h = delivery_history(&d, "web");
	assert_int_equal(json_array_size(h), DELIVERY_HISTORY_MAX);
	last = json_array_get(h, DELIVERY_HISTORY_MAX - 1);
	assert_string_equal(json_string_value(json_object_get(last, "outcome")), "aborted");
	assert_float_equal(json_real_value(json_object_get(last, "duration_s")), 2.0, 1e-9);
	assert_float_equal(json_real_value(json_object_get(last, "time_to_rollback_s")), 0.5, 1e-9);
	assert_int_equal(json_array_size(json_object_get(last, "verdicts")), 1);
	/* The oldest five were dropped: the first kept is the sixth recorded. */
	assert_int_equal(json_integer_value(json_object_get(json_array_get(h, 0), "step")), 5);
	json_decref(h);
	h = delivery_history(&d, "nothing-recorded");
	assert_int_equal(json_array_size(h), 0);
	json_decref(h);
	delivery_destroy(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_bounded_and_kept, setup, teardown),
	};

	return cmocka_run_group_tests_name("delivery", tests, NULL, NULL);
}
