// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "healthcheck.h"

#define POLL_MS 50

struct health_worker {
	struct agent *agent;
	pthread_t thread;
	atomic_bool stop;
};

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

static void *run(void *arg)
{
	struct health_worker *w = arg;
	struct health_job job;
	bool ok[CANARY_MAX_BACKENDS];

	while (!atomic_load(&w->stop)) {
		if (!agent_health_next(w->agent, &job)) {
			struct timespec ts = { .tv_nsec = POLL_MS * 1000000L };

			nanosleep(&ts, NULL);
			continue;
		}
		health_probe(job.endpoints, job.n, job.timeout_ms, ok);
		agent_health_result(w->agent, &job, ok);
	}
	return NULL;
}

int health_start(struct agent *a, struct health_worker **out)
{
	struct health_worker *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return -ENOMEM;
	w->agent = a;
	atomic_init(&w->stop, false);
	err = pthread_create(&w->thread, NULL, run, w);
	if (err) {
		free(w);
		return -err;
	}
	*out = w;
	return 0;
}

void health_stop(struct health_worker *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
	free(w);
}
