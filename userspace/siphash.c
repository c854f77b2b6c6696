// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* SipHash-2-4, as the reference implementation computes it (little endian). */
#include "siphash.h"

static uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl(v[2], 32);
}

/* One message word: two compression rounds. */
static void absorb(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sipround(v);
	sipround(v);
	v[0] ^= m;
}

uint64_t siphash24(const uint8_t key[16], const void *in, size_t len)
{
	const uint8_t *p = in;
	uint64_t k0 = le64(key), k1 = le64(key + 8);
	uint64_t v[4] = { k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
			  k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL };
	uint64_t last = (uint64_t)(len & 0xff) << 56;
	size_t i, full = len & ~(size_t)7;

	for (i = 0; i < full; i += 8)
		absorb(v, le64(p + i));
	for (i = 0; i < (len & 7); i++)
		last |= (uint64_t)p[full + i] << (8 * i);
	absorb(v, last);
	v[2] ^= 0xff;
	for (i = 0; i < 4; i++) /* four finalisation rounds */
		sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}
