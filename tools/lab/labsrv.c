/*
 * labsrv - a tiny HTTP/1.1 backend for the canaryd test labs.
 *
 * Every request, whatever its method or path, is answered with a short
 * text/plain body holding the backend name, plus an "X-Backend: NAME"
 * header, so a load generator can tell which backend served it.
 *
 * Faults can be injected to make a backend look bad: a fraction of error
 * statuses, added latency, and a fraction of TCP resets.  The same knobs
 * can be changed while running through a small key=value control file, so
 * a test can turn a canary bad mid-run without restarting it.
 *
 * Design: the main thread accepts; each connection gets one detached
 * thread, at most MAX_CONNS at a time.  SIGTERM/SIGINT only set a flag;
 * the main thread sees it within ACCEPT_POLL_MS and returns 0, which ends
 * the connection threads with the process.
 *
 * Build: gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread \
 *            -o build/labsrv tools/lab/labsrv.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LAB_PROG "labsrv"
#include "labcommon.h"

#define MAX_CONNS	  512
#define HDR_MAX		  8192		/* request line + headers */
#define BUF_SIZE	  (2 * HDR_MAX) /* room for pipelined bytes too */
#define BODY_MAX	  (64 * 1024)
#define NAME_MAX_LEN	  63	     /* labload keeps 63 chars */
#define IDLE_TIMEOUT_S	  60	     /* per recv() on a connection */
#define SEND_TIMEOUT_S	  10	     /* per send() on a connection */
#define MAX_REQS_PER_CONN 10000000UL /* then we close politely */
#define LATENCY_MAX_MS	  600000L
#define ACCEPT_POLL_MS	  200
#define CONTROL_PERIOD_NS (100 * 1000000LL)
#define CONTROL_MAX	  4096 /* control file bytes read */

/* What the server does with a request; CLI values, maybe overridden. */
struct behaviour {
	int status;
	double error_rate;
	int error_status;
	long latency_ms;
	double reset_rate;
};

/* Per-request decision taken under the lock, acted on outside it. */
struct verdict {
	bool reset;
	int status;
	long latency_ms;
	bool first_bad; /* the first bad answer since the behaviour changed */
};

/* One parsed request head. */
struct request {
	size_t hdr_len; /* bytes up to and including the blank line */
	long body_len;	/* Content-Length, 0 if absent */
	bool head;	/* HEAD: send the headers only */
	bool close;	/* close the connection after answering */
};

enum read_result {
	RD_OK,
	RD_EOF,		 /* peer closed, timed out or errored: just close */
	RD_BAD,		 /* 400 */
	RD_HDR_TOO_BIG,	 /* 431 */
	RD_BODY_TOO_BIG, /* 413 */
	RD_UNSUPPORTED,	 /* 501: Transfer-Encoding */
};

enum conn_end { END_CLOSE, END_RESET };

struct conn {
	int fd;
	size_t len; /* bytes currently held in buf */
	char buf[BUF_SIZE];
};

/* State shared by all connection threads; every field is under lock. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t slot_freed;  /* signalled when a connection ends */
	unsigned int active;	    /* live connection threads */
	struct behaviour base;	    /* from the command line */
	struct behaviour cur;	    /* base + control file overrides */
	const char *control_path;   /* NULL without --control */
	int64_t control_checked_ns; /* CLOCK_MONOTONIC of the last stat() */
	bool control_loaded;
	struct stat control_st; /* version of the file last applied */
	bool bad_logged;	/* a bad answer was logged since the last change */
	uint64_t rng;
} g = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.slot_freed = PTHREAD_COND_INITIALIZER,
};

static const char *g_name;	     /* --name, read-only after start */
static volatile sig_atomic_t g_stop; /* main thread only: workers die with it */

/* Uniform in [0, 1): a rate of 0 never fires and a rate of 1 always does. */
static double rng_unit(uint64_t *state)
{
	return (double)(lab_rng_next(state) >> 11) * 0x1.0p-53;
}

/* FNV-1a, so that the default seed differs per backend but is repeatable. */
static uint64_t seed_from_name(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < NAME_MAX_LEN && name[i]; i++)
		h = (h ^ (unsigned char)name[i]) * 0x100000001b3ULL;
	return h;
}

/* ---- value parsing, shared by the command line and the control file ---- */

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_rate(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* The negated test also rejects NaN. */
	if (errno || end == s || *end != '\0' || !(v >= 0.0 && v <= 1.0))
		return false;
	*out = v;
	return true;
}

/*
 * 204 and 304 are refused because those responses must not carry a body,
 * and we always send one.
 */
static bool parse_status(const char *s, int *out)
{
	long v;

	if (!parse_long(s, 200, 599, &v) || v == 204 || v == 304)
		return false;
	*out = (int)v;
	return true;
}

static const char *reason_phrase(int status)
{
	static const struct {
		int code;
		const char *text;
	} table[] = {
		{ 200, "OK" },
		{ 201, "Created" },
		{ 202, "Accepted" },
		{ 400, "Bad Request" },
		{ 401, "Unauthorized" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 408, "Request Timeout" },
		{ 413, "Content Too Large" },
		{ 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 502, "Bad Gateway" },
		{ 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].code == status)
			return table[i].text;
	return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

/* ---- control file ---- */

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* Returns false when the key is known but its value is not acceptable. */
static bool control_set(struct behaviour *b, const char *key, const char *val, bool *known)
{
	long v;

	*known = true;
	if (!strcmp(key, "status"))
		return parse_status(val, &b->status);
	if (!strcmp(key, "error_rate"))
		return parse_rate(val, &b->error_rate);
	if (!strcmp(key, "reset_rate"))
		return parse_rate(val, &b->reset_rate);
	if (!strcmp(key, "latency_ms")) {
		if (!parse_long(val, 0, LATENCY_MAX_MS, &v))
			return false;
		b->latency_ms = v;
		return true;
	}
	*known = false;
	return true;
}

static void control_apply_line(char *line, struct behaviour *b)
{
	char *eq, *key, *val;
	bool known;

	line = trim(line);
	if (*line == '\0' || *line == '#')
		return;
	eq = strchr(line, '=');
	if (!eq) {
		fprintf(stderr, "labsrv: %s: ignoring line without '=': %s\n", g.control_path,
			line);
		return;
	}
	*eq = '\0';
	key = trim(line);
	val = trim(eq + 1);
	if (!control_set(b, key, val, &known))
		fprintf(stderr, "labsrv: %s: bad value for %s: '%s' (ignored)\n", g.control_path,
			key, val);
	else if (!known)
		fprintf(stderr, "labsrv: %s: ignoring unknown key '%s'\n", g.control_path, key);
}

/*
 * The file overrides the command-line values key by key: a key removed
 * from the file (or the whole file removed) falls back to the flag value.
 */
static void control_apply_file(struct behaviour *b)
{
	char text[CONTROL_MAX + 1];
	char *line, *save = NULL;
	FILE *f;
	size_t n;

	f = fopen(g.control_path, "r");
	if (!f)
		return;
	n = fread(text, 1, CONTROL_MAX, f);
	fclose(f);
	text[n] = '\0';
	/* strtok_r consumes the text, so this loop ends within n steps. */
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		control_apply_line(line, b);
}

/*
 * mtime alone can miss a rewrite inside one timestamp tick, so size and
 * inode (a rename-over gives a new one) count as changes too.
 */
static bool same_version(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Called with g.lock held; costs one clock read unless 100 ms have passed. */
static void control_maybe_reload(void)
{
	struct stat st;
	int64_t now;

	if (!g.control_path)
		return;
	now = lab_mono_ns();
	if (g.control_checked_ns && now - g.control_checked_ns < CONTROL_PERIOD_NS)
		return;
	g.control_checked_ns = now;

	if (stat(g.control_path, &st) != 0) {
		g.cur = g.base;
		g.control_loaded = false;
		return;
	}
	if (g.control_loaded && same_version(&st, &g.control_st))
		return;
	g.control_st = st;
	g.control_loaded = true;
	g.cur = g.base;
	g.bad_logged = false;
	control_apply_file(&g.cur);
}

static struct verdict decide(void)
{
	struct verdict v;

	pthread_mutex_lock(&g.lock);
	control_maybe_reload();
	v.reset = rng_unit(&g.rng) < g.cur.reset_rate;
	v.status = rng_unit(&g.rng) < g.cur.error_rate ? g.cur.error_status : g.cur.status;
	v.latency_ms = g.cur.latency_ms;
	v.first_bad = (v.reset || v.status >= 500 || v.latency_ms > 0) && !g.bad_logged;
	if (v.first_bad)
		g.bad_logged = true;
	pthread_mutex_unlock(&g.lock);
	return v;
}

/*
 * Logs when the first bad answer (5xx, reset or delayed) after a behaviour
 * change leaves, in wall-clock milliseconds like the agent's log, so a
 * benchmark measures "time from the first error" exactly instead of
 * between two client snapshots.
 */
static void log_first_bad(const struct verdict *v)
{
	struct timespec ts;

	if (!v->first_bad)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr,
		"labsrv %s: first bad answer realtime_ms=%lld status=%d reset=%d latency_ms=%ld\n",
		g_name ? g_name : "-", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
		v->status, v->reset, v->latency_ms);
}

/* ---- request parsing ---- */

/* Case-insensitive "is HEADER one of the comma separated TOKENs". */
static bool has_token(const char *value, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = value;

	while (*p) {
		size_t len = strcspn(p, ",");
		const char *end = p + len;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - p) == tlen && !strncasecmp(p, token, tlen))
			return true;
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	return false;
}

/* "METHOD SP target SP HTTP/1.x": sets the defaults the version implies. */
static enum read_result parse_request_line(const char *line, struct request *req)
{
	const char *sp1 = strchr(line, ' ');
	const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;

	if (!sp1 || sp1 == line || !sp2 || sp2 == sp1 + 1)
		return RD_BAD;
	if (!strcmp(sp2 + 1, "HTTP/1.1"))
		req->close = false;
	else if (!strcmp(sp2 + 1, "HTTP/1.0"))
		req->close = true; /* HTTP/1.0 closes unless asked not to */
	else
		return RD_BAD;
	req->head = (size_t)(sp1 - line) == 4 && !strncmp(line, "HEAD", 4);
	return RD_OK;
}

static enum read_result parse_header(char *line, struct request *req)
{
	char *colon = strchr(line, ':');
	char *name, *value;
	long len;

	if (!colon || colon == line)
		return RD_BAD;
	*colon = '\0';
	name = line;
	value = trim(colon + 1);
	if (!strcasecmp(name, "Content-Length")) {
		if (!parse_long(value, 0, LONG_MAX, &len))
			return RD_BAD;
		if (len > BODY_MAX)
			return RD_BODY_TOO_BIG;
		req->body_len = len;
	} else if (!strcasecmp(name, "Transfer-Encoding")) {
		/* Chunked bodies are not needed by the labs. */
		return RD_UNSUPPORTED;
	} else if (!strcasecmp(name, "Connection")) {
		if (has_token(value, "close"))
			req->close = true;
		else if (has_token(value, "keep-alive"))
			req->close = false;
	}
	return RD_OK;
}

/* Parses the head held in buf[0..hdr_len), which ends with CRLF CRLF. */
static enum read_result parse_request(const char *buf, size_t hdr_len, struct request *req)
{
	char head[HDR_MAX + 1];
	char *line, *save = NULL;
	enum read_result r;

	memcpy(head, buf, hdr_len);
	head[hdr_len] = '\0';
	req->hdr_len = hdr_len;
	req->body_len = 0;

	line = strtok_r(head, "\r\n", &save);
	if (!line)
		return RD_BAD;
	r = parse_request_line(line, req);
	/* Bounded by the head size: every step consumes at least one line. */
	while (r == RD_OK && (line = strtok_r(NULL, "\r\n", &save)))
		r = parse_header(line, req);
	return r;
}

/* Drops the first n buffered bytes, keeping what a client pipelined. */
static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/*
 * Reads until the buffer holds a whole request head and returns its length
 * through *hdr_len.  Each recv() adds at least one byte and waits at most
 * IDLE_TIMEOUT_S, so the loop ends within HDR_MAX rounds.
 */
static enum read_result read_head(struct conn *c, size_t *hdr_len)
{
	int rounds;

	for (rounds = 0; rounds <= HDR_MAX; rounds++) {
		const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		ssize_t n;

		if (end) {
			*hdr_len = (size_t)(end - c->buf) + 4;
			return *hdr_len <= HDR_MAX ? RD_OK : RD_HDR_TOO_BIG;
		}
		if (c->len >= HDR_MAX)
			return RD_HDR_TOO_BIG;
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return RD_EOF;
		c->len += (size_t)n;
	}
	return RD_EOF;
}

/* Throws the request body away; at most BODY_MAX bytes, IDLE_TIMEOUT_S per recv. */
static bool skip_body(struct conn *c, const struct request *req)
{
	size_t remaining = (size_t)req->body_len;
	size_t buffered = c->len - req->hdr_len;
	size_t take = buffered < remaining ? buffered : remaining;

	conn_consume(c, req->hdr_len + take);
	remaining -= take;
	/* When bytes are still missing the buffer is empty: use it as scratch. */
	while (remaining > 0) {
		size_t want = remaining < sizeof(c->buf) ? remaining : sizeof(c->buf);
		ssize_t n = recv(c->fd, c->buf, want, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		remaining -= (size_t)n;
	}
	return true;
}

static enum read_result read_request(struct conn *c, struct request *req)
{
	size_t hdr_len = 0;
	enum read_result r;

	r = read_head(c, &hdr_len);
	if (r != RD_OK)
		return r;
	r = parse_request(c->buf, hdr_len, req);
	if (r != RD_OK)
		return r;
	return skip_body(c, req) ? RD_OK : RD_EOF;
}

/* ---- responses ---- */

/* SO_SNDTIMEO bounds each send(); each round sends at least one byte. */
static bool send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool send_response(int fd, int status, bool head, bool close)
{
	char out[512];
	int n;

	n = snprintf(out, sizeof(out),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: text/plain\r\n"
		     "Content-Length: %zu\r\n"
		     "X-Backend: %s\r\n"
		     "%s"
		     "\r\n"
		     "%s%s",
		     status, reason_phrase(status), strlen(g_name) + 1, g_name,
		     close ? "Connection: close\r\n" : "", head ? "" : g_name, head ? "" : "\n");
	if (n < 0 || (size_t)n >= sizeof(out))
		return false;
	return send_all(fd, out, (size_t)n);
}

static void sleep_ms(long ms)
{
	struct timespec until;
	int64_t ns = lab_mono_ns() + (int64_t)ms * 1000000LL;
	int i;

	until.tv_sec = ns / 1000000000LL;
	until.tv_nsec = ns % 1000000000LL;
	/* Signals are blocked in connection threads; the cap is belt and braces. */
	for (i = 0; i < 100; i++)
		if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) != EINTR)
			break;
}

/* Answers a request we could not parse; the connection is closed after it. */
static void answer_error(int fd, enum read_result r)
{
	int status = r == RD_HDR_TOO_BIG  ? 431 :
		     r == RD_BODY_TOO_BIG ? 413 :
		     r == RD_UNSUPPORTED  ? 501 :
					    400;

	send_response(fd, status, false, true);
}

/* Serves requests in arrival order until one of them ends the connection. */
static enum conn_end serve(struct conn *c)
{
	unsigned long served;

	for (served = 1; served <= MAX_REQS_PER_CONN; served++) {
		struct request req;
		struct verdict v;
		bool sent;
		enum read_result r = read_request(c, &req);

		if (r == RD_EOF)
			return END_CLOSE;
		if (r != RD_OK) {
			answer_error(c->fd, r);
			return END_CLOSE;
		}
		v = decide();
		/* A reset replaces the response, so no latency is added to it. */
		if (v.reset) {
			log_first_bad(&v);
			return END_RESET;
		}
		if (v.latency_ms > 0)
			sleep_ms(v.latency_ms);
		if (served == MAX_REQS_PER_CONN)
			req.close = true;
		sent = send_response(c->fd, v.status, req.head, req.close);
		log_first_bad(&v);
		if (!sent || req.close)
			return END_CLOSE;
	}
	return END_CLOSE;
}

/* SO_LINGER {1, 0} makes close() send RST instead of FIN. */
static void abortive_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* ---- connection threads ---- */

static void slot_release(void)
{
	pthread_mutex_lock(&g.lock);
	g.active--;
	pthread_cond_signal(&g.slot_freed);
	pthread_mutex_unlock(&g.lock);
}

/*
 * Takes a connection slot, waiting while MAX_CONNS connections are live.
 * Wakes every 100 ms to notice a stop request; false means stop.
 */
static bool slot_acquire(void)
{
	struct timespec until;
	bool ok;

	pthread_mutex_lock(&g.lock);
	while (g.active >= MAX_CONNS && !g_stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g.slot_freed, &g.lock, &until);
	}
	ok = !g_stop;
	if (ok)
		g.active++;
	pthread_mutex_unlock(&g.lock);
	return ok;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;

	if (serve(c) == END_RESET) {
		abortive_close(c->fd);
	} else {
		/* Send our FIN first so the client sees the end of the stream. */
		shutdown(c->fd, SHUT_WR);
		close(c->fd);
	}
	free(c);
	slot_release();
	return NULL;
}

static void tune_conn_socket(int fd)
{
	struct timeval rcv = { .tv_sec = IDLE_TIMEOUT_S };
	struct timeval snd = { .tv_sec = SEND_TIMEOUT_S };
	int one = 1;

	/* Without NODELAY a pipelined second response can wait for an ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
}

/* Starts a thread for fd with termination signals blocked, so they reach main. */
static bool spawn_conn(int fd)
{
	pthread_t tid;
	struct conn *c;

	c = malloc(sizeof(*c));
	if (!c)
		return false;
	c->fd = fd;
	c->len = 0;
	tune_conn_socket(fd);

	if (lab_thread_start(&tid, true, conn_main, c)) {
		free(c);
		return false;
	}
	return true;
}

/* Waits up to ACCEPT_POLL_MS for a client; returns -1 when none came. */
static int accept_one(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	int fd;

	if (poll(&p, 1, ACCEPT_POLL_MS) <= 0)
		return -1;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	/* Out of resources: back off instead of spinning on a readable listener. */
	if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM))
		sleep_ms(50);
	return fd;
}

/* Runs until SIGTERM/SIGINT; every wait inside is at most ACCEPT_POLL_MS. */
static void accept_loop(int lfd)
{
	while (!g_stop) {
		int fd;

		if (!slot_acquire())
			break;
		fd = accept_one(lfd);
		if (fd >= 0 && spawn_conn(fd))
			continue;
		if (fd >= 0) {
			fprintf(stderr, "labsrv: cannot start a connection thread\n");
			close(fd);
		}
		slot_release();
	}
}

/* ---- setup ---- */

/* "A.B.C.D:PORT" or "[IPv6]:PORT", numeric; port 0 asks for a free port. */
static bool parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *colon = strrchr(s, ':');
	long port;

	if (!colon || !parse_long(colon + 1, 0, 65535, &port))
		return false;
	return lab_addr_fill(s, colon, (uint16_t)port, ss, len);
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t size)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, ntohs(sin->sin_port));
	}
}

static int open_listener(struct sockaddr_storage *ss, socklen_t len)
{
	char shown[INET6_ADDRSTRLEN + 16];
	int fd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("labsrv: socket");
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, 1024) != 0) {
		perror("labsrv: bind/listen");
		close(fd);
		return -1;
	}
	/* Show the bound address, which tells the real port when given :0. */
	len = sizeof(*ss);
	getsockname(fd, (struct sockaddr *)ss, &len);
	format_addr(ss, shown, sizeof(shown));
	fprintf(stderr, "labsrv %s listening on %s\n", g_name, shown);
	return fd;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void install_signals(void)
{
	/* A signal cuts the accept loop's poll() short: a stop is seen at once. */
	lab_catch(SIGTERM, on_stop_signal);
	lab_catch(SIGINT, on_stop_signal);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- command line ---- */

static void usage(FILE *out)
{
	fprintf(out, "usage: labsrv --listen ADDR:PORT --name NAME [--status CODE]\n"
		     "              [--error-rate F] [--error-status CODE] [--latency-ms N]\n"
		     "              [--reset-rate F] [--control FILE] [--seed N]\n");
}

static bool valid_name(const char *s)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (i = 0; i < len; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
			    s[i]))
			return false;
	return true;
}

static void parse_one(int opt, const char *val, const char **listen_at, uint64_t *seed,
		      bool *seeded)
{
	struct behaviour *b = &g.base;

	switch (opt) {
	case 'l':
		*listen_at = val;
		break;
	case 'n':
		if (!valid_name(val))
			lab_bad_flag("--name", val, "1-63 chars of [A-Za-z0-9._-]");
		g_name = val;
		break;
	case 's':
		if (!parse_status(val, &b->status))
			lab_bad_flag("--status", val, "an HTTP status 200-599, not 204/304");
		break;
	case 'e':
		if (!parse_rate(val, &b->error_rate))
			lab_bad_flag("--error-rate", val, "a fraction 0..1");
		break;
	case 'E':
		if (!parse_status(val, &b->error_status))
			lab_bad_flag("--error-status", val, "an HTTP status 200-599, not 204/304");
		break;
	case 'L':
		if (!parse_long(val, 0, LATENCY_MAX_MS, &b->latency_ms))
			lab_bad_flag("--latency-ms", val, "milliseconds 0..600000");
		break;
	case 'r':
		if (!parse_rate(val, &b->reset_rate))
			lab_bad_flag("--reset-rate", val, "a fraction 0..1");
		break;
	case 'c':
		g.control_path = val;
		break;
	case 'S':
		if (!lab_parse_u64(val, 0, UINT64_MAX, seed))
			lab_bad_flag("--seed", val, "an unsigned integer");
		*seeded = true;
		break;
	}
}

static const char *parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "status", required_argument, NULL, 's' },
		{ "error-rate", required_argument, NULL, 'e' },
		{ "error-status", required_argument, NULL, 'E' },
		{ "latency-ms", required_argument, NULL, 'L' },
		{ "reset-rate", required_argument, NULL, 'r' },
		{ "control", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_at = NULL;
	uint64_t seed = 0;
	bool seeded = false;
	int opt;

	g.base = (struct behaviour){ .status = 200, .error_status = 503 };
	/* getopt_long() walks argv once, so this loop ends after argc steps. */
	while ((opt = lab_next_flag(argc, argv, opts, usage)) != -1)
		parse_one(opt, optarg, &listen_at, &seed, &seeded);
	if (!listen_at || !g_name) {
		fprintf(stderr, "labsrv: %s is required\n", listen_at ? "--name" : "--listen");
		usage(stderr);
		exit(LAB_EXIT_USAGE);
	}
	g.cur = g.base;
	g.rng = seeded ? seed : seed_from_name(g_name);
	return listen_at;
}

int main(int argc, char **argv)
{
	const char *listen_at = parse_args(argc, argv);
	struct sockaddr_storage ss;
	socklen_t len;
	int lfd;

	if (!parse_addr(listen_at, &ss, &len))
		lab_bad_flag("--listen", listen_at, "IPv4:PORT or [IPv6]:PORT");
	install_signals();
	lfd = open_listener(&ss, len);
	if (lfd < 0)
		return 1;
	accept_loop(lfd);
	close(lfd);
	return 0;
}
