/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Notices changes to the configuration with inotify. It watches the
 * directory (the file's own, when --config names a file), because editors
 * and Kubernetes replace files rather than write them in place: a ConfigMap
 * update swaps the "..data" symlink, which shows up as a rename there.
 */
#ifndef CANARY_CONFIGWATCH_H
#define CANARY_CONFIGWATCH_H

/* A non-blocking inotify fd watching path's directory, or -errno. */
int configwatch_open(const char *path);
/* Read every pending event; returns how many there were, or -errno. */
int configwatch_drain(int fd);

#endif /* CANARY_CONFIGWATCH_H */
