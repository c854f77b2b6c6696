/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * strategy.trafficPolicy: when the service's own traffic is at its peak,
 * steps are smaller and pauses longer; in a blackout window the rollout
 * does not move forward. This module answers the two questions from the
 * configuration, the measured rate and the clock; rollout.c acts on them.
 * The semantics are in docs/configuration.md#traffic-policy.
 */
#ifndef CANARY_TRAFFIC_H
#define CANARY_TRAFFIC_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "config.h"

/*
 * Peak or not, with hysteresis: peak begins above aboveRps and ends below
 * 90% of it, so a rate hovering at the threshold does not flap.
 */
bool traffic_at_peak(const struct traffic_policy_cfg *t, double rps, bool was_peak);

/* Is a blackout window open at wall_ms? If so, why names it ("sat,sun 00:00-24:00 UTC"). */
bool traffic_blackout(const struct traffic_policy_cfg *t, __s64 wall_ms, char *why, size_t len);

#endif /* CANARY_TRAFFIC_H */
