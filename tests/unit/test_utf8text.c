// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* UTF-8 validation, repair and cutting for text bound for JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "utf8text.h"

static int char_len(const char *s)
{
	return utf8_char_len((const unsigned char *)s, strlen(s));
}

/* The boundaries of RFC 3629: shortest forms only, no surrogates, at most U+10FFFF. */
static void test_char_len(void **state)
{
	(void)state;
	assert_int_equal(char_len("a"), 1);
	assert_int_equal(char_len("\xc3\xbc"), 2);	   /* ü */
	assert_int_equal(char_len("\xe2\x82\xac"), 3);	   /* € */
	assert_int_equal(char_len("\xf0\x9f\x90\xa4"), 4); /* a chick */
	assert_int_equal(char_len("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF */
	assert_int_equal(char_len("\xed\x9f\xbf"), 3);	   /* U+D7FF */
	assert_int_equal(char_len("\xc0\x80"), 0);	   /* overlong NUL */
	assert_int_equal(char_len("\xc1\xbf"), 0);	   /* overlong */
	assert_int_equal(char_len("\xe0\x9f\xbf"), 0);	   /* overlong */
	assert_int_equal(char_len("\xf0\x8f\xbf\xbf"), 0); /* overlong */
	assert_int_equal(char_len("\xed\xa0\x80"), 0);	   /* a surrogate */
	assert_int_equal(char_len("\xf4\x90\x80\x80"), 0); /* past U+10FFFF */
	assert_int_equal(char_len("\xf5\x80\x80\x80"), 0);
	assert_int_equal(char_len("\x80"), 0); /* a lone continuation */
	assert_int_equal(char_len("\xc3"
				  "a"),
			 0);			/* lead, then no continuation */
	assert_int_equal(char_len("\xc3"), -1); /* cut short */
	assert_int_equal(char_len("\xe2\x82"), -1);
	assert_int_equal(char_len("\xf0\x9f\x90"), -1);
}

static void repaired_is(const char *in, const char *want)
{
	char buf[64];
	json_t *s;

	snprintf(buf, sizeof(buf), "%s", in);
	utf8_repair(buf);
	assert_string_equal(buf, want);
	s = json_string(buf);
	assert_non_null(s);
	json_decref(s);
}

static void test_repair(void **state)
{
	(void)state;
	repaired_is("plain ascii", "plain ascii");
	repaired_is("gr\xc3\xbc\xc3\x9f \xe2\x82\xac", "gr\xc3\xbc\xc3\x9f \xe2\x82\xac");
	repaired_is("cut \xc3", "cut "); /* a truncation's leftover goes */
	repaired_is("cut \xf0\x9f\x90", "cut ");
	repaired_is("bad \xff here", "bad ? here"); /* anything else becomes '?' */
	repaired_is("\xc3"
		    "a",
		    "?a");
	repaired_is("\xed\xa0\x80.", "???.");
	repaired_is("\x80\x80", "??");
}

/* Every size cuts between characters: valid, fits, a prefix of the whole. */
static void test_copy_every_size(void **state)
{
	const char *text = "a\xc3\xbc\xe2\x82\xac\xf0\x9f\x90\xa4z\xc3\xbc";
	char out[32];
	size_t size;

	(void)state;
	for (size = 1; size <= strlen(text) + 1; size++) {
		size_t n;
		json_t *s;

		utf8_copy(out, size, text);
		n = strlen(out);
		assert_true(n < size);
		assert_memory_equal(out, text, n);
		/* Only a character that did not fit is left out. */
		assert_true(size - 1 - n < 4);
		s = json_string(out);
		assert_non_null(s);
		json_decref(s);
	}
	utf8_copy(out, sizeof(out), text);
	assert_string_equal(out, text);
}

static void test_json_string(void **state)
{
	json_t *s;

	(void)state;
	s = utf8_json_string("ok \xc3\xbc");
	assert_string_equal(json_string_value(s), "ok \xc3\xbc");
	json_decref(s);
	s = utf8_json_string("cut \xc3");
	assert_string_equal(json_string_value(s), "cut ");
	json_decref(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_char_len),
		cmocka_unit_test(test_repair),
		cmocka_unit_test(test_copy_every_size),
		cmocka_unit_test(test_json_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
