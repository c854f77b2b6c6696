// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

/*
 * 2 added the revision, the step list's fingerprint, the wait for a
 * decision and the analysis evidence; format 1 files still load.
 */
#define STATE_FORMAT_VERSION 2

int state_dir_prepare(const char *dir)
{
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int state_path(const char *dir, const char *name, const char *suffix, char *buf, size_t len)
{
	if (snprintf(buf, len, "%s/%s.json%s", dir, name, suffix) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

static json_t *state_to_json(const struct rollout_state *st, json_t *evidence)
{
	char fp[24], steps_fp[24];
	json_t *obj;

	snprintf(fp, sizeof(fp), "%016" PRIx64, (uint64_t)st->canary_fingerprint);
	snprintf(steps_fp, sizeof(steps_fp), "%016" PRIx64, (uint64_t)st->steps_fingerprint);
	obj = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:I, s:I, s:b, s:i, s:s, "
			"s:I, s:b, s:I}",
			"version", STATE_FORMAT_VERSION, "name", st->name, "canary_fingerprint", fp,
			"canary_revision", st->canary_revision, "steps_fingerprint", steps_fp,
			"phase", rollout_phase_name(st->phase), "step", st->step,
			"weight_basis_points", st->weight_bp, "step_started", st->step_started,
			"pause_until_ms", (json_int_t)st->pause_until_ms, "pause_left_ms",
			(json_int_t)st->pause_left_ms, "user_paused", st->user_paused, "aborts",
			(int)st->aborts, "message", st->message, "wait_since_ms",
			(json_int_t)st->wait_since_ms, "rejudge", st->rejudge, "started_ms",
			(json_int_t)st->started_ms);
	if (obj && evidence)
		json_object_set(obj, "evidence", evidence);
	return obj;
}

/* Write all of buf, fsync if asked, close. */
static int write_file(const char *path, const char *buf, size_t len, bool sync)
{
	int fd, err = 0;
	size_t off = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (!err && sync && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	return err;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

int state_save(const char *dir, const struct rollout_state *st, json_t *evidence, bool sync)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	json_t *obj;
	char *text;
	int err;

	err = state_path(dir, st->name, "", path, sizeof(path));
	if (!err)
		err = state_path(dir, st->name, ".tmp", tmp, sizeof(tmp));
	if (err)
		return err;
	obj = state_to_json(st, evidence);
	text = obj ? json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(obj);
	if (!text)
		return -ENOMEM;
	err = write_file(tmp, text, strlen(text), sync);
	free(text);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp); /* the old state file, if any, is untouched */
		return err;
	}
	return sync ? fsync_dir(dir) : 0;
}

/* Fields format 2 added; absent from format 1 files. */
static void state_v2_from_json(json_t *obj, struct rollout_state *st)
{
	const char *rev = "", *steps_fp = NULL;
	json_int_t since = 0, started = 0;
	int rejudge = 0;

	json_unpack(obj, "{s?s, s?s, s?I, s?b, s?I}", "canary_revision", &rev, "steps_fingerprint",
		    &steps_fp, "wait_since_ms", &since, "rejudge", &rejudge, "started_ms",
		    &started);
	st->started_ms = started;
	snprintf(st->canary_revision, sizeof(st->canary_revision), "%s", rev);
	st->steps_fingerprint = steps_fp ? strtoull(steps_fp, NULL, 16) : 0;
	st->wait_since_ms = since;
	st->rejudge = rejudge;
}

static int state_from_json(json_t *obj, const char *name, struct rollout_state *st)
{
	const char *fp = NULL, *phase = NULL, *message = "";
	json_int_t until = 0, left = 0;
	int version = 0, step = 0, weight = 0, started = 0, paused = 0, aborts = 0;
	json_error_t jerr;

	if (!json_unpack_ex(obj, &jerr, 0, "{s:i}", "version", &version) &&
	    version > STATE_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	if (json_unpack_ex(obj, &jerr, 0, "{s:i, s:s, s:s, s:i, s:i, s:b, s:I, s:I, s:b, s:i, s?s}",
			   "version", &version, "canary_fingerprint", &fp, "phase", &phase, "step",
			   &step, "weight_basis_points", &weight, "step_started", &started,
			   "pause_until_ms", &until, "pause_left_ms", &left, "user_paused", &paused,
			   "aborts", &aborts, "message", &message))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	if (version < 1 || rollout_phase_parse(phase, &st->phase) || step < 0 || weight < 0 ||
	    weight > CANARY_WEIGHT_MAX || aborts < 0)
		return -EINVAL;
	snprintf(st->name, sizeof(st->name), "%s", name);
	st->canary_fingerprint = strtoull(fp, NULL, 16);
	st->step = step;
	st->weight_bp = (__u16)weight;
	st->step_started = started;
	st->pause_until_ms = until;
	st->pause_left_ms = left;
	st->user_paused = paused;
	st->aborts = (__u32)aborts;
	snprintf(st->message, sizeof(st->message), "%s", message);
	if (version >= 2)
		state_v2_from_json(obj, st);
	return 0;
}

int state_load(const char *dir, const char *name, struct rollout_state *st, json_t **evidence)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *obj;
	int err;

	if (evidence)
		*evidence = NULL;
	err = state_path(dir, name, "", path, sizeof(path));
	if (err)
		return err;
	if (access(path, F_OK))
		return -errno;
	obj = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj)
		return -EINVAL;
	err = state_from_json(obj, name, st);
	if (!err && evidence) {
		*evidence = json_object_get(obj, "evidence");
		json_incref(*evidence);
	}
	json_decref(obj);
	return err;
}

/* Rename NAME.json to NAME.json.SUFFIX (aside) or back, and make it durable. */
static int rename_state(const char *dir, const char *name, const char *suffix, bool aside)
{
	char path[PATH_MAX], other[PATH_MAX], sfx[64];
	int err;

	snprintf(sfx, sizeof(sfx), ".%s", suffix);
	err = state_path(dir, name, "", path, sizeof(path));
	if (!err)
		err = state_path(dir, name, sfx, other, sizeof(other));
	if (err)
		return err;
	if (aside ? rename(path, other) : rename(other, path))
		return -errno;
	return fsync_dir(dir);
}

int state_set_aside(const char *dir, const char *name, const char *suffix)
{
	return rename_state(dir, name, suffix, true);
}

int state_take_back(const char *dir, const char *name, const char *suffix)
{
	return rename_state(dir, name, suffix, false);
}

int state_remove(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int err = state_path(dir, name, "", path, sizeof(path));

	if (err)
		return err;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return 0;
}
