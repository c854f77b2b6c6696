// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A Service's ClusterIP as a rollout's VIP (userspace/kubesvc.c), on
 * Service objects as a kube-apiserver 1.20 returns them: the ClusterIP and
 * port taken, and each Service that gives no VIP refused with a message
 * saying why (headless, ExternalName, IPv6, several ports, no such port,
 * another protocol).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kubesvc.h"

/* `kubectl create service clusterip web --tcp=80:8080`, read back (1.20). */
static const char web_svc[] =
	"{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"web\","
	"\"namespace\":\"default\",\"uid\":\"5d1e0c0a-3f7e-4a53-9c1b-2f0e4c1d7a10\","
	"\"resourceVersion\":\"512\",\"creationTimestamp\":\"2026-12-06T02:30:00Z\","
	"\"labels\":{\"app\":\"web\"}},\"spec\":{\"ports\":[{\"name\":\"80-8080\","
	"\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080}],\"selector\":{\"app\":\"web\"},"
	"\"clusterIP\":\"10.96.0.50\",\"clusterIPs\":[\"10.96.0.50\"],\"type\":\"ClusterIP\","
	"\"sessionAffinity\":\"None\"},\"status\":{\"loadBalancer\":{}}}";

static json_t *load(const char *text)
{
	json_t *obj = json_loads(text, 0, NULL);

	assert_non_null(obj);
	return obj;
}

/* web_svc with spec.FIELD replaced by the JSON value. */
static json_t *web_with(const char *field, const char *value)
{
	json_t *obj = load(web_svc), *v = json_loads(value, JSON_DECODE_ANY, NULL);

	assert_non_null(v);
	assert_int_equal(json_object_set_new(json_object_get(obj, "spec"), field, v), 0);
	return obj;
}

static void test_cluster_ip(void **state)
{
	struct canary_service_key key;
	char err[256] = "";
	json_t *obj = load(web_svc);

	(void)state;
	/* No port asked for: the Service's only one. */
	assert_int_equal(kubesvc_vip_from_json(obj, 0, IPPROTO_TCP, &key, err, sizeof(err)), 0);
	assert_int_equal(key.vip, inet_addr("10.96.0.50"));
	assert_int_equal(key.port, htons(80));
	assert_int_equal(key.proto, IPPROTO_TCP);
	/* Asked for by number: the same. */
	memset(&key, 0xff, sizeof(key));
	assert_int_equal(kubesvc_vip_from_json(obj, 80, IPPROTO_TCP, &key, err, sizeof(err)), 0);
	assert_int_equal(key.vip, inet_addr("10.96.0.50"));
	assert_int_equal(key.port, htons(80));
	json_decref(obj);
}

/* Dual stack with IPv6 first: the IPv4 address of clusterIPs is the VIP. */
static void test_dual_stack(void **state)
{
	struct canary_service_key key;
	char err[256] = "";
	json_t *obj = web_with("clusterIPs", "[\"fd00:10:96::50\", \"10.96.0.51\"]");

	(void)state;
	json_object_set_new(json_object_get(obj, "spec"), "clusterIP",
			    json_string("fd00:10:96::50"));
	assert_int_equal(kubesvc_vip_from_json(obj, 0, IPPROTO_TCP, &key, err, sizeof(err)), 0);
	assert_int_equal(key.vip, inet_addr("10.96.0.51"));
	json_decref(obj);
}

static void expect_refused(json_t *obj, __u16 port, __u8 proto, const char *msg)
{
	struct canary_service_key key;
	char err[256] = "";

	if (kubesvc_vip_from_json(obj, port, proto, &key, err, sizeof(err)) != -EINVAL ||
	    !strstr(err, msg))
		fail_msg("error \"%s\", wanted \"%s\"", err, msg);
	json_decref(obj);
}

static void test_refused(void **state)
{
	static const char two_ports[] =
		"[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080},"
		"{\"name\":\"https\",\"protocol\":\"TCP\",\"port\":443,\"targetPort\":8443}]";
	json_t *headless = web_with("clusterIP", "\"None\"");

	(void)state;
	json_object_set_new(json_object_get(headless, "spec"), "clusterIPs",
			    json_loads("[\"None\"]", 0, NULL));
	expect_refused(headless, 0, IPPROTO_TCP, "headless (clusterIP None)");
	expect_refused(load("{\"kind\":\"Service\",\"spec\":{\"type\":\"ExternalName\","
			    "\"externalName\":\"db.example.com\"}}"),
		       0, IPPROTO_TCP, "no ClusterIP (type ExternalName)");
	{
		json_t *v6 = web_with("clusterIPs", "[\"fd00:10:96::50\"]");

		json_object_set_new(json_object_get(v6, "spec"), "clusterIP",
				    json_string("fd00:10:96::50"));
		expect_refused(
			v6, 0, IPPROTO_TCP,
			"ClusterIP fd00:10:96::50 is not IPv4: the data path splits IPv4 only");
	}
	expect_refused(web_with("ports", two_ports), 0, IPPROTO_TCP,
		       "the Service has 2 ports (80/TCP, 443/TCP): set spec.service.port");
	expect_refused(web_with("ports", two_ports), 8080, IPPROTO_TCP,
		       "no port 8080 (it has 80/TCP, 443/TCP)");
	expect_refused(web_with("ports", "[]"), 0, IPPROTO_TCP, "the Service has no port");
	expect_refused(load(web_svc), 0, IPPROTO_UDP, "port 80 is TCP, the rollout's protocol UDP");
	expect_refused(load("{\"kind\":\"Status\"}"), 0, IPPROTO_TCP, "not a Service");
}

/* Two services' ports, but the rollout asks for one: that one is the VIP's port. */
static void test_port_chosen(void **state)
{
	struct canary_service_key key;
	char err[256] = "";
	json_t *obj = web_with("ports", "[{\"port\":80,\"protocol\":\"TCP\"},"
					"{\"port\":53,\"protocol\":\"UDP\"}]");

	(void)state;
	assert_int_equal(kubesvc_vip_from_json(obj, 53, IPPROTO_UDP, &key, err, sizeof(err)), 0);
	assert_int_equal(key.port, htons(53));
	assert_int_equal(key.proto, IPPROTO_UDP);
	json_decref(obj);
}

/* What makes the agent move a rollout: the ClusterIP or the ports, nothing else. */
static void test_same_vip(void **state)
{
	json_t *a = load(web_svc), *b = load(web_svc), *c = web_with("clusterIP", "\"10.96.0.99\"");
	json_t *d = web_with("ports", "[{\"port\":81,\"protocol\":\"TCP\"}]");

	(void)state;
	json_object_set_new(json_object_get(b, "metadata"), "resourceVersion", json_string("600"));
	json_object_set_new(json_object_get(b, "spec"), "selector", json_object());
	assert_true(kubesvc_same_vip(a, b));
	assert_false(kubesvc_same_vip(a, c));
	assert_false(kubesvc_same_vip(a, d));
	assert_false(kubesvc_same_vip(a, NULL));
	assert_false(kubesvc_same_vip(NULL, a));
	assert_true(kubesvc_same_vip(NULL, NULL));
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_ip), cmocka_unit_test(test_dual_stack),
		cmocka_unit_test(test_refused),	   cmocka_unit_test(test_port_chosen),
		cmocka_unit_test(test_same_vip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
