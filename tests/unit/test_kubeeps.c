// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Endpoints from Kubernetes Services: which endpoints become backends
 * (ready IPv4 ones, 16 at most), which drain (terminating and still
 * serving), and what of a kubeconfig the agent reads
 * and what it refuses, with the field named.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kubeconfig.h"
#include "kubeeps.h"

static void test_ready_only(void **state)
{
	const struct kube_backend b[] = {
		{ "10.0.1.11", 8080, KUBE_EP_READY, true },
		{ "10.0.1.12", 8080, KUBE_EP_TERMINATING, true },
		{ "10.0.1.13", 8080, KUBE_EP_NOT_READY, false },
		{ "fd00::1", 8080, KUBE_EP_READY, true },
		{ "10.0.1.14", 8081, KUBE_EP_READY, true },
	};
	struct canary_backend out[CANARY_MAX_BACKENDS];
	int skipped = -1, n;

	(void)state;
	n = kubeeps_backends(b, 5, KUBEEPS_READY, out, CANARY_MAX_BACKENDS, &skipped);
	assert_int_equal(n, 2);
	assert_int_equal(skipped, 1); /* the IPv6 one */
	assert_int_equal(out[0].addr, inet_addr("10.0.1.11"));
	assert_int_equal(out[0].port, htons(8080));
	assert_int_equal(out[0].pad, 0);
	assert_int_equal(out[1].addr, inet_addr("10.0.1.14"));
	assert_int_equal(out[1].port, htons(8081));
	/* Nothing ready: nothing, which the watcher never programs. */
	assert_int_equal(
		kubeeps_backends(b + 1, 2, KUBEEPS_READY, out, CANARY_MAX_BACKENDS, &skipped), 0);
	assert_int_equal(skipped, 0);
}

static void test_ready_at_most_max(void **state)
{
	struct kube_backend b[20] = { 0 };
	struct canary_backend out[CANARY_MAX_BACKENDS];
	int i, skipped;

	(void)state;
	for (i = 0; i < 20; i++) {
		snprintf(b[i].addr, sizeof(b[i].addr), "10.0.2.%d", i + 1);
		b[i].port = 80;
		b[i].state = KUBE_EP_READY;
	}
	assert_int_equal(kubeeps_backends(b, 20, KUBEEPS_READY, out, CANARY_MAX_BACKENDS, &skipped),
			 CANARY_MAX_BACKENDS);
	assert_int_equal(skipped, 4);
	assert_int_equal(out[15].addr, inet_addr("10.0.2.16"));
}

/* Ready: new connections; terminating and serving: drains; anything else: left out. */
static void test_roles(void **state)
{
	static const struct {
		enum kube_ep_state state;
		bool serving;
		enum kubeeps_role role;
	} cases[] = {
		{ KUBE_EP_READY, true, KUBEEPS_READY },
		/* ready wins: serving false on a ready endpoint is a writer's slip */
		{ KUBE_EP_READY, false, KUBEEPS_READY },
		{ KUBE_EP_TERMINATING, true, KUBEEPS_DRAINING },
		{ KUBE_EP_TERMINATING, false, KUBEEPS_LEFT },
		{ KUBE_EP_NOT_READY, true, KUBEEPS_LEFT },
		{ KUBE_EP_NOT_READY, false, KUBEEPS_LEFT },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kube_backend b = { "10.0.1.11", 80, cases[i].state, cases[i].serving };

		assert_int_equal(kubeeps_role(&b), cases[i].role);
	}
}

/* The draining ones, from the same list: terminating and serving, IPv4, in the room given. */
static void test_draining(void **state)
{
	const struct kube_backend b[] = {
		{ "10.0.1.11", 8080, KUBE_EP_READY, true },
		{ "10.0.1.12", 8080, KUBE_EP_TERMINATING, true },
		{ "10.0.1.13", 8080, KUBE_EP_TERMINATING, false },
		{ "fd00::2", 8080, KUBE_EP_TERMINATING, true },
		{ "10.0.1.15", 8080, KUBE_EP_NOT_READY, true },
		{ "10.0.1.16", 8081, KUBE_EP_TERMINATING, true },
	};
	struct canary_backend out[CANARY_MAX_BACKENDS];
	int skipped = -1;

	(void)state;
	assert_int_equal(
		kubeeps_backends(b, 6, KUBEEPS_DRAINING, out, CANARY_MAX_BACKENDS, &skipped), 2);
	assert_int_equal(skipped, 1); /* the IPv6 one */
	assert_int_equal(out[0].addr, inet_addr("10.0.1.12"));
	assert_int_equal(out[1].addr, inet_addr("10.0.1.16"));
	assert_int_equal(out[1].port, htons(8081));
	/* Room for one only (the ready ones took the rest): the other is left out. */
	assert_int_equal(kubeeps_backends(b, 6, KUBEEPS_DRAINING, out, 1, &skipped), 1);
	assert_int_equal(skipped, 2);
	/* No room at all. */
	assert_int_equal(kubeeps_backends(b, 6, KUBEEPS_DRAINING, out, 0, &skipped), 0);
	assert_int_equal(skipped, 3);
}

static char dir[] = "/tmp/test_kubeeps.XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

#define KC_HEAD                                                                 \
	"apiVersion: v1\nkind: Config\n"                                        \
	"clusters:\n- name: other\n  cluster: {server: \"https://10.9.9.9\"}\n" \
	"- name: lab\n  cluster:\n    server: \"https://198.18.110.1:6443/\"\n"
#define KC_TAIL                                                                             \
	"contexts:\n- name: lab\n  context: {cluster: lab, user: agent, namespace: shop}\n" \
	"current-context: lab\n"

static void test_kubeconfig_token(void **state)
{
	struct kube_conn k;
	struct kube_client c;
	char err[256] = "";
	const char *p;

	(void)state;
	p = write_file("a.kubeconfig",
		       KC_HEAD "    certificate-authority: ca.pem\n"
			       "users:\n- name: agent\n  user: {token: abc123}\n" KC_TAIL);
	assert_int_equal(kubeconfig_load(p, &k, err, sizeof(err)), 0);
	assert_string_equal(k.server, "https://198.18.110.1:6443/");
	assert_string_equal(k.token, "abc123");
	assert_string_equal(k.token_file, "");
	assert_string_equal(k.ns, "shop");
	assert_non_null(strstr(k.ca_file, "/ca.pem"));
	assert_int_equal(strncmp(k.ca_file, dir, strlen(dir)), 0); /* relative to the file */
	assert_int_equal(kube_conn_client(&k, &c), 0);
	assert_string_equal(c.server, "https://198.18.110.1:6443"); /* no trailing slash */
	assert_string_equal(c.token, "abc123");
	kube_client_close(&c);

	p = write_file("b.kubeconfig",
		       KC_HEAD "    certificate-authority: /etc/ca.pem\n"
			       "users:\n- name: agent\n  user: {tokenFile: /run/t}\n" KC_TAIL);
	assert_int_equal(kubeconfig_load(p, &k, err, sizeof(err)), 0);
	assert_string_equal(k.token_file, "/run/t");
	assert_string_equal(k.ca_file, "/etc/ca.pem");
}

/* base64 of "-----BEGIN X-----\nAA==\n-----END X-----\n": PEM-shaped text. */
#define PEM_PLAIN "-----BEGIN X-----\nAA==\n-----END X-----\n"
#define PEM_B64	  "LS0tLS1CRUdJTiBYLS0tLS0KQUE9PQotLS0tLUVORCBYLS0tLS0K"

/* What kubeadm, kind and minikube write: the CA and a client certificate as data. */
static void test_kubeconfig_client_cert(void **state)
{
	struct kube_conn k;
	struct kube_client c;
	char err[256] = "";
	const char *p;

	(void)state;
	p = write_file("d.kubeconfig", KC_HEAD "    certificate-authority-data: " PEM_B64 "\n"
					       "users:\n- name: agent\n  user:\n"
					       "    client-certificate-data: " PEM_B64 "\n"
					       "    client-key-data: " PEM_B64 "\n" KC_TAIL);
	if (kubeconfig_load(p, &k, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(k.tls.ca_pem, PEM_PLAIN);
	assert_string_equal(k.tls.cert_pem, PEM_PLAIN);
	assert_string_equal(k.tls.key_pem, PEM_PLAIN);
	assert_string_equal(k.ca_file, "");
	assert_string_equal(k.token, "");
	assert_int_equal(kube_conn_client(&k, &c), 0);
	assert_string_equal(c.tls.key_pem, PEM_PLAIN);
	assert_string_equal(c.token, ""); /* no Authorization header */
	kube_client_close(&c);

	p = write_file("e.kubeconfig", KC_HEAD "users:\n- name: agent\n  user:\n"
					       "    client-certificate: certs/me.crt\n"
					       "    client-key: /etc/me.key\n" KC_TAIL);
	if (kubeconfig_load(p, &k, err, sizeof(err)))
		fail_msg("%s", err);
	assert_non_null(strstr(k.tls.cert_file, "/certs/me.crt"));
	assert_int_equal(strncmp(k.tls.cert_file, dir, strlen(dir)), 0); /* relative to the file */
	assert_string_equal(k.tls.key_file, "/etc/me.key");
	assert_string_equal(k.tls.cert_pem, "");
}

struct bad_kc {
	const char *user_or_cluster; /* between KC_HEAD and KC_TAIL */
	const char *msg;
};

static void test_kubeconfig_refused(void **state)
{
	static const struct bad_kc cases[] = {
		{ "users:\n- name: agent\n  user: {client-certificate: c.pem}\n",
		  "user: client-certificate and client-key go together" },
		{ "users:\n- name: agent\n  user: {client-certificate: c.pem, "
		  "client-certificate-data: " PEM_B64 ", client-key: k.pem}\n",
		  "both as a file and as data" },
		{ "users:\n- name: agent\n  user: {client-key-data: Zm9v, client-certificate: c}\n",
		  "user.client-key-data: not base64 of PEM text" },
		{ "users:\n- name: agent\n  user: {username: u, password: p}\n",
		  "user.username: not supported" },
		{ "users:\n- name: agent\n  user: {auth-provider: {name: gcp}}\n",
		  "user.auth-provider: not supported" },
		{ "users:\n- name: agent\n  user: {}\n",
		  "user: needs token or tokenFile, client-certificate" },
		{ "    certificate-authority-data: AAAA\nusers:\n- name: agent\n  user: {token: t}\n",
		  "cluster.certificate-authority-data: not base64 of PEM text" },
		{ "    certificate-authority: ca.pem\n    certificate-authority-data: " PEM_B64
		  "\nusers:\n- name: agent\n  user: {token: t}\n",
		  "certificate-authority and certificate-authority-data both given" },
		{ "    insecure-skip-tls-verify: true\nusers:\n- name: agent\n  user: {token: t}\n",
		  "cluster.insecure-skip-tls-verify: not supported" },
		{ "users:\n- name: someone\n  user: {token: t}\n", "context.user: names no user" },
	};
	struct kube_conn k;
	char err[256];
	char text[2048];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%s%s%s", KC_HEAD, cases[i].user_or_cluster, KC_TAIL);
		err[0] = '\0';
		if (kubeconfig_load(write_file("bad.kubeconfig", text), &k, err, sizeof(err)) !=
			    -1 ||
		    !strstr(err, cases[i].msg))
			fail_msg("case %zu: error \"%s\", wanted \"%s\"", i, err, cases[i].msg);
	}
	err[0] = '\0';
	assert_int_equal(kubeconfig_load(write_file("c.kubeconfig",
						    KC_HEAD "users: []\ncurrent-context: nope\n"),
					 &k, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "current-context: missing or names no context"));
	assert_int_equal(kubeconfig_load("/nonexistent/kubeconfig", &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot read"));
}

static void test_in_cluster(void **state)
{
	struct kube_conn k;
	char err[256];

	(void)state;
	write_file("namespace", "canaryd-system\n");
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kube_conn_in_cluster(&k, dir, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--kubeconfig"));
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kube_conn_in_cluster(&k, dir, err, sizeof(err)), 0);
	assert_string_equal(k.server, "https://10.96.0.1:443");
	assert_string_equal(k.ns, "canaryd-system");
	assert_non_null(strstr(k.token_file, "/token"));
	assert_non_null(strstr(k.ca_file, "/ca.crt"));
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	static const char *const names[] = { "a.kubeconfig", "b.kubeconfig", "bad.kubeconfig",
					     "c.kubeconfig", "d.kubeconfig", "e.kubeconfig",
					     "namespace" };
	char path[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_only),
		cmocka_unit_test(test_ready_at_most_max),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_draining),
		cmocka_unit_test(test_kubeconfig_token),
		cmocka_unit_test(test_kubeconfig_client_cert),
		cmocka_unit_test(test_kubeconfig_refused),
		cmocka_unit_test(test_in_cluster),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
