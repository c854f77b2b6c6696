// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The data plane interface of the agent over the kernel's maps (dataplane.c). */
#include "dpops.h"
#include "hostsock.h"

static int k_service_put(void *dp, const struct canary_service_key *key, struct canary_service *svc)
{
	return dp_service_put(dp, key, svc);
}

static int k_service_get(void *dp, const struct canary_service_key *key, struct canary_service *svc)
{
	return dp_service_get(dp, key, svc);
}

static int k_service_delete(void *dp, const struct canary_service_key *key)
{
	return dp_service_delete(dp, key);
}

static int k_service_each(void *dp, dp_service_fn fn, void *arg)
{
	return dp_service_each(dp, fn, arg);
}

static int k_override_sync(void *dp, __u32 svc_id, const __be32 *addrs, const __u8 *prefixlens,
			   const enum canary_version *versions, int n)
{
	return dp_override_sync(dp, svc_id, addrs, prefixlens, versions, n);
}

/*
 * The data path resets its canary flows by the service's reset epoch; host
 * sockets, which it never sees, are destroyed by the same epoch now.
 */
static int k_reset_canary_flows(void *dp, __u32 svc_id, unsigned int *count)
{
	unsigned int destroyed = 0;
	int err = dp_reset_canary_flows(dp, svc_id, count);

	if (!err)
		hostsock_reset(&destroyed);
	if (count)
		*count += destroyed;
	return err;
}

static bool k_killswitch_engaged(void *dp, const struct canary_service_key *key)
{
	return dp_killswitch_engaged(dp, key);
}

static int k_metrics_read(void *dp, __u32 svc_id, enum canary_version version,
			  struct canary_metrics *out)
{
	return dp_metrics_read(dp, svc_id, version, out);
}

static __u32 k_ct_capacity(void *dp)
{
	return dp_ct_capacity(dp);
}

static bool k_flow_count_is_cheap(void *dp)
{
	return dp_flow_count_is_cheap(dp);
}

static int k_ct_read(void *dp, unsigned int *entries, long long *created)
{
	return dp_ct_read(dp, entries, created);
}

static int k_ct_expire(void *dp, unsigned int *expired)
{
	return dp_ct_expire(dp, expired);
}

static __u64 k_ct_expired(void *dp)
{
	return dp_ct_expired(dp);
}

static int k_repin_missing(void *dp, const char *bpffs, unsigned int *restored)
{
	return dp_repin_missing(dp, bpffs, restored);
}

const struct dp_ops dp_ops_kernel = {
	.service_put = k_service_put,
	.service_get = k_service_get,
	.service_delete = k_service_delete,
	.service_each = k_service_each,
	.override_sync = k_override_sync,
	.reset_canary_flows = k_reset_canary_flows,
	.killswitch_engaged = k_killswitch_engaged,
	.metrics_read = k_metrics_read,
	.ct_capacity = k_ct_capacity,
	.flow_count_is_cheap = k_flow_count_is_cheap,
	.ct_read = k_ct_read,
	.ct_expire = k_ct_expire,
	.ct_expired = k_ct_expired,
	.repin_missing = k_repin_missing,
};
