/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Dropping privileges once the data path is loaded and attached. What the
 * agent keeps, and why, is in docs/reliability.md.
 */
#ifndef CANARY_CAPS_H
#define CANARY_CAPS_H

/*
 * Keep only CAP_BPF (bpf() on our map fds, pinning) and CAP_NET_ADMIN
 * (attaching interfaces that appear later), in every set and in the
 * bounding set. Returns 0, or -errno (the caller logs and goes on: running
 * with more privileges than needed is worse but not broken).
 */
int caps_drop_to_runtime(void);

#endif /* CANARY_CAPS_H */
