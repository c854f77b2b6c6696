// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kubeexec.h"

extern char **environ;

static int __attribute__((format(printf, 3, 4)))
xfail(char *err, size_t errlen, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	/* clang-analyzer 14 misses this va_start too (see canaryd.c's die_usage). */
	vsnprintf(msg, sizeof(msg), fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	snprintf(err, errlen, "user.exec: %s", msg);
	return -1;
}

static int copy_pem(char *dst, size_t size, const char *pem, const char *field, char *err,
		    size_t errlen)
{
	if (!strstr(pem, "-----BEGIN "))
		return xfail(err, errlen, "status.%s: not PEM text", field);
	if (strlen(pem) >= size)
		return xfail(err, errlen, "status.%s: longer than %zu bytes", field, size - 1);
	snprintf(dst, size, "%s", pem);
	return 0;
}

/* The credential of a parsed ExecCredential's status into k. */
static int take_status(const json_t *status, struct kube_conn *k, char *err, size_t errlen)
{
	const char *token = json_string_value(json_object_get(status, "token"));
	const char *cert = json_string_value(json_object_get(status, "clientCertificateData"));
	const char *key = json_string_value(json_object_get(status, "clientKeyData"));

	if (!token && !(cert && key))
		return xfail(err, errlen,
			     "the plugin gave neither status.token nor "
			     "status.clientCertificateData with clientKeyData");
	if (token && (!*token || strlen(token) >= sizeof(k->token)))
		return xfail(err, errlen, "status.token: empty or longer than %zu bytes",
			     sizeof(k->token) - 1);
	if (token) {
		snprintf(k->token, sizeof(k->token), "%s", token);
		k->token_file[0] = '\0';
	}
	if (cert && key) {
		if (copy_pem(k->tls.cert_pem, sizeof(k->tls.cert_pem), cert,
			     "clientCertificateData", err, errlen) ||
		    copy_pem(k->tls.key_pem, sizeof(k->tls.key_pem), key, "clientKeyData", err,
			     errlen))
			return -1;
		k->tls.cert_file[0] = k->tls.key_file[0] = '\0';
	}
	return 0;
}

int kube_exec_parse(const char *text, size_t len, struct kube_conn *k, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o = json_loadb(text, len, 0, &jerr);
	const char *kind = json_string_value(json_object_get(o, "kind"));
	const char *ver = json_string_value(json_object_get(o, "apiVersion"));
	int rc;

	if (!o)
		return xfail(err, errlen, "%s printed no JSON: %s", k->exec.command, jerr.text);
	if (!kind || strcmp(kind, "ExecCredential") != 0)
		rc = xfail(err, errlen, "%s printed kind \"%s\", not ExecCredential",
			   k->exec.command, kind ? kind : "");
	else if (!ver || strcmp(ver, k->exec.api_version) != 0)
		rc = xfail(err, errlen, "%s answered in apiVersion \"%s\", asked for %s",
			   k->exec.command, ver ? ver : "", k->exec.api_version);
	else
		rc = take_status(json_object_get(o, "status"), k, err, errlen);
	json_decref(o);
	return rc;
}

/* What the plugin is told about the call, as client-go tells it. */
static int exec_info(const struct kube_exec *x, char *dst, size_t size)
{
	int n = snprintf(dst, size,
			 "KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
			 "\"spec\":{\"interactive\":false}}",
			 x->api_version);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/*
 * The plugin's environment: ours, then exec.env and KUBERNETES_EXEC_INFO
 * (later entries win for getenv() in the child, as client-go appends them).
 * Built before fork(): the child only calls async-signal-safe functions.
 */
static char **plugin_env(const struct kube_exec *x, char *info)
{
	size_t n = 0, i, j;
	char **env;

	while (environ && environ[n])
		n++;
	env = calloc(n + x->n_env + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (i = 0, j = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t k, keylen = eq ? (size_t)(eq - environ[i]) + 1 : 0;
		bool overridden = !keylen || !strncmp(environ[i], "KUBERNETES_EXEC_INFO=", keylen);

		for (k = 0; k < x->n_env && !overridden; k++)
			overridden = !strncmp(environ[i], x->env[k], keylen);
		if (!overridden)
			env[j++] = environ[i];
	}
	for (i = 0; i < x->n_env; i++)
		env[j++] = (char *)x->env[i];
	env[j] = info;
	return env;
}

/* Child side of fork(): only async-signal-safe calls until exec. */
static void __attribute__((noreturn))
run_child(char *const argv[], char *const envp[], int out_fd, int status_fd)
{
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int e;

	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
		_exit(127);
	execvpe(argv[0], argv, envp);
	e = errno;
	/* The parent reads why exec failed; the pipe closes on a successful exec. */
	if (write(status_fd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read fd to EOF into buf (cap bytes at most), by the deadline. */
static int read_bounded(int fd, char *buf, size_t cap, size_t *len, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t r;

	*len = 0;
	for (;;) {
		long long left = deadline - now_ms();

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
		if (!p.revents)
			continue;
		if (*len == cap)
			return -E2BIG;
		r = read(fd, buf + *len, cap - *len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		*len += (size_t)r;
	}
}

/* The child's end: its exit status, or why it never ran (exec errno). */
static int reap(pid_t pid, int status_fd, bool kill_it, int *exec_errno)
{
	int status = 0;

	if (kill_it)
		kill(pid, SIGKILL);
	*exec_errno = 0;
	if (read(status_fd, exec_errno, sizeof(*exec_errno)) != (ssize_t)sizeof(*exec_errno))
		*exec_errno = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

/* Run the plugin; its stdout into out (malloc'd, caller frees). */
static int run_plugin(const struct kube_exec *x, char **out, size_t *len, char *err, size_t errlen)
{
	char *argv[KUBE_EXEC_MAX_ARGS + 2], info[192], **envp = NULL;
	int out_pipe[2] = { -1, -1 }, st_pipe[2] = { -1, -1 }, rc = -1, status, exec_errno;
	size_t i;
	pid_t pid;

	*out = malloc(KUBE_EXEC_MAX_OUTPUT + 1);
	argv[0] = (char *)x->command;
	for (i = 0; i < x->n_args; i++)
		argv[i + 1] = (char *)x->args[i];
	argv[x->n_args + 1] = NULL;
	if (!*out || exec_info(x, info, sizeof(info)) || !(envp = plugin_env(x, info)) ||
	    pipe2(out_pipe, O_CLOEXEC) || pipe2(st_pipe, O_CLOEXEC)) {
		xfail(err, errlen, "cannot run %s: %s", x->command,
		      strerror(errno ? errno : ENOMEM));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		xfail(err, errlen, "cannot run %s: %s", x->command, strerror(errno));
		goto out;
	}
	if (pid == 0)
		run_child(argv, envp, out_pipe[1], st_pipe[1]);
	close(out_pipe[1]);
	close(st_pipe[1]);
	out_pipe[1] = st_pipe[1] = -1;
	rc = read_bounded(out_pipe[0], *out, KUBE_EXEC_MAX_OUTPUT, len,
			  now_ms() + KUBE_EXEC_TIMEOUT_MS);
	status = reap(pid, st_pipe[0], rc != 0, &exec_errno);
	if (exec_errno)
		rc = xfail(err, errlen, "cannot run %s: %s", x->command, strerror(exec_errno));
	else if (rc == -ETIMEDOUT)
		rc = xfail(err, errlen, "%s did not finish within %d s (stopped)", x->command,
			   KUBE_EXEC_TIMEOUT_MS / 1000);
	else if (rc)
		rc = xfail(err, errlen, "reading %s's output: %s", x->command,
			   rc == -E2BIG ? "more than 256 KiB" : strerror(-rc));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = xfail(err, errlen, "%s failed (%s %d); its messages are above", x->command,
			   WIFEXITED(status) ? "exit status" : "signal",
			   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
out:
	for (i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (st_pipe[i] >= 0)
			close(st_pipe[i]);
	}
	free(envp);
	if (rc) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

int kube_exec_credential(struct kube_conn *k, char *err, size_t errlen)
{
	char *out = NULL;
	size_t len = 0;
	int rc;

	if (!k->exec.command[0])
		return 0;
	rc = run_plugin(&k->exec, &out, &len, err, errlen);
	if (!rc)
		rc = kube_exec_parse(out, len, k, err, errlen);
	free(out);
	return rc;
}
