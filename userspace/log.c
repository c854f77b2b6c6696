// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "utf8text.h"

static enum log_format log_fmt = CLOG_FMT_LOGFMT;
static enum log_level log_min = CLOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_setup(enum log_format format, enum log_level min_level)
{
	log_fmt = format;
	log_min = min_level;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (!strcmp(s, "logfmt"))
		*out = CLOG_FMT_LOGFMT;
	else if (!strcmp(s, "json"))
		*out = CLOG_FMT_JSON;
	else
		return -1;
	return 0;
}

static void timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* logfmt quotes a value only when it has to: empty, spaces, quotes or '='. */
static void logfmt_value(FILE *out, const char *v)
{
	if (*v && !strpbrk(v, " \t\"=\\\n")) {
		fputs(v, out);
		return;
	}
	fputc('"', out);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', out);
		if (*v == '\n')
			fputs("\\n", out);
		else
			fputc(*v, out);
	}
	fputc('"', out);
}

static void log_logfmt(const char *ts, enum log_level level, const char *msg, va_list ap)
{
	const char *k;

	fprintf(stderr, "ts=%s level=%s msg=", ts, level_names[level]);
	logfmt_value(stderr, msg);
	/* ap was started by log_emit(); clang-analyzer cannot follow it here. */
	// NOLINTBEGIN(clang-analyzer-valist.Uninitialized)
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		// NOLINTEND(clang-analyzer-valist.Uninitialized)

		fprintf(stderr, " %s=", k);
		logfmt_value(stderr, v ? v : "");
	}
	fputc('\n', stderr);
}

static void log_json(const char *ts, enum log_level level, const char *msg, va_list ap)
{
	json_t *obj = json_object();
	const char *k;
	char *line;

	if (!obj)
		return;
	json_object_set_new(obj, "ts", json_string(ts));
	json_object_set_new(obj, "level", json_string(level_names[level]));
	json_object_set_new(obj, "msg", utf8_json_string(msg));
	/* ap was started by log_emit(); clang-analyzer cannot follow it here. */
	// NOLINTBEGIN(clang-analyzer-valist.Uninitialized)
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		// NOLINTEND(clang-analyzer-valist.Uninitialized)

		json_object_set_new(obj, k, utf8_json_string(v ? v : ""));
	}
	line = json_dumps(obj, JSON_COMPACT);
	if (line)
		fprintf(stderr, "%s\n", line);
	free(line);
	json_decref(obj);
}

void log_emit(enum log_level level, const char *msg, ...)
{
	char ts[40];
	va_list ap;

	if (level < log_min)
		return;
	timestamp(ts, sizeof(ts));
	va_start(ap, msg);
	/*
	 * stderr is unbuffered: a logfmt line is a dozen writes, and another
	 * thread's line could land between them. Holding the stream's lock for
	 * the whole line keeps every line whole (stdio's lock is recursive).
	 */
	flockfile(stderr);
	if (log_fmt == CLOG_FMT_JSON)
		log_json(ts, level, msg, ap);
	else
		log_logfmt(ts, level, msg, ap);
	funlockfile(stderr);
	va_end(ap);
}
