// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* canaryd --conntrack-lifetimes: parsing, defaults, errors naming the field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "canary_consts.h"
#include "ctlifetimes.h"

#define S 1000000000ULL

static char err[160];

static void test_defaults(void **state)
{
	struct ct_lifetimes lt;

	(void)state;
	ct_lifetimes_default(&lt);
	assert_int_equal(lt.closed_ns, 10 * S);
	assert_int_equal(lt.syn_ns, 60 * S);
	assert_int_equal(lt.established_ns, 6 * 3600 * S);
	assert_int_equal(lt.udp_ns, 60 * S);
	assert_int_equal(lt.reply_ns, 60 * S);
}

static void test_all_fields(void **state)
{
	struct ct_lifetimes lt;

	(void)state;
	ct_lifetimes_default(&lt);
	assert_int_equal(ct_lifetimes_parse("closed=5s,syn=2m,established=1d,udp=90s,reply=3h", &lt,
					    err, sizeof(err)),
			 0);
	assert_int_equal(lt.closed_ns, 5 * S);
	assert_int_equal(lt.syn_ns, 120 * S);
	assert_int_equal(lt.established_ns, 86400 * S);
	assert_int_equal(lt.udp_ns, 90 * S);
	assert_int_equal(lt.reply_ns, 3 * 3600 * S);
}

/* Any subset, any order: the fields not named keep their defaults. */
static void test_subset(void **state)
{
	struct ct_lifetimes lt;

	(void)state;
	ct_lifetimes_default(&lt);
	assert_int_equal(ct_lifetimes_parse("established=8s,reply=3s", &lt, err, sizeof(err)), 0);
	assert_int_equal(lt.established_ns, 8 * S);
	assert_int_equal(lt.reply_ns, 3 * S);
	assert_int_equal(lt.closed_ns, CANARY_CT_CLOSED_NS);
	assert_int_equal(lt.syn_ns, CANARY_CT_SYN_NS);
	assert_int_equal(lt.udp_ns, CANARY_CT_UDP_NS);
	assert_int_equal(ct_lifetimes_parse("udp=30d", &lt, err, sizeof(err)), 0);
	assert_int_equal(lt.udp_ns, 30ULL * 86400 * S);
}

static void test_errors(void **state)
{
	static const struct {
		const char *in;
		const char *msg; /* the message starts with this */
	} cases[] = {
		{ "", "expected name=duration" },
		{ "syn", "syn: expected a duration" },
		{ "syn=", "syn: expected a duration" },
		{ "syn=60", "syn: expected a duration" },
		{ "syn=s", "syn: expected a duration" },
		{ "syn=-5s", "syn: expected a duration" },
		{ "syn=1.5s", "syn: expected a duration" },
		{ "syn=5ms", "syn: expected a duration" },
		{ "established=0s", "established: expected a duration of 1s..30d" },
		{ "udp=31d", "udp: expected a duration" },
		{ "reply=99999999999999s", "reply: expected a duration" },
		{ "closed=10s,", "unknown field \"\"" },
		{ "timeout=5s", "unknown field \"timeout\"" },
		{ "syn=5s,Syn=6s", "unknown field \"Syn\"" },
		{ "syn=5s,syn=6s", "syn: given twice" },
	};
	struct ct_lifetimes lt, before;
	size_t i;

	(void)state;
	ct_lifetimes_default(&before);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		lt = before;
		err[0] = '\0';
		assert_int_equal(ct_lifetimes_parse(cases[i].in, &lt, err, sizeof(err)), -EINVAL);
		if (strncmp(err, cases[i].msg, strlen(cases[i].msg)))
			fail_msg("\"%s\": got \"%s\", wanted \"%s...\"", cases[i].in, err,
				 cases[i].msg);
		/* A bad list changes nothing, not even its good fields. */
		assert_memory_equal(&lt, &before, sizeof(lt));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_fields),
		cmocka_unit_test(test_subset),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests_name("ctlifetimes", tests, NULL, NULL);
}
