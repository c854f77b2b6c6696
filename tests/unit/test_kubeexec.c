// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Credential plugins of a kubeconfig (user.exec), as kubectl runs them:
 * what of the exec block is read and refused, and real plugins (shell
 * scripts) run: the token or certificate they print is taken, they are
 * told KUBERNETES_EXEC_INFO and exec.env, and a plugin that fails, cannot
 * be run or prints something else is an error naming it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "kubeconfig.h"
#include "kubeexec.h"

static char dir[] = "/tmp/canaryd-kubeexec-XXXXXX";

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

#define KC_HEAD                                                              \
	"apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n" \
	"    server: \"https://198.18.110.1:6443\"\nusers:\n- name: me\n  user:\n"
#define KC_TAIL \
	"contexts:\n- name: lab\n  context: {cluster: lab, user: me}\ncurrent-context: lab\n"
#define V1 "client.authentication.k8s.io/v1"

/* A kubeconfig whose user is the exec block given (indented 4). */
static int load_exec(const char *exec_block, struct kube_conn *k, char *err, size_t errlen)
{
	char text[2048];

	snprintf(text, sizeof(text), "%s    exec:\n%s%s", KC_HEAD, exec_block, KC_TAIL);
	return kubeconfig_load(write_file("x.kubeconfig", text, 0600), k, err, errlen);
}

static void test_exec_read(void **state)
{
	struct kube_conn k;
	char err[256] = "";

	(void)state;
	if (load_exec("      apiVersion: " V1 "\n      command: bin/login\n"
		      "      args: [token, --cluster, lab]\n"
		      "      env: [{name: REGION, value: eu-1}]\n"
		      "      interactiveMode: Never\n",
		      &k, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(k.exec.api_version, V1);
	/* With a '/', relative to the kubeconfig's directory, as client-go does. */
	assert_int_equal(strncmp(k.exec.command, dir, strlen(dir)), 0);
	assert_non_null(strstr(k.exec.command, "/bin/login"));
	assert_int_equal(k.exec.n_args, 3);
	assert_string_equal(k.exec.args[1], "--cluster");
	assert_int_equal(k.exec.n_env, 1);
	assert_string_equal(k.exec.env[0], "REGION=eu-1");
	assert_string_equal(k.token, ""); /* none until the plugin runs */

	/* A bare name is looked up in PATH. */
	assert_int_equal(
		load_exec("      apiVersion: " V1 "\n      command: aws\n", &k, err, sizeof(err)),
		0);
	assert_string_equal(k.exec.command, "aws");
}

static void test_exec_refused(void **state)
{
	static const struct {
		const char *block, *msg;
	} cases[] = {
		{ "      apiVersion: " V1 "\n", "user.exec.command: missing" },
		{ "      command: aws\n", "user.exec.apiVersion: \"\"" },
		{ "      apiVersion: client.authentication.k8s.io/v1alpha1\n      command: aws\n",
		  "give client.authentication.k8s.io/v1 or v1beta1" },
		{ "      apiVersion: " V1 "\n      command: aws\n      args: token\n",
		  "user.exec.args: a list of at most 16 strings" },
		{ "      apiVersion: " V1 "\n      command: aws\n      env: [{name: A}]\n",
		  "user.exec.env: each item needs name and value" },
		{ "      apiVersion: " V1
		  "\n      command: aws\n      env: [{name: A=B, value: c}]\n",
		  "user.exec.env: each item needs name and value" },
	};
	struct kube_conn k;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		if (load_exec(cases[i].block, &k, err, sizeof(err)) != -1 ||
		    !strstr(err, cases[i].msg))
			fail_msg("case %zu: error \"%s\", wanted \"%s\"", i, err, cases[i].msg);
	}
}

/* A kube_conn whose plugin is the script given, run by /bin/sh. */
static void plugin_conn(struct kube_conn *k, const char *script)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->exec.api_version, sizeof(k->exec.api_version), "%s", V1);
	snprintf(k->exec.command, sizeof(k->exec.command), "%s",
		 write_file("plugin", script, 0700));
}

#define CRED(status) "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":" status "}"

static void test_exec_runs_plugin(void **state)
{
	struct kube_conn k;
	char err[256] = "";

	(void)state;
	/* The plugin sees exec.env and KUBERNETES_EXEC_INFO, and its token is taken. */
	plugin_conn(
		&k,
		"#!/bin/sh\n"
		"case \"$KUBERNETES_EXEC_INFO\" in *'\"interactive\":false'*) ;; *) exit 9 ;; esac\n"
		"test \"$1\" = get-token || exit 8\n"
		"echo 'signing in...' >&2\n"
		"printf '" CRED("{\"token\":\"tok-%s\"}") "' \"$REGION\"\n");
	snprintf(k.exec.args[0], sizeof(k.exec.args[0]), "get-token");
	k.exec.n_args = 1;
	snprintf(k.exec.env[0], sizeof(k.exec.env[0]), "REGION=eu-1");
	k.exec.n_env = 1;
	snprintf(k.token_file, sizeof(k.token_file), "/run/stale");
	if (kube_exec_credential(&k, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(k.token, "tok-eu-1");
	assert_string_equal(k.token_file, ""); /* the plugin's token, not a file's */

	/* A client certificate instead of a token. */
	plugin_conn(&k,
		    "#!/bin/sh\nprintf '%s' '" CRED(
			    "{\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\nAA==\\n\","
			    "\"clientKeyData\":\"-----BEGIN PRIVATE KEY-----\\nAA==\\n\"}") "'\n");
	if (kube_exec_credential(&k, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(k.tls.cert_pem, "-----BEGIN CERTIFICATE-----\nAA==\n");
	assert_string_equal(k.tls.key_pem, "-----BEGIN PRIVATE KEY-----\nAA==\n");
	assert_string_equal(k.token, "");
}

static void test_exec_errors(void **state)
{
	static const struct {
		const char *script, *msg;
	} cases[] = {
		{ "#!/bin/sh\nexit 3\n", "failed (exit status 3); its messages are above" },
		{ "#!/bin/sh\necho not json\n", "printed no JSON" },
		{ "#!/bin/sh\necho '{\"apiVersion\":\"" V1 "\",\"kind\":\"Token\"}'\n",
		  "printed kind \"Token\", not ExecCredential" },
		{ "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
		  "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}'\n",
		  "answered in apiVersion \"client.authentication.k8s.io/v1beta1\", asked for " V1 },
		{ "#!/bin/sh\necho '" CRED("{}") "'\n", "neither status.token nor" },
		{ "#!/bin/sh\necho '" CRED(
			  "{\"clientCertificateData\":\"x\",\"clientKeyData\":\"y\"}") "'\n",
		  "status.clientCertificateData: not PEM text" },
		{ "#!/bin/sh\nkill -9 $$\n", "failed (signal 9)" },
	};
	struct kube_conn k;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		plugin_conn(&k, cases[i].script);
		err[0] = '\0';
		if (kube_exec_credential(&k, err, sizeof(err)) != -1 ||
		    !strstr(err, cases[i].msg) || strncmp(err, "user.exec: ", 11) != 0)
			fail_msg("case %zu: error \"%s\", wanted \"%s\"", i, err, cases[i].msg);
	}
	/* A command that is not there: exec's own error, not a silent empty token. */
	memset(&k, 0, sizeof(k));
	snprintf(k.exec.api_version, sizeof(k.exec.api_version), "%s", V1);
	snprintf(k.exec.command, sizeof(k.exec.command), "canaryd-no-such-login-plugin");
	assert_int_equal(kube_exec_credential(&k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot run canaryd-no-such-login-plugin: No such file"));
	/* No plugin: nothing to run, nothing changed. */
	memset(&k, 0, sizeof(k));
	assert_int_equal(kube_exec_credential(&k, err, sizeof(err)), 0);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	static const char *const names[] = { "x.kubeconfig", "plugin" };
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
		cmocka_unit_test(test_exec_read),
		cmocka_unit_test(test_exec_refused),
		cmocka_unit_test(test_exec_runs_plugin),
		cmocka_unit_test(test_exec_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
