// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "httpbody.h"
#include "probe.h"

#define PROBE_MAX_BODY 4096

int probe_run(const char *socket_path, const char *path, long timeout_ms)
{
	struct http_body body = { .max = PROBE_MAX_BODY };
	char url[256];
	long status = 0;
	CURLcode rc;
	CURL *curl;

	if (!socket_path || !*socket_path) {
		fprintf(stderr, "canaryd: --probe: needs the API socket (--api-socket)\n");
		return 1;
	}
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl = curl_easy_init();
	if (!curl)
		return 1;
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_body_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (rc != CURLE_OK)
		fprintf(stderr, "canaryd: --probe %s: %s: %s\n", path, socket_path,
			curl_easy_strerror(rc));
	else
		printf("%ld %s", status, body.data ? body.data : "\n");
	free(body.data);
	return rc == CURLE_OK && status == 200 ? 0 : 1;
}
