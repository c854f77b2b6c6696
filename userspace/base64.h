/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Base64 (RFC 4648, with padding): etcd's JSON gateway sends keys and values
 * so, and a kubeconfig its *-data fields (certificates, keys).
 */
#ifndef CANARY_BASE64_H
#define CANARY_BASE64_H

#include <stddef.h>

/* Base64 of len bytes, malloc'd and NUL-terminated; NULL on ENOMEM. */
char *base64_encode(const void *data, size_t len);
/* Decode s into a malloc'd, NUL-terminated buffer. -EINVAL, -ENOMEM or 0. */
int base64_decode(const char *s, char **out, size_t *len);

#endif /* CANARY_BASE64_H */
