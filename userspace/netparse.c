// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netparse.h"

#define fail(err, errlen, ...)                              \
	do {                                                \
		if (err)                                    \
			snprintf(err, errlen, __VA_ARGS__); \
		return -1;                                  \
	} while (0)

int parse_ipv4_addr(const char *s, __be32 *out, char *err, size_t errlen)
{
	struct in_addr in;

	/* inet_pton accepts only the dotted-quad form: no "10.1", no octal. */
	if (inet_pton(AF_INET, s, &in) != 1)
		fail(err, errlen, "invalid IPv4 address \"%s\"", s);
	*out = in.s_addr;
	return 0;
}

/* Decimal digits only, within [min, max]. */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || *end || *out < min || *out > max)
		return -1;
	return 0;
}

int parse_port(const char *s, __be16 *out, char *err, size_t errlen)
{
	unsigned long v;

	if (parse_uint(s, 1, 65535, &v))
		fail(err, errlen, "invalid port \"%s\" (expected 1..65535)", s);
	*out = htons((__u16)v);
	return 0;
}

/* Split "host:port" at the last colon into bounded copies. */
static int split_host_port(const char *s, char *host, size_t hostlen, const char **port)
{
	const char *colon = strrchr(s, ':');

	if (!colon || (size_t)(colon - s) >= hostlen)
		return -1;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	*port = colon + 1;
	return 0;
}

/*
 * Why addr cannot be a backend, or NULL if it can. A backend is reached by
 * rewriting a packet's destination and routing it on: a loopback address
 * would never leave the node's own stack, a multicast one would go to a
 * group, a link-local one is not routed, and 0/8 and 240/4 are not hosts.
 */
static const char *not_a_backend(__be32 addr)
{
	__u32 a = ntohl(addr);

	if (addr == INADDR_BROADCAST)
		return "not a unicast address";
	if ((a >> 24) == 0)
		return "in the \"this\" network 0.0.0.0/8";
	if ((a >> 24) == 127)
		return "loopback (127.0.0.0/8)";
	if ((a >> 16) == 0xa9fe)
		return "link-local (169.254.0.0/16)";
	if ((a >> 28) == 0xe)
		return "multicast (224.0.0.0/4)";
	if ((a >> 28) == 0xf)
		return "reserved (240.0.0.0/4)";
	return NULL;
}

int parse_endpoint(const char *s, struct canary_backend *out, char *err, size_t errlen)
{
	char host[INET_ADDRSTRLEN];
	const char *port, *why;

	memset(out, 0, sizeof(*out));
	if (split_host_port(s, host, sizeof(host), &port))
		fail(err, errlen, "invalid endpoint \"%s\" (expected IPv4:port)", s);
	if (parse_ipv4_addr(host, &out->addr, err, errlen))
		return -1;
	if (out->addr == 0)
		fail(err, errlen, "invalid endpoint \"%s\": not a unicast address", s);
	why = not_a_backend(out->addr);
	if (why)
		fail(err, errlen, "invalid endpoint \"%s\": %s", s, why);
	return parse_port(port, &out->port, err, errlen);
}

int parse_endpoint_list(const char *s, struct canary_backend *out, __u8 *n, char *err,
			size_t errlen)
{
	char *copy, *tok, *save = NULL;
	int rc = 0;

	*n = 0;
	copy = strdup(s);
	if (!copy)
		fail(err, errlen, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		if (*n >= CANARY_MAX_BACKENDS) {
			snprintf(err, errlen, "too many endpoints (at most %d per version)",
				 CANARY_MAX_BACKENDS);
			rc = -1;
			break;
		}
		rc = parse_endpoint(tok, &out[*n], err, errlen);
		if (!rc)
			(*n)++;
	}
	free(copy);
	if (!rc && *n == 0)
		fail(err, errlen, "empty endpoint list");
	return rc;
}

int parse_cidr(const char *s, __be32 *addr, __u8 *prefixlen, char *err, size_t errlen)
{
	char host[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	unsigned long len;
	__u32 mask;

	if (!slash || (size_t)(slash - s) >= sizeof(host))
		fail(err, errlen, "invalid CIDR \"%s\" (expected a.b.c.d/len)", s);
	memcpy(host, s, slash - s);
	host[slash - s] = '\0';
	if (parse_ipv4_addr(host, addr, err, errlen))
		return -1;
	if (parse_uint(slash + 1, 0, 32, &len))
		fail(err, errlen, "invalid CIDR \"%s\": prefix length must be 0..32", s);
	mask = len ? htonl(~0U << (32 - len)) : 0;
	if (*addr & ~mask)
		fail(err, errlen, "invalid CIDR \"%s\": host bits are set", s);
	*prefixlen = (__u8)len;
	return 0;
}

int parse_weight_percent(const char *s, __u16 *bp, char *err, size_t errlen)
{
	unsigned long whole = 0, frac = 0;
	const char *p = s;
	int decimals = 0;

	if (!isdigit((unsigned char)*p))
		fail(err, errlen, "invalid weight \"%s\" (expected a percent, 0..100)", s);
	for (; isdigit((unsigned char)*p) && whole <= 100; p++)
		whole = whole * 10 + (*p - '0');
	if (whole > 100)
		fail(err, errlen, "invalid weight \"%s\": must be within 0..100", s);
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p) && decimals < 3; p++, decimals++)
			frac = frac * 10 + (*p - '0');
		if (decimals == 0)
			fail(err, errlen, "invalid weight \"%s\": digits expected after '.'", s);
	}
	if (*p && !isdigit((unsigned char)*p))
		fail(err, errlen, "invalid weight \"%s\" (expected a percent, 0..100)", s);
	if (decimals > 2 || *p)
		fail(err, errlen, "invalid weight \"%s\": at most 2 decimals (0.01%% steps)", s);
	if (decimals == 1)
		frac *= 10;
	if (whole > 100 || (whole == 100 && frac > 0))
		fail(err, errlen, "invalid weight \"%s\": must be within 0..100", s);
	*bp = (__u16)(whole * 100 + frac);
	return 0;
}

int parse_service_spec(const char *s, struct service_spec *out, char *err, size_t errlen)
{
	char buf[64];
	const char *proto = "tcp";
	char *slash;

	memset(out, 0, sizeof(*out));
	if (strlen(s) >= sizeof(buf))
		fail(err, errlen, "invalid service \"%s\": too long", s);
	memcpy(buf, s, strlen(s) + 1);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		proto = slash + 1;
	}
	if (!strcmp(proto, "tcp") || !strcmp(proto, "http")) {
		out->key.proto = IPPROTO_TCP;
		out->svc_flags = !strcmp(proto, "http") ? CANARY_SVC_F_HTTP : 0;
	} else if (!strcmp(proto, "udp")) {
		out->key.proto = IPPROTO_UDP;
	} else {
		fail(err, errlen, "invalid service \"%s\": protocol must be http, tcp or udp", s);
	}
	{
		struct canary_backend ep;

		if (parse_endpoint(buf, &ep, err, errlen))
			return -1;
		out->key.vip = ep.addr;
		out->key.port = ep.port;
	}
	return 0;
}

const char *service_protocol_name(const struct canary_service_key *key, __u8 svc_flags)
{
	if (key->proto == IPPROTO_UDP)
		return "udp";
	return (svc_flags & CANARY_SVC_F_HTTP) ? "http" : "tcp";
}

const char *format_ipv4(__be32 addr, char *buf, size_t len)
{
	struct in_addr in = { .s_addr = addr };

	if (!inet_ntop(AF_INET, &in, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

const char *format_endpoint(__be32 addr, __be16 port, char *buf, size_t len)
{
	char host[INET_ADDRSTRLEN];

	snprintf(buf, len, "%s:%u", format_ipv4(addr, host, sizeof(host)), ntohs(port));
	return buf;
}

const char *format_weight(__u16 bp, char *buf, size_t len)
{
	if (bp % 100 == 0)
		snprintf(buf, len, "%u", bp / 100);
	else if (bp % 10 == 0)
		snprintf(buf, len, "%u.%u", bp / 100, (bp % 100) / 10);
	else
		snprintf(buf, len, "%u.%02u", bp / 100, bp % 100);
	return buf;
}
