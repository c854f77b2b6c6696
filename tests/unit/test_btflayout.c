// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Layout comparison of two BTF types, on hand-built BTF: a same-size field
 * reorder, a moved field, a changed array length, a nested change and a
 * signedness change are found and named; typedefs are looked through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <bpf/btf.h>

#include "btflayout.h"

/* The ids of one hand-built layout: struct svc { u32 a; u32 b; struct inner in; }. */
struct built {
	struct btf *btf;
	int u32, s32, svc;
};

/* Options that tell the two layouts apart, one at a time. */
struct shape {
	bool swap;	  /* b before a: same size, same offsets, other names */
	bool typedef_a;	  /* a is "typedef unsigned int __u32": the same layout */
	bool signed_b;	  /* b is int, not unsigned int */
	__u32 inner_n;	  /* elements of inner.addrs (4 unless set) */
	bool pad_between; /* a at 0, b at 8, size kept 16 */
};

static struct built build(const struct shape *sh)
{
	struct built b = { .btf = btf__new_empty() };
	int arr, inner, a_type;
	__u32 n = sh->inner_n ? sh->inner_n : 4;

	assert_non_null(b.btf);
	b.u32 = btf__add_int(b.btf, "unsigned int", 4, 0);
	b.s32 = btf__add_int(b.btf, "int", 4, BTF_INT_SIGNED);
	a_type = sh->typedef_a ? btf__add_typedef(b.btf, "__u32", b.u32) : b.u32;
	arr = btf__add_array(b.btf, b.u32, b.u32, n);
	inner = btf__add_struct(b.btf, "inner", 4 * n);
	assert_int_equal(btf__add_field(b.btf, "addrs", arr, 0, 0), 0);
	b.svc = btf__add_struct(b.btf, "svc", 16 + 4 * n);
	assert_true(b.svc > 0);
	if (sh->swap) {
		assert_int_equal(btf__add_field(b.btf, "b", b.u32, 0, 0), 0);
		assert_int_equal(btf__add_field(b.btf, "a", a_type, 32, 0), 0);
	} else {
		assert_int_equal(btf__add_field(b.btf, "a", a_type, 0, 0), 0);
		assert_int_equal(btf__add_field(b.btf, "b", sh->signed_b ? b.s32 : b.u32,
						sh->pad_between ? 64 : 32, 0),
				 0);
	}
	assert_int_equal(btf__add_field(b.btf, "in", inner, 128, 0), 0);
	return b;
}

/* Compares the program's layout (want) with the pinned map's (have). */
static int diff(const struct shape *want, const struct shape *have, char *why, size_t len)
{
	struct built w = build(want), h = build(have);
	int rc = btf_layout_diff(w.btf, w.svc, h.btf, h.svc, "services_v1: value", why, len);

	btf__free(w.btf);
	btf__free(h.btf);
	return rc;
}

static void test_same_layout(void **state)
{
	const struct shape plain = { 0 };
	char why[256];

	(void)state;
	assert_int_equal(diff(&plain, &plain, why, sizeof(why)), 0);
	assert_string_equal(why, "");
}

static void test_typedef_is_looked_through(void **state)
{
	const struct shape plain = { 0 }, td = { .typedef_a = true };
	char why[256];

	(void)state;
	assert_int_equal(diff(&plain, &td, why, sizeof(why)), 0);
}

/* Two u32 fields swapped: sizes and offsets all agree, libbpf would reuse the pin. */
static void test_same_size_reorder(void **state)
{
	const struct shape plain = { 0 }, swapped = { .swap = true };
	char why[256];

	(void)state;
	assert_int_equal(diff(&plain, &swapped, why, sizeof(why)), 1);
	assert_string_equal(why,
			    "services_v1: value svc: member 0 (offset 0): b in the pinned map, "
			    "a in the program");
}

static void test_moved_field(void **state)
{
	const struct shape plain = { 0 }, moved = { .pad_between = true };
	char why[256];

	(void)state;
	assert_int_equal(diff(&plain, &moved, why, sizeof(why)), 1);
	assert_string_equal(why, "services_v1: value svc.b: offset 64 bits in the pinned map, "
				 "32 in the program");
}

static void test_signedness(void **state)
{
	const struct shape plain = { 0 }, sgn = { .signed_b = true };
	char why[256];

	(void)state;
	assert_int_equal(diff(&plain, &sgn, why, sizeof(why)), 1);
	assert_string_equal(why, "services_v1: value svc.b: signed in the pinned map, "
				 "unsigned in the program");
}

/* A nested array of another length changes the outer size first. */
static void test_nested_array(void **state)
{
	const struct shape plain = { 0 }, longer = { .inner_n = 5 };
	char why[256];

	(void)state;
	assert_int_equal(diff(&plain, &longer, why, sizeof(why)), 1);
	assert_string_equal(why, "services_v1: value svc: 36 bytes in the pinned map, 32 in the "
				 "program");
}

static __u64 digest_of(const struct shape *sh)
{
	struct built b = build(sh);
	__u64 d = 0;

	assert_int_equal(btf_layout_digest(b.btf, b.u32, b.svc, &d), 0);
	btf__free(b.btf);
	return d;
}

/* The digest recorded beside the pins follows what btf_layout_diff compares. */
static void test_digest(void **state)
{
	const struct shape plain = { 0 }, td = { .typedef_a = true }, swapped = { .swap = true },
			   moved = { .pad_between = true }, sgn = { .signed_b = true };

	(void)state;
	assert_true(digest_of(&plain) == digest_of(&plain));
	assert_true(digest_of(&plain) == digest_of(&td));
	assert_true(digest_of(&plain) != digest_of(&swapped));
	assert_true(digest_of(&plain) != digest_of(&moved));
	assert_true(digest_of(&plain) != digest_of(&sgn));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_layout),
		cmocka_unit_test(test_typedef_is_looked_through),
		cmocka_unit_test(test_same_size_reorder),
		cmocka_unit_test(test_moved_field),
		cmocka_unit_test(test_signedness),
		cmocka_unit_test(test_nested_array),
		cmocka_unit_test(test_digest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
