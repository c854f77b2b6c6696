/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * An absolute deadline for each request on a libmicrohttpd listener.
 * libmicrohttpd's own timeout counts idleness, and a client that sends one
 * byte every few seconds is never idle: it can hold a connection for ever.
 * Here every connection is timed from its accept, or from the end of its
 * previous request, and a reaper thread shuts down the socket of any whose
 * request is not done by the deadline; libmicrohttpd then closes it.
 */
#ifndef CANARY_CONNDEADLINE_H
#define CANARY_CONNDEADLINE_H

#include <microhttpd.h>

struct conn_deadline;

/* Room for max_conns connections (the listener's connection limit). */
int conn_deadline_start(unsigned int max_conns, unsigned int deadline_ms,
			struct conn_deadline **out);
/* Joins the reaper; call after MHD_stop_daemon(). */
void conn_deadline_stop(struct conn_deadline *d);

/* MHD_OPTION_NOTIFY_CONNECTION, with the struct conn_deadline as its closure. */
void conn_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code);
/* A request on c was answered: its next request gets a new deadline. */
void conn_deadline_request_done(struct conn_deadline *d, struct MHD_Connection *c);

#endif /* CANARY_CONNDEADLINE_H */
