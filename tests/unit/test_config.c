// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rollout configuration: the contract example field by field, defaults,
 * several documents and files, and one test per class of invalid input,
 * each asserting file:line:column and the field path of the message.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
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

#include "config.h"

/* The example of docs/configuration.md ("Example"), short of its last metric. */
static const char contract[] =
	"apiVersion: canaryd.io/v1alpha1\n"
	"kind: Rollout\n"
	"metadata:\n"
	"  name: checkout\n"
	"spec:\n"
	"  service: {vip: 10.96.0.10, port: 80, protocol: http}\n"
	"  stable: {revision: v1, endpoints: [\"10.0.1.11:8080\", \"10.0.1.12:8080\"]}\n"
	"  canary: {revision: v2, endpoints: [\"10.0.2.21:8080\"]}\n"
	"  affinity: client-ip\n"
	"  overrides:\n"
	"    - {cidr: 10.20.0.0/16, version: canary}\n"
	"  strategy:\n"
	"    steps:\n"
	"      - setWeight: 10\n"
	"      - pause: {duration: 30s}\n"
	"      - setWeight: 50\n"
	"      - pause: {}\n"
	"      - setWeight: 100\n"
	"  analysis:\n"
	"    interval: 1s\n"
	"    minRequests: 50\n"
	"    failureLimit: 1\n"
	"    confidence: 0.99\n"
	"    metrics:\n"
	"      - {name: errorRate, max: 0.02}\n"
	"      - {name: latencyP99, max: 250ms}\n"
	"      - {name: compareErrorRate}\n"
	"      - {name: compareLatency, maxIncrease: 0.2}\n"
	"  abort: {connections: reset}\n";

/* A minimal valid rollout: lines 1-9; tests vary one line or append at line 10. */
#define HEAD_NAMED(name)                    \
	"apiVersion: canaryd.io/v1alpha1\n" \
	"kind: Rollout\n"                   \
	"metadata:\n"                       \
	"  name: " name "\n"                \
	"spec:\n"
#define HEAD   HEAD_NAMED("web")
#define SVC    "  service: {vip: 10.96.0.20, port: 80}\n"
#define STABLE "  stable: {endpoints: [\"10.0.1.1:80\"]}\n"
#define CANARY "  canary: {endpoints: [\"10.0.2.1:80\"]}\n"
#define STEPS  "  strategy: {steps: [{setWeight: 50}]}\n"
#define MIN    HEAD SVC STABLE CANARY STEPS
/* Block-style steps: the first item's value is at line 11, column 20. */
#define BLOCK_STEPS(first) "  strategy:\n    steps:\n      - setWeight: " first "\n"

/* Where a failed load must leave out pointing. */
static struct rollout_cfg sentinel_rollout;
#define SENTINEL (&sentinel_rollout)

struct bad {
	const char *yaml;
	const char *where; /* "file:line:column: path: " the message must start with */
	const char *msg;   /* and a part of what follows */
};

static int parse(const char *yaml, struct config *cfg, char *err)
{
	return config_parse_buffer("t.yaml", yaml, strlen(yaml), cfg, err, CONFIG_ERR_LEN);
}

/* Fails, leaves out untouched, and says where and what. */
static void check_error(const char *yaml, size_t len, const char *where, const char *msg)
{
	struct config c = { .rollouts = SENTINEL, .n_rollouts = 4242 };
	char err[CONFIG_ERR_LEN] = "";
	int rc = config_parse_buffer("t.yaml", yaml, len, &c, err, sizeof(err));

	if (rc == 0)
		config_free(&c);
	if (rc != -1 || strncmp(err, where, strlen(where)) != 0 || !strstr(err, msg))
		fail_msg("rc %d, error \"%s\"\n  wanted \"%s...%s...\"\n  for:\n%s", rc, err, where,
			 msg, yaml);
	assert_ptr_equal(c.rollouts, SENTINEL);
	assert_int_equal(c.n_rollouts, 4242);
}

static void check_bad(const struct bad *cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		check_error(cases[i].yaml, strlen(cases[i].yaml), cases[i].where, cases[i].msg);
}

#define CHECK_BAD(cases) check_bad((cases), sizeof(cases) / sizeof((cases)[0]))

static void assert_endpoint(const struct canary_backend *be, const char *addr, __u16 port)
{
	assert_int_equal(be->addr, inet_addr(addr));
	assert_int_equal(be->port, htons(port));
}

static void test_contract_example(void **state)
{
	char err[CONFIG_ERR_LEN] = "";
	const struct rollout_cfg *r;
	const struct analysis_cfg *a;
	struct config cfg;

	(void)state;
	if (parse(contract, &cfg, err))
		fail_msg("%s", err);
	assert_int_equal(cfg.n_rollouts, 1);
	r = &cfg.rollouts[0];
	assert_string_equal(r->name, "checkout");
	assert_string_equal(r->origin, "t.yaml:1:1");
	assert_int_equal(r->service.key.vip, inet_addr("10.96.0.10"));
	assert_int_equal(r->service.key.port, htons(80));
	assert_int_equal(r->service.key.proto, IPPROTO_TCP);
	assert_int_equal(r->service.svc_flags, CANARY_SVC_F_HTTP);
	assert_string_equal(r->stable.revision, "v1");
	assert_int_equal(r->stable.n_endpoints, 2);
	assert_endpoint(&r->stable.endpoints[0], "10.0.1.11", 8080);
	assert_endpoint(&r->stable.endpoints[1], "10.0.1.12", 8080);
	assert_string_equal(r->canary.revision, "v2");
	assert_int_equal(r->canary.n_endpoints, 1);
	assert_endpoint(&r->canary.endpoints[0], "10.0.2.21", 8080);
	assert_int_equal(r->affinity, CANARY_AFFINITY_CLIENT_IP);
	assert_int_equal(r->n_overrides, 1);
	assert_int_equal(r->overrides[0].addr, inet_addr("10.20.0.0"));
	assert_int_equal(r->overrides[0].prefixlen, 16);
	assert_int_equal(r->overrides[0].version, CANARY_V_CANARY);

	assert_int_equal(r->n_steps, 5);
	assert_int_equal(r->steps[0].kind, STEP_SET_WEIGHT);
	assert_int_equal(r->steps[0].weight_bp, 1000);
	assert_int_equal(r->steps[1].kind, STEP_PAUSE);
	assert_int_equal(r->steps[1].pause_ms, 30000);
	assert_int_equal(r->steps[2].kind, STEP_SET_WEIGHT);
	assert_int_equal(r->steps[2].weight_bp, 5000);
	assert_int_equal(r->steps[3].kind, STEP_PAUSE);
	assert_int_equal(r->steps[3].pause_ms, CONFIG_PAUSE_INDEFINITE);
	assert_int_equal(r->steps[4].kind, STEP_SET_WEIGHT);
	assert_int_equal(r->steps[4].weight_bp, 10000);

	a = &r->analysis;
	assert_int_equal(a->interval_ms, 1000);
	assert_int_equal(a->min_requests, 50);
	assert_int_equal(a->failure_limit, 1);
	assert_float_equal(a->confidence, 0.99, 1e-12);
	assert_int_equal(a->n_metrics, 4);
	assert_int_equal(a->metrics[0].kind, METRIC_ERROR_RATE);
	assert_float_equal(a->metrics[0].max, 0.02, 1e-12);
	assert_int_equal(a->metrics[1].kind, METRIC_LATENCY_P99);
	assert_float_equal(a->metrics[1].max, 250000, 1e-9); /* microseconds */
	assert_int_equal(a->metrics[2].kind, METRIC_COMPARE_ERROR_RATE);
	assert_int_equal(a->metrics[3].kind, METRIC_COMPARE_LATENCY);
	assert_float_equal(a->metrics[3].max_increase, 0.2, 1e-12);
	assert_int_equal(r->abort_connections, ABORT_CONNECTIONS_RESET);
	config_free(&cfg);
	assert_null(cfg.rollouts);
	assert_int_equal(cfg.n_rollouts, 0);
}

static void test_defaults(void **state)
{
	char err[CONFIG_ERR_LEN] = "";
	const struct rollout_cfg *r;
	struct config cfg;

	(void)state;
	if (parse(MIN, &cfg, err))
		fail_msg("%s", err);
	assert_int_equal(cfg.n_rollouts, 1);
	r = &cfg.rollouts[0];
	assert_int_equal(r->service.key.proto, IPPROTO_TCP); /* protocol defaults to tcp */
	assert_int_equal(r->service.svc_flags, 0);
	assert_string_equal(r->stable.revision, "");
	assert_string_equal(r->canary.revision, "");
	assert_int_equal(r->affinity, CANARY_AFFINITY_NONE);
	assert_int_equal(r->n_overrides, 0);
	assert_int_equal(r->n_steps, 1);
	assert_int_equal(r->steps[0].weight_bp, 5000);
	assert_int_equal(r->analysis.interval_ms, 1000);
	assert_int_equal(r->analysis.min_requests, 50);
	assert_int_equal(r->analysis.failure_limit, 1);
	assert_float_equal(r->analysis.confidence, 0.99, 1e-12);
	assert_int_equal(r->analysis.n_metrics, 0);
	assert_int_equal(r->abort_connections, ABORT_CONNECTIONS_RESET);
	config_free(&cfg);
}

/* Values other than the defaults, in other spellings YAML allows. */
static void test_other_values(void **state)
{
	static const char yaml[] =
		HEAD "  service:\n"
		     "    vip: '10.96.0.30'\n"
		     "    port: 5353\n"
		     "    protocol: udp\n"
		     "  stable:\n"
		     "    revision: \"2024.1\"\n"
		     "    endpoints:\n"
		     "      - 10.0.1.1:53\n" CANARY "  affinity: none\n"
		     "  overrides: []\n"
		     "  strategy: {steps: [{setWeight: 0.01}, {pause: {duration: 1.5m}}, "
		     "{setWeight: 12.5}]}\n"
		     "  analysis:\n"
		     "    interval: 250ms\n"
		     "    minRequests: 1\n"
		     "    failureLimit: 0\n"
		     "    confidence: 0.999\n"
		     "    metrics:\n"
		     "      - {name: resetRate, max: 0}\n"
		     "      - {name: latencyP50, max: 0.5ms}\n"
		     "      - {name: latencyP95, max: 2s}\n"
		     "      - {name: compareLatency}\n"
		     "      - {name: compareLatencyTail}\n"
		     "  abort: {connections: drain}\n";
	char err[CONFIG_ERR_LEN] = "";
	const struct rollout_cfg *r;
	struct config cfg;

	(void)state;
	if (parse(yaml, &cfg, err))
		fail_msg("%s", err);
	r = &cfg.rollouts[0];
	assert_int_equal(r->service.key.vip, inet_addr("10.96.0.30"));
	assert_int_equal(r->service.key.port, htons(5353));
	assert_int_equal(r->service.key.proto, IPPROTO_UDP);
	assert_int_equal(r->service.svc_flags, 0);
	assert_string_equal(r->stable.revision, "2024.1");
	assert_endpoint(&r->stable.endpoints[0], "10.0.1.1", 53);
	assert_int_equal(r->affinity, CANARY_AFFINITY_NONE);
	assert_int_equal(r->n_steps, 3);
	assert_int_equal(r->steps[0].weight_bp, 1);
	assert_int_equal(r->steps[1].pause_ms, 90000);
	assert_int_equal(r->steps[2].weight_bp, 1250);
	assert_int_equal(r->analysis.interval_ms, 250);
	assert_int_equal(r->analysis.min_requests, 1);
	assert_int_equal(r->analysis.failure_limit, 0);
	assert_float_equal(r->analysis.confidence, 0.999, 1e-12);
	assert_int_equal(r->analysis.metrics[0].kind, METRIC_RESET_RATE);
	assert_float_equal(r->analysis.metrics[0].max, 0, 0);
	assert_float_equal(r->analysis.metrics[1].max, 500, 1e-9);
	assert_float_equal(r->analysis.metrics[2].max, 2000000, 1e-9);
	assert_int_equal(r->analysis.metrics[3].kind, METRIC_COMPARE_LATENCY);
	assert_float_equal(r->analysis.metrics[3].max_increase, CONFIG_DEFAULT_MAX_INCREASE, 0);
	assert_float_equal(CONFIG_DEFAULT_MAX_INCREASE, 0.1, 0);
	assert_int_equal(r->analysis.metrics[4].kind, METRIC_COMPARE_LATENCY_TAIL);
	assert_float_equal(r->analysis.metrics[4].quantile, 0.99, 0);
	assert_float_equal(r->analysis.metrics[4].max_increase, 0, 0);
	assert_int_equal(r->abort_connections, ABORT_CONNECTIONS_DRAIN);
	config_free(&cfg);
}

static void test_multiple_documents(void **state)
{
	/* A same VIP:port over UDP is another service; empty documents are skipped. */
	static const char yaml[] = "---\n" MIN "---\n" HEAD_NAMED(
		"dns") "  service: {vip: 10.96.0.20, port: 80, protocol: udp}\n" STABLE CANARY STEPS
		       "---\n"
		       "# nothing here\n"
		       "...\n";
	char err[CONFIG_ERR_LEN] = "";
	struct config cfg;

	(void)state;
	if (parse(yaml, &cfg, err))
		fail_msg("%s", err);
	assert_int_equal(cfg.n_rollouts, 2);
	assert_string_equal(cfg.rollouts[0].name, "web");
	assert_string_equal(cfg.rollouts[0].origin, "t.yaml:1:1");
	assert_string_equal(cfg.rollouts[1].name, "dns");
	assert_string_equal(cfg.rollouts[1].origin, "t.yaml:11:1");
	assert_int_equal(cfg.rollouts[1].service.key.proto, IPPROTO_UDP);
	config_free(&cfg);

	/* Nothing at all is a valid, empty configuration. */
	assert_int_equal(parse("# no rollouts yet\n", &cfg, err), 0);
	assert_int_equal(cfg.n_rollouts, 0);
	assert_null(cfg.rollouts);
	config_free(&cfg);
}

static void test_metric_kind_name(void **state)
{
	(void)state;
	assert_string_equal(metric_kind_name(METRIC_ERROR_RATE), "errorRate");
	assert_string_equal(metric_kind_name(METRIC_LATENCY_P50), "latencyP50");
	assert_string_equal(metric_kind_name(METRIC_LATENCY_P95), "latencyP95");
	assert_string_equal(metric_kind_name(METRIC_LATENCY_P99), "latencyP99");
	assert_string_equal(metric_kind_name(METRIC_RESET_RATE), "resetRate");
	assert_string_equal(metric_kind_name(METRIC_COMPARE_ERROR_RATE), "compareErrorRate");
	assert_string_equal(metric_kind_name(METRIC_COMPARE_LATENCY), "compareLatency");
	assert_string_equal(metric_kind_name(METRIC_KIND_COUNT), "unknown");
}

/* ------------------------------------------------------------------------ */
/* Files and directories, in a mkdtemp directory removed by the teardown */

static int dir_setup(void **state)
{
	char *dir = strdup("/tmp/test_config.XXXXXX");

	if (!dir || !mkdtemp(dir)) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int dir_teardown(void **state)
{
	int rc = nftw(*state, rm_entry, 8, FTW_DEPTH | FTW_PHYS);

	free(*state);
	return rc;
}

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void put(const char *dir, const char *name, const char *text)
{
	write_file(dir, name, text, strlen(text));
}

static void in_dir(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

#define DOC_B HEAD_NAMED("beta") "  service: {vip: 10.96.0.21, port: 80}\n" STABLE CANARY STEPS

/* The Kubernetes ConfigMap layout: name -> ..data/name, ..data -> ..<timestamp>. */
static void test_directory(void **state)
{
	const char *dir = *state;
	char path[512], target[512], err[CONFIG_ERR_LEN] = "";
	struct config cfg;

	in_dir(path, sizeof(path), dir, "..2024_01_01_00_00_00.1");
	assert_int_equal(mkdir(path, 0700), 0);
	put(path, "a.yaml", HEAD_NAMED("alpha") SVC STABLE CANARY STEPS);
	in_dir(path, sizeof(path), dir, "..data");
	assert_int_equal(symlink("..2024_01_01_00_00_00.1", path), 0);
	in_dir(path, sizeof(path), dir, "a.yaml");
	assert_int_equal(symlink("..data/a.yaml", path), 0);
	put(dir, "b.yml", DOC_B);
	put(dir, ".hidden.yaml", MIN); /* would clash with a.yaml if it were read */
	put(dir, "notes.txt", "not: [yaml\n");
	in_dir(path, sizeof(path), dir, "sub.yaml");
	assert_int_equal(mkdir(path, 0700), 0);

	if (config_load(dir, &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(cfg.n_rollouts, 2);
	assert_string_equal(cfg.rollouts[0].name, "alpha");
	in_dir(target, sizeof(target), dir, "a.yaml:1:1");
	assert_string_equal(cfg.rollouts[0].origin, target);
	assert_string_equal(cfg.rollouts[1].name, "beta");
	config_free(&cfg);

	/* A single file works too, whatever its name. */
	in_dir(path, sizeof(path), dir, "b.yml");
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.n_rollouts, 1);
	config_free(&cfg);
}

/* The second of two same-named rollouts is the one pointed at, across files too. */
static void test_duplicate_name_across_files(void **state)
{
	const char *dir = *state;
	char want[600], err[CONFIG_ERR_LEN] = "";
	struct config cfg = { .rollouts = SENTINEL, .n_rollouts = 7 };

	put(dir, "a.yaml", DOC_B);
	put(dir, "b.yaml", "# second\n" HEAD_NAMED("beta") SVC STABLE CANARY STEPS);
	assert_int_equal(config_load(dir, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want),
		 "%s/b.yaml:5:9: metadata.name: duplicate rollout name \"beta\" (first defined at "
		 "%s/a.yaml:1:1)",
		 dir, dir);
	assert_string_equal(err, want);
	assert_ptr_equal(cfg.rollouts, SENTINEL);
	assert_int_equal(cfg.n_rollouts, 7);
}

static void test_file_limits(void **state)
{
	const char *dir = *state;
	char path[512], want[600], err[CONFIG_ERR_LEN] = "";
	struct config cfg = { .rollouts = SENTINEL, .n_rollouts = 7 };
	size_t len = 1024 * 1024 + 1;
	char *big = malloc(len);

	assert_non_null(big);
	memset(big, '#', len);
	big[len - 1] = '\n';
	write_file(dir, "big.yaml", big, len);
	assert_int_equal(config_load(dir, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s/big.yaml: larger than 1 MiB", dir);
	assert_string_equal(err, want);
	check_error(big, len, "t.yaml: larger than 1 MiB", "");
	free(big);

	assert_int_equal(config_load("/nonexistent/canaryd", &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/canaryd: cannot open: No such file or directory");
	in_dir(path, sizeof(path), dir, "dangling.yaml");
	assert_int_equal(symlink("nowhere.yaml", path), 0);
	in_dir(path, sizeof(path), dir, "big.yaml");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(config_load(dir, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "dangling.yaml: cannot open"));
	assert_ptr_equal(cfg.rollouts, SENTINEL);
	assert_int_equal(cfg.n_rollouts, 7);
}

/* ------------------------------------------------------------------------ */
/* One test per class of invalid input */

static void test_err_unknown_field(void **state)
{
	static const struct bad cases[] = {
		{ MIN "status: {}\n", "t.yaml:10:1: status: ", "unknown field" },
		{ HEAD SVC STABLE "  canary: {weight: 10, endpoints: [\"10.0.2.1:80\"]}\n" STEPS,
		  "t.yaml:8:12: spec.canary.weight: ",
		  "unknown field (expected one of: revision, endpoints, service)" },
		{ MIN "  analysis: {metrics: [{name: errorRate, max: 0.1, min: 0}]}\n",
		  "t.yaml:10:52: spec.analysis.metrics[0].min: ", "unknown field" },
		{ HEAD SVC STABLE CANARY "  strategy: {steps: [{setWeight: 50, wait: 1}]}\n",
		  "t.yaml:9:38: spec.strategy.steps[0].wait: ", "unknown field" },
		{ "apiVersion: canaryd.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\n"
		  "  labels: {app: web}\nspec:\n" SVC STABLE CANARY STEPS,
		  "t.yaml:5:3: metadata.labels: ", "unknown field" },
		{ MIN "  abort: {connections: reset, grace: 5s}\n",
		  "t.yaml:10:31: spec.abort.grace: ", "unknown field" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_wrong_type(void **state)
{
	static const struct bad cases[] = {
		{ HEAD "  service: {vip: 10.96.0.20, port: \"80\"}\n" STABLE CANARY STEPS,
		  "t.yaml:6:36: spec.service.port: ", "expected a number, got a string" },
		{ HEAD "  service: {vip: {a: 1}, port: 80}\n" STABLE CANARY STEPS,
		  "t.yaml:6:18: spec.service.vip: ", "expected a string, got a mapping" },
		{ HEAD SVC "  stable: [\"10.0.1.1:80\"]\n" CANARY STEPS,
		  "t.yaml:7:11: spec.stable: ", "expected a mapping, got a sequence" },
		{ HEAD SVC STABLE "  canary: {endpoints: \"10.0.2.1:80\"}\n" STEPS,
		  "t.yaml:8:23: spec.canary.endpoints: ", "expected a sequence, got a string" },
		{ MIN "  analysis: {minRequests: many}\n",
		  "t.yaml:10:27: spec.analysis.minRequests: ",
		  "expected an integer, got \"many\"" },
		{ MIN "  analysis: {minRequests: 1.5}\n",
		  "t.yaml:10:27: spec.analysis.minRequests: ", "expected an integer" },
		{ MIN "  analysis: {confidence: '0.9'}\n",
		  "t.yaml:10:26: spec.analysis.confidence: ", "expected a number, got a string" },
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("\"10\""),
		  "t.yaml:11:20: spec.strategy.steps[0].setWeight: ",
		  "expected a number, got a string" },
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("[10]"),
		  "t.yaml:11:20: spec.strategy.steps[0].setWeight: ",
		  "expected a number, got a sequence" },
		{ HEAD SVC STABLE CANARY "  strategy: {steps: [{pause: }]}\n",
		  "t.yaml:9:30: spec.strategy.steps[0].pause: ", "expected a mapping" },
		{ "- web\n", "t.yaml:1:1: (document): ", "expected a mapping, got a sequence" },
		{ HEAD SVC STABLE CANARY "  strategy:\n",
		  "t.yaml:9:12: spec.strategy: ", "expected a mapping, got null" },
		{ HEAD SVC STABLE CANARY STEPS "  affinity: 1\n", "t.yaml:10:13: spec.affinity: ",
		  "invalid value \"1\" (expected one of: none, client-ip)" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_address(void **state)
{
	static const struct bad cases[] = {
		{ HEAD "  service: {vip: 10.96.0.256, port: 80}\n" STABLE CANARY STEPS,
		  "t.yaml:6:18: spec.service.vip: ", "invalid IPv4 address \"10.96.0.256\"" },
		{ HEAD "  service: {vip: 0.0.0.0, port: 80}\n" STABLE CANARY STEPS,
		  "t.yaml:6:18: spec.service.vip: ", "not a unicast address" },
		{ HEAD SVC STABLE "  canary: {endpoints: [\"10.0.2.21\"]}\n" STEPS,
		  "t.yaml:8:24: spec.canary.endpoints[0]: ",
		  "invalid endpoint \"10.0.2.21\" (expected IPv4:port)" },
		{ HEAD SVC "  stable: {endpoints: [\"10.0.1.1:80\", 10.0.1.x:80]}\n" CANARY STEPS,
		  "t.yaml:7:39: spec.stable.endpoints[1]: ", "invalid IPv4 address \"10.0.1.x\"" },
		{ HEAD SVC "  stable: {endpoints: [\"10.0.1.1:80\", 10.0.1.1:80]}\n" CANARY STEPS,
		  "t.yaml:7:39: spec.stable.endpoints[1]: ", "duplicate endpoint \"10.0.1.1:80\"" },
		{ HEAD SVC "  stable: {endpoints: [\"10.0.1.1:80\", 127.0.0.1:80]}\n" CANARY STEPS,
		  "t.yaml:7:39: spec.stable.endpoints[1]: ", "127.0.0.1:80\": loopback" },
		{ HEAD SVC STABLE "  canary: {endpoints: [224.0.0.5:80]}\n" STEPS,
		  "t.yaml:8:24: spec.canary.endpoints[0]: ", "224.0.0.5:80\": multicast" },
		{ HEAD SVC STABLE "  canary: {endpoints: [169.254.1.1:80]}\n" STEPS,
		  "t.yaml:8:24: spec.canary.endpoints[0]: ", "169.254.1.1:80\": link-local" },
		/* The VIP itself, on any port: the service would send traffic to itself. */
		{ HEAD SVC "  stable: {endpoints: [10.96.0.20:8080]}\n" CANARY STEPS,
		  "t.yaml:7:24: spec.stable.endpoints[0]: ", "is the service's VIP" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_port(void **state)
{
	static const struct bad cases[] = {
		{ HEAD "  service: {vip: 10.96.0.20, port: 0}\n" STABLE CANARY STEPS,
		  "t.yaml:6:36: spec.service.port: ", "invalid port \"0\" (expected 1..65535)" },
		{ HEAD "  service: {vip: 10.96.0.20, port: 65536}\n" STABLE CANARY STEPS,
		  "t.yaml:6:36: spec.service.port: ", "invalid port \"65536\"" },
		{ HEAD "  service: {vip: 10.96.0.20, port: 80.5}\n" STABLE CANARY STEPS,
		  "t.yaml:6:36: spec.service.port: ", "invalid port \"80.5\"" },
		{ HEAD "  service: {vip: 10.96.0.20, port: http}\n" STABLE CANARY STEPS,
		  "t.yaml:6:36: spec.service.port: ", "invalid port \"http\"" },
		{ HEAD SVC STABLE "  canary: {endpoints: [\"10.0.2.1:70000\"]}\n" STEPS,
		  "t.yaml:8:24: spec.canary.endpoints[0]: ", "invalid port \"70000\"" },
		{ HEAD
		  "  service: {vip: 10.96.0.20, port: 80, protocol: sctp}\n" STABLE CANARY STEPS,
		  "t.yaml:6:50: spec.service.protocol: ",
		  "invalid value \"sctp\" (expected one of: tcp, http, udp)" },
	};

	(void)state;
	CHECK_BAD(cases);
}

#define OVERRIDE(cidr, version) MIN "  overrides:\n    - {cidr: " cidr ", version: " version "}\n"

static void test_err_cidr(void **state)
{
	static const struct bad cases[] = {
		{ OVERRIDE("10.20.0.1/16", "canary"), "t.yaml:11:14: spec.overrides[0].cidr: ",
		  "invalid CIDR \"10.20.0.1/16\": host bits are set" },
		{ OVERRIDE("10.20.0.0/33", "canary"),
		  "t.yaml:11:14: spec.overrides[0].cidr: ", "prefix length must be 0..32" },
		{ OVERRIDE("10.20.0.0", "canary"),
		  "t.yaml:11:14: spec.overrides[0].cidr: ", "expected a.b.c.d/len" },
		{ OVERRIDE("10.20.0.0/16", "beta"), "t.yaml:11:37: spec.overrides[0].version: ",
		  "invalid value \"beta\" (expected one of: stable, canary)" },
		{ MIN "  overrides:\n    - {cidr: 10.20.0.0/16, version: canary}\n"
		      "    - {cidr: 10.20.0.0/16, version: stable}\n",
		  "t.yaml:12:14: spec.overrides[1].cidr: ", "duplicate override for 10.20.0.0/16" },
		{ MIN "  overrides:\n    - {cidr: 10.20.0.0/16}\n",
		  "t.yaml:11:7: spec.overrides[0].version: ", "missing required field" },
	};

	(void)state;
	CHECK_BAD(cases);
}

#define WEIGHT_AT "t.yaml:11:20: spec.strategy.steps[0].setWeight: "

static void test_err_weight(void **state)
{
	static const struct bad cases[] = {
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("101"), WEIGHT_AT, "must be within 0..100" },
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("100.01"), WEIGHT_AT,
		  "must be within 0..100" },
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("12.345"), WEIGHT_AT, "at most 2 decimals" },
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("10%"), WEIGHT_AT,
		  "invalid weight \"10%\" (expected a percent, 0..100)" },
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("-5"), WEIGHT_AT, "expected a percent" },
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("1e2"), WEIGHT_AT, "expected a percent" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_endpoints(void **state)
{
	static const struct bad cases[] = {
		{ HEAD SVC STABLE "  canary: {endpoints: []}\n" STEPS,
		  "t.yaml:8:23: spec.canary.endpoints: ",
		  "empty list (at least one endpoint is required)" },
		{ HEAD SVC "  stable: {revision: v1}\n" CANARY STEPS,
		  "t.yaml:7:11: spec.stable.endpoints: ", "missing required field" },
		{ HEAD SVC STABLE STEPS, "t.yaml:6:3: spec.canary: ", "missing required field" },
		{ HEAD SVC STABLE "  canary:\n    endpoints:\n" STEPS,
		  "t.yaml:9:15: spec.canary.endpoints: ", "expected a sequence, got null" },
	};
	char yaml[2048], *p = yaml;
	int i;

	(void)state;
	CHECK_BAD(cases);
	/* 17 endpoints, one per line from line 9 on: the 17th is the one pointed at. */
	p += sprintf(p, "%s", HEAD SVC STABLE "  canary:\n    endpoints:\n");
	for (i = 0; i < 17; i++)
		p += sprintf(p, "      - 10.0.2.%d:80\n", i + 1);
	sprintf(p, "%s", STEPS);
	check_error(yaml, strlen(yaml),
		    "t.yaml:26:9: spec.canary.endpoints[16]: ", "too many endpoints (at most 16)");
}

/* A side given as a Kubernetes Service, the other one static, in a namespace. */
static void test_service_versions(void **state)
{
	static const char yaml[] =
		"apiVersion: canaryd.io/v1alpha1\n"
		"kind: Rollout\n"
		"metadata: {name: web, namespace: shop}\n"
		"spec:\n" SVC "  stable: {revision: v1, service: web-stable}\n"
		"  canary: {revision: v2, service: web-canary}\n" STEPS
		"---\n" HEAD_NAMED("api") "  service: {vip: 10.96.0.21, port: 80}\n"
					  "  stable: {service: api}\n" CANARY STEPS;
	struct config cfg;
	char err[CONFIG_ERR_LEN];

	(void)state;
	assert_int_equal(parse(yaml, &cfg, err), 0);
	assert_int_equal(cfg.n_rollouts, 2);
	assert_string_equal(cfg.rollouts[0].ns, "shop");
	assert_string_equal(cfg.rollouts[0].stable.service, "web-stable");
	assert_string_equal(cfg.rollouts[0].stable.revision, "v1");
	assert_int_equal(cfg.rollouts[0].stable.n_endpoints, 0);
	assert_string_equal(cfg.rollouts[0].canary.service, "web-canary");
	assert_true(config_uses_services(&cfg.rollouts[0]));
	assert_string_equal(cfg.rollouts[1].ns, "");
	assert_string_equal(cfg.rollouts[1].stable.service, "api");
	assert_string_equal(cfg.rollouts[1].canary.service, "");
	assert_int_equal(cfg.rollouts[1].canary.n_endpoints, 1);
	assert_true(config_uses_services(&cfg.rollouts[1]));
	config_free(&cfg);
	assert_int_equal(parse(MIN, &cfg, err), 0);
	assert_false(config_uses_services(&cfg.rollouts[0]));
	config_free(&cfg);
}

/* The VIP as a Service's ClusterIP: named here, read by the agent (kubeeps.h). */
static void test_vip_from_service(void **state)
{
	static const char yaml[] = HEAD
		"  service: {fromService: web-root, protocol: http}\n"
		"  stable: {service: web-stable}\n  canary: {service: web-canary}\n" STEPS
		"---\n" HEAD_NAMED(
			"api") "  service: {fromService: api, port: 8443, protocol: udp}\n" STABLE
			CANARY STEPS
			       /* The same Service and port as another rollout: only the agent can tell. */
			       "---\n" HEAD_NAMED(
				       "api2") "  service: {fromService: api, port: 8443, protocol: udp}\n" STABLE
				       CANARY STEPS;
	struct config cfg;
	char err[CONFIG_ERR_LEN];

	(void)state;
	assert_int_equal(parse(yaml, &cfg, err), 0);
	assert_int_equal(cfg.n_rollouts, 3);
	assert_string_equal(cfg.rollouts[0].vip_service, "web-root");
	assert_false(cfg.rollouts[0].port_given);
	assert_int_equal(cfg.rollouts[0].service.key.vip, 0); /* not known yet */
	assert_int_equal(cfg.rollouts[0].service.key.proto, IPPROTO_TCP);
	assert_int_equal(cfg.rollouts[0].service.svc_flags, CANARY_SVC_F_HTTP);
	assert_string_equal(cfg.rollouts[1].vip_service, "api");
	assert_true(cfg.rollouts[1].port_given);
	assert_int_equal(cfg.rollouts[1].service.key.port, htons(8443));
	assert_int_equal(cfg.rollouts[1].service.key.proto, IPPROTO_UDP);
	/* A VIP from a Service needs the Kubernetes API, as versions from Services do. */
	assert_true(config_uses_services(&cfg.rollouts[1]));
	config_free(&cfg);
	assert_int_equal(parse(MIN, &cfg, err), 0);
	assert_string_equal(cfg.rollouts[0].vip_service, "");
	assert_true(cfg.rollouts[0].port_given);
	config_free(&cfg);
}

static void test_err_vip_from_service(void **state)
{
	static const struct bad cases[] = {
		{ HEAD
		  "  service: {vip: 10.96.0.20, fromService: web, port: 80}\n" STABLE CANARY STEPS,
		  "t.yaml:6:30: spec.service.fromService: ", "give either vip or fromService" },
		{ HEAD "  service: {port: 80}\n" STABLE CANARY STEPS,
		  "t.yaml:6:12: spec.service.vip: ",
		  "missing required field (or fromService: a Kubernetes Service" },
		{ HEAD "  service: {vip: 10.96.0.20}\n" STABLE CANARY STEPS,
		  "t.yaml:6:12: spec.service.port: ", "missing required field (with vip)" },
		{ HEAD "  service: {fromService: Web}\n" STABLE CANARY STEPS,
		  "t.yaml:6:26: spec.service.fromService: ", "invalid fromService \"Web\"" },
		{ HEAD "  service: {fromService: web, port: 0}\n" STABLE CANARY STEPS,
		  "t.yaml:6:37: spec.service.port: ", "" },
		{ HEAD "  service: {fromService: web, port: \"80\"}\n" STABLE CANARY STEPS,
		  "t.yaml:6:37: spec.service.port: ", "expected a number, got a string" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_service_versions(void **state)
{
	static const struct bad cases[] = {
		{ HEAD SVC "  stable: {service: web, endpoints: [\"10.0.1.1:80\"]}\n" CANARY STEPS,
		  "t.yaml:7:12: spec.stable.service: ", "either endpoints or service, not both" },
		{ HEAD SVC "  stable: {endpoints: [\"10.0.1.1:80\"], service: web}\n" CANARY STEPS,
		  "t.yaml:7:40: spec.stable.service: ", "either endpoints or service, not both" },
		{ HEAD SVC STABLE "  canary: {revision: v2}\n" STEPS,
		  "t.yaml:8:11: spec.canary.endpoints: ", "or service" },
		{ HEAD SVC "  stable: {service: Web}\n" CANARY STEPS,
		  "t.yaml:7:21: spec.stable.service: ", "invalid service \"Web\"" },
		{ HEAD SVC "  stable: {service: web-}\n" CANARY STEPS,
		  "t.yaml:7:21: spec.stable.service: ", "invalid service \"web-\"" },
		{ HEAD SVC "  stable: {service: [web]}\n" CANARY STEPS,
		  "t.yaml:7:21: spec.stable.service: ", "expected a string" },
		{ HEAD SVC "  stable: {service: \"\"}\n" CANARY STEPS,
		  "t.yaml:7:21: spec.stable.service: ", "invalid service \"\"" },
		{ HEAD SVC
		  "  canary: {service: "
		  "a234567890123456789012345678901234567890123456789012345678901234}\n" STABLE
			  STEPS,
		  "t.yaml:7:21: spec.canary.service: ", "invalid service" },
		{ "apiVersion: canaryd.io/v1alpha1\nkind: Rollout\n"
		  "metadata: {name: web, namespace: Shop_1}\nspec:\n" SVC STABLE CANARY STEPS,
		  "t.yaml:3:34: metadata.namespace: ", "invalid namespace \"Shop_1\"" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_duplicate_name(void **state)
{
	static const struct bad cases[] = {
		{ MIN "---\n" HEAD "  service: {vip: 10.96.0.21, port: 80}\n" STABLE CANARY STEPS,
		  "t.yaml:14:9: metadata.name: ",
		  "duplicate rollout name \"web\" (first defined at t.yaml:1:1)" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_vip_clash(void **state)
{
	/* http and tcp are both TCP: one VIP:port cannot be two services. */
	static const struct bad cases[] = {
		{ MIN "---\n" HEAD_NAMED("web2") "  service: {vip: 10.96.0.20, port: 80, "
						 "protocol: http}\n" STABLE CANARY STEPS,
		  "t.yaml:16:12: spec.service: ",
		  "10.96.0.20:80/tcp is already the service of rollout \"web\" (t.yaml:1:1)" },
		{ MIN "---\n" HEAD_NAMED(
			  "web2") "  service:\n    vip: 10.96.0.20\n    port: 80\n" STABLE CANARY
			  STEPS,
		  "t.yaml:17:5: spec.service: ", "already the service of rollout \"web\"" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_duration(void **state)
{
	static const struct bad cases[] = {
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("10") "      - pause: {duration: 30}\n",
		  "t.yaml:12:27: spec.strategy.steps[1].pause.duration: ",
		  "duration needs a unit (ms, s, m, h)" },
		{ MIN "  analysis: {interval: 1}\n",
		  "t.yaml:10:24: spec.analysis.interval: ", "duration needs a unit (ms, s, m, h)" },
		{ MIN "  analysis: {metrics: [{name: latencyP99, max: 250}]}\n",
		  "t.yaml:10:48: spec.analysis.metrics[0].max: ",
		  "duration needs a unit (ms, s, m, h)" },
		{ MIN "  analysis: {interval: 1d}\n", "t.yaml:10:24: spec.analysis.interval: ",
		  "invalid duration \"1d\": has an unknown unit (expected ms, s, m, h)" },
		{ MIN "  analysis: {interval: 1.5ms}\n",
		  "t.yaml:10:24: spec.analysis.interval: ", "not a whole number of milliseconds" },
		{ MIN "  analysis: {interval: 0s}\n",
		  "t.yaml:10:24: spec.analysis.interval: ", "out of range" },
		{ MIN "  analysis: {interval: 721h}\n", "t.yaml:10:24: spec.analysis.interval: ",
		  "out of range (more than 0, at most 720h)" },
		{ MIN "  analysis: {interval: -1s}\n",
		  "t.yaml:10:24: spec.analysis.interval: ", "invalid duration \"-1s\"" },
		{ MIN "  analysis: {interval: 1 s}\n",
		  "t.yaml:10:24: spec.analysis.interval: ", "invalid duration" },
	};

	(void)state;
	CHECK_BAD(cases);
}

/* compareLatencyTail takes a quantile and a tolerance. */
static void test_compare_latency_tail(void **state)
{
	static const char yaml[] = MIN "  analysis: {metrics: [{name: compareLatencyTail, "
				       "quantile: 0.95, maxIncrease: 0.5}]}\n";
	char err[CONFIG_ERR_LEN] = "";
	const struct metric_cfg *m;
	struct config cfg;

	(void)state;
	if (parse(yaml, &cfg, err))
		fail_msg("%s", err);
	m = &cfg.rollouts[0].analysis.metrics[0];
	assert_int_equal(m->kind, METRIC_COMPARE_LATENCY_TAIL);
	assert_float_equal(m->quantile, 0.95, 0);
	assert_float_equal(m->max_increase, 0.5, 0);
	assert_string_equal(metric_kind_name(m->kind), "compareLatencyTail");
	config_free(&cfg);
}

static void test_err_metric_limit(void **state)
{
	static const struct bad cases[] = {
		{ MIN "  analysis: {metrics: [{name: errorRate}]}\n",
		  "t.yaml:10:24: spec.analysis.metrics[0]: ", "errorRate needs a limit (max" },
		{ MIN "  analysis:\n    metrics:\n      - name: latencyP95\n",
		  "t.yaml:12:9: spec.analysis.metrics[0]: ", "latencyP95 needs a limit (max" },
		{ MIN "  analysis: {metrics: [{name: resetRate, max: 1.5}]}\n",
		  "t.yaml:10:47: spec.analysis.metrics[0].max: ",
		  "out of range (a fraction, 0..1)" },
		{ MIN "  analysis: {metrics: [{name: compareErrorRate, max: 0.1}]}\n",
		  "t.yaml:10:49: spec.analysis.metrics[0].max: ",
		  "not allowed for compareErrorRate" },
		{ MIN "  analysis: {metrics: [{name: errorRate, max: 0.1, maxIncrease: 1}]}\n",
		  "t.yaml:10:52: spec.analysis.metrics[0].maxIncrease: ",
		  "not allowed for errorRate" },
		{ MIN "  analysis: {metrics: [{name: compareLatency, maxIncrease: -0.1}]}\n",
		  "t.yaml:10:60: spec.analysis.metrics[0].maxIncrease: ", "out of range" },
		{ MIN "  analysis: {metrics: [{name: compareLatencyTail, quantile: 1}]}\n",
		  "t.yaml:10:61: spec.analysis.metrics[0].quantile: ",
		  "1 is out of range (0.5..0.999: 0.99 is p99)" },
		{ MIN "  analysis: {metrics: [{name: compareLatencyTail, quantile: p99}]}\n",
		  "t.yaml:10:61: spec.analysis.metrics[0].quantile: ", "expected a number" },
		{ MIN "  analysis: {metrics: [{name: compareLatency, quantile: 0.99}]}\n",
		  "t.yaml:10:47: spec.analysis.metrics[0].quantile: ",
		  "not allowed for compareLatency" },
		{ MIN "  analysis: {metrics: [{max: 0.1}]}\n",
		  "t.yaml:10:24: spec.analysis.metrics[0].name: ", "missing required field" },
	};

	(void)state;
	CHECK_BAD(cases);
}

/* dryRun, per-metric failureLimit, inconclusiveLimit and progressDeadline. */
static void test_decision_fields(void **state)
{
	static const char yaml[] = HEAD SVC STABLE CANARY
		"  strategy: {steps: [{setWeight: 50}], progressDeadline: 90s}\n"
		"  analysis:\n"
		"    inconclusiveLimit: 3\n"
		"    metrics:\n"
		"      - {name: errorRate, max: 0.05, failureLimit: 0}\n"
		"      - {name: latencyP99, max: 250ms, dryRun: true}\n";
	static const char none[] = HEAD SVC STABLE CANARY
		"  strategy: {steps: [{setWeight: 50}], progressDeadline: none}\n";
	char err[CONFIG_ERR_LEN];
	struct config c;

	(void)state;
	assert_int_equal(parse(yaml, &c, err), 0);
	assert_int_equal(c.rollouts[0].progress_deadline_ms, 90000);
	assert_int_equal(c.rollouts[0].analysis.inconclusive_limit, 3);
	assert_int_equal(c.rollouts[0].analysis.metrics[0].failure_limit, 0);
	assert_false(c.rollouts[0].analysis.metrics[0].dry_run);
	assert_int_equal(c.rollouts[0].analysis.metrics[1].failure_limit, CONFIG_INHERIT);
	assert_true(c.rollouts[0].analysis.metrics[1].dry_run);
	config_free(&c);
	assert_int_equal(parse(none, &c, err), 0);
	assert_int_equal(c.rollouts[0].progress_deadline_ms, CONFIG_NO_DEADLINE);
	config_free(&c);
	assert_int_equal(parse(MIN, &c, err), 0);
	assert_int_equal(c.rollouts[0].progress_deadline_ms, CONFIG_DEFAULT_PROGRESS_DEADLINE_MS);
	assert_int_equal(c.rollouts[0].analysis.inconclusive_limit, 0);
	config_free(&c);
}

/* spec.notifications: webhooks, their events and formats. */
static void test_notifications(void **state)
{
	static const char yaml[] = MIN
		"  notifications:\n"
		"    - {url: \"http://hooks.example:8080/canary\"}\n"
		"    - {url: \"https://chat.example/hook\", format: slack, events: [aborted, promoted],\n"
		"       timeout: 500ms}\n";
	static const struct bad bad[] = {
		{ MIN "  notifications: [{url: \"ftp://x/y\"}]\n",
		  "t.yaml:10:25: spec.notifications[0].url: ", "expected http://" },
		{ MIN "  notifications: [{url: \"http://x/\", events: [exploded]}]\n",
		  "t.yaml:10:47: spec.notifications[0].events[0]: ", "invalid value \"exploded\"" },
		{ MIN "  notifications: [{url: \"http://x/\", format: teams}]\n",
		  "t.yaml:10:46: spec.notifications[0].format: ", "invalid value \"teams\"" },
		{ MIN "  notifications: [{events: [aborted]}]\n",
		  "t.yaml:10:19: spec.notifications[0].url: ", "missing required field" },
	};
	char err[CONFIG_ERR_LEN];
	struct config c;
	const struct rollout_cfg *r;

	(void)state;
	assert_int_equal(parse(yaml, &c, err), 0);
	r = &c.rollouts[0];
	assert_int_equal(r->n_notifications, 2);
	assert_string_equal(r->notifications[0].url, "http://hooks.example:8080/canary");
	assert_int_equal(r->notifications[0].events, (1U << NOTIFY_EVENT_COUNT) - 1);
	assert_int_equal(r->notifications[0].format, NOTIFY_FORMAT_GENERIC);
	assert_int_equal(r->notifications[0].timeout_ms, 2000);
	assert_int_equal(r->notifications[1].events,
			 (1U << NOTIFY_ABORTED) | (1U << NOTIFY_PROMOTED));
	assert_int_equal(r->notifications[1].format, NOTIFY_FORMAT_SLACK);
	assert_int_equal(r->notifications[1].timeout_ms, 500);
	config_free(&c);
	CHECK_BAD(bad);
}

/* strategy.trafficPolicy: peak and blackout windows. */
static void test_traffic_policy(void **state)
{
	static const char yaml[] = HEAD SVC STABLE CANARY
		"  strategy:\n"
		"    steps: [{setWeight: 50}]\n"
		"    trafficPolicy:\n"
		"      peak: {aboveRps: 2000, maxStepIncrease: 10, pauseFactor: 2}\n"
		"      blackout:\n"
		"        - {days: [sat, sun]}\n"
		"        - {days: [mon, fri], from: \"17:30\", to: \"09:00\", timezone: \"+02:00\"}\n"
		"        - {from: \"12:00\", to: \"13:00\", timezone: local}\n";
	static const struct bad bad[] = {
		{ HEAD SVC STABLE CANARY
		  "  strategy: {steps: [{setWeight: 50}], trafficPolicy: {peak: {aboveRps: 0}}}\n",
		  "t.yaml:9:73: spec.strategy.trafficPolicy.peak.aboveRps: ", "out of range" },
		{ HEAD SVC STABLE CANARY
		  "  strategy: {steps: [{setWeight: 50}], trafficPolicy: {peak: {aboveRps: 5, pauseFactor: 0.5}}}\n",
		  "t.yaml:9:89: spec.strategy.trafficPolicy.peak.pauseFactor: ",
		  "out of range (1..100)" },
		{ HEAD SVC STABLE CANARY
		  "  strategy: {steps: [{setWeight: 50}], trafficPolicy: {blackout: [{from: \"25:00\", to: \"01:00\"}]}}\n",
		  "t.yaml:9:74: spec.strategy.trafficPolicy.blackout[0].from: ", "HH:MM" },
		{ HEAD SVC STABLE CANARY
		  "  strategy: {steps: [{setWeight: 50}], trafficPolicy: {blackout: [{from: \"10:00\"}]}}\n",
		  "t.yaml:9:67: spec.strategy.trafficPolicy.blackout[0]: ",
		  "from and to go together" },
		{ HEAD SVC STABLE CANARY
		  "  strategy: {steps: [{setWeight: 50}], trafficPolicy: {blackout: [{days: [someday]}]}}\n",
		  "t.yaml:9:75: spec.strategy.trafficPolicy.blackout[0].days[0]: ",
		  "invalid value" },
		{ HEAD SVC STABLE CANARY
		  "  strategy: {steps: [{setWeight: 50}], trafficPolicy: {blackout: [{timezone: Mars}]}}\n",
		  "t.yaml:9:78: spec.strategy.trafficPolicy.blackout[0].timezone: ",
		  "expected UTC, local or +HH:MM" },
	};
	char err[CONFIG_ERR_LEN];
	const struct traffic_policy_cfg *t;
	struct config c;

	(void)state;
	assert_int_equal(parse(yaml, &c, err), 0);
	t = &c.rollouts[0].traffic;
	assert_float_equal(t->peak_above_rps, 2000, 0);
	assert_int_equal(t->peak_max_increase_bp, 1000);
	assert_float_equal(t->pause_factor, 2, 0);
	assert_int_equal(t->n_blackouts, 3);
	assert_int_equal(t->blackouts[0].days, (1U << 6) | 1U);
	assert_int_equal(t->blackouts[0].from_min, -1);
	assert_int_equal(t->blackouts[1].days, (1U << 1) | (1U << 5));
	assert_int_equal(t->blackouts[1].from_min, 17 * 60 + 30);
	assert_int_equal(t->blackouts[1].to_min, 9 * 60);
	assert_int_equal(t->blackouts[1].utc_offset_min, 120);
	assert_int_equal(t->blackouts[2].days, 0x7f);
	assert_true(t->blackouts[2].local_time);
	config_free(&c);
	CHECK_BAD(bad);
}

/* Webhooks that decide: a webhook metric and strategy.prePromotion. */
static void test_webhooks(void **state)
{
	static const char yaml[] = HEAD SVC STABLE CANARY
		"  strategy:\n"
		"    steps: [{setWeight: 50}]\n"
		"    prePromotion: {url: \"http://gate.example/confirm\", timeout: 5s}\n"
		"  analysis:\n"
		"    metrics:\n"
		"      - {name: legacy-check, webhook: {url: \"https://mon.example/check\"},\n"
		"         consecutiveErrorLimit: 2}\n";
	static const struct bad bad[] = {
		{ MIN "  analysis: {metrics: [{name: errorRate, webhook: {url: \"http://x/\"}}]}\n",
		  "t.yaml:10:31: spec.analysis.metrics[0].name: ", "built-in metric" },
		{ MIN
		  "  analysis: {metrics: [{name: check, webhook: {url: \"http://x/\"}, max: 1}]}\n",
		  "t.yaml:10:", "max: not allowed for webhook" },
		{ MIN "  analysis: {metrics: [{name: check, webhook: {}}]}\n",
		  "t.yaml:10:", "url: missing required field" },
		{ HEAD SVC STABLE CANARY
		  "  strategy: {steps: [{setWeight: 50}], prePromotion: {url: \"gate\"}}\n",
		  "t.yaml:9:", "expected http://" },
	};
	char err[CONFIG_ERR_LEN];
	const struct rollout_cfg *r;
	struct config c;

	(void)state;
	assert_int_equal(parse(yaml, &c, err), 0);
	r = &c.rollouts[0];
	assert_string_equal(r->pre_promotion_url, "http://gate.example/confirm");
	assert_int_equal(r->pre_promotion_timeout_ms, 5000);
	assert_int_equal(r->analysis.metrics[0].kind, METRIC_WEBHOOK);
	assert_string_equal(r->analysis.metrics[0].hook_url, "https://mon.example/check");
	assert_int_equal(r->analysis.metrics[0].hook_timeout_ms, 2000);
	assert_int_equal(r->analysis.metrics[0].consecutive_error_limit, 2);
	config_free(&c);
	CHECK_BAD(bad);
}

static void test_err_decision_fields(void **state)
{
	static const struct bad cases[] = {
		{ MIN "  analysis: {metrics: [{name: errorRate, max: 0.1, dryRun: yes}]}\n",
		  "t.yaml:10:60: spec.analysis.metrics[0].dryRun: ", "expected true or false" },
		{ MIN "  analysis: {metrics: [{name: errorRate, max: 0.1, failureLimit: -1}]}\n",
		  "t.yaml:10:66: spec.analysis.metrics[0].failureLimit: ", "out of range" },
		{ MIN "  analysis: {inconclusiveLimit: many}\n",
		  "t.yaml:10:33: spec.analysis.inconclusiveLimit: ", "expected an integer" },
		{ HEAD SVC STABLE CANARY
		  "  strategy: {steps: [{setWeight: 50}], progressDeadline: soon}\n",
		  "t.yaml:9:58: spec.strategy.progressDeadline: ", "invalid duration" },
	};

	(void)state;
	CHECK_BAD(cases);
}

/* An external metric: its own name, a query, a successCondition. */
static void test_prometheus_metric(void **state)
{
	static const char yaml[] = MIN
		"  analysis:\n    metrics:\n"
		"      - name: checkout-kpi\n"
		"        prometheus: {address: \"http://127.0.0.1:9090\", query: \"sum(kpi)\"}\n"
		"        successCondition: \"result >= 0.95\"\n"
		"        consecutiveErrorLimit: 2\n"
		"      - name: latency-kpi\n"
		"        prometheus: {address: \"http://prom:9090\", query: \"x\"}\n"
		"        successCondition: \" result<250 \"\n";
	char err[CONFIG_ERR_LEN] = "";
	const struct metric_cfg *m;
	struct config c;

	(void)state;
	assert_int_equal(parse(yaml, &c, err), 0);
	m = &c.rollouts[0].analysis.metrics[0];
	assert_int_equal(m->kind, METRIC_PROMETHEUS);
	assert_string_equal(m->name, "checkout-kpi");
	assert_string_equal(m->prom_address, "http://127.0.0.1:9090");
	assert_string_equal(m->prom_query, "sum(kpi)");
	assert_int_equal(m->cond_op, COND_GE);
	assert_true(m->cond_value == 0.95);
	assert_int_equal(m->consecutive_error_limit, 2);
	assert_true(metric_condition_holds(m, 0.95));
	assert_false(metric_condition_holds(m, 0.9));
	m = &c.rollouts[0].analysis.metrics[1];
	assert_int_equal(m->cond_op, COND_LT);
	assert_int_equal(m->consecutive_error_limit, CONFIG_DEFAULT_CONSECUTIVE_ERRORS);
	assert_true(metric_condition_holds(m, 249.9));
	config_free(&c);
}

/* An https Prometheus with a CA, a client certificate and a bearer token file. */
static void test_prometheus_tls_auth(void **state)
{
	static const char yaml[] = MIN
		"  analysis:\n    metrics:\n"
		"      - name: kpi\n"
		"        prometheus:\n"
		"          address: \"https://prom:9090\"\n"
		"          query: up\n"
		"          tls: {caFile: /etc/p/ca.pem, certFile: /etc/p/c.pem, keyFile: /etc/p/k.pem}\n"
		"          bearerTokenFile: /etc/p/token\n"
		"        successCondition: \"result == 1\"\n"
		"      - name: kpi2\n"
		"        prometheus: {address: \"https://p:1\", query: up, tls: {insecureSkipVerify: true}}\n"
		"        successCondition: \"result == 1\"\n";
	char err[CONFIG_ERR_LEN] = "";
	const struct prom_tls_auth *t;
	struct config c;

	(void)state;
	assert_int_equal(parse(yaml, &c, err), 0);
	t = &c.rollouts[0].analysis.metrics[0].prom_auth;
	assert_string_equal(t->ca_file, "/etc/p/ca.pem");
	assert_string_equal(t->cert_file, "/etc/p/c.pem");
	assert_string_equal(t->key_file, "/etc/p/k.pem");
	assert_string_equal(t->token_file, "/etc/p/token");
	assert_false(t->insecure_skip_verify);
	t = &c.rollouts[0].analysis.metrics[1].prom_auth;
	assert_true(t->insecure_skip_verify);
	assert_string_equal(t->ca_file, "");
	assert_string_equal(t->token_file, "");
	config_free(&c);
}

static void test_err_prometheus_tls_auth(void **state)
{
#define PROMS(addr, extra)                                                                    \
	MIN "  analysis: {metrics: [{name: k, successCondition: \"result < 1\", prometheus: " \
	    "{address: \"" addr "\", query: up, " extra "}}]}\n"
	static const struct bad cases[] = {
		{ PROMS("http://p:1", "bearerTokenFile: /t"),
		  "t.yaml:10:113: spec.analysis.metrics[0].prometheus.bearerTokenFile: ",
		  "needs an https:// address" },
		{ PROMS("http://p:1", "tls: {caFile: /ca}"),
		  "t.yaml:10:113: spec.analysis.metrics[0].prometheus.tls: ",
		  "needs an https:// address" },
		{ PROMS("https://p:1", "bearerTokenFile: token"),
		  "t.yaml:10:131: spec.analysis.metrics[0].prometheus.bearerTokenFile: ",
		  "expected an absolute path" },
		{ PROMS("https://p:1", "tls: {certFile: /c}"),
		  "t.yaml:10:119: spec.analysis.metrics[0].prometheus.tls.keyFile: ",
		  "certFile and keyFile go together" },
		{ PROMS("https://p:1", "tls: {caFile: /ca, insecureSkipVerify: true}"),
		  "t.yaml:10:153: spec.analysis.metrics[0].prometheus.tls.insecureSkipVerify: ",
		  "caFile is never used" },
		{ PROMS("https://p:1", "tls: {insecureSkipVerify: yes}"),
		  "t.yaml:10:140: spec.analysis.metrics[0].prometheus.tls.insecureSkipVerify: ",
		  "expected true or false" },
		{ PROMS("https://p:1", "tls: {caFiles: /ca}"),
		  "t.yaml:10:120: spec.analysis.metrics[0].prometheus.tls.caFiles: ",
		  "unknown field" },
	};
#undef PROMS

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_prometheus_metric(void **state)
{
#define PROM(extra)                                          \
	MIN "  analysis:\n    metrics:\n      - name: kpi\n" \
	    "        prometheus: {address: \"http://127.0.0.1:9090\", query: \"up\"}\n" extra
	static const struct bad cases[] = {
		{ PROM(""), "t.yaml:13:9: spec.analysis.metrics[0]: ", "needs successCondition" },
		{ PROM("        successCondition: \"result ~ 1\"\n"),
		  "t.yaml:14:27: spec.analysis.metrics[0].successCondition: ",
		  "expected \"result OP NUMBER\"" },
		{ PROM("        successCondition: \"result < 1 or 2\"\n"),
		  "t.yaml:14:27: spec.analysis.metrics[0].successCondition: ",
		  "expected \"result OP NUMBER\"" },
		{ PROM("        successCondition: \"result < 1\"\n        max: 1\n"),
		  "t.yaml:15:9: spec.analysis.metrics[0].max: ", "not allowed for prometheus" },
		{ MIN "  analysis: {metrics: [{name: k, prometheus: {address: \"127.0.0.1:9090\", "
		      "query: up}, successCondition: \"result < 1\"}]}\n",
		  "t.yaml:10:56: spec.analysis.metrics[0].prometheus.address: ",
		  "expected http://HOST:PORT" },
		{ MIN "  analysis: {metrics: [{name: k, prometheus: {address: \"http://p:1\"}, "
		      "successCondition: \"result < 1\"}]}\n",
		  "t.yaml:10:46: spec.analysis.metrics[0].prometheus.query: ",
		  "missing required field" },
		{ MIN
		  "  analysis: {metrics: [{name: errorRate, prometheus: {address: \"http://p:1\", "
		  "query: up}, successCondition: \"result < 1\"}]}\n",
		  "t.yaml:10:31: spec.analysis.metrics[0].name: ", "is a built-in metric" },
		{ MIN "  analysis: {metrics: [{name: errorRate, max: 0.1, successCondition: x}]}\n",
		  "t.yaml:10:52: spec.analysis.metrics[0].successCondition: ",
		  "not allowed for errorRate" },
	};
#undef PROM

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_unknown_metric(void **state)
{
	static const struct bad cases[] = {
		{ MIN "  analysis: {metrics: [{name: errRate, max: 0.1}]}\n",
		  "t.yaml:10:31: spec.analysis.metrics[0].name: ",
		  "unknown metric \"errRate\" (expected one of: errorRate, latencyP50, latencyP95, "
		  "latencyP99, resetRate, compareErrorRate, compareLatency, compareLatencyTail)" },
		{ MIN "  analysis: {metrics: [{name: errorRate, max: 0.1}, "
		      "{name: errorRate, max: 0.2}]}\n",
		  "t.yaml:10:60: spec.analysis.metrics[1].name: ",
		  "metric errorRate is listed twice" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_duplicate_key(void **state)
{
	static const struct bad cases[] = {
		{ HEAD "  service: {vip: 10.96.0.20, port: 80, port: 81}\n" STABLE CANARY STEPS,
		  "t.yaml:6:40: spec.service.port: ", "duplicate key (first at 6:30)" },
		{ MIN "spec:\n  service: {}\n",
		  "t.yaml:10:1: spec: ", "duplicate key (first at 5:1)" },
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("10") "        setWeight: 20\n",
		  "t.yaml:12:9: spec.strategy.steps[0].setWeight: ",
		  "duplicate key (first at 11:9)" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_api_version_kind(void **state)
{
	static const struct bad cases[] = {
		{ "apiVersion: canaryd.io/v1\nkind: Rollout\n", "t.yaml:1:13: apiVersion: ",
		  "unsupported apiVersion \"canaryd.io/v1\" (expected canaryd.io/v1alpha1)" },
		{ "apiVersion: canaryd.io/v1alpha1\nkind: Deployment\nspec: {replicas: 1}\n",
		  "t.yaml:2:7: kind: ", "unsupported kind \"Deployment\" (expected Rollout)" },
		{ "apiVersion: v1\nkind: ConfigMap\ndata: {}\n",
		  "t.yaml:1:13: apiVersion: ", "unsupported apiVersion \"v1\"" },
		{ "kind: Rollout\nmetadata: {name: web}\n",
		  "t.yaml:1:1: apiVersion: ", "missing required field" },
		{ MIN "---\napiVersion: canaryd.io/v1alpha1\nkind: rollout\n",
		  "t.yaml:12:7: kind: ", "unsupported kind \"rollout\"" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_yaml_syntax(void **state)
{
	static const struct bad cases[] = {
		{ HEAD "  service: {}\n bad: 1\n", "t.yaml:7:2: (document): ",
		  "did not find expected key (while parsing a block mapping at 1:1)" },
		{ HEAD "  service: {vip: 10.96.0.20, port: 80\n" STABLE,
		  "t.yaml:7:9: spec.service: ",
		  "did not find expected ',' or '}' (while parsing a flow mapping at 6:12)" },
		{ HEAD SVC "\tstable: {}\n",
		  "t.yaml:7:1: spec: ", "found character that cannot start any token" },
		{ "apiVersion: \"canaryd.io/v1alpha1\n",
		  "t.yaml:2:1: apiVersion: ", "found unexpected end of stream" },
		{ "apiVersion: x\n\x01\n", "t.yaml:2:1: ", "control characters are not allowed" },
		{ MIN "  affinity: &a none\n  abort: *a\n",
		  "t.yaml:11:10: spec.abort: ", "aliases (*a) are not supported" },
		{ MIN "  affinity: !Ref none\n",
		  "t.yaml:10:13: spec.affinity: ", "unsupported tag \"!Ref\"" },
		{ MIN "  affinity: \"none\\0\"\n",
		  "t.yaml:10:13: spec.affinity: ", "NUL character in a string" },
		{ MIN "  ? [a]\n  : b\n", "t.yaml:10:5: spec: ", "mapping keys must be strings" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_step_shape(void **state)
{
	static const struct bad cases[] = {
		{ HEAD SVC STABLE CANARY BLOCK_STEPS("10") "        pause: {}\n",
		  "t.yaml:12:9: spec.strategy.steps[0].pause: ",
		  "a step is either setWeight or pause, not both" },
		{ HEAD SVC STABLE CANARY "  strategy: {steps: [{pause: {}, setWeight: 10}]}\n",
		  "t.yaml:9:34: spec.strategy.steps[0].setWeight: ", "not both" },
		{ HEAD SVC STABLE CANARY "  strategy: {steps: [{}]}\n",
		  "t.yaml:9:22: spec.strategy.steps[0]: ", "a step needs setWeight or pause" },
		{ HEAD SVC STABLE CANARY "  strategy: {steps: [{pause: {duration: 1s, max: 2}}]}\n",
		  "t.yaml:9:45: spec.strategy.steps[0].pause.max: ", "unknown field" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_steps_empty(void **state)
{
	static const struct bad cases[] = {
		{ HEAD SVC STABLE CANARY "  strategy: {steps: []}\n",
		  "t.yaml:9:21: spec.strategy.steps: ",
		  "empty list (at least one step is required)" },
		{ HEAD SVC STABLE CANARY
		  "  strategy: {steps: [{pause: {}}, {pause: {duration: 1m}}]}\n",
		  "t.yaml:9:21: spec.strategy.steps: ", "at least one setWeight step is required" },
		{ HEAD SVC STABLE CANARY "  strategy: {}\n",
		  "t.yaml:9:13: spec.strategy.steps: ", "missing required field" },
		{ HEAD SVC STABLE CANARY, "t.yaml:6:3: spec.strategy: ", "missing required field" },
	};

	(void)state;
	CHECK_BAD(cases);
}

static void test_err_values(void **state)
{
	static const struct bad cases[] = {
		{ HEAD_NAMED("Web") SVC STABLE CANARY STEPS,
		  "t.yaml:4:9: metadata.name: ", "invalid name \"Web\"" },
		{ HEAD_NAMED("9lives") SVC STABLE CANARY STEPS,
		  "t.yaml:4:9: metadata.name: ", "starting with a letter" },
		{ HEAD_NAMED("web-") SVC STABLE CANARY STEPS,
		  "t.yaml:4:9: metadata.name: ", "invalid name" },
		{ HEAD_NAMED("a2345678901234567890123456789012") SVC STABLE CANARY STEPS,
		  "t.yaml:4:9: metadata.name: ", "1..31" },
		{ HEAD_NAMED("web_1") SVC STABLE CANARY STEPS,
		  "t.yaml:4:9: metadata.name: ", "invalid name" },
		{ HEAD SVC
		  "  stable: {revision: "
		  "a234567890123456789012345678901234567890123456789012345678901234, endpoints: "
		  "[\"10.0.1.1:80\"]}\n" CANARY STEPS,
		  "t.yaml:7:22: spec.stable.revision: ", "too long (at most 63 characters)" },
		{ MIN "  analysis: {confidence: 0.5}\n", "t.yaml:10:26: spec.analysis.confidence: ",
		  "out of range (more than 0.5, less than 1)" },
		{ MIN "  analysis: {confidence: 1.0}\n",
		  "t.yaml:10:26: spec.analysis.confidence: ", "out of range" },
		{ MIN "  analysis: {confidence: .inf}\n",
		  "t.yaml:10:26: spec.analysis.confidence: ", "expected a number" },
		{ MIN "  analysis: {minRequests: 0}\n", "t.yaml:10:27: spec.analysis.minRequests: ",
		  "0 is out of range (1..1000000000)" },
		{ MIN "  analysis: {failureLimit: -1}\n",
		  "t.yaml:10:28: spec.analysis.failureLimit: ", "-1 is out of range (0..1000000)" },
		{ MIN "  analysis: {failureLimit: 99999999999999999999999}\n",
		  "t.yaml:10:28: spec.analysis.failureLimit: ", "out of range" },
		{ MIN "  abort: {connections: kill}\n", "t.yaml:10:24: spec.abort.connections: ",
		  "invalid value \"kill\" (expected one of: reset, drain)" },
	};

	(void)state;
	CHECK_BAD(cases);
}

/* Bounds: rollouts per load, nesting, and every list. */
static void test_err_bounds(void **state)
{
	size_t cap = (size_t)1100 * 512, i;
	char *yaml = malloc(cap), *p = yaml;

	(void)state;
	assert_non_null(yaml);
	/* 1025 rollouts of 10 lines each: the 1025th document starts at line 10241. */
	for (i = 0; i < CANARY_MAX_SERVICES + 1; i++)
		p += sprintf(
			p,
			"---\n" HEAD_NAMED(
				"r%zu") "  service: {vip: 10.96.%zu.%zu, port: 80}\n" STABLE CANARY
				STEPS,
			i, i / 200, i % 200 + 1);
	check_error(yaml, strlen(yaml), "t.yaml:10241:1: (document): ", "more than 1024 rollouts");

	sprintf(yaml, "apiVersion: canaryd.io/v1alpha1\nkind: Rollout\nmetadata: %s%s\n",
		"[[[[[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]]]]]");
	check_error(yaml, strlen(yaml), "t.yaml:3:26: metadata[0]",
		    "nesting deeper than 16 levels");

	p = yaml + sprintf(yaml, "%s", HEAD SVC STABLE CANARY "  strategy:\n    steps:\n");
	for (i = 0; i < 33; i++)
		p += sprintf(p, "      - setWeight: %zu\n", i);
	check_error(yaml, strlen(yaml),
		    "t.yaml:43:9: spec.strategy.steps[32]: ", "too many steps (at most 32)");

	p = yaml + sprintf(yaml, "%s", MIN "  overrides:\n");
	for (i = 0; i < 65; i++)
		p += sprintf(p, "    - {cidr: 10.%zu.0.0/16, version: canary}\n", i);
	check_error(yaml, strlen(yaml),
		    "t.yaml:75:7: spec.overrides[64]: ", "too many overrides (at most 64)");

	p = yaml + sprintf(yaml, "%s", MIN "  analysis:\n    metrics:\n");
	for (i = 0; i < 17; i++)
		p += sprintf(p, "      - {name: compareErrorRate}\n");
	check_error(yaml, strlen(yaml),
		    "t.yaml:28:9: spec.analysis.metrics[16]: ", "too many metrics (at most 16)");

	/* Many nodes in one document are cut off before they cost much memory. */
	p = yaml + sprintf(yaml, "%s", MIN "  overrides: [");
	for (i = 0; i < 9000; i++)
		p += sprintf(p, "a,");
	sprintf(p, "a]\n");
	check_error(yaml, strlen(yaml), "t.yaml:10:", "document too large");
	free(yaml);
}

/* Seeded random byte mutations of the contract example: no crash, no leak, a message. */
static void test_mutations(void **state)
{
	char buf[sizeof(contract)], err[CONFIG_ERR_LEN];
	__u32 x = 0xc0ffee;
	int i, k, ok = 0;

	(void)state;
	for (i = 0; i < 200; i++) {
		struct config cfg = { .rollouts = SENTINEL, .n_rollouts = 4242 };
		int rc;

		memcpy(buf, contract, sizeof(buf));
		for (k = 0; k < 1 + i % 3; k++) {
			/* xorshift32 */
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			buf[x % (sizeof(buf) - 1)] = (char)(x >> 24);
		}
		err[0] = '\0';
		rc = config_parse_buffer("m.yaml", buf, sizeof(buf) - 1, &cfg, err, sizeof(err));
		if (rc == 0) {
			ok++;
			config_free(&cfg);
			continue;
		}
		assert_int_equal(rc, -1);
		assert_true(err[0] != '\0');
		assert_ptr_equal(cfg.rollouts, SENTINEL);
		assert_int_equal(cfg.n_rollouts, 4242);
	}
	/* Some mutations land in comments or harmless places. */
	assert_true(ok > 0 && ok < 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_other_values),
		cmocka_unit_test(test_multiple_documents),
		cmocka_unit_test(test_metric_kind_name),
		cmocka_unit_test_setup_teardown(test_directory, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_name_across_files, dir_setup,
						dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_limits, dir_setup, dir_teardown),
		cmocka_unit_test(test_err_unknown_field),
		cmocka_unit_test(test_err_wrong_type),
		cmocka_unit_test(test_err_address),
		cmocka_unit_test(test_err_port),
		cmocka_unit_test(test_err_cidr),
		cmocka_unit_test(test_err_weight),
		cmocka_unit_test(test_err_endpoints),
		cmocka_unit_test(test_service_versions),
		cmocka_unit_test(test_err_service_versions),
		cmocka_unit_test(test_vip_from_service),
		cmocka_unit_test(test_err_vip_from_service),
		cmocka_unit_test(test_err_duplicate_name),
		cmocka_unit_test(test_err_vip_clash),
		cmocka_unit_test(test_err_duration),
		cmocka_unit_test(test_compare_latency_tail),
		cmocka_unit_test(test_err_metric_limit),
		cmocka_unit_test(test_decision_fields),
		cmocka_unit_test(test_err_decision_fields),
		cmocka_unit_test(test_notifications),
		cmocka_unit_test(test_traffic_policy),
		cmocka_unit_test(test_webhooks),
		cmocka_unit_test(test_err_unknown_metric),
		cmocka_unit_test(test_prometheus_metric),
		cmocka_unit_test(test_err_prometheus_metric),
		cmocka_unit_test(test_prometheus_tls_auth),
		cmocka_unit_test(test_err_prometheus_tls_auth),
		cmocka_unit_test(test_err_duplicate_key),
		cmocka_unit_test(test_err_api_version_kind),
		cmocka_unit_test(test_err_yaml_syntax),
		cmocka_unit_test(test_err_step_shape),
		cmocka_unit_test(test_err_steps_empty),
		cmocka_unit_test(test_err_values),
		cmocka_unit_test(test_err_bounds),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
