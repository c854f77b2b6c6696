// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "netparse.h"
#include "plugin_args.h"

static const char *const verb_names[] = {
	[PLUGIN_GET] = "get",	      [PLUGIN_STATUS] = "status",
	[PLUGIN_PROMOTE] = "promote", [PLUGIN_ABORT] = "abort",
	[PLUGIN_RETRY] = "retry",     [PLUGIN_PAUSE] = "pause",
	[PLUGIN_RESUME] = "resume",   [PLUGIN_SET_WEIGHT] = "set-weight",
};

#define N_VERBS (sizeof(verb_names) / sizeof(verb_names[0]))

const char *plugin_verb_name(enum plugin_verb v)
{
	return (size_t)v < N_VERBS ? verb_names[v] : "?";
}

enum rollout_verb plugin_rollout_verb(const struct plugin_args *a)
{
	switch (a->verb) {
	case PLUGIN_PROMOTE:
		return a->full ? VERB_PROMOTE_FULL : VERB_PROMOTE;
	case PLUGIN_ABORT:
		return VERB_ABORT;
	case PLUGIN_RETRY:
		return VERB_RETRY;
	case PLUGIN_PAUSE:
		return VERB_PAUSE;
	case PLUGIN_RESUME:
		return VERB_RESUME;
	case PLUGIN_SET_WEIGHT:
		return VERB_SET_WEIGHT;
	default:
		return VERB_COUNT;
	}
}

enum { O_KUBECONFIG = 256, O_TIMEOUT, O_FULL, O_VERSION };

static int fail(char *err, size_t errlen, const char *what, const char *arg)
{
	snprintf(err, errlen, "%s%s%s%s", what, arg ? " \"" : "", arg ? arg : "", arg ? "\"" : "");
	return -1;
}

static int take_opt(int opt, const char *val, struct plugin_args *a, char *err, size_t errlen)
{
	switch (opt) {
	case O_KUBECONFIG:
		a->kubeconfig = val;
		return 0;
	case 'n':
		a->ns = val;
		return 0;
	case 'o':
		if (strcmp(val, "json") != 0)
			return fail(err, errlen, "-o: only json is known, not", val);
		a->json = true;
		return 0;
	case 'w':
		a->watch = true;
		return 0;
	case O_TIMEOUT:
		a->timeout_ms = parse_duration_ms(val);
		if (a->timeout_ms < 0)
			return fail(err, errlen, "--timeout: not a duration (90s, 5m, 1h):", val);
		return 0;
	case O_FULL:
		a->full = true;
		return 0;
	case 'h':
		a->help = true;
		return 0;
	case O_VERSION:
		a->version = true;
		return 0;
	default:
		return fail(err, errlen, "unknown option", NULL);
	}
}

/* Which flags belong to which verb: a flag of another verb is a usage error. */
static int check_flags(const struct plugin_args *a, char *err, size_t errlen)
{
	if ((a->watch || a->timeout_ms) && a->verb != PLUGIN_STATUS)
		return fail(err, errlen, "--watch and --timeout belong to status, not to",
			    plugin_verb_name(a->verb));
	if (a->timeout_ms && !a->watch)
		return fail(err, errlen, "--timeout needs --watch", NULL);
	if (a->full && a->verb != PLUGIN_PROMOTE)
		return fail(err, errlen, "--full belongs to promote, not to",
			    plugin_verb_name(a->verb));
	if (a->json && a->verb != PLUGIN_GET && a->verb != PLUGIN_STATUS)
		return fail(err, errlen, "-o json belongs to get and status, not to",
			    plugin_verb_name(a->verb));
	return 0;
}

/* The operands after the verb: NAME, and set-weight's PERCENT. */
static int take_operands(int n, char **ops, struct plugin_args *a, char *err, size_t errlen)
{
	int want = a->verb == PLUGIN_SET_WEIGHT ? 2 : 1;
	char werr[NETPARSE_ERR_LEN];

	if (a->verb == PLUGIN_GET && n == 0)
		return 0;
	if (n != want)
		return fail(err, errlen,
			    a->verb == PLUGIN_SET_WEIGHT ? "usage: set-weight NAME PERCENT" :
			    a->verb == PLUGIN_GET	 ? "usage: get [NAME]" :
							   "this verb takes one Rollout NAME:",
			    a->verb == PLUGIN_SET_WEIGHT || a->verb == PLUGIN_GET ?
				    NULL :
				    plugin_verb_name(a->verb));
	a->name = ops[0];
	/* A Rollout name (config.c's rule): never a path of the API server. */
	if (!*a->name || strlen(a->name) > 31 ||
	    strspn(a->name, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(a->name))
		return fail(err, errlen, "not a Rollout name (a-z, 0-9, -; 31 at most):", a->name);
	if (want == 2 && parse_weight_percent(ops[1], &a->weight_bp, werr, sizeof(werr)))
		return fail(err, errlen, "set-weight:", werr);
	return 0;
}

int plugin_parse_args(int argc, char **argv, struct plugin_args *a, char *err, size_t errlen)
{
	static const struct option opts[] = {
		{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
		{ "namespace", required_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "watch", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "full", no_argument, NULL, O_FULL },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ 0 },
	};
	size_t v;
	int opt;

	memset(a, 0, sizeof(*a));
	optind = 0; /* a fresh scan (GNU): the tests parse many command lines */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "n:o:wh", opts, NULL)) != -1) {
		if (opt == '?' || opt == ':')
			return fail(err, errlen,
				    "unknown option or missing value:", argv[optind - 1]);
		if (take_opt(opt, optarg, a, err, errlen))
			return -1;
	}
	if (a->help || a->version)
		return 0;
	if (optind >= argc)
		return fail(err, errlen, "a verb is needed", NULL);
	for (v = 0; v < N_VERBS && strcmp(argv[optind], verb_names[v]) != 0; v++)
		;
	if (v == N_VERBS)
		return fail(err, errlen, "unknown verb", argv[optind]);
	a->verb = (enum plugin_verb)v;
	if (check_flags(a, err, errlen))
		return -1;
	return take_operands(argc - optind - 1, argv + optind + 1, a, err, errlen);
}
