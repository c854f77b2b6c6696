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

int caps_drop_to_runtime(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };
	int cap, last = last_cap();

	/* The bounding set first: dropping from it needs CAP_SETPCAP, dropped below. */
	for (cap = 0; cap <= last; cap++)
		if (!kept(cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			return -errno;
	for (cap = 0; cap <= last; cap++) {
		if (!kept(cap))
			continue;
		data[cap / 32].effective |= 1U << (cap % 32);
		data[cap / 32].permitted |= 1U << (cap % 32);
	}
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}
