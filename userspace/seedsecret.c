// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The hash seeds' secret. Seeds used to be a hash of the rollout name alone,
 * so anyone who knew the name could pick source ports that land on the
 * canary. Now they are SipHash-2-4 of the name under 16 random bytes kept in
 * a pinned map: unknown outside the node, yet the same after a restart, so
 * client-IP stickiness and the split survive it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "canary_consts.h"
#include "seedsecret.h"
#include "siphash.h"

#define SECRET_PIN CANARY_MAP_NAME("secret")

static int pin_path(char *buf, size_t len, const char *bpffs)
{
	int n = snprintf(buf, len, "%s/%s", bpffs, SECRET_PIN);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* A pinned map is ours only with exactly this shape. */
static int check_shape(int fd)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY || info.key_size != sizeof(__u32) ||
	    info.value_size != sizeof(struct canary_secret) || info.max_entries != 1)
		return -EINVAL;
	return 0;
}

static int read_pinned(const char *path, struct canary_secret *out)
{
	__u32 zero = 0;
	int fd = bpf_obj_get(path), err;

	if (fd < 0)
		return -errno;
	err = check_shape(fd);
	if (!err && bpf_map_lookup_elem(fd, &zero, out))
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* Filled before it is pinned: nobody ever sees the map without its bytes. */
static int create_pinned(const char *path, struct canary_secret *out)
{
	__u32 zero = 0;
	int fd, err = 0;

	if (getrandom(out->key, sizeof(out->key), 0) != (ssize_t)sizeof(out->key))
		return -EIO;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, SECRET_PIN, sizeof(__u32), sizeof(*out), 1, NULL);
	if (fd < 0)
		return -errno;
	if (bpf_map_update_elem(fd, &zero, out, BPF_ANY) || bpf_obj_pin(fd, path))
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int seed_secret_open(const char *bpffs, struct canary_secret *out, bool *created)
{
	char path[PATH_MAX];
	int fd, err = pin_path(path, sizeof(path), bpffs);

	*created = false;
	if (err)
		return err;
	fd = read_pinned(path, out);
	if (fd != -ENOENT)
		return fd;
	if (mkdir(bpffs, 0700) && errno != EEXIST)
		return -errno;
	fd = create_pinned(path, out);
	if (fd == -EEXIST) /* pinned by someone else meanwhile: theirs counts */
		return read_pinned(path, out);
	*created = fd >= 0;
	return fd;
}

int seed_secret_repin(int fd, const char *bpffs)
{
	char path[PATH_MAX];
	struct stat st;
	int err = pin_path(path, sizeof(path), bpffs);

	if (err)
		return err;
	if (!stat(path, &st))
		return 0;
	if (errno != ENOENT)
		return -errno;
	if (mkdir(bpffs, 0700) && errno != EEXIST)
		return -errno;
	return bpf_obj_pin(fd, path) ? -errno : 1;
}

__u32 seed_secret_seed(const struct canary_secret *s, const char *name)
{
	return (__u32)siphash24(s->key, name, strlen(name));
}
