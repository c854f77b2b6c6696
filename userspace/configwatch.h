/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Notices changes to the configuration with inotify. It watches the
 * directory (the file's own, when --config names a file), because editors
 * and Kubernetes replace files rather than write them in place: a ConfigMap
 * update swaps the "..data" symlink, which shows up as a rename there. For a
 * single file, only events about that file (or Kubernetes' "..*" entries)
 * count. When the watched directory itself is deleted or moved, the watch is
 * armed again on the path as soon as it exists again.
 */
#ifndef CANARY_CONFIGWATCH_H
#define CANARY_CONFIGWATCH_H

#include <limits.h>
#include <stdbool.h>

struct configwatch {
	int fd;	   /* inotify, non-blocking; poll it */
	int wd;	   /* the directory's watch, or -1 while it is gone */
	bool file; /* --config names a file: filter events by name */
	char dir[PATH_MAX];
	char base[NAME_MAX + 1];
};

/* Start watching path (a file or a directory). 0 or -errno. */
int configwatch_open(struct configwatch *w, const char *path);
/*
 * Read every pending event. Returns how many concern the configuration
 * (0 when none did), or -errno. Call it also now and then without an event:
 * it arms the watch again once a removed directory is back (then it returns
 * 1, since the configuration may have changed meanwhile).
 */
int configwatch_read(struct configwatch *w);
void configwatch_close(struct configwatch *w);

#endif /* CANARY_CONFIGWATCH_H */
