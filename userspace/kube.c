// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "httpbody.h"
#include "kube.h"
#include "log.h"

/* A list page of 500 slices of 100 endpoints each stays well under this. */
#define MAX_REPLY (32 << 20)
/* One watch event: one object. */
#define MAX_EVENT_LINE (4 << 20)
/* The service-name label's value is a DNS label (63) or a Service name. */
#define MAX_QUERY 2048
/*
 * A watch is silent for as long as nothing changes, so a server that
 * vanished without a FIN or an RST (its host lost, its packets dropped) is
 * otherwise noticed only when the watch's own timeout (5-10 min) ends it:
 * minutes of stale endpoints or state. TCP keepalive probes an idle
 * connection after KEEPIDLE, every KEEPINTVL; TCP_USER_TIMEOUT closes it once
 * probes go unanswered that long. A server that restarted answers the first
 * probe with an RST (15 s); one that is gone is given up after about 45 s.
 * client-go's dialer uses 30 s keepalives, plus HTTP/2 pings we do not have.
 */
#define KEEPIDLE_S	15L
#define KEEPINTVL_S	5L
#define USER_TIMEOUT_MS 30000U

/* ---- client ---- */

static int copy(char *dst, size_t size, const char *src)
{
	if (!src)
		src = "";
	if (strlen(src) >= size)
		return -EINVAL;
	snprintf(dst, size, "%s", src);
	return 0;
}

int kube_client_init(struct kube_client *c, const char *server, const char *token_file,
		     const char *ca_file)
{
	size_t n;

	memset(c, 0, sizeof(*c));
	if (!server || strncmp(server, "http", 4) != 0 ||
	    copy(c->server, sizeof(c->server), server) ||
	    copy(c->token_file, sizeof(c->token_file), token_file) ||
	    copy(c->ca_file, sizeof(c->ca_file), ca_file))
		return -EINVAL;
	n = strlen(c->server);
	if (n && c->server[n - 1] == '/')
		c->server[n - 1] = '\0';
	c->timeout_ms = KUBE_TIMEOUT_MS;
	c->curl = curl_easy_init();
	return c->curl ? 0 : -ENOMEM;
}

int kube_client_in_cluster(struct kube_client *c, const char *sa_dir)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char server[KUBE_URL_LEN], token[PATH_MAX], ca[PATH_MAX];

	if (!host || !*host || !port || !*port)
		return -ENOENT;
	/* An IPv6 service address needs brackets in a URL. */
	snprintf(server, sizeof(server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
		 host, port);
	snprintf(token, sizeof(token), "%s/token", sa_dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", sa_dir);
	return kube_client_init(c, server, token, ca);
}

int kube_client_clone(struct kube_client *dst, const struct kube_client *src)
{
	*dst = *src;
	dst->curl = curl_easy_init();
	return dst->curl ? 0 : -ENOMEM;
}

void kube_client_close(struct kube_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
}

/*
 * The token, read again whenever its file changed: the kubelet rotates a
 * projected service-account token (about hourly) by renaming a new file in.
 * The file is the kubelet's (mode 0644 in a pod), so no mode check here.
 */
static int refresh_token(struct kube_client *c)
{
	FILE *f;
	size_t n;

	if (!c->token_file[0] || !file_stamp_changed(c->token_file, &c->token_seen))
		return 0;
	f = fopen(c->token_file, "re");
	if (!f) {
		c->token[0] = '\0';
		return -EACCES;
	}
	n = fread(c->token, 1, sizeof(c->token) - 1, f);
	fclose(f);
	while (n && (c->token[n - 1] == '\n' || c->token[n - 1] == ' '))
		n--;
	c->token[n] = '\0';
	return n ? 0 : -EACCES;
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

static int set_user_timeout(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	unsigned int ms = USER_TIMEOUT_MS;

	(void)arg;
	/* Best effort: without it keepalive still ends the connection, later. */
	if (purpose == CURLSOCKTYPE_IPCXN)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
	return CURL_SOCKOPT_OK;
}

/* Every connection of the handle, since a watch may reuse a request's. */
static void set_keepalive(CURL *curl)
{
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, KEEPIDLE_S);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, KEEPINTVL_S);
	curl_easy_setopt(curl, CURLOPT_SOCKOPTFUNCTION, set_user_timeout);
}

/* libcurl copies a blob (CURL_BLOB_COPY), so the client's buffers may change afterwards. */
static void set_blob(CURL *curl, CURLoption opt, const char *pem)
{
	struct curl_blob blob = { .data = (void *)pem,
				  .len = strlen(pem),
				  .flags = CURL_BLOB_COPY };

	curl_easy_setopt(curl, opt, &blob);
}

static void set_tls(CURL *curl, const struct kube_tls *t)
{
	if (t->ca_pem[0])
		set_blob(curl, CURLOPT_CAINFO_BLOB, t->ca_pem);
	if (t->cert_file[0])
		curl_easy_setopt(curl, CURLOPT_SSLCERT, t->cert_file);
	if (t->key_file[0])
		curl_easy_setopt(curl, CURLOPT_SSLKEY, t->key_file);
	if (t->cert_pem[0])
		set_blob(curl, CURLOPT_SSLCERT_BLOB, t->cert_pem);
	if (t->key_pem[0])
		set_blob(curl, CURLOPT_SSLKEY_BLOB, t->key_pem);
}

/* Reset the handle for a GET of path; *headers is the list to free afterwards. */
static int prepare(struct kube_client *c, const char *path, struct curl_slist **headers)
{
	char url[KUBE_URL_LEN + MAX_QUERY];
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
	int err = refresh_token(c);

	if (!h)
		return -ENOMEM;
	if (!err && c->token[0]) {
		char auth[KUBE_TOKEN_LEN + 32];
		struct curl_slist *t;

		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
		t = curl_slist_append(h, auth);
		err = t ? 0 : -ENOMEM;
		h = t ? t : h;
	}
	*headers = h;
	if (err)
		return err;
	snprintf(url, sizeof(url), "%s%s", c->server, path);
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L); /* we run in threads */
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)KUBE_CONNECT_MS);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	set_keepalive(c->curl);
	if (c->ca_file[0])
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_file);
	set_tls(c->curl, &c->tls);
	return 0;
}

int kube_request(struct kube_client *c, const char *method, const char *path,
		 const char *content_type, const char *body, long *status, json_t **resp)
{
	struct http_body r = { .max = MAX_REPLY };
	struct curl_slist *headers = NULL, *t;
	CURLcode cc;
	int err;

	*resp = NULL;
	*status = 0;
	err = prepare(c, path, &headers);
	if (!err && body) {
		char ct[128];

		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		t = curl_slist_append(headers, ct);
		err = t ? 0 : -ENOMEM;
		headers = t ? t : headers;
	}
	if (!err) {
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
		if (body)
			curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
		curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, http_body_write);
		curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &r);
		cc = curl_easy_perform(c->curl);
		if (cc == CURLE_OK)
			curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
		err = cc != CURLE_OK ? curl_errno(cc) : 0;
	}
	curl_slist_free_all(headers);
	if (!err) {
		*resp = r.data ? json_loadb(r.data, r.len, 0, NULL) : NULL;
		err = *resp ? 0 : -EPROTO;
	}
	free(r.data);
	return err;
}

int kube_get(struct kube_client *c, const char *path, long *status, json_t **resp)
{
	return kube_request(c, "GET", path, NULL, NULL, status, resp);
}

/* ---- EndpointSlices: parsing ---- */

const char *kube_ep_state_name(enum kube_ep_state s)
{
	static const char *const names[] = { [KUBE_EP_READY] = "ready",
					     [KUBE_EP_TERMINATING] = "terminating",
					     [KUBE_EP_NOT_READY] = "not-ready" };

	return (unsigned int)s < 3 ? names[s] : "unknown";
}

void kube_slice_free(struct kube_slice *s)
{
	free(s->b);
	memset(s, 0, sizeof(*s));
}

/*
 * conditions.ready absent means ready (the API's rule for an unknown
 * state). terminating (v1; v1beta1 with the EndpointSliceTerminatingCondition
 * gate) wins over ready: a terminating pod may still pass its readiness
 * probe, and it must get no new connection either way.
 */
static enum kube_ep_state ep_state(const json_t *ep)
{
	const json_t *cond = json_object_get(ep, "conditions");
	const json_t *ready = json_object_get(cond, "ready");

	if (json_is_true(json_object_get(cond, "terminating")))
		return KUBE_EP_TERMINATING;
	return !ready || json_is_true(ready) ? KUBE_EP_READY : KUBE_EP_NOT_READY;
}

/* conditions.serving, else (absent: an older server or writer) the ready condition's value. */
static bool ep_serving(const json_t *ep)
{
	const json_t *cond = json_object_get(ep, "conditions");
	const json_t *serving = json_object_get(cond, "serving");
	const json_t *ready = json_object_get(cond, "ready");

	if (serving)
		return json_is_true(serving);
	return !ready || json_is_true(ready);
}

static int valid_addr(const char *type, const char *addr)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (!addr || strlen(addr) >= INET6_ADDRSTRLEN)
		return 0;
	return inet_pton(strcmp(type, "IPv6") ? AF_INET : AF_INET6, addr, buf) == 1;
}

/* The slice's ports: a port of 0 or none at all is "every port", which canaryd cannot use. */
static int slice_ports(const json_t *ports, __u16 *out, size_t max, size_t *n)
{
	const json_t *p;
	size_t i;

	*n = 0;
	json_array_foreach(ports, i, p)
	{
		json_int_t port = json_integer_value(json_object_get(p, "port"));

		if (port < 1 || port > 65535 || *n == max)
			return -EINVAL;
		out[(*n)++] = (__u16)port;
	}
	return 0;
}

static int add_endpoint(struct kube_slice *s, const json_t *ep, const char *type,
			const __u16 *ports, size_t n_ports)
{
	enum kube_ep_state st = ep_state(ep);
	bool serving = ep_serving(ep);
	const json_t *addrs = json_object_get(ep, "addresses"), *a;
	size_t i, j;

	json_array_foreach(addrs, i, a)
	{
		struct kube_backend *grown;

		if (!valid_addr(type, json_string_value(a)))
			return -EINVAL;
		grown = realloc(s->b, (s->n + n_ports) * sizeof(*s->b));
		if (!grown)
			return -ENOMEM;
		s->b = grown;
		for (j = 0; j < n_ports; j++) {
			struct kube_backend *b = &s->b[s->n++];

			memset(b, 0, sizeof(*b));
			snprintf(b->addr, sizeof(b->addr), "%s", json_string_value(a));
			b->port = ports[j];
			b->state = st;
			b->serving = serving;
		}
	}
	return 0;
}

int kube_slice_from_json(const json_t *obj, struct kube_slice *s)
{
	const char *name =
		json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	const char *type = json_string_value(json_object_get(obj, "addressType"));
	const json_t *eps = json_object_get(obj, "endpoints"), *ep;
	__u16 ports[64];
	size_t i, n_ports;
	int err = 0;

	memset(s, 0, sizeof(*s));
	if (!name || !*name || strlen(name) >= sizeof(s->name) || !type)
		return -EINVAL;
	snprintf(s->name, sizeof(s->name), "%s", name);
	/* FQDN slices name hosts, not addresses: nothing the data path can use. */
	if (strcmp(type, "IPv4") != 0 && strcmp(type, "IPv6") != 0)
		return 0;
	if (slice_ports(json_object_get(obj, "ports"), ports, 64, &n_ports))
		return -EINVAL;
	json_array_foreach(eps, i, ep)
	{
		err = add_endpoint(s, ep, type, ports, n_ports);
		if (err)
			break;
	}
	if (err) {
		kube_slice_free(s);
		snprintf(s->name, sizeof(s->name), "%s", name);
	}
	return err;
}

/* ---- EndpointSlices: the state ---- */

void kube_slices_free(struct kube_slices *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		kube_slice_free(&s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

void kube_slices_replace(struct kube_slices *dst, struct kube_slices *src)
{
	kube_slices_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

static const char *object_rv(const json_t *obj)
{
	return json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

/* A resourceVersion kept as given: opaque to clients, never empty. */
static int copy_rv(char *dst, size_t size, const char *rv)
{
	if (!rv || !*rv || strlen(rv) >= size)
		return -EINVAL;
	snprintf(dst, size, "%s", rv);
	return 0;
}

static int set_rv(struct kube_slices *s, const char *rv)
{
	return copy_rv(s->rv, sizeof(s->rv), rv);
}

/*
 * What every page of a list carries besides its items: the list's
 * resourceVersion (into rv) and the continue token of the next page (into
 * cont, empty on the last page). *items is the page's array.
 */
static int list_page_meta(const json_t *list, char *rv, size_t rvlen, char *cont, size_t contlen,
			  json_t **items)
{
	const json_t *meta = json_object_get(list, "metadata");
	const char *next = json_string_value(json_object_get(meta, "continue"));

	*items = json_object_get(list, "items");
	if (!json_is_array(*items) ||
	    copy_rv(rv, rvlen, json_string_value(json_object_get(meta, "resourceVersion"))))
		return -EINVAL;
	if (strlen(next ? next : "") >= contlen)
		return -E2BIG;
	snprintf(cont, contlen, "%s", next ? next : "");
	return 0;
}

static long find_slice(const struct kube_slices *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].name, name))
			return (long)i;
	return -1;
}

/* Put slice (taken) in s, replacing the one of the same name. */
static int upsert(struct kube_slices *s, struct kube_slice *slice)
{
	long i = find_slice(s, slice->name);
	struct kube_slice *grown;

	if (i >= 0) {
		kube_slice_free(&s->v[i]);
		s->v[i] = *slice;
		return 0;
	}
	grown = realloc(s->v, (s->n + 1) * sizeof(*s->v));
	if (!grown) {
		kube_slice_free(slice);
		return -ENOMEM;
	}
	s->v = grown;
	s->v[s->n++] = *slice;
	return 0;
}

static void remove_slice(struct kube_slices *s, const char *name)
{
	long i = find_slice(s, name);

	if (i < 0)
		return;
	kube_slice_free(&s->v[i]);
	s->v[i] = s->v[--s->n];
}

int kube_slices_add_page(struct kube_slices *out, const json_t *list, char *cont, size_t contlen)
{
	json_t *items, *item;
	size_t i;
	int err = list_page_meta(list, out->rv, sizeof(out->rv), cont, contlen, &items);

	if (err)
		return err;
	json_array_foreach(items, i, item)
	{
		struct kube_slice s;

		err = kube_slice_from_json(item, &s);
		if (!err)
			err = upsert(out, &s);
		if (err)
			return err;
	}
	return 0;
}

int kube_event_parse(const char *line, size_t len, struct kube_event *ev)
{
	static const char *const types[] = {
		[KUBE_EV_ADDED] = "ADDED",     [KUBE_EV_MODIFIED] = "MODIFIED",
		[KUBE_EV_DELETED] = "DELETED", [KUBE_EV_BOOKMARK] = "BOOKMARK",
		[KUBE_EV_GONE] = "",	       [KUBE_EV_ERROR] = "ERROR"
	};
	json_t *root = json_loadb(line, len, 0, NULL);
	const char *type = json_string_value(json_object_get(root, "type"));
	json_t *obj = json_object_get(root, "object");
	size_t i;

	memset(ev, 0, sizeof(*ev));
	for (i = 0; type && i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i][0] && !strcmp(type, types[i]))
			break;
	if (!type || !json_is_object(obj) || i == sizeof(types) / sizeof(types[0])) {
		json_decref(root);
		return -EINVAL;
	}
	ev->type = (enum kube_event_type)i;
	ev->object = json_incref(obj);
	json_decref(root);
	if (ev->type == KUBE_EV_ERROR) {
		ev->code = (long)json_integer_value(json_object_get(obj, "code"));
		if (ev->code == 410)
			ev->type = KUBE_EV_GONE;
	}
	return 0;
}

void kube_event_free(struct kube_event *ev)
{
	json_decref(ev->object);
	memset(ev, 0, sizeof(*ev));
}

int kube_slices_apply(struct kube_slices *s, const struct kube_event *ev)
{
	const char *rv = object_rv(ev->object);
	struct kube_slice slice;
	int err;

	switch (ev->type) {
	case KUBE_EV_GONE:
		return -ESTALE;
	case KUBE_EV_ERROR:
		return -EPROTO;
	case KUBE_EV_BOOKMARK:
		return set_rv(s, rv);
	default:
		break;
	}
	err = kube_slice_from_json(ev->object, &slice);
	if (err) {
		kube_slice_free(&slice);
		return err;
	}
	if (ev->type == KUBE_EV_DELETED) {
		remove_slice(s, slice.name);
		kube_slice_free(&slice);
	} else {
		err = upsert(s, &slice);
	}
	return err ? err : set_rv(s, rv);
}

static int backend_cmp(const void *a, const void *b)
{
	const struct kube_backend *x = a, *y = b;
	int c = strcmp(x->addr, y->addr);

	if (c)
		return c;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->state != y->state)
		return (int)x->state - (int)y->state; /* the best state first */
	return (int)y->serving - (int)x->serving;     /* then serving first */
}

long kube_slices_backends(const struct kube_slices *s, struct kube_backend **out)
{
	size_t total = 0, i, n = 0;
	struct kube_backend *v;

	*out = NULL;
	for (i = 0; i < s->n; i++)
		total += s->v[i].n;
	if (!total)
		return 0;
	v = malloc(total * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < s->n; i++) {
		memcpy(v + n, s->v[i].b, s->v[i].n * sizeof(*v));
		n += s->v[i].n;
	}
	qsort(v, n, sizeof(*v), backend_cmp);
	/* Sorted with the best state first: keep the first of each address:port. */
	for (i = 0, n = 0; i < total; i++)
		if (!n || strcmp(v[n - 1].addr, v[i].addr) != 0 || v[n - 1].port != v[i].port)
			v[n++] = v[i];
	*out = v;
	return (long)n;
}

long kube_backoff_ms(unsigned int attempt, long base_ms, long max_ms, double r)
{
	long d = base_ms, half;

	while (attempt-- && d < max_ms)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	if (r < 0)
		r = 0;
	if (r > 1)
		r = 1;
	half = d / 2;
	return half + (long)((double)(d - half) * r);
}

/* ---- objects of any kind, by name ---- */

void kube_objects_free(struct kube_objects *s)
{
	json_decref(s->by_name);
	memset(s, 0, sizeof(*s));
}

void kube_objects_replace(struct kube_objects *dst, struct kube_objects *src)
{
	kube_objects_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

static int objects_set_rv(struct kube_objects *s, const char *rv)
{
	return copy_rv(s->rv, sizeof(s->rv), rv);
}

static const char *object_name(const json_t *obj)
{
	const char *name =
		json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));

	return name && *name && strlen(name) < KUBE_NAME_LEN ? name : NULL;
}

static int objects_put(struct kube_objects *s, json_t *obj)
{
	const char *name = object_name(obj);

	if (!name)
		return -EINVAL;
	if (!s->by_name)
		s->by_name = json_object();
	if (!s->by_name || json_object_set(s->by_name, name, obj))
		return -ENOMEM;
	return 0;
}

int kube_objects_add_page(struct kube_objects *out, const json_t *list, char *cont, size_t contlen)
{
	json_t *items, *item;
	size_t i;
	int err = list_page_meta(list, out->rv, sizeof(out->rv), cont, contlen, &items);

	if (err)
		return err;
	if (!out->by_name)
		out->by_name = json_object();
	if (!out->by_name)
		return -ENOMEM;
	json_array_foreach(items, i, item)
	{
		err = objects_put(out, item);
		if (err)
			return err;
	}
	return 0;
}

int kube_objects_apply(struct kube_objects *s, const struct kube_event *ev)
{
	const char *name;
	int err = 0;

	switch (ev->type) {
	case KUBE_EV_GONE:
		return -ESTALE;
	case KUBE_EV_ERROR:
		return -EPROTO;
	case KUBE_EV_BOOKMARK:
		return objects_set_rv(s, object_rv(ev->object));
	case KUBE_EV_DELETED:
		name = object_name(ev->object);
		if (!name)
			return -EINVAL;
		json_object_del(s->by_name, name);
		break;
	default:
		err = objects_put(s, ev->object);
		break;
	}
	return err ? err : objects_set_rv(s, object_rv(ev->object));
}

size_t kube_objects_count(const struct kube_objects *s)
{
	return s->by_name ? json_object_size(s->by_name) : 0;
}

/* ---- the list+watch loop ---- */

struct watch_ctx {
	struct kube_lw *lw;
	void *state;
	int err; /* why the stream ended early: -ESTALE (410), -EPROTO, -ENOMEM; 1: fn said stop */
	bool done; /* err is set */
};

/* Sleep ms, in steps, so that a stop is seen within 50 ms. */
static void nap(long ms, const atomic_bool *stop)
{
	struct timespec ts = { 0, 50 * 1000000L };

	for (; ms > 0 && !atomic_load(stop); ms -= 50)
		nanosleep(&ts, NULL);
}

static double rand01(void)
{
	return (double)random() / (double)RAND_MAX;
}

static void watch_line(struct watch_ctx *w, const char *line, size_t len)
{
	struct kube_event ev;
	int err = kube_event_parse(line, len, &ev);

	if (!err)
		err = w->lw->ops->apply(w->state, &ev);
	if (err == -EPROTO)
		log_event(CLOG_WARN, "kube watch error event", "message",
			  json_string_value(json_object_get(ev.object, "message")));
	kube_event_free(&ev);
	if (err) {
		w->err = err;
		w->done = true;
	} else if (!w->lw->fn(w->state, w->lw->arg)) {
		w->err = 1;
		w->done = true;
	}
}

static bool watch_take_line(void *arg, const char *line, size_t len)
{
	struct watch_ctx *w = arg;

	watch_line(w, line, len);
	return !w->done;
}

void kube_log_refused(const char *what, const char *path, long status, const json_t *resp)
{
	char code[24];

	snprintf(code, sizeof(code), "%ld", status);
	log_event(CLOG_WARN, what, "path", path, "status", code, "message",
		  json_string_value(json_object_get(resp, "message")));
}

/* One list, page by page, into state (zeroed). -ESTALE: a continue token expired (410). */
static int list_all(struct kube_client *c, struct kube_lw *lw, void *state)
{
	char path[KUBE_URL_LEN + MAX_QUERY], query[KUBE_CONTINUE_LEN + 64];
	char cont[KUBE_CONTINUE_LEN] = "";
	json_t *resp;
	long status;
	int err;

	memset(state, 0, lw->ops->state_size);
	do {
		snprintf(query, sizeof(query), "limit=%u%s%s", lw->limit ? lw->limit : 500,
			 cont[0] ? "&continue=" : "", cont);
		lw->path(lw->arg, query, path, sizeof(path));
		err = kube_get(c, path, &status, &resp);
		/*
		 * Each time: a 403 is most often a namespace without the
		 * RoleBinding (docs/kubernetes.md#rbac), and the retries that
		 * follow would otherwise be silent.
		 */
		if (!err && status != 200 && status != 410)
			kube_log_refused("kube list refused", path, status, resp);
		if (!err && status != 200)
			err = status == 410 ? -ESTALE : -EIO;
		if (!err)
			err = lw->ops->add_page(state, resp, cont, sizeof(cont));
		json_decref(resp);
	} while (!err && cont[0]);
	if (err)
		lw->ops->free(state);
	return err;
}

/*
 * One watch request from the state's resourceVersion. 0: the server ended
 * it (timeoutSeconds); 1: fn asked to stop; -ESTALE: 410, list again;
 * other: an error.
 */
static int watch_once(struct kube_client *c, struct kube_lw *lw, void *state)
{
	struct watch_ctx w = { .lw = lw, .state = state };
	char path[KUBE_URL_LEN + MAX_QUERY], query[KUBE_RV_LEN + 128];
	/* 5..10 min, as client-go's reflector: watches started together end apart. */
	long timeout_s = 300 + random() % 301;
	int rc;

	snprintf(query, sizeof(query),
		 "watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld&resourceVersion=%s",
		 timeout_s, lw->ops->rv(state));
	lw->path(lw->arg, query, path, sizeof(path));
	rc = kube_stream(c, path, timeout_s, watch_take_line, &w, lw->stop);
	/* 1: ended on our side, by a line (w.err says why) or a stop (w.err 0). */
	return rc == 1 ? w.err : rc;
}

int kube_list_once(struct kube_client *c, struct kube_lw *lw, void *state)
{
	int err = lw->prepare ? lw->prepare(c, lw->arg) : 0;

	memset(state, 0, lw->ops->state_size);
	return err ? err : list_all(c, lw, state);
}

/* List until it works (or stop), then hand the whole new state over. */
static int relist(struct kube_client *c, struct kube_lw *lw, void *state)
{
	long base = lw->backoff_base_ms ? lw->backoff_base_ms : 200;
	long max = lw->backoff_max_ms ? lw->backoff_max_ms : 30000;
	unsigned int attempt = 0;
	void *fresh = calloc(1, lw->ops->state_size);
	int rc = 1;

	if (!fresh)
		return -ENOMEM;
	while (!atomic_load(lw->stop)) {
		int err = kube_list_once(c, lw, fresh);

		if (!err) {
			/* Wholesale: whatever the lost events did, the list is the truth. */
			lw->ops->replace(state, fresh);
			rc = lw->fn(state, lw->arg) ? 0 : 1;
			break;
		}
		if (err == -ENOENT || err == -ENOMEM) {
			rc = err;
			break;
		}
		nap(kube_backoff_ms(attempt++, base, max, rand01()), lw->stop);
	}
	free(fresh);
	return rc;
}

int kube_list_watch(struct kube_client *c, struct kube_lw *lw)
{
	long base = lw->backoff_base_ms ? lw->backoff_base_ms : 200;
	long max = lw->backoff_max_ms ? lw->backoff_max_ms : 30000;
	unsigned int attempt = 0;
	void *state = calloc(1, lw->ops->state_size);
	int err;

	if (!state)
		return -ENOMEM;
	err = relist(c, lw, state);
	while (!err && !atomic_load(lw->stop)) {
		err = watch_once(c, lw, state);
		if (err > 0 || err == -ENOMEM)
			break;
		if (err == -ESTALE) {
			log_event(CLOG_INFO, "kube watch expired (410): listing again", "rv",
				  lw->ops->rv(state));
			if (lw->relists)
				(*lw->relists)++; /* read as it runs (kubewatch prints it) */
			err = relist(c, lw, state);
			attempt = 0;
		} else if (err) {
			nap(kube_backoff_ms(attempt++, base, max, rand01()), lw->stop);
			err = 0;
		} else {
			attempt = 0; /* a watch that ran its time: resume from its version */
		}
	}
	lw->ops->free(state);
	free(state);
	return err > 0 ? 0 : err;
}

/* ---- EndpointSlices through the loop ---- */

static int slices_add_page(void *state, const json_t *list, char *cont, size_t contlen)
{
	return kube_slices_add_page(state, list, cont, contlen);
}

static int slices_apply(void *state, const struct kube_event *ev)
{
	return kube_slices_apply(state, ev);
}

static void slices_replace(void *dst, void *src)
{
	kube_slices_replace(dst, src);
}

static void slices_free(void *state)
{
	kube_slices_free(state);
}

static const char *slices_rv(const void *state)
{
	return ((const struct kube_slices *)state)->rv;
}

static const struct kube_lw_ops slices_ops = {
	.state_size = sizeof(struct kube_slices),
	.add_page = slices_add_page,
	.apply = slices_apply,
	.replace = slices_replace,
	.free = slices_free,
	.rv = slices_rv,
};

static void slices_path(void *arg, const char *query, char *path, size_t len)
{
	const struct kube_watch_opts *o = arg;

	snprintf(path, len,
		 "/apis/discovery.k8s.io/%s/namespaces/%s/endpointslices"
		 "?labelSelector=kubernetes.io%%2Fservice-name%%3D%s&%s",
		 o->api, o->ns, o->service, query);
}

/* Which EndpointSlice API the server has: v1 (1.21+), else v1beta1 (1.17..1.24). */
static int discover(struct kube_client *c, void *arg)
{
	static const char *const apis[] = { "v1", "v1beta1" };
	struct kube_watch_opts *o = arg;
	char path[64];
	json_t *resp;
	long status = 0;
	size_t i;

	if (o->api[0])
		return 0;
	for (i = 0; i < 2; i++) {
		int err;

		snprintf(path, sizeof(path), "/apis/discovery.k8s.io/%s", apis[i]);
		err = kube_get(c, path, &status, &resp);
		json_decref(resp);
		if (err && err != -EPROTO)
			return err;
		if (!err && status == 200) {
			snprintf(o->api, sizeof(o->api), "%s", apis[i]);
			return 0;
		}
	}
	return status == 404 ? -ENOENT : -EIO;
}

static bool slices_changed(const void *state, void *arg)
{
	const struct kube_watch_opts *o = arg;

	return o->fn(state, o->arg);
}

static void slices_lw(struct kube_watch_opts *o, struct kube_lw *lw)
{
	memset(lw, 0, sizeof(*lw));
	lw->ops = &slices_ops;
	lw->path = slices_path;
	lw->prepare = discover;
	lw->fn = slices_changed;
	lw->arg = o;
	lw->stop = o->stop;
	lw->limit = o->limit;
	lw->backoff_base_ms = o->backoff_base_ms;
	lw->backoff_max_ms = o->backoff_max_ms;
	lw->relists = &o->relists;
}

int kube_list_endpointslices(struct kube_client *c, struct kube_watch_opts *o,
			     struct kube_slices *out)
{
	struct kube_lw lw;

	slices_lw(o, &lw);
	return kube_list_once(c, &lw, out);
}

int kube_watch_endpointslices(struct kube_client *c, struct kube_watch_opts *o)
{
	struct kube_lw lw;

	slices_lw(o, &lw);
	return kube_list_watch(c, &lw);
}

/* ---- a generic watch stream ---- */

struct stream_ctx {
	struct http_body line;
	bool (*fn)(void *arg, const char *line, size_t len);
	void *arg;
	const atomic_bool *stop;
	bool done;
};

static bool stream_take_line(void *arg, const char *line, size_t len)
{
	struct stream_ctx *s = arg;

	if (!s->fn(s->arg, line, len))
		s->done = true;
	return !s->done;
}

static size_t stream_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct stream_ctx *s = arg;

	if (s->done)
		return 0;
	return http_lines_feed(&s->line, ptr, size * nmemb, stream_take_line, s);
}

static int stream_progress(void *arg, curl_off_t dlt, curl_off_t dl, curl_off_t ult, curl_off_t ul)
{
	const struct stream_ctx *s = arg;

	(void)dlt;
	(void)dl;
	(void)ult;
	(void)ul;
	return atomic_load(s->stop) ? 1 : 0;
}

int kube_stream(struct kube_client *c, const char *path, long timeout_s,
		bool (*fn)(void *arg, const char *line, size_t len), void *arg,
		const atomic_bool *stop)
{
	struct stream_ctx s = {
		.line = { .max = MAX_EVENT_LINE }, .fn = fn, .arg = arg, .stop = stop
	};
	struct curl_slist *headers = NULL;
	long status = 0;
	CURLcode cc;
	int err = prepare(c, path, &headers);

	if (err) {
		curl_slist_free_all(headers);
		return err;
	}
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (timeout_s + 30) * 1000L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, stream_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, stream_progress);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, &s);
	cc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	free(s.line.data);
	if (s.done || atomic_load(stop))
		return 1;
	if (status == 410)
		return -ESTALE;
	if (status != 200)
		return -EIO;
	return cc == CURLE_OK ? 0 : curl_errno(cc);
}
