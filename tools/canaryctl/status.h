/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Human rendering of rollouts, as "kubectl argo rollouts get rollout" does. */
#ifndef CANARYCTL_STATUS_H
#define CANARYCTL_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* The full view of one rollout (phase, steps, weight bar, versions, verdicts). */
void status_print_rollout(FILE *out, json_t *r, bool color);
/* One line per rollout. */
void status_print_list(FILE *out, json_t *rollouts);

#endif /* CANARYCTL_STATUS_H */
