// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the Rollout configuration parser (userspace/config.c).
 *
 * Any byte string goes to config_parse_buffer(). Besides what ASan/UBSan
 * catch, the contract of config.h is checked and a breach abort()s so that
 * libFuzzer saves the input:
 *   - the return value is 0 or -1;
 *   - on -1 an error message is set ("file:line:column: path: what");
 *   - on 0 every rollout is within the limits the parser promises (names,
 *     endpoint and step counts, weights, durations...), and config_free()
 *     releases it (LeakSanitizer checks that).
 *
 * Build: tests/fuzz/fuzz.mk. Run: tests/fuzz/run.sh.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define FUZZ_NAME "fuzz.yaml"

static void broken(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_config: contract broken: %s%s%s\n", what, detail ? ": " : "",
		detail ? detail : "");
	abort();
}

static size_t bounded_len(const char *s, size_t cap)
{
	const char *nul = memchr(s, '\0', cap);

	if (!nul)
		broken("string not terminated inside its buffer", NULL);
	return (size_t)(nul - s);
}

static void check_version(const struct version_cfg *v)
{
	bounded_len(v->revision, sizeof(v->revision));
	if (v->n_endpoints < 1 || v->n_endpoints > CANARY_MAX_BACKENDS)
		broken("endpoint count out of 1..CANARY_MAX_BACKENDS", NULL);
	for (int i = 0; i < v->n_endpoints; i++) {
		if (v->endpoints[i].port == 0)
			broken("endpoint with port 0", NULL);
		for (int j = 0; j < i; j++)
			if (v->endpoints[i].addr == v->endpoints[j].addr &&
			    v->endpoints[i].port == v->endpoints[j].port)
				broken("duplicate endpoint accepted", NULL);
	}
}

static void check_rollout(const struct rollout_cfg *r)
{
	size_t len = bounded_len(r->name, sizeof(r->name));
	bool has_weight = false;

	if (len == 0)
		broken("empty rollout name", NULL);
	bounded_len(r->origin, sizeof(r->origin));
	if (r->service.key.proto != 6 && r->service.key.proto != 17)
		broken("service protocol neither TCP nor UDP", r->name);
	if (r->service.key.port == 0 || r->service.key.vip == 0)
		broken("service with port or vip 0", r->name);
	check_version(&r->stable);
	check_version(&r->canary);
	if (r->affinity != CANARY_AFFINITY_NONE && r->affinity != CANARY_AFFINITY_CLIENT_IP)
		broken("affinity out of range", r->name);
	if (r->n_overrides < 0 || r->n_overrides > CONFIG_MAX_OVERRIDES)
		broken("override count out of range", r->name);
	for (int i = 0; i < r->n_overrides; i++) {
		const struct override_cfg *o = &r->overrides[i];

		if (o->prefixlen > 32)
			broken("override prefix longer than 32", r->name);
		if (o->version != CANARY_V_STABLE && o->version != CANARY_V_CANARY)
			broken("override version out of range", r->name);
	}
	if (r->n_steps < 1 || r->n_steps > CONFIG_MAX_STEPS)
		broken("step count out of 1..CONFIG_MAX_STEPS", r->name);
	for (int i = 0; i < r->n_steps; i++) {
		const struct step_cfg *s = &r->steps[i];

		if (s->kind == STEP_SET_WEIGHT) {
			has_weight = true;
			if (s->weight_bp > CANARY_WEIGHT_MAX)
				broken("setWeight above 100%", r->name);
		} else if (s->kind == STEP_PAUSE) {
			if (s->pause_ms != CONFIG_PAUSE_INDEFINITE && s->pause_ms <= 0)
				broken("pause with a duration <= 0", r->name);
		} else {
			broken("unknown step kind", r->name);
		}
	}
	if (!has_weight)
		broken("steps without any setWeight accepted", r->name);
	if (r->analysis.interval_ms <= 0 || r->analysis.min_requests < 1 ||
	    !(r->analysis.confidence > 0 && r->analysis.confidence < 1))
		broken("analysis settings out of range", r->name);
	if (r->analysis.n_metrics < 0 || r->analysis.n_metrics > CONFIG_MAX_METRICS)
		broken("metric count out of range", r->name);
	for (int i = 0; i < r->analysis.n_metrics; i++) {
		const struct metric_cfg *m = &r->analysis.metrics[i];

		if (m->kind >= METRIC_KIND_COUNT)
			broken("metric kind out of range", r->name);
		bounded_len(m->name, sizeof(m->name));
		bounded_len(m->prom_address, sizeof(m->prom_address));
		bounded_len(m->prom_query, sizeof(m->prom_query));
		bounded_len(m->prom_auth.ca_file, sizeof(m->prom_auth.ca_file));
		bounded_len(m->prom_auth.cert_file, sizeof(m->prom_auth.cert_file));
		bounded_len(m->prom_auth.key_file, sizeof(m->prom_auth.key_file));
		bounded_len(m->prom_auth.token_file, sizeof(m->prom_auth.token_file));
		/* The token must never be sent in clear. */
		if (m->prom_auth.token_file[0] && strncmp(m->prom_address, "https://", 8) != 0)
			broken("a bearer token file for a plain http address", r->name);
		if (!isfinite(m->max) || !isfinite(m->max_increase) || !isfinite(m->cond_value))
			broken("non-finite metric limit accepted", r->name);
	}
	if (r->abort_connections != ABORT_CONNECTIONS_RESET &&
	    r->abort_connections != ABORT_CONNECTIONS_DRAIN)
		broken("abort mode out of range", r->name);
}

/* The contract for every answer, from a buffer or from files. */
static void check_result(int rc, struct config *cfg, const char *err, size_t errlen)
{
	if (rc == -1) {
		if (err[0] == '\0')
			broken("rc == -1 and no error message", NULL);
		bounded_len(err, errlen);
		return;
	}
	if (rc != 0)
		broken("return value neither 0 nor -1", NULL);
	if ((cfg->n_rollouts == 0) != (cfg->rollouts == NULL))
		broken("rollouts pointer and count disagree", NULL);
	for (size_t i = 0; i < cfg->n_rollouts; i++) {
		check_rollout(&cfg->rollouts[i]);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cfg->rollouts[i].name, cfg->rollouts[j].name))
				broken("duplicate rollout names accepted", cfg->rollouts[i].name);
	}
	config_free(cfg);
}

/*
 * Input modes, by the first byte, so that small inputs reach the large
 * and file-system cases too:
 *   0xff N BODY  BODY repeated (N + 1) * 64 times: past the node, depth and
 *                1 MiB limits;
 *   0xfe FILES   NUL-separated files written to a directory (the 3rd as a
 *                hidden "..data"-style name, the 4th as a FIFO) and loaded
 *                with config_load(), the way --config DIR is;
 *   anything else: the bytes as one buffer.
 */
#define MODE_AMPLIFY  0xff
#define MODE_DIR      0xfe
#define MAX_AMPLIFIED ((size_t)1024 * 1024 + 4096)
#define MAX_DIR_FILES 6

static char fuzz_dir[256];

static void parse_amplified(const uint8_t *data, size_t size)
{
	static char buf[MAX_AMPLIFIED];
	size_t reps, len = 0, body = size - 2;
	char err[CONFIG_ERR_LEN] = "";
	struct config cfg;

	if (size < 3)
		return;
	for (reps = ((size_t)data[1] + 1) * 64; reps && len + body <= sizeof(buf); reps--) {
		memcpy(buf + len, data + 2, body);
		len += body;
	}
	memset(&cfg, 0xa5, sizeof(cfg));
	check_result(config_parse_buffer(FUZZ_NAME, buf, len, &cfg, err, sizeof(err)), &cfg, err,
		     sizeof(err));
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return;
	if (fwrite(data, 1, len, f) != len)
		fprintf(stderr, "fuzz_config: short write to %s\n", path);
	fclose(f);
}

/* The files of one input, written, loaded and removed. */
static void parse_dir(const uint8_t *data, size_t size)
{
	static const char *const names[MAX_DIR_FILES] = { "a.yaml",    "b.yml",	 "..data.yaml",
							  "fifo.yaml", "e.yaml", "f.txt" };
	char err[CONFIG_ERR_LEN] = "", path[128];
	const uint8_t *p = data, *end = data + size;
	struct config cfg;
	int i;

	for (i = 0; i < MAX_DIR_FILES && p <= end; i++) {
		const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
		size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);

		snprintf(path, sizeof(path), "%s/%s", fuzz_dir, names[i]);
		if (i == 3)
			mkfifo(path, 0600); /* must be skipped, never block */
		else
			write_file(path, p, len);
		p += len + 1;
	}
	memset(&cfg, 0xa5, sizeof(cfg));
	check_result(config_load(fuzz_dir, &cfg, err, sizeof(err)), &cfg, err, sizeof(err));
	for (i = 0; i < MAX_DIR_FILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", fuzz_dir, names[i]);
		unlink(path);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("TMPDIR");

	/* Under TMPDIR: tests/fuzz/run.sh points it at its work directory, removed after. */
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fuzz_dir))
		fuzz_dir[0] = '\0';
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONFIG_ERR_LEN];
	struct config cfg;

	if (size && data[0] == MODE_AMPLIFY) {
		parse_amplified(data, size);
		return 0;
	}
	if (size && data[0] == MODE_DIR && fuzz_dir[0]) {
		parse_dir(data + 1, size - 1);
		return 0;
	}
	memset(&cfg, 0xa5, sizeof(cfg)); /* "left untouched" on error: poison it */
	memset(err, 0, sizeof(err));
	check_result(
		config_parse_buffer(FUZZ_NAME, (const char *)data, size, &cfg, err, sizeof(err)),
		&cfg, err, sizeof(err));
	return 0;
}
