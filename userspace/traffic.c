// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "traffic.h"

/* Below this share of aboveRps a peak is over. */
#define PEAK_EXIT_SHARE 0.9

bool traffic_at_peak(const struct traffic_policy_cfg *t, double rps, bool was_peak)
{
	if (t->peak_above_rps <= 0)
		return false;
	if (was_peak)
		return rps >= PEAK_EXIT_SHARE * t->peak_above_rps;
	return rps > t->peak_above_rps;
}

/* Day of the week (0 Sunday) and minute of the day, in the window's time zone. */
static void clock_of(const struct blackout_cfg *b, __s64 wall_ms, int *wday, int *minute)
{
	time_t sec = (time_t)(wall_ms / 1000);
	struct tm tm;

	if (b->local_time) {
		localtime_r(&sec, &tm);
	} else {
		sec += (time_t)b->utc_offset_min * 60;
		gmtime_r(&sec, &tm);
	}
	*wday = tm.tm_wday;
	*minute = tm.tm_hour * 60 + tm.tm_min;
}

static bool on_day(const struct blackout_cfg *b, int wday)
{
	return b->days & (1U << ((wday + 7) % 7));
}

static bool window_open(const struct blackout_cfg *b, __s64 wall_ms)
{
	int wday, m;

	clock_of(b, wall_ms, &wday, &m);
	if (b->from_min < 0)
		return on_day(b, wday);
	if (b->from_min < b->to_min)
		return on_day(b, wday) && m >= b->from_min && m < b->to_min;
	/* Across midnight: the evening of a listed day, or the morning after one. */
	return (on_day(b, wday) && m >= b->from_min) || (on_day(b, wday - 1) && m < b->to_min);
}

static void describe(const struct blackout_cfg *b, char *buf, size_t len)
{
	static const char *const days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
	size_t off = 0;
	int d;

	for (d = 0; d < 7 && off < len; d++)
		if (on_day(b, d))
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "",
						days[d]);
	if (off >= len)
		return;
	if (b->from_min < 0)
		snprintf(buf + off, len - off, " all day");
	else
		snprintf(buf + off, len - off, " %02d:%02d-%02d:%02d", b->from_min / 60,
			 b->from_min % 60, b->to_min / 60, b->to_min % 60);
	off = strlen(buf);
	if (b->local_time)
		snprintf(buf + off, len - off, " local time");
	else if (b->utc_offset_min)
		snprintf(buf + off, len - off, " UTC%c%02d:%02d", b->utc_offset_min < 0 ? '-' : '+',
			 abs(b->utc_offset_min) / 60, abs(b->utc_offset_min) % 60);
	else
		snprintf(buf + off, len - off, " UTC");
}

bool traffic_blackout(const struct traffic_policy_cfg *t, __s64 wall_ms, char *why, size_t len)
{
	int i;

	for (i = 0; i < t->n_blackouts && i < CONFIG_MAX_BLACKOUTS; i++) {
		if (!window_open(&t->blackouts[i], wall_ms))
			continue;
		describe(&t->blackouts[i], why, len);
		return true;
	}
	return false;
}
