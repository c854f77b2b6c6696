/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A small client of etcd's v3 JSON gateway (etcd 3.4: POST /v3/kv/range,
 * /v3/kv/put, /v3/kv/txn, /v3/kv/deleterange, /v3/lease/grant,
 * /v3/lease/keepalive, /v3/watch) over libcurl. Keys and values travel as
 * base64, 64-bit numbers as decimal strings, and a field equal to its
 * default (0, false, empty) is left out of an answer.
 *
 * Every unary call has a timeout: a write in flight when the Raft leader
 * dies can hang for seconds. A call that fails on one endpoint is tried on
 * the next one, once per endpoint. One client serves one thread.
 */
#ifndef CANARY_ETCD_H
#define CANARY_ETCD_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define ETCD_MAX_ENDPOINTS 8
#define ETCD_URL_LEN	   256
#define ETCD_TIMEOUT_MS	   1500
#define ETCD_CONNECT_MS	   500

struct etcd_tls {
	const char *cacert; /* NULL: the system's CAs */
	const char *cert;   /* client certificate and key, or NULL */
	const char *key;
};

struct etcd_client {
	char endpoints[ETCD_MAX_ENDPOINTS][ETCD_URL_LEN];
	int n_endpoints;
	int current; /* the endpoint tried first: the last one that answered */
	struct etcd_tls tls;
	long timeout_ms;
	void *curl; /* CURL *, kept between calls for its connection */
};

/* One key-value as etcd returns it. value is NUL-terminated, malloc'd. */
struct etcd_kv {
	char *key;
	char *value;
	size_t value_len;
	__s64 create_revision;
	__s64 mod_revision;
	__s64 lease;
};

void etcd_kv_free(struct etcd_kv *kv);

/*
 * endpoints: "http://A:2379,http://B:2379". Returns 0 or -EINVAL (empty,
 * too many, too long) or -ENOMEM.
 */
int etcd_init(struct etcd_client *c, const char *endpoints, const struct etcd_tls *tls);
void etcd_close(struct etcd_client *c);

/* ---- the codec (pure, no I/O) ---- */

/* A 64-bit field that etcd sends as a string (or a number); absent: 0. -EINVAL if malformed. */
int etcd_json_i64(const json_t *obj, const char *field, __s64 *out);
/* "prefix" -> the range_end that covers every key starting with it (last byte + 1). */
void etcd_prefix_end(const char *prefix, char *end, size_t len);
/* Fill kv from one element of "kvs" or an event's "kv". 0, -EINVAL, -ENOMEM. */
int etcd_kv_from_json(const json_t *obj, struct etcd_kv *kv);

/* ---- unary calls: 0, or -ETIMEDOUT / -ECONNREFUSED / -EIO / -EPROTO / -ENOMEM ---- */

/* POST path with a JSON body; *resp is the decoded answer (caller json_decref()s). */
int etcd_call(struct etcd_client *c, const char *path, json_t *req, json_t **resp);

/* Put key=value, bound to lease (0: none). *rev: the store's revision after it, or NULL. */
int etcd_put(struct etcd_client *c, const char *key, const char *value, __s64 lease, __s64 *rev);
/* Get one key: 0 with kv filled, -ENOENT if absent (kv zeroed). */
int etcd_get(struct etcd_client *c, const char *key, struct etcd_kv *kv, __s64 *rev);
/* Every key under prefix; fn is called for each. *rev: the revision read at. */
int etcd_range_prefix(struct etcd_client *c, const char *prefix,
		      void (*fn)(const struct etcd_kv *kv, void *arg), void *arg, __s64 *rev);
int etcd_delete(struct etcd_client *c, const char *key);

int etcd_lease_grant(struct etcd_client *c, __s64 ttl_s, __s64 *id, __s64 *granted_ttl);
/* Renew: 0 with the TTL left, -ENOENT when the lease is gone (expired or revoked). */
int etcd_lease_keepalive(struct etcd_client *c, __s64 id, __s64 *ttl_left);
int etcd_lease_revoke(struct etcd_client *c, __s64 id);

/*
 * Transactions of the shapes canaryd needs. A compare is on one key's
 * create or mod revision; 0 means "the key does not exist" for CREATE.
 */
enum etcd_target { ETCD_CREATE, ETCD_MOD };
struct etcd_compare {
	const char *key;
	enum etcd_target target;
	__s64 revision;
};

/*
 * If every compare holds, put key=value (lease: 0 for none). *ok says
 * whether it did; *rev is the revision after the transaction.
 */
int etcd_txn_put(struct etcd_client *c, const struct etcd_compare *cmp, int n_cmp, const char *key,
		 const char *value, __s64 lease, bool *ok, __s64 *rev);
/* If every compare holds, delete key. */
int etcd_txn_delete(struct etcd_client *c, const struct etcd_compare *cmp, int n_cmp,
		    const char *key, bool *ok);

/* ---- watch: a streamed answer, one JSON object per event batch ---- */

struct etcd_watch_batch {
	__s64 revision;		/* of the header */
	__s64 compact_revision; /* set when etcd canceled the watch: re-read */
	bool canceled;
	bool created;
	struct etcd_kv *events; /* puts and deletes (a delete has value NULL) */
	bool *deleted;
	int n_events;
};

/*
 * Parse one line of the watch stream ({"result": {...}}). 0, -EINVAL,
 * -ENOMEM. The caller frees the batch with etcd_watch_batch_free.
 */
int etcd_watch_parse(const char *line, size_t len, struct etcd_watch_batch *b);
void etcd_watch_batch_free(struct etcd_watch_batch *b);

/*
 * Watch every key under prefix from start_rev on, calling fn per batch,
 * until fn returns false, *stop becomes true, the stream breaks, or etcd
 * cancels it (compaction: *compact_rev is set, re-read and watch again).
 * Returns 0 when stopped, or a negative errno.
 */
int etcd_watch(struct etcd_client *c, const char *prefix, __s64 start_rev,
	       bool (*fn)(const struct etcd_watch_batch *b, void *arg), void *arg,
	       const atomic_bool *stop, __s64 *compact_rev);

#endif /* CANARY_ETCD_H */
