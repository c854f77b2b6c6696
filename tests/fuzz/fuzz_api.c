// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the HTTP API as a request arrives from libmicrohttpd,
 * through api.c's own on_request() -> take_body() -> dispatch() ->
 * authorize() -> token_matches() -> api_handle(), without sockets.
 *
 * userspace/api.c is compiled into this file (its static functions are the
 * ones fuzzed), and the few libmicrohttpd calls it makes per request are
 * defined here: MHD_lookup_connection_value() answers the Authorization
 * header the input chose, MHD_queue_response() keeps the status, the body
 * and the headers for the checks.
 *
 * Two rollouts are present ("web" Progressing, "api" held by the pause
 * verb) on a real dataplane: the programs loaded with their maps in a
 * private bpffs directory (root or CAP_BPF), unpinned once set up. Without it the fuzzer runs with
 * no rollout and says so (under CI=true it refuses to run). Every input
 * starts from the same rollout states.
 *
 * Input layout:
 *   byte 0   method, an index into methods[] (mod its size); its high
 *            nibble + 1 is the size of the body chunks handed to take_body()
 *   byte 1   bit 0: UNIX socket listener (else TCP); bit 1: the agent is
 *            ready; bits 3..5: the Authorization header (hdr_kind below);
 *            bit 6: no token file on the TCP listener; bit 7: the body
 *            repeated past the 64 KiB limit
 *   bytes 2..  URL, up to the first NUL; the rest is the request body
 *
 * Checked on every reply (a breach abort()s, so libFuzzer keeps the input):
 *   - the status is one docs/api.md lists; a body and a content type are set;
 *   - JSON bodies parse as JSON, and an error reply is {"error": "..."};
 *   - 405, and only 405, sets the Allow header;
 *   - a request that may not change state (TCP without the exact token)
 *     changes nothing: every rollout's state and its service in the kernel
 *     map are byte for byte what they were; and a POST there never succeeds;
 *   - a POST over TCP without a header is 401, with a wrong one 403;
 *   - a body past the limit is 413;
 *   - 2xx only on the global routes or a configured rollout's.
 * Each request is then sent again on the TCP listener with no token file,
 * and with one but without the right header.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../../userspace/api.c"
#include "config.h"
#include "metrics.h"

/* ---- the libmicrohttpd calls api.c makes per request ---- */

struct MHD_Connection {
	const char *authorization; /* NULL: no such header */
};

struct MHD_Response {
	char *body;
	size_t len;
	char type[64];
	char allow[64];
	bool has_allow;
};

/* What the last MHD_queue_response() was given. */
static struct {
	unsigned int status;
	char *body;
	char type[64];
	char allow[64];
	bool has_allow;
	int queued;
} got;

const char *MHD_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind kind,
					const char *key)
{
	if (kind == MHD_HEADER_KIND && !strcasecmp(key, "Authorization"))
		return c->authorization;
	return NULL;
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
						     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = calloc(1, sizeof(*r));

	if (!r)
		abort();
	/* api.c only hands over buffers it gives away (a NULL one is a failure to report). */
	if (mode != MHD_RESPMEM_MUST_FREE)
		abort();
	r->body = buffer;
	r->len = size;
	return r;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *r, const char *header,
					const char *content)
{
	if (!strcmp(header, "Content-Type"))
		snprintf(r->type, sizeof(r->type), "%s", content);
	if (!strcmp(header, "Allow")) {
		snprintf(r->allow, sizeof(r->allow), "%s", content);
		r->has_allow = true;
	}
	return MHD_YES;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int status,
				   struct MHD_Response *r)
{
	(void)c;
	got.queued++;
	got.status = status;
	free(got.body);
	/* A NUL-terminated copy of exactly len bytes: a short body is a short string. */
	got.body = strndup(r->body ? r->body : "", r->len);
	memcpy(got.type, r->type, sizeof(got.type));
	memcpy(got.allow, r->allow, sizeof(got.allow));
	got.has_allow = r->has_allow;
	return MHD_YES;
}

void MHD_destroy_response(struct MHD_Response *r)
{
	if (r)
		free(r->body);
	free(r);
}

/* ---- the agent: two rollouts on a real dataplane ---- */

static const char *const methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "", "get", "POST ",
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

static const char ROLLOUTS[] =
	"apiVersion: canaryd.io/v1alpha1\nkind: Rollout\nmetadata: {name: web}\nspec:\n"
	"  service: {vip: 10.96.0.10, port: 80, protocol: http}\n"
	"  stable: {endpoints: [\"10.0.1.1:80\", \"10.0.1.2:80\"]}\n"
	"  canary: {endpoints: [\"10.0.2.1:80\"]}\n"
	"  strategy: {steps: [{setWeight: 10}, {pause: {}}, {setWeight: 50}, {pause: {}}]}\n"
	"---\n"
	"apiVersion: canaryd.io/v1alpha1\nkind: Rollout\nmetadata: {name: api}\nspec:\n"
	"  service: {vip: 10.96.0.11, port: 8080}\n"
	"  stable: {endpoints: [\"10.0.1.3:8080\"]}\n"
	"  canary: {endpoints: [\"10.0.2.3:8080\"]}\n"
	"  strategy: {steps: [{setWeight: 20}, {pause: {duration: 1h}}]}\n";
static const char *const names[] = { "web", "api" };
static const char TOKEN[] = "fuzz-token-0123456789abcdef";

static struct agent agent;
static struct canary_dp *dp;
static struct api_server srv;
static char bpffs[128], state_dir[256];
static struct rollout_state initial[2];
static size_t n_rollouts;

/* The dataplane in a private bpffs directory, and the two rollouts on it. */
static void with_rollouts(void)
{
	char err[CONFIG_ERR_LEN] = "";
	struct config cfg;
	size_t i;
	int rc;

	snprintf(bpffs, sizeof(bpffs), "/sys/fs/bpf/canaryd-fuzz-api-%d", (int)getpid());
	rc = dp_load(bpffs, 0, &dp);
	if (rc) {
		rmdir(bpffs);
		dp = NULL;
		const char *ci = getenv("CI");

		if (ci && !strcmp(ci, "true")) {
			fprintf(stderr,
				"fuzz_api: cannot load the dataplane in %s: %s (root/CAP_BPF "
				"needed under CI=true)\n",
				bpffs, strerror(-rc));
			abort();
		}
		fprintf(stderr, "fuzz_api: skipped: needs root/CAP_BPF for rollouts; "
				"fuzzing with none\n");
		return;
	}
	if (agent_init(&agent, dp, bpffs, state_dir) ||
	    config_parse_buffer("fuzz.yaml", ROLLOUTS, strlen(ROLLOUTS), &cfg, err, sizeof(err)) ||
	    agent_apply_config(&agent, &cfg, err, sizeof(err))) {
		fprintf(stderr, "fuzz_api: cannot set up the rollouts: %s\n", err);
		abort();
	}
	config_free(&cfg);
	agent_tick(&agent);
	/*
	 * The maps live on through the file descriptors: unpinned now, nothing
	 * is left in bpffs however the fuzzer ends (a finding is an abort()).
	 * The agent would pin them again on its next tick; the API never ticks.
	 */
	dp_unpin(bpffs);
	n_rollouts = agent.n_rollouts;
	if (n_rollouts != 2)
		abort();
	/* "api" held by the pause verb, so resume and the like can succeed too. */
	for (i = 0; i < n_rollouts; i++)
		if (!strcmp(agent.rollouts[i].cfg.name, "api"))
			agent_verb(&agent, "api", VERB_PAUSE, 0, err, sizeof(err));
	for (i = 0; i < n_rollouts; i++)
		initial[i] = agent.rollouts[i].st;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	/* Each verb logs its transition: thousands a second would be the fuzzer's time. */
	log_setup(CLOG_FMT_LOGFMT, CLOG_ERROR);
	/* Under TMPDIR: tests/fuzz/run.sh points it at its work directory, removed after. */
	snprintf(state_dir, sizeof(state_dir), "%s/fuzz-api.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(state_dir))
		abort();
	with_rollouts();
	if (!dp && agent_init(&agent, NULL, NULL, state_dir))
		abort();
	srv.agent = &agent;
	srv.metrics = metrics_render;
	pthread_mutex_init(&srv.token_lock, NULL);
	return 0;
}

/* Every input starts from the same rollout states. */
static void restore(void)
{
	for (size_t i = 0; i < n_rollouts; i++)
		agent.rollouts[i].st = initial[i];
}

struct snapshot {
	struct rollout_state st[2];
	struct canary_service svc[2];
	int svc_rc[2];
	size_t n;
};

static void take_snapshot(struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->n = agent.n_rollouts;
	/* memcpy, padding included: the snapshots are compared byte for byte. */
	for (size_t i = 0; i < n_rollouts && i < 2; i++)
		memcpy(&s->st[i], &agent.rollouts[i].st, sizeof(s->st[i]));
	if (!dp)
		return;
	for (size_t i = 0; i < n_rollouts && i < 2; i++) {
		s->svc_rc[i] = dp_service_get(dp, &agent.rollouts[i].cfg.service.key, &s->svc[i]);
	}
}

/* ---- one request ---- */

enum hdr_kind {
	HDR_NONE,
	HDR_RIGHT,	/* "Bearer TOKEN" */
	HDR_PREFIX,	/* the token less its last byte */
	HDR_LONGER,	/* the token and one byte more */
	HDR_NO_SCHEME,	/* the token alone */
	HDR_LOWER,	/* "bearer TOKEN" */
	HDR_FIRST_BYTE, /* the token with its first byte changed */
	HDR_EMPTY,	/* "Bearer " */
};

static const char *header_text(enum hdr_kind k, char *buf, size_t len)
{
	switch (k) {
	case HDR_NONE:
		return NULL;
	case HDR_RIGHT:
		snprintf(buf, len, "Bearer %s", TOKEN);
		break;
	case HDR_PREFIX:
		snprintf(buf, len, "Bearer %.*s", (int)strlen(TOKEN) - 1, TOKEN);
		break;
	case HDR_LONGER:
		snprintf(buf, len, "Bearer %sx", TOKEN);
		break;
	case HDR_NO_SCHEME:
		snprintf(buf, len, "%s", TOKEN);
		break;
	case HDR_LOWER:
		snprintf(buf, len, "bearer %s", TOKEN);
		break;
	case HDR_FIRST_BYTE:
		snprintf(buf, len, "Bearer X%s", TOKEN + 1);
		break;
	case HDR_EMPTY:
		snprintf(buf, len, "Bearer ");
		break;
	}
	return buf;
}

struct request_in {
	const char *method, *url;
	const char *body;
	size_t body_len, chunk;
	bool unix_socket, token_set;
	enum hdr_kind hdr;
};

static void broken(const char *what, const struct request_in *in)
{
	fprintf(stderr,
		"fuzz_api: contract broken: %s (method \"%s\", url \"%s\", %s, token %s, "
		"header %d, status %u, body %s)\n",
		what, in->method, in->url, in->unix_socket ? "UNIX" : "TCP",
		in->token_set ? "set" : "unset", (int)in->hdr, got.status,
		got.body ? got.body : "(null)");
	abort();
}

/* What libmicrohttpd does with one request: first call, body chunks, the last call. */
static void serve(const struct request_in *in)
{
	struct listener l = { .srv = &srv, .tcp = !in->unix_socket };
	struct MHD_Connection c = { 0 };
	void *con_cls = NULL;
	char hdr[128];
	size_t off = 0, n;

	pthread_mutex_lock(&srv.token_lock);
	srv.token_len = in->token_set ? strlen(TOKEN) : 0;
	memcpy(srv.token, TOKEN, sizeof(TOKEN));
	pthread_mutex_unlock(&srv.token_lock);
	c.authorization = header_text(in->hdr, hdr, sizeof(hdr));
	got.queued = 0;
	n = 0;
	if (on_request(&l, &c, in->url, in->method, "HTTP/1.1", NULL, &n, &con_cls) != MHD_YES)
		abort();
	while (off < in->body_len) {
		size_t want = in->body_len - off < in->chunk ? in->body_len - off : in->chunk;

		n = want;
		if (on_request(&l, &c, in->url, in->method, "HTTP/1.1", in->body + off, &n,
			       &con_cls) != MHD_YES ||
		    n != 0)
			broken("a body chunk was not taken whole", in);
		off += want;
	}
	n = 0;
	on_request(&l, &c, in->url, in->method, "HTTP/1.1", NULL, &n, &con_cls);
	on_completed(&l, &c, &con_cls, MHD_REQUEST_TERMINATED_COMPLETED_OK);
	if (got.queued != 1 || con_cls)
		broken("not exactly one reply queued, or the request not freed", in);
}

static bool known_status(unsigned int s)
{
	static const unsigned int ok[] = { 200, 400, 401, 403, 404, 405, 409, 413, 503 };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (s == ok[i])
			return true;
	return false;
}

static bool rollout_route(const char *url)
{
	static const char prefix[] = "/api/v1/rollouts/";

	if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz") || !strcmp(url, "/metrics") ||
	    !strcmp(url, "/api/v1/rollouts") || !strcmp(url, prefix))
		return true;
	if (strncmp(url, prefix, sizeof(prefix) - 1) != 0)
		return false;
	url += sizeof(prefix) - 1;
	for (size_t i = 0; i < n_rollouts && i < 2; i++) {
		size_t len = strlen(names[i]);

		if (!strncmp(url, names[i], len) && (url[len] == '\0' || url[len] == '/'))
			return true;
	}
	return false;
}

static void check_json(const struct request_in *in)
{
	json_error_t jerr;
	json_t *doc = json_loads(got.body, JSON_REJECT_DUPLICATES, &jerr);

	if (!doc)
		broken("JSON reply does not parse", in);
	if (got.status >= 400) {
		json_t *e = json_object_get(doc, "error");

		if (!json_is_object(doc) || json_object_size(doc) != 1 || !json_is_string(e) ||
		    !*json_string_value(e))
			broken("error reply is not {\"error\": \"...\"}", in);
	}
	json_decref(doc);
}

static void check_reply(const struct request_in *in, bool control, const struct snapshot *before)
{
	bool post = !strcmp(in->method, "POST");
	struct snapshot after;

	if (!known_status(got.status))
		broken("status not in docs/api.md", in);
	if (!got.body || !got.type[0])
		broken("reply without body or content type", in);
	if (got.status == 405 && (!got.has_allow || !got.allow[0]))
		broken("405 without Allow", in);
	if (got.status != 405 && got.has_allow)
		broken("Allow set on a reply that is not 405", in);
	if (!strcmp(got.type, "application/json"))
		check_json(in);
	else if (got.status >= 400 && got.status != 503)
		broken("error reply that is not JSON", in);
	if (got.status / 100 == 2 && !rollout_route(in->url))
		broken("success on a route of no configured rollout", in);
	if (in->body_len > MAX_BODY && strcmp(in->url, "/metrics") != 0 && got.status != 413)
		broken("a body past the limit was not refused with 413", in);
	if (control)
		return;
	take_snapshot(&after);
	if (memcmp(before, &after, sizeof(after)) != 0)
		broken("a request without the token changed a rollout or the kernel map", in);
	if (post && got.status / 100 == 2)
		broken("a request without the token succeeded in changing state", in);
	if (post && in->body_len <= MAX_BODY && strcmp(in->url, "/metrics") != 0 && in->token_set &&
	    got.status != (in->hdr == HDR_NONE ? 401u : 403u))
		broken("a POST with a missing or wrong token is not 401 or 403", in);
}

static void one(const struct request_in *in)
{
	/* May this request change state? Only the UNIX socket, or TCP with the exact token. */
	bool control = in->unix_socket || (in->token_set && in->hdr == HDR_RIGHT);
	struct snapshot before;

	take_snapshot(&before);
	serve(in);
	check_reply(in, control, &before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request_in in = { .method = methods[0], .unix_socket = true, .chunk = 1 };
	const uint8_t *rest = data, *nul;
	size_t rest_len = size, url_len, body_len, i;
	char *url, *body;
	bool amplify = false;

	if (size >= 2) {
		in.method = methods[data[0] % N_METHODS];
		in.chunk = (size_t)(data[0] >> 4) + 1;
		in.unix_socket = data[1] & 1;
		agent.ready = (data[1] & 2) != 0;
		in.hdr = (enum hdr_kind)((data[1] >> 3) & 7);
		in.token_set = !(data[1] & 64);
		amplify = data[1] & 128;
		rest = data + 2;
		rest_len = size - 2;
	}
	nul = memchr(rest, '\0', rest_len);
	url_len = nul ? (size_t)(nul - rest) : rest_len;
	body_len = nul ? rest_len - url_len - 1 : 0;
	/* Past the limit: the body repeated (one byte if empty). */
	in.body_len = amplify ? MAX_BODY + 1 + body_len : body_len;
	url = malloc(url_len + 1);
	/* Exactly body_len bytes (at least one, so malloc(0) is no special case). */
	body = malloc(in.body_len ? in.body_len : 1);
	if (!url || !body)
		abort();
	memcpy(url, rest, url_len);
	url[url_len] = '\0';
	for (i = 0; i < in.body_len; i++)
		body[i] = body_len ? (char)nul[1 + i % body_len] : 'x';
	if (amplify)
		in.chunk = 4096;
	in.url = url;
	in.body = body;

	restore();
	one(&in);
	/*
	 * The same request on the TCP listeners that must not change anything:
	 * one with no token file (read-only: api_handle's own guard is all
	 * there is), one with a token file and the input's header unless it is
	 * the right one.
	 */
	in.unix_socket = false;
	in.token_set = false;
	restore();
	one(&in);
	in.token_set = true;
	if (in.hdr == HDR_RIGHT)
		in.hdr = HDR_NONE;
	restore();
	one(&in);

	free(url);
	free(body);
	return 0;
}
