// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "conndeadline.h"

#define REAP_EVERY_MS 100

struct conn_slot {
	int fd; /* -1: free */
	unsigned long long start_ms;
	bool shut; /* shut down once, waiting for libmicrohttpd to close it */
};

struct conn_deadline {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t reaper;
	bool stop;
	unsigned int deadline_ms;
	unsigned int n_slots;
	struct conn_slot slots[];
};

static unsigned long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

/*
 * Slots are taken and freed by libmicrohttpd's notifications, which come
 * before it closes the descriptor; under the lock, a descriptor in a slot
 * is therefore still the connection's and never a reused number.
 */
static void reap_overdue(struct conn_deadline *d)
{
	unsigned long long now = mono_ms();
	unsigned int i;

	for (i = 0; i < d->n_slots; i++) {
		struct conn_slot *s = &d->slots[i];

		if (s->fd < 0 || s->shut || now - s->start_ms < d->deadline_ms)
			continue;
		shutdown(s->fd, SHUT_RDWR);
		s->shut = true;
	}
}

static void *reaper(void *arg)
{
	struct conn_deadline *d = arg;
	struct timespec until;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		reap_overdue(d);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += REAP_EVERY_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&d->wake, &d->lock, &until);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

static int init_sync(struct conn_deadline *d)
{
	pthread_condattr_t attr;
	int err;

	err = pthread_condattr_init(&attr);
	if (err)
		return err;
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(&d->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (err)
		return err;
	err = pthread_mutex_init(&d->lock, NULL);
	if (err)
		pthread_cond_destroy(&d->wake);
	return err;
}

int conn_deadline_start(unsigned int max_conns, unsigned int deadline_ms,
			struct conn_deadline **out)
{
	struct conn_deadline *d;
	unsigned int i;
	int err;

	d = calloc(1, sizeof(*d) + max_conns * sizeof(d->slots[0]));
	if (!d)
		return -ENOMEM;
	d->deadline_ms = deadline_ms;
	d->n_slots = max_conns;
	for (i = 0; i < max_conns; i++)
		d->slots[i].fd = -1;
	err = init_sync(d);
	if (err) {
		free(d);
		return -err;
	}
	err = pthread_create(&d->reaper, NULL, reaper, d);
	if (err) {
		pthread_cond_destroy(&d->wake);
		pthread_mutex_destroy(&d->lock);
		free(d);
		return -err;
	}
	*out = d;
	return 0;
}

void conn_deadline_stop(struct conn_deadline *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->reaper, NULL);
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static struct conn_slot *take_slot(struct conn_deadline *d, int fd)
{
	unsigned int i;

	for (i = 0; i < d->n_slots; i++) {
		if (d->slots[i].fd < 0) {
			d->slots[i] = (struct conn_slot){ .fd = fd, .start_ms = mono_ms() };
			return &d->slots[i];
		}
	}
	return NULL; /* more connections than the limit: cannot happen */
}

void conn_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct conn_deadline *d = cls;
	const union MHD_ConnectionInfo *info;
	struct conn_slot *s = *socket_context;

	pthread_mutex_lock(&d->lock);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = info ? take_slot(d, info->connect_fd) : NULL;
	} else if (s) {
		s->fd = -1;
		*socket_context = NULL;
	}
	pthread_mutex_unlock(&d->lock);
}

void conn_deadline_request_done(struct conn_deadline *d, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info;
	struct conn_slot *s;

	if (!d)
		return;
	info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	s = info ? info->socket_context : NULL;
	if (!s)
		return;
	pthread_mutex_lock(&d->lock);
	if (s->fd >= 0 && !s->shut)
		s->start_ms = mono_ms();
	pthread_mutex_unlock(&d->lock);
}
