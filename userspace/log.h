/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One line per event, as logfmt or JSON lines, on stderr. Events are named
 * (msg=...) and carry key/value pairs, so they can be grepped and parsed.
 */
#ifndef CANARY_LOG_H
#define CANARY_LOG_H

enum log_level {
	CLOG_DEBUG,
	CLOG_INFO,
	CLOG_WARN,
	CLOG_ERROR,
};

enum log_format {
	CLOG_FMT_LOGFMT,
	CLOG_FMT_JSON,
};

void log_setup(enum log_format format, enum log_level min_level);
/* "logfmt" or "json"; returns -1 for anything else. */
int log_format_parse(const char *s, enum log_format *out);

/*
 * log_event(CLOG_INFO, "attached", "ifname", "veth0", "mode", "tc"):
 * keys and values are strings, in pairs; the macro ends the list.
 */
#define log_event(level, msg, ...) log_emit(level, msg, ##__VA_ARGS__, (const char *)NULL)
void log_emit(enum log_level level, const char *msg, ...) __attribute__((sentinel));

#endif /* CANARY_LOG_H */
