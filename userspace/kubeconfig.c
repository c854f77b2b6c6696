// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubeconfig.h"
#include "yamltree.h"

#define MAX_KUBECONFIG (1 << 20)

static const struct ynode *map_get(const struct ynode *m, const char *key)
{
	size_t i;

	if (!m || m->kind != Y_MAP)
		return NULL;
	for (i = 0; i + 1 < m->n; i += 2)
		if (m->items[i]->kind == Y_SCALAR && !strcmp(m->items[i]->text, key))
			return m->items[i + 1];
	return NULL;
}

static const char *scalar(const struct ynode *n)
{
	return n && n->kind == Y_SCALAR && !n->null ? n->text : NULL;
}

/* In list (clusters, contexts, users): the item called name, its `what` mapping. */
static const struct ynode *named(const struct ynode *root, const char *list, const char *name,
				 const char *what)
{
	const struct ynode *l = map_get(root, list);
	size_t i;

	if (!name || !l || l->kind != Y_SEQ)
		return NULL;
	for (i = 0; i < l->n; i++) {
		const char *n = scalar(map_get(l->items[i], "name"));

		if (n && !strcmp(n, name))
			return map_get(l->items[i], what);
	}
	return NULL;
}

static int from_tree(const struct ynode *root, struct kube_client *c, char *err, size_t errlen)
{
	const struct ynode *ctx =
		named(root, "contexts", scalar(map_get(root, "current-context")), "context");
	const struct ynode *cl =
		named(root, "clusters", scalar(map_get(ctx, "cluster")), "cluster");
	const struct ynode *user = named(root, "users", scalar(map_get(ctx, "user")), "user");
	const char *token = scalar(map_get(user, "token"));
	int e;

	if (!ctx || !cl || !scalar(map_get(cl, "server"))) {
		snprintf(err, errlen, "no current context with a cluster and its server");
		return -EINVAL;
	}
	e = kube_client_init(c, scalar(map_get(cl, "server")), scalar(map_get(user, "tokenFile")),
			     scalar(map_get(cl, "certificate-authority")));
	if (!e && token && strlen(token) >= sizeof(c->token))
		e = -EINVAL;
	if (e) {
		kube_client_close(c);
		snprintf(err, errlen, "server, token or CA path not usable");
		return e;
	}
	if (token && !c->token_file[0])
		snprintf(c->token, sizeof(c->token), "%s", token);
	return 0;
}

int kubeconfig_parse(const char *file, const char *text, size_t len, struct kube_client *c,
		     char *err, size_t errlen)
{
	struct ystream *s;
	struct ynode *root = NULL;
	struct ypos start;
	int r;

	if (ystream_open(&s, file, text, len, err, errlen))
		return -EINVAL;
	r = ystream_next(s, &root, &start);
	ystream_close(s);
	if (r != 1 || !root) {
		if (r == 0 || !root)
			snprintf(err, errlen, "%s: empty", file);
		ynode_free(root);
		return -EINVAL;
	}
	r = from_tree(root, c, err, errlen);
	ynode_free(root);
	return r;
}

int kubeconfig_load(const char *path, struct kube_client *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;
	int r;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	buf = malloc(MAX_KUBECONFIG);
	n = buf ? fread(buf, 1, MAX_KUBECONFIG, f) : 0;
	fclose(f);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	r = n < MAX_KUBECONFIG ? kubeconfig_parse(path, buf, n, c, err, errlen) : -EFBIG;
	if (r == -EFBIG)
		snprintf(err, errlen, "%s: larger than 1 MiB", path);
	free(buf);
	return r;
}
