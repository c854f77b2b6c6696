// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the HTTP API's routing (api_handle() in userspace/api.c),
 * without sockets.
 *
 * Input layout:
 *   byte 0        method, an index into methods[] (mod its size)
 *   byte 1        bit 0: control (the UNIX socket, or TCP with the token);
 *                 bit 1: the agent says it is ready (/readyz)
 *   bytes 2..     URL, up to the first NUL; the rest is the request body
 *                 (no NUL: everything is the URL and the body is empty)
 * Inputs shorter than 2 bytes use GET, control and an empty URL.
 *
 * The agent has no rollout (agent_init(&a, NULL, NULL, "/nonexistent")): with
 * none, agent.c never reaches the dataplane (dp and bpffs stay NULL) nor the
 * state directory, so
 * every route, the weight body parser and the verb parser are exercised
 * without BPF. The body is copied into a buffer of exactly its length (not
 * NUL-terminated), so a read past body_len is an ASan report.
 *
 * Checked on every reply (a breach abort()s, so libFuzzer keeps the input):
 *   - the status is one docs/api.md lists; a body and a content type are set;
 *   - JSON bodies parse as JSON, and an error reply is {"error": "..."};
 *   - 405 sets the Allow header;
 *   - a POST that is not control never succeeds (200);
 *   - with no rollout, nothing but /healthz, /readyz and the list answers 2xx.
 *
 * A reply quoting a name from the URL must stay valid JSON whatever bytes
 * the name holds (tests/fuzz/api_seeds/nonutf8-name replays the case that
 * once gave a NULL body).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent.h"
#include "api.h"

static const char *const methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "", "get", "POST ",
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

static struct agent agent;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (agent_init(&agent, NULL, NULL, "/nonexistent")) {
		fprintf(stderr, "fuzz_api: agent_init failed\n");
		abort();
	}
	return 0;
}

static void broken(const char *what, const char *method, const char *url, const struct api_reply *r)
{
	fprintf(stderr,
		"fuzz_api: contract broken: %s (method \"%s\", url \"%s\", status %u, body %s)\n",
		what, method, url, r->status, r->body ? r->body : "(null)");
	abort();
}

static bool known_status(unsigned int s)
{
	static const unsigned int ok[] = { 200, 400, 403, 404, 405, 409, 503 };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (s == ok[i])
			return true;
	return false;
}

static void check_reply(const char *method, const char *url, bool control,
			const struct api_reply *r)
{
	bool json = r->content_type && !strcmp(r->content_type, "application/json");

	if (!known_status(r->status))
		broken("status not in docs/api.md", method, url, r);
	if (!r->body || !r->content_type)
		broken("reply without body or content type", method, url, r);
	if (r->status == 405 && (!r->allow || !*r->allow))
		broken("405 without Allow", method, url, r);
	if (r->status != 405 && r->allow)
		broken("Allow set on a reply that is not 405", method, url, r);
	if (!control && !strcmp(method, "POST") && r->status == 200)
		broken("a read-only listener changed state", method, url, r);
	if (r->status / 100 == 2 && strcmp(url, "/healthz") != 0 && strcmp(url, "/readyz") != 0 &&
	    strcmp(url, "/api/v1/rollouts") != 0 && strcmp(url, "/api/v1/rollouts/") != 0)
		broken("success on a route that needs a rollout, with none configured", method, url,
		       r);
	if (json) {
		json_error_t jerr;
		json_t *doc = json_loads(r->body, JSON_REJECT_DUPLICATES, &jerr);

		if (!doc)
			broken("JSON reply does not parse", method, url, r);
		if (r->status >= 400) {
			json_t *e = json_object_get(doc, "error");

			if (!json_is_object(doc) || json_object_size(doc) != 1 ||
			    !json_is_string(e) || !*json_string_value(e))
				broken("error reply is not {\"error\": \"...\"}", method, url, r);
		}
		json_decref(doc);
	} else if (r->status >= 400 && r->status != 503) {
		broken("error reply that is not JSON", method, url, r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *method = methods[0];
	bool control = true;
	const uint8_t *rest = data;
	size_t rest_len = size, url_len, body_len;
	const uint8_t *nul;
	char *url, *body;
	struct api_reply reply;

	if (size >= 2) {
		method = methods[data[0] % N_METHODS];
		control = data[1] & 1;
		agent.ready = (data[1] & 2) != 0;
		rest = data + 2;
		rest_len = size - 2;
	}
	nul = memchr(rest, '\0', rest_len);
	url_len = nul ? (size_t)(nul - rest) : rest_len;
	body_len = nul ? rest_len - url_len - 1 : 0;

	url = malloc(url_len + 1);
	/* Exactly body_len bytes (at least one, so malloc(0) is no special case). */
	body = malloc(body_len ? body_len : 1);
	if (!url || !body)
		abort();
	memcpy(url, rest, url_len);
	url[url_len] = '\0';
	if (body_len)
		memcpy(body, nul + 1, body_len);

	api_handle(&agent, method, url, body, body_len, control, &reply);
	check_reply(method, url, control, &reply);
	free(reply.body);

	/* The same request on the other kind of listener. */
	api_handle(&agent, method, url, body, body_len, !control, &reply);
	check_reply(method, url, !control, &reply);
	free(reply.body);

	free(url);
	free(body);
	return 0;
}
