// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Pin names come from CANARY_LAYOUT_VERSION alone: the macros, the agent's
 * names, the BPF object built with another version and the scripts' helper
 * all follow a bump with no other edit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <bpf/libbpf.h>

#include "canary_consts.h"
#include "dataplane.h"

static void test_macros_after_bump(void **state);

static const char *const bases[DP_MAP_COUNT] = {
	[DP_MAP_SERVICES] = "services",
	[DP_MAP_CONNTRACK] = "conntrack",
	[DP_MAP_OVERRIDES] = "overrides",
	[DP_MAP_METRICS] = "metrics",
	[DP_MAP_REASONS] = "reasons",
	[DP_MAP_CT_STATS] = "ct_stats",
	[DP_MAP_FRAGS] = "frags",
	[DP_MAP_CT_EXPIRED] = "ct_expired",
	[DP_MAP_KILLSWITCH] = "killswitch",
	[DP_MAP_CT_SYN] = "ct_syn",
	[DP_MAP_VIP_FILTER] = "vip_filter",
	[DP_MAP_SVC_GENS] = "svc_gens",
	[DP_MAP_BACKEND_FILTER] = "be_filter",
};

/* The agent's pin names are "<base>_v<version>", whatever the version is. */
static void test_agent_names_follow_version(void **state)
{
	char want[64];

	(void)state;
	for (int i = 0; i < DP_MAP_COUNT; i++) {
		snprintf(want, sizeof(want), "%s_v%d", bases[i], CANARY_LAYOUT_VERSION);
		assert_string_equal(dp_map_name(i), want);
	}
}

static int run(const char *cmd)
{
	int rc = system(cmd);

	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* Map names in a BPF object built from bpf/canary.bpf.c with -D<version>. */
static void check_object_names(const char *obj_path, const char *suffix)
{
	struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
	struct bpf_map *map;
	int found = 0;

	assert_non_null(obj);
	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);

		assert_true(strlen(name) > strlen(suffix));
		if (!bpf_map__get_pin_path(map))
			continue; /* .rodata, .bss, the clock cache: not pinned */
		assert_string_equal(name + strlen(name) - strlen(suffix), suffix);
		found++;
	}
	bpf_object__close(obj);
	assert_int_equal(found, DP_MAP_COUNT);
}

static void test_bpf_object_after_bump(void **state)
{
	char dir[] = "/tmp/test_pins.XXXXXX", cmd[1024], obj[64];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(obj, sizeof(obj), "%s/canary.bpf.o", dir);
	snprintf(cmd, sizeof(cmd),
		 "clang -O2 -g -target bpf -mcpu=v3 -Iheaders -Ibpf "
		 "-I/usr/include/$(uname -m)-linux-gnu -DCANARY_LAYOUT_VERSION=7 "
		 "-c bpf/canary.bpf.c -o %s",
		 obj);
	assert_int_equal(run(cmd), 0);
	check_object_names(obj, "_v7");
	unlink(obj);
	rmdir(dir);
	/* And the product's own object carries today's version. */
	check_object_names("build/canary.bpf.o", CANARY_PIN_SUFFIX);
}

/* tests/e2e/lib.sh's helper reads the header: a bumped copy gives _v7. */
static void test_shell_helper_after_bump(void **state)
{
	char dir[] = "/tmp/test_pins.XXXXXX", hdr[64], cmd[1024], out[32] = "";
	FILE *p;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(hdr, sizeof(hdr), "%s/canary_consts.h", dir);
	snprintf(cmd, sizeof(cmd),
		 "sed 's/^#define CANARY_LAYOUT_VERSION [0-9]*$/#define CANARY_LAYOUT_VERSION 7/' "
		 "headers/canary_consts.h > %s",
		 hdr);
	assert_int_equal(run(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		 "CANARY_CONSTS_H=%s bash -c '. tests/e2e/lib.sh && pin_name services'", hdr);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(out, sizeof(out), p));
	assert_int_equal(pclose(p), 0);
	assert_string_equal(out, "services_v7\n");

	/* Without the override it reads the real header. */
	p = popen("bash -c '. tests/e2e/lib.sh && canary_pin_suffix'", "r");
	assert_non_null(p);
	assert_non_null(fgets(out, sizeof(out), p));
	assert_int_equal(pclose(p), 0);
	assert_string_equal(out, CANARY_PIN_SUFFIX "\n");
	unlink(hdr);
	rmdir(dir);
}

/*
 * Redefining the version changes both the identifier and the string. Last in
 * the file: the version stays 7 from here on.
 */
static void test_macros_after_bump(void **state)
{
	(void)state;
#undef CANARY_LAYOUT_VERSION
#define CANARY_LAYOUT_VERSION 7
	int CANARY_MAP(services) = 42;

	assert_int_equal(services_v7, 42); /* only compiles if pasted as services_v7 */
	assert_string_equal(CANARY_MAP_NAME("services"), "services_v7");
	assert_string_equal(CANARY_PIN_SUFFIX, "_v7");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_names_follow_version),
		cmocka_unit_test(test_macros_after_bump),
		cmocka_unit_test(test_bpf_object_after_bump),
		cmocka_unit_test(test_shell_helper_after_bump),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
