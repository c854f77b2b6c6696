// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpbody.h"
#include "promquery.h"
#include "secretfile.h"

/* The largest Prometheus answer read: an instant vector of one sample is far less. */
#define MAX_REPLY (4 << 20)

/* The sample value of [timestamp, "value"]. */
static int sample_value(json_t *pair, double *value)
{
	const char *text = json_string_value(json_array_get(pair, 1));
	char *end;

	if (!text)
		return -1;
	*value = strtod(text, &end);
	/* "+Inf", "-Inf" and "NaN" are sample values in Prometheus, not numbers to judge. */
	return *end || end == text || !isfinite(*value) ? -1 : 0;
}

static int parse_reply(const char *body, size_t len, double *value, char *err, size_t errlen)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	json_t *data = json_object_get(root, "data"), *result, *sample = NULL;
	const char *status = json_string_value(json_object_get(root, "status"));
	const char *type = json_string_value(json_object_get(data, "resultType"));
	int rc = -1;

	result = json_object_get(data, "result");
	if (type && !strcmp(type, "scalar"))
		sample = result;
	else if (type && !strcmp(type, "vector"))
		sample = json_object_get(json_array_get(result, 0), "value");
	if (!status || strcmp(status, "success") != 0) {
		const char *msg = json_string_value(json_object_get(root, "error"));

		snprintf(err, errlen, "query failed: %s", msg ? msg : "not a Prometheus answer");
	} else if (type && !strcmp(type, "vector") && json_array_size(result) > 1) {
		/* Which series would count is a guess: the query must say (sum, max, ...). */
		snprintf(err, errlen,
			 "the result has %zu series: reduce it to one in the query "
			 "(sum(...), max(...), ...)",
			 json_array_size(result));
	} else if (!sample) {
		snprintf(err, errlen, "empty result");
	} else if (sample_value(sample, value)) {
		snprintf(err, errlen, "the result is not a finite number");
	} else {
		rc = 0;
	}
	json_decref(root);
	return rc;
}

/* Prometheus' own bearer tokens (and Kubernetes') are far shorter. */
#define MAX_TOKEN 2048

/*
 * The Authorization header from the token file, read now so that a rotated
 * token is used from the next query on. A file group or others may read is
 * refused, as the API's token file is.
 */
static struct curl_slist *bearer_header(const char *path, char *err, size_t errlen)
{
	char token[MAX_TOKEN], why[200], *line = NULL;
	struct curl_slist *list = NULL;
	struct file_stamp stamp;
	size_t len, i;

	if (secret_read_token(path, token, sizeof(token), &len, &stamp, why, sizeof(why))) {
		snprintf(err, errlen, "bearerTokenFile: %s", why);
		return NULL;
	}
	/* A line break in the token would end the header and start another. */
	for (i = 0; i < len; i++)
		if ((unsigned char)token[i] <= ' ' || token[i] == 0x7f)
			break;
	if (i < len) {
		snprintf(err, errlen,
			 "bearerTokenFile: %s: the token holds a space or control byte", path);
		explicit_bzero(token, sizeof(token));
		return NULL;
	}
	if (asprintf(&line, "Authorization: Bearer %s", token) < 0)
		line = NULL; /* undefined after a failure */
	if (line)
		list = curl_slist_append(NULL, line);
	if (!list)
		snprintf(err, errlen, "out of memory");
	if (line)
		explicit_bzero(line, strlen(line));
	free(line);
	explicit_bzero(token, sizeof(token));
	return list;
}

/* TLS settings for an https address (the parser refuses them for http). */
static void set_tls(CURL *curl, const struct prom_tls_auth *auth)
{
	if (auth->ca_file[0])
		curl_easy_setopt(curl, CURLOPT_CAINFO, auth->ca_file);
	if (auth->cert_file[0]) {
		curl_easy_setopt(curl, CURLOPT_SSLCERT, auth->cert_file);
		curl_easy_setopt(curl, CURLOPT_SSLKEY, auth->key_file);
	}
	if (auth->insecure_skip_verify) {
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

int promquery(const char *address, const struct prom_tls_auth *auth, const char *query,
	      double *value, char *err, size_t errlen)
{
	struct http_body r = { .max = MAX_REPLY };
	char *escaped, *url = NULL, detail[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	long status = 0;
	CURLcode cc;
	CURL *curl;
	int rc = -1;

	curl = curl_easy_init();
	if (!curl) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	escaped = curl_easy_escape(curl, query, 0);
	if (escaped && asprintf(&url, "%s/api/v1/query?query=%s", address, escaped) < 0)
		url = NULL;
	curl_free(escaped);
	if (!url) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (auth && auth->token_file[0]) {
		headers = bearer_header(auth->token_file, err, errlen);
		if (!headers)
			goto out;
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	}
	if (auth)
		set_tls(curl, auth);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	/* Redirects are not followed: the token must not go to another host. */
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)PROMQUERY_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* we run in a thread */
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_body_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	/* libcurl's own detail names the cause ("unable to get local issuer certificate"). */
	if (cc != CURLE_OK)
		snprintf(err, errlen, "%s: %s", address,
			 detail[0] ? detail : curl_easy_strerror(cc));
	else if (status != 200 && !r.data)
		snprintf(err, errlen, "%s: HTTP %ld", address, status);
	else
		rc = parse_reply(r.data ? r.data : "", r.len, value, err, errlen);
out:
	curl_slist_free_all(headers);
	free(url);
	free(r.data);
	curl_easy_cleanup(curl);
	return rc;
}
