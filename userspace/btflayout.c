// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbpf reuses a pinned map when its type, key and value sizes, entries and
 * flags match. Two fields of the same size swapped pass that check and the
 * programs would then read one field as the other. The maps carry BTF, so
 * compare the pinned map's types with the program's before reusing it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "btflayout.h"
#include "canary_layout.h"

#define MAX_DEPTH 32 /* nesting far beyond any map layout: a cycle otherwise */

struct cmp {
	const struct btf *want, *have;
	char *why;
	size_t len;
};

static int differ(const struct cmp *c, const char *path, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	/* ap is started just above; clang-analyzer 14 loses track of it here. */
	vsnprintf(detail, sizeof(detail), fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	snprintf(c->why, c->len, "%s: %s", path, detail);
	return 1;
}

/* Typedefs, const, volatile, restrict and type tags say nothing about layout. */
static const struct btf_type *resolve(const struct btf *btf, __u32 *id)
{
	const struct btf_type *t = btf__type_by_id(btf, *id);

	while (t && (btf_is_typedef(t) || btf_is_mod(t))) {
		*id = t->type;
		t = btf__type_by_id(btf, *id);
	}
	return t;
}

static const char *kind_name(const struct btf_type *t)
{
	static const char *const names[] = {
		[BTF_KIND_INT] = "int",	    [BTF_KIND_PTR] = "pointer",
		[BTF_KIND_ARRAY] = "array", [BTF_KIND_STRUCT] = "struct",
		[BTF_KIND_UNION] = "union", [BTF_KIND_ENUM] = "enum",
		[BTF_KIND_FLOAT] = "float",
	};
	__u16 k = btf_kind(t);

	return k < sizeof(names) / sizeof(names[0]) && names[k] ? names[k] : "other";
}

static int cmp_type(const struct cmp *c, __u32 want_id, __u32 have_id, const char *path, int depth);

static int cmp_int(const struct cmp *c, const struct btf_type *w, const struct btf_type *h,
		   const char *path)
{
	__u32 we = btf_int_encoding(w), he = btf_int_encoding(h);

	if (w->size != h->size || btf_int_bits(w) != btf_int_bits(h))
		return differ(c, path, "%u-byte integer in the pinned map, %u-byte in the program",
			      h->size, w->size);
	if ((we & BTF_INT_SIGNED) != (he & BTF_INT_SIGNED))
		return differ(c, path, "%s in the pinned map, %s in the program",
			      he & BTF_INT_SIGNED ? "signed" : "unsigned",
			      we & BTF_INT_SIGNED ? "signed" : "unsigned");
	return 0;
}

static int cmp_array(const struct cmp *c, const struct btf_type *w, const struct btf_type *h,
		     const char *path, int depth)
{
	const struct btf_array *wa = btf_array(w), *ha = btf_array(h);
	char sub[512];

	if (wa->nelems != ha->nelems)
		return differ(c, path, "%u elements in the pinned map, %u in the program",
			      ha->nelems, wa->nelems);
	if (snprintf(sub, sizeof(sub), "%s[]", path) >= (int)sizeof(sub))
		return -ENAMETOOLONG;
	return cmp_type(c, wa->type, ha->type, sub, depth + 1);
}

static int cmp_members(const struct cmp *c, const struct btf_type *w, const struct btf_type *h,
		       const char *path, int depth)
{
	const struct btf_member *wm = btf_members(w), *hm = btf_members(h);
	__u16 i, n = btf_vlen(w) < btf_vlen(h) ? btf_vlen(w) : btf_vlen(h);
	char sub[512];

	for (i = 0; i < n; i++) {
		const char *wn = btf__name_by_offset(c->want, wm[i].name_off);
		const char *hn = btf__name_by_offset(c->have, hm[i].name_off);
		__u32 woff = btf_member_bit_offset(w, i), hoff = btf_member_bit_offset(h, i);
		int err;

		wn = wn && *wn ? wn : "(anonymous)";
		hn = hn && *hn ? hn : "(anonymous)";
		if (strcmp(wn, hn) != 0)
			return differ(
				c, path,
				"member %u (offset %u): %s in the pinned map, %s in the program", i,
				hoff / 8, hn, wn);
		if (snprintf(sub, sizeof(sub), "%s.%s", path, wn) >= (int)sizeof(sub))
			return -ENAMETOOLONG;
		if (woff != hoff ||
		    btf_member_bitfield_size(w, i) != btf_member_bitfield_size(h, i))
			return differ(c, sub, "offset %u bits in the pinned map, %u in the program",
				      hoff, woff);
		err = cmp_type(c, wm[i].type, hm[i].type, sub, depth + 1);
		if (err)
			return err;
	}
	if (btf_vlen(w) != btf_vlen(h))
		return differ(c, path, "%u members in the pinned map, %u in the program",
			      btf_vlen(h), btf_vlen(w));
	return 0;
}

static int cmp_composite(const struct cmp *c, const struct btf_type *w, const struct btf_type *h,
			 const char *path, int depth)
{
	const char *name = btf__name_by_offset(c->want, w->name_off);
	char sub[512];

	/* The path names the struct once, where it starts: "value canary_service". */
	if (snprintf(sub, sizeof(sub), "%s%s%s", path, name && *name && !depth ? " " : "",
		     name && *name && !depth ? name : "") >= (int)sizeof(sub))
		return -ENAMETOOLONG;
	if (w->size != h->size)
		return differ(c, sub, "%u bytes in the pinned map, %u in the program", h->size,
			      w->size);
	return cmp_members(c, w, h, sub, depth);
}

static int cmp_type(const struct cmp *c, __u32 want_id, __u32 have_id, const char *path, int depth)
{
	const struct btf_type *w = resolve(c->want, &want_id), *h = resolve(c->have, &have_id);

	if (!w || !h)
		return -EINVAL;
	if (depth > MAX_DEPTH)
		return -ELOOP;
	if (btf_kind(w) != btf_kind(h))
		return differ(c, path, "%s in the pinned map, %s in the program", kind_name(h),
			      kind_name(w));
	switch (btf_kind(w)) {
	case BTF_KIND_INT:
		return cmp_int(c, w, h, path);
	case BTF_KIND_ARRAY:
		return cmp_array(c, w, h, path, depth);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return cmp_composite(c, w, h, path, depth);
	case BTF_KIND_PTR:
		return 0; /* an address: what it points to is not stored in the map */
	default:
		break;
	}
	if (btf__resolve_size(c->want, want_id) != btf__resolve_size(c->have, have_id))
		return differ(c, path, "%lld bytes in the pinned map, %lld in the program",
			      (long long)btf__resolve_size(c->have, have_id),
			      (long long)btf__resolve_size(c->want, want_id));
	return 0;
}

int btf_layout_diff(const struct btf *want, __u32 want_id, const struct btf *have, __u32 have_id,
		    const char *path, char *why, size_t len)
{
	const struct cmp c = { .want = want, .have = have, .why = why, .len = len };

	if (len)
		why[0] = '\0';
	return cmp_type(&c, want_id, have_id, path, 0);
}

static int map_digest(const struct bpf_object *obj, const struct bpf_map *map, __u64 *digest)
{
	return btf_layout_digest(bpf_object__btf(obj), bpf_map__btf_key_type_id(map),
				 bpf_map__btf_value_type_id(map), digest);
}

/*
 * The digest recorded when the pin was made: 0 when it is the program's, 1
 * when not (why says so), -ENOENT when there is no record to go by.
 */
static int check_record(const struct bpf_object *obj, const struct bpf_map *map, int record_fd,
			char *why, size_t len)
{
	struct canary_layout_key key;
	struct canary_layout_val had;
	__u64 want;
	int err;

	if (record_fd < 0)
		return -ENOENT;
	memset(&key, 0, sizeof(key));
	snprintf(key.name, sizeof(key.name), "%s", bpf_map__name(map));
	if (bpf_map_lookup_elem(record_fd, &key, &had))
		return -ENOENT;
	err = map_digest(obj, map, &want);
	if (err)
		return err;
	if (want == had.digest)
		return 0;
	snprintf(why, len,
		 "%s: the layout recorded when it was pinned (digest %016llx) is not the "
		 "program's (%016llx)",
		 bpf_map__name(map), (unsigned long long)had.digest, (unsigned long long)want);
	return 1;
}

/* The pin's BTF against the program's: 0, 1 (why says where) or -errno. */
static int check_btf(const struct bpf_object *obj, const struct bpf_map *map, int fd, char *why,
		     size_t len)
{
	const char *name = bpf_map__name(map);
	struct bpf_map_info info;
	__u32 ilen = sizeof(info);
	struct btf *have;
	char where[128];
	int err;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen)) {
		err = -errno;
		snprintf(why, len, "%s: cannot read the pinned map: %s", name, strerror(-err));
		return err;
	}
	if (!info.btf_id || !info.btf_value_type_id) {
		snprintf(why, len, "%s: the pinned map has no BTF to check its layout against",
			 name);
		return 1;
	}
	have = btf__load_from_kernel_by_id(info.btf_id);
	if (!have) {
		err = -errno;
		snprintf(why, len, "%s: cannot load the pinned map's BTF: %s", name,
			 strerror(-err));
		return err;
	}
	snprintf(where, sizeof(where), "%s: key", name);
	err = info.btf_key_type_id ?
		      btf_layout_diff(bpf_object__btf(obj), bpf_map__btf_key_type_id(map), have,
				      info.btf_key_type_id, where, why, len) :
		      0;
	snprintf(where, sizeof(where), "%s: value", name);
	if (!err)
		err = btf_layout_diff(bpf_object__btf(obj), bpf_map__btf_value_type_id(map), have,
				      info.btf_value_type_id, where, why, len);
	btf__free(have);
	return err;
}

/*
 * One map's pin, if any: the record when there is one; the BTF otherwise, or
 * to name the difference the record found (when the BTF can be read).
 */
static int check_pin(const struct bpf_object *obj, const struct bpf_map *map, int record_fd,
		     char *why, size_t len)
{
	const char *pin = bpf_map__pin_path(map);
	int fd, rec, err;

	if (!pin)
		return 0;
	fd = bpf_obj_get(pin);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		err = -errno;
		snprintf(why, len, "%s: cannot open the pin: %s", bpf_map__name(map),
			 strerror(-err));
		return err;
	}
	rec = check_record(obj, map, record_fd, why, len);
	if (rec == -ENOENT || rec == 1) {
		char btf_why[512];

		err = check_btf(obj, map, fd, btf_why, sizeof(btf_why));
		if (rec == -ENOENT || err == 1) {
			snprintf(why, len, "%s", btf_why);
			rec = err;
		}
	}
	close(fd);
	return rec;
}

int btf_layout_check_pins(const struct bpf_object *obj, int record_fd, char *why, size_t len)
{
	struct bpf_map *map;

	if (len)
		why[0] = '\0';
	if (!bpf_object__btf(obj))
		return 0;
	bpf_object__for_each_map(map, obj) {
		int err = check_pin(obj, map, record_fd, why, len);

		if (err)
			return err;
	}
	return 0;
}

/* FNV-1a, 64 bits: a digest, not a defence; the pins are root's anyway. */
static void mix(__u64 *h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		*h = (*h ^ *b++) * 0x100000001b3ULL;
}

static void mix_u32(__u64 *h, __u32 v)
{
	mix(h, &v, sizeof(v));
}

/* What cmp_type compares, fed into h in the same order. */
static int digest_type(const struct btf *btf, __u32 id, __u64 *h, int depth)
{
	const struct btf_type *t = resolve(btf, &id);
	__u16 i;

	if (!t)
		return -EINVAL;
	if (depth > MAX_DEPTH)
		return -ELOOP;
	mix_u32(h, btf_kind(t));
	switch (btf_kind(t)) {
	case BTF_KIND_INT:
		mix_u32(h, t->size);
		mix_u32(h, btf_int_bits(t));
		mix_u32(h, btf_int_encoding(t) & BTF_INT_SIGNED);
		return 0;
	case BTF_KIND_ARRAY:
		mix_u32(h, btf_array(t)->nelems);
		return digest_type(btf, btf_array(t)->type, h, depth + 1);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		mix_u32(h, t->size);
		mix_u32(h, btf_vlen(t));
		for (i = 0; i < btf_vlen(t); i++) {
			const char *n = btf__name_by_offset(btf, btf_members(t)[i].name_off);
			int err;

			n = n && *n ? n : "(anonymous)";
			mix(h, n, strlen(n) + 1);
			mix_u32(h, btf_member_bit_offset(t, i));
			mix_u32(h, btf_member_bitfield_size(t, i));
			err = digest_type(btf, btf_members(t)[i].type, h, depth + 1);
			if (err)
				return err;
		}
		return 0;
	case BTF_KIND_PTR:
		return 0;
	default:
		mix_u32(h, (__u32)btf__resolve_size(btf, id));
		return 0;
	}
}

int btf_layout_digest(const struct btf *btf, __u32 key_id, __u32 value_id, __u64 *digest)
{
	__u64 h = 0xcbf29ce484222325ULL;
	int err = key_id ? digest_type(btf, key_id, &h, 0) : 0;

	if (!err)
		err = digest_type(btf, value_id, &h, 0);
	*digest = h;
	return err;
}

int btf_layout_record(const struct bpf_object *obj, int record_fd)
{
	struct canary_layout_key key;
	struct canary_layout_val val;
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		int err;

		if (!bpf_map__pin_path(map))
			continue;
		err = map_digest(obj, map, &val.digest);
		if (err)
			return err;
		memset(&key, 0, sizeof(key));
		snprintf(key.name, sizeof(key.name), "%s", bpf_map__name(map));
		if (bpf_map_update_elem(record_fd, &key, &val, BPF_ANY))
			return -errno;
	}
	return 0;
}
