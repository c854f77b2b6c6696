/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The slots of a version's backend list (canary_service.backends[v]):
 * [0, n_backends[v]) are the selectable backends, the only ones a new flow
 * is given (lb.h); the slots after them that hold an address are draining
 * backends (a terminating Kubernetes endpoint still serving): a flow that
 * is already on one keeps it. The agent zeroes every slot after the last
 * draining one, so an address of 0, which no flow is sent to, ends nothing
 * and matches nothing.
 */
#ifndef CANARY_BPF_BACKENDS_H
#define CANARY_BPF_BACKENDS_H

#include "common.h"

/* May a flow stay on slot be of a list? Selectable or draining: it holds an address. */
__canary_inline int backend_slot_used(const struct canary_backend *be)
{
	return be->addr != 0;
}

/*
 * Version whose slots hold addr:port in svc now, selectable or draining, or
 * -1. At most 2 x 16 compares; addr is never 0 (a flow's backend).
 */
__canary_inline int backend_version(const struct canary_service *svc, __be32 addr, __be16 port)
{
	__u32 v, i;

	for (v = 0; v < CANARY_V_COUNT; v++) {
		for (i = 0; i < CANARY_MAX_BACKENDS; i++) {
			if (svc->backends[v][i].addr == addr && svc->backends[v][i].port == port)
				return (int)v;
		}
	}
	return -1;
}

#endif /* CANARY_BPF_BACKENDS_H */
