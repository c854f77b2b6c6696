// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Notification payloads (the generic JSON and the Slack-compatible text),
 * the bounded queue, and delivery to real HTTP receivers on loopback: a
 * receiver that is slow to answer does not hold up the others.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
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

/*
 * A webhook receiver on 127.0.0.1: it takes one request, counts it, and
 * answers 200, at once or, if held, only once released (10 s at most).
 */
struct receiver {
	int lfd;
	char url[64];
	bool hold;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int received;
	bool released;
};

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *receive_one(void *arg)
{
	static const char ok[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	struct receiver *r = arg;
	struct pollfd p = { .fd = r->lfd, .events = POLLIN };
	struct timespec until;
	char buf[4096];
	int fd;

	if (poll(&p, 1, 10000) != 1)
		return NULL;
	fd = accept(r->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	p.fd = fd;
	if (poll(&p, 1, 10000) == 1 && read(fd, buf, sizeof(buf)) > 0) {
		pthread_mutex_lock(&r->lock);
		r->received++;
		pthread_cond_broadcast(&r->cond);
		deadline_in(&until, 10000);
		while (r->hold && !r->released &&
		       pthread_cond_timedwait(&r->cond, &r->lock, &until) == 0)
			;
		pthread_mutex_unlock(&r->lock);
		if (write(fd, ok, sizeof(ok) - 1) < 0)
			r->received = -1;
	}
	close(fd);
	return NULL;
}

static void receiver_start(struct receiver *r, bool hold)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	memset(r, 0, sizeof(*r));
	r->hold = hold;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->lfd >= 0);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(r->lfd, 4), 0);
	assert_int_equal(getsockname(r->lfd, (struct sockaddr *)&a, &len), 0);
	snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%u/hook", ntohs(a.sin_port));
	assert_int_equal(pthread_create(&r->thread, NULL, receive_one, r), 0);
}

/* Wait (bounded) until r has received n requests; how many it has. */
static int receiver_wait(struct receiver *r, int n, int ms)
{
	struct timespec until;
	int got;

	deadline_in(&until, ms);
	pthread_mutex_lock(&r->lock);
	while (r->received < n && pthread_cond_timedwait(&r->cond, &r->lock, &until) == 0)
		;
	got = r->received;
	pthread_mutex_unlock(&r->lock);
	return got;
}

static void receiver_stop(struct receiver *r)
{
	pthread_mutex_lock(&r->lock);
	r->released = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	close(r->lfd);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
}

/*
 * Two receivers, the first one slow: it holds its answer. The second gets
 * its notification while the first is still holding, not after the first
 * one's timeout (8 s): one receiver never waits behind another.
 */
static void test_slow_receiver_holds_no_other(void **state)
{
	struct receiver slow, fast;
	struct notify_cfg cfg[2] = {
		{ .events = 1U << NOTIFY_ABORTED, .timeout_ms = 8000 },
		{ .events = 1U << NOTIFY_ABORTED, .timeout_ms = 8000 },
	};
	struct notifier *n;

	(void)state;
	receiver_start(&slow, true);
	receiver_start(&fast, false);
	snprintf(cfg[0].url, sizeof(cfg[0].url), "%s", slow.url);
	snprintf(cfg[1].url, sizeof(cfg[1].url), "%s", fast.url);
	assert_int_equal(notifier_create(&n), 0);
	assert_int_equal(notifier_run(n), 0);
	notifier_send(n, cfg, 2, &info); /* the slow receiver's is queued first */
	assert_int_equal(receiver_wait(&slow, 1, 5000), 1);
	assert_int_equal(receiver_wait(&fast, 1, 5000), 1);
	pthread_mutex_lock(&slow.lock);
	assert_false(slow.released); /* the fast one got it while the slow one held */
	pthread_mutex_unlock(&slow.lock);
	receiver_stop(&slow);
	receiver_stop(&fast);
	notifier_destroy(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generic),
		cmocka_unit_test(test_slack),
		cmocka_unit_test(test_queue_bounded),
		cmocka_unit_test(test_slow_receiver_holds_no_other),
	};

	return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
