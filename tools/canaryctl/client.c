// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "httpbody.h"

/* The largest reply canaryctl reads: a status of every rollout fits with room. */
#define MAX_REPLY (16 << 20)

/* "Authorization: Bearer TOKEN" from the token file; NULL on error. */
static char *auth_header(const char *path)
{
	char token[512], *hdr;
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		fprintf(stderr, "canaryctl: cannot read --token-file %s\n", path);
		return NULL;
	}
	n = fread(token, 1, sizeof(token) - 1, f);
	fclose(f);
	while (n && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' '))
		n--;
	token[n] = '\0';
	if (asprintf(&hdr, "Authorization: Bearer %s", token) < 0)
		hdr = NULL;
	memset(token, 0, sizeof(token));
	return hdr;
}

static int perform(CURL *curl, const struct client *c, long *status)
{
	CURLcode rc = curl_easy_perform(curl);

	if (rc != CURLE_OK) {
		fprintf(stderr, "canaryctl: cannot reach canaryd at %s: %s\n",
			c->server ? c->server : c->socket_path, curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

int client_call(const struct client *c, const char *method, const char *path, const char *body,
		long *status, json_t **reply)
{
	struct curl_slist *headers = NULL;
	struct http_body buf = { .max = MAX_REPLY };
	char url[512], *auth = NULL;
	CURL *curl;
	int rc = -1;

	*reply = NULL;
	curl = curl_easy_init();
	if (!curl)
		return -1;
	/* Over the UNIX socket the host part is only a placeholder. */
	snprintf(url, sizeof(url), "%s%s", c->server ? c->server : "http://canaryd", path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	if (!c->server)
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_body_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
	if (body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		headers = curl_slist_append(headers, "Content-Type: application/json");
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	if (c->server && c->token_file) {
		auth = auth_header(c->token_file);
		if (!auth)
			goto out;
		headers = curl_slist_append(headers, auth);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	rc = perform(curl, c, status);
	if (!rc && buf.data)
		*reply = json_loadb(buf.data, buf.len, 0, NULL);
out:
	if (auth) {
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	free(buf.data);
	return rc;
}
