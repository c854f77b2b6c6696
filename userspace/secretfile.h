/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The TCP listener's secrets on disk: the bearer token file and the TLS
 * certificate and key. They are refused when group or others may read a
 * secret, and watched, so that a rotated token or a renewed certificate
 * (a Kubernetes Secret update renames a new file into place) is taken
 * without a restart.
 */
#ifndef CANARY_SECRETFILE_H
#define CANARY_SECRETFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* What a file was when last read: a change of any of these is a new file. */
struct file_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* Whether path differs from *stamp now (it is updated). A missing file is a change too. */
bool file_stamp_changed(const char *path, struct file_stamp *stamp);

/*
 * The token in path (trailing newline and spaces dropped) into buf, which
 * holds bufsize - 1 bytes at most. Returns 0, or -errno with why set:
 * unreadable, readable by group or others (-EACCES), longer than fits
 * (-E2BIG), empty (-EINVAL). *stamp is what was read.
 */
int secret_read_token(const char *path, char *buf, size_t bufsize, size_t *len,
		      struct file_stamp *stamp, char *why, size_t whylen);

/*
 * The whole file at path (at most 1 MiB), NUL-terminated, into *out
 * (malloc'ed). A private key (is_private) must not be readable by group or
 * others. Returns 0 or -errno with why set.
 */
int secret_read_pem(const char *path, bool is_private, char **out, struct file_stamp *stamp,
		    char *why, size_t whylen);

#endif /* CANARY_SECRETFILE_H */
