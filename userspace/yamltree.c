// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libyaml's events to a bounded tree, one document at a time (yamltree.h).
 * A tree, rather than a schema walking the events, lets a field be checked
 * against its siblings whatever order they come in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "yamltree.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* libyaml's marks and ours are both 0-based. */
static struct ypos pos_of(const yaml_mark_t *m)
{
	return (struct ypos){ .index = m->index, .line = m->line, .column = m->column };
}

int yfail_at(char *err, size_t errlen, const char *file, const struct ypos *m, const char *path,
	     const char *fmt, va_list ap)
{
	int k = snprintf(err, errlen, "%s:%zu:%zu: %s: ", file, m->line + 1, m->column + 1,
			 *path ? path : "(document)");

	/* ap is started by the caller; clang-analyzer 14 cannot follow it. */
	if (k > 0 && (size_t)k < errlen)
		// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
		vsnprintf(err + k, errlen - k, fmt, ap);
	return -1;
}

int yfail_file(char *err, size_t errlen, const char *file, const char *fmt, ...)
{
	va_list ap;
	int k = snprintf(err, errlen, "%s: ", file);

	va_start(ap, fmt);
	if (k > 0 && (size_t)k < errlen)
		// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
		vsnprintf(err + k, errlen - k, fmt, ap);
	va_end(ap);
	return -1;
}

struct builder {
	char *err;
	size_t errlen;
	const char *file;
	struct ynode *root; /* owns every node, so one free undoes a half-built tree */
	struct ynode *stack[YTREE_MAX_DEPTH];
	int depth;
	size_t nodes;
};

void ynode_free(struct ynode *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->n; i++)
		ynode_free(n->items[i]);
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

static int build_fail(struct builder *b, const struct ypos *m, const char *fmt, ...)
{
	char path[160];
	va_list ap;

	builder_path(b, path, sizeof(path));
	va_start(ap, fmt);
	yfail_at(b->err, b->errlen, b->file, m, path, fmt, ap);
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
		struct ypos m = n->mark;

		ynode_free(n);
		return build_fail(b, &m, "mapping keys must be strings");
	}
	if (parent->kind == Y_MAP && parent->n % 2)
		n->key = parent->items[parent->n - 1];
	if (node_append(parent, n)) {
		ynode_free(n);
		return build_fail(b, &parent->mark, "out of memory");
	}
	return 0;
}

static struct ynode *node_new(struct builder *b, enum ykind kind, const struct ypos *m)
{
	struct ynode *n;

	if (++b->nodes > YTREE_MAX_NODES) {
		build_fail(b, m, "document too large (more than %d YAML nodes)", YTREE_MAX_NODES);
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
static int check_tag(struct builder *b, const yaml_char_t *tag, const struct ypos *m)
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
	struct ypos at = pos_of(&ev->start_mark);
	struct ynode *n;

	if (check_tag(b, tag, &at))
		return -1;
	/* "\0" is legal YAML but would silently cut every C string we hand on. */
	if (memchr(ev->data.scalar.value, '\0', len))
		return build_fail(b, &at, "NUL character in a string");
	n = node_new(b, Y_SCALAR, &at);
	if (!n)
		return -1;
	n->text = malloc(len + 1);
	if (!n->text) {
		ynode_free(n);
		return build_fail(b, &at, "out of memory");
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
	struct ypos at = pos_of(&ev->start_mark);
	struct ynode *n;

	if (check_tag(b, tag, &at))
		return -1;
	if (b->depth == YTREE_MAX_DEPTH)
		return build_fail(b, &at, "nesting deeper than %d levels", YTREE_MAX_DEPTH);
	n = node_new(b, kind, &at);
	if (!n || builder_add(b, n))
		return -1;
	b->stack[b->depth++] = n;
	return 0;
}

/* Adds one event to the tree. Returns 1 once the document is complete. */
static int build_event(struct builder *b, const yaml_event_t *ev)
{
	struct ypos at = pos_of(&ev->start_mark);

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
		return build_fail(b, &at, "aliases (*%s) are not supported",
				  (const char *)ev->data.alias.anchor);
	case YAML_DOCUMENT_END_EVENT:
		return 1;
	default:
		return 0;
	}
}

struct ystream {
	char *err;
	size_t errlen;
	const char *file;
	const char *buf;
	size_t len;
	yaml_parser_t parser;
};

/* Reader errors (bad UTF-8, control characters) come with a byte offset only. */
static struct ypos pos_at(const char *buf, size_t len, size_t offset)
{
	struct ypos m = { .index = offset };
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
static int yaml_fail(struct ystream *s, struct builder *b)
{
	const yaml_parser_t *p = &s->parser;
	struct ypos m = pos_of(&p->problem_mark);
	const char *problem = p->problem ? p->problem : "invalid YAML";

	if (p->error == YAML_MEMORY_ERROR)
		return yfail_file(s->err, s->errlen, s->file, "out of memory");
	if (p->error == YAML_READER_ERROR) {
		m = pos_at(s->buf, s->len, p->problem_offset);
		if (p->problem_value != -1)
			return build_fail(b, &m, "%s (byte 0x%02x)", problem, p->problem_value);
	}
	if (p->context)
		return build_fail(b, &m, "%s (%s at %zu:%zu)", problem, p->context,
				  p->context_mark.line + 1, p->context_mark.column + 1);
	return build_fail(b, &m, "%s", problem);
}

/* The partial tree of a failed document is freed. */
int ystream_next(struct ystream *s, struct ynode **root, struct ypos *start)
{
	struct builder b = { .err = s->err, .errlen = s->errlen, .file = s->file };
	yaml_event_t ev;
	int rc = 0;

	while (!rc) {
		if (!yaml_parser_parse(&s->parser, &ev)) {
			rc = yaml_fail(s, &b);
			break;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			/* Always NULL (a tree ends with its document), but say so. */
			ynode_free(b.root);
			yaml_event_delete(&ev);
			return 0;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT)
			*start = pos_of(&ev.start_mark);
		rc = build_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	if (rc < 0) {
		ynode_free(b.root);
		return -1;
	}
	*root = b.root;
	return 1;
}

int ystream_open(struct ystream **out, const char *file, const char *buf, size_t len, char *err,
		 size_t errlen)
{
	struct ystream *s = calloc(1, sizeof(*s));

	if (!s)
		return yfail_file(err, errlen, file, "out of memory");
	if (!yaml_parser_initialize(&s->parser)) {
		free(s);
		return yfail_file(err, errlen, file, "out of memory");
	}
	s->err = err;
	s->errlen = errlen;
	s->file = file;
	s->buf = buf;
	s->len = len;
	yaml_parser_set_input_string(&s->parser, (const unsigned char *)buf, len);
	*out = s;
	return 0;
}

void ystream_close(struct ystream *s)
{
	if (!s)
		return;
	yaml_parser_delete(&s->parser);
	free(s);
}
