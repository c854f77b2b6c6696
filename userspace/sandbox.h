/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A seccomp filter for the running agent (libseccomp), installed once the
 * data path is loaded and attached, before any thread starts. It refuses
 * (EPERM) the system calls the agent never makes after start-up and an
 * attacker inside it would want: running programs, tracing or writing
 * other processes, mounts and namespaces, kernel modules and kexec, keys,
 * the clock. bpf() stays: the agent reads and writes its maps every tick.
 */
#ifndef CANARY_SANDBOX_H
#define CANARY_SANDBOX_H

/* Needs no_new_privs (caps_drop_to_runtime sets it). Returns 0 or -errno. */
int sandbox_install(void);

#endif /* CANARY_SANDBOX_H */
