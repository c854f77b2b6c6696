/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef CANARY_SIPHASH_H
#define CANARY_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 (Aumasson and Bernstein, 2012) of in[0..len) under a 16-byte key. */
uint64_t siphash24(const uint8_t key[16], const void *in, size_t len);

#endif /* CANARY_SIPHASH_H */
