/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Includes and small definitions every canaryd kernel helper needs. */
#ifndef CANARY_BPF_COMMON_H
#define CANARY_BPF_COMMON_H

#include <linux/bpf.h>
#include <linux/errno.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define __canary_inline static __always_inline

#include "canary_consts.h"
#include "canary_structs.h"
#include "canary_hist.h"
#include "canary_svcindex.h"
#include "canary_flowcache.h"

/*
 * The same helpers are compiled into the tc and the XDP programs. Each takes
 * a context and a compile-time flag; after inlining, the branch for the other
 * context is folded away.
 */
enum canary_ctx_kind {
	CANARY_CTX_TC = 0,
	CANARY_CTX_XDP = 1,
};

#endif /* CANARY_BPF_COMMON_H */
