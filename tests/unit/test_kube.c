// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Kubernetes client's pure parts (userspace/kube.c) on recorded JSON:
 * EndpointSlices as discovery.k8s.io/v1 (1.21+: serving and terminating
 * conditions) and v1beta1 (1.20: topology), list pages with continue
 * tokens, watch events, a 410 that forces a re-list whose result replaces
 * the state wholesale, merging of backends and the backoff's bounds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kube.h"

/* As a 1.29 server sends it: three endpoints, one terminating, one not ready. */
static const char slice_v1[] =
	"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\","
	"\"metadata\":{\"name\":\"web-abc12\",\"generateName\":\"web-\",\"namespace\":\"default\","
	"\"uid\":\"5d0c2a57-8d0e-4c35-9a8f-3f1d2d7c9a11\",\"resourceVersion\":\"4711\","
	"\"generation\":3,\"labels\":{\"kubernetes.io/service-name\":\"web\","
	"\"endpointslice.kubernetes.io/managed-by\":\"endpointslice-controller.k8s.io\"}},"
	"\"addressType\":\"IPv4\","
	"\"endpoints\":["
	"{\"addresses\":[\"10.0.1.11\"],\"conditions\":{\"ready\":true,\"serving\":true,"
	"\"terminating\":false},\"nodeName\":\"n1\",\"zone\":\"a\","
	"\"targetRef\":{\"kind\":\"Pod\",\"namespace\":\"default\",\"name\":\"web-1\"}},"
	"{\"addresses\":[\"10.0.1.12\"],\"conditions\":{\"ready\":false,\"serving\":true,"
	"\"terminating\":true},\"nodeName\":\"n2\",\"zone\":\"b\"},"
	"{\"addresses\":[\"10.0.1.13\"],\"conditions\":{\"ready\":false,\"serving\":false,"
	"\"terminating\":false},\"nodeName\":\"n2\"}],"
	"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080}]}";

/* As the 1.20 server of the labs sends it: no conditions at all on one endpoint. */
static const char slice_v1beta1[] =
	"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1beta1\","
	"\"metadata\":{\"name\":\"web-x\",\"namespace\":\"default\",\"resourceVersion\":\"90\"},"
	"\"addressType\":\"IPv4\","
	"\"endpoints\":[{\"addresses\":[\"10.0.2.21\"],\"conditions\":{\"ready\":true},"
	"\"topology\":{\"kubernetes.io/hostname\":\"n1\"}},"
	"{\"addresses\":[\"10.0.2.22\"]}],"
	"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80},"
	"{\"name\":\"admin\",\"protocol\":\"TCP\",\"port\":9090}]}";

/*
 * serving as a 1.20 server stores it with EndpointSliceTerminatingCondition:
 * given both ways on terminating endpoints, and absent (defer to ready).
 */
static const char slice_serving[] =
	"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1beta1\","
	"\"metadata\":{\"name\":\"web-t\",\"namespace\":\"default\",\"resourceVersion\":\"91\"},"
	"\"addressType\":\"IPv4\","
	"\"endpoints\":["
	"{\"addresses\":[\"10.0.3.1\"],\"conditions\":{\"ready\":false,\"serving\":true,"
	"\"terminating\":true}},"
	"{\"addresses\":[\"10.0.3.2\"],\"conditions\":{\"ready\":false,\"serving\":false,"
	"\"terminating\":true}},"
	"{\"addresses\":[\"10.0.3.3\"],\"conditions\":{\"ready\":false,\"terminating\":true}},"
	"{\"addresses\":[\"10.0.3.4\"],\"conditions\":{\"terminating\":true}},"
	"{\"addresses\":[\"10.0.3.5\"]}],"
	"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80}]}";

static json_t *load(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

static void test_slice_v1(void **state)
{
	json_t *j = load(slice_v1);
	struct kube_slice s;

	(void)state;
	assert_int_equal(kube_slice_from_json(j, &s), 0);
	assert_string_equal(s.name, "web-abc12");
	assert_int_equal(s.n, 3);
	assert_string_equal(s.b[0].addr, "10.0.1.11");
	assert_int_equal(s.b[0].port, 8080);
	assert_int_equal(s.b[0].state, KUBE_EP_READY);
	assert_int_equal(s.b[1].state, KUBE_EP_TERMINATING);
	assert_true(s.b[1].serving);
	assert_int_equal(s.b[2].state, KUBE_EP_NOT_READY);
	assert_false(s.b[2].serving);
	kube_slice_free(&s);
	json_decref(j);
}

static void test_slice_v1beta1(void **state)
{
	json_t *j = load(slice_v1beta1);
	struct kube_slice s;

	(void)state;
	assert_int_equal(kube_slice_from_json(j, &s), 0);
	/* Two addresses times two ports; no conditions means ready (the API's rule). */
	assert_int_equal(s.n, 4);
	assert_string_equal(s.b[3].addr, "10.0.2.22");
	assert_int_equal(s.b[3].port, 9090);
	assert_int_equal(s.b[3].state, KUBE_EP_READY);
	kube_slice_free(&s);
	json_decref(j);
}

static void test_slice_serving(void **state)
{
	json_t *j = load(slice_serving);
	struct kube_slice s;
	static const bool serving[] = { true, false, false, true, true };
	size_t i;

	(void)state;
	assert_int_equal(kube_slice_from_json(j, &s), 0);
	assert_int_equal(s.n, 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(s.b[i].state, i < 4 ? KUBE_EP_TERMINATING : KUBE_EP_READY);
		assert_int_equal(s.b[i].serving, serving[i]);
	}
	kube_slice_free(&s);
	json_decref(j);
}

static void expect_invalid(const char *text)
{
	json_t *j = load(text);
	struct kube_slice s;

	assert_int_equal(kube_slice_from_json(j, &s), -EINVAL);
	assert_null(s.b);
	kube_slice_free(&s);
	json_decref(j);
}

static void test_slice_invalid(void **state)
{
	(void)state;
	expect_invalid("{\"metadata\":{},\"addressType\":\"IPv4\"}");
	expect_invalid("{\"metadata\":{\"name\":\"a\"}}");
	expect_invalid(
		"{\"metadata\":{\"name\":\"a\"},\"addressType\":\"IPv4\","
		"\"endpoints\":[{\"addresses\":[\"10.0.0.300\"]}],\"ports\":[{\"port\":80}]}");
	expect_invalid("{\"metadata\":{\"name\":\"a\"},\"addressType\":\"IPv4\","
		       "\"endpoints\":[{\"addresses\":[\"fd00::1\"]}],\"ports\":[{\"port\":80}]}");
	expect_invalid("{\"metadata\":{\"name\":\"a\"},\"addressType\":\"IPv4\","
		       "\"endpoints\":[],\"ports\":[{\"port\":0}]}");
}

static void test_slice_fqdn_and_ipv6(void **state)
{
	json_t *fq = load(
		"{\"metadata\":{\"name\":\"ext\"},\"addressType\":\"FQDN\","
		"\"endpoints\":[{\"addresses\":[\"db.example.com\"]}],\"ports\":[{\"port\":5432}]}");
	json_t *v6 =
		load("{\"metadata\":{\"name\":\"six\"},\"addressType\":\"IPv6\","
		     "\"endpoints\":[{\"addresses\":[\"fd00::1\"]}],\"ports\":[{\"port\":80}]}");
	struct kube_slice s;

	(void)state;
	assert_int_equal(kube_slice_from_json(fq, &s), 0);
	assert_int_equal(s.n, 0); /* names, not addresses: nothing for the data path */
	kube_slice_free(&s);
	assert_int_equal(kube_slice_from_json(v6, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.b[0].addr, "fd00::1");
	kube_slice_free(&s);
	json_decref(fq);
	json_decref(v6);
}

/* A list page of n slices "sN" with one ready endpoint 10.0.0.N:80 each. */
static json_t *page(int first, int n, const char *rv, const char *cont)
{
	json_t *items = json_array();
	char buf[512];
	int i;

	for (i = first; i < first + n; i++) {
		snprintf(buf, sizeof(buf),
			 "{\"metadata\":{\"name\":\"s%d\",\"resourceVersion\":\"%d\"},"
			 "\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.%d\"],"
			 "\"conditions\":{\"ready\":true}}],\"ports\":[{\"port\":80}]}",
			 i, i, i);
		json_array_append_new(items, load(buf));
	}
	return json_pack("{s:s, s:s, s:{s:s, s:s?}, s:o}", "kind", "EndpointSliceList",
			 "apiVersion", "discovery.k8s.io/v1", "metadata", "resourceVersion", rv,
			 "continue", cont, "items", items);
}

static void test_list_pages(void **state)
{
	struct kube_slices s = { 0 };
	char cont[KUBE_CONTINUE_LEN];
	json_t *p1 = page(1, 2, "500", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NTAwfQ");
	json_t *p2 = page(3, 1, "500", NULL);

	(void)state;
	assert_int_equal(kube_slices_add_page(&s, p1, cont, sizeof(cont)), 0);
	assert_string_equal(cont, "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NTAwfQ");
	assert_int_equal(kube_slices_add_page(&s, p2, cont, sizeof(cont)), 0);
	assert_string_equal(cont, "");
	assert_int_equal(s.n, 3);
	assert_string_equal(s.rv, "500");
	assert_int_equal(kube_slices_add_page(&s, p2, cont, 4), 0); /* "" fits in 4 */
	kube_slices_free(&s);
	json_decref(p1);
	json_decref(p2);
}

static void apply_line(struct kube_slices *s, const char *line, int want)
{
	struct kube_event ev;

	assert_int_equal(kube_event_parse(line, strlen(line), &ev), 0);
	assert_int_equal(kube_slices_apply(s, &ev), want);
	kube_event_free(&ev);
}

static void test_events(void **state)
{
	struct kube_slices s = { 0 };
	char line[2048];
	struct kube_backend *b;

	(void)state;
	snprintf(line, sizeof(line), "{\"type\":\"ADDED\",\"object\":%s}", slice_v1);
	apply_line(&s, line, 0);
	assert_string_equal(s.rv, "4711");
	snprintf(line, sizeof(line), "{\"type\":\"ADDED\",\"object\":%s}", slice_v1beta1);
	apply_line(&s, line, 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.rv, "90");
	/* MODIFIED replaces the slice of that name: 10.0.1.11 alone now. */
	apply_line(&s,
		   "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"web-abc12\","
		   "\"resourceVersion\":\"4712\"},\"addressType\":\"IPv4\",\"endpoints\":"
		   "[{\"addresses\":[\"10.0.1.11\"]}],\"ports\":[{\"port\":8080}]}}",
		   0);
	assert_int_equal(kube_slices_backends(&s, &b), 5);
	free(b);
	apply_line(&s,
		   "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"EndpointSlice\","
		   "\"metadata\":{\"resourceVersion\":\"5000\"}}}",
		   0);
	assert_string_equal(s.rv, "5000");
	assert_int_equal(s.n, 2);
	apply_line(&s,
		   "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"web-x\","
		   "\"resourceVersion\":\"5001\"},\"addressType\":\"IPv4\"}}",
		   0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].name, "web-abc12");
	assert_string_equal(s.rv, "5001");
	kube_slices_free(&s);
}

static void test_error_events(void **state)
{
	static const char gone[] =
		"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
		"\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: "
		"100 (4711)\",\"reason\":\"Expired\",\"code\":410}}";
	static const char other[] = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
				    "\"status\":\"Failure\",\"code\":500}}";
	struct kube_slices s = { 0 };
	struct kube_event ev;

	(void)state;
	assert_int_equal(kube_event_parse(gone, strlen(gone), &ev), 0);
	assert_int_equal(ev.type, KUBE_EV_GONE);
	assert_int_equal(ev.code, 410);
	kube_event_free(&ev);
	apply_line(&s, gone, -ESTALE);
	apply_line(&s, other, -EPROTO);
	assert_int_equal(kube_event_parse("{\"type\":\"ADDED\"}", 16, &ev), -EINVAL);
	assert_int_equal(kube_event_parse("{\"type\":\"RENAMED\",\"object\":{}}", 30, &ev),
			 -EINVAL);
	assert_int_equal(kube_event_parse("not json", 8, &ev), -EINVAL);
	kube_slices_free(&s);
}

/*
 * Events were lost (410): the re-list's result replaces the state, so a
 * slice deleted meanwhile, whose DELETED event never came, is gone too.
 */
static void test_gone_then_replace(void **state)
{
	struct kube_slices s = { 0 }, fresh = { 0 };
	char cont[KUBE_CONTINUE_LEN];
	json_t *before = page(1, 3, "100", NULL), *after = page(2, 1, "900", NULL);
	struct kube_backend *b;

	(void)state;
	assert_int_equal(kube_slices_add_page(&s, before, cont, sizeof(cont)), 0);
	assert_int_equal(s.n, 3);
	apply_line(&s, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}",
		   -ESTALE);
	assert_int_equal(kube_slices_add_page(&fresh, after, cont, sizeof(cont)), 0);
	kube_slices_replace(&s, &fresh);
	assert_int_equal(fresh.n, 0);
	assert_null(fresh.v);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.rv, "900");
	assert_int_equal(kube_slices_backends(&s, &b), 1);
	assert_string_equal(b[0].addr, "10.0.0.2");
	free(b);
	kube_slices_free(&s);
	json_decref(before);
	json_decref(after);
}

/* An endpoint moving between slices shows up in both for a moment: once, at its best. */
static void test_backends_merge(void **state)
{
	struct kube_slices s = { 0 };
	struct kube_backend *b;

	(void)state;
	apply_line(
		&s,
		"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":"
		"\"1\"},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.9\"],"
		"\"conditions\":{\"ready\":false}},{\"addresses\":[\"10.0.0.10\"]}],"
		"\"ports\":[{\"port\":80}]}}",
		0);
	apply_line(
		&s,
		"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"b\",\"resourceVersion\":"
		"\"2\"},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.9\"],"
		"\"conditions\":{\"ready\":true}}],\"ports\":[{\"port\":80}]}}",
		0);
	assert_int_equal(kube_slices_backends(&s, &b), 2);
	assert_string_equal(b[0].addr, "10.0.0.10");
	assert_string_equal(b[1].addr, "10.0.0.9");
	assert_int_equal(b[1].state, KUBE_EP_READY);
	free(b);
	kube_slices_free(&s);
	assert_int_equal(kube_slices_backends(&s, &b), 0);
	assert_null(b);
}

static void test_backoff(void **state)
{
	unsigned int a;

	(void)state;
	assert_int_equal(kube_backoff_ms(0, 200, 30000, 0), 100);
	assert_int_equal(kube_backoff_ms(0, 200, 30000, 1), 200);
	assert_int_equal(kube_backoff_ms(3, 200, 30000, 1), 1600);
	for (a = 0; a < 100; a++) {
		long d = kube_backoff_ms(a, 200, 30000, 0.5);

		assert_true(d >= 100 && d <= 30000);
	}
	assert_int_equal(kube_backoff_ms(60, 200, 30000, 1), 30000);
	assert_int_equal(kube_backoff_ms(60, 200, 30000, 0), 15000);
}

static void test_client_init(void **state)
{
	struct kube_client c;

	(void)state;
	assert_int_equal(kube_client_init(&c, "https://10.0.0.1:6443/", NULL, NULL), 0);
	assert_string_equal(c.server, "https://10.0.0.1:6443");
	kube_client_close(&c);
	assert_int_equal(kube_client_init(&c, "ftp://x", NULL, NULL), -EINVAL);
	assert_int_equal(kube_client_init(&c, NULL, NULL, NULL), -EINVAL);
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kube_client_in_cluster(&c, KUBE_SA_DIR), -ENOENT);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kube_client_in_cluster(&c, "/nonexistent"), 0);
	assert_string_equal(c.server, "https://[fd00::1]:443");
	assert_string_equal(c.token_file, "/nonexistent/token");
	kube_client_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slice_v1),
		cmocka_unit_test(test_slice_v1beta1),
		cmocka_unit_test(test_slice_serving),
		cmocka_unit_test(test_slice_invalid),
		cmocka_unit_test(test_slice_fqdn_and_ipv6),
		cmocka_unit_test(test_list_pages),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_error_events),
		cmocka_unit_test(test_gone_then_replace),
		cmocka_unit_test(test_backends_merge),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_client_init),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
