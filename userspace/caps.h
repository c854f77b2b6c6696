/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Dropping privileges once the data path is loaded and attached. What the
 * agent keeps, and why, is in docs/reliability.md.
 */
#ifndef CANARY_CAPS_H
#define CANARY_CAPS_H

#include <stdbool.h>

/*
 * Keep only CAP_BPF (bpf() on our map fds, pinning) and CAP_NET_ADMIN
 * (attaching interfaces that appear later) in the effective and permitted
 * sets; empty the inheritable and ambient sets; drop every other
 * capability from the bounding set when CAP_SETPCAP allows it (*bounding
 * says whether it did); then set no_new_privs, so no exec can gain
 * anything back. Returns 0 or -errno: the caller must not go on, since an
 * agent that believes it dropped privileges and did not is worse than one
 * that does not start.
 */
int caps_drop_to_runtime(bool *bounding);

#endif /* CANARY_CAPS_H */
