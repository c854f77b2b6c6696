// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <seccomp.h>
#include <stddef.h>

#include "sandbox.h"

/* By name, so that a call this architecture lacks is simply skipped. */
static const char *const refused[] = {
	"execve",
	"execveat",
	"ptrace",
	"process_vm_readv",
	"process_vm_writev",
	"mount",
	"umount2",
	"pivot_root",
	"chroot",
	"setns",
	"unshare",
	"mount_setattr",
	"move_mount",
	"open_tree",
	"fsopen",
	"fsconfig",
	"fsmount",
	"fspick",
	"kexec_load",
	"kexec_file_load",
	"init_module",
	"finit_module",
	"delete_module",
	"reboot",
	"swapon",
	"swapoff",
	"keyctl",
	"add_key",
	"request_key",
	"open_by_handle_at",
	"name_to_handle_at",
	"userfaultfd",
	"perf_event_open",
	"settimeofday",
	"clock_settime",
	"clock_adjtime",
	"adjtimex",
	"acct",
	"quotactl",
	"iopl",
	"ioperm",
	"syslog",
	"vhangup",
	"fanotify_init",
};

static int add_rules(scmp_filter_ctx ctx)
{
	size_t i;

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int nr = seccomp_syscall_resolve_name(refused[i]);
		int err;

		if (nr == __NR_SCMP_ERROR)
			continue;
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (err)
			return err;
	}
	return 0;
}

int sandbox_install(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int err;

	if (!ctx)
		return -ENOMEM;
	/*
	 * No TSYNC: the agent installs the filter before it starts a thread,
	 * so every thread inherits it, and without TSYNC libseccomp can fall
	 * back to prctl() where the seccomp() call is missing (Valgrind).
	 */
	err = add_rules(ctx);
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	return err;
}
