// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <bpf/bpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "canary_svcindex.h"
#include "svcindex.h"

/* A filter word is read, or-ed and written back: one writer at a time. */
static pthread_mutex_t filter_lock = PTHREAD_MUTEX_INITIALIZER;

int svcindex_mark(int filter_fd, __be32 addr, __be16 port, __u8 proto)
{
	__u64 h = canary_vip_hash(addr, port, proto);
	__u32 word = canary_vip_word(h);
	__u64 bits = 0;
	int err = 0;

	if (filter_fd < 0)
		return 0;
	pthread_mutex_lock(&filter_lock);
	if (bpf_map_lookup_elem(filter_fd, &word, &bits))
		err = -errno;
	if (!err && !(bits & canary_vip_bit(h))) {
		bits |= canary_vip_bit(h);
		if (bpf_map_update_elem(filter_fd, &word, &bits, BPF_ANY))
			err = -errno;
	}
	pthread_mutex_unlock(&filter_lock);
	return err;
}

/* The record of service svc under key, or a cleared one when svc is NULL. */
static int gens_write(int gens_fd, __u32 id, const struct canary_service_key *key,
		      const struct canary_service *svc)
{
	struct canary_svc_gen g;

	if (gens_fd < 0)
		return 0;
	memset(&g, 0, sizeof(g));
	if (svc) {
		g.generation = svc->generation;
		g.key = *key;
		g.reset_ns = svc->reset_ns;
	}
	return bpf_map_update_elem(gens_fd, &id, &g, BPF_ANY) ? -errno : 0;
}

/* The backend filter bits of every address a service holds, draining slots too. */
static int mark_backends(int backend_fd, const struct canary_service_key *key,
			 const struct canary_service *svc)
{
	const struct canary_backend *be;
	int v, i, err = 0;

	for (v = 0; v < CANARY_V_COUNT && !err; v++) {
		for (i = 0; i < CANARY_MAX_BACKENDS && !err; i++) {
			be = &svc->backends[v][i];
			if (be->addr)
				err = svcindex_mark(backend_fd, be->addr, be->port, key->proto);
		}
	}
	return err;
}

int svcindex_put(const struct svcindex_fds *fds, const struct canary_service_key *key,
		 const struct canary_service *svc, __u64 flags)
{
	int err = svcindex_mark(fds->filter, key->vip, key->port, key->proto);

	if (!err)
		err = mark_backends(fds->backends, key, svc);
	if (!err)
		err = gens_write(fds->gens, svc->id, key, NULL);
	if (!err && bpf_map_update_elem(fds->services, key, svc, flags))
		err = -errno;
	if (!err)
		err = gens_write(fds->gens, svc->id, key, svc);
	return err;
}

int svcindex_delete(const struct svcindex_fds *fds, const struct canary_service_key *key, __u32 id)
{
	if (bpf_map_delete_elem(fds->services, key))
		return -errno;
	return gens_write(fds->gens, id, key, NULL);
}

int svcindex_sync(const struct svcindex_fds *fds)
{
	unsigned char used[CANARY_MAX_SERVICES] = { 0 };
	struct canary_service_key key, next;
	struct canary_service svc;
	void *prev = NULL;
	int n, err = 0;
	__u32 id;

	for (n = 0; n <= CANARY_MAX_SERVICES && !bpf_map_get_next_key(fds->services, prev, &next);
	     n++) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fds->services, &key, &svc))
			continue; /* deleted meanwhile */
		err = svcindex_mark(fds->filter, key.vip, key.port, key.proto);
		if (!err)
			err = mark_backends(fds->backends, &key, &svc);
		if (!err)
			err = gens_write(fds->gens, svc.id, &key, &svc);
		if (err)
			return err;
		if (svc.id < CANARY_MAX_SERVICES)
			used[svc.id] = 1;
	}
	/* Records a writer without this index left behind (an older agent's deletes). */
	for (id = 0; id < CANARY_MAX_SERVICES && !err; id++)
		if (!used[id])
			err = gens_write(fds->gens, id, NULL, NULL);
	return err;
}

/* Or the bits of a whole filter into the map, one word at a time. */
static int filter_merge(int filter_fd, const __u64 *bits)
{
	__u64 have;
	__u32 w;
	int err = 0;

	pthread_mutex_lock(&filter_lock);
	for (w = 0; w < CANARY_VIP_FILTER_WORDS && !err; w++) {
		if (!bits[w])
			continue;
		if (bpf_map_lookup_elem(filter_fd, &w, &have)) {
			err = -errno;
			break;
		}
		have |= bits[w];
		if (bpf_map_update_elem(filter_fd, &w, &have, BPF_ANY))
			err = -errno;
	}
	pthread_mutex_unlock(&filter_lock);
	return err;
}

/* Set bit of addr:port/proto in the filter words bits, held in memory. */
static void bits_set(__u64 *bits, __be32 addr, __be16 port, __u8 proto)
{
	__u64 h = canary_vip_hash(addr, port, proto);

	bits[canary_vip_word(h)] |= canary_vip_bit(h);
}

int svcindex_mark_flows(int filter_fd, int backend_fd, int ct_fd, __u32 max)
{
	__u64 *vips = calloc(2 * (size_t)CANARY_VIP_FILTER_WORDS, sizeof(*vips));
	__u64 *backends;
	struct canary_ct_key key, next;
	struct canary_ct_entry e;
	void *prev = NULL;
	__u32 n;
	int err = 0;

	if (!vips)
		return -ENOMEM;
	backends = vips + CANARY_VIP_FILTER_WORDS;
	/* Collected first: a map of millions of flows has a few VIPs and backends, written once each. */
	for (n = 0; n <= max && !bpf_map_get_next_key(ct_fd, prev, &next); n++) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(ct_fd, &key, &e))
			continue;
		if (e.flags & CANARY_CT_F_REVERSE)
			bits_set(backends, key.saddr, key.sport, key.proto);
		else
			bits_set(vips, key.daddr, key.dport, key.proto);
	}
	if (filter_fd >= 0)
		err = filter_merge(filter_fd, vips);
	if (!err && backend_fd >= 0)
		err = filter_merge(backend_fd, backends);
	free(vips);
	return err;
}
