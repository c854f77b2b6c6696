// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Parsing of addresses, endpoints, CIDRs, weights and service specs. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "netparse.h"

static char err[NETPARSE_ERR_LEN];

static void test_weight_valid(void **state)
{
	static const struct {
		const char *in;
		__u16 bp;
	} cases[] = {
		{ "0", 0 },	     { "0.01", 1 },  { "1", 100 },	{ "10", 1000 },
		{ "12.5", 1250 },    { "50", 5000 }, { "99.99", 9999 }, { "100", 10000 },
		{ "100.00", 10000 }, { "007", 700 },
	};
	size_t i;
	__u16 bp;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse_weight_percent(cases[i].in, &bp, err, sizeof(err)), 0);
		assert_int_equal(bp, cases[i].bp);
	}
}

static void test_weight_invalid(void **state)
{
	static const struct {
		const char *in;
		const char *msg;
	} cases[] = {
		{ "", "expected a percent" },	      { "-1", "expected a percent" },
		{ "100.01", "within 0..100" },	      { "101", "within 0..100" },
		{ "1000000000000", "within 0..100" }, { "12.345", "at most 2 decimals" },
		{ "1.", "digits expected" },	      { "1e2", "expected a percent" },
		{ "ten", "expected a percent" },      { "5%", "expected a percent" },
	};
	size_t i;
	__u16 bp = 4242;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse_weight_percent(cases[i].in, &bp, err, sizeof(err)), -1);
		assert_non_null(strstr(err, cases[i].msg));
		assert_int_equal(bp, 4242); /* untouched on error */
	}
}

static void test_endpoint(void **state)
{
	struct canary_backend be;

	(void)state;
	assert_int_equal(parse_endpoint("10.0.1.11:8080", &be, err, sizeof(err)), 0);
	assert_int_equal(be.addr, inet_addr("10.0.1.11"));
	assert_int_equal(be.port, htons(8080));
	assert_int_equal(parse_endpoint("10.0.1.11", &be, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected IPv4:port"));
	assert_int_equal(parse_endpoint("10.0.1:80", &be, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid IPv4 address \"10.0.1\""));
	assert_int_equal(parse_endpoint("10.0.1.300:80", &be, err, sizeof(err)), -1);
	assert_int_equal(parse_endpoint("10.0.1.1:0", &be, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid port \"0\""));
	assert_int_equal(parse_endpoint("10.0.1.1:65536", &be, err, sizeof(err)), -1);
	assert_int_equal(parse_endpoint("10.0.1.1:80x", &be, err, sizeof(err)), -1);
	assert_int_equal(parse_endpoint("0.0.0.0:80", &be, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a unicast address"));
}

/*
 * Endpoints the data path could never reach as a backend, or that would
 * send a service's traffic somewhere else than a backend.
 */
static void test_endpoint_address_classes(void **state)
{
	static const struct {
		const char *endpoint, *why;
	} bad[] = {
		{ "127.0.0.1:80", "loopback" },		{ "127.255.0.9:80", "loopback" },
		{ "224.0.0.1:80", "multicast" },	{ "239.255.255.250:1900", "multicast" },
		{ "169.254.169.254:80", "link-local" }, { "0.1.2.3:80", "\"this\" network" },
		{ "240.0.0.1:80", "reserved" },		{ "255.255.255.255:80", "not a unicast" },
	};
	static const char *const good[] = { "10.0.0.1:80",    "126.255.255.255:80", "128.0.0.1:80",
					    "169.253.0.1:80", "223.255.255.254:80", "1.0.0.1:80" };
	struct canary_backend be;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse_endpoint(bad[i].endpoint, &be, err, sizeof(err)), -1);
		if (!strstr(err, bad[i].why) || !strstr(err, bad[i].endpoint))
			fail_msg("%s: \"%s\" does not say %s", bad[i].endpoint, err, bad[i].why);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(parse_endpoint(good[i], &be, err, sizeof(err)), 0);
}

static void test_endpoint_list(void **state)
{
	struct canary_backend be[CANARY_MAX_BACKENDS];
	char many[1024] = "";
	__u8 n = 0;
	int i;

	(void)state;
	assert_int_equal(parse_endpoint_list("10.0.0.1:80,10.0.0.2:81", be, &n, err, sizeof(err)),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(be[1].port, htons(81));
	assert_int_equal(parse_endpoint_list("", be, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty endpoint list"));
	assert_int_equal(parse_endpoint_list("10.0.0.1:80,bad", be, &n, err, sizeof(err)), -1);
	for (i = 0; i <= CANARY_MAX_BACKENDS; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s10.0.0.%d:80",
			 i ? "," : "", i + 1);
	assert_int_equal(parse_endpoint_list(many, be, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too many endpoints"));
}

static void test_cidr(void **state)
{
	__be32 addr;
	__u8 len;

	(void)state;
	assert_int_equal(parse_cidr("10.20.0.0/16", &addr, &len, err, sizeof(err)), 0);
	assert_int_equal(addr, inet_addr("10.20.0.0"));
	assert_int_equal(len, 16);
	assert_int_equal(parse_cidr("0.0.0.0/0", &addr, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 0);
	assert_int_equal(parse_cidr("10.20.0.1/32", &addr, &len, err, sizeof(err)), 0);
	assert_int_equal(parse_cidr("10.20.0.1/16", &addr, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "host bits are set"));
	assert_int_equal(parse_cidr("10.20.0.0/33", &addr, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "prefix length must be 0..32"));
	assert_int_equal(parse_cidr("10.20.0.0", &addr, &len, err, sizeof(err)), -1);
	assert_int_equal(parse_cidr("10.20.0.0/", &addr, &len, err, sizeof(err)), -1);
}

static void test_service_spec(void **state)
{
	struct service_spec spec;

	(void)state;
	assert_int_equal(parse_service_spec("10.96.0.10:80/http", &spec, err, sizeof(err)), 0);
	assert_int_equal(spec.key.vip, inet_addr("10.96.0.10"));
	assert_int_equal(spec.key.port, htons(80));
	assert_int_equal(spec.key.proto, IPPROTO_TCP);
	assert_int_equal(spec.svc_flags, CANARY_SVC_F_HTTP);
	assert_string_equal(service_protocol_name(&spec.key, spec.svc_flags), "http");
	assert_int_equal(parse_service_spec("10.96.0.10:53/udp", &spec, err, sizeof(err)), 0);
	assert_int_equal(spec.key.proto, IPPROTO_UDP);
	assert_int_equal(parse_service_spec("10.96.0.10:5432", &spec, err, sizeof(err)), 0);
	assert_string_equal(service_protocol_name(&spec.key, spec.svc_flags), "tcp");
	assert_int_equal(parse_service_spec("10.96.0.10:80/sctp", &spec, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "protocol must be http, tcp or udp"));
}

static void test_format(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(format_weight(0, buf, sizeof(buf)), "0");
	assert_string_equal(format_weight(1, buf, sizeof(buf)), "0.01");
	assert_string_equal(format_weight(1250, buf, sizeof(buf)), "12.5");
	assert_string_equal(format_weight(10000, buf, sizeof(buf)), "100");
	assert_string_equal(format_endpoint(inet_addr("10.0.0.1"), htons(8080), buf, sizeof(buf)),
			    "10.0.0.1:8080");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weight_valid),
		cmocka_unit_test(test_weight_invalid),
		cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_endpoint_list),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_service_spec),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_endpoint_address_classes),
	};

	return cmocka_run_group_tests_name("netparse", tests, NULL, NULL);
}
