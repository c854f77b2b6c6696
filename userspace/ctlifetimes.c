// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary_consts.h"
#include "ctlifetimes.h"

#define NS_PER_S 1000000000ULL

void ct_lifetimes_default(struct ct_lifetimes *lt)
{
	lt->closed_ns = CANARY_CT_CLOSED_NS;
	lt->syn_ns = CANARY_CT_SYN_NS;
	lt->established_ns = CANARY_CT_TCP_NS;
	lt->udp_ns = CANARY_CT_UDP_NS;
	lt->reply_ns = CANARY_CT_ORPHAN_NS;
}

/* The field called name (length len) in lt, or NULL. */
static __u64 *lifetime_field(struct ct_lifetimes *lt, const char *name, size_t len)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
		{ "closed", offsetof(struct ct_lifetimes, closed_ns) },
		{ "syn", offsetof(struct ct_lifetimes, syn_ns) },
		{ "established", offsetof(struct ct_lifetimes, established_ns) },
		{ "udp", offsetof(struct ct_lifetimes, udp_ns) },
		{ "reply", offsetof(struct ct_lifetimes, reply_ns) },
	};
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strlen(fields[i].name) == len && !strncmp(fields[i].name, name, len))
			return (__u64 *)((char *)lt + fields[i].off);
	return NULL;
}

/* "90s", "5m", "6h", "1d" (value of length len) in seconds; 0 when malformed. */
static unsigned long long duration_s(const char *value, size_t len)
{
	unsigned long long n = 0, unit;
	size_t i;

	if (len < 2 || len > 12)
		return 0;
	for (i = 0; i + 1 < len; i++) {
		if (value[i] < '0' || value[i] > '9')
			return 0;
		n = n * 10 + (unsigned long long)(value[i] - '0');
	}
	switch (value[len - 1]) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	default:
		return 0;
	}
	return n * unit;
}

/* One "name=duration" item (length len) into out; seen marks the fields given. */
static int parse_item(const char *item, size_t len, struct ct_lifetimes *out,
		      struct ct_lifetimes *seen, char *err, size_t err_size)
{
	const char *eq = memchr(item, '=', len);
	size_t name_len = eq ? (size_t)(eq - item) : len;
	unsigned long long s;
	__u64 *field;

	field = lifetime_field(out, item, name_len);
	if (!field) {
		snprintf(err, err_size,
			 "unknown field \"%.*s\": expected closed, syn, established, udp or reply",
			 (int)name_len, item);
		return -EINVAL;
	}
	if (*lifetime_field(seen, item, name_len)) {
		snprintf(err, err_size, "%.*s: given twice", (int)name_len, item);
		return -EINVAL;
	}
	s = eq ? duration_s(eq + 1, len - name_len - 1) : 0;
	if (s < CT_LIFETIME_MIN_S || s > CT_LIFETIME_MAX_S) {
		snprintf(err, err_size,
			 "%.*s: expected a duration of 1s..30d such as 10s, 5m or 6h, got \"%.*s\"",
			 (int)name_len, item, eq ? (int)(len - name_len - 1) : 0, eq ? eq + 1 : "");
		return -EINVAL;
	}
	*field = s * NS_PER_S;
	*lifetime_field(seen, item, name_len) = 1;
	return 0;
}

int ct_lifetimes_parse(const char *text, struct ct_lifetimes *lt, char *err, size_t err_size)
{
	struct ct_lifetimes out = *lt, seen = { 0 };
	const char *p = text;

	if (!*text) {
		snprintf(err, err_size, "expected name=duration[,name=duration...], got \"\"");
		return -EINVAL;
	}
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int rc = parse_item(p, len, &out, &seen, err, err_size);

		if (rc)
			return rc;
		if (!end)
			break;
		p = end + 1;
	}
	*lt = out;
	return 0;
}
