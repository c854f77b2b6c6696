// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "api.h"
#include "conndeadline.h"
#include "log.h"
#include "netparse.h"
#include "secretfile.h"
#include "utf8text.h"
#include "worker.h"

#define API_PREFIX	     "/api/v1/rollouts"
#define MAX_BODY	     65536
#define MAX_TOKEN	     512
#define CONNECTION_TIMEOUT_S 10
#define CONNECTION_LIMIT     128
/*
 * One address may hold this many TCP connections: a single host cannot
 * take the listener's whole connection limit for itself.
 */
#define PER_IP_CONNECTION_LIMIT 8
/* Accept (or the previous answer) to the end of the answer, whatever trickles in. */
#define REQUEST_DEADLINE_MS 10000
/*
 * /healthz and /readyz fail once the last tick ended this long ago: a few
 * ticks, and never less than 5 s, so that one slow tick is not a failure.
 */
#define TICK_STALE_TICKS  4
#define TICK_STALE_MIN_MS 5000
#define TICK_AGE_HEADER	  "Canaryd-Last-Tick-Age-Seconds"

/* Token file and certificate are checked for changes this often. */
#define SECRETS_CHECK_MS 500

struct api_server {
	struct agent *agent;
	api_metrics_fn metrics;
	struct MHD_Daemon *unix_daemon;
	struct MHD_Daemon *tcp_daemon;
	char socket_path[108];
	/* The token is replaced by the watcher while requests check it. */
	pthread_mutex_t token_lock;
	char token[MAX_TOKEN];
	size_t token_len; /* 0: no token file, TCP is read-only */
	const char *token_path;
	struct file_stamp token_stamp;
	/* TLS on the TCP listener: PEMs in use, kept until its daemon stops. */
	const char *cert_path, *key_path;
	struct file_stamp cert_stamp, key_stamp;
	char *cert_pem, *key_pem;
	struct worker *watcher;
};

/* Which listener a request came in on. */
struct listener {
	struct api_server *srv;
	bool tcp;
	struct conn_deadline *deadline;
};

static struct listener unix_listener, tcp_listener;
static unsigned long long tick_stale_ms = TICK_STALE_MIN_MS;

/* ---- routing, without sockets ---- */

static void reply_json(struct api_reply *r, unsigned int status, json_t *obj)
{
	r->status = status;
	r->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	r->content_type = "application/json";
	json_decref(obj);
}

static void reply_error(struct api_reply *r, unsigned int status, const char *msg)
{
	/*
	 * Messages may quote a name from the URL, which can hold any byte,
	 * or a Prometheus error; JSON strings must be UTF-8.
	 */
	reply_json(r, status, json_pack("{s:o}", "error", utf8_json_string(msg)));
}

#define READ_METHODS "GET, HEAD"

/* 405, naming the methods the route does take. */
static void reply_method(struct api_reply *r, const char *allow)
{
	reply_error(r, 405, !strcmp(allow, "POST") ? "use POST" : "use GET");
	r->allow = allow;
}

static void reply_text(struct api_reply *r, unsigned int status, const char *text)
{
	r->status = status;
	r->body = strdup(text);
	r->content_type = "text/plain; charset=utf-8";
}

static unsigned long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

/*
 * Health follows the tick loop, not just the process: a loop that is stuck
 * (deadlocked, blocked in a call) makes both routes fail, with the age of
 * its last completed tick, while the API's own threads still answer.
 */
static void reply_health(const struct agent *a, bool readiness, struct api_reply *r)
{
	unsigned long long done = __atomic_load_n(&a->tick_done_ms, __ATOMIC_ACQUIRE);
	double age_s, limit_s = (double)tick_stale_ms / 1000.0;

	if (!done)
		return reply_text(r, 503, "no tick yet\n");
	age_s = (double)(mono_ms() - done) / 1000.0;
	snprintf(r->tick_age, sizeof(r->tick_age), "%.3f", age_s);
	if (age_s > limit_s) {
		char text[128];

		snprintf(text, sizeof(text), "stalled: last tick %.1f s ago (limit %.1f s)\n",
			 age_s, limit_s);
		return reply_text(r, 503, text);
	}
	if (readiness)
		return a->ready ? reply_text(r, 200, "ready\n") : reply_text(r, 503, "not ready\n");
	reply_text(r, 200, "ok\n");
}

/* {"weight": 12.5}: a percent with at most 2 decimals, to basis points. */
static int parse_weight_body(const char *body, size_t len, __u16 *bp, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *obj, *w;
	double pct, scaled;

	obj = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj) {
		snprintf(err, errlen, "body is not JSON: %s", jerr.text);
		return -1;
	}
	w = json_object_get(obj, "weight");
	if (!json_is_number(w) || json_object_size(obj) != 1) {
		json_decref(obj);
		snprintf(err, errlen, "expected {\"weight\": PERCENT}");
		return -1;
	}
	pct = json_number_value(w);
	json_decref(obj);
	scaled = pct * 100.0;
	if (!(pct >= 0 && pct <= 100) || fabs(scaled - round(scaled)) > 1e-6) {
		snprintf(err, errlen, "weight must be within 0..100 with at most 2 decimals");
		return -1;
	}
	*bp = (__u16)lround(scaled);
	return 0;
}

static void route_verb(struct agent *a, const char *name, const char *verb_name, const char *body,
		       size_t len, struct api_reply *r)
{
	char err[AGENT_ERR_LEN] = "";
	enum rollout_verb verb;
	__u16 bp = 0;
	int rc;

	if (!strcmp(verb_name, "weight")) {
		verb = VERB_SET_WEIGHT;
		if (parse_weight_body(body, len, &bp, err, sizeof(err)))
			return reply_error(r, 400, err);
	} else if (rollout_verb_parse(verb_name, &verb) || verb == VERB_SET_WEIGHT) {
		return reply_error(r, 404, "unknown action");
	}
	rc = agent_verb(a, name, verb, bp, err, sizeof(err));
	if (rc == -ENOENT)
		return reply_error(r, 404, err);
	if (rc == -EPERM)
		return reply_error(r, 409, err);
	if (rc == -EAGAIN) /* the state directory takes no writes: try again later */
		return reply_error(r, 503, err);
	if (rc)
		return reply_error(r, 400, err);
	reply_json(r, 200, agent_rollout_json(a, name));
}

/* GET /api/v1/rollouts/NAME/history: how its past revisions ended. */
static void route_history(struct agent *a, const char *name, bool get, struct api_reply *r)
{
	json_t *obj, *history;

	if (!get)
		return reply_method(r, READ_METHODS);
	obj = agent_rollout_json(a, name);
	if (!obj)
		return reply_error(r, 404, "no such rollout");
	json_decref(obj);
	history = agent_history_json(a, name);
	reply_json(
		r, 200,
		json_pack("{s:s, s:o}", "name", name, "history", history ? history : json_array()));
}

/* "/api/v1/rollouts/NAME[/ACTION]" into its parts; false if it is not one. */
static bool split_rollout_url(const char *url, char *name, size_t namelen, const char **action)
{
	const char *p = url + strlen(API_PREFIX), *slash;
	size_t n;

	if (*p != '/')
		return false;
	p++;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0 || n >= namelen)
		return false;
	memcpy(name, p, n);
	name[n] = '\0';
	*action = slash ? slash + 1 : NULL;
	return !*action || (**action && !strchr(*action, '/'));
}

void api_handle(struct agent *a, const char *method, const char *url, const char *body,
		size_t body_len, bool control, struct api_reply *r)
{
	bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	bool post = !strcmp(method, "POST");
	char name[CANARY_NAME_LEN];
	const char *action;

	memset(r, 0, sizeof(*r));
	if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz")) {
		if (!get)
			return reply_method(r, READ_METHODS);
		return reply_health(a, !strcmp(url, "/readyz"), r);
	}
	if (!strcmp(url, API_PREFIX) || !strcmp(url, API_PREFIX "/")) {
		if (!get)
			return reply_method(r, READ_METHODS);
		return reply_json(r, 200, json_pack("{s:o}", "rollouts", agent_rollouts_json(a)));
	}
	if (strncmp(url, API_PREFIX "/", strlen(API_PREFIX) + 1) != 0 ||
	    !split_rollout_url(url, name, sizeof(name), &action))
		return reply_error(r, 404, "no such route");
	if (!action) {
		if (!get)
			return reply_method(r, READ_METHODS);
		json_t *obj = agent_rollout_json(a, name);

		return obj ? reply_json(r, 200, obj) : reply_error(r, 404, "no such rollout");
	}
	if (!strcmp(action, "history"))
		return route_history(a, name, get, r);
	if (!post)
		return reply_method(r, "POST");
	if (!control)
		return reply_error(r, 403, "this listener is read-only");
	route_verb(a, name, action, body, body_len, r);
}

/* ---- libmicrohttpd glue ---- */

struct request {
	char *body;
	size_t len;
	bool too_big;
};

/* Constant time: the comparison takes as long whatever the first wrong byte. */
static bool token_matches(struct api_server *s, const char *header)
{
	const char *given;
	size_t i, len;
	unsigned char diff = 0;
	bool match;

	if (!header || strncmp(header, "Bearer ", 7) != 0)
		return false;
	given = header + 7;
	len = strlen(given);
	pthread_mutex_lock(&s->token_lock);
	for (i = 0; i < s->token_len; i++)
		diff |= (unsigned char)(s->token[i] ^ (i < len ? given[i] : 0));
	match = diff == 0 && len == s->token_len;
	pthread_mutex_unlock(&s->token_lock);
	return match;
}

static bool has_token(struct api_server *s)
{
	bool has;

	pthread_mutex_lock(&s->token_lock);
	has = s->token_len > 0;
	pthread_mutex_unlock(&s->token_lock);
	return has;
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned int status, const char *type,
			     char *body, size_t len, bool gzip, const char *allow,
			     const char *tick_age)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	if (gzip)
		MHD_add_response_header(resp, "Content-Encoding", "gzip");
	if (allow)
		MHD_add_response_header(resp, "Allow", allow);
	if (tick_age && *tick_age)
		MHD_add_response_header(resp, TICK_AGE_HEADER, tick_age);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result queue_error(struct MHD_Connection *c, unsigned int status, const char *msg,
				   const char *allow)
{
	json_t *obj = json_pack("{s:s}", "error", msg);
	char *body = json_dumps(obj, JSON_COMPACT);

	json_decref(obj);
	return queue(c, status, "application/json", body, body ? strlen(body) : 0, false, allow,
		     NULL);
}

/* gzip (RFC 1952) of buf, or NULL. */
static char *gzip_buffer(const char *buf, size_t len, size_t *out_len)
{
	z_stream zs = { 0 };
	uLong bound;
	char *out;

	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return NULL;
	bound = deflateBound(&zs, len) + 32;
	out = malloc(bound);
	if (out) {
		zs.next_in = (Bytef *)buf;
		zs.avail_in = (uInt)len;
		zs.next_out = (Bytef *)out;
		zs.avail_out = (uInt)bound;
		if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
			free(out);
			out = NULL;
		} else {
			*out_len = zs.total_out;
		}
	}
	deflateEnd(&zs);
	return out;
}

static enum MHD_Result serve_metrics(struct api_server *s, struct MHD_Connection *c)
{
	const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
	const char *type = "text/plain; version=0.0.4; charset=utf-8";
	size_t len = 0, zlen = 0;
	char *text;

	text = s->metrics ? s->metrics(s->agent, &len) : NULL;
	if (!text)
		return queue_error(c, 500, "cannot render metrics", NULL);
	if (enc && strstr(enc, "gzip")) {
		char *z = gzip_buffer(text, len, &zlen);

		if (z) {
			free(text);
			return queue(c, 200, type, z, zlen, true, NULL, NULL);
		}
	}
	return queue(c, 200, type, text, len, false, NULL, NULL);
}

/* May this request change state? UNIX socket: yes. TCP: only with the token. */
static unsigned int authorize(const struct listener *l, struct MHD_Connection *c)
{
	const char *auth;

	if (!l->tcp)
		return 0;
	if (!has_token(l->srv))
		return 403;
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!auth)
		return 401;
	return token_matches(l->srv, auth) ? 0 : 403;
}

/* Collect a request body up to MAX_BODY; past that only note it was too big. */
static void take_body(struct request *req, const char *data, size_t *size)
{
	if (req->too_big || req->len + *size > MAX_BODY) {
		req->too_big = true;
	} else {
		char *grown = realloc(req->body, req->len + *size + 1);

		if (grown) {
			memcpy(grown + req->len, data, *size);
			req->body = grown;
			req->len += *size;
			req->body[req->len] = '\0';
		} else {
			req->too_big = true;
		}
	}
	*size = 0;
}

static enum MHD_Result dispatch(const struct listener *l, struct MHD_Connection *c, const char *url,
				const char *method, const struct request *req)
{
	struct api_reply reply;
	unsigned int auth = 0;
	bool mutating = !strcmp(method, "POST");

	if (!strcmp(url, "/metrics")) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			return queue_error(c, 405, "use GET", READ_METHODS);
		return serve_metrics(l->srv, c);
	}
	if (req->too_big)
		return queue_error(c, 413, "request body too large (at most 64 KiB)", NULL);
	if (mutating)
		auth = authorize(l, c);
	if (auth == 401)
		return queue_error(c, 401, "missing bearer token", NULL);
	if (auth == 403 && has_token(l->srv))
		return queue_error(c, 403, "wrong bearer token", NULL);
	api_handle(l->srv->agent, method, url, req->body ? req->body : "", req->len, auth == 0,
		   &reply);
	return queue(c, reply.status, reply.content_type, reply.body,
		     reply.body ? strlen(reply.body) : 0, false, reply.allow, reply.tick_age);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	const struct listener *l = cls;
	struct request *req = *con_cls;

	(void)version;
	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		return MHD_YES; /* called again with the body, if any */
	}
	if (*upload_data_size) {
		take_body(req, upload_data, upload_data_size);
		return MHD_YES;
	}
	return dispatch(l, c, url, method, req);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	const struct listener *l = cls;
	struct request *req = *con_cls;

	(void)toe;
	conn_deadline_request_done(l->deadline, c);
	if (req) {
		free(req->body);
		free(req);
		*con_cls = NULL;
	}
}

/* The options both listeners share, then TCP's and TLS's, into opts. */
static void daemon_options(const struct listener *l, int listen_fd, const struct sockaddr_in *addr,
			   struct MHD_OptionItem *opts)
{
	const struct api_server *s = l->srv;
	int n = 0;

	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
					     NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
					     (intptr_t)conn_deadline_notify, l->deadline };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed,
					     (void *)l };
	if (listen_fd >= 0)
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL };
	else
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, (void *)addr };
	if (l->tcp)
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
						     PER_IP_CONNECTION_LIMIT, NULL };
	if (l->tcp && s->cert_pem) {
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem };
	}
	opts[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
}

/*
 * Both listeners: a connection limit, an idle timeout and an absolute
 * deadline per request; TCP also a limit per client address, and TLS when
 * configured. The TCP listener can hand its socket on (MHD_USE_ITC, for
 * MHD_quiesce_daemon) to a daemon with a renewed certificate.
 */
static struct MHD_Daemon *start_daemon(struct listener *l, int listen_fd,
				       const struct sockaddr_in *addr)
{
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	struct MHD_OptionItem opts[12];
	struct MHD_Daemon *d;
	int err;

	if (l->tcp)
		flags |= MHD_USE_ITC | (l->srv->cert_pem ? MHD_USE_TLS : 0);
	err = conn_deadline_start(CONNECTION_LIMIT, REQUEST_DEADLINE_MS, &l->deadline);
	if (err)
		return NULL;
	daemon_options(l, listen_fd, addr, opts);
	d = MHD_start_daemon(flags, addr ? ntohs(addr->sin_port) : 0, NULL, NULL, on_request, l,
			     MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!d) {
		conn_deadline_stop(l->deadline);
		l->deadline = NULL;
	}
	return d;
}

/*
 * Clears the way for our socket at path: nothing there, or the socket of
 * an agent that died (refused connection), which is removed. A socket
 * that takes a connection, or cannot tell (a full backlog), is a running
 * agent's, and any other file is not ours: both are left alone.
 */
static int clear_stale_socket(const char *path, const struct sockaddr_un *sa)
{
	struct stat sb;
	int fd, rc;

	if (lstat(path, &sb))
		return 0;
	if (!S_ISSOCK(sb.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ? -errno : 0;
	close(fd);
	if (rc != -ECONNREFUSED)
		return -EADDRINUSE;
	unlink(path);
	return 0;
}

/* A listening UNIX socket at path, mode 0600 from the start. */
static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	rc = clear_stale_socket(path, &sa);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc || chmod(path, 0600) || listen(fd, 64)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* Reads the token file into s; on error logs why (never the token). */
static int load_token(struct api_server *s, const char *event)
{
	char token[MAX_TOKEN], why[256];
	struct file_stamp stamp;
	size_t len;
	int err;

	err = secret_read_token(s->token_path, token, sizeof(token), &len, &stamp, why,
				sizeof(why));
	if (err) {
		log_event(CLOG_ERROR, event, "path", s->token_path, "error", why);
		return err;
	}
	pthread_mutex_lock(&s->token_lock);
	memcpy(s->token, token, len + 1);
	s->token_len = len;
	pthread_mutex_unlock(&s->token_lock);
	s->token_stamp = stamp; /* only start-up and the watcher touch it */
	memset(token, 0, sizeof(token));
	return 0;
}

static void free_key(char *pem)
{
	if (pem)
		memset(pem, 0, strlen(pem));
	free(pem);
}

/* Reads the certificate and key; on error logs why and keeps what s had. */
static int load_tls(struct api_server *s, const char *event, char **cert, char **key)
{
	char why[256];
	int err;

	*cert = *key = NULL;
	err = secret_read_pem(s->cert_path, false, cert, &s->cert_stamp, why, sizeof(why));
	if (!err)
		err = secret_read_pem(s->key_path, true, key, &s->key_stamp, why, sizeof(why));
	if (err) {
		log_event(CLOG_ERROR, event, "cert", s->cert_path, "key", s->key_path, "error",
			  why);
		free(*cert);
		free_key(*key);
		*cert = *key = NULL;
	}
	return err;
}

/*
 * Serve a renewed certificate: the running daemon hands its listening
 * socket over (connections waiting in the backlog are kept) to one started
 * with the new PEMs; if that one will not start (a key that does not match
 * the certificate, say), the old PEMs serve again.
 */
static void restart_tls(struct api_server *s, char *cert, char *key)
{
	char *old_cert = s->cert_pem, *old_key = s->key_pem;
	MHD_socket fd = MHD_quiesce_daemon(s->tcp_daemon);

	if (fd == MHD_INVALID_SOCKET) {
		free(cert);
		free_key(key);
		return;
	}
	MHD_stop_daemon(s->tcp_daemon);
	conn_deadline_stop(tcp_listener.deadline);
	s->cert_pem = cert;
	s->key_pem = key;
	s->tcp_daemon = start_daemon(&tcp_listener, fd, NULL);
	if (s->tcp_daemon) {
		log_event(CLOG_INFO, "TLS certificate reloaded", "cert", s->cert_path);
		free(old_cert);
		free_key(old_key);
		return;
	}
	log_event(CLOG_ERROR, "TLS certificate not reloaded: keeping the previous one", "cert",
		  s->cert_path, "error",
		  "the listener did not start with it (key and certificate do not match?)");
	free(cert);
	free_key(key);
	s->cert_pem = old_cert;
	s->key_pem = old_key;
	s->tcp_daemon = start_daemon(&tcp_listener, fd, NULL);
	if (!s->tcp_daemon)
		log_event(CLOG_ERROR, "TCP listener stopped: cannot restart it", "cert",
			  s->cert_path);
}

/* The watcher's step: take a new token file or certificate when one appears. */
static bool check_secrets(void *arg)
{
	struct api_server *s = arg;
	bool cert_changed, key_changed;
	char *cert, *key;

	/* The stamp moves on even when the new file is refused: reported once. */
	if (s->token_path && file_stamp_changed(s->token_path, &s->token_stamp) &&
	    !load_token(s, "token file not reloaded: keeping the previous token"))
		log_event(CLOG_INFO, "token reloaded", "path", s->token_path);
	if (!s->cert_path || !s->tcp_daemon)
		return false;
	cert_changed = file_stamp_changed(s->cert_path, &s->cert_stamp);
	key_changed = file_stamp_changed(s->key_path, &s->key_stamp);
	if ((cert_changed || key_changed) &&
	    !load_tls(s, "TLS certificate not reloaded: keeping the previous one", &cert, &key))
		restart_tls(s, cert, key);
	return false;
}

/* "ADDR:PORT" for the TCP listener; 0.0.0.0 listens on every address. */
static int parse_listen(const char *s, struct sockaddr_in *sa)
{
	const char *colon = strrchr(s, ':');
	char host[INET_ADDRSTRLEN];

	memset(sa, 0, sizeof(*sa));
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	if (parse_ipv4_addr(host, &sa->sin_addr.s_addr, NULL, 0) ||
	    parse_port(colon + 1, &sa->sin_port, NULL, 0))
		return -EINVAL;
	sa->sin_family = AF_INET;
	return 0;
}

static int start_unix(struct api_server *s, const char *path)
{
	char dir[sizeof(s->socket_path)];
	char *slash;
	int fd;

	snprintf(s->socket_path, sizeof(s->socket_path), "%s", path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
	}
	fd = unix_listen(path);
	if (fd < 0)
		return fd;
	unix_listener = (struct listener){ .srv = s, .tcp = false };
	s->unix_daemon = start_daemon(&unix_listener, fd, NULL);
	if (!s->unix_daemon) {
		close(fd);
		return -EIO;
	}
	return 0;
}

static int start_tcp(struct api_server *s, const struct api_opts *o)
{
	struct sockaddr_in sa;
	int err;

	if (parse_listen(o->listen, &sa))
		return -EINVAL;
	s->token_path = o->token_file;
	s->cert_path = o->tls_cert;
	s->key_path = o->tls_key;
	if (s->token_path) {
		err = load_token(s, "cannot read the token file");
		if (err)
			return err;
	}
	if (s->cert_path) {
		err = load_tls(s, "cannot read the TLS certificate or key", &s->cert_pem,
			       &s->key_pem);
		if (err)
			return err;
	}
	tcp_listener = (struct listener){ .srv = s, .tcp = true };
	s->tcp_daemon = start_daemon(&tcp_listener, -1, &sa);
	if (!s->tcp_daemon)
		return s->cert_pem ? -EKEYREJECTED : -EADDRINUSE;
	if (s->token_path || s->cert_path)
		return worker_start(check_secrets, s, SECRETS_CHECK_MS, &s->watcher);
	return 0;
}

int api_start(struct agent *a, const struct api_opts *o, api_metrics_fn metrics,
	      struct api_server **out)
{
	struct api_server *s = calloc(1, sizeof(*s));
	int err = 0;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->token_lock, NULL);
	s->agent = a;
	s->metrics = metrics;
	if ((unsigned long long)o->tick_ms * TICK_STALE_TICKS > TICK_STALE_MIN_MS)
		tick_stale_ms = (unsigned long long)o->tick_ms * TICK_STALE_TICKS;
	if (o->socket_path && *o->socket_path)
		err = start_unix(s, o->socket_path);
	if (err) {
		log_event(CLOG_ERROR, "cannot serve the API socket", "path", o->socket_path,
			  "error",
			  err == -EADDRINUSE ? "in use by a running agent: not replaced" :
					       strerror(-err));
	} else if (o->listen) {
		err = start_tcp(s, o);
		if (err)
			log_event(CLOG_ERROR, "cannot serve the TCP listener", "listen", o->listen,
				  "error", strerror(-err));
	}
	if (err) {
		api_stop(s);
		return err;
	}
	*out = s;
	return 0;
}

void api_stop(struct api_server *s)
{
	if (!s)
		return;
	worker_stop(s->watcher);
	if (s->unix_daemon) {
		MHD_stop_daemon(s->unix_daemon);
		unlink(s->socket_path);
	}
	if (s->tcp_daemon)
		MHD_stop_daemon(s->tcp_daemon);
	conn_deadline_stop(unix_listener.deadline);
	conn_deadline_stop(tcp_listener.deadline);
	unix_listener.deadline = tcp_listener.deadline = NULL;
	/* The token and the key never outlive the server in memory we own. */
	memset(s->token, 0, sizeof(s->token));
	free(s->cert_pem);
	free_key(s->key_pem);
	pthread_mutex_destroy(&s->token_lock);
	free(s);
}
