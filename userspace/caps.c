// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

struct cap_sets {
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
};

static int last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int last = CAP_LAST_CAP;

	if (f) {
		if (fscanf(f, "%d", &last) != 1)
			last = CAP_LAST_CAP;
		fclose(f);
	}
	return last;
}

static int kept(int cap)
{
	return cap == CAP_BPF || cap == CAP_NET_ADMIN;
}

static int caps_get(struct cap_sets *s)
{
	*s = (struct cap_sets){ .hdr = { .version = _LINUX_CAPABILITY_VERSION_3 } };
	return syscall(SYS_capget, &s->hdr, s->data) ? -errno : 0;
}

static bool has(const struct cap_sets *s, int cap, bool effective)
{
	__u32 set = effective ? s->data[cap / 32].effective : s->data[cap / 32].permitted;

	return set & (1U << (cap % 32));
}

/* Ambient capabilities would survive an exec: none, ever (no privilege needed). */
static int clear_ambient(void)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	return 0;
}

/*
 * Dropping from the bounding set takes CAP_SETPCAP, which neither shipped
 * deployment grants (their own bounding set is already the three needed
 * at start-up): without it, leave the set as given rather than fail.
 */
static int drop_bounding(const struct cap_sets *now, int last, bool *dropped)
{
	int cap;

	*dropped = has(now, CAP_SETPCAP, true);
	if (!*dropped)
		return 0;
	for (cap = 0; cap <= last; cap++)
		if (!kept(cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			return -errno;
	return 0;
}

/* Effective = permitted = what we keep and still hold; inheritable empty. */
static int set_kept(const struct cap_sets *now, int last)
{
	struct cap_sets want = { .hdr = { .version = _LINUX_CAPABILITY_VERSION_3 } };
	int cap;

	for (cap = 0; cap <= last; cap++) {
		if (!kept(cap) || !has(now, cap, false))
			continue;
		want.data[cap / 32].effective |= 1U << (cap % 32);
		want.data[cap / 32].permitted |= 1U << (cap % 32);
	}
	return syscall(SYS_capset, &want.hdr, want.data) ? -errno : 0;
}

/* Read the sets back: nothing but what we keep may be left. */
static int verify(int last)
{
	struct cap_sets after;
	int cap, err = caps_get(&after);

	if (err)
		return err;
	for (cap = 0; cap <= last; cap++)
		if (!kept(cap) && (has(&after, cap, true) || has(&after, cap, false)))
			return -EPERM;
	return 0;
}

int caps_drop_to_runtime(bool *bounding)
{
	int last = last_cap(), err;
	struct cap_sets now;

	err = caps_get(&now);
	if (!err)
		err = clear_ambient();
	if (!err)
		err = drop_bounding(&now, last, bounding);
	if (!err)
		err = set_kept(&now, last);
	if (!err)
		err = verify(last);
	if (!err && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		err = -errno;
	return err;
}
