/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A YAML stream as one small tree per document, built from libyaml's
 * events. Generic: it knows nothing of Rollouts. The tree is bounded in
 * depth and node count so that a hostile file cannot make us allocate much,
 * aliases are refused for the same reason, and every node keeps its
 * position so that a schema can point its messages at it.
 *
 * Errors are written as "file:line:column: path: what" (see yfail_at) into
 * the caller's buffer.
 */
#ifndef CANARY_YAMLTREE_H
#define CANARY_YAMLTREE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define YTREE_MAX_DEPTH 16
#define YTREE_MAX_NODES 8192 /* per document; a rollout with every list full needs under 1000 */

/* A position in the text, 0-based as libyaml counts; messages add 1. */
struct ypos {
	size_t index; /* byte offset, to tell which of two nodes comes first */
	size_t line;
	size_t column;
};

enum ykind {
	Y_SCALAR,
	Y_SEQ,
	Y_MAP,
};

struct ynode {
	enum ykind kind;
	bool quoted; /* quoted or !!str: a string even when it looks like a number */
	bool null;
	struct ypos mark;
	const struct ynode *key; /* a mapping value's key, to point messages at it */
	char *text;		 /* scalars only, NUL-terminated */
	struct ynode **items;	 /* sequence items; mapping keys and values, alternating */
	size_t n, cap;
};

struct ystream;

/*
 * Starts reading buf (len bytes, not copied: it must outlive the stream).
 * file names the text in messages; err receives them. Returns 0, or -1 with
 * err set.
 */
int ystream_open(struct ystream **out, const char *file, const char *buf, size_t len, char *err,
		 size_t errlen);
/*
 * Reads the next document's tree into *root (NULL for an empty document)
 * and where the document starts into *start. Returns 1 with a document, 0
 * at the end of the stream, -1 on error (err set, nothing to free).
 */
int ystream_next(struct ystream *s, struct ynode **root, struct ypos *start);
void ystream_close(struct ystream *s);

void ynode_free(struct ynode *n);

/* "file:line:column: path: " then the message into err; returns -1. */
int yfail_at(char *err, size_t errlen, const char *file, const struct ypos *m, const char *path,
	     const char *fmt, va_list ap);
/* "file: " then the message: for problems of a whole file; returns -1. */
int yfail_file(char *err, size_t errlen, const char *file, const char *fmt, ...);

#endif /* CANARY_YAMLTREE_H */
