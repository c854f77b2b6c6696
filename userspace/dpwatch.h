/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The data-path watcher: what the agent keeps an eye on in the data plane
 * besides its rollouts. It pins the maps again when someone removed the
 * pins, and counts the conntrack (entries, created, evicted) for /metrics,
 * logging evictions while they go on. The agent calls it from its tick,
 * under its lock; readers take the same lock.
 */
#ifndef CANARY_DPWATCH_H
#define CANARY_DPWATCH_H

#include <linux/types.h>

#include "dpops.h"

struct dp_watch {
	const struct dp_ops *ops;
	void *dp;
	const char *bpffs; /* where the maps are pinned (NULL: nowhere to watch) */
	/* Conntrack: counted every tick, or every CONNTRACK_COUNT_EVERY by walking. */
	unsigned int conntrack_entries;
	__u32 conntrack_capacity;
	__u64 conntrack_created;   /* entries created since the maps were */
	__u64 conntrack_evictions; /* entries the LRU evicted since then */
	__u64 evictions_logged;	   /* conntrack_evictions when last logged */
	__u64 evictions_log_ms;	   /* and when, monotonic ms */
};

/* Walking the conntrack map costs ~1 ms per 10k entries: not every tick. */
#define CONNTRACK_COUNT_EVERY 40
/* Evictions are logged at most this often while they go on. */
#define EVICTIONS_LOG_EVERY_MS 60000

/*
 * Start watching dp (NULL: nothing to watch). Evictions before this start
 * are no news, and no scrape reads 0 first: the conntrack is counted now.
 */
void dp_watch_init(struct dp_watch *w, const struct dp_ops *ops, void *dp, const char *bpffs);
/* Pin again the maps (and the hash seeds' secret, secret_fd >= 0) missing from bpffs. */
void dp_watch_pins(struct dp_watch *w, int secret_fd);
/* Count the conntrack at tick number tick, when it is cheap or due; log evictions. */
void dp_watch_conntrack(struct dp_watch *w, __u64 tick);

#endif /* CANARY_DPWATCH_H */
