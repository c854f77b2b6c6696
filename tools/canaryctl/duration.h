/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Durations on canaryctl's command line (--timeout, plan's targets). */
#ifndef CANARYCTL_DURATION_H
#define CANARYCTL_DURATION_H

/* "90", "90s", "500ms", "5m", "1h" in milliseconds; -1 when not a duration > 0. */
long long parse_duration_ms(const char *s);

#endif /* CANARYCTL_DURATION_H */
