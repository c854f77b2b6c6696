/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* canaryctl -o yaml: the JSON documents the verbs print, as block YAML. */
#ifndef CANARYCTL_YAMLOUT_H
#define CANARYCTL_YAMLOUT_H

#include <jansson.h>
#include <stdio.h>

/*
 * Print v as a YAML 1.2 document. Scalars keep their JSON spelling (strings
 * double-quoted), which YAML reads back as the same values.
 */
void yaml_print(FILE *out, json_t *v);

#endif /* CANARYCTL_YAMLOUT_H */
