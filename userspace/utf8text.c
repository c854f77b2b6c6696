// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8text.h"

/* Bytes in a character, from its lead byte; 0 for bytes that cannot lead (RFC 3629). */
static int lead_len(unsigned char b)
{
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		return 2;
	if (b >= 0xe0 && b <= 0xef)
		return 3;
	if (b >= 0xf0 && b <= 0xf4)
		return 4;
	return 0;
}

/*
 * The second byte's range depends on the lead: it is what excludes
 * overlong forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
 */
static int second_ok(unsigned char lead, unsigned char b)
{
	unsigned char lo = 0x80, hi = 0xbf;

	if (lead == 0xe0)
		lo = 0xa0;
	else if (lead == 0xed)
		hi = 0x9f;
	else if (lead == 0xf0)
		lo = 0x90;
	else if (lead == 0xf4)
		hi = 0x8f;
	return b >= lo && b <= hi;
}

int utf8_char_len(const unsigned char *s, size_t len)
{
	int n, i;

	if (len == 0)
		return -1;
	n = lead_len(s[0]);
	if (n <= 1)
		return n;
	for (i = 1; i < n; i++) {
		if ((size_t)i >= len)
			return -1;
		if (i == 1 ? !second_ok(s[0], s[1]) : (s[i] & 0xc0) != 0x80)
			return 0;
	}
	return n;
}

void utf8_repair(char *s)
{
	size_t len = strlen(s), i = 0;

	while (i < len) {
		int n = utf8_char_len((const unsigned char *)s + i, len - i);

		if (n < 0) {
			s[i] = '\0'; /* a character the end cut short */
			return;
		}
		if (n == 0) {
			s[i] = '?';
			n = 1;
		}
		i += (size_t)n;
	}
}

void utf8_copy(char *dst, size_t size, const char *src)
{
	if (!size)
		return;
	snprintf(dst, size, "%s", src);
	utf8_repair(dst);
}

json_t *utf8_json_string(const char *s)
{
	json_t *str = json_string(s);
	char *copy;

	if (str || !s)
		return str;
	copy = strdup(s);
	if (!copy)
		return NULL;
	utf8_repair(copy);
	str = json_string(copy);
	free(copy);
	return str;
}
