// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The coordinator on etcd. Keys, under the prefix (default /canaryd):
 *
 *   PREFIX/rollouts/NAME/state        the shared rollout (JSON)
 *   PREFIX/rollouts/NAME/leader       the leader's node name, on its lease
 *   PREFIX/rollouts/NAME/nodes/NODE   a node's evidence (JSON), on its lease
 *
 * The session is one lease per node. Leadership is a create-if-absent
 * transaction on the leader key with the lease; the fence of a step write
 * is that key's create revision (a lease that expired deleted the key, and
 * a new leader's key has a newer create revision).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "etcd.h"

#define PREFIX_LEN 128
#define KEY_LEN	   (PREFIX_LEN + CANARY_NAME_LEN + COORD_NODE_LEN + 32)

struct etcd_be {
	struct etcd_client cl;
	char prefix[PREFIX_LEN];
	char node[COORD_NODE_LEN];
	__s64 lease;
};

static void key_of(const struct etcd_be *b, char *key, const char *rollout, const char *what)
{
	snprintf(key, KEY_LEN, "%s/rollouts/%s/%s", b->prefix, rollout, what);
}

int coord_parse_key(const char *prefix, const char *key, struct coord_record *rec)
{
	size_t plen = strlen(prefix), nlen;
	const char *name, *slash;

	memset(rec, 0, sizeof(*rec));
	if (strncmp(key, prefix, plen) != 0 || strncmp(key + plen, "/rollouts/", 10) != 0)
		return -EINVAL;
	name = key + plen + 10;
	slash = strchr(name, '/');
	nlen = slash ? (size_t)(slash - name) : 0;
	if (!nlen || nlen >= sizeof(rec->rollout))
		return -EINVAL;
	memcpy(rec->rollout, name, nlen);
	if (!strcmp(slash + 1, "state"))
		rec->kind = COORD_STATE;
	else if (!strcmp(slash + 1, "leader"))
		rec->kind = COORD_LEADER;
	else if (!strncmp(slash + 1, "nodes/", 6) && slash[7] &&
		 strlen(slash + 7) < sizeof(rec->node)) {
		rec->kind = COORD_NODE;
		snprintf(rec->node, sizeof(rec->node), "%s", slash + 7);
	} else {
		return -EINVAL;
	}
	return 0;
}

static int session_open(void *be, __s64 ttl_s, __s64 *granted)
{
	struct etcd_be *b = be;

	return etcd_lease_grant(&b->cl, ttl_s, &b->lease, granted);
}

static int session_renew(void *be)
{
	struct etcd_be *b = be;
	__s64 left;

	return b->lease ? etcd_lease_keepalive(&b->cl, b->lease, &left) : -ENOENT;
}

static void session_close(void *be)
{
	struct etcd_be *b = be;

	if (b->lease)
		etcd_lease_revoke(&b->cl, b->lease);
	b->lease = 0;
}

struct read_ctx {
	const struct etcd_be *b;
	coord_record_fn fn;
	void *arg;
};

static void deliver(const struct read_ctx *rc, const struct etcd_kv *kv, bool deleted)
{
	struct coord_record rec;

	if (coord_parse_key(rc->b->prefix, kv->key, &rec))
		return; /* not a key of ours */
	rec.value = deleted ? NULL : kv->value;
	rec.create_revision = kv->create_revision;
	rec.mod_revision = kv->mod_revision;
	rc->fn(&rec, rc->arg);
}

static void read_one(const struct etcd_kv *kv, void *arg)
{
	deliver(arg, kv, false);
}

static int read_all(void *be, coord_record_fn fn, void *arg, __s64 *rev)
{
	struct etcd_be *b = be;
	struct read_ctx rc = { .b = b, .fn = fn, .arg = arg };
	char prefix[KEY_LEN];

	snprintf(prefix, sizeof(prefix), "%s/rollouts/", b->prefix);
	return etcd_range_prefix(&b->cl, prefix, read_one, &rc, rev);
}

struct watch_ctx {
	struct read_ctx rc;
	__s64 *last_rev;
};

static bool watch_batch(const struct etcd_watch_batch *wb, void *arg)
{
	struct watch_ctx *w = arg;
	int i;

	for (i = 0; i < wb->n_events; i++)
		deliver(&w->rc, &wb->events[i], wb->deleted[i]);
	if (wb->revision > *w->last_rev)
		*w->last_rev = wb->revision;
	return true;
}

/* A watch stream is renewed this often, so a member that went silent is left. */
#define WATCH_RENEW_MS 10000

static int watch(void *be, __s64 from_rev, coord_record_fn fn, void *arg, const atomic_bool *stop,
		 bool *resync, __s64 *last_rev)
{
	struct etcd_be *b = be;
	struct watch_ctx w = { .rc = { .b = b, .fn = fn, .arg = arg }, .last_rev = last_rev };
	char prefix[KEY_LEN];
	__s64 compact = 0;
	int err;

	snprintf(prefix, sizeof(prefix), "%s/rollouts/", b->prefix);
	b->cl.timeout_ms = WATCH_RENEW_MS;
	err = etcd_watch(&b->cl, prefix, from_rev, watch_batch, &w, stop, &compact);
	*resync = compact != 0;
	return err;
}

static int publish_evidence(void *be, const char *rollout, const char *value)
{
	struct etcd_be *b = be;
	char key[KEY_LEN], what[COORD_NODE_LEN + 8];

	if (!b->lease)
		return -ENOENT;
	snprintf(what, sizeof(what), "nodes/%s", b->node);
	key_of(b, key, rollout, what);
	return etcd_put(&b->cl, key, value, b->lease, NULL);
}

static int campaign(void *be, const char *rollout, bool *won, __s64 *leader_rev)
{
	struct etcd_be *b = be;
	char key[KEY_LEN];
	struct etcd_compare absent = { .key = key, .target = ETCD_CREATE, .revision = 0 };

	if (!b->lease)
		return -ENOENT;
	key_of(b, key, rollout, "leader");
	/* The key is created by this transaction: its create revision is the answer's. */
	return etcd_txn_put(&b->cl, &absent, 1, key, b->node, b->lease, won, leader_rev);
}

static int resign(void *be, const char *rollout, __s64 leader_rev)
{
	struct etcd_be *b = be;
	char key[KEY_LEN];
	struct etcd_compare mine = { .key = key, .target = ETCD_CREATE, .revision = leader_rev };
	bool ok;

	key_of(b, key, rollout, "leader");
	return etcd_txn_delete(&b->cl, &mine, 1, key, &ok);
}

static int write_fenced(void *be, const char *rollout, const char *value, __s64 leader_rev,
			__s64 base_rev, bool *ok)
{
	struct etcd_be *b = be;
	char lkey[KEY_LEN], skey[KEY_LEN];
	struct etcd_compare cmp[2] = {
		{ .key = lkey, .target = ETCD_CREATE, .revision = leader_rev },
		/* No state yet: it must still not exist (create revision 0). */
		{ .key = skey, .target = base_rev ? ETCD_MOD : ETCD_CREATE, .revision = base_rev },
	};

	key_of(b, lkey, rollout, "leader");
	key_of(b, skey, rollout, "state");
	return etcd_txn_put(&b->cl, cmp, 2, skey, value, 0, ok, NULL);
}

static int write_if(void *be, const char *rollout, const char *value, __s64 base_rev, bool *ok)
{
	struct etcd_be *b = be;
	char skey[KEY_LEN];
	struct etcd_compare cmp = { .key = skey,
				    .target = base_rev ? ETCD_MOD : ETCD_CREATE,
				    .revision = base_rev };

	key_of(b, skey, rollout, "state");
	return etcd_txn_put(&b->cl, &cmp, 1, skey, value, 0, ok, NULL);
}

static int write_abort(void *be, const char *rollout, const char *value)
{
	struct etcd_be *b = be;
	char skey[KEY_LEN];

	key_of(b, skey, rollout, "state");
	return etcd_put(&b->cl, skey, value, 0, NULL);
}

static void destroy(void *be)
{
	struct etcd_be *b = be;

	if (!b)
		return;
	etcd_close(&b->cl);
	free(b);
}

static const struct coord_ops etcd_ops = {
	.name = "etcd",
	.session_open = session_open,
	.session_renew = session_renew,
	.session_close = session_close,
	.read_all = read_all,
	.watch = watch,
	.publish_evidence = publish_evidence,
	.campaign = campaign,
	.resign = resign,
	.write_fenced = write_fenced,
	.write_if = write_if,
	.write_abort = write_abort,
	.destroy = destroy,
};

static struct etcd_be *new_be(const char *endpoints, const char *prefix, const char *node,
			      const struct etcd_tls *tls, int *err)
{
	struct etcd_be *b = calloc(1, sizeof(*b));

	*err = b ? 0 : -ENOMEM;
	if (!*err && (strlen(prefix) >= sizeof(b->prefix) || strlen(node) >= sizeof(b->node)))
		*err = -ENAMETOOLONG;
	if (!*err)
		*err = etcd_init(&b->cl, endpoints, tls);
	if (*err) {
		destroy(b);
		return NULL;
	}
	snprintf(b->prefix, sizeof(b->prefix), "%s", prefix);
	/* "/canaryd/" and "/canaryd" are one prefix. */
	if (b->prefix[0] && b->prefix[strlen(b->prefix) - 1] == '/')
		b->prefix[strlen(b->prefix) - 1] = '\0';
	snprintf(b->node, sizeof(b->node), "%s", node);
	return b;
}

int coord_etcd_open(struct coord *c, const char *endpoints, const char *prefix, const char *node,
		    const struct etcd_tls *tls)
{
	int err;

	memset(c, 0, sizeof(*c));
	c->ops = &etcd_ops;
	c->be = new_be(endpoints, prefix, node, tls, &err);
	if (!err)
		c->be_watch = new_be(endpoints, prefix, node, tls, &err);
	if (err)
		coord_close(c);
	return err;
}

void coord_close(struct coord *c)
{
	if (!c->ops)
		return;
	c->ops->destroy(c->be);
	c->ops->destroy(c->be_watch);
	memset(c, 0, sizeof(*c));
}
