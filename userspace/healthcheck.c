// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "healthcheck.h"
#include "worker.h"

/* How long the worker rests when no check is due. */
#define IDLE_MS 50

static __s64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__s64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A non-blocking connect under way (fd), or -1 when it failed at once. */
static int start_connect(const struct canary_backend *be)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = be->addr,
				  .sin_port = be->port };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

void health_probe(const struct canary_backend *endpoints, int n, __s64 timeout_ms, bool *ok)
{
	struct pollfd pfd[CANARY_MAX_BACKENDS];
	__s64 deadline = now_ms() + timeout_ms;
	int i, pending = 0;

	for (i = 0; i < n && i < CANARY_MAX_BACKENDS; i++) {
		ok[i] = false;
		pfd[i].fd = start_connect(&endpoints[i]);
		pfd[i].events = POLLOUT;
		pending += pfd[i].fd >= 0;
	}
	/* Bounded by the deadline: every connect ends or times out. */
	while (pending > 0 && now_ms() < deadline) {
		if (poll(pfd, (nfds_t)i, (int)(deadline - now_ms())) <= 0)
			continue;
		for (int k = 0; k < i; k++) {
			int soerr = 0;
			socklen_t len = sizeof(soerr);

			if (pfd[k].fd < 0 || !pfd[k].revents)
				continue;
			ok[k] = !getsockopt(pfd[k].fd, SOL_SOCKET, SO_ERROR, &soerr, &len) &&
				soerr == 0;
			close(pfd[k].fd);
			pfd[k].fd = -1; /* poll ignores negative fds */
			pending--;
		}
	}
	for (int k = 0; k < i; k++)
		if (pfd[k].fd >= 0)
			close(pfd[k].fd);
}

/* Check the next rollout whose stable endpoints are due, if any. */
static bool health_step(void *arg)
{
	struct agent *a = arg;
	bool ok[CANARY_MAX_BACKENDS];
	struct health_job job;

	if (!agent_health_next(a, &job))
		return false;
	health_probe(job.endpoints, job.n, job.timeout_ms, ok);
	agent_health_result(a, &job, ok);
	return true;
}

int health_start(struct agent *a, struct worker **out)
{
	return worker_start(health_step, a, IDLE_MS, out);
}

bool health_due(struct health_state *h, const struct health_cfg *cfg, __u64 now)
{
	if (!cfg->enabled || h->next_ms > now)
		return false;
	h->next_ms = now + (__u64)cfg->interval_ms;
	return true;
}

bool health_update(struct health_state *h, const struct health_cfg *cfg, int i, bool ok)
{
	bool was_down = h->down[i];

	if (ok) {
		h->failures[i] = 0;
		h->down[i] = false;
	} else if (h->failures[i] < 255) {
		h->failures[i]++;
		h->down[i] = h->failures[i] >= cfg->failure_threshold;
	}
	return was_down != h->down[i];
}

void health_forget(struct health_state *h)
{
	memset(h->down, 0, sizeof(h->down));
	memset(h->failures, 0, sizeof(h->failures));
}

/* The schedule is not carried: a reloaded rollout is checked at once. */
void health_keep(struct health_state *h, const struct health_state *old)
{
	memcpy(h->down, old->down, sizeof(old->down));
	memcpy(h->failures, old->failures, sizeof(old->failures));
}
