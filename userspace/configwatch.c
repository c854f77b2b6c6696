// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "configwatch.h"

#define WATCH_MASK                                                                          \
	(IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
	 IN_DELETE_SELF | IN_MOVE_SELF)

int configwatch_open(const char *path)
{
	/* dir may point into buf: it must live as long as dir is used. */
	char buf[PATH_MAX]; // cppcheck-suppress variableScope
	const char *dir = path;
	struct stat sb;
	int fd;

	if (stat(path, &sb))
		return -errno;
	if (!S_ISDIR(sb.st_mode)) {
		if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
			return -ENAMETOOLONG;
		dir = dirname(buf);
	}
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (inotify_add_watch(fd, dir, WATCH_MASK) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int configwatch_drain(int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int events = 0, rounds;

	/* Bounded: what is left is read on the next poll. */
	for (rounds = 0; rounds < 64; rounds++) {
		ssize_t len = read(fd, buf, sizeof(buf));
		ssize_t off = 0;

		if (len < 0)
			return errno == EAGAIN ? events : -errno;
		while (off < len) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + off);

			events++;
			off += (ssize_t)(sizeof(*ev) + ev->len);
		}
	}
	return events;
}
