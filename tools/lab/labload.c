/*
 * labload - HTTP load generator for the canaryd test labs.
 *
 * C worker threads send "GET / HTTP/1.1" to one target, either reusing one
 * connection each (keepalive) or opening a fresh connection per request
 * (newconn).  For every attempt it records the outcome, the HTTP status,
 * the X-Backend header (which backend answered) and the time to the first
 * response byte.  At the end it prints one JSON line on stdout so a test
 * can judge how traffic was split and how the canary behaved.
 *
 * Threads: workers only send, receive and record into one shared, locked
 * stats block.  The main thread watches the clock and the signal flags,
 * prints snapshots on SIGUSR1 and the final line.  Every blocking call in a
 * worker waits at most SLICE_MS, so workers notice a stop quickly.
 *
 * Build: gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread \
 *            -o build/labload tools/lab/labload.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LAB_PROG "labload"
#include "labcommon.h"

#define MAX_CONNECTIONS 1024
#define MAX_DURATION_S	600.0
#define MAX_TIMEOUT_MS	600000L
#define MAX_SAMPLES	2000000 /* latency samples kept */
#define MAX_BACKENDS	64	/* the last slot is "_other" */
#define BACKEND_LEN	63
#define STATUS_LIMIT	600 /* statuses 100..599 */
#define RESP_HDR_MAX	16384
#define SLICE_MS	100 /* longest single wait in a worker */
#define SUPERVISE_MS	50  /* main thread tick */

#define EXIT_FAIL	1

#define NSEC_PER_SEC	1000000000LL
#define USEC_PER_SEC	1000000LL

enum mode { MODE_KEEPALIVE, MODE_NEWCONN };

/* Outcome of one attempt; the error kinds index stats.errors[]. */
enum outcome {
	ERR_CONNECT_REFUSED,
	ERR_CONNECT_TIMEOUT,
	ERR_RESET,
	ERR_TIMEOUT,
	ERR_BAD_RESPONSE,
	NR_ERRORS,
	OUT_OK = NR_ERRORS,
	OUT_ABORTED, /* cut short by stop: not counted at all */
};

static const char *const error_names[NR_ERRORS] = {
	"connect_refused", "connect_timeout", "reset", "timeout", "bad_response",
};

static struct {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	enum mode mode;
	unsigned int connections;
	uint64_t requests; /* 0: unlimited */
	double duration_s;
	double rate; /* 0: unlimited */
	long timeout_ms;
	bool snapshot_on_usr1;
	bool retry_on_error;
	char request[512]; /* the request bytes, built once */
	size_t request_len;
} opt = {
	.mode = MODE_KEEPALIVE,
	.connections = 4,
	.duration_s = 10.0,
	.timeout_ms = 2000,
};

struct backend {
	char name[BACKEND_LEN + 1];
	uint64_t total;
	uint64_t status[STATUS_LIMIT];
};

/* Everything the JSON line reports, except the latency samples. */
struct counts {
	uint64_t requests;
	uint64_t ok;
	uint64_t errors[NR_ERRORS];
	uint64_t status[STATUS_LIMIT];
	uint32_t max_us;
	unsigned int nr_backends;
	struct backend backends[MAX_BACKENDS];
};

/*
 * Latency samples use reservoir sampling (Vitter's algorithm R): the first
 * MAX_SAMPLES are all kept, after that each new sample replaces a random
 * kept one with probability MAX_SAMPLES/seen.  The kept set stays a uniform
 * sample of the whole run, so a canary going bad late in a long run still
 * shows in the percentiles.  "max" is exact, not sampled.
 */
static struct {
	pthread_mutex_t lock;
	struct counts c;
	uint32_t *samples;
	size_t nr_samples;
	uint64_t seen;
	uint64_t rng;
} stats = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.rng = 0x6c61626c6f6164ULL,
};

/* One finished attempt, as handed from a worker to record(). */
struct result {
	enum outcome outcome;
	int status;
	uint32_t ttfb_us;
	char backend[BACKEND_LEN + 1];
};

struct worker {
	pthread_t tid;
	bool joined;	      /* main thread only */
	int fd;		      /* -1 when not connected */
	bool must_close;      /* the server will not take more requests */
	int64_t next_due_ns;  /* --rate pacing */
	int64_t last_done_ns; /* end of the last counted attempt */
	size_t len;	      /* bytes held in buf */
	char buf[RESP_HDR_MAX];
	char head[RESP_HDR_MAX + 1]; /* NUL-terminated copy for parsing */
};

static atomic_bool g_stop;	       /* set by main or by a worker at the deadline */
static atomic_uint_fast64_t g_claimed; /* requests handed out, for --requests */
static atomic_uint_fast64_t g_retries; /* --retry-on-error, told on stderr */
static int64_t g_start_ns, g_deadline_ns;
static volatile sig_atomic_t g_sig_term, g_sig_usr1;

static bool should_stop(void)
{
	if (atomic_load(&g_stop))
		return true;
	if (lab_mono_ns() >= g_deadline_ns) {
		atomic_store(&g_stop, true);
		return true;
	}
	return false;
}

/* ---- statistics ---- */

/* Finds or adds a backend; called with stats.lock held. */
static struct backend *backend_slot(struct counts *c, const char *name)
{
	struct backend *b;
	unsigned int i;

	for (i = 0; i < c->nr_backends; i++)
		if (!strcmp(c->backends[i].name, name))
			return &c->backends[i];
	/* Full: everything new goes into one last "_other" bucket. */
	if (c->nr_backends == MAX_BACKENDS - 1) {
		name = "_other";
		for (i = 0; i < c->nr_backends; i++)
			if (!strcmp(c->backends[i].name, name))
				return &c->backends[i];
	}
	if (c->nr_backends == MAX_BACKENDS)
		return &c->backends[MAX_BACKENDS - 1];
	b = &c->backends[c->nr_backends++];
	snprintf(b->name, sizeof(b->name), "%s", name);
	return b;
}

static void add_sample(uint32_t us)
{
	uint64_t j;

	stats.seen++;
	if (stats.nr_samples < MAX_SAMPLES) {
		stats.samples[stats.nr_samples++] = us;
		return;
	}
	j = lab_rng_next(&stats.rng) % stats.seen;
	if (j < MAX_SAMPLES)
		stats.samples[j] = us;
}

static void record(const struct result *r)
{
	struct counts *c = &stats.c;

	pthread_mutex_lock(&stats.lock);
	c->requests++;
	if (r->outcome != OUT_OK) {
		c->errors[r->outcome]++;
	} else {
		struct backend *b = backend_slot(c, r->backend);

		c->ok++;
		c->status[r->status]++;
		b->total++;
		b->status[r->status]++;
		if (r->ttfb_us > c->max_us)
			c->max_us = r->ttfb_us;
		add_sample(r->ttfb_us);
	}
	pthread_mutex_unlock(&stats.lock);
}

/* ---- network helpers ---- */

/*
 * Waits for events on fd until deadline, in SLICE_MS steps so a stop is
 * noticed.  Returns 1 when ready, 0 on timeout, -1 when asked to stop.
 */
static int wait_fd(int fd, short events, int64_t deadline_ns)
{
	struct pollfd p = { .fd = fd, .events = events };
	int slices;

	/* At most MAX_TIMEOUT_MS / SLICE_MS slices; the +2 absorbs rounding. */
	for (slices = 0; slices < MAX_TIMEOUT_MS / SLICE_MS + 2; slices++) {
		int64_t left;

		if (should_stop())
			return -1;
		left = (deadline_ns - lab_mono_ns()) / 1000000;
		if (left <= 0)
			return 0;
		if (poll(&p, 1, left < SLICE_MS ? (int)left + 1 : SLICE_MS) > 0)
			return 1;
	}
	return 0;
}

static void conn_close(struct worker *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->len = 0;
	w->must_close = false;
}

/* Connection errors other than a refusal (unreachable, ...) count as timeouts. */
static enum outcome connect_error(int err)
{
	return err == ECONNREFUSED || err == ECONNRESET ? ERR_CONNECT_REFUSED : ERR_CONNECT_TIMEOUT;
}

static enum outcome conn_open(struct worker *w)
{
	int64_t deadline = lab_mono_ns() + opt.timeout_ms * 1000000LL;
	socklen_t len = sizeof(int);
	int fd, err = 0, one = 1;

	fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* Out of local sockets: no better bucket than "could not connect". */
	if (fd < 0)
		return ERR_CONNECT_REFUSED;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&opt.addr, opt.addr_len) != 0) {
		int ready;

		if (errno != EINPROGRESS) {
			err = errno;
			close(fd);
			return connect_error(err);
		}
		ready = wait_fd(fd, POLLOUT, deadline);
		if (ready <= 0) {
			close(fd);
			return ready < 0 ? OUT_ABORTED : ERR_CONNECT_TIMEOUT;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			close(fd);
			return connect_error(err);
		}
	}
	w->fd = fd;
	return OUT_OK;
}

/* ECONNRESET and EPIPE are resets; other socket errors are lumped in too. */
static enum outcome send_request(struct worker *w, int64_t deadline)
{
	const char *p = opt.request;
	size_t left = opt.request_len;

	/* Each round sends at least one byte or waits; the wait has a deadline. */
	while (left > 0) {
		ssize_t n = send(w->fd, p, left, MSG_NOSIGNAL);
		int ready;

		if (n > 0) {
			p += n;
			left -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return ERR_RESET;
		ready = wait_fd(w->fd, POLLOUT, deadline);
		if (ready <= 0)
			return ready < 0 ? OUT_ABORTED : ERR_TIMEOUT;
	}
	return OUT_OK;
}

/*
 * Receives up to cap bytes into buf.  Returns OUT_OK with *got > 0 on data,
 * ERR_BAD_RESPONSE (truncated) at end of stream, or another error.
 */
static enum outcome recv_some(struct worker *w, char *buf, size_t cap, int64_t deadline,
			      size_t *got)
{
	int rounds;

	*got = 0;
	/* EAGAIN is followed by a deadline-bounded wait; the cap is a backstop. */
	for (rounds = 0; rounds < 1000; rounds++) {
		ssize_t n = recv(w->fd, buf, cap, 0);
		int ready;

		if (n > 0) {
			*got = (size_t)n;
			return OUT_OK;
		}
		if (n == 0)
			return ERR_BAD_RESPONSE;
		if (errno != EAGAIN && errno != EINTR)
			return ERR_RESET;
		ready = wait_fd(w->fd, POLLIN, deadline);
		if (ready <= 0)
			return ready < 0 ? OUT_ABORTED : ERR_TIMEOUT;
	}
	return ERR_TIMEOUT;
}

/* ---- response parsing ---- */

/* Keeps [A-Za-z0-9._-], replaces anything else, so names are JSON-safe. */
static void sanitise_backend(const char *in, char *out)
{
	size_t i;

	for (i = 0; i < BACKEND_LEN && in[i]; i++) {
		unsigned char ch = (unsigned char)in[i];

		out[i] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
					 (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
					 ch == '-' ?
				 (char)ch :
				 '_';
	}
	out[i] = '\0';
	if (i == 0)
		snprintf(out, BACKEND_LEN + 1, "_none");
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

/* What the response head says about the body and the connection. */
struct head_info {
	int status;
	long long content_length; /* -1: read until the server closes */
	bool close;
	bool chunked;
};

/* "HTTP/1.x NNN ..." with NNN in 200..599; 1xx interim answers are not expected. */
static bool parse_status_line(const char *line, struct head_info *h)
{
	if (strncmp(line, "HTTP/1.", 7) || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
		return false;
	if (line[9] < '2' || line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' ||
	    line[11] > '9' || (line[12] != ' ' && line[12] != '\0'))
		return false;
	h->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	h->close = line[7] == '0'; /* HTTP/1.0 closes unless it says otherwise */
	return true;
}

static bool parse_header(char *line, struct head_info *h, struct result *r)
{
	char *colon = strchr(line, ':');
	char *value, *end;

	if (!colon)
		return false;
	*colon = '\0';
	value = trim(colon + 1);
	if (!strcasecmp(line, "Content-Length")) {
		errno = 0;
		h->content_length = strtoll(value, &end, 10);
		if (errno || end == value || *end || h->content_length < 0)
			return false;
	} else if (!strcasecmp(line, "X-Backend")) {
		sanitise_backend(value, r->backend);
	} else if (!strcasecmp(line, "Connection")) {
		if (strcasestr(value, "close"))
			h->close = true;
		else if (strcasestr(value, "keep-alive"))
			h->close = false;
	} else if (!strcasecmp(line, "Transfer-Encoding")) {
		h->chunked = true;
	}
	return true;
}

/* Parses w->head (NUL-terminated); false means bad_response. */
static bool parse_head(struct worker *w, struct head_info *h, struct result *r)
{
	char *line, *save = NULL;

	h->content_length = -1;
	h->chunked = false;
	line = strtok_r(w->head, "\r\n", &save);
	if (!line || !parse_status_line(line, h))
		return false;
	/* Every step consumes one line of a bounded buffer. */
	while ((line = strtok_r(NULL, "\r\n", &save)))
		if (!parse_header(line, h, r))
			return false;
	/* These carry no body whatever the headers say. */
	if (h->status == 204 || h->status == 304)
		h->content_length = 0;
	/* The labs never send chunked bodies; do not guess the framing. */
	return !h->chunked;
}

/*
 * Reads until a whole response head is buffered; stamps the first byte's
 * time into r->ttfb_us.  Returns the head length through *hdr_len.
 */
static enum outcome read_head(struct worker *w, int64_t sent_ns, int64_t deadline, struct result *r,
			      size_t *hdr_len)
{
	/* Each round adds at least one byte to a RESP_HDR_MAX buffer. */
	while (w->len < sizeof(w->buf)) {
		size_t got, room = sizeof(w->buf) - w->len;
		enum outcome out = recv_some(w, w->buf + w->len, room, deadline, &got);
		const char *end;

		if (out != OUT_OK)
			return out;
		if (w->len == 0)
			r->ttfb_us = (uint32_t)((lab_mono_ns() - sent_ns) / 1000);
		w->len += got;
		end = memmem(w->buf, w->len, "\r\n\r\n", 4);
		if (end) {
			*hdr_len = (size_t)(end - w->buf) + 4;
			return OUT_OK;
		}
	}
	return ERR_BAD_RESPONSE;
}

/*
 * Reads and drops the body.  Bytes beyond it are a protocol error on our
 * side of things (we never pipeline), so the connection is then dropped.
 */
static enum outcome skip_body(struct worker *w, size_t hdr_len, const struct head_info *h,
			      int64_t deadline)
{
	size_t buffered = w->len - hdr_len;
	unsigned long long left;

	if (h->content_length < 0) {
		/* No length: the body runs until the server closes. */
		w->must_close = true;
		left = ULLONG_MAX;
	} else {
		left = (unsigned long long)h->content_length;
	}
	if (buffered > left)
		w->must_close = true;
	left -= buffered < left ? buffered : left;
	w->len = 0;
	/* Each round drains at least one byte; recv_some() enforces the deadline. */
	while (left > 0) {
		size_t got;
		enum outcome out = recv_some(w, w->buf, sizeof(w->buf), deadline, &got);

		if (out == ERR_BAD_RESPONSE && h->content_length < 0)
			return OUT_OK; /* end of stream ends the body */
		if (out != OUT_OK)
			return out;
		left -= got < left ? got : left;
	}
	return OUT_OK;
}

static enum outcome read_response(struct worker *w, int64_t sent_ns, int64_t deadline,
				  struct result *r)
{
	struct head_info h;
	size_t hdr_len = 0;
	enum outcome out;

	out = read_head(w, sent_ns, deadline, r, &hdr_len);
	if (out != OUT_OK)
		return out;
	memcpy(w->head, w->buf, hdr_len);
	w->head[hdr_len] = '\0';
	if (!parse_head(w, &h, r))
		return ERR_BAD_RESPONSE;
	out = skip_body(w, hdr_len, &h, deadline);
	if (out != OUT_OK)
		return out;
	r->status = h.status;
	if (h.close)
		w->must_close = true;
	return OUT_OK;
}

/*
 * One attempt: connect if needed, send, read the whole response.  The
 * latency clock starts when the request is sent, so in newconn mode it
 * excludes the TCP handshake.  --timeout-ms bounds the connect and,
 * separately, the send plus the complete response.
 */
static struct result do_request(struct worker *w)
{
	struct result r = { .outcome = OUT_OK };
	int64_t sent_ns, deadline;

	snprintf(r.backend, sizeof(r.backend), "_none");
	if (w->fd < 0)
		r.outcome = conn_open(w);
	if (r.outcome != OUT_OK)
		return r;
	sent_ns = lab_mono_ns();
	deadline = sent_ns + opt.timeout_ms * 1000000LL;
	r.outcome = send_request(w, deadline);
	if (r.outcome == OUT_OK)
		r.outcome = read_response(w, sent_ns, deadline, &r);
	/* After any error the next request starts on a fresh connection. */
	if (r.outcome != OUT_OK || opt.mode == MODE_NEWCONN || w->must_close)
		conn_close(w);
	return r;
}

/* ---- workers ---- */

/*
 * --rate R gives each of the C workers one request every C/R seconds.
 * Sleeps in SLICE_MS steps; false means stop.  A worker that fell behind
 * by more than one interval restarts its schedule instead of bursting.
 */
static bool pace(struct worker *w)
{
	struct timespec ts = { 0 };
	int64_t interval;
	int rounds;

	if (opt.rate <= 0)
		return !should_stop();
	interval = (int64_t)((double)opt.connections / opt.rate * NSEC_PER_SEC);
	/* Wait at most until the deadline, which is at most 600 s away. */
	for (rounds = 0; rounds < MAX_DURATION_S * 1000 / SLICE_MS + 2; rounds++) {
		int64_t now;

		if (should_stop())
			return false;
		now = lab_mono_ns();
		if (now >= w->next_due_ns)
			break;
		ts.tv_nsec = w->next_due_ns - now < SLICE_MS * 1000000LL ? w->next_due_ns - now :
									   SLICE_MS * 1000000LL;
		nanosleep(&ts, NULL);
	}
	w->next_due_ns += interval;
	if (w->next_due_ns < lab_mono_ns() - interval)
		w->next_due_ns = lab_mono_ns();
	return true;
}

static bool claim_request(void)
{
	if (opt.requests == 0)
		return true;
	return atomic_fetch_add(&g_claimed, 1) < opt.requests;
}

/* Makes and records one attempt, unless a stop cut it short. */
static enum outcome attempt(struct worker *w)
{
	struct result r = do_request(w);

	if (r.outcome != OUT_ABORTED) {
		record(&r);
		w->last_done_ns = lab_mono_ns();
	}
	return r.outcome;
}

/*
 * With --retry-on-error a failed attempt (any error kind, not an HTTP
 * error status) is tried once more at once, on a new connection.  The
 * retry is a separate attempt in the counts, but uses neither a --requests
 * slot nor a --rate slot.
 */
static void *worker_main(void *arg)
{
	struct worker *w = arg;

	/* Bounded by the deadline (at most 600 s) and by --requests. */
	while (pace(w) && claim_request()) {
		enum outcome out = attempt(w);

		if (out < NR_ERRORS && opt.retry_on_error) {
			atomic_fetch_add(&g_retries, 1);
			out = attempt(w);
		}
		if (out == OUT_ABORTED)
			break;
	}
	conn_close(w);
	return NULL;
}

/* ---- output ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int cmp_backend(const void *a, const void *b)
{
	return strcmp(((const struct backend *)a)->name, ((const struct backend *)b)->name);
}

/* Nearest-rank percentile (rank = ceil(p/100 * n)); 0 when there are none. */
static uint32_t percentile(const uint32_t *sorted, size_t n, unsigned int p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (p * n + 99) / 100;
	return sorted[rank ? rank - 1 : 0];
}

static void print_status_map(const uint64_t *status)
{
	bool first = true;
	int code;

	putchar('{');
	for (code = 100; code < STATUS_LIMIT; code++) {
		if (!status[code])
			continue;
		printf("%s\"%d\":%llu", first ? "" : ",", code, (unsigned long long)status[code]);
		first = false;
	}
	putchar('}');
}

static void print_backends(const struct counts *c)
{
	unsigned int i;

	printf(",\"backends\":{");
	for (i = 0; i < c->nr_backends; i++)
		printf("%s\"%s\":%llu", i ? "," : "", c->backends[i].name,
		       (unsigned long long)c->backends[i].total);
	printf("},\"backend_status\":{");
	for (i = 0; i < c->nr_backends; i++) {
		printf("%s\"%s\":", i ? "," : "", c->backends[i].name);
		print_status_map(c->backends[i].status);
	}
	putchar('}');
}

/* Sorts c's backends and the samples in place, then prints one JSON line. */
static void print_json(struct counts *c, uint32_t *samples, size_t n, double duration_s)
{
	int i;

	qsort(c->backends, c->nr_backends, sizeof(c->backends[0]), cmp_backend);
	qsort(samples, n, sizeof(samples[0]), cmp_u32);

	printf("{\"requests\":%llu,\"ok\":%llu,\"errors\":{", (unsigned long long)c->requests,
	       (unsigned long long)c->ok);
	for (i = 0; i < NR_ERRORS; i++)
		printf("%s\"%s\":%llu", i ? "," : "", error_names[i],
		       (unsigned long long)c->errors[i]);
	printf("},\"status\":");
	print_status_map(c->status);
	print_backends(c);
	printf(",\"latency_us\":{\"p50\":%u,\"p90\":%u,\"p99\":%u,\"max\":%u}",
	       percentile(samples, n, 50), percentile(samples, n, 90), percentile(samples, n, 99),
	       c->max_us);
	printf(",\"duration_s\":%.3f,\"rps\":%.1f}\n", duration_s,
	       duration_s > 0 ? (double)c->requests / duration_s : 0.0);
	fflush(stdout);
}

/*
 * Copies the stats under the lock and prints them, so workers are held up
 * only for the copy.  The run's duration ends at end_ns.  "rps" is attempts
 * per second, like "requests".
 */
static bool report(int64_t end_ns)
{
	struct counts *c = malloc(sizeof(*c));
	uint32_t *samples;
	size_t n;
	bool ok;

	pthread_mutex_lock(&stats.lock);
	n = stats.nr_samples;
	samples = malloc(n ? n * sizeof(*samples) : 1);
	if (c && samples) {
		*c = stats.c;
		memcpy(samples, stats.samples, n * sizeof(*samples));
	}
	pthread_mutex_unlock(&stats.lock);
	ok = c && samples;
	if (ok)
		print_json(c, samples, n, (double)(end_ns - g_start_ns) / NSEC_PER_SEC);
	else
		fprintf(stderr, "labload: out of memory while reporting\n");
	free(samples);
	free(c);
	return ok;
}

/* ---- main thread ---- */

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		g_sig_usr1 = 1;
	else
		g_sig_term = 1;
}

static void install_signals(void)
{
	lab_catch(SIGTERM, on_signal);
	lab_catch(SIGINT, on_signal);
	/* Without the flag a stray SIGUSR1 must not kill the run. */
	if (opt.snapshot_on_usr1)
		lab_catch(SIGUSR1, on_signal);
	else
		signal(SIGUSR1, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
}

/* Starts workers with signals blocked so that only main handles them. */
static unsigned int start_workers(struct worker *workers)
{
	unsigned int i;

	for (i = 0; i < opt.connections; i++) {
		workers[i].fd = -1;
		/* Stagger paced workers evenly over one interval. */
		workers[i].next_due_ns = g_start_ns;
		if (opt.rate > 0)
			workers[i].next_due_ns += (int64_t)((double)i / opt.rate * NSEC_PER_SEC);
		if (lab_thread_start(&workers[i].tid, false, worker_main, &workers[i]))
			break;
	}
	return i;
}

/*
 * Ticks every SUPERVISE_MS until the deadline, a stop signal, or all
 * workers ending by themselves; prints snapshots as asked.
 */
static void supervise(struct worker *workers, unsigned int n)
{
	struct timespec tick = { .tv_nsec = SUPERVISE_MS * 1000000L };
	unsigned int i, finished = 0;
	long ticks;

	for (ticks = 0; ticks < (long)(MAX_DURATION_S * 1000 / SUPERVISE_MS) + 2; ticks++) {
		if (g_sig_term || should_stop())
			break;
		if (g_sig_usr1) {
			g_sig_usr1 = 0;
			report(lab_mono_ns());
		}
		for (i = 0; i < n; i++) {
			if (!workers[i].joined && pthread_tryjoin_np(workers[i].tid, NULL) == 0) {
				workers[i].joined = true;
				finished++;
			}
		}
		if (finished == n)
			return;
		nanosleep(&tick, NULL);
	}
	atomic_store(&g_stop, true);
	for (i = 0; i < n; i++)
		if (!workers[i].joined)
			pthread_join(workers[i].tid, NULL);
}

/* ---- command line ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: labload --target ADDR:PORT --mode keepalive|newconn [--connections C]\n"
		"               [--requests N] [--duration-s S] [--rate R] [--timeout-ms T]\n"
		"               [--snapshot-on-usr1] [--retry-on-error]\n");
}

/* Accepts (min, max]: all the real-valued flags must be positive. */
static bool parse_positive(const char *s, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* The negated test also rejects NaN. */
	if (errno || end == s || *end != '\0' || !(v > 0.0 && v <= max))
		return false;
	*out = v;
	return true;
}

/* "A.B.C.D:PORT" or "[IPv6]:PORT", numeric; port 0 cannot be connected to. */
static bool parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *colon = strrchr(s, ':');
	uint64_t port;

	if (!colon || !lab_parse_u64(colon + 1, 1, 65535, &port))
		return false;
	return lab_addr_fill(s, colon, (uint16_t)port, ss, len);
}

static void parse_one(int o, const char *val, const char **target)
{
	uint64_t u;

	switch (o) {
	case 't':
		if (!parse_addr(val, &opt.addr, &opt.addr_len))
			lab_bad_flag("--target", val, "IPv4:PORT or [IPv6]:PORT");
		*target = val;
		break;
	case 'm':
		if (!strcmp(val, "keepalive"))
			opt.mode = MODE_KEEPALIVE;
		else if (!strcmp(val, "newconn"))
			opt.mode = MODE_NEWCONN;
		else
			lab_bad_flag("--mode", val, "keepalive or newconn");
		break;
	case 'c':
		if (!lab_parse_u64(val, 1, MAX_CONNECTIONS, &u))
			lab_bad_flag("--connections", val, "1..1024");
		opt.connections = (unsigned int)u;
		break;
	case 'n':
		if (!lab_parse_u64(val, 1, UINT64_MAX / 2, &opt.requests))
			lab_bad_flag("--requests", val, "a positive integer");
		break;
	case 'd':
		if (!parse_positive(val, MAX_DURATION_S, &opt.duration_s))
			lab_bad_flag("--duration-s", val, "seconds, more than 0 and at most 600");
		break;
	case 'r':
		if (!parse_positive(val, 1e7, &opt.rate))
			lab_bad_flag("--rate", val, "requests/s, more than 0 and at most 1e7");
		break;
	case 'T':
		if (!lab_parse_u64(val, 1, MAX_TIMEOUT_MS, &u))
			lab_bad_flag("--timeout-ms", val, "milliseconds 1..600000");
		opt.timeout_ms = (long)u;
		break;
	case 'U':
		opt.snapshot_on_usr1 = true;
		break;
	case 'R':
		opt.retry_on_error = true;
		break;
	}
}

static void build_request(const char *target)
{
	int n = snprintf(opt.request, sizeof(opt.request),
			 "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: labload\r\n%s\r\n", target,
			 opt.mode == MODE_NEWCONN ? "Connection: close\r\n" : "");

	opt.request_len = n > 0 && (size_t)n < sizeof(opt.request) ? (size_t)n : 0;
	if (!opt.request_len)
		lab_bad_flag("--target", target, "a shorter address");
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "target", required_argument, NULL, 't' },
		{ "mode", required_argument, NULL, 'm' },
		{ "connections", required_argument, NULL, 'c' },
		{ "requests", required_argument, NULL, 'n' },
		{ "duration-s", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "snapshot-on-usr1", no_argument, NULL, 'U' },
		{ "retry-on-error", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *target = NULL;
	bool mode_given = false;
	int o;

	/* getopt_long() walks argv once, so this loop ends after argc steps. */
	while ((o = lab_next_flag(argc, argv, opts, usage)) != -1) {
		mode_given |= o == 'm';
		parse_one(o, optarg, &target);
	}
	if (!target || !mode_given) {
		fprintf(stderr, "labload: %s is required\n", target ? "--mode" : "--target");
		usage(stderr);
		exit(LAB_EXIT_USAGE);
	}
	build_request(target);
}

/*
 * The run ends with the last counted attempt, not when main noticed (it
 * ticks every SUPERVISE_MS).  Call only after all workers were joined.
 */
static int64_t run_end_ns(const struct worker *workers, unsigned int n)
{
	int64_t end = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (workers[i].last_done_ns > end)
			end = workers[i].last_done_ns;
	return end ? end : lab_mono_ns();
}

int main(int argc, char **argv)
{
	struct worker *workers;
	unsigned int started;
	bool printed;

	parse_args(argc, argv);
	stats.samples = malloc(MAX_SAMPLES * sizeof(*stats.samples));
	workers = calloc(opt.connections, sizeof(*workers));
	if (!stats.samples || !workers) {
		fprintf(stderr, "labload: out of memory\n");
		return EXIT_FAIL;
	}
	install_signals();
	g_start_ns = lab_mono_ns();
	g_deadline_ns = g_start_ns + (int64_t)(opt.duration_s * NSEC_PER_SEC);

	started = start_workers(workers);
	if (started < opt.connections) {
		fprintf(stderr, "labload: could only start %u of %u workers\n", started,
			opt.connections);
		atomic_store(&g_stop, true);
		while (started > 0)
			pthread_join(workers[--started].tid, NULL);
		return EXIT_FAIL;
	}
	supervise(workers, started);
	printed = report(run_end_ns(workers, started));
	if (opt.retry_on_error)
		fprintf(stderr, "labload: %llu retries\n",
			(unsigned long long)atomic_load(&g_retries));
	free(workers);
	free(stats.samples);
	return printed ? 0 : EXIT_FAIL;
}
