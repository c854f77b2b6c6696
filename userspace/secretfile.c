// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secretfile.h"

#define MAX_PEM (1 << 20)

static void stamp_of(const struct stat *sb, struct file_stamp *stamp)
{
	*stamp = (struct file_stamp){
		.dev = sb->st_dev, .ino = sb->st_ino, .size = sb->st_size, .mtime = sb->st_mtim
	};
}

bool file_stamp_changed(const char *path, struct file_stamp *stamp)
{
	struct file_stamp now = { 0 };
	struct stat sb;

	/* stat() follows the symlinks a Kubernetes Secret volume is made of. */
	if (!stat(path, &sb))
		stamp_of(&sb, &now);
	if (!memcmp(&now, stamp, sizeof(now)))
		return false;
	*stamp = now;
	return true;
}

/* Opens path for a secret: a regular file, mode checked when asked. */
static int open_secret(const char *path, bool private, struct stat *sb, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		int err = -errno;

		snprintf(why, whylen, "cannot open %s: %s", path, strerror(-err));
		return err;
	}
	if (fstat(fd, sb) || !S_ISREG(sb->st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (private && (sb->st_mode & 077)) {
		snprintf(why, whylen,
			 "%s is readable by group or others (mode %04o): make it 0600 or 0400",
			 path, (unsigned int)(sb->st_mode & 07777));
		close(fd);
		return -EACCES;
	}
	return fd;
}

/* Reads up to max bytes (and one more, to tell a longer file). */
static ssize_t read_upto(int fd, char *buf, size_t max)
{
	size_t n = 0;

	while (n <= max) {
		ssize_t r = read(fd, buf + n, max + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

int secret_read_token(const char *path, char *buf, size_t bufsize, size_t *len,
		      struct file_stamp *stamp, char *why, size_t whylen)
{
	char raw[4096];
	struct stat sb;
	ssize_t n;
	int fd;

	fd = open_secret(path, true, &sb, why, whylen);
	if (fd < 0)
		return fd;
	n = read_upto(fd, raw, sizeof(raw) - 1);
	close(fd);
	if (n < 0) {
		snprintf(why, whylen, "cannot read %s: %s", path, strerror((int)-n));
		return (int)n;
	}
	while (n && (raw[n - 1] == '\n' || raw[n - 1] == '\r' || raw[n - 1] == ' '))
		n--;
	if ((size_t)n >= bufsize) {
		snprintf(why, whylen, "the token in %s is longer than %zu bytes", path,
			 bufsize - 1);
		memset(raw, 0, sizeof(raw));
		return -E2BIG;
	}
	if (n == 0) {
		snprintf(why, whylen, "%s holds no token", path);
		return -EINVAL;
	}
	memcpy(buf, raw, (size_t)n);
	buf[n] = '\0';
	*len = (size_t)n;
	memset(raw, 0, sizeof(raw));
	stamp_of(&sb, stamp);
	return 0;
}

int secret_read_pem(const char *path, bool is_private, char **out, struct file_stamp *stamp,
		    char *why, size_t whylen)
{
	struct stat sb;
	ssize_t n;
	char *buf;
	int fd;

	fd = open_secret(path, is_private, &sb, why, whylen);
	if (fd < 0)
		return fd;
	buf = malloc(MAX_PEM + 2);
	if (!buf) {
		close(fd);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	n = read_upto(fd, buf, MAX_PEM);
	close(fd);
	if (n < 0 || n > MAX_PEM) {
		snprintf(why, whylen, "cannot read %s: %s", path,
			 n < 0 ? strerror((int)-n) : "larger than 1 MiB");
		free(buf);
		return n < 0 ? (int)n : -EFBIG;
	}
	buf[n] = '\0';
	*out = buf;
	stamp_of(&sb, stamp);
	return 0;
}
