// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "etcd.h"
#include "httpbody.h"

/* No answer canaryd asks for comes near this: a range of every node's evidence. */
#define MAX_REPLY (8 << 20)
/* One line of a watch stream: a batch of events. */
#define MAX_WATCH_LINE (8 << 20)

int etcd_json_i64(const json_t *obj, const char *field, __s64 *out)
{
	const json_t *v = json_object_get(obj, field);
	char *end;

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	errno = 0;
	*out = strtoll(json_string_value(v), &end, 10);
	return errno || *end || end == json_string_value(v) ? -EINVAL : 0;
}

void etcd_prefix_end(const char *prefix, char *end, size_t len)
{
	size_t n = strlen(prefix);

	snprintf(end, len, "%s", prefix);
	/* Keys here are printable ASCII: the last byte + 1 never carries. */
	if (n && n < len)
		end[n - 1]++;
}

void etcd_kv_free(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

int etcd_kv_from_json(const json_t *obj, struct etcd_kv *kv)
{
	const char *key = json_string_value(json_object_get(obj, "key"));
	const char *value = json_string_value(json_object_get(obj, "value"));
	size_t klen;
	int err;

	memset(kv, 0, sizeof(*kv));
	if (!key)
		return -EINVAL;
	err = etcd_json_i64(obj, "create_revision", &kv->create_revision);
	if (!err)
		err = etcd_json_i64(obj, "mod_revision", &kv->mod_revision);
	if (!err)
		err = etcd_json_i64(obj, "lease", &kv->lease);
	if (!err)
		err = base64_decode(key, &kv->key, &klen);
	if (!err)
		err = base64_decode(value ? value : "", &kv->value, &kv->value_len);
	if (err)
		etcd_kv_free(kv);
	return err;
}

/* ---- client ---- */

int etcd_init(struct etcd_client *c, const char *endpoints, const struct etcd_tls *tls)
{
	const char *p = endpoints;

	memset(c, 0, sizeof(*c));
	while (p && *p) {
		size_t n = strcspn(p, ",");

		if (n == 0 || n >= ETCD_URL_LEN || c->n_endpoints == ETCD_MAX_ENDPOINTS)
			return -EINVAL;
		memcpy(c->endpoints[c->n_endpoints], p, n);
		/* "http://a:2379/" and "http://a:2379" are the same endpoint. */
		if (c->endpoints[c->n_endpoints][n - 1] == '/')
			c->endpoints[c->n_endpoints][n - 1] = '\0';
		c->n_endpoints++;
		p += n;
		if (*p == ',')
			p++;
	}
	if (!c->n_endpoints)
		return -EINVAL;
	if (tls)
		c->tls = *tls;
	c->timeout_ms = ETCD_TIMEOUT_MS;
	c->curl = curl_easy_init();
	return c->curl ? 0 : -ENOMEM;
}

void etcd_close(struct etcd_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
}

static void set_common(CURL *curl, const struct etcd_client *c, const char *url,
		       struct curl_slist *headers)
{
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* we run in threads */
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_CONNECT_MS);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	if (c->tls.cacert)
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->tls.cacert);
	if (c->tls.cert)
		curl_easy_setopt(curl, CURLOPT_SSLCERT, c->tls.cert);
	if (c->tls.key)
		curl_easy_setopt(curl, CURLOPT_SSLKEY, c->tls.key);
}

static int curl_errno(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* One POST to one endpoint. */
static int call_one(struct etcd_client *c, int ep, const char *path, const char *body,
		    json_t **resp)
{
	struct http_body r = { .max = MAX_REPLY };
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	char url[ETCD_URL_LEN + 64];
	long status = 0;
	CURLcode cc;
	int err;

	if (!headers)
		return -ENOMEM;
	snprintf(url, sizeof(url), "%s%s", c->endpoints[ep], path);
	curl_easy_reset(c->curl);
	set_common(c->curl, c, url, headers);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, http_body_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &r);
	cc = curl_easy_perform(c->curl);
	curl_slist_free_all(headers);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	err = cc != CURLE_OK ? curl_errno(cc) : status != 200 || !r.data ? -EPROTO : 0;
	if (!err) {
		*resp = json_loadb(r.data, r.len, 0, NULL);
		err = *resp ? 0 : -EPROTO;
	}
	free(r.data);
	return err;
}

int etcd_call(struct etcd_client *c, const char *path, json_t *req, json_t **resp)
{
	char *body = json_dumps(req, JSON_COMPACT);
	int err = -ENOMEM, i;

	*resp = NULL;
	if (!body)
		return -ENOMEM;
	/* A member that does not answer may be cut off: try the others once each. */
	for (i = 0; i < c->n_endpoints; i++) {
		int ep = (c->current + i) % c->n_endpoints;

		err = call_one(c, ep, path, body, resp);
		if (!err || err == -ENOMEM) {
			c->current = ep;
			break;
		}
	}
	free(body);
	return err;
}

/* json_object_set_new with a base64 value; -ENOMEM when it fails. */
static int set_b64(json_t *obj, const char *field, const char *s)
{
	char *enc = base64_encode(s, strlen(s));
	int err = enc && !json_object_set_new(obj, field, json_string(enc)) ? 0 : -ENOMEM;

	free(enc);
	return err;
}

static int set_i64(json_t *obj, const char *field, __s64 v)
{
	char num[24];

	snprintf(num, sizeof(num), "%lld", (long long)v);
	return json_object_set_new(obj, field, json_string(num)) ? -ENOMEM : 0;
}

/* Call path with req (which this takes), giving the header revision. */
static int call_take(struct etcd_client *c, const char *path, json_t *req, int build_err,
		     json_t **resp, __s64 *rev)
{
	json_t *r = NULL;
	int err = build_err;

	if (!req)
		err = -ENOMEM;
	if (!err)
		err = etcd_call(c, path, req, &r);
	json_decref(req);
	if (!err && rev)
		err = etcd_json_i64(json_object_get(r, "header"), "revision", rev);
	if (!err && resp)
		*resp = r;
	else
		json_decref(r);
	return err;
}

static json_t *put_request(const char *key, const char *value, __s64 lease, int *err)
{
	json_t *req = json_object();

	*err = req ? set_b64(req, "key", key) : -ENOMEM;
	if (!*err)
		*err = set_b64(req, "value", value);
	if (!*err && lease)
		*err = set_i64(req, "lease", lease);
	return req;
}

int etcd_put(struct etcd_client *c, const char *key, const char *value, __s64 lease, __s64 *rev)
{
	int err;
	json_t *req = put_request(key, value, lease, &err);

	return call_take(c, "/v3/kv/put", req, err, NULL, rev);
}

static int range(struct etcd_client *c, const char *key, const char *range_end, json_t **resp,
		 __s64 *rev)
{
	json_t *req = json_object();
	int err = req ? set_b64(req, "key", key) : -ENOMEM;

	if (!err && range_end)
		err = set_b64(req, "range_end", range_end);
	return call_take(c, "/v3/kv/range", req, err, resp, rev);
}

int etcd_get(struct etcd_client *c, const char *key, struct etcd_kv *kv, __s64 *rev)
{
	json_t *resp = NULL, *first;
	int err = range(c, key, NULL, &resp, rev);

	memset(kv, 0, sizeof(*kv));
	if (err)
		return err;
	first = json_array_get(json_object_get(resp, "kvs"), 0);
	err = first ? etcd_kv_from_json(first, kv) : -ENOENT;
	json_decref(resp);
	return err;
}

int etcd_range_prefix(struct etcd_client *c, const char *prefix,
		      void (*fn)(const struct etcd_kv *kv, void *arg), void *arg, __s64 *rev)
{
	char end[ETCD_URL_LEN];
	json_t *resp = NULL, *item;
	size_t i;
	int err;

	etcd_prefix_end(prefix, end, sizeof(end));
	err = range(c, prefix, end, &resp, rev);
	if (err)
		return err;
	json_array_foreach(json_object_get(resp, "kvs"), i, item)
	{
		struct etcd_kv kv;

		if (etcd_kv_from_json(item, &kv))
			continue; /* not ours to read: skip it, read the rest */
		fn(&kv, arg);
		etcd_kv_free(&kv);
	}
	json_decref(resp);
	return 0;
}

int etcd_delete(struct etcd_client *c, const char *key)
{
	json_t *req = json_object();
	int err = req ? set_b64(req, "key", key) : -ENOMEM;

	return call_take(c, "/v3/kv/deleterange", req, err, NULL, NULL);
}

int etcd_lease_grant(struct etcd_client *c, __s64 ttl_s, __s64 *id, __s64 *granted_ttl)
{
	json_t *req = json_object(), *resp = NULL;
	int err = req ? set_i64(req, "TTL", ttl_s) : -ENOMEM;

	err = call_take(c, "/v3/lease/grant", req, err, &resp, NULL);
	if (!err)
		err = etcd_json_i64(resp, "ID", id);
	if (!err)
		err = etcd_json_i64(resp, "TTL", granted_ttl);
	if (!err && (*id == 0 || *granted_ttl <= 0))
		err = -EPROTO;
	json_decref(resp);
	return err;
}

int etcd_lease_keepalive(struct etcd_client *c, __s64 id, __s64 *ttl_left)
{
	json_t *req = json_object(), *resp = NULL;
	int err = req ? set_i64(req, "ID", id) : -ENOMEM;

	err = call_take(c, "/v3/lease/keepalive", req, err, &resp, NULL);
	/* A streamed answer: {"result": {..., "TTL": "n"}}; no TTL: the lease is gone. */
	if (!err)
		err = etcd_json_i64(json_object_get(resp, "result"), "TTL", ttl_left);
	if (!err && *ttl_left <= 0)
		err = -ENOENT;
	json_decref(resp);
	return err;
}

int etcd_lease_revoke(struct etcd_client *c, __s64 id)
{
	json_t *req = json_object();
	int err = req ? set_i64(req, "ID", id) : -ENOMEM;

	return call_take(c, "/v3/lease/revoke", req, err, NULL, NULL);
}

static json_t *compare_json(const struct etcd_compare *cmp)
{
	const char *field = cmp->target == ETCD_CREATE ? "create_revision" : "mod_revision";
	json_t *one = json_object();

	/* json_object_set_new takes its value, also when it fails: nothing leaks. */
	if (!one || set_b64(one, "key", cmp->key) ||
	    json_object_set_new(one, "target",
				json_string(cmp->target == ETCD_CREATE ? "CREATE" : "MOD")) ||
	    json_object_set_new(one, "result", json_string("EQUAL")) ||
	    set_i64(one, field, cmp->revision)) {
		json_decref(one);
		return NULL;
	}
	return one;
}

static json_t *compares(const struct etcd_compare *cmp, int n)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; arr && i < n; i++) {
		json_t *one = compare_json(&cmp[i]);

		if (!one || json_array_append_new(arr, one)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/*
 * POST a transaction: if every compare holds, do op (op_req, which this
 * takes). Each jansson *_new call takes its value even when it fails, so
 * what was handed on is never freed here again.
 */
static int txn(struct etcd_client *c, const struct etcd_compare *cmp, int n_cmp, const char *op,
	       json_t *op_req, bool *ok, __s64 *rev)
{
	json_t *req = json_object(), *success = json_array(), *wrap = json_object(), *resp = NULL;
	int err = req && success && wrap && op_req ? 0 : -1;

	if (!err) {
		err = json_object_set_new(wrap, op, op_req);
		op_req = NULL;
	}
	if (!err) {
		err = json_array_append_new(success, wrap);
		wrap = NULL;
	}
	if (!err) {
		err = json_object_set_new(req, "success", success);
		success = NULL;
	}
	if (!err)
		err = json_object_set_new(req, "compare", compares(cmp, n_cmp));
	json_decref(op_req);
	json_decref(wrap);
	json_decref(success);
	if (err) {
		json_decref(req);
		return -ENOMEM;
	}
	err = call_take(c, "/v3/kv/txn", req, 0, &resp, rev);
	/* "succeeded": false is the default, so etcd leaves it out. */
	if (!err)
		*ok = json_is_true(json_object_get(resp, "succeeded"));
	json_decref(resp);
	return err;
}

int etcd_txn_put(struct etcd_client *c, const struct etcd_compare *cmp, int n_cmp, const char *key,
		 const char *value, __s64 lease, bool *ok, __s64 *rev)
{
	int err;
	json_t *put = put_request(key, value, lease, &err);

	if (err) {
		json_decref(put);
		return err;
	}
	return txn(c, cmp, n_cmp, "request_put", put, ok, rev);
}

int etcd_txn_delete(struct etcd_client *c, const struct etcd_compare *cmp, int n_cmp,
		    const char *key, bool *ok)
{
	json_t *del = json_object();
	int err = del ? set_b64(del, "key", key) : -ENOMEM;

	if (err) {
		json_decref(del);
		return err;
	}
	return txn(c, cmp, n_cmp, "request_delete_range", del, ok, NULL);
}

/* ---- watch ---- */

void etcd_watch_batch_free(struct etcd_watch_batch *b)
{
	int i;

	for (i = 0; i < b->n_events; i++)
		etcd_kv_free(&b->events[i]);
	free(b->events);
	free(b->deleted);
	memset(b, 0, sizeof(*b));
}

static int parse_events(const json_t *events, struct etcd_watch_batch *b)
{
	size_t i, n = json_array_size(events);
	const json_t *ev;

	if (!n)
		return 0;
	b->events = calloc(n, sizeof(*b->events));
	b->deleted = calloc(n, sizeof(*b->deleted));
	if (!b->events || !b->deleted)
		return -ENOMEM;
	json_array_foreach(events, i, ev)
	{
		const char *type = json_string_value(json_object_get(ev, "type"));
		int err = etcd_kv_from_json(json_object_get(ev, "kv"), &b->events[b->n_events]);

		if (err == -ENOMEM)
			return err;
		if (err)
			continue;
		b->deleted[b->n_events++] = type && !strcmp(type, "DELETE");
	}
	return 0;
}

int etcd_watch_parse(const char *line, size_t len, struct etcd_watch_batch *b)
{
	json_t *root = json_loadb(line, len, 0, NULL);
	json_t *res = json_object_get(root, "result");
	int err = res ? 0 : -EINVAL;

	memset(b, 0, sizeof(*b));
	if (!err)
		err = etcd_json_i64(json_object_get(res, "header"), "revision", &b->revision);
	if (!err)
		err = etcd_json_i64(res, "compact_revision", &b->compact_revision);
	if (!err) {
		b->canceled = json_is_true(json_object_get(res, "canceled"));
		b->created = json_is_true(json_object_get(res, "created"));
		err = parse_events(json_object_get(res, "events"), b);
	}
	json_decref(root);
	if (err)
		etcd_watch_batch_free(b);
	return err;
}

struct watch_ctx {
	bool (*fn)(const struct etcd_watch_batch *b, void *arg);
	void *arg;
	const atomic_bool *stop;
	struct http_body line;
	__s64 compact_rev;
	bool done;  /* fn said stop, or etcd canceled */
	bool heard; /* the member answered at least once */
	int err;
};

/* One complete line of the stream. */
static void watch_line(struct watch_ctx *w, const char *line, size_t len)
{
	struct etcd_watch_batch b;

	if (etcd_watch_parse(line, len, &b)) {
		w->err = -EPROTO;
		w->done = true;
		return;
	}
	w->heard = true;
	if (b.canceled) {
		w->compact_rev = b.compact_revision;
		w->err = b.compact_revision ? 0 : -ECANCELED;
		w->done = true;
	} else if (!w->fn(&b, w->arg)) {
		w->done = true;
	}
	etcd_watch_batch_free(&b);
}

static bool watch_take_line(void *arg, const char *line, size_t len)
{
	struct watch_ctx *w = arg;

	watch_line(w, line, len);
	return !w->done;
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct watch_ctx *w = arg;

	if (w->done)
		return 0; /* 0 ends the transfer */
	return http_lines_feed(&w->line, ptr, size * nmemb, watch_take_line, w);
}

static int watch_progress(void *arg, curl_off_t dlt, curl_off_t dl, curl_off_t ult, curl_off_t ul)
{
	const struct watch_ctx *w = arg;

	(void)dlt;
	(void)dl;
	(void)ult;
	(void)ul;
	return atomic_load(w->stop) ? 1 : 0;
}

static char *watch_body(const char *prefix, __s64 start_rev)
{
	json_t *req = json_object(), *create = json_object();
	char end[ETCD_URL_LEN], *body = NULL;

	etcd_prefix_end(prefix, end, sizeof(end));
	if (req && create && !set_b64(create, "key", prefix) &&
	    !set_b64(create, "range_end", end) && !set_i64(create, "start_revision", start_rev) &&
	    !json_object_set(req, "create_request", create))
		body = json_dumps(req, JSON_COMPACT);
	json_decref(create);
	json_decref(req);
	return body;
}

int etcd_watch(struct etcd_client *c, const char *prefix, __s64 start_rev,
	       bool (*fn)(const struct etcd_watch_batch *b, void *arg), void *arg,
	       const atomic_bool *stop, __s64 *compact_rev)
{
	struct watch_ctx w = {
		.fn = fn, .arg = arg, .stop = stop, .line = { .max = MAX_WATCH_LINE }
	};
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	char *body = watch_body(prefix, start_rev), url[ETCD_URL_LEN + 16];
	CURLcode cc;

	*compact_rev = 0;
	if (!headers || !body) {
		curl_slist_free_all(headers);
		free(body);
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "%s/v3/watch", c->endpoints[c->current]);
	curl_easy_reset(c->curl);
	set_common(c->curl, c, url, headers);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	/* Renewed now and then, so a member that went silent is noticed. */
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, watch_progress);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, &w);
	cc = curl_easy_perform(c->curl);
	curl_slist_free_all(headers);
	free(body);
	free(w.line.data);
	*compact_rev = w.compact_rev;
	if (w.done || atomic_load(stop))
		return w.err;
	/* The stream broke, or the member never answered: try the next one. */
	if (cc != CURLE_OPERATION_TIMEDOUT || !w.heard)
		c->current = (c->current + 1) % c->n_endpoints;
	return cc == CURLE_OK ? -EPIPE : curl_errno(cc);
}
