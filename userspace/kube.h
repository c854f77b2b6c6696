/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A small client of the Kubernetes API over libcurl: GET with a bearer
 * token, and a list-then-watch of one Service's EndpointSlices that keeps
 * the set of backends the way Kubernetes' own informers do:
 *
 *  - list with pagination (limit/continue), then watch from the list's
 *    resourceVersion with bookmarks and a random 5..10 min timeoutSeconds
 *    (so a fleet's watches do not all end at once);
 *  - "410 Gone" (an HTTP 410, or an ERROR event with code 410: the server
 *    no longer has that history) means events were lost: list again and
 *    REPLACE the whole state, never merge into it;
 *  - any other error: wait a jittered, exponentially growing delay, then
 *    resume the watch from the last resourceVersion seen.
 *
 * EndpointSlices are read as discovery.k8s.io/v1, or v1beta1 where the
 * server has no v1 (Kubernetes < 1.21). An endpoint is READY (takes new
 * connections), TERMINATING (its pod is going away: new connections no
 * longer, established ones drain) or NOT_READY. The parsing and the state
 * are pure functions, tested on recorded objects (tests/unit/test_kube.c).
 * One client serves one thread.
 */
#ifndef CANARY_KUBE_H
#define CANARY_KUBE_H

#include <arpa/inet.h>
#include <jansson.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "secretfile.h"

#define KUBE_URL_LEN	  256
#define KUBE_TOKEN_LEN	  4096
#define KUBE_NAME_LEN	  254 /* a DNS subdomain name, the longest object name */
#define KUBE_RV_LEN	  64
#define KUBE_CONTINUE_LEN 1024
#define KUBE_TIMEOUT_MS	  5000
#define KUBE_CONNECT_MS	  1000

/* In a pod: the service account's files, and the API server from the environment. */
#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* PEM text of a kubeconfig's *-data field, decoded: a CA bundle, a certificate or a key. */
#define KUBE_PEM_LEN 16384

/* TLS beyond a CA file: what a kubeconfig may hold ("": not given). */
struct kube_tls {
	char ca_pem[KUBE_PEM_LEN];   /* certificate-authority-data */
	char cert_file[PATH_MAX];    /* client-certificate */
	char key_file[PATH_MAX];     /* client-key */
	char cert_pem[KUBE_PEM_LEN]; /* client-certificate-data */
	char key_pem[KUBE_PEM_LEN];  /* client-key-data */
};

struct kube_client {
	char server[KUBE_URL_LEN];    /* https://host:port, no trailing slash */
	char ca_file[PATH_MAX];	      /* empty: the system's CAs */
	struct kube_tls tls;	      /* set after kube_client_init (kube_conn_client) */
	char token_file[PATH_MAX];    /* empty: no Authorization header */
	char token[KUBE_TOKEN_LEN];   /* what token_file held when last read */
	struct file_stamp token_seen; /* a changed file (rotation) is read again */
	long timeout_ms;
	void *curl; /* CURL *, kept between calls for its connection */
};

/* Explicit server, token file and CA file (either may be NULL). 0, -EINVAL, -ENOMEM. */
int kube_client_init(struct kube_client *c, const char *server, const char *token_file,
		     const char *ca_file);
/* In-cluster: KUBERNETES_SERVICE_HOST/PORT and sa_dir's token and ca.crt. */
int kube_client_in_cluster(struct kube_client *c, const char *sa_dir);
/* The same settings (token included) with a handle of its own, for another thread. */
int kube_client_clone(struct kube_client *dst, const struct kube_client *src);
void kube_client_close(struct kube_client *c);

/*
 * GET path: *status is the HTTP status, *resp the decoded JSON body
 * (whatever the status; caller json_decref()s). 0, or -ETIMEDOUT,
 * -ECONNREFUSED, -EIO, -EPROTO (not JSON), -ENOMEM, -EACCES (token).
 */
int kube_get(struct kube_client *c, const char *path, long *status, json_t **resp);
/* Log a refused request (warn): what, the path, the status and the server's message. */
void kube_log_refused(const char *what, const char *path, long status, const json_t *resp);
/* Any method; body (NULL: none) is sent as content_type. Returns as kube_get. */
int kube_request(struct kube_client *c, const char *method, const char *path,
		 const char *content_type, const char *body, long *status, json_t **resp);
/*
 * A watch request (path with its query): fn gets every line until it
 * returns false or *stop: 1; the server ended it: 0; -ESTALE: HTTP 410;
 * -EIO another status; else the transfer's error.
 */
int kube_stream(struct kube_client *c, const char *path, long timeout_s,
		bool (*fn)(void *arg, const char *line, size_t len), void *arg,
		const atomic_bool *stop);

/* ---- EndpointSlices: the state (pure, no I/O) ---- */

enum kube_ep_state { KUBE_EP_READY, KUBE_EP_TERMINATING, KUBE_EP_NOT_READY };

/* One address and port of an endpoint: what a backend is to canaryd. */
struct kube_backend {
	char addr[INET6_ADDRSTRLEN];
	__u16 port;
	enum kube_ep_state state;
	/*
	 * conditions.serving: the endpoint answers, terminating or not (absent:
	 * the ready condition's value, as the API says). A terminating endpoint
	 * that serves is drained, one that does not is gone.
	 */
	bool serving;
};

struct kube_slice {
	char name[KUBE_NAME_LEN];
	struct kube_backend *b;
	size_t n;
};

/* Every slice of one Service, and the resourceVersion it is current at. */
struct kube_slices {
	struct kube_slice *v;
	size_t n;
	char rv[KUBE_RV_LEN];
};

const char *kube_ep_state_name(enum kube_ep_state s);

/* One EndpointSlice object (v1 or v1beta1) into s. 0, -EINVAL, -ENOMEM. */
int kube_slice_from_json(const json_t *obj, struct kube_slice *s);
void kube_slice_free(struct kube_slice *s);

/*
 * Append one page of a list (an EndpointSliceList) to out; its
 * resourceVersion becomes out->rv, its continue token goes to cont ("" on
 * the last page). 0, -EINVAL, -ENOMEM, -E2BIG (token too long).
 */
int kube_slices_add_page(struct kube_slices *out, const json_t *list, char *cont, size_t contlen);
/* Free dst's slices and move src's into it (src is left empty): a re-list's result. */
void kube_slices_replace(struct kube_slices *dst, struct kube_slices *src);
void kube_slices_free(struct kube_slices *s);

enum kube_event_type {
	KUBE_EV_ADDED,
	KUBE_EV_MODIFIED,
	KUBE_EV_DELETED,
	KUBE_EV_BOOKMARK,
	KUBE_EV_GONE, /* an ERROR with code 410: list again */
	KUBE_EV_ERROR /* any other ERROR */
};

struct kube_event {
	enum kube_event_type type;
	json_t *object; /* a reference: kube_event_free drops it */
	long code;	/* of an ERROR's Status */
};

/* One line of a watch stream. 0, -EINVAL, -ENOMEM. */
int kube_event_parse(const char *line, size_t len, struct kube_event *ev);
void kube_event_free(struct kube_event *ev);

/*
 * Apply an ADDED, MODIFIED, DELETED or BOOKMARK event to s; out->rv moves
 * to the event's resourceVersion. 0, -EINVAL (malformed object), -ENOMEM,
 * -ESTALE (GONE: the caller must list again), -EPROTO (another ERROR).
 */
int kube_slices_apply(struct kube_slices *s, const struct kube_event *ev);

/*
 * The backends of every slice, each address:port once, sorted; one listed
 * in several slices (an endpoint moving between them) takes its best state.
 * *out is malloc'd (NULL when there are none). Returns the count or -ENOMEM.
 */
long kube_slices_backends(const struct kube_slices *s, struct kube_backend **out);

/* The wait before retry number attempt (0, 1, ...): base * 2^attempt, at most
 * max_ms, drawn uniformly from its upper half with r (0..1) so that clients
 * that failed together do not retry together. */
long kube_backoff_ms(unsigned int attempt, long base_ms, long max_ms, double r);

/* ---- objects of any kind, by name (pure, no I/O) ---- */

/* Whole objects by metadata.name, and the resourceVersion they are current at. */
struct kube_objects {
	json_t *by_name; /* a JSON object: name -> the object as the server sent it */
	char rv[KUBE_RV_LEN];
};

/* As kube_slices_add_page, for objects of any kind. 0, -EINVAL, -ENOMEM, -E2BIG. */
int kube_objects_add_page(struct kube_objects *out, const json_t *list, char *cont, size_t contlen);
/* As kube_slices_apply. 0, -EINVAL, -ENOMEM, -ESTALE (410: list again), -EPROTO. */
int kube_objects_apply(struct kube_objects *s, const struct kube_event *ev);
void kube_objects_replace(struct kube_objects *dst, struct kube_objects *src);
void kube_objects_free(struct kube_objects *s);
size_t kube_objects_count(const struct kube_objects *s);

/* ---- the list+watch loop (I/O) ---- */

/* A state the loop keeps: state_size zero bytes are an empty one. */
struct kube_lw_ops {
	size_t state_size;
	/* One page of a list into a state being built. */
	int (*add_page)(void *state, const json_t *list, char *cont, size_t contlen);
	/* One watch event: -ESTALE for a 410 (the loop lists again). */
	int (*apply)(void *state, const struct kube_event *ev);
	/* Free dst's content and move src's into it (src left empty). */
	void (*replace)(void *dst, void *src);
	void (*free)(void *state);
	const char *(*rv)(const void *state);
};

/* One collection, listed then watched (kube_list_watch). */
struct kube_lw {
	const struct kube_lw_ops *ops;
	/* The collection's path, its "?" and query, into buf. */
	void (*path)(void *arg, const char *query, char *buf, size_t len);
	/* Before every list (NULL: none); -ENOENT or -ENOMEM end the loop. */
	int (*prepare)(struct kube_client *c, void *arg);
	/* Called after every change with the whole state; false stops. */
	bool (*fn)(const void *state, void *arg);
	void *arg;
	const atomic_bool *stop;
	unsigned int limit;	/* list page size (0: 500) */
	long backoff_base_ms;	/* 0: 200 */
	long backoff_max_ms;	/* 0: 30000 */
	unsigned long *relists; /* counts lists after the first (after a 410); NULL: none */
};

/*
 * List, then watch from the list's version, until fn returns false or
 * *stop: 0. A 410 lists again and replaces the state wholesale; other
 * errors are retried forever with jittered backoff; only -ENOMEM and
 * -ENOENT from prepare end it early.
 */
int kube_list_watch(struct kube_client *c, struct kube_lw *lw);
/* One list (prepare first), no watch and no retry, into state. 0 or the first error. */
int kube_list_once(struct kube_client *c, struct kube_lw *lw, void *state);

/* ---- the watcher (I/O) ---- */

struct kube_watch_opts {
	const char *ns;
	const char *service;  /* label kubernetes.io/service-name */
	unsigned int limit;   /* list page size (0: 500) */
	long backoff_base_ms; /* 0: 200 */
	long backoff_max_ms;  /* 0: 30000 */
	/* Called after every change with the whole state; false stops. */
	bool (*fn)(const struct kube_slices *s, void *arg);
	void *arg;
	const atomic_bool *stop;
	/* Filled in as it runs, for logs and tests. */
	unsigned long relists; /* lists after the first one (after a 410) */
	char api[32];	       /* "v1" or "v1beta1" */
};

/*
 * List, then watch, until fn returns false or *stop becomes true: 0.
 * Errors are retried forever with backoff; only -ENOMEM and a server
 * without EndpointSlices (-ENOENT) end it early.
 */
int kube_watch_endpointslices(struct kube_client *c, struct kube_watch_opts *o);

/*
 * One list, no watch and no retry (o->fn, stop and backoff unused): what a
 * caller that must not wait long reads before its watcher runs. 0 (out
 * holds the slices; kube_slices_free it), or the first error.
 */
int kube_list_endpointslices(struct kube_client *c, struct kube_watch_opts *o,
			     struct kube_slices *out);

#endif /* CANARY_KUBE_H */
