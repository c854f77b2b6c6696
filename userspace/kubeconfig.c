// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "kubeconfig.h"
#include "yamltree.h"

#define KUBECONFIG_MAX_SIZE ((size_t)1024 * 1024)

static int __attribute__((format(printf, 4, 5)))
kfail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	/* clang-analyzer 14 misses this va_start too (see canaryd.c's die_usage). */
	vsnprintf(msg, sizeof(msg), fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	snprintf(err, errlen, "%s: %s", path, msg);
	return -1;
}

static const struct ynode *value(const struct ynode *map, const char *key)
{
	size_t i;

	if (!map || map->kind != Y_MAP)
		return NULL;
	for (i = 0; i + 1 < map->n; i += 2)
		if (map->items[i]->text && !strcmp(map->items[i]->text, key))
			return map->items[i + 1];
	return NULL;
}

static const char *text(const struct ynode *map, const char *key)
{
	const struct ynode *n = value(map, key);

	return n && n->kind == Y_SCALAR && !n->null ? n->text : NULL;
}

/* The item of list (clusters, users, contexts) whose name is name: its inner map. */
static const struct ynode *named(const struct ynode *root, const char *list, const char *inner,
				 const char *name)
{
	const struct ynode *seq = value(root, list);
	size_t i;

	if (!seq || seq->kind != Y_SEQ || !name)
		return NULL;
	for (i = 0; i < seq->n; i++) {
		const char *n = text(seq->items[i], "name");

		if (n && !strcmp(n, name))
			return value(seq->items[i], inner);
	}
	return NULL;
}

/* A relative file is relative to the kubeconfig's directory, as kubectl reads it. */
static int file_field(char *dst, size_t size, const char *kpath, const char *file)
{
	const char *slash = strrchr(kpath, '/');
	int n;

	if (file[0] == '/' || !slash)
		n = snprintf(dst, size, "%s", file);
	else
		n = snprintf(dst, size, "%.*s/%s", (int)(slash - kpath), kpath, file);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* A *-data field: base64 of PEM text, decoded into dst. 0, or -1 with err. */
static int data_field(char *dst, size_t size, const char *path, const char *field, const char *b64,
		      char *err, size_t errlen)
{
	size_t len = 0;
	char *pem = NULL;
	int rc = base64_decode(b64, &pem, &len);

	if (rc == -ENOMEM)
		return kfail(err, errlen, path, "%s: out of memory", field);
	if (rc || !len || strlen(pem) != len || !strstr(pem, "-----BEGIN ")) {
		free(pem);
		return kfail(err, errlen, path, "%s: not base64 of PEM text", field);
	}
	if (len >= size) {
		free(pem);
		return kfail(err, errlen, path, "%s: longer than %zu bytes", field, size - 1);
	}
	memcpy(dst, pem, len + 1);
	free(pem);
	return 0;
}

static int read_cluster(const struct ynode *cl, const char *path, struct kube_conn *out, char *err,
			size_t errlen)
{
	const char *server = text(cl, "server"), *ca = text(cl, "certificate-authority");
	const char *ca_data = text(cl, "certificate-authority-data");

	if (!server || strncmp(server, "http", 4) != 0 || strlen(server) >= sizeof(out->server))
		return kfail(err, errlen, path, "cluster.server: missing or not an http(s) URL");
	snprintf(out->server, sizeof(out->server), "%s", server);
	if (value(cl, "insecure-skip-tls-verify"))
		return kfail(err, errlen, path,
			     "cluster.insecure-skip-tls-verify: not supported; give "
			     "certificate-authority or certificate-authority-data");
	if (ca && ca_data)
		return kfail(err, errlen, path,
			     "cluster: certificate-authority and certificate-authority-data both "
			     "given; keep one");
	if (ca && file_field(out->ca_file, sizeof(out->ca_file), path, ca))
		return kfail(err, errlen, path, "cluster.certificate-authority: path too long");
	if (ca_data)
		return data_field(out->tls.ca_pem, sizeof(out->tls.ca_pem), path,
				  "cluster.certificate-authority-data", ca_data, err, errlen);
	return 0;
}

/* A client certificate and its key: both, each as a file or as data. */
static int read_client_cert(const struct ynode *u, const char *path, struct kube_conn *out,
			    char *err, size_t errlen)
{
	const char *cert = text(u, "client-certificate"), *key = text(u, "client-key");
	const char *cert_data = text(u, "client-certificate-data");
	const char *key_data = text(u, "client-key-data");
	struct kube_tls *t = &out->tls;

	if ((cert && cert_data) || (key && key_data))
		return kfail(err, errlen, path,
			     "user: a client certificate or key given both as a file and as data");
	if (!(cert || cert_data) != !(key || key_data))
		return kfail(err, errlen, path,
			     "user: client-certificate and client-key go together (each as a file "
			     "or as *-data)");
	if (cert && file_field(t->cert_file, sizeof(t->cert_file), path, cert))
		return kfail(err, errlen, path, "user.client-certificate: path too long");
	if (key && file_field(t->key_file, sizeof(t->key_file), path, key))
		return kfail(err, errlen, path, "user.client-key: path too long");
	if (cert_data && data_field(t->cert_pem, sizeof(t->cert_pem), path,
				    "user.client-certificate-data", cert_data, err, errlen))
		return -1;
	if (key_data && data_field(t->key_pem, sizeof(t->key_pem), path, "user.client-key-data",
				   key_data, err, errlen))
		return -1;
	return 0;
}

/* "NAME=value" of one item of user.exec.env ({name, value}). */
static int exec_env_item(const struct ynode *item, char *dst, const char *path, char *err,
			 size_t errlen)
{
	const char *name = text(item, "name"), *val = text(item, "value");
	int n;

	if (!name || !*name || strchr(name, '=') || !val)
		return kfail(err, errlen, path, "user.exec.env: each item needs name and value");
	n = snprintf(dst, KUBE_EXEC_ARG_LEN, "%s=%s", name, val);
	if (n < 0 || n >= KUBE_EXEC_ARG_LEN)
		return kfail(err, errlen, path, "user.exec.env: %s: longer than %d bytes", name,
			     KUBE_EXEC_ARG_LEN - 1);
	return 0;
}

/* user.exec.args: a list of strings, each kept whole. */
static int exec_args(const struct ynode *seq, struct kube_exec *x, const char *path, char *err,
		     size_t errlen)
{
	size_t i;

	if (!seq)
		return 0;
	if (seq->kind != Y_SEQ || seq->n > KUBE_EXEC_MAX_ARGS)
		return kfail(err, errlen, path, "user.exec.args: a list of at most %d strings",
			     KUBE_EXEC_MAX_ARGS);
	for (i = 0; i < seq->n; i++) {
		const struct ynode *a = seq->items[i];

		if (a->kind != Y_SCALAR || a->null || strlen(a->text) >= KUBE_EXEC_ARG_LEN)
			return kfail(err, errlen, path,
				     "user.exec.args[%zu]: a string of at most %d bytes", i,
				     KUBE_EXEC_ARG_LEN - 1);
		snprintf(x->args[i], KUBE_EXEC_ARG_LEN, "%s", a->text);
	}
	x->n_args = seq->n;
	return 0;
}

/*
 * user.exec: the plugin kubectl runs for a token (EKS, GKE, AKS, OIDC
 * logins). Only read here; kube_exec_credential() runs it.
 */
static int read_exec(const struct ynode *e, const char *path, struct kube_exec *x, char *err,
		     size_t errlen)
{
	static const char *const versions[] = { "client.authentication.k8s.io/v1",
						"client.authentication.k8s.io/v1beta1" };
	const char *cmd = text(e, "command"), *ver = text(e, "apiVersion");
	const struct ynode *env = value(e, "env");
	bool relative;
	size_t i;

	if (!cmd || !*cmd)
		return kfail(err, errlen, path, "user.exec.command: missing");
	for (i = 0; ver && i < sizeof(versions) / sizeof(versions[0]); i++)
		if (!strcmp(ver, versions[i]))
			break;
	if (!ver || i == sizeof(versions) / sizeof(versions[0]))
		return kfail(err, errlen, path,
			     "user.exec.apiVersion: \"%s\": give client.authentication.k8s.io/v1 "
			     "or v1beta1",
			     ver ? ver : "");
	snprintf(x->api_version, sizeof(x->api_version), "%s", ver);
	/* client-go: a command with a path separator is relative to the kubeconfig. */
	relative = strchr(cmd, '/') != NULL;
	if (!strncmp(cmd, "./", 2))
		cmd += 2; /* "dir/x", not "dir/./x", in messages */
	if (relative ?
		    file_field(x->command, sizeof(x->command), path, cmd) :
		    snprintf(x->command, sizeof(x->command), "%s", cmd) >= (int)sizeof(x->command))
		return kfail(err, errlen, path, "user.exec.command: too long");
	if (exec_args(value(e, "args"), x, path, err, errlen))
		return -1;
	if (env && (env->kind != Y_SEQ || env->n > KUBE_EXEC_MAX_ENV))
		return kfail(err, errlen, path, "user.exec.env: a list of at most %d items",
			     KUBE_EXEC_MAX_ENV);
	for (i = 0; env && i < env->n; i++)
		if (exec_env_item(env->items[i], x->env[i], path, err, errlen))
			return -1;
	x->n_env = env ? env->n : 0;
	return 0;
}

static int read_user(const struct ynode *u, const char *path, struct kube_conn *out, char *err,
		     size_t errlen)
{
	static const char *const refused[] = { "auth-provider", "username", "password" };
	const char *token = text(u, "token"), *file = text(u, "tokenFile");
	size_t i;

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (value(u, refused[i]))
			return kfail(err, errlen, path,
				     "user.%s: not supported; give a bearer token (token or "
				     "tokenFile), a client certificate and key, or exec",
				     refused[i]);
	if (value(u, "exec") && read_exec(value(u, "exec"), path, &out->exec, err, errlen))
		return -1;
	if (token && strlen(token) >= sizeof(out->token))
		return kfail(err, errlen, path, "user.token: too long");
	if (token)
		snprintf(out->token, sizeof(out->token), "%s", token);
	if (file && file_field(out->token_file, sizeof(out->token_file), path, file))
		return kfail(err, errlen, path, "user.tokenFile: path too long");
	if (read_client_cert(u, path, out, err, errlen))
		return -1;
	if (!token && !file && !out->tls.cert_file[0] && !out->tls.cert_pem[0] &&
	    !out->exec.command[0])
		return kfail(err, errlen, path,
			     "user: needs token or tokenFile, client-certificate and client-key, "
			     "or exec");
	return 0;
}

static int read_context(const struct ynode *root, const char *path, struct kube_conn *out,
			char *err, size_t errlen)
{
	const char *cur = text(root, "current-context");
	const struct ynode *ctx = named(root, "contexts", "context", cur), *cl, *u;
	const char *ns;

	if (!ctx)
		return kfail(err, errlen, path, "current-context: missing or names no context");
	cl = named(root, "clusters", "cluster", text(ctx, "cluster"));
	if (!cl)
		return kfail(err, errlen, path, "context.cluster: names no cluster");
	u = named(root, "users", "user", text(ctx, "user"));
	if (!u)
		return kfail(err, errlen, path, "context.user: names no user");
	ns = text(ctx, "namespace");
	if (ns && strlen(ns) < sizeof(out->ns))
		snprintf(out->ns, sizeof(out->ns), "%s", ns);
	if (read_cluster(cl, path, out, err, errlen))
		return -1;
	return read_user(u, path, out, err, errlen);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf;

	if (!f)
		return NULL;
	buf = malloc(KUBECONFIG_MAX_SIZE + 1);
	if (buf)
		*len = fread(buf, 1, KUBECONFIG_MAX_SIZE + 1, f);
	fclose(f);
	return buf;
}

int kubeconfig_load(const char *path, struct kube_conn *out, char *err, size_t errlen)
{
	struct ypos start = { 0 };
	struct ynode *root = NULL;
	struct ystream *s;
	size_t len = 0;
	char *buf;
	int rc;

	memset(out, 0, sizeof(*out));
	buf = slurp(path, &len);
	if (!buf)
		return kfail(err, errlen, path, "cannot read: %s", strerror(errno));
	if (len > KUBECONFIG_MAX_SIZE) {
		free(buf);
		return kfail(err, errlen, path, "larger than 1 MiB");
	}
	if (ystream_open(&s, path, buf, len, err, errlen)) {
		free(buf);
		return -1;
	}
	rc = ystream_next(s, &root, &start);
	if (rc > 0)
		rc = read_context(root, path, out, err, errlen);
	else if (rc == 0)
		rc = kfail(err, errlen, path, "empty");
	ynode_free(root);
	ystream_close(s);
	free(buf);
	return rc;
}

int kube_conn_in_cluster(struct kube_conn *out, const char *sa_dir, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char nsfile[PATH_MAX];
	FILE *f;

	memset(out, 0, sizeof(*out));
	if (!host || !*host || !port || !*port) {
		snprintf(err, errlen,
			 "not in a pod (no KUBERNETES_SERVICE_HOST/PORT): give --kubeconfig FILE");
		return -1;
	}
	/* An IPv6 service address needs brackets in a URL. */
	snprintf(out->server, sizeof(out->server),
		 strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
	snprintf(out->token_file, sizeof(out->token_file), "%s/token", sa_dir);
	snprintf(out->ca_file, sizeof(out->ca_file), "%s/ca.crt", sa_dir);
	snprintf(nsfile, sizeof(nsfile), "%s/namespace", sa_dir);
	f = fopen(nsfile, "re");
	if (f) {
		if (fgets(out->ns, sizeof(out->ns), f))
			out->ns[strcspn(out->ns, "\n")] = '\0';
		fclose(f);
	}
	return 0;
}

int kube_conn_client(const struct kube_conn *k, struct kube_client *c)
{
	int err = kube_client_init(c, k->server, k->token_file[0] ? k->token_file : NULL,
				   k->ca_file[0] ? k->ca_file : NULL);

	if (!err && !k->token_file[0])
		snprintf(c->token, sizeof(c->token), "%s", k->token);
	if (!err)
		c->tls = k->tls;
	return err;
}
