// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httppost.h"
#include "notify.h"

/* First retry after this long; each next one waits twice as long. */
#define RETRY_FIRST_MS 500
#define IDLE_MS	       100
/*
 * Senders working side by side: a receiver that answers slowly (up to its
 * timeout) holds one of them, never the others' deliveries.
 */
#define NOTIFY_SENDERS 4

struct pending {
	char url[CONFIG_URL_LEN];
	char *body;
	__s64 timeout_ms;
	int attempts;
	__u64 next_ms; /* monotonic: not before */
	bool sending;  /* a sender has it now */
};

struct notifier {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t senders[NOTIFY_SENDERS];
	int running; /* senders started */
	bool stop;
	struct pending queue[NOTIFY_QUEUE_MAX]; /* oldest first */
	size_t len;
	__u64 sent, failed, dropped;
};

static __u64 mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

static __s64 wall_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (__s64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remove queue[i], keeping the order of the others. Called with the lock held. */
static void take_out(struct notifier *n, size_t i)
{
	free(n->queue[i].body);
	memmove(&n->queue[i], &n->queue[i + 1], (n->len - i - 1) * sizeof(n->queue[0]));
	n->len--;
}

static char *slack_text(const struct notify_info *info)
{
	char *text = NULL;

	if (asprintf(&text,
		     "canaryd: rollout %s, canary %s: %s at step %d, weight %u.%02u%% (%s)%s%s",
		     info->rollout, info->revision, notify_event_name(info->event), info->step,
		     info->weight_bp / 100, info->weight_bp % 100, info->phase,
		     info->message && *info->message ? ": " : "",
		     info->message ? info->message : "") < 0)
		return NULL;
	return text;
}

char *notify_payload(const struct notify_cfg *cfg, const struct notify_info *info, __s64 wall_ms)
{
	json_t *obj;
	char *text, *body;

	if (cfg->format == NOTIFY_FORMAT_SLACK) {
		text = slack_text(info);
		obj = text ? json_pack("{s:s}", "text", text) : NULL;
		free(text);
	} else {
		obj = json_pack("{s:s, s:s, s:s, s:s, s:i, s:f, s:s, s:I, s:o}", "rollout",
				info->rollout, "revision", info->revision, "event",
				notify_event_name(info->event), "phase", info->phase, "step",
				info->step, "weight", info->weight_bp / 100.0, "message",
				info->message ? info->message : "", "time_ms", (json_int_t)wall_ms,
				"verdicts",
				info->verdicts ? json_incref(info->verdicts) : json_array());
	}
	body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	return body;
}

static void enqueue(struct notifier *n, const struct notify_cfg *cfg, char *body)
{
	struct pending *p;

	if (n->len == NOTIFY_QUEUE_MAX) {
		take_out(n, 0); /* the oldest: a receiver that far behind gets the newest */
		n->dropped++;
	}
	p = &n->queue[n->len++];
	memset(p, 0, sizeof(*p));
	snprintf(p->url, sizeof(p->url), "%s", cfg->url);
	p->body = body;
	p->timeout_ms = cfg->timeout_ms;
}

void notifier_send(struct notifier *n, const struct notify_cfg *cfg, int n_cfg,
		   const struct notify_info *info)
{
	__s64 now = wall_now_ms();
	int i;

	if (!n)
		return;
	for (i = 0; i < n_cfg; i++) {
		char *body;

		if (!(cfg[i].events & (1U << info->event)))
			continue;
		body = notify_payload(&cfg[i], info, now);
		if (!body)
			continue;
		pthread_mutex_lock(&n->lock);
		enqueue(n, &cfg[i], body);
		pthread_cond_signal(&n->wake);
		pthread_mutex_unlock(&n->lock);
	}
}

/* A 2xx answer within the timeout is a delivery; anything else is retried. */
static bool post(const char *url, const char *body, __s64 timeout_ms)
{
	char err[128];
	long status;

	return !http_post_json(url, body, timeout_ms, &status, err, sizeof(err)) && status >= 200 &&
	       status < 300;
}

/* Is an older notification to the same receiver still queued? */
static bool waits_behind(const struct notifier *n, size_t i)
{
	size_t k;

	for (k = 0; k < i; k++)
		if (!strcmp(n->queue[k].url, n->queue[i].url))
			return true;
	return false;
}

/*
 * The first notification that is due and no sender has, copied out and
 * marked as taken; false when none is. Each receiver gets its
 * notifications in order: one waits while an older one to the same
 * receiver is being sent or retried (other receivers go on).
 */
static bool next_due(struct notifier *n, struct pending *out)
{
	__u64 now = mono_ms();
	size_t i;

	for (i = 0; i < n->len; i++) {
		if (n->queue[i].sending || n->queue[i].next_ms > now || waits_behind(n, i))
			continue;
		*out = n->queue[i];
		out->body = strdup(n->queue[i].body);
		if (!out->body)
			return false;
		n->queue[i].sending = true;
		return true;
	}
	return false;
}

/* After an attempt: done, or retried later, or given up. Lock held. */
static void settle(struct notifier *n, const struct pending *p, bool ok)
{
	size_t i;

	/*
	 * The queue may have moved while we sent: find the entry again. Only
	 * the oldest of a receiver's notifications is ever being sent.
	 */
	for (i = 0; i < n->len; i++)
		if (n->queue[i].sending && !strcmp(n->queue[i].url, p->url))
			break;
	if (i == n->len)
		return; /* dropped meanwhile */
	n->queue[i].sending = false;
	if (ok) {
		n->sent++;
		take_out(n, i);
	} else if (++n->queue[i].attempts >= NOTIFY_ATTEMPTS) {
		n->failed++;
		take_out(n, i);
	} else {
		n->queue[i].next_ms =
			mono_ms() + ((__u64)RETRY_FIRST_MS << (n->queue[i].attempts - 1));
	}
}

static void wait_a_little(struct notifier *n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += IDLE_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&n->wake, &n->lock, &ts);
}

static void *run(void *arg)
{
	struct notifier *n = arg;

	pthread_mutex_lock(&n->lock);
	while (!n->stop) {
		struct pending p;
		bool ok;

		if (!next_due(n, &p)) {
			wait_a_little(n);
			continue;
		}
		pthread_mutex_unlock(&n->lock);
		ok = post(p.url, p.body, p.timeout_ms);
		pthread_mutex_lock(&n->lock);
		settle(n, &p, ok);
		free(p.body);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int notifier_create(struct notifier **out)
{
	struct notifier *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->wake, NULL);
	*out = n;
	return 0;
}

int notifier_run(struct notifier *n)
{
	int err = 0;

	while (n->running < NOTIFY_SENDERS && !err) {
		err = pthread_create(&n->senders[n->running], NULL, run, n);
		if (!err)
			n->running++;
	}
	/* Fewer senders still deliver everything; none is an error. */
	return n->running ? 0 : -err;
}

void notifier_destroy(struct notifier *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stop = true;
	pthread_cond_signal(&n->wake);
	pthread_mutex_unlock(&n->lock);
	while (n->running > 0) /* each at most one request's timeout away */
		pthread_join(n->senders[--n->running], NULL);
	while (n->len)
		take_out(n, n->len - 1);
	pthread_cond_destroy(&n->wake);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

void notifier_render(struct notifier *n, FILE *f)
{
	static const char *const results[] = { "sent", "failed", "dropped" };
	__u64 counts[3];
	size_t len;
	int i;

	pthread_mutex_lock(&n->lock);
	counts[0] = n->sent;
	counts[1] = n->failed;
	counts[2] = n->dropped;
	len = n->len;
	pthread_mutex_unlock(&n->lock);
	fprintf(f,
		"# HELP canaryd_notifications_total Webhook notifications: delivered (2xx), "
		"given up after %d attempts, or dropped from a full queue.\n"
		"# TYPE canaryd_notifications_total counter\n",
		NOTIFY_ATTEMPTS);
	for (i = 0; i < 3; i++)
		fprintf(f, "canaryd_notifications_total{result=\"%s\"} %llu\n", results[i],
			(unsigned long long)counts[i]);
	fprintf(f,
		"# HELP canaryd_notifications_queued Notifications waiting to be sent or retried.\n"
		"# TYPE canaryd_notifications_queued gauge\ncanaryd_notifications_queued %zu\n",
		len);
}
