// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* SipHash-2-4 against the reference vectors, and the seeds derived from it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "seedsecret.h"
#include "siphash.h"

/*
 * The reference implementation's vectors (vectors.h of github.com/veorq/SipHash,
 * Appendix A of the paper for 15 bytes): key 00..0f, message 00..len-1.
 */
static const uint64_t vectors[] = {
	0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
	0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
	0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
	0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
	0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL, 0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL,
	0xbed65cf21aa2ee98ULL, 0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL,
	0xb8ad50c6f649af94ULL, 0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL, 0x2f2e6163076bcfadULL,
	0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL, 0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL,
	0x7127512f72f27cceULL, 0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL, 0x15e034d40fa197aeULL,
	0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL, 0x9abfd8766a33735cULL,
	0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL, 0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL,
	0xf935451de4f21df2ULL, 0xa9538f0419755787ULL,
};

static void reference_key(uint8_t key[16])
{
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
}

/* Every length from 0 to 45 covers empty, partial-word and multi-word inputs. */
static void test_reference_vectors(void **state)
{
	uint8_t key[16], msg[64];

	(void)state;
	reference_key(key);
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (size_t len = 0; len < sizeof(vectors) / sizeof(vectors[0]); len++) {
		if (siphash24(key, msg, len) != vectors[len])
			fail_msg("length %zu: got %016llx, want %016llx", len,
				 (unsigned long long)siphash24(key, msg, len),
				 (unsigned long long)vectors[len]);
	}
	assert_true(siphash24(key, msg, 63) == 0x958a324ceb064572ULL);
}

/* A seed is SipHash of the name under the secret: the key, not the name, decides it. */
static void test_seed_depends_on_secret(void **state)
{
	struct canary_secret a = { 0 }, b;
	uint8_t msg[3] = { 'w', 'e', 'b' };

	(void)state;
	reference_key(a.key);
	memcpy(&b, &a, sizeof(b));
	b.key[15] ^= 1;
	assert_int_equal(seed_secret_seed(&a, "web"), (uint32_t)siphash24(a.key, msg, 3));
	assert_int_equal(seed_secret_seed(&a, "web"), seed_secret_seed(&a, "web"));
	assert_int_not_equal(seed_secret_seed(&a, "web"), seed_secret_seed(&b, "web"));
	assert_int_not_equal(seed_secret_seed(&a, "web"), seed_secret_seed(&a, "web2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_vectors),
		cmocka_unit_test(test_seed_depends_on_secret),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
