// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rollout configuration from a file, or from every *.yaml / *.yml file of a
 * directory (config.h: config_load). Each file's text goes to the schema
 * (config.c); this part only finds, bounds and reads the files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"

#define MAX_FILES 1024 /* per directory */

/* Reads one byte past the limit to tell "exactly 1 MiB" from "larger". */
static int load_file(struct loader *ld, const char *path, int fd)
{
	char *buf = malloc(CONFIG_MAX_FILE_SIZE + 1);
	size_t got = 0;
	int rc;

	if (!buf)
		return file_fail(ld, path, "out of memory");
	while (got <= CONFIG_MAX_FILE_SIZE) {
		ssize_t k = read(fd, buf + got, CONFIG_MAX_FILE_SIZE + 1 - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			file_fail(ld, path, "cannot read: %s", strerror(errno));
			free(buf);
			return -1;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	if (got > CONFIG_MAX_FILE_SIZE)
		rc = file_fail(ld, path, "larger than 1 MiB");
	else
		rc = config_parse_stream(ld, path, buf, got);
	free(buf);
	return rc;
}

/* *.yaml and *.yml; hidden names are skipped, which covers Kubernetes' "..data". */
static bool wanted_name(const char *name)
{
	size_t len = strlen(name);

	if (name[0] == '.')
		return false;
	return (len > 5 && !strcmp(name + len - 5, ".yaml")) ||
	       (len > 4 && !strcmp(name + len - 4, ".yml"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
	while (n)
		free(names[--n]);
	free(names);
}

static int add_name(char ***names, size_t *n, const char *name)
{
	char **grown = realloc(*names, (*n + 1) * sizeof(**names));

	if (!grown)
		return -1;
	*names = grown;
	grown[*n] = strdup(name);
	if (!grown[*n])
		return -1;
	(*n)++;
	return 0;
}

/* Takes dir (closing it) and collects the wanted names, sorted. */
static int list_dir(struct loader *ld, const char *path, DIR *dir, char ***out, size_t *count)
{
	char **names = NULL;
	size_t n = 0;
	int rc = 0;

	while (!rc) {
		struct dirent *de;

		errno = 0; /* readdir's only way to tell the end from an error */
		de = readdir(dir);
		if (!de) {
			if (errno)
				rc = file_fail(ld, path, "cannot read directory: %s",
					       strerror(errno));
			break;
		}
		if (!wanted_name(de->d_name))
			continue;
		if (n == MAX_FILES)
			rc = file_fail(ld, path, "more than %d configuration files", MAX_FILES);
		else if (add_name(&names, &n, de->d_name))
			rc = file_fail(ld, path, "out of memory");
	}
	closedir(dir);
	if (rc) {
		free_names(names, n);
		return -1;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	*count = n;
	return 0;
}

static int load_path(struct loader *ld, const char *path, bool top);

/* Takes fd. Only the top directory is read: subdirectories are skipped. */
static int load_dir(struct loader *ld, const char *path, int fd)
{
	DIR *dir = fdopendir(fd);
	const char *sep = path[0] && path[strlen(path) - 1] == '/' ? "" : "/";
	char **names, *full;
	size_t n, i;
	int rc = 0;

	if (!dir) {
		file_fail(ld, path, "cannot read directory: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (list_dir(ld, path, dir, &names, &n))
		return -1;
	for (i = 0; i < n && !rc; i++) {
		if (asprintf(&full, "%s%s%s", path, sep, names[i]) < 0)
			rc = file_fail(ld, path, "out of memory");
		else {
			rc = load_path(ld, full, false);
			free(full);
		}
	}
	free_names(names, n);
	return rc;
}

/* Symlinks are followed; O_NONBLOCK so a stray FIFO cannot hang the open. */
static int load_path(struct loader *ld, const char *path, bool top)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	int rc;

	if (fd < 0)
		return file_fail(ld, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st)) {
		file_fail(ld, path, "cannot stat: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (top && S_ISDIR(st.st_mode))
		return load_dir(ld, path, fd);
	if (S_ISREG(st.st_mode))
		rc = load_file(ld, path, fd);
	else
		rc = top ? file_fail(ld, path, "not a regular file or a directory") : 0;
	close(fd);
	return rc;
}

int config_load(const char *path, struct config *out, char *err, size_t errlen)
{
	struct loader ld = { 0 };

	return config_finish(&ld, load_path(&ld, path, true), out, err, errlen);
}
