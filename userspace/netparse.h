/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Parsing of what people write: addresses, endpoints, CIDRs, weights and
 * service specs. Every function is strict (no trailing junk, no silent
 * truncation) and on error writes a message naming what is wrong to err.
 */
#ifndef CANARY_NETPARSE_H
#define CANARY_NETPARSE_H

#include <stddef.h>
#include <linux/types.h>

#include "canary_structs.h"

#define NETPARSE_ERR_LEN 160

/* Protocol of a service as written: "tcp" (L4 only), "http" (TCP + HTTP sniffing), "udp". */
struct service_spec {
	struct canary_service_key key;
	__u8 svc_flags; /* CANARY_SVC_F_* */
};

int parse_ipv4_addr(const char *s, __be32 *out, char *err, size_t errlen);
int parse_port(const char *s, __be16 *out, char *err, size_t errlen);
/* "10.0.1.11:8080" */
int parse_endpoint(const char *s, struct canary_backend *out, char *err, size_t errlen);
/* "10.0.1.11:8080,10.0.1.12:8080" into at most CANARY_MAX_BACKENDS entries. */
int parse_endpoint_list(const char *s, struct canary_backend *out, __u8 *n, char *err,
			size_t errlen);
/* "10.20.0.0/16"; host bits must be zero. */
int parse_cidr(const char *s, __be32 *addr, __u8 *prefixlen, char *err, size_t errlen);
/* Percent "12.5" (0..100, at most 2 decimals) to basis points. */
int parse_weight_percent(const char *s, __u16 *bp, char *err, size_t errlen);
/* "10.96.0.10:80/http"; the protocol defaults to tcp. */
int parse_service_spec(const char *s, struct service_spec *out, char *err, size_t errlen);
/* "http", "tcp" or "udp" for a service's key and flags. */
const char *service_protocol_name(const struct canary_service_key *key, __u8 svc_flags);

/* "a.b.c.d" and "a.b.c.d:port" into buf. */
const char *format_ipv4(__be32 addr, char *buf, size_t len);
const char *format_endpoint(__be32 addr, __be16 port, char *buf, size_t len);
/* Basis points as percent without trailing zeros: 1250 -> "12.5". */
const char *format_weight(__u16 bp, char *buf, size_t len);

#endif /* CANARY_NETPARSE_H */
