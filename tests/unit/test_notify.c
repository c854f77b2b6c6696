// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Notification payloads: the generic JSON and the Slack-compatible text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "notify.h"

static const struct notify_info info = {
	.rollout = "checkout",
	.revision = "v2",
	.event = NOTIFY_ABORTED,
	.phase = "Degraded",
	.step = 2,
	.weight_bp = 0,
	.message = "aborted: canary 5.10% vs stable 0.49% errors",
};

static void test_generic(void **state)
{
	struct notify_cfg cfg = { .format = NOTIFY_FORMAT_GENERIC };
	char *body;
	json_t *obj;

	(void)state;
	body = notify_payload(&cfg, &info, 1764864000123LL);
	assert_non_null(body);
	obj = json_loads(body, 0, NULL);
	assert_non_null(obj);
	assert_string_equal(json_string_value(json_object_get(obj, "event")), "aborted");
	assert_string_equal(json_string_value(json_object_get(obj, "rollout")), "checkout");
	assert_string_equal(json_string_value(json_object_get(obj, "revision")), "v2");
	assert_string_equal(json_string_value(json_object_get(obj, "phase")), "Degraded");
	assert_int_equal(json_integer_value(json_object_get(obj, "step")), 2);
	assert_int_equal(json_integer_value(json_object_get(obj, "time_ms")), 1764864000123LL);
	assert_true(json_is_array(json_object_get(obj, "verdicts")));
	json_decref(obj);
	free(body);
}

static void test_slack(void **state)
{
	struct notify_cfg cfg = { .format = NOTIFY_FORMAT_SLACK };
	char *body;
	json_t *obj;

	(void)state;
	body = notify_payload(&cfg, &info, 0);
	obj = json_loads(body, 0, NULL);
	assert_non_null(obj);
	assert_int_equal(json_object_size(obj), 1);
	assert_string_equal(json_string_value(json_object_get(obj, "text")),
			    "canaryd: rollout checkout, canary v2: aborted at step 2, weight 0.00% "
			    "(Degraded): aborted: canary 5.10% vs stable 0.49% errors");
	json_decref(obj);
	free(body);
}

/* A queue with no thread takes notifications without blocking, and bounds itself. */
static void test_queue_bounded(void **state)
{
	struct notify_cfg cfg = { .url = "http://127.0.0.1:9/x",
				  .events = 1U << NOTIFY_ABORTED,
				  .timeout_ms = 100 };
	struct notifier *n;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int i;

	(void)state;
	assert_int_equal(notifier_create(&n), 0);
	for (i = 0; i < NOTIFY_QUEUE_MAX + 10; i++)
		notifier_send(n, &cfg, 1, &info);
	f = open_memstream(&text, &len);
	notifier_render(n, f);
	fclose(f);
	assert_non_null(strstr(text, "canaryd_notifications_total{result=\"dropped\"} 10\n"));
	assert_non_null(strstr(text, "canaryd_notifications_queued 256\n"));
	free(text);
	notifier_destroy(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generic),
		cmocka_unit_test(test_slack),
		cmocka_unit_test(test_queue_bounded),
	};

	return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
