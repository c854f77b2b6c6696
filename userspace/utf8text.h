/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Text that goes into JSON (the API, the state files) must be valid UTF-8:
 * jansson refuses anything else, and one bad message then hides a rollout
 * from the API and stops its state from being saved. Text comes from
 * outside (Prometheus error messages, names from URLs) and is cut to fixed
 * buffers; these helpers cut only between characters and replace invalid
 * bytes.
 */
#ifndef CANARY_UTF8TEXT_H
#define CANARY_UTF8TEXT_H

#include <stddef.h>

/*
 * Length of the valid UTF-8 sequence at s[0..len): 1..4, 0 if the bytes
 * there are not valid UTF-8, or -1 if they begin a valid character that
 * len cuts short.
 */
int utf8_char_len(const unsigned char *s, size_t len);

/*
 * Make the NUL-terminated s valid UTF-8 in place: a character cut short at
 * the end (by a truncation) is removed, any other invalid byte becomes '?'.
 */
void utf8_repair(char *s);

/* Like snprintf(dst, size, "%s", src), but the result is always valid UTF-8. */
void utf8_copy(char *dst, size_t size, const char *src);

/* json_string(s), repairing s (in a copy) first if jansson would refuse it. */
struct json_t;
struct json_t *utf8_json_string(const char *s);

#endif /* CANARY_UTF8TEXT_H */
