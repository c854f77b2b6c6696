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

#define STATE_FORMAT_VERSION 1

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

static json_t *state_to_json(const struct rollout_state *st)
{
	char fp[24];

	snprintf(fp, sizeof(fp), "%016" PRIx64, (uint64_t)st->canary_fingerprint);
	return json_pack("{s:i, s:s, s:s, s:s, s:i, s:i, s:b, s:I, s:I, s:b, s:i, s:s}", "version",
			 STATE_FORMAT_VERSION, "name", st->name, "canary_fingerprint", fp, "phase",
			 rollout_phase_name(st->phase), "step", st->step, "weight_basis_points",
			 st->weight_bp, "step_started", st->step_started, "pause_until_ms",
			 (json_int_t)st->pause_until_ms, "pause_left_ms",
			 (json_int_t)st->pause_left_ms, "user_paused", st->user_paused, "aborts",
			 (int)st->aborts, "message", st->message);
}

/* Write all of buf, fsync, close. */
static int write_file_synced(const char *path, const char *buf, size_t len)
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
	if (!err && fsync(fd))
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

int state_save(const char *dir, const struct rollout_state *st)
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
	obj = state_to_json(st);
	text = obj ? json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(obj);
	if (!text)
		return -ENOMEM;
	err = write_file_synced(tmp, text, strlen(text));
	free(text);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp); /* the old state file, if any, is untouched */
		return err;
	}
	return fsync_dir(dir);
}

static int state_from_json(json_t *obj, const char *name, struct rollout_state *st)
{
	const char *fp = NULL, *phase = NULL, *message = "";
	json_int_t until = 0, left = 0;
	int version = 0, step = 0, weight = 0, started = 0, paused = 0, aborts = 0;
	json_error_t jerr;

	if (json_unpack_ex(obj, &jerr, 0, "{s:i, s:s, s:s, s:i, s:i, s:b, s:I, s:I, s:b, s:i, s?s}",
			   "version", &version, "canary_fingerprint", &fp, "phase", &phase, "step",
			   &step, "weight_basis_points", &weight, "step_started", &started,
			   "pause_until_ms", &until, "pause_left_ms", &left, "user_paused", &paused,
			   "aborts", &aborts, "message", &message))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	if (version != STATE_FORMAT_VERSION || rollout_phase_parse(phase, &st->phase) || step < 0 ||
	    weight < 0 || weight > CANARY_WEIGHT_MAX || aborts < 0)
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
	return 0;
}

int state_load(const char *dir, const char *name, struct rollout_state *st)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *obj;
	int err;

	err = state_path(dir, name, "", path, sizeof(path));
	if (err)
		return err;
	if (access(path, F_OK))
		return -errno;
	obj = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj)
		return -EINVAL;
	err = state_from_json(obj, name, st);
	json_decref(obj);
	return err;
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
