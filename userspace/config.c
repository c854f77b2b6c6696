// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rollout configuration (docs/configuration.md).
 *
 * libyaml's event parser feeds a small tree per document, bounded in depth
 * and node count so a hostile file cannot make us allocate much; a schema
 * walker then turns the tree into struct rollout_cfg. A tree (rather than
 * walking events directly) lets a field be checked against its siblings,
 * e.g. a metric's "max" against its "name", whatever order they come in.
 *
 * Every error names "file:line:column: field.path: what" and stops the load.
 * Loading is all or nothing: the caller sees rollouts only when every
 * document of every file is good, so a bad edit never half-applies.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"

#define API_VERSION	  "canaryd.io/v1alpha1"
#define KIND		  "Rollout"
#define MAX_FILE_SIZE	  ((size_t)1024 * 1024)
#define MAX_ROLLOUTS	  CANARY_MAX_SERVICES /* one service each in the maps */
#define MAX_DEPTH	  16
#define MAX_NODES	  8192 /* per document; a rollout with every list full needs under 1000 */
#define MAX_FILES	  1024 /* per directory */
#define MAX_DURATION_US	  (720LL * 3600 * 1000000) /* 30 days */
#define MAX_MIN_REQUESTS  1000000000ULL
#define MAX_FAILURE_LIMIT 1000000ULL
#define MAX_INCREASE	  100.0 /* compareLatency: 100 = 10000% slower */
/* compareLatencyTail: median to p99.9 (whose line already needs 10,000 stable samples) */
#define MIN_TAIL_QUANTILE 0.5
#define MAX_TAIL_QUANTILE 0.999

#define ARRAY_SIZE(a)	  (sizeof(a) / sizeof((a)[0]))
#define BIT(n)		  (1U << (n))

/* ------------------------------------------------------------------------ */
/* Errors */

struct loader {
	struct rollout_cfg *v; /* rollouts so far, handed over only on success */
	size_t n, cap;
	char err[CONFIG_ERR_LEN];
};

/* "file:line:column: path: " then the message; libyaml marks are 0-based. */
static int vfail(struct loader *ld, const char *file, const yaml_mark_t *m, const char *path,
		 const char *fmt, va_list ap)
{
	int k = snprintf(ld->err, sizeof(ld->err), "%s:%zu:%zu: %s: ", file, m->line + 1,
			 m->column + 1, *path ? path : "(document)");

	/* ap is started by the caller; clang-analyzer 14 cannot follow it. */
	if (k > 0 && (size_t)k < sizeof(ld->err))
		// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
		vsnprintf(ld->err + k, sizeof(ld->err) - k, fmt, ap);
	return -1;
}

/* For problems of a whole file (cannot open, too large): no position to give. */
static int file_fail(struct loader *ld, const char *file, const char *fmt, ...)
{
	va_list ap;
	int k = snprintf(ld->err, sizeof(ld->err), "%s: ", file);

	va_start(ap, fmt);
	if (k > 0 && (size_t)k < sizeof(ld->err))
		// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
		vsnprintf(ld->err + k, sizeof(ld->err) - k, fmt, ap);
	va_end(ap);
	return -1;
}

/* "a, b, c" into buf, for messages that list what is allowed. */
static const char *join_names(const char *const names[], size_t count, char *buf, size_t len)
{
	size_t used = 0, i;

	buf[0] = '\0';
	for (i = 0; i < count; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);

		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	return buf;
}

/* ------------------------------------------------------------------------ */
/* YAML events to a tree */

enum ykind {
	Y_SCALAR,
	Y_SEQ,
	Y_MAP,
};

struct ynode {
	enum ykind kind;
	bool quoted; /* quoted or !!str: a string even when it looks like a number */
	bool null;
	yaml_mark_t mark;
	const struct ynode *key; /* a mapping value's key, to point messages at it */
	char *text;		 /* scalars only, NUL-terminated */
	struct ynode **items;	 /* sequence items; mapping keys and values, alternating */
	size_t n, cap;
};

struct builder {
	struct loader *ld;
	const char *file;
	struct ynode *root; /* owns every node, so one free undoes a half-built tree */
	struct ynode *stack[MAX_DEPTH];
	int depth;
	size_t nodes;
};

static void node_free(struct ynode *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->n; i++)
		node_free(n->items[i]);
	free(n->items);
	free(n->text);
	free(n);
}

static int node_append(struct ynode *parent, struct ynode *child)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		/* An array of pointers, on purpose: the sizeof check takes it for a slip. */
		// NOLINTNEXTLINE(bugprone-sizeof-expression)
		struct ynode **items = realloc(parent->items, cap * sizeof(*items));

		if (!items)
			return -1;
		parent->items = items;
		parent->cap = cap;
	}
	parent->items[parent->n++] = child;
	return 0;
}

/*
 * Path of the position the next event fills, e.g. "spec.service.port", so
 * syntax errors name a field too. Ancestors hold their open child as their
 * last item; the top of the stack is about to get a new one.
 */
static void builder_path(const struct builder *b, char *buf, size_t len)
{
	size_t used = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < b->depth; i++) {
		const struct ynode *p = b->stack[i];
		size_t k = i + 1 < b->depth ? p->n - 1 : p->n;
		int w;

		if (p->kind == Y_SEQ)
			w = snprintf(buf + used, len - used, "[%zu]", k);
		else if (k % 2)
			w = snprintf(buf + used, len - used, "%s%s", used ? "." : "",
				     p->items[k - 1]->text);
		else
			break; /* a key comes next: the mapping itself is the place */
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
}

static int build_fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
	char path[160];
	va_list ap;

	builder_path(b, path, sizeof(path));
	va_start(ap, fmt);
	vfail(b->ld, b->file, m, path, fmt, ap);
	va_end(ap);
	return -1;
}

/* Takes n (freeing it on error) and hangs it under the open collection. */
static int builder_add(struct builder *b, struct ynode *n)
{
	struct ynode *parent;

	if (!b->depth) {
		b->root = n;
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->kind == Y_MAP && parent->n % 2 == 0 && n->kind != Y_SCALAR) {
		yaml_mark_t m = n->mark;

		node_free(n);
		return build_fail(b, &m, "mapping keys must be strings");
	}
	if (parent->kind == Y_MAP && parent->n % 2)
		n->key = parent->items[parent->n - 1];
	if (node_append(parent, n)) {
		node_free(n);
		return build_fail(b, &parent->mark, "out of memory");
	}
	return 0;
}

static struct ynode *node_new(struct builder *b, enum ykind kind, const yaml_mark_t *m)
{
	struct ynode *n;

	if (++b->nodes > MAX_NODES) {
		build_fail(b, m, "document too large (more than %d YAML nodes)", MAX_NODES);
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		build_fail(b, m, "out of memory");
		return NULL;
	}
	n->kind = kind;
	n->mark = *m;
	return n;
}

static bool tag_is(const yaml_char_t *tag, const char *want)
{
	return tag && !strcmp((const char *)tag, want);
}

/* Core-schema tags only: a custom one such as !Ref means another tool's file. */
static int check_tag(struct builder *b, const yaml_char_t *tag, const yaml_mark_t *m)
{
	static const char *const core[] = {
		"!",	       YAML_STR_TAG,  YAML_INT_TAG, YAML_FLOAT_TAG,
		YAML_NULL_TAG, YAML_BOOL_TAG, YAML_MAP_TAG, YAML_SEQ_TAG,
	};
	size_t i;

	if (!tag)
		return 0;
	for (i = 0; i < ARRAY_SIZE(core); i++)
		if (!strcmp((const char *)tag, core[i]))
			return 0;
	return build_fail(b, m, "unsupported tag \"%s\"", (const char *)tag);
}

static bool plain_null(const char *s)
{
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

static int build_scalar(struct builder *b, const yaml_event_t *ev)
{
	const yaml_char_t *tag = ev->data.scalar.tag;
	size_t len = ev->data.scalar.length;
	struct ynode *n;

	if (check_tag(b, tag, &ev->start_mark))
		return -1;
	/* "\0" is legal YAML but would silently cut every C string we hand on. */
	if (memchr(ev->data.scalar.value, '\0', len))
		return build_fail(b, &ev->start_mark, "NUL character in a string");
	n = node_new(b, Y_SCALAR, &ev->start_mark);
	if (!n)
		return -1;
	n->text = malloc(len + 1);
	if (!n->text) {
		node_free(n);
		return build_fail(b, &ev->start_mark, "out of memory");
	}
	memcpy(n->text, ev->data.scalar.value, len);
	n->text[len] = '\0';
	if (tag) {
		n->quoted = tag_is(tag, YAML_STR_TAG) || tag_is(tag, "!");
		n->null = tag_is(tag, YAML_NULL_TAG);
	} else {
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		n->null = !n->quoted && plain_null(n->text);
	}
	return builder_add(b, n);
}

static int build_open(struct builder *b, enum ykind kind, const yaml_event_t *ev)
{
	const yaml_char_t *tag =
		kind == Y_MAP ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
	struct ynode *n;

	if (check_tag(b, tag, &ev->start_mark))
		return -1;
	if (b->depth == MAX_DEPTH)
		return build_fail(b, &ev->start_mark, "nesting deeper than %d levels", MAX_DEPTH);
	n = node_new(b, kind, &ev->start_mark);
	if (!n || builder_add(b, n))
		return -1;
	b->stack[b->depth++] = n;
	return 0;
}

/* Adds one event to the tree. Returns 1 once the document is complete. */
static int build_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return build_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return build_open(b, Y_SEQ, ev);
	case YAML_MAPPING_START_EVENT:
		return build_open(b, Y_MAP, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		b->depth--;
		return 0;
	case YAML_ALIAS_EVENT:
		/* Aliases would let a small file expand into a huge tree. */
		return build_fail(b, &ev->start_mark, "aliases (*%s) are not supported",
				  (const char *)ev->data.alias.anchor);
	case YAML_DOCUMENT_END_EVENT:
		return 1;
	default:
		return 0;
	}
}

struct stream {
	struct loader *ld;
	const char *file;
	const char *buf;
	size_t len;
	yaml_parser_t parser;
};

/* Reader errors (bad UTF-8, control characters) come with a byte offset only. */
static yaml_mark_t mark_at(const char *buf, size_t len, size_t offset)
{
	yaml_mark_t m = { .index = offset };
	size_t i;

	for (i = 0; i < offset && i < len; i++) {
		if (buf[i] == '\n') {
			m.line++;
			m.column = 0;
		} else {
			m.column++;
		}
	}
	return m;
}

/* libyaml's own words at its mark, e.g. "did not find expected key". */
static int yaml_fail(struct stream *s, struct builder *b)
{
	const yaml_parser_t *p = &s->parser;
	yaml_mark_t m = p->problem_mark;
	const char *problem = p->problem ? p->problem : "invalid YAML";

	if (p->error == YAML_MEMORY_ERROR)
		return file_fail(s->ld, s->file, "out of memory");
	if (p->error == YAML_READER_ERROR) {
		m = mark_at(s->buf, s->len, p->problem_offset);
		if (p->problem_value != -1)
			return build_fail(b, &m, "%s (byte 0x%02x)", problem, p->problem_value);
	}
	if (p->context)
		return build_fail(b, &m, "%s (%s at %zu:%zu)", problem, p->context,
				  p->context_mark.line + 1, p->context_mark.column + 1);
	return build_fail(b, &m, "%s", problem);
}

/*
 * Reads the next document's tree into *root. Returns 1 with a document, 0 at
 * the end of the stream, -1 on error (with the partial tree freed).
 */
static int read_document(struct stream *s, struct ynode **root, yaml_mark_t *start)
{
	struct builder b = { .ld = s->ld, .file = s->file };
	yaml_event_t ev;
	int rc = 0;

	while (!rc) {
		if (!yaml_parser_parse(&s->parser, &ev)) {
			rc = yaml_fail(s, &b);
			break;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT)
			*start = ev.start_mark;
		rc = build_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	if (rc < 0) {
		node_free(b.root);
		return -1;
	}
	*root = b.root;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Tree to rollout: helpers */

struct doc {
	struct loader *ld;
	const char *file;
	char path[128]; /* of the node being read, e.g. "spec.stable.endpoints[1]" */
	size_t plen;
	const struct ynode *name_node; /* for the checks across documents */
	const struct ynode *service_node;
	__be32 vip; /* of the rollout being read: no endpoint may be it */
};

/* Fails at m; key, when given, is appended to the current path. */
static int fail(struct doc *d, const yaml_mark_t *m, const char *key, const char *fmt, ...)
{
	char path[sizeof(d->path) + 64];
	va_list ap;

	snprintf(path, sizeof(path), "%s%s%s", d->path, key && d->plen ? "." : "", key ? key : "");
	va_start(ap, fmt);
	vfail(d->ld, d->file, m, path, fmt, ap);
	va_end(ap);
	return -1;
}

static size_t path_push(struct doc *d, const char *key, size_t index)
{
	size_t old = d->plen, room = sizeof(d->path) - old;
	int w;

	if (key)
		w = snprintf(d->path + old, room, "%s%s", old ? "." : "", key);
	else
		w = snprintf(d->path + old, room, "[%zu]", index);
	if (w > 0)
		d->plen = (size_t)w < room ? old + (size_t)w : sizeof(d->path) - 1;
	return old;
}

static void path_pop(struct doc *d, size_t old)
{
	d->plen = old;
	d->path[old] = '\0';
}

typedef int (*parse_fn)(struct doc *d, const struct ynode *n, void *arg);

/* Parses an optional sub-object under its key; an absent one keeps its defaults. */
static int sub(struct doc *d, const char *key, const struct ynode *n, parse_fn fn, void *arg)
{
	size_t old;
	int rc;

	if (!n)
		return 0;
	old = path_push(d, key, 0);
	rc = fn(d, n, arg);
	path_pop(d, old);
	return rc;
}

/* A YAML core-schema number: [-+]? (.digits | digits[.digits]) ([eE][-+]?digits)? */
static bool is_number_text(const char *s)
{
	bool digits = false;

	if (*s == '-' || *s == '+')
		s++;
	for (; isdigit((unsigned char)*s); s++)
		digits = true;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			digits = true;
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return !*s;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static const char *kind_name(const struct ynode *n)
{
	if (n->kind == Y_MAP)
		return "a mapping";
	if (n->kind == Y_SEQ)
		return "a sequence";
	if (n->null)
		return "null";
	return !n->quoted && is_number_text(n->text) ? "a number" : "a string";
}

static int want(struct doc *d, const struct ynode *n, enum ykind kind)
{
	static const char *const kinds[] = {
		[Y_SCALAR] = "a scalar",
		[Y_SEQ] = "a sequence",
		[Y_MAP] = "a mapping",
	};

	if (n->kind == kind)
		return 0;
	return fail(d, &n->mark, NULL, "expected %s, got %s", kinds[kind], kind_name(n));
}

static size_t find_name(const char *const names[], size_t count, const char *s)
{
	size_t k;

	for (k = 0; k < count; k++)
		if (!strcmp(names[k], s))
			break;
	return k;
}

static const struct ynode *find_value(const struct ynode *map, const char *key)
{
	size_t i;

	for (i = 0; i + 1 < map->n; i += 2)
		if (!strcmp(map->items[i]->text, key))
			return map->items[i + 1];
	return NULL;
}

static int unknown_field(struct doc *d, const struct ynode *key, const char *const names[],
			 size_t count)
{
	char allowed[256];

	return fail(d, &key->mark, key->text, "unknown field (expected one of: %s)",
		    join_names(names, count, allowed, sizeof(allowed)));
}

/*
 * Checks that n is a mapping whose keys are all in names[], none twice, and
 * files each value under its key's index in val[] (NULL when absent).
 * required is a bitmask over names[].
 */
static int map_fields(struct doc *d, const struct ynode *n, const char *const names[], size_t count,
		      unsigned int required, const struct ynode *val[])
{
	size_t i, k;

	if (want(d, n, Y_MAP))
		return -1;
	for (k = 0; k < count; k++)
		val[k] = NULL;
	for (i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *key = n->items[i];

		k = find_name(names, count, key->text);
		if (k == count)
			return unknown_field(d, key, names, count);
		if (val[k])
			return fail(d, &key->mark, key->text, "duplicate key (first at %zu:%zu)",
				    val[k]->key->mark.line + 1, val[k]->key->mark.column + 1);
		val[k] = n->items[i + 1];
	}
	for (k = 0; k < count; k++)
		if ((required & BIT(k)) && !val[k])
			return fail(d, &n->mark, names[k], "missing required field");
	return 0;
}

/*
 * Runs fn on each item of the sequence n, with the path at "[i]". what is
 * the singular noun for messages; at most max items, at least one if
 * nonempty.
 */
static int seq_items(struct doc *d, const struct ynode *n, const char *what, size_t max,
		     bool nonempty, parse_fn fn, void *arg)
{
	size_t i, old;
	int rc = 0;

	if (want(d, n, Y_SEQ))
		return -1;
	if (nonempty && !n->n)
		return fail(d, &n->mark, NULL, "empty list (at least one %s is required)", what);
	if (n->n > max) {
		old = path_push(d, NULL, max);
		rc = fail(d, &n->items[max]->mark, NULL, "too many %ss (at most %zu)", what, max);
		path_pop(d, old);
		return rc;
	}
	for (i = 0; i < n->n && !rc; i++) {
		old = path_push(d, NULL, i);
		rc = fn(d, n->items[i], arg);
		path_pop(d, old);
	}
	return rc;
}

static int get_string(struct doc *d, const struct ynode *n, const char *key, const char **s)
{
	*s = "";
	if (n->kind != Y_SCALAR || n->null)
		return fail(d, &n->mark, key, "expected a string, got %s", kind_name(n));
	*s = n->text;
	return 0;
}

/* The text of a number, for the netparse parsers: unquoted, so "10" is not 10. */
static int get_number(struct doc *d, const struct ynode *n, const char *key, const char **s)
{
	*s = "";
	if (n->kind != Y_SCALAR || n->null || n->quoted)
		return fail(d, &n->mark, key, "expected a number, got %s", kind_name(n));
	*s = n->text;
	return 0;
}

static int get_uint(struct doc *d, const struct ynode *n, const char *key, unsigned long long min,
		    unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	const char *s;

	*out = 0;
	if (get_number(d, n, key, &s))
		return -1;
	if (!all_digits(s) && !(*s == '-' && all_digits(s + 1)))
		return fail(d, &n->mark, key, "expected an integer, got \"%s\"", s);
	errno = 0;
	v = *s == '-' ? 0 : strtoull(s, NULL, 10);
	if (*s == '-' || errno == ERANGE || v < min || v > max)
		return fail(d, &n->mark, key, "%s is out of range (%llu..%llu)", s, min, max);
	*out = v;
	return 0;
}

static int get_double(struct doc *d, const struct ynode *n, const char *key, double *out)
{
	/* YAML always writes "0.5": the agent's locale must not make that 0. */
	locale_t c_locale;
	const char *s;

	*out = 0;
	if (get_number(d, n, key, &s))
		return -1;
	if (!is_number_text(s))
		return fail(d, &n->mark, key, "expected a number, got \"%s\"", s);
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	*out = c_locale ? strtod_l(s, NULL, c_locale) : strtod(s, NULL);
	if (c_locale)
		freelocale(c_locale);
	if (!isfinite(*out))
		return fail(d, &n->mark, key, "%s is out of range", s);
	return 0;
}

/* YAML 1.2 core booleans only: "yes" or "on" would be a YAML 1.1 surprise. */
static int get_bool(struct doc *d, const struct ynode *n, const char *key, bool *out)
{
	*out = false;
	if (n->kind != Y_SCALAR || n->null || n->quoted ||
	    (strcmp(n->text, "true") != 0 && strcmp(n->text, "false") != 0))
		return fail(d, &n->mark, key, "expected true or false, got %s",
			    n->kind == Y_SCALAR && !n->null ? n->text : kind_name(n));
	*out = !strcmp(n->text, "true");
	return 0;
}

/* what: "invalid value", "unknown metric", ... */
static int not_one_of(struct doc *d, const struct ynode *n, const char *key, const char *what,
		      const char *const names[], size_t count)
{
	char allowed[256];

	return fail(d, &n->mark, key, "%s \"%s\" (expected one of: %s)", what, n->text,
		    join_names(names, count, allowed, sizeof(allowed)));
}

static int get_enum(struct doc *d, const struct ynode *n, const char *key,
		    const char *const names[], size_t count, int *out)
{
	const char *s;
	size_t k;

	*out = 0;
	if (get_string(d, n, key, &s))
		return -1;
	k = find_name(names, count, s);
	if (k == count)
		return not_one_of(d, n, key, "invalid value", names, count);
	*out = (int)k;
	return 0;
}

static const char needs_unit[] = "duration needs a unit (ms, s, m, h)";

/*
 * "250ms", "1.5s", "2m", "1h" to microseconds, in integers so "0.1s" is
 * exactly 100000. Returns NULL or what is wrong.
 */
static const char *parse_duration(const char *s, long long *us)
{
	static const struct {
		const char *unit;
		long long us;
	} units[] = {
		{ "ms", 1000LL }, { "s", 1000000LL }, { "m", 60000000LL }, { "h", 3600000000LL }
	};
	long long whole = 0, frac = 0, scale = 1;
	const char *p = s;
	size_t i;

	for (; isdigit((unsigned char)*p) && p - s < 9; p++)
		whole = whole * 10 + (*p - '0');
	if (p == s || isdigit((unsigned char)*p))
		return isdigit((unsigned char)*p) ? "is too long" : "is not a duration";
	if (*p == '.') {
		const char *f = ++p;

		for (; isdigit((unsigned char)*p) && p - f < 6; p++, scale *= 10)
			frac = frac * 10 + (*p - '0');
		if (p == f || isdigit((unsigned char)*p))
			return p == f ? "is not a duration" : "has more than 6 decimals";
	}
	if (!*p)
		return needs_unit;
	for (i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcmp(p, units[i].unit))
			break;
	if (i == ARRAY_SIZE(units))
		return "has an unknown unit (expected ms, s, m, h)";
	if (frac * units[i].us % scale)
		return "is finer than a microsecond";
	*us = whole * units[i].us + frac * units[i].us / scale;
	return NULL;
}

static int get_duration_us(struct doc *d, const struct ynode *n, const char *key, long long *us)
{
	const char *s, *why;

	*us = 0;
	if (get_string(d, n, key, &s))
		return -1;
	why = parse_duration(s, us);
	if (why == needs_unit)
		return fail(d, &n->mark, key, "\"%s\": %s", s, needs_unit);
	if (why)
		return fail(d, &n->mark, key, "invalid duration \"%s\": %s", s, why);
	if (*us <= 0 || *us > MAX_DURATION_US)
		return fail(d, &n->mark, key,
			    "duration \"%s\" is out of range (more than 0, at most 720h)", s);
	return 0;
}

static int get_duration_ms(struct doc *d, const struct ynode *n, const char *key, __s64 *ms)
{
	long long us;

	if (get_duration_us(d, n, key, &us))
		return -1;
	if (us % 1000)
		return fail(d, &n->mark, key,
			    "duration \"%s\" is not a whole number of milliseconds", n->text);
	*ms = us / 1000;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Tree to rollout: the schema */

static bool valid_name(const char *s)
{
	size_t len = strlen(s), i;

	if (!len || len >= CANARY_NAME_LEN || !islower((unsigned char)s[0]) || s[len - 1] == '-')
		return false;
	for (i = 0; i < len; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

static int parse_metadata(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "name" };
	struct rollout_cfg *r = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	const char *s;

	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0), f) ||
	    get_string(d, f[0], "name", &s))
		return -1;
	if (!valid_name(s))
		return fail(
			d, &f[0]->mark, "name",
			"invalid name \"%s\" (1..%d of a-z, 0-9 and '-', starting with a letter, "
			"not ending with '-')",
			s, CANARY_NAME_LEN - 1);
	memcpy(r->name, s, strlen(s) + 1);
	d->name_node = f[0];
	return 0;
}

enum { SVC_VIP, SVC_PORT, SVC_PROTOCOL, SVC_N };

static int parse_service(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[SVC_N] = { "vip", "port", "protocol" };
	static const char *const protocols[] = { "tcp", "http", "udp" };
	struct service_spec *svc = arg;
	const struct ynode *f[SVC_N];
	char why[NETPARSE_ERR_LEN];
	const char *vip, *port;
	int proto = 0;

	if (map_fields(d, n, names, SVC_N, BIT(SVC_VIP) | BIT(SVC_PORT), f) ||
	    get_string(d, f[SVC_VIP], "vip", &vip) || get_number(d, f[SVC_PORT], "port", &port) ||
	    (f[SVC_PROTOCOL] &&
	     get_enum(d, f[SVC_PROTOCOL], "protocol", protocols, ARRAY_SIZE(protocols), &proto)))
		return -1;
	if (parse_ipv4_addr(vip, &svc->key.vip, why, sizeof(why)))
		return fail(d, &f[SVC_VIP]->mark, "vip", "%s", why);
	if (svc->key.vip == 0 || svc->key.vip == INADDR_BROADCAST)
		return fail(d, &f[SVC_VIP]->mark, "vip",
			    "invalid vip \"%s\": not a unicast address", vip);
	if (parse_port(port, &svc->key.port, why, sizeof(why)))
		return fail(d, &f[SVC_PORT]->mark, "port", "%s", why);
	svc->key.proto = proto == 2 ? IPPROTO_UDP : IPPROTO_TCP;
	svc->svc_flags = proto == 1 ? CANARY_SVC_F_HTTP : 0;
	d->service_node = n;
	d->vip = svc->key.vip;
	return 0;
}

static int parse_endpoint_item(struct doc *d, const struct ynode *n, void *arg)
{
	struct version_cfg *v = arg;
	struct canary_backend *be = &v->endpoints[v->n_endpoints];
	char why[NETPARSE_ERR_LEN];
	const char *s;
	__u8 i;

	if (get_string(d, n, NULL, &s))
		return -1;
	if (parse_endpoint(s, be, why, sizeof(why)))
		return fail(d, &n->mark, NULL, "%s", why);
	if (be->addr == d->vip)
		return fail(d, &n->mark, NULL, "endpoint \"%s\" is the service's VIP", s);
	/* A repeated backend would silently get twice the traffic. */
	for (i = 0; i < v->n_endpoints; i++)
		if (v->endpoints[i].addr == be->addr && v->endpoints[i].port == be->port)
			return fail(d, &n->mark, NULL, "duplicate endpoint \"%s\"", s);
	v->n_endpoints++;
	return 0;
}

static int parse_endpoints(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "endpoint", CANARY_MAX_BACKENDS, true, parse_endpoint_item, arg);
}

static int copy_revision(struct doc *d, const struct ynode *n, char *dst)
{
	const char *s;
	size_t len, i;

	if (get_string(d, n, "revision", &s))
		return -1;
	len = strlen(s);
	if (len >= CONFIG_REVISION_LEN)
		return fail(d, &n->mark, "revision", "too long (at most %d characters)",
			    CONFIG_REVISION_LEN - 1);
	/* It ends up in logs and metric labels. */
	for (i = 0; i < len; i++)
		if (iscntrl((unsigned char)s[i]))
			return fail(d, &n->mark, "revision", "control character in revision");
	memcpy(dst, s, len + 1);
	return 0;
}

enum { VER_REVISION, VER_ENDPOINTS, VER_N };

static int parse_version(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[VER_N] = { "revision", "endpoints" };
	struct version_cfg *v = arg;
	const struct ynode *f[VER_N];

	if (map_fields(d, n, names, VER_N, BIT(VER_ENDPOINTS), f) ||
	    (f[VER_REVISION] && copy_revision(d, f[VER_REVISION], v->revision)))
		return -1;
	return sub(d, "endpoints", f[VER_ENDPOINTS], parse_endpoints, v);
}

enum { OVR_CIDR, OVR_VERSION, OVR_N };

static int parse_override(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[OVR_N] = { "cidr", "version" };
	static const char *const versions[] = {
		[CANARY_V_STABLE] = "stable", [CANARY_V_CANARY] = "canary"
	};
	struct rollout_cfg *r = arg;
	struct override_cfg *o = &r->overrides[r->n_overrides];
	const struct ynode *f[OVR_N];
	char why[NETPARSE_ERR_LEN];
	const char *cidr;
	int version, i;

	if (map_fields(d, n, names, OVR_N, BIT(OVR_CIDR) | BIT(OVR_VERSION), f) ||
	    get_string(d, f[OVR_CIDR], "cidr", &cidr) ||
	    get_enum(d, f[OVR_VERSION], "version", versions, ARRAY_SIZE(versions), &version))
		return -1;
	if (parse_cidr(cidr, &o->addr, &o->prefixlen, why, sizeof(why)))
		return fail(d, &f[OVR_CIDR]->mark, "cidr", "%s", why);
	/* The LPM trie holds one version per prefix: a second one would be lost. */
	for (i = 0; i < r->n_overrides; i++)
		if (r->overrides[i].addr == o->addr && r->overrides[i].prefixlen == o->prefixlen)
			return fail(d, &f[OVR_CIDR]->mark, "cidr", "duplicate override for %s",
				    cidr);
	o->version = (enum canary_version)version;
	r->n_overrides++;
	return 0;
}

static int parse_overrides(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "override", CONFIG_MAX_OVERRIDES, false, parse_override, arg);
}

static int parse_pause(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "duration" };
	struct step_cfg *st = arg;
	const struct ynode *f[ARRAY_SIZE(names)];

	if (n->kind == Y_SCALAR && n->null)
		return fail(d, &n->mark, NULL,
			    "expected a mapping: pause: {} waits for a human, "
			    "pause: {duration: 30s} for a while");
	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f))
		return -1;
	return f[0] ? get_duration_ms(d, f[0], "duration", &st->pause_ms) : 0;
}

enum { STEP_F_SET_WEIGHT, STEP_F_PAUSE, STEP_F_N };

static int parse_step(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[STEP_F_N] = { "setWeight", "pause" };
	struct rollout_cfg *r = arg;
	struct step_cfg *st = &r->steps[r->n_steps];
	const struct ynode *f[STEP_F_N];
	char why[NETPARSE_ERR_LEN];
	const char *s;

	if (map_fields(d, n, names, STEP_F_N, 0, f))
		return -1;
	if (f[STEP_F_SET_WEIGHT] && f[STEP_F_PAUSE]) {
		/* Point at whichever of the two comes second. */
		int later =
			f[STEP_F_PAUSE]->key->mark.index > f[STEP_F_SET_WEIGHT]->key->mark.index;

		return fail(
			d, &f[later]->key->mark, names[later],
			"a step is either setWeight or pause, not both (make them two list items)");
	}
	memset(st, 0, sizeof(*st));
	if (f[STEP_F_PAUSE]) {
		st->kind = STEP_PAUSE;
		st->pause_ms = CONFIG_PAUSE_INDEFINITE;
		if (sub(d, "pause", f[STEP_F_PAUSE], parse_pause, st))
			return -1;
	} else if (f[STEP_F_SET_WEIGHT]) {
		st->kind = STEP_SET_WEIGHT;
		if (get_number(d, f[STEP_F_SET_WEIGHT], "setWeight", &s))
			return -1;
		if (parse_weight_percent(s, &st->weight_bp, why, sizeof(why)))
			return fail(d, &f[STEP_F_SET_WEIGHT]->mark, "setWeight", "%s", why);
	} else {
		return fail(d, &n->mark, NULL, "a step needs setWeight or pause");
	}
	r->n_steps++;
	return 0;
}

static int parse_steps(struct doc *d, const struct ynode *n, void *arg)
{
	struct rollout_cfg *r = arg;
	int i;

	if (seq_items(d, n, "step", CONFIG_MAX_STEPS, true, parse_step, r))
		return -1;
	for (i = 0; i < r->n_steps; i++)
		if (r->steps[i].kind == STEP_SET_WEIGHT)
			return 0;
	return fail(d, &n->mark, NULL, "at least one setWeight step is required");
}

struct hook_target {
	char *url;
	size_t url_len;
	__s64 *timeout_ms;
};

/* {url, timeout}: an HTTP endpoint canaryd POSTs to and reads the status of. */
static int parse_hook(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "url", "timeout" };
	const struct hook_target *h = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	const char *url;

	*h->timeout_ms = 2000;
	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0), f) ||
	    get_string(d, f[0], "url", &url) ||
	    (f[1] && get_duration_ms(d, f[1], "timeout", h->timeout_ms)))
		return -1;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return fail(d, &f[0]->mark, "url", "\"%s\": expected http://… or https://…", url);
	if (strlen(url) >= h->url_len)
		return fail(d, &f[0]->mark, "url", "longer than %zu characters", h->url_len - 1);
	if (*h->timeout_ms > 60000)
		return fail(d, &f[1]->mark, "timeout", "at most 60s");
	snprintf(h->url, h->url_len, "%s", url);
	return 0;
}

/* "HH:MM" into minutes after midnight. */
static int get_clock(struct doc *d, const struct ynode *n, const char *key, __s16 *min)
{
	unsigned int h, m;
	const char *s;
	char end;

	if (get_string(d, n, key, &s))
		return -1;
	if (sscanf(s, "%2u:%2u%c", &h, &m, &end) != 2 || strlen(s) != 5 || h > 23 || m > 59)
		return fail(d, &n->mark, key, "\"%s\": expected a time of day HH:MM (00:00..23:59)",
			    s);
	*min = (__s16)(h * 60 + m);
	return 0;
}

static int parse_blackout_day(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
	struct blackout_cfg *b = arg;
	int day;

	if (get_enum(d, n, NULL, days, ARRAY_SIZE(days), &day))
		return -1;
	b->days |= (__u8)BIT(day);
	return 0;
}

static int parse_blackout_days(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "day", 7, true, parse_blackout_day, arg);
}

/* timezone: UTC (default), local (the node's), or a fixed offset "+HH:MM" / "-HH:MM". */
static int parse_timezone(struct doc *d, const struct ynode *n, struct blackout_cfg *b)
{
	unsigned int h, m;
	const char *s;
	char sign, end;

	if (get_string(d, n, "timezone", &s))
		return -1;
	if (!strcmp(s, "UTC"))
		return 0;
	if (!strcmp(s, "local")) {
		b->local_time = true;
		return 0;
	}
	if (sscanf(s, "%c%2u:%2u%c", &sign, &h, &m, &end) != 3 || strlen(s) != 6 ||
	    (sign != '+' && sign != '-') || h > 14 || m > 59)
		return fail(d, &n->mark, "timezone", "\"%s\": expected UTC, local or +HH:MM", s);
	b->utc_offset_min = (sign == '-' ? -1 : 1) * (__s32)(h * 60 + m);
	return 0;
}

static int parse_blackout(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "days", "from", "to", "timezone" };
	struct traffic_policy_cfg *t = arg;
	struct blackout_cfg *b = &t->blackouts[t->n_blackouts];
	const struct ynode *f[ARRAY_SIZE(names)];

	memset(b, 0, sizeof(*b));
	b->from_min = b->to_min = -1;
	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f) ||
	    sub(d, "days", f[0], parse_blackout_days, b) ||
	    (f[1] && get_clock(d, f[1], "from", &b->from_min)) ||
	    (f[2] && get_clock(d, f[2], "to", &b->to_min)) || (f[3] && parse_timezone(d, f[3], b)))
		return -1;
	if (!f[1] != !f[2])
		return fail(d, &n->mark, NULL, "from and to go together (neither: the whole day)");
	if (f[1] && b->from_min == b->to_min)
		return fail(d, &f[2]->mark, "to", "equals from: leave both out for the whole day");
	if (!f[0])
		b->days = 0x7f; /* every day */
	t->n_blackouts++;
	return 0;
}

static int parse_blackouts(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "blackout window", CONFIG_MAX_BLACKOUTS, false, parse_blackout, arg);
}

static int parse_peak(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "aboveRps", "maxStepIncrease", "pauseFactor" };
	struct traffic_policy_cfg *t = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	const char *s;
	char why[128];

	t->pause_factor = 1;
	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0), f) ||
	    get_double(d, f[0], "aboveRps", &t->peak_above_rps) ||
	    (f[2] && get_double(d, f[2], "pauseFactor", &t->pause_factor)))
		return -1;
	if (t->peak_above_rps <= 0)
		return fail(d, &f[0]->mark, "aboveRps", "%s is out of range (more than 0)",
			    f[0]->text);
	if (f[2] && (t->pause_factor < 1 || t->pause_factor > 100))
		return fail(d, &f[2]->mark, "pauseFactor", "%s is out of range (1..100)",
			    f[2]->text);
	if (!f[1])
		return 0;
	if (get_number(d, f[1], "maxStepIncrease", &s))
		return -1;
	if (parse_weight_percent(s, &t->peak_max_increase_bp, why, sizeof(why)) ||
	    !t->peak_max_increase_bp)
		return fail(d, &f[1]->mark, "maxStepIncrease", "%s",
			    t->peak_max_increase_bp ? why : "must be more than 0");
	return 0;
}

static int parse_traffic_policy(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "peak", "blackout" };
	struct rollout_cfg *r = arg;
	const struct ynode *f[ARRAY_SIZE(names)];

	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f) ||
	    sub(d, "peak", f[0], parse_peak, &r->traffic))
		return -1;
	return sub(d, "blackout", f[1], parse_blackouts, &r->traffic);
}

/* progressDeadline: a duration, or "none" for a rollout that may wait forever. */
static int parse_progress_deadline(struct doc *d, const struct ynode *n, struct rollout_cfg *r)
{
	if (n->kind == Y_SCALAR && !n->null && !strcmp(n->text, "none")) {
		r->progress_deadline_ms = CONFIG_NO_DEADLINE;
		return 0;
	}
	return get_duration_ms(d, n, "progressDeadline", &r->progress_deadline_ms);
}

static int parse_strategy(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "steps", "progressDeadline", "trafficPolicy",
					     "prePromotion" };
	struct rollout_cfg *r = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	struct hook_target h = { r->pre_promotion_url, sizeof(r->pre_promotion_url),
				 &r->pre_promotion_timeout_ms };

	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0), f) ||
	    sub(d, "prePromotion", f[3], parse_hook, &h))
		return -1;
	if (f[1] && parse_progress_deadline(d, f[1], arg))
		return -1;
	if (sub(d, "trafficPolicy", f[2], parse_traffic_policy, arg))
		return -1;
	return sub(d, "steps", f[0], parse_steps, arg);
}

/* What limit each metric takes. */
enum limit_kind {
	LIMIT_FRACTION, /* max: 0..1 */
	LIMIT_LATENCY,	/* max: a duration */
	LIMIT_NONE,	/* prometheus: a successCondition instead */
	LIMIT_INCREASE, /* compareLatency: maxIncrease, optional */
};

static const char *const metric_names[METRIC_KIND_COUNT] = {
	[METRIC_ERROR_RATE] = "errorRate",
	[METRIC_RESET_RATE] = "resetRate",
	[METRIC_LATENCY_P50] = "latencyP50",
	[METRIC_LATENCY_P95] = "latencyP95",
	[METRIC_LATENCY_P99] = "latencyP99",
	[METRIC_COMPARE_ERROR_RATE] = "compareErrorRate",
	[METRIC_COMPARE_LATENCY] = "compareLatency",
	[METRIC_COMPARE_LATENCY_TAIL] = "compareLatencyTail",
	[METRIC_PROMETHEUS] = "prometheus",
	[METRIC_WEBHOOK] = "webhook",
};

static const enum limit_kind metric_limits[METRIC_KIND_COUNT] = {
	[METRIC_ERROR_RATE] = LIMIT_FRACTION,
	[METRIC_RESET_RATE] = LIMIT_FRACTION,
	[METRIC_LATENCY_P50] = LIMIT_LATENCY,
	[METRIC_LATENCY_P95] = LIMIT_LATENCY,
	[METRIC_LATENCY_P99] = LIMIT_LATENCY,
	[METRIC_COMPARE_ERROR_RATE] = LIMIT_INCREASE,
	[METRIC_COMPARE_LATENCY] = LIMIT_INCREASE,
	[METRIC_PROMETHEUS] = LIMIT_NONE,
	[METRIC_COMPARE_LATENCY_TAIL] = LIMIT_INCREASE,
	[METRIC_WEBHOOK] = LIMIT_NONE,
};

const char *metric_kind_name(enum metric_kind kind)
{
	return (unsigned int)kind < METRIC_KIND_COUNT ? metric_names[kind] : "unknown";
}

enum {
	MET_NAME,
	MET_MAX,
	MET_MAX_INCREASE,
	MET_PROMETHEUS,
	MET_SUCCESS,
	MET_ERROR_LIMIT,
	MET_DRY_RUN,
	MET_FAILURE_LIMIT,
	MET_QUANTILE,
	MET_WEBHOOK,
	MET_N,
};
static const char *const metric_fields[MET_N] = { "name",
						  "max",
						  "maxIncrease",
						  "prometheus",
						  "successCondition",
						  "consecutiveErrorLimit",
						  "dryRun",
						  "failureLimit",
						  "quantile",
						  "webhook" };

static int not_allowed(struct doc *d, const struct ynode *const f[], int field,
		       enum metric_kind kind)
{
	if (!f[field])
		return 0;
	return fail(d, &f[field]->key->mark, metric_fields[field], "not allowed for %s",
		    metric_names[kind]);
}

static int limit_fraction(struct doc *d, const struct ynode *n, const struct ynode *const f[],
			  struct metric_cfg *m)
{
	if (!f[MET_MAX])
		return fail(d, &n->mark, NULL, "%s needs a limit (max: a fraction, 0..1)",
			    metric_names[m->kind]);
	if (not_allowed(d, f, MET_MAX_INCREASE, m->kind) ||
	    get_double(d, f[MET_MAX], "max", &m->max))
		return -1;
	if (m->max < 0 || m->max > 1)
		return fail(d, &f[MET_MAX]->mark, "max", "%s is out of range (a fraction, 0..1)",
			    f[MET_MAX]->text);
	return 0;
}

static int limit_latency(struct doc *d, const struct ynode *n, const struct ynode *const f[],
			 struct metric_cfg *m)
{
	long long us;

	if (!f[MET_MAX])
		return fail(d, &n->mark, NULL, "%s needs a limit (max: a duration such as 250ms)",
			    metric_names[m->kind]);
	if (not_allowed(d, f, MET_MAX_INCREASE, m->kind) ||
	    get_duration_us(d, f[MET_MAX], "max", &us))
		return -1;
	m->max = (double)us;
	return 0;
}

static int limit_increase(struct doc *d, const struct ynode *const f[], struct metric_cfg *m)
{
	if (not_allowed(d, f, MET_MAX, m->kind))
		return -1;
	/*
	 * compareLatency: 10% by default, so that one pod's slow seconds do not
	 * read as a regression (docs/analysis.md); the tail: no slower than stable.
	 */
	m->max_increase = m->kind == METRIC_COMPARE_LATENCY ? CONFIG_DEFAULT_MAX_INCREASE : 0;
	if (!f[MET_MAX_INCREASE])
		return 0;
	if (get_double(d, f[MET_MAX_INCREASE], "maxIncrease", &m->max_increase))
		return -1;
	if (m->max_increase < 0 || m->max_increase > MAX_INCREASE)
		return fail(d, &f[MET_MAX_INCREASE]->mark, "maxIncrease",
			    "%s is out of range (a fraction, 0..%g: 0.2 is 20%% more)",
			    f[MET_MAX_INCREASE]->text, MAX_INCREASE);
	return 0;
}

static int metric_limit(struct doc *d, const struct ynode *n, const struct ynode *const f[],
			struct metric_cfg *m)
{
	switch (metric_limits[m->kind]) {
	case LIMIT_FRACTION:
		return limit_fraction(d, n, f, m);
	case LIMIT_LATENCY:
		return limit_latency(d, n, f, m);
	case LIMIT_INCREASE:
		return limit_increase(d, f, m);
	case LIMIT_NONE:
		break;
	}
	if (not_allowed(d, f, MET_MAX, m->kind))
		return -1;
	return not_allowed(d, f, MET_MAX_INCREASE, m->kind);
}

/* compareLatencyTail: the quantile whose tail is compared, default 0.99. */
static int metric_quantile(struct doc *d, const struct ynode *const f[], struct metric_cfg *m)
{
	if (m->kind != METRIC_COMPARE_LATENCY_TAIL)
		return not_allowed(d, f, MET_QUANTILE, m->kind);
	m->quantile = CONFIG_DEFAULT_TAIL_QUANTILE;
	if (!f[MET_QUANTILE])
		return 0;
	if (get_double(d, f[MET_QUANTILE], "quantile", &m->quantile))
		return -1;
	if (m->quantile < MIN_TAIL_QUANTILE || m->quantile > MAX_TAIL_QUANTILE)
		return fail(d, &f[MET_QUANTILE]->mark, "quantile",
			    "%s is out of range (%g..%g: 0.99 is p99)", f[MET_QUANTILE]->text,
			    MIN_TAIL_QUANTILE, MAX_TAIL_QUANTILE);
	return 0;
}

static const struct {
	const char *text;
	enum cond_op op;
} cond_ops[] = {
	/* Two-character operators first, so "<=" is not read as "<". */
	{ "<=", COND_LE }, { ">=", COND_GE }, { "==", COND_EQ },
	{ "!=", COND_NE }, { "<", COND_LT },  { ">", COND_GT },
};

bool metric_condition_holds(const struct metric_cfg *m, double v)
{
	switch (m->cond_op) {
	case COND_LT:
		return v < m->cond_value;
	case COND_LE:
		return v <= m->cond_value;
	case COND_GT:
		return v > m->cond_value;
	case COND_GE:
		return v >= m->cond_value;
	case COND_EQ:
		return v == m->cond_value;
	case COND_NE:
		return v != m->cond_value;
	}
	return false;
}

void metric_condition_format(const struct metric_cfg *m, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cond_ops); i++)
		if (cond_ops[i].op == m->cond_op)
			break;
	snprintf(buf, len, "result %s %g", i < ARRAY_SIZE(cond_ops) ? cond_ops[i].text : "?",
		 m->cond_value);
}

/* "result OP NUMBER", spaces allowed around each part. */
static int parse_condition(struct doc *d, const struct ynode *n, struct metric_cfg *m)
{
	locale_t c_locale;
	const char *p, *s;
	char *end = NULL;
	size_t i;

	if (get_string(d, n, "successCondition", &s))
		return -1;
	p = s + strspn(s, " ");
	if (strncmp(p, "result", 6) != 0)
		goto bad;
	p += 6 + strspn(p + 6, " ");
	for (i = 0; i < ARRAY_SIZE(cond_ops); i++)
		if (!strncmp(p, cond_ops[i].text, strlen(cond_ops[i].text)))
			break;
	if (i == ARRAY_SIZE(cond_ops))
		goto bad;
	m->cond_op = cond_ops[i].op;
	p += strlen(cond_ops[i].text);
	p += strspn(p, " ");
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	m->cond_value = c_locale ? strtod_l(p, &end, c_locale) : strtod(p, &end);
	if (c_locale)
		freelocale(c_locale);
	if (end == p || !isfinite(m->cond_value) || end[strspn(end, " ")] != '\0')
		goto bad;
	return 0;
bad:
	return fail(d, &n->mark, "successCondition",
		    "\"%s\": expected \"result OP NUMBER\" with OP one of < <= > >= == !=", s);
}

/* A file named for the query worker: an absolute path that fits. */
static int get_path(struct doc *d, const struct ynode *n, const char *key, char *out, size_t size)
{
	const char *path;

	if (get_string(d, n, key, &path))
		return -1;
	if (path[0] != '/')
		return fail(d, &n->mark, key, "\"%s\": expected an absolute path", path);
	if (strlen(path) >= size)
		return fail(d, &n->mark, key, "longer than %zu characters", size - 1);
	snprintf(out, size, "%s", path);
	return 0;
}

/* tls: {caFile, certFile, keyFile, insecureSkipVerify} */
static int parse_prom_tls(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "caFile", "certFile", "keyFile",
					     "insecureSkipVerify" };
	struct prom_tls_auth *t = arg;
	const struct ynode *f[ARRAY_SIZE(names)];

	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f) ||
	    (f[0] && get_path(d, f[0], "caFile", t->ca_file, sizeof(t->ca_file))) ||
	    (f[1] && get_path(d, f[1], "certFile", t->cert_file, sizeof(t->cert_file))) ||
	    (f[2] && get_path(d, f[2], "keyFile", t->key_file, sizeof(t->key_file))) ||
	    (f[3] && get_bool(d, f[3], "insecureSkipVerify", &t->insecure_skip_verify)))
		return -1;
	/* One without the other would fail every query, far from this line. */
	if (!!f[1] != !!f[2])
		return fail(d, &n->mark, f[1] ? "keyFile" : "certFile",
			    "certFile and keyFile go together (a client certificate and its key)");
	if (f[0] && t->insecure_skip_verify)
		return fail(d, &f[3]->mark, "insecureSkipVerify",
			    "caFile is never used when insecureSkipVerify is true: drop one");
	return 0;
}

/*
 * prometheus: {address: http://host:port, query: "...", tls: {...},
 * bearerTokenFile: /path}
 */
static int parse_prometheus(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "address", "query", "tls", "bearerTokenFile" };
	struct metric_cfg *m = arg;
	struct prom_tls_auth *t = &m->prom_auth;
	const struct ynode *f[ARRAY_SIZE(names)];
	const char *address, *query;
	bool https;

	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0) | BIT(1), f) ||
	    get_string(d, f[0], "address", &address) || get_string(d, f[1], "query", &query))
		return -1;
	if (strncmp(address, "http://", 7) != 0 && strncmp(address, "https://", 8) != 0)
		return fail(d, &f[0]->mark, "address", "\"%s\": expected http://HOST:PORT",
			    address);
	if (strlen(address) >= sizeof(m->prom_address))
		return fail(d, &f[0]->mark, "address", "longer than %zu characters",
			    sizeof(m->prom_address) - 1);
	if (!*query || strlen(query) >= sizeof(m->prom_query))
		return fail(d, &f[1]->mark, "query", "must be 1..%zu characters",
			    sizeof(m->prom_query) - 1);
	https = !strncmp(address, "https://", 8);
	/* A token over plain http is readable by anyone on the path: never send it. */
	if ((f[2] || f[3]) && !https)
		return fail(d, &f[f[2] ? 2 : 3]->key->mark, names[f[2] ? 2 : 3],
			    "needs an https:// address (\"%s\" is plain http)", address);
	if ((f[2] && sub(d, "tls", f[2], parse_prom_tls, t)) ||
	    (f[3] && get_path(d, f[3], "bearerTokenFile", t->token_file, sizeof(t->token_file))))
		return -1;
	snprintf(m->prom_address, sizeof(m->prom_address), "%s", address);
	snprintf(m->prom_query, sizeof(m->prom_query), "%s", query);
	return 0;
}

/* An external metric: a free name, a query and the condition it must meet. */
static int parse_external(struct doc *d, const struct ynode *const f[], struct metric_cfg *m)
{
	unsigned long long limit = CONFIG_DEFAULT_CONSECUTIVE_ERRORS;
	const char *name = m->name;
	size_t len = strlen(name);

	if (!len || len >= sizeof(m->name) ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len)
		return fail(d, &f[MET_NAME]->mark, "name",
			    "\"%s\": 1..%zu letters, digits, '_' or '-'", name,
			    sizeof(m->name) - 1);
	if (find_name(metric_names, METRIC_KIND_COUNT, name) != METRIC_KIND_COUNT)
		return fail(d, &f[MET_NAME]->mark, "name",
			    "\"%s\" is a built-in metric: give the query its own name", name);
	if (!f[MET_SUCCESS])
		return fail(d, &f[MET_PROMETHEUS]->key->mark, NULL,
			    "a prometheus metric needs successCondition: \"result < 0.05\"");
	if (not_allowed(d, f, MET_MAX, m->kind) || not_allowed(d, f, MET_MAX_INCREASE, m->kind) ||
	    not_allowed(d, f, MET_QUANTILE, m->kind) ||
	    sub(d, "prometheus", f[MET_PROMETHEUS], parse_prometheus, m) ||
	    parse_condition(d, f[MET_SUCCESS], m))
		return -1;
	if (f[MET_ERROR_LIMIT] &&
	    get_uint(d, f[MET_ERROR_LIMIT], "consecutiveErrorLimit", 0, 1000, &limit))
		return -1;
	m->consecutive_error_limit = (__u32)limit;
	return 0;
}

/* dryRun and failureLimit: what every kind of metric may say about its failures. */
static int parse_metric_failures(struct doc *d, const struct ynode *const f[], struct metric_cfg *m)
{
	unsigned long long limit;

	m->failure_limit = CONFIG_INHERIT;
	if (f[MET_DRY_RUN] && get_bool(d, f[MET_DRY_RUN], "dryRun", &m->dry_run))
		return -1;
	if (!f[MET_FAILURE_LIMIT])
		return 0;
	if (get_uint(d, f[MET_FAILURE_LIMIT], "failureLimit", 0, MAX_FAILURE_LIMIT, &limit))
		return -1;
	m->failure_limit = (__s64)limit;
	return 0;
}

/* A webhook metric: its own name, webhook: {url, timeout}; 2xx passes. */
static int parse_webhook_metric(struct doc *d, const struct ynode *const f[], struct metric_cfg *m)
{
	struct hook_target h = { m->hook_url, sizeof(m->hook_url), &m->hook_timeout_ms };
	unsigned long long limit = CONFIG_DEFAULT_CONSECUTIVE_ERRORS;

	if (find_name(metric_names, METRIC_KIND_COUNT, m->name) != METRIC_KIND_COUNT)
		return fail(d, &f[MET_NAME]->mark, "name",
			    "\"%s\" is a built-in metric: give the webhook its own name", m->name);
	m->kind = METRIC_WEBHOOK;
	if (not_allowed(d, f, MET_MAX, m->kind) || not_allowed(d, f, MET_MAX_INCREASE, m->kind) ||
	    not_allowed(d, f, MET_SUCCESS, m->kind) || not_allowed(d, f, MET_QUANTILE, m->kind) ||
	    not_allowed(d, f, MET_PROMETHEUS, m->kind) ||
	    sub(d, "webhook", f[MET_WEBHOOK], parse_hook, &h))
		return -1;
	if (f[MET_ERROR_LIMIT] &&
	    get_uint(d, f[MET_ERROR_LIMIT], "consecutiveErrorLimit", 0, 1000, &limit))
		return -1;
	m->consecutive_error_limit = (__u32)limit;
	return 0;
}

static int parse_metric(struct doc *d, const struct ynode *n, void *arg)
{
	struct analysis_cfg *a = arg;
	struct metric_cfg *m = &a->metrics[a->n_metrics];
	const struct ynode *f[MET_N];
	const char *s;
	int kind, i;

	if (map_fields(d, n, metric_fields, MET_N, BIT(MET_NAME), f))
		return -1;
	if (get_string(d, f[MET_NAME], "name", &s))
		return -1;
	for (i = 0; i < a->n_metrics; i++)
		if (!strcmp(a->metrics[i].name, s))
			return fail(d, &f[MET_NAME]->mark, "name", "metric %s is listed twice", s);
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", s);
	if (parse_metric_failures(d, f, m))
		return -1;
	if (f[MET_WEBHOOK]) {
		if (parse_webhook_metric(d, f, m))
			return -1;
		a->n_metrics++;
		return 0;
	}
	if (f[MET_PROMETHEUS]) {
		m->kind = METRIC_PROMETHEUS;
		if (parse_external(d, f, m))
			return -1;
		a->n_metrics++;
		return 0;
	}
	kind = (int)find_name(metric_names, METRIC_KIND_COUNT, s);
	if (kind == METRIC_PROMETHEUS || kind == METRIC_WEBHOOK)
		return fail(d, &f[MET_NAME]->mark, "name",
			    "a prometheus or webhook metric has its own name and a prometheus: "
			    "{address, query} or a webhook: {url}");
	if (kind == METRIC_KIND_COUNT)
		return not_one_of(d, f[MET_NAME], "name", "unknown metric", metric_names,
				  METRIC_PROMETHEUS);
	m->kind = (enum metric_kind)kind;
	if (not_allowed(d, f, MET_SUCCESS, m->kind) || not_allowed(d, f, MET_WEBHOOK, m->kind) ||
	    not_allowed(d, f, MET_ERROR_LIMIT, m->kind) || metric_limit(d, n, f, m) ||
	    metric_quantile(d, f, m))
		return -1;
	a->n_metrics++;
	return 0;
}

static int parse_metrics(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "metric", CONFIG_MAX_METRICS, false, parse_metric, arg);
}

enum {
	AN_INTERVAL,
	AN_MIN_REQUESTS,
	AN_FAILURE_LIMIT,
	AN_CONFIDENCE,
	AN_METRICS,
	AN_INCONCLUSIVE_LIMIT,
	AN_N
};

static int parse_analysis(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[AN_N] = { "interval",   "minRequests", "failureLimit",
						 "confidence", "metrics",     "inconclusiveLimit" };
	struct analysis_cfg *a = arg;
	const struct ynode *f[AN_N];
	unsigned long long u;

	if (map_fields(d, n, names, AN_N, 0, f) ||
	    (f[AN_INTERVAL] && get_duration_ms(d, f[AN_INTERVAL], "interval", &a->interval_ms)))
		return -1;
	if (f[AN_MIN_REQUESTS]) {
		if (get_uint(d, f[AN_MIN_REQUESTS], "minRequests", 1, MAX_MIN_REQUESTS, &u))
			return -1;
		a->min_requests = u;
	}
	if (f[AN_FAILURE_LIMIT]) {
		if (get_uint(d, f[AN_FAILURE_LIMIT], "failureLimit", 0, MAX_FAILURE_LIMIT, &u))
			return -1;
		a->failure_limit = (__u32)u;
	}
	if (f[AN_INCONCLUSIVE_LIMIT]) {
		if (get_uint(d, f[AN_INCONCLUSIVE_LIMIT], "inconclusiveLimit", 0, MAX_FAILURE_LIMIT,
			     &u))
			return -1;
		a->inconclusive_limit = (__u32)u;
	}
	if (f[AN_CONFIDENCE]) {
		if (get_double(d, f[AN_CONFIDENCE], "confidence", &a->confidence))
			return -1;
		if (!(a->confidence > 0.5 && a->confidence < 1))
			return fail(d, &f[AN_CONFIDENCE]->mark, "confidence",
				    "%s is out of range (more than 0.5, less than 1)",
				    f[AN_CONFIDENCE]->text);
	}
	return sub(d, "metrics", f[AN_METRICS], parse_metrics, a);
}

static int parse_abort(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "connections" };
	static const char *const modes[] = {
		[ABORT_CONNECTIONS_RESET] = "reset", [ABORT_CONNECTIONS_DRAIN] = "drain"
	};
	struct rollout_cfg *r = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	int mode;

	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f))
		return -1;
	if (!f[0])
		return 0;
	if (get_enum(d, f[0], "connections", modes, ARRAY_SIZE(modes), &mode))
		return -1;
	r->abort_connections = (enum abort_connections)mode;
	return 0;
}

/* healthCheck: {interval: 1s, timeout: 200ms, failureThreshold: 2} */
static int parse_health(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "interval", "timeout", "failureThreshold" };
	struct health_cfg *h = arg;
	const struct ynode *f[ARRAY_SIZE(names)];
	unsigned long long threshold = h->failure_threshold;

	if (map_fields(d, n, names, ARRAY_SIZE(names), 0, f) ||
	    (f[0] && get_duration_ms(d, f[0], "interval", &h->interval_ms)) ||
	    (f[1] && get_duration_ms(d, f[1], "timeout", &h->timeout_ms)) ||
	    (f[2] && get_uint(d, f[2], "failureThreshold", 1, 100, &threshold)))
		return -1;
	if (h->timeout_ms >= h->interval_ms)
		return fail(d, &n->mark, NULL, "timeout must be shorter than interval");
	h->failure_threshold = (__u32)threshold;
	h->enabled = true;
	return 0;
}

static const char *const notify_event_names[NOTIFY_EVENT_COUNT] = {
	[NOTIFY_STARTED] = "started", [NOTIFY_STEP] = "step",
	[NOTIFY_PAUSED] = "paused",   [NOTIFY_PROMOTED] = "promoted",
	[NOTIFY_ABORTED] = "aborted", [NOTIFY_SUPERSEDED] = "superseded",
};

const char *notify_event_name(enum notify_event e)
{
	return e < NOTIFY_EVENT_COUNT ? notify_event_names[e] : "unknown";
}

static int parse_notify_event(struct doc *d, const struct ynode *n, void *arg)
{
	struct notify_cfg *c = arg;
	int e;

	if (get_enum(d, n, NULL, notify_event_names, NOTIFY_EVENT_COUNT, &e))
		return -1;
	c->events |= BIT(e);
	return 0;
}

static int parse_notify_events(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "event", NOTIFY_EVENT_COUNT, true, parse_notify_event, arg);
}

static int parse_notification(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[] = { "url", "events", "format", "timeout" };
	static const char *const formats[] = {
		[NOTIFY_FORMAT_GENERIC] = "generic", [NOTIFY_FORMAT_SLACK] = "slack"
	};
	struct rollout_cfg *r = arg;
	struct notify_cfg *c = &r->notifications[r->n_notifications];
	const struct ynode *f[ARRAY_SIZE(names)];
	const char *url;
	int format = NOTIFY_FORMAT_GENERIC;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = 2000;
	if (map_fields(d, n, names, ARRAY_SIZE(names), BIT(0), f) ||
	    get_string(d, f[0], "url", &url) ||
	    (f[2] && get_enum(d, f[2], "format", formats, ARRAY_SIZE(formats), &format)) ||
	    (f[3] && get_duration_ms(d, f[3], "timeout", &c->timeout_ms)) ||
	    sub(d, "events", f[1], parse_notify_events, c))
		return -1;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return fail(d, &f[0]->mark, "url",
			    "\"%s\": expected http://HOST[:PORT]/PATH or https://…", url);
	if (strlen(url) >= sizeof(c->url))
		return fail(d, &f[0]->mark, "url", "longer than %zu characters",
			    sizeof(c->url) - 1);
	if (c->timeout_ms > 60000)
		return fail(d, &f[3]->mark, "timeout", "at most 60s");
	snprintf(c->url, sizeof(c->url), "%s", url);
	c->format = (enum notify_format)format;
	if (!f[1])
		c->events = BIT(NOTIFY_EVENT_COUNT) - 1; /* all of them */
	r->n_notifications++;
	return 0;
}

static int parse_notifications(struct doc *d, const struct ynode *n, void *arg)
{
	return seq_items(d, n, "notification", CONFIG_MAX_NOTIFICATIONS, false, parse_notification,
			 arg);
}

enum {
	SPEC_SERVICE,
	SPEC_STABLE,
	SPEC_CANARY,
	SPEC_AFFINITY,
	SPEC_OVERRIDES,
	SPEC_STRATEGY,
	SPEC_ANALYSIS,
	SPEC_ABORT,
	SPEC_HEALTH,
	SPEC_NOTIFICATIONS,
	SPEC_N,
};

static int parse_spec(struct doc *d, const struct ynode *n, void *arg)
{
	static const char *const names[SPEC_N] = {
		[SPEC_SERVICE] = "service",	[SPEC_STABLE] = "stable",
		[SPEC_CANARY] = "canary",	[SPEC_AFFINITY] = "affinity",
		[SPEC_OVERRIDES] = "overrides", [SPEC_STRATEGY] = "strategy",
		[SPEC_ANALYSIS] = "analysis",	[SPEC_ABORT] = "abort",
		[SPEC_HEALTH] = "healthCheck",	[SPEC_NOTIFICATIONS] = "notifications",
	};
	static const char *const affinities[] = {
		[CANARY_AFFINITY_NONE] = "none", [CANARY_AFFINITY_CLIENT_IP] = "client-ip"
	};
	const unsigned int required =
		BIT(SPEC_SERVICE) | BIT(SPEC_STABLE) | BIT(SPEC_CANARY) | BIT(SPEC_STRATEGY);
	struct rollout_cfg *r = arg;
	const struct ynode *f[SPEC_N];
	int affinity = CANARY_AFFINITY_NONE;

	if (map_fields(d, n, names, SPEC_N, required, f) ||
	    sub(d, "service", f[SPEC_SERVICE], parse_service, &r->service) ||
	    sub(d, "stable", f[SPEC_STABLE], parse_version, &r->stable) ||
	    sub(d, "canary", f[SPEC_CANARY], parse_version, &r->canary) ||
	    (f[SPEC_AFFINITY] && get_enum(d, f[SPEC_AFFINITY], "affinity", affinities,
					  ARRAY_SIZE(affinities), &affinity)) ||
	    sub(d, "overrides", f[SPEC_OVERRIDES], parse_overrides, r) ||
	    sub(d, "strategy", f[SPEC_STRATEGY], parse_strategy, r) ||
	    sub(d, "analysis", f[SPEC_ANALYSIS], parse_analysis, &r->analysis) ||
	    sub(d, "abort", f[SPEC_ABORT], parse_abort, r) ||
	    sub(d, "healthCheck", f[SPEC_HEALTH], parse_health, &r->health) ||
	    sub(d, "notifications", f[SPEC_NOTIFICATIONS], parse_notifications, r))
		return -1;
	r->affinity = (enum canary_affinity)affinity;
	return 0;
}

static int expect_literal(struct doc *d, const struct ynode *n, const char *key, const char *want)
{
	const char *s;

	if (!n)
		return 0;
	if (get_string(d, n, key, &s))
		return -1;
	if (strcmp(s, want) != 0)
		return fail(d, &n->mark, key, "unsupported %s \"%s\" (expected %s)", key, s, want);
	return 0;
}

enum { TOP_API_VERSION, TOP_KIND, TOP_METADATA, TOP_SPEC, TOP_N };

static int parse_rollout(struct doc *d, const struct ynode *n, struct rollout_cfg *r)
{
	static const char *const names[TOP_N] = { "apiVersion", "kind", "metadata", "spec" };
	const struct ynode *f[TOP_N];

	if (want(d, n, Y_MAP))
		return -1;
	/* These two first, so another tool's document is called that, not unknown fields. */
	if (expect_literal(d, find_value(n, "apiVersion"), "apiVersion", API_VERSION) ||
	    expect_literal(d, find_value(n, "kind"), "kind", KIND) ||
	    map_fields(d, n, names, TOP_N, BIT(TOP_N) - 1, f))
		return -1;
	if (sub(d, "metadata", f[TOP_METADATA], parse_metadata, r))
		return -1;
	return sub(d, "spec", f[TOP_SPEC], parse_spec, r);
}

static void rollout_defaults(struct rollout_cfg *r, const char *file, const yaml_mark_t *start)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->origin, sizeof(r->origin), "%s:%zu:%zu", file, start->line + 1,
		 start->column + 1);
	r->affinity = CANARY_AFFINITY_NONE;
	r->analysis.interval_ms = 1000;
	r->analysis.min_requests = 50;
	r->analysis.failure_limit = 1;
	r->analysis.confidence = 0.99;
	r->progress_deadline_ms = CONFIG_DEFAULT_PROGRESS_DEADLINE_MS;
	r->abort_connections = ABORT_CONNECTIONS_RESET;
	r->health.interval_ms = 1000;
	r->health.timeout_ms = 200;
	r->health.failure_threshold = 2;
}

/* Names and services are keys for the agent and the data path: each must be unique. */
static int check_unique(struct doc *d, const struct rollout_cfg *r)
{
	const struct canary_service_key *k = &r->service.key;
	char ep[32];
	size_t i;

	for (i = 0; i < d->ld->n; i++)
		if (!strcmp(d->ld->v[i].name, r->name))
			return fail(d, &d->name_node->mark, "metadata.name",
				    "duplicate rollout name \"%s\" (first defined at %s)", r->name,
				    d->ld->v[i].origin);
	for (i = 0; i < d->ld->n; i++) {
		const struct canary_service_key *o = &d->ld->v[i].service.key;

		if (o->vip == k->vip && o->port == k->port && o->proto == k->proto)
			return fail(d, &d->service_node->mark, "spec.service",
				    "%s/%s is already the service of rollout \"%s\" (%s)",
				    format_endpoint(k->vip, k->port, ep, sizeof(ep)),
				    k->proto == IPPROTO_UDP ? "udp" : "tcp", d->ld->v[i].name,
				    d->ld->v[i].origin);
	}
	return 0;
}

static int loader_reserve(struct loader *ld)
{
	struct rollout_cfg *v;
	size_t cap;

	if (ld->n < ld->cap)
		return 0;
	cap = ld->cap ? ld->cap * 2 : 4;
	v = realloc(ld->v, cap * sizeof(*v));
	if (!v)
		return -1;
	ld->v = v;
	ld->cap = cap;
	return 0;
}

static int load_document(struct loader *ld, const char *file, const struct ynode *root,
			 const yaml_mark_t *start)
{
	struct doc d = { .ld = ld, .file = file };
	struct rollout_cfg *r;

	/* An empty document, e.g. after a trailing "---", as kubectl allows. */
	if (!root || (root->kind == Y_SCALAR && root->null))
		return 0;
	if (ld->n == MAX_ROLLOUTS)
		return fail(&d, start, NULL, "more than %d rollouts", MAX_ROLLOUTS);
	if (loader_reserve(ld))
		return fail(&d, start, NULL, "out of memory");
	r = &ld->v[ld->n];
	rollout_defaults(r, file, start);
	if (parse_rollout(&d, root, r) || check_unique(&d, r))
		return -1;
	ld->n++;
	return 0;
}

static int parse_stream(struct loader *ld, const char *file, const char *buf, size_t len)
{
	struct stream s = { .ld = ld, .file = file, .buf = buf, .len = len };
	yaml_mark_t start = { 0 };
	struct ynode *root = NULL;
	int rc;

	if (len > MAX_FILE_SIZE)
		return file_fail(ld, file, "larger than 1 MiB (%zu bytes)", len);
	if (!yaml_parser_initialize(&s.parser))
		return file_fail(ld, file, "out of memory");
	yaml_parser_set_input_string(&s.parser, (const unsigned char *)buf, len);
	while ((rc = read_document(&s, &root, &start)) > 0) {
		rc = load_document(ld, file, root, &start);
		node_free(root);
		if (rc)
			break;
	}
	yaml_parser_delete(&s.parser);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Files and directories */

/* Reads one byte past the limit to tell "exactly 1 MiB" from "larger". */
static int load_file(struct loader *ld, const char *path, int fd)
{
	char *buf = malloc(MAX_FILE_SIZE + 1);
	size_t got = 0;
	int rc;

	if (!buf)
		return file_fail(ld, path, "out of memory");
	while (got <= MAX_FILE_SIZE) {
		ssize_t k = read(fd, buf + got, MAX_FILE_SIZE + 1 - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			file_fail(ld, path, "cannot read: %s", strerror(errno));
			free(buf);
			return -1;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	if (got > MAX_FILE_SIZE)
		rc = file_fail(ld, path, "larger than 1 MiB");
	else
		rc = parse_stream(ld, path, buf, got);
	free(buf);
	return rc;
}

/* *.yaml and *.yml; hidden names are skipped, which covers Kubernetes' "..data". */
static bool wanted_name(const char *name)
{
	size_t len = strlen(name);

	if (name[0] == '.')
		return false;
	return (len > 5 && !strcmp(name + len - 5, ".yaml")) ||
	       (len > 4 && !strcmp(name + len - 4, ".yml"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
	while (n)
		free(names[--n]);
	free(names);
}

static int add_name(char ***names, size_t *n, const char *name)
{
	char **grown = realloc(*names, (*n + 1) * sizeof(**names));

	if (!grown)
		return -1;
	*names = grown;
	grown[*n] = strdup(name);
	if (!grown[*n])
		return -1;
	(*n)++;
	return 0;
}

/* Takes dir (closing it) and collects the wanted names, sorted. */
static int list_dir(struct loader *ld, const char *path, DIR *dir, char ***out, size_t *count)
{
	char **names = NULL;
	size_t n = 0;
	int rc = 0;

	while (!rc) {
		struct dirent *de;

		errno = 0; /* readdir's only way to tell the end from an error */
		de = readdir(dir);
		if (!de) {
			if (errno)
				rc = file_fail(ld, path, "cannot read directory: %s",
					       strerror(errno));
			break;
		}
		if (!wanted_name(de->d_name))
			continue;
		if (n == MAX_FILES)
			rc = file_fail(ld, path, "more than %d configuration files", MAX_FILES);
		else if (add_name(&names, &n, de->d_name))
			rc = file_fail(ld, path, "out of memory");
	}
	closedir(dir);
	if (rc) {
		free_names(names, n);
		return -1;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	*count = n;
	return 0;
}

static int load_path(struct loader *ld, const char *path, bool top);

/* Takes fd. Only the top directory is read: subdirectories are skipped. */
static int load_dir(struct loader *ld, const char *path, int fd)
{
	DIR *dir = fdopendir(fd);
	const char *sep = path[0] && path[strlen(path) - 1] == '/' ? "" : "/";
	char **names, *full;
	size_t n, i;
	int rc = 0;

	if (!dir) {
		file_fail(ld, path, "cannot read directory: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (list_dir(ld, path, dir, &names, &n))
		return -1;
	for (i = 0; i < n && !rc; i++) {
		if (asprintf(&full, "%s%s%s", path, sep, names[i]) < 0)
			rc = file_fail(ld, path, "out of memory");
		else {
			rc = load_path(ld, full, false);
			free(full);
		}
	}
	free_names(names, n);
	return rc;
}

/* Symlinks are followed; O_NONBLOCK so a stray FIFO cannot hang the open. */
static int load_path(struct loader *ld, const char *path, bool top)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	int rc;

	if (fd < 0)
		return file_fail(ld, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st)) {
		file_fail(ld, path, "cannot stat: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (top && S_ISDIR(st.st_mode))
		return load_dir(ld, path, fd);
	if (S_ISREG(st.st_mode))
		rc = load_file(ld, path, fd);
	else
		rc = top ? file_fail(ld, path, "not a regular file or a directory") : 0;
	close(fd);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* API */

static int finish(struct loader *ld, int rc, struct config *out, char *err, size_t errlen)
{
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "%s", ld->err[0] ? ld->err : "invalid configuration");
		free(ld->v);
		return -1;
	}
	if (!ld->n) {
		free(ld->v);
		ld->v = NULL;
	}
	out->rollouts = ld->v;
	out->n_rollouts = ld->n;
	return 0;
}

int config_load(const char *path, struct config *out, char *err, size_t errlen)
{
	struct loader ld = { 0 };

	return finish(&ld, load_path(&ld, path, true), out, err, errlen);
}

int config_parse_buffer(const char *name, const char *buf, size_t len, struct config *out,
			char *err, size_t errlen)
{
	struct loader ld = { 0 };

	if (!buf)
		buf = len ? NULL : "";
	if (!buf)
		return finish(&ld, file_fail(&ld, name ? name : "(buffer)", "no data"), out, err,
			      errlen);
	return finish(&ld, parse_stream(&ld, name ? name : "(buffer)", buf, len), out, err, errlen);
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->rollouts);
	cfg->rollouts = NULL;
	cfg->n_rollouts = 0;
}
