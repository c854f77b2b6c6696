/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The names of enum canary_reason, as metrics labels and reports spell them.
 * User space only: the kernel counts by number.
 */
#ifndef CANARY_REASONS_H
#define CANARY_REASONS_H

#include "canary_consts.h"

static const char *const canary_reason_names[CANARY_R_COUNT] = {
	[CANARY_R_NOT_IPV4] = "not_ipv4",
	[CANARY_R_MALFORMED] = "malformed",
	[CANARY_R_FRAGMENT] = "fragment",
	[CANARY_R_NOT_TCP_UDP] = "not_tcp_udp",
	[CANARY_R_NO_SERVICE] = "no_service",
	[CANARY_R_NO_BACKEND] = "no_backend",
	[CANARY_R_CT_MISS_NON_SYN] = "ct_miss_non_syn",
	[CANARY_R_CT_FULL] = "ct_full",
	[CANARY_R_NEW_FLOW] = "new_flow",
	[CANARY_R_FORWARD] = "forward",
	[CANARY_R_REPLY] = "reply",
	[CANARY_R_OPAQUE] = "opaque",
	[CANARY_R_RESET_STEERED] = "reset_steered",
	[CANARY_R_REPLY_NO_FORWARD] = "reply_no_forward",
	[CANARY_R_CT_RESTEERED] = "ct_resteered",
	[CANARY_R_SVC_STALE] = "svc_stale",
	[CANARY_R_ICMP_ERROR_IN] = "icmp_error_in",
	[CANARY_R_ICMP_ERROR_OUT] = "icmp_error_out",
	[CANARY_R_ICMP_NO_FLOW] = "icmp_no_flow",
};

#endif /* CANARY_REASONS_H */
