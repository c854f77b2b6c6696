// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "configwatch.h"

#define WATCH_MASK                                                                          \
	(IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
	 IN_DELETE_SELF | IN_MOVE_SELF)

static int split_path(struct configwatch *w, const char *path)
{
	char buf[PATH_MAX];
	struct stat sb;

	if (stat(path, &sb))
		return -errno;
	w->file = !S_ISDIR(sb.st_mode);
	if (!w->file) {
		if (snprintf(w->dir, sizeof(w->dir), "%s", path) >= (int)sizeof(w->dir))
			return -ENAMETOOLONG;
		w->base[0] = '\0';
		return 0;
	}
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	snprintf(w->dir, sizeof(w->dir), "%s", dirname(buf));
	snprintf(buf, sizeof(buf), "%s", path);
	if (snprintf(w->base, sizeof(w->base), "%s", basename(buf)) >= (int)sizeof(w->base))
		return -ENAMETOOLONG;
	return 0;
}

static int arm(struct configwatch *w)
{
	w->wd = inotify_add_watch(w->fd, w->dir, WATCH_MASK);
	return w->wd < 0 ? -errno : 0;
}

int configwatch_open(struct configwatch *w, const char *path)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->wd = -1;
	err = split_path(w, path);
	if (err)
		return err;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0)
		return -errno;
	err = arm(w);
	if (err) {
		close(w->fd);
		w->fd = -1;
	}
	return err;
}

void configwatch_close(struct configwatch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->wd = -1;
}

/* Is this event about the configuration? */
static bool concerns_config(const struct configwatch *w, const struct inotify_event *ev)
{
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
		return true;
	if (!w->file || !ev->len)
		return true;
	/* Kubernetes swaps "..data" (and writes "..2024_..." directories). */
	return !strcmp(ev->name, w->base) || !strncmp(ev->name, "..", 2);
}

static int read_events(struct configwatch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int events = 0, rounds;

	/* Bounded: what is left is read on the next poll. */
	for (rounds = 0; rounds < 64; rounds++) {
		ssize_t len = read(w->fd, buf, sizeof(buf));
		ssize_t off = 0;

		if (len < 0)
			return errno == EAGAIN ? events : -errno;
		while (off < len) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + off);

			events += concerns_config(w, ev);
			/*
			 * The directory went away. A moved one keeps its watch
			 * under the new name: drop it, the path is what counts.
			 */
			if (ev->mask & IN_MOVE_SELF)
				inotify_rm_watch(w->fd, ev->wd);
			if (ev->wd == w->wd &&
			    (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)))
				w->wd = -1;
			off += (ssize_t)(sizeof(*ev) + ev->len);
		}
	}
	return events;
}

int configwatch_read(struct configwatch *w)
{
	int events = read_events(w);

	if (events >= 0 && w->wd < 0 && !arm(w))
		return events > 0 ? events : 1; /* back: it may have changed meanwhile */
	return events;
}
