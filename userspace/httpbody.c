// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>

#include "httpbody.h"

size_t http_body_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct http_body *b = arg;
	size_t n = size * nmemb;
	char *grown;

	if (b->len + n > b->max)
		return 0; /* anything but n makes curl fail the transfer */
	grown = realloc(b->data, b->len + n + 1);
	if (!grown)
		return 0;
	memcpy(grown + b->len, ptr, n);
	b->data = grown;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

size_t http_lines_feed(struct http_body *line, char *p, size_t n, http_line_fn fn, void *arg)
{
	size_t i, start = 0;
	bool more;

	for (i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		/* http_body_write returns 0 for an empty piece too */
		if (i > start && !http_body_write(p + start, 1, i - start, line))
			return 0;
		start = i + 1;
		if (!line->len)
			continue;
		more = fn(arg, line->data, line->len);
		line->len = 0;
		if (!more)
			return 0;
	}
	if (start < n && !http_body_write(p + start, 1, n - start, line))
		return 0;
	return n;
}
