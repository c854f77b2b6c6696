// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "yamlout.h"

/*
 * A key YAML reads as that string without quotes: a letter or "_" first,
 * then letters, digits, "_" and "-", and none of YAML 1.1's booleans or null.
 */
static bool plain_key(const char *k)
{
	static const char *const special[] = { "true", "false", "yes", "no",  "on",
					       "off",  "y",	"n",   "null" };
	const char *p;
	size_t i;

	if (!isalpha((unsigned char)*k) && *k != '_')
		return false;
	for (p = k; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return false;
	for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (!strcasecmp(k, special[i]))
			return false;
	return true;
}

/* JSON's text of a scalar or an empty collection is valid YAML flow. */
static void scalar(FILE *out, const json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

	fputs(s ? s : "null", out);
	free(s);
}

static bool block(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v)) ||
	       (json_is_array(v) && json_array_size(v));
}

static void node(FILE *out, json_t *v, int indent);

/* After "key:" or "-": a scalar on the same line, a collection below it. */
static void value(FILE *out, json_t *v, int indent)
{
	if (!block(v)) {
		fputc(' ', out);
		scalar(out, v);
		fputc('\n', out);
		return;
	}
	fputc('\n', out);
	node(out, v, indent);
}

static void node(FILE *out, json_t *v, int indent)
{
	json_t *m;
	size_t i;

	if (json_is_object(v)) {
		const char *key;

		json_object_foreach(v, key, m)
		{
			fprintf(out, "%*s", indent, "");
			if (plain_key(key)) {
				fputs(key, out);
			} else {
				json_t *s = json_string(key);

				scalar(out, s);
				json_decref(s);
			}
			fputc(':', out);
			value(out, m, indent + 2);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
		{
			fprintf(out, "%*s-", indent, "");
			value(out, m, indent + 2);
		}
	}
}

void yaml_print(FILE *out, json_t *v)
{
	fputs("---\n", out);
	if (block(v)) {
		node(out, v, 0);
	} else {
		scalar(out, v);
		fputc('\n', out);
	}
}
