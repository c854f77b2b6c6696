// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dpwatch.h"
#include "log.h"
#include "seedsecret.h"

static __u64 mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

static void count_conntrack(struct dp_watch *w)
{
	unsigned int entries, expired;
	long long created;

	w->ops->ct_expire(w->dp, &expired); /* closed and idle flows' entries: once a second */
	if (w->ops->ct_read(w->dp, &entries, &created) || created < 0)
		return;
	w->conntrack_entries = entries;
	w->conntrack_created = (__u64)created;
	w->conntrack_evictions = dp_ct_evictions((__u64)created - w->ops->ct_expired(w->dp),
						 entries, w->conntrack_evictions);
}

void dp_watch_init(struct dp_watch *w, const struct dp_ops *ops, void *dp, const char *bpffs)
{
	memset(w, 0, sizeof(*w));
	w->ops = ops;
	w->dp = dp;
	w->bpffs = bpffs;
	if (!dp)
		return;
	w->conntrack_capacity = ops->ct_capacity(dp);
	count_conntrack(w);
	w->evictions_logged = w->conntrack_evictions;
}

/*
 * Someone removed the pins (rm -rf /sys/fs/bpf/canaryd): the maps live on in
 * the programs and in this process, so pin them again where operators and
 * canaryctl look for them.
 */
void dp_watch_pins(struct dp_watch *w, int secret_fd)
{
	unsigned int restored = 0;
	char n[16];
	int err;

	if (!w->bpffs)
		return;
	err = w->ops->repin_missing(w->dp, w->bpffs, &restored);
	if (!err && secret_fd >= 0) {
		err = seed_secret_repin(secret_fd, w->bpffs);
		restored += err > 0;
		err = err < 0 ? err : 0;
	}
	if (!err && !restored)
		return;
	snprintf(n, sizeof(n), "%u", restored);
	log_event(err ? CLOG_ERROR : CLOG_WARN,
		  err ? "cannot pin the maps again" : "pinned maps were removed: pinned again",
		  "bpffs", w->bpffs, "maps", n, "error", err ? strerror(-err) : "");
}

/* A full conntrack evicts flows: say so, once a minute while it goes on. */
static void log_evictions(struct dp_watch *w)
{
	__u64 now = mono_ms();
	char ev[24], n[16], cap[16];

	if (w->conntrack_evictions == w->evictions_logged ||
	    (w->evictions_log_ms && now - w->evictions_log_ms < EVICTIONS_LOG_EVERY_MS))
		return;
	snprintf(ev, sizeof(ev), "%llu", (unsigned long long)w->conntrack_evictions);
	snprintf(n, sizeof(n), "%u", w->conntrack_entries);
	snprintf(cap, sizeof(cap), "%u", w->conntrack_capacity);
	log_event(CLOG_WARN, "conntrack full: least recently used flows evicted", "evictions", ev,
		  "entries", n, "capacity", cap, "hint", "raise --conntrack-entries");
	w->evictions_logged = w->conntrack_evictions;
	w->evictions_log_ms = now;
}

void dp_watch_conntrack(struct dp_watch *w, __u64 tick)
{
	if (w->ops->flow_count_is_cheap(w->dp) || tick % CONNTRACK_COUNT_EVERY == 0) {
		count_conntrack(w);
		log_evictions(w);
	}
}
