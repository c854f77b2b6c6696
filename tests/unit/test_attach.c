// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What attach.c decides without the kernel: interface globs, mode names,
 * and which libbpf messages reach the log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "attach.h"

static void test_ifname_globs(void **state)
{
	(void)state;
	assert_true(ifname_matches("veth*", "veth0"));
	assert_true(ifname_matches("eth0,veth*", "vethab12"));
	assert_true(ifname_matches("eth0,veth*", "eth0"));
	assert_false(ifname_matches("eth0,veth*", "eth1"));
	assert_false(ifname_matches("veth*", "lo")); /* loopback never, whatever the glob */
	assert_false(ifname_matches("*", "lo"));
	assert_true(ifname_matches("*", "ens3"));
}

static void test_mode_names(void **state)
{
	static const char *const names[] = { "tc", "xdp", "tcx" };
	enum attach_mode mode;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(attach_mode_parse(names[i], &mode), 0);
		assert_string_equal(attach_mode_name(mode), names[i]);
	}
	assert_int_equal(attach_mode_parse("TC", &mode), -1);
	assert_int_equal(attach_mode_parse("tcx ", &mode), -1);
	assert_int_equal(attach_mode_parse("", &mode), -1);
}

static int print(enum libbpf_print_level level, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = attach_libbpf_print(level, fmt, ap);
	va_end(ap);
	return rc;
}

/* What the callback wrote to stderr while fn ran, in out. */
static void capture_stderr(void (*fn)(void), char *out, size_t size)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	fn();
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, size - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

static void print_all(void)
{
	print(LIBBPF_WARN, "libbpf: Kernel error message: %s\n",
	      "Exclusivity flag on, cannot modify");
	print(LIBBPF_WARN, "libbpf: Kernel error message: %s\n",
	      "Cannot find specified filter chain");
	print(LIBBPF_WARN, "libbpf: Kernel error message: %s\n", "Parent Qdisc doesn't exists");
	print(LIBBPF_DEBUG, "libbpf: loading object '%s'\n", "canary_bpf");
	print(LIBBPF_WARN, "libbpf: map '%s': %s\n", "conntrack_v2", "failed to create: -EPERM");
	print(LIBBPF_INFO, "libbpf: %s\n", "info line");
}

/* Kernel notes that attaching expects and debug lines are dropped; warnings are kept. */
static void test_libbpf_print_filters(void **state)
{
	char out[1024];

	(void)state;
	capture_stderr(print_all, out, sizeof(out));
	assert_string_equal(out, "libbpf: map 'conntrack_v2': failed to create: -EPERM\n"
				 "libbpf: info line\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ifname_globs),
		cmocka_unit_test(test_mode_names),
		cmocka_unit_test(test_libbpf_print_filters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
