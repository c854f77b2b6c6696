// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * kubewatch: follow one Service's EndpointSlices with the agent's own
 * watcher (userspace/kube.c) and print the backend set it holds after
 * every change, one line each:
 *
 *   rv=1234 api=v1beta1 relists=0 ready=10.0.0.1:80,10.0.0.2:80 terminating=- not-ready=-
 *
 * A debugging and test tool (tests/e2e/test_kube_endpoints.sh), not installed.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kube.h"

static atomic_bool stop;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop, true);
}

static void print_state(const struct kube_backend *b, long n, enum kube_ep_state st)
{
	const char *sep = "";
	long i;

	printf(" %s=", kube_ep_state_name(st));
	for (i = 0; i < n; i++) {
		if (b[i].state != st)
			continue;
		printf(strchr(b[i].addr, ':') ? "%s[%s]:%u" : "%s%s:%u", sep, b[i].addr, b[i].port);
		sep = ",";
	}
	if (!*sep)
		putchar('-');
}

static bool show(const struct kube_slices *s, void *arg)
{
	const struct kube_watch_opts *o = arg;
	struct kube_backend *b;
	long n = kube_slices_backends(s, &b);

	if (n < 0)
		return false;
	printf("rv=%s api=%s relists=%lu", s->rv, o->api, o->relists);
	print_state(b, n, KUBE_EP_READY);
	print_state(b, n, KUBE_EP_TERMINATING);
	print_state(b, n, KUBE_EP_NOT_READY);
	putchar('\n');
	fflush(stdout);
	free(b);
	return true;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: kubewatch (--server URL [--token-file F] [--ca-file F] | --in-cluster)\n"
		"                 --namespace NS --service NAME [--limit N]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "server", required_argument, NULL, 's' },
					      { "token-file", required_argument, NULL, 't' },
					      { "ca-file", required_argument, NULL, 'c' },
					      { "in-cluster", no_argument, NULL, 'i' },
					      { "namespace", required_argument, NULL, 'n' },
					      { "service", required_argument, NULL, 'v' },
					      { "limit", required_argument, NULL, 'l' },
					      { NULL, 0, NULL, 0 } };
	const char *server = NULL, *token = NULL, *ca = NULL;
	struct kube_watch_opts o = { .ns = "default", .fn = show, .stop = &stop };
	struct kube_client c;
	bool in_cluster = false;
	int opt, err;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			server = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'c':
			ca = optarg;
			break;
		case 'i':
			in_cluster = true;
			break;
		case 'n':
			o.ns = optarg;
			break;
		case 'v':
			o.service = optarg;
			break;
		case 'l':
			o.limit = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (!o.service || (!server && !in_cluster)) {
		usage();
		return 2;
	}
	o.arg = &o;
	o.backoff_base_ms = 100;
	o.backoff_max_ms = 2000;
	srandom((unsigned int)time(NULL) ^ (unsigned int)getpid());
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	err = in_cluster ? kube_client_in_cluster(&c, KUBE_SA_DIR) :
			   kube_client_init(&c, server, token, ca);
	if (!err)
		err = kube_watch_endpointslices(&c, &o);
	kube_client_close(&c);
	curl_global_cleanup();
	if (err)
		fprintf(stderr, "kubewatch: %s\n", strerror(-err));
	return err ? 1 : 0;
}
