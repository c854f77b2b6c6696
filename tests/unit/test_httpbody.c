// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The newline-delimited stream splitter the etcd and Kubernetes watches share. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "httpbody.h"

struct seen {
	char lines[8][32];
	int n;
	int stop_after; /* 0: never stop */
};

static bool take(void *arg, const char *line, size_t len)
{
	struct seen *s = arg;

	assert_true(s->n < 8 && len < sizeof(s->lines[0]));
	memcpy(s->lines[s->n], line, len);
	s->lines[s->n][len] = '\0';
	s->n++;
	return s->n != s->stop_after;
}

static size_t feed(struct http_body *line, const char *text, struct seen *s)
{
	char buf[64];
	size_t n = strlen(text);

	memcpy(buf, text, n);
	return http_lines_feed(line, buf, n, take, s);
}

static void test_lines_across_chunks(void **state)
{
	struct http_body line = { .max = 64 };
	struct seen s = { 0 };

	(void)state;
	assert_int_equal(feed(&line, "{\"a\":1}\n{\"b\"", &s), 12);
	assert_int_equal(s.n, 1);
	assert_int_equal(feed(&line, ":2}\n\n{\"c\":3}\n", &s), 13);
	assert_int_equal(s.n, 3); /* the empty line is skipped */
	assert_string_equal(s.lines[0], "{\"a\":1}");
	assert_string_equal(s.lines[1], "{\"b\":2}");
	assert_string_equal(s.lines[2], "{\"c\":3}");
	assert_int_equal(line.len, 0);
	free(line.data);
}

static void test_stop_ends_the_stream(void **state)
{
	struct http_body line = { .max = 64 };
	struct seen s = { .stop_after = 1 };

	(void)state;
	assert_int_equal(feed(&line, "one\ntwo\n", &s), 0);
	assert_int_equal(s.n, 1);
	free(line.data);
}

static void test_long_line_fails(void **state)
{
	struct http_body line = { .max = 8 };
	struct seen s = { 0 };

	(void)state;
	assert_int_equal(feed(&line, "0123456789\n", &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(feed(&line, "0123", &s), 4);
	assert_int_equal(feed(&line, "456789", &s), 0); /* past max across chunks */
	free(line.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_across_chunks),
		cmocka_unit_test(test_stop_ends_the_stream),
		cmocka_unit_test(test_long_line_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
